//! `/downsample`: M4 buckets of a 1-d selection for line charts (README "Aggregates"; Jugel et
//! al., "M4: A Visualization-Oriented Time Series Data Aggregation", VLDB 2014).
//!
//! The `n` elements split into `B = min(buckets, n)` buckets, bucket `i` covering
//! `[floor(i*n/B), floor((i+1)*n/B))`, so no bucket is empty. Per bucket: `first` and `last`
//! (the raw elements, NaN included), and `min`, `max` with their positions `argmin`, `argmax`
//! (indices into the selection), NaNs ignored, ties to the first occurrence; a bucket of NaNs
//! only has `null` for all four. Drawing the polyline through first, min, max and last of each
//! bucket, in index order, lights the same pixels as drawing every point when each bucket
//! maps to one pixel column.
//!
//! Each block is cut at bucket boundaries; each piece's min and max come from a vectorised lane
//! loop, and the piece is scanned for the position only when it improves on the bucket.

// The lane loops index `acc[l]` and `chunk[l]` together on purpose: that form vectorises.
#![allow(clippy::needless_range_loop)]

use super::{in_parts, walk, Block, Num, ReduceError, Source, Value, MAX_RESULT_ENTRIES};
use crate::encode::Style;

/// A parsed `/downsample` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownsampleParams {
    /// Buckets asked for, `1..=1,000,000`.
    pub buckets: u64,
}

impl DownsampleParams {
    /// Parses `buckets=` (required).
    ///
    /// # Errors
    /// [`ReduceError::BadBuckets`] when absent, not an integer, or outside `1..=1,000,000`.
    pub fn parse(buckets: Option<&str>) -> Result<DownsampleParams, ReduceError> {
        let text = buckets.unwrap_or("");
        let buckets = text
            .parse::<u64>()
            .ok()
            .filter(|b| (1..=MAX_RESULT_ENTRIES).contains(b))
            .ok_or_else(|| ReduceError::BadBuckets(text.chars().take(40).collect()))?;
        Ok(DownsampleParams { buckets })
    }
}

/// The answer of `/downsample`: parallel arrays, one entry per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct DownsampleResult {
    /// First selection index of each bucket.
    pub start: Vec<u64>,
    /// First element of each bucket.
    pub first: Vec<Num>,
    /// Last element of each bucket.
    pub last: Vec<Num>,
    /// Smallest non-NaN element, `Null` when there is none.
    pub min: Vec<Num>,
    /// Largest non-NaN element, `Null` when there is none.
    pub max: Vec<Num>,
    /// Selection index of the first smallest element.
    pub argmin: Vec<Option<u64>>,
    /// Selection index of the first largest element.
    pub argmax: Vec<Option<u64>>,
}

impl DownsampleResult {
    /// The JSON object of parallel arrays.
    pub fn to_json(&self, style: Style) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 120 * self.start.len());
        let idx = |v: &[Option<u64>]| {
            v.iter()
                .map(|o| o.map_or(Num::Null, |i| Num::Int(i.into())))
                .collect::<Vec<_>>()
        };
        let start: Vec<Num> = self.start.iter().map(|&s| Num::Int(s.into())).collect();
        let fields: [(&str, &[Num]); 7] = [
            ("start", &start),
            ("first", &self.first),
            ("last", &self.last),
            ("min", &self.min),
            ("max", &self.max),
            ("argmin", &idx(&self.argmin)),
            ("argmax", &idx(&self.argmax)),
        ];
        out.push(b'{');
        for (i, (name, values)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":[");
            for (j, v) in values.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                v.write_json(&mut out, style);
            }
            out.push(b']');
        }
        out.push(b'}');
        out
    }
}

/// One bucket being filled.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    first: Option<Value>,
    last: Option<Value>,
    min: Option<(Value, u64)>,
    max: Option<(Value, u64)>,
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        first: None,
        last: None,
        min: None,
        max: None,
    };

    /// This bucket's elements followed by `later`'s (the same bucket, filled by two threads):
    /// ties keep the earlier position, as within one piece.
    fn then(self, later: Bucket) -> Bucket {
        let pick =
            |a: Option<(Value, u64)>, b: Option<(Value, u64)>, b_wins: fn(Value, Value) -> bool| {
                match (a, b) {
                    (Some(a), Some(b)) if b_wins(a.0, b.0) => Some(b),
                    (None, b) => b,
                    (a, _) => a,
                }
            };
        Bucket {
            first: self.first.or(later.first),
            last: later.last.or(self.last),
            min: pick(self.min, later.min, |a, b| less(b, a)),
            max: pick(self.max, later.max, less),
        }
    }
}

