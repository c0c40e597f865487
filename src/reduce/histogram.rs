//! `/histogram`: equal-width bin counts of a selection with `np.histogram`'s semantics
//! (README "Aggregates").
//!
//! NumPy computes the edges with `np.linspace(lo, hi, bins + 1)` in float64 and casts them to
//! the bin dtype, which is the data's own float type (float16, float32, float64; float64 for
//! integers and bools, read as 0 and 1). A value is counted when `edges[0] <= x <= edges[bins]`
//! in that type, and lands in bin `i` with `edges[i] <= x < edges[i + 1]` (the last bin is
//! closed). NumPy guesses `i` arithmetically and then corrects it by one against the edges;
//! arrayd guesses in f64 and corrects until the comparisons hold, which gives NumPy's answer
//! wherever NumPy's guess is within one bin (always for float32, float64 and integers; NumPy's
//! own float16 index arithmetic overflows for large bin counts, where arrayd stays exact).
//!
//! When the edges are not finite (a range wider than float64 holds) or not strictly increasing
//! (more bins than the bin dtype can tell apart over the range) the answer is 400, where NumPy
//! raises "Too many bins for data range" or returns non-finite edges.
//!
//! Without `range=`, the range is the min and max of the finite values (a first pass), or
//! `0..1` when there are none; `lo == hi` widens to `lo - 0.5 .. hi + 0.5`. NaNs are counted
//! in `nan_count`; ±Inf lie outside every finite range and are not counted.

use half::f16;

use super::{in_parts, walk, Block, Num, ReduceError, Source, Value, MAX_RESULT_ENTRIES};
use crate::dtype::Scalar;
use crate::encode::Style;

/// Bins when `bins=` is absent, as in NumPy.
pub const DEFAULT_BINS: u64 = 10;

/// A parsed `/histogram` request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramParams {
    /// Number of equal-width bins, `1..=1,000,000`.
    pub bins: u64,
    /// `range=lo,hi`: finite, `lo <= hi`.
    pub range: Option<(f64, f64)>,
}

impl HistogramParams {
    /// Parses `bins=` and `range=`.
    ///
    /// # Errors
    /// [`ReduceError::BadBins`] or [`ReduceError::BadRange`] naming the bad value.
    pub fn parse(bins: Option<&str>, range: Option<&str>) -> Result<HistogramParams, ReduceError> {
        let clip = |s: &str| s.chars().take(40).collect::<String>();
        let bins = match bins {
            None => DEFAULT_BINS,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|b| (1..=MAX_RESULT_ENTRIES).contains(b))
                .ok_or_else(|| ReduceError::BadBins(clip(text)))?,
        };
        let range = match range {
            None => None,
            Some(text) => {
                let bad = || ReduceError::BadRange(clip(text));
                let (lo, hi) = text.split_once(',').ok_or_else(bad)?;
                let lo: f64 = lo.parse().map_err(|_| bad())?;
                let hi: f64 = hi.parse().map_err(|_| bad())?;
                if !lo.is_finite() || !hi.is_finite() || lo > hi {
                    return Err(bad());
                }
                Some((lo, hi))
            }
        };
        Ok(HistogramParams { bins, range })
    }
}

/// The answer of `/histogram`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramResult {
    /// `bins + 1` edges, in the bin dtype.
    pub edges: Vec<Num>,
    /// Count per bin.
    pub counts: Vec<u64>,
    /// NaN elements of the selection.
    pub nan_count: u64,
}

impl HistogramResult {
    /// The JSON object `{"edges": [...], "counts": [...], "nan_count": n}`.
    pub fn to_json(&self, style: Style) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 24 * self.edges.len() + 8 * self.counts.len());
        out.extend_from_slice(b"{\"edges\":[");
        for (i, e) in self.edges.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            e.write_json(&mut out, style);
        }
        out.extend_from_slice(b"],\"counts\":[");
        let mut buf = itoa::Buffer::new();
        for (i, c) in self.counts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(buf.format(*c).as_bytes());
        }
        out.extend_from_slice(b"],\"nan_count\":");
        out.extend_from_slice(buf.format(self.nan_count).as_bytes());
        out.push(b'}');
        out
    }
}

/// Rounds `v` to the bin dtype of `scalar` (exactly representable in it afterwards).
fn to_bin_type(scalar: Scalar, v: f64) -> f64 {
    match scalar {
        Scalar::F16 => f64::from(f16_nearest(v)),
        Scalar::F32 => f64::from(v as f32),
        _ => v,
    }
}