/// Computes the M4 buckets of the 1-d selection of `src` on up to `threads` threads (each
/// fills the buckets of a contiguous piece; a bucket cut by two pieces is merged).
///
/// # Errors
/// [`ReduceError::UnsupportedDtype`] for complex data, [`ReduceError::Not1d`] unless the
/// selection's output is 1-d, [`ReduceError::Cancelled`] and [`ReduceError::Unreadable`] from
/// the walk.
pub fn downsample(
    src: &Source<'_>,
    params: &DownsampleParams,
    threads: usize,
) -> Result<DownsampleResult, ReduceError> {
    src.check_dtype()?;
    let shape = src.selection.out_shape();
    if shape.len() != 1 {
        return Err(ReduceError::Not1d(shape));
    }
    let bounds = Bounds {
        n: shape[0],
        b: params.buckets.min(shape[0]),
    };
    let parts = in_parts(src, threads, |part, first| bounds.fill(part, first))?;
    let mut buckets: Vec<Bucket> = Vec::with_capacity(bounds.b as usize);
    for (index, part) in parts {
        let mut part = part.into_iter();
        // A piece that starts inside the previous piece's last bucket continues it.
        let continues = (buckets.len() as u64) > index;
        if let (true, Some(last)) = (continues, buckets.last_mut()) {
            if let Some(rest) = part.next() {
                *last = last.then(rest);
            }
        }
        buckets.extend(part);
    }
    let scalar = src.dataset.dtype.scalar;
    let el = |v: Option<Value>| v.map_or(Num::Null, |v| Num::element(scalar, v));
    Ok(DownsampleResult {
        start: (0..bounds.b).map(|i| bounds.start(i)).collect(),
        first: buckets.iter().map(|b| el(b.first)).collect(),
        last: buckets.iter().map(|b| el(b.last)).collect(),
        min: buckets.iter().map(|b| el(b.min.map(|m| m.0))).collect(),
        max: buckets.iter().map(|b| el(b.max.map(|m| m.0))).collect(),
        argmin: buckets.iter().map(|b| b.min.map(|m| m.1)).collect(),
        argmax: buckets.iter().map(|b| b.max.map(|m| m.1)).collect(),
    })
}

/// `b` buckets over `n` elements.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    n: u64,
    b: u64,
}

impl Bounds {
    /// First selection index of bucket `i` (`n` for `i == b`).
    fn start(self, i: u64) -> u64 {
        (u128::from(i) * u128::from(self.n) / u128::from(self.b.max(1))) as u64
    }

    /// The bucket holding selection index `p` (`b` when `p` is past the last one, as the
    /// start of an empty selection is).
    fn of(self, p: u64) -> u64 {
        let mut i = (u128::from(p) * u128::from(self.b) / u128::from(self.n.max(1))) as u64;
        i = i.min(self.b);
        while i > 0 && self.start(i) > p {
            i -= 1;
        }
        while i < self.b && self.start(i + 1) <= p {
            i += 1;
        }
        i
    }

    /// The buckets touched by the selection of `src`, whose first element is selection index
    /// `offset`: the index of the first of them and each one's elements from this piece.
    fn fill(self, src: &Source<'_>, offset: u64) -> Result<(u64, Vec<Bucket>), ReduceError> {
        let first_index = self.of(offset);
        let mut buckets = Vec::new();
        let mut bucket = Bucket::EMPTY;
        let mut end = self.start(first_index + 1);
        walk(src, |first, block| {
            let mut p = offset + first;
            let mut rest = block;
            while rest.len() > 0 {
                let take = ((end - p) as usize).min(rest.len());
                let (head, tail) = rest.split_at(take);
                piece(&mut bucket, p, head);
                p += take as u64;
                rest = tail;
                if p == end {
                    buckets.push(std::mem::replace(&mut bucket, Bucket::EMPTY));
                    end = self.start(first_index + buckets.len() as u64 + 1);
                }
            }
            Ok(())
        })?;
        if bucket.first.is_some() {
            buckets.push(bucket);
        }
        Ok((first_index, buckets))
    }
}

/// Folds the consecutive elements `block`, starting at selection index `p`, into `bucket`.
fn piece(bucket: &mut Bucket, p: u64, block: Block<'_>) {
    let at = |i: usize| match block {
        Block::F(x) => Value::F(x[i]),
        Block::I(x) => Value::I(x[i]),
        Block::U(x) => Value::U(x[i]),
    };
    if block.len() == 0 {
        return;
    }
    if bucket.first.is_none() {
        bucket.first = Some(at(0));
    }
    bucket.last = Some(at(block.len() - 1));
    // Position of the piece's min and max (first occurrences), if it has a non-NaN element.
    let found = match block {
        Block::F(x) => {
            let (mn, mx) = float_minmax(x);
            (mn <= mx).then(|| {
                let i = x.iter().position(|&v| v == mn).unwrap_or(0);
                let j = x.iter().position(|&v| v == mx).unwrap_or(0);
                (i, j)
            })
        }
        Block::I(x) => {
            let (mn, mx) = (x.iter().min(), x.iter().max());
            mn.zip(mx).map(|(mn, mx)| {
                let i = x.iter().position(|v| v == mn).unwrap_or(0);
                let j = x.iter().position(|v| v == mx).unwrap_or(0);
                (i, j)
            })
        }
        Block::U(x) => {
            let (mn, mx) = (x.iter().min(), x.iter().max());
            mn.zip(mx).map(|(mn, mx)| {
                let i = x.iter().position(|v| v == mn).unwrap_or(0);
                let j = x.iter().position(|v| v == mx).unwrap_or(0);
                (i, j)
            })
        }
    };
    let Some((i, j)) = found else { return };
    let (vi, vj) = (at(i), at(j));
    if bucket.min.is_none_or(|(m, _)| less(vi, m)) {
        bucket.min = Some((vi, p + i as u64));
    }
    if bucket.max.is_none_or(|(m, _)| less(m, vj)) {
        bucket.max = Some((vj, p + j as u64));
    }
}