/// `v` rounded once to the nearest float16, ties to even, as NumPy's `astype` does.
///
/// `half`'s `from_f64` (software and F16C paths alike) can be one ulp off: 25.9453125000006
/// comes out 25.9375, not 25.953125. It is right to within that ulp, so the neighbours decide.
fn f16_nearest(v: f64) -> f16 {
    let h = f16::from_f64(v);
    if !h.is_finite() || v.is_nan() {
        return h;
    }
    let a = v.abs();
    let bits = f16::from_f64(a).to_bits();
    let mut best = bits;
    for c in [
        bits.saturating_sub(1),
        bits,
        bits.saturating_add(1).min(0x7bff),
    ] {
        let (dc, db) = (
            (f64::from(f16::from_bits(c)) - a).abs(),
            (f64::from(f16::from_bits(best)) - a).abs(),
        );
        if dc < db || (dc == db && c % 2 == 0) {
            best = c;
        }
    }
    let h = f16::from_bits(best);
    if v.is_sign_negative() {
        -h
    } else {
        h
    }
}

/// `np.linspace(lo, hi, bins + 1)` in float64, cast to the bin dtype.
fn edges(scalar: Scalar, lo: f64, hi: f64, bins: u64) -> Vec<f64> {
    let div = bins as f64;
    let delta = hi - lo;
    let step = delta / div;
    let mut edges: Vec<f64> = (0..=bins)
        .map(|i| {
            let i = i as f64;
            // NumPy's `linspace`: `y * step`, or `y / div * delta` when the step underflows.
            let y = if step == 0.0 {
                i / div * delta
            } else {
                i * step
            };
            y + lo
        })
        .collect();
    edges[bins as usize] = hi;
    edges.into_iter().map(|e| to_bin_type(scalar, e)).collect()
}

/// Computes the histogram of the selection of `src` on up to `threads` threads (each counts
/// a contiguous piece of the selection into its own bins; the bins are added at the end).
///
/// # Errors
/// [`ReduceError::UnsupportedDtype`] for complex data, [`ReduceError::Cancelled`] and
/// [`ReduceError::Unreadable`] from the walk.
pub fn histogram(
    src: &Source<'_>,
    params: &HistogramParams,
    threads: usize,
) -> Result<HistogramResult, ReduceError> {
    src.check_dtype()?;
    let scalar = src.dataset.dtype.scalar;
    let (mut lo, mut hi) = match params.range {
        Some(r) => r,
        None => {
            let parts = in_parts(src, threads, |part, _| finite_range(part))?;
            let (lo, hi) = parts
                .into_iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (a, b)| {
                    (lo.min(a), hi.max(b))
                });
            if lo <= hi {
                (lo, hi)
            } else {
                (0.0, 1.0)
            }
        }
    };
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let bins = params.bins;
    let edges = edges(scalar, lo, hi, bins);
    // NumPy raises here too ("Too many bins for data range"); a width past the float64 range
    // gives non-finite edges, which NumPy would return as garbage.
    if edges.iter().any(|e| !e.is_finite()) {
        return Err(ReduceError::BadRange(format!(
            "{lo:e},{hi:e} (its width overflows)"
        )));
    }
    if edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ReduceError::BadBins(format!(
            "{bins} (too many for the range {lo:e},{hi:e} in {})",
            src.dataset.dtype
        )));
    }
    let bin = Binning {
        edges: &edges,
        lo,
        scale: bins as f64 / (hi - lo),
    };
    let parts = in_parts(src, threads, |part, _| bin.count(part))?;
    let (mut counts, mut nan_count) = (vec![0u64; bins as usize], 0u64);
    for (part_counts, part_nans) in parts {
        for (c, p) in counts.iter_mut().zip(part_counts) {
            *c += p;
        }
        nan_count += part_nans;
    }
    let edges = edges
        .into_iter()
        .map(|e| Num::element(scalar, Value::F(e)))
        .collect();
    Ok(HistogramResult {
        edges,
        counts,
        nan_count,
    })
}

/// Equal-width bins over their edges (in the bin dtype, strictly increasing).
struct Binning<'e> {
    edges: &'e [f64],
    lo: f64,
    /// Bins per unit of value, for the first guess of a value's bin.
    scale: f64,
}