/// `a < b` for two values of the same kind.
fn less(a: Value, b: Value) -> bool {
    match (a, b) {
        (Value::F(a), Value::F(b)) => a < b,
        (Value::I(a), Value::I(b)) => a < b,
        (Value::U(a), Value::U(b)) => a < b,
        _ => false,
    }
}

/// Min and max of the non-NaN values (`+inf > -inf` when there are none).
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn float_minmax(x: &[f64]) -> (f64, f64) {
    const LANES: usize = super::stats::LANES;
    let mut mn = [f64::INFINITY; LANES];
    let mut mx = [f64::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            mn[l] = if c[l] < mn[l] { c[l] } else { mn[l] };
            mx[l] = if c[l] > mx[l] { c[l] } else { mx[l] };
        }
    }
    for (l, &v) in rest.iter().enumerate() {
        mn[l] = if v < mn[l] { v } else { mn[l] };
        mx[l] = if v > mx[l] { v } else { mx[l] };
    }
    let min = mn
        .iter()
        .fold(f64::INFINITY, |a, &b| if b < a { b } else { a });
    let max = mx
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    (min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_parse() {
        assert_eq!(DownsampleParams::parse(Some("7")).unwrap().buckets, 7);
        for bad in [None, Some("0"), Some("1000001"), Some("x"), Some("-3")] {
            assert_eq!(
                DownsampleParams::parse(bad).unwrap_err().code(),
                "bad_buckets"
            );
        }
    }

    #[test]
    fn threads_give_the_same_buckets() {
        let (n, data) = crate::reduce::tests::big_f32();
        let (_dir, registry) = crate::reduce::tests::dataset("<f4", &[n], &data);
        // One bucket, buckets cut by the split, and buckets of one element at the cut.
        for buckets in ["1", "3", "1000", "1000000"] {
            let p = DownsampleParams::parse(Some(buckets)).unwrap();
            let down = |threads| {
                crate::reduce::tests::over(&registry, "5:", |src| downsample(src, &p, threads))
            };
            let (one, two) = (down(1), down(2));
            assert_eq!(one.start.len(), buckets.parse::<usize>().unwrap());
            // As text, where NaN equals NaN.
            let (one, two) = (
                one.to_json(Style::JsonString),
                two.to_json(Style::JsonString),
            );
            let at = one.iter().zip(&two).position(|(a, b)| a != b);
            assert!(
                one == two,
                "{buckets}: differ at byte {at:?} of {}",
                one.len()
            );
        }
    }

    #[test]
    fn empty_selections_have_no_buckets() {
        let (_dir, registry) = crate::reduce::tests::dataset("|u1", &[5], &[1, 2, 3, 4, 5]);
        let p = DownsampleParams::parse(Some("3")).unwrap();
        for slice in ["9:", "2:2"] {
            let r = crate::reduce::tests::over(&registry, slice, |src| downsample(src, &p, 2));
            assert_eq!(r.to_json(Style::JsonNull), b"{\"start\":[],\"first\":[],\"last\":[],\"min\":[],\"max\":[],\"argmin\":[],\"argmax\":[]}");
        }
        assert_eq!(Bounds { n: 5, b: 3 }.of(4), 2);
        assert_eq!(Bounds { n: 5, b: 3 }.of(5), 3);
    }

    #[test]
    fn pieces_keep_the_first_extreme() {
        let mut b = Bucket::EMPTY;
        piece(&mut b, 10, Block::F(&[f64::NAN, 2.0, 1.0, 1.0, 5.0]));
        piece(&mut b, 15, Block::F(&[1.0, 5.0, f64::NAN]));
        assert!(matches!(b.first, Some(Value::F(v)) if v.is_nan()));
        assert!(matches!(b.last, Some(Value::F(v)) if v.is_nan()));
        assert_eq!(b.min, Some((Value::F(1.0), 12)));
        assert_eq!(b.max, Some((Value::F(5.0), 14)));
        let mut all_nan = Bucket::EMPTY;
        piece(&mut all_nan, 0, Block::F(&[f64::NAN; 3]));
        assert_eq!((all_nan.min, all_nan.max), (None, None));
    }
}