impl Binning<'_> {
    /// The count of each bin over the selection of `src`, and its NaN count.
    fn count(&self, src: &Source<'_>) -> Result<(Vec<u64>, u64), ReduceError> {
        let edges = self.edges;
        let bins = edges.len() - 1;
        let (first, last) = (edges[0], edges[bins]);
        let top = bins - 1;
        let mut counts = vec![0u64; bins];
        let mut nan_count = 0u64;
        let mut place = |x: f64| {
            if x.is_nan() {
                nan_count += 1;
                return;
            }
            if !(x >= first && x <= last) {
                return;
            }
            let guess = ((x - self.lo) * self.scale) as usize; // saturating; corrected below
            let mut i = guess.min(top);
            while i > 0 && x < edges[i] {
                i -= 1;
            }
            while i < top && x >= edges[i + 1] {
                i += 1;
            }
            counts[i] += 1;
        };
        walk(src, |_, block| {
            match block {
                Block::F(x) => x.iter().for_each(|&v| place(v)),
                Block::I(x) => x.iter().for_each(|&v| place(v as f64)),
                Block::U(x) => x.iter().for_each(|&v| place(v as f64)),
            }
            Ok(())
        })?;
        Ok((counts, nan_count))
    }
}

/// Min and max of the finite values (`+inf`, `-inf` when there are none).
fn finite_range(src: &Source<'_>) -> Result<(f64, f64), ReduceError> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    walk(src, |_, block| {
        let (a, b) = match block {
            Block::F(x) => x
                .iter()
                .filter(|v| v.is_finite())
                .fold((lo, hi), |(a, b), &v| (a.min(v), b.max(v))),
            Block::I(x) => x
                .iter()
                .fold((lo, hi), |(a, b), &v| (a.min(v as f64), b.max(v as f64))),
            Block::U(x) => x
                .iter()
                .fold((lo, hi), |(a, b), &v| (a.min(v as f64), b.max(v as f64))),
        };
        (lo, hi) = (a, b);
        Ok(())
    })?;
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_and_refuse() {
        let p = HistogramParams::parse(None, None).unwrap();
        assert_eq!((p.bins, p.range), (10, None));
        let p = HistogramParams::parse(Some("3"), Some("-1.5,2")).unwrap();
        assert_eq!((p.bins, p.range), (3, Some((-1.5, 2.0))));
        for bins in ["0", "1000001", "-1", "x", ""] {
            let e = HistogramParams::parse(Some(bins), None).unwrap_err();
            assert_eq!(e.code(), "bad_bins", "{bins}");
        }
        for range in ["1", "2,1", "nan,1", "0,inf", "a,b", "1,2,3"] {
            let e = HistogramParams::parse(None, Some(range)).unwrap_err();
            assert_eq!(e.code(), "bad_range", "{range}");
        }
    }

    #[test]
    fn f16_rounding_is_single() {
        assert_eq!(f64::from(f16_nearest(25.945_312_500_596_05)), 25.953125);
        assert_eq!(f64::from(f16_nearest(25.945_312_5)), 25.9375);
        assert_eq!(f64::from(f16_nearest(-25.945_312_500_596_05)), -25.953125);
        for bits in 0..0x7c00u16 {
            let v = f64::from(f16::from_bits(bits));
            assert_eq!(f16_nearest(v).to_bits(), bits);
        }
    }

    #[test]
    fn threads_count_the_same() {
        let (n, data) = crate::reduce::tests::big_f32();
        let (_dir, registry) = crate::reduce::tests::dataset("<f4", &[n], &data);
        for (bins, range) in [(Some("7"), None), (Some("1000"), Some("-50,50"))] {
            let p = HistogramParams::parse(bins, range).unwrap();
            let hist = |threads| {
                crate::reduce::tests::over(&registry, "::-1", |src| histogram(src, &p, threads))
            };
            let (one, two) = (hist(1), hist(2));
            assert_eq!(one, two);
            assert!(one.nan_count > 0 && one.counts.iter().sum::<u64>() > n / 4);
        }
    }

    #[test]
    fn edges_follow_linspace_in_the_data_type() {
        assert_eq!(edges(Scalar::F64, 0.0, 1.0, 4), [0.0, 0.25, 0.5, 0.75, 1.0]);
        // np.linspace(0, 1, 4).astype(np.float32) -> edges rounded to float32.
        let e = edges(Scalar::F32, 0.0, 1.0, 3);
        assert_eq!(e[1], f64::from((1.0f64 / 3.0) as f32));
        assert_eq!(e[3], 1.0);
    }
}
