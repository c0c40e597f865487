//! `/stats`: count, sum, mean, min, max, std and var of a selection, over all of it or along
//! one axis of its output shape (README "Aggregates").
//!
//! **Accuracy.** Integer and bool sums are exact: each block sums the high and low 32-bit
//! halves of its values in 64-bit lanes (no overflow within a block) and widens to `i128`, which
//! holds the sum of any array a file can hold. Floats are widened to `f64`; each block of
//! [`BLOCK_ELEMS`] is summed in [`LANES`] independent lanes (so the loop vectorises), the lanes
//! are added as a tree, and block results are combined pairwise (`Cascade`), which bounds the
//! error like NumPy's pairwise summation but in f64. Variance is one pass: each block's sum of
//! squared deviations from its own mean (the block is still in L1), blocks merged with Chan's
//! formula, pairwise too. min/max ignore NaN in the lanes; `nan=propagate` then turns any NaN
//! into a NaN result, as `np.min` does.
//!
//! **Along an axis.** With `axis=k` the reduced cells are the output shape without `k`. When
//! `k` is the last axis each cell's elements are consecutive in output order and reduce like the
//! whole selection; otherwise consecutive elements belong to consecutive cells and are
//! accumulated column-wise (Welford's update for the variance), sequentially along the axis as
//! NumPy itself does for a non-contiguous axis.

// The lane loops index `acc[l]` and `chunk[l]` together on purpose: that form vectorises.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use half::f16;

use super::{
    contiguous_rows, in_parts, split_axis, walk, Block, Kind, Num, ReadChecks, ReduceError, Source,
    Value, BLOCK_ELEMS, MAX_RESULT_ENTRIES,
};
use crate::dtype::Scalar;
use crate::element::Element;
use crate::encode::Style;

/// Independent accumulators per block loop: enough for the compiler to fill every vector lane
/// of AVX2 several times over (measured: 16 f64 lanes ran at memory speed).
pub const LANES: usize = 16;

/// One aggregate of `ops=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Number of elements (non-NaN ones with `nan=ignore`).
    Count,
    /// Sum; exact for integers and bools.
    Sum,
    /// Arithmetic mean, in f64.
    Mean,
    /// Smallest element.
    Min,
    /// Largest element.
    Max,
    /// Standard deviation with `ddof`.
    Std,
    /// Variance with `ddof`.
    Var,
}

impl Op {
    /// Every op, in the order a request without `ops=` gets them.
    pub const ALL: [Op; 7] = [
        Op::Count,
        Op::Sum,
        Op::Mean,
        Op::Min,
        Op::Max,
        Op::Std,
        Op::Var,
    ];

    /// The name used in `ops=` and as the answer's key.
    pub fn name(self) -> &'static str {
        match self {
            Op::Count => "count",
            Op::Sum => "sum",
            Op::Mean => "mean",
            Op::Min => "min",
            Op::Max => "max",
            Op::Std => "std",
            Op::Var => "var",
        }
    }
}

/// How NaN elements count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NanPolicy {
    /// Like `np.sum`, `np.min`: one NaN makes the result NaN.
    Propagate,
    /// Like `np.nansum`, `np.nanmin`: NaNs are left out (and out of `count`).
    Ignore,
}

/// A parsed `/stats` request, checked against the selection's output dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsParams {
    /// Ops in the order asked, without repeats.
    pub ops: Vec<Op>,
    /// Output axis to reduce along, resolved to `0..ndim`; `None` reduces everything.
    pub axis: Option<usize>,
    /// Delta degrees of freedom of `std` and `var`.
    pub ddof: u64,
    /// NaN handling.
    pub nan: NanPolicy,
}

impl StatsParams {
    /// Parses the query values of `/stats` for a selection with `ndim` output dimensions.
    ///
    /// # Errors
    /// [`ReduceError::BadOp`], [`ReduceError::BadAxis`], [`ReduceError::BadDdof`] or
    /// [`ReduceError::BadNan`] naming the bad value.
    pub fn parse(
        ops: Option<&str>,
        axis: Option<&str>,
        ddof: Option<&str>,
        nan: Option<&str>,
        ndim: usize,
    ) -> Result<StatsParams, ReduceError> {
        let clip = |s: &str| s.chars().take(40).collect::<String>();
        let ops = match ops {
            None => Op::ALL.to_vec(),
            Some(text) => {
                let mut ops = Vec::new();
                for name in text.split(',') {
                    let op = Op::ALL
                        .into_iter()
                        .find(|op| op.name() == name)
                        .ok_or_else(|| ReduceError::BadOp(clip(name)))?;
                    if !ops.contains(&op) {
                        ops.push(op);
                    }
                }
                ops
            }
        };
        let axis = match axis {
            None => None,
            Some(text) => {
                let bad = || ReduceError::BadAxis {
                    axis: clip(text),
                    ndim,
                };
                let k: i64 = text.parse().map_err(|_| bad())?;
                let ndim_i = i64::try_from(ndim).map_err(|_| bad())?;
                let k = if k < 0 { k + ndim_i } else { k };
                if !(0..ndim_i).contains(&k) {
                    return Err(bad());
                }
                Some(usize::try_from(k).map_err(|_| bad())?)
            }
        };
        let ddof = match ddof {
            None => 0,
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| ReduceError::BadDdof(clip(text)))?,
        };
        let nan = match nan {
            None | Some("propagate") => NanPolicy::Propagate,
            Some("ignore") => NanPolicy::Ignore,
            Some(other) => return Err(ReduceError::BadNan(clip(other))),
        };
        Ok(StatsParams {
            ops,
            axis,
            ddof,
            nan,
        })
    }
}

/// The answer of `/stats`: per op, one value per reduced cell.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsResult {
    /// The ops, in answer order.
    pub ops: Vec<Op>,
    /// Shape of each op's value: empty without `axis`.
    pub shape: Vec<u64>,
    /// `values[i]` holds op `ops[i]` for every cell, in C order of `shape`.
    pub values: Vec<Vec<Num>>,
}

impl StatsResult {
    /// The JSON object `{"count": ..., "sum": ..., ...}`.
    pub fn to_json(&self, style: Style) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 24 * self.values.len() * self.values[0].len());
        out.push(b'{');
        for (i, (op, values)) in self.ops.iter().zip(&self.values).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(op.name().as_bytes());
            out.extend_from_slice(b"\":");
            super::write_nested(&mut out, &self.shape, values, style);
        }
        out.push(b'}');
        out
    }
}

/// Computes `params` over the selection of `src`, on up to `threads` threads (the selection
/// splits into contiguous pieces of its output order along its first axis longer than one).
///
/// # Errors
/// [`ReduceError::UnsupportedDtype`] for complex data, [`ReduceError::TooLarge`] when `axis`
/// leaves more than [`MAX_RESULT_ENTRIES`] cells, [`ReduceError::Cancelled`] and
/// [`ReduceError::Unreadable`] from the walk.
pub fn stats(
    src: &Source<'_>,
    params: &StatsParams,
    threads: usize,
) -> Result<StatsResult, ReduceError> {
    src.check_dtype()?;
    let kind = src.kind();
    let need = Need {
        minmax: params.ops.iter().any(|op| matches!(op, Op::Min | Op::Max)),
        m2: params.ops.iter().any(|op| matches!(op, Op::Std | Op::Var)),
        nan_aware: params.nan == NanPolicy::Ignore,
    };
    let (shape, summaries) = match params.axis {
        None => {
            let parts = in_parts(src, threads, |part, _| whole(part, need))?;
            let total = parts.into_iter().fold(Summary::empty(), Summary::merge);
            (Vec::new(), vec![total])
        }
        Some(k) => {
            let mut shape = src.selection.out_shape();
            shape.remove(k);
            let cells = shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .filter(|&c| c <= MAX_RESULT_ENTRIES);
            if cells.is_none() {
                let cells = shape.iter().fold(1u64, |a, &d| a.saturating_mul(d));
                return Err(ReduceError::TooLarge(cells));
            }
            let parts = in_parts(src, threads, |part, _| along(part, kind, need, k))?;
            // Pieces cut across the reduced axis hold every cell, each over part of the axis;
            // pieces cut along another axis hold consecutive cells.
            let summaries = if split_axis(src.selection) == Some(k) {
                parts
                    .into_iter()
                    .reduce(|a, b| {
                        a.into_iter()
                            .zip(b)
                            .map(|(a, b)| Summary::merge(a, b))
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                parts.concat()
            };
            (shape, summaries)
        }
    };
    let scalar = src.dataset.dtype.scalar;
    let values = params
        .ops
        .iter()
        .map(|&op| {
            summaries
                .iter()
                .map(|s| s.value(op, kind, scalar, params))
                .collect()
        })
        .collect();
    Ok(StatsResult {
        ops: params.ops.clone(),
        shape,
        values,
    })
}

/// The cells of the selection of `src` reduced along output axis `k`, in C order.
fn along(src: &Source<'_>, kind: Kind, need: Need, k: usize) -> Result<Vec<Summary>, ReduceError> {
    let mut shape = src.selection.out_shape();
    let len_k = shape.remove(k);
    let cells: u64 = shape.iter().product();
    // Elements of one cell sit this far apart in output order.
    let inner: u64 = shape[k..].iter().product();
    if inner == 1 || len_k == 0 || cells == 0 {
        along_last(src, need, cells, len_k)
    } else {
        along_outer(src, kind, need, cells, len_k, inner)
    }
}

/// What the requested ops need computed.
#[derive(Debug, Clone, Copy)]
struct Need {
    minmax: bool,
    m2: bool,
    /// NaNs must be counted and left out of sums (`nan=ignore`); min/max and m2 imply it too.
    nan_aware: bool,
}

impl Need {
    /// Float blocks can take the plain-sum loop: NaNs then propagate through the sum itself.
    fn plain_sum(self) -> bool {
        !self.minmax && !self.m2 && !self.nan_aware
    }
}

/// Count, sum and sum of squared deviations from the mean of a set of (non-NaN) values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moments {
    n: f64,
    sum: f64,
    m2: f64,
}

impl Moments {
    /// Chan, Golub and LeVeque's pairwise update of the squared deviations.
    fn merge(a: Moments, b: Moments, with_m2: bool) -> Moments {
        let n = a.n + b.n;
        let mut m2 = a.m2 + b.m2;
        if with_m2 && a.n > 0.0 && b.n > 0.0 {
            let d = a.sum / a.n - b.sum / b.n;
            m2 += d * d * (a.n * b.n / n);
        }
        Moments {
            n,
            sum: a.sum + b.sum,
            m2,
        }
    }
}

/// Pairwise combination of block moments: a binary counter of partial results, so block `i`
/// is merged with its neighbour at each level, like NumPy's pairwise recursion, in O(log n)
/// memory.
#[derive(Debug)]
struct Cascade {
    stack: Vec<(u32, Moments)>,
    with_m2: bool,
}

impl Cascade {
    fn new(with_m2: bool) -> Cascade {
        Cascade {
            stack: Vec::new(),
            with_m2,
        }
    }

    fn push(&mut self, mut m: Moments) {
        let mut level = 0;
        while let Some(&(top_level, top)) = self.stack.last() {
            if top_level != level {
                break;
            }
            self.stack.pop();
            m = Moments::merge(top, m, self.with_m2);
            level += 1;
        }
        self.stack.push((level, m));
    }

    fn finish(&mut self) -> Moments {
        let mut acc = Moments::default();
        while let Some((_, m)) = self.stack.pop() {
            acc = Moments::merge(m, acc, self.with_m2);
        }
        acc
    }
}

/// Everything any op needs about one reduced cell.
#[derive(Debug, Clone, Copy)]
struct Summary {
    /// Elements, NaN included.
    n: u64,
    /// NaN elements (counted only when `Need::nan_aware` or min/max/m2 are asked).
    n_nan: u64,
    /// Exact sum, for integer kinds.
    sum_int: i128,
    /// Moments of the non-NaN values (of all values for the plain-sum path).
    moments: Moments,
    min_f: f64,
    max_f: f64,
    min_i: i128,
    max_i: i128,
}

impl Summary {
    fn empty() -> Summary {
        Summary {
            n: 0,
            n_nan: 0,
            sum_int: 0,
            moments: Moments::default(),
            min_f: f64::INFINITY,
            max_f: f64::NEG_INFINITY,
            min_i: i128::MAX,
            max_i: i128::MIN,
        }
    }

    fn merge(a: Summary, b: Summary) -> Summary {
        Summary {
            n: a.n + b.n,
            n_nan: a.n_nan + b.n_nan,
            sum_int: a.sum_int + b.sum_int,
            moments: Moments::merge(a.moments, b.moments, true),
            min_f: if b.min_f < a.min_f { b.min_f } else { a.min_f },
            max_f: if b.max_f > a.max_f { b.max_f } else { a.max_f },
            min_i: a.min_i.min(b.min_i),
            max_i: a.max_i.max(b.max_i),
        }
    }

    /// The value of `op` for this cell, NumPy's way (computed in f64, NaN and ±Inf later
    /// printed as `null` or strings).
    fn value(&self, op: Op, kind: Kind, scalar: crate::dtype::Scalar, p: &StatsParams) -> Num {
        let float = kind == Kind::Float;
        let n_valid = self.n - self.n_nan;
        let poisoned = float && p.nan == NanPolicy::Propagate && self.n_nan > 0;
        let nan = Num::F64(f64::NAN);
        match op {
            Op::Count => Num::Int(i128::from(match p.nan {
                NanPolicy::Propagate => self.n,
                NanPolicy::Ignore => n_valid,
            })),
            Op::Sum if !float => Num::Int(self.sum_int),
            Op::Sum if poisoned => nan,
            Op::Sum => Num::F64(self.moments.sum),
            // A NaN that propagates makes NaN before "no value" makes null: `np.mean` and
            // `np.min` of NaNs alone are NaN too.
            Op::Mean | Op::Min | Op::Max if poisoned => nan,
            Op::Mean if n_valid == 0 => Num::Null,
            Op::Mean if !float => Num::F64(self.sum_int as f64 / self.n as f64),
            Op::Mean => Num::F64(self.moments.sum / self.moments.n),
            Op::Min | Op::Max if n_valid == 0 => Num::Null,
            Op::Min | Op::Max => {
                let v = match (kind, op == Op::Min) {
                    (Kind::Float, true) => Value::F(self.min_f),
                    (Kind::Float, false) => Value::F(self.max_f),
                    (Kind::Signed, true) => Value::I(self.min_i as i64),
                    (Kind::Signed, false) => Value::I(self.max_i as i64),
                    (Kind::Unsigned, true) => Value::U(self.min_i as u64),
                    (Kind::Unsigned, false) => Value::U(self.max_i as u64),
                };
                Num::element(scalar, v)
            }
            Op::Std | Op::Var if poisoned => nan,
            Op::Std | Op::Var => {
                // NumPy divides by max(n - ddof, 0): 0 gives inf or nan (a warning), so null.
                let dof = n_valid.saturating_sub(p.ddof);
                if dof == 0 {
                    return Num::Null;
                }
                let var = self.moments.m2 / dof as f64;
                Num::F64(if op == Op::Std { var.sqrt() } else { var })
            }
        }
    }
}

/// Accumulates blocks whose elements all belong to one cell.
#[derive(Debug)]
struct Acc {
    need: Need,
    cascade: Cascade,
    s: Summary,
}

impl Acc {
    fn new(need: Need) -> Acc {
        Acc {
            need,
            cascade: Cascade::new(need.m2),
            s: Summary::empty(),
        }
    }

    fn add(&mut self, block: Block<'_>) {
        let s = &mut self.s;
        s.n += block.len() as u64;
        let moments = match block {
            Block::F(x) if self.need.plain_sum() => Moments {
                n: x.len() as f64,
                sum: float_sum(x),
                m2: 0.0,
            },
            Block::F(x) => {
                let (sum, n_valid, min, max) = float_full(x);
                s.n_nan += x.len() as u64 - n_valid as u64;
                if min < s.min_f {
                    s.min_f = min;
                }
                if max > s.max_f {
                    s.max_f = max;
                }
                let m2 = if self.need.m2 && n_valid > 0.0 {
                    float_m2(x, sum / n_valid)
                } else {
                    0.0
                };
                Moments {
                    n: n_valid,
                    sum,
                    m2,
                }
            }
            Block::I(x) => {
                let (sum, min, max) = signed_block(x);
                self.int_moments(sum, i128::from(min), i128::from(max), x.len(), |mean| {
                    int_m2(x.iter().map(|&v| v as f64), mean)
                })
            }
            Block::U(x) => {
                let (sum, min, max) = unsigned_block(x);
                self.int_moments(sum, i128::from(min), i128::from(max), x.len(), |mean| {
                    int_m2(x.iter().map(|&v| v as f64), mean)
                })
            }
        };
        self.cascade.push(moments);
    }

    fn int_moments(
        &mut self,
        sum: i128,
        min: i128,
        max: i128,
        len: usize,
        m2: impl FnOnce(f64) -> f64,
    ) -> Moments {
        let s = &mut self.s;
        s.sum_int += sum;
        s.min_i = s.min_i.min(min);
        s.max_i = s.max_i.max(max);
        let n = len as f64;
        let sum = sum as f64;
        Moments {
            n,
            sum,
            m2: if self.need.m2 && len > 0 {
                m2(sum / n)
            } else {
                0.0
            },
        }
    }

    fn finish(mut self) -> Summary {
        self.s.moments = self.cascade.finish();
        self.s
    }
}

/// The whole selection of `src` as one cell.
fn whole(src: &Source<'_>, need: Need) -> Result<Summary, ReduceError> {
    let n = src.selection.n_elems();
    if src.kind() == Kind::Float && need.plain_sum() {
        if let Some(rows) = contiguous_rows(src, n) {
            let sums = sum_each_row(src, rows, 1, n)?;
            return Ok(plain_sum(n, sums[0]));
        }
    }
    let mut acc = Acc::new(need);
    walk(src, |_, block| {
        acc.add(block);
        Ok(())
    })?;
    Ok(acc.finish())
}

/// Cells whose elements are consecutive in output order: each cell is `len_k` elements.
fn along_last(
    src: &Source<'_>,
    need: Need,
    cells: u64,
    len_k: u64,
) -> Result<Vec<Summary>, ReduceError> {
    let mut out = Vec::with_capacity(cells as usize);
    if len_k == 0 {
        out.resize(cells as usize, Summary::empty());
        return Ok(out);
    }
    if src.kind() == Kind::Float && need.plain_sum() {
        if let Some(rows) = contiguous_rows(src, len_k) {
            let sums = sum_each_row(src, rows, cells as usize, len_k)?;
            return Ok(sums.into_iter().map(|sum| plain_sum(len_k, sum)).collect());
        }
    }
    let mut acc = Acc::new(need);
    let mut left = len_k; // elements the current cell still needs
    walk(src, |_, mut block| {
        while block.len() > 0 {
            let take = (left as usize).min(block.len());
            let (head, rest) = block.split_at(take);
            acc.add(head);
            block = rest;
            left -= take as u64;
            if left == 0 {
                out.push(std::mem::replace(&mut acc, Acc::new(need)).finish());
                left = len_k;
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Per-cell running values for reductions along a non-last axis (struct of arrays, so each
/// column-wise update is one vectorised loop over consecutive cells).
struct Columns {
    need: Need,
    /// Non-NaN elements per cell; unused by plain float sums, which count every element.
    n_valid: Vec<f64>,
    sum: Vec<f64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    min_f: Vec<f64>,
    max_f: Vec<f64>,
    sum_int: Vec<i128>,
    min_i: Vec<i128>,
    max_i: Vec<i128>,
}

/// Cells whose consecutive elements sit `inner` apart: element at output position `p` goes to
/// cell `(p / (len_k * inner)) * inner + p % inner`.
fn along_outer(
    src: &Source<'_>,
    kind: Kind,
    need: Need,
    cells: u64,
    len_k: u64,
    inner: u64,
) -> Result<Vec<Summary>, ReduceError> {
    let c = cells as usize;
    let float = kind == Kind::Float;
    let plain = float && need.plain_sum();
    if plain {
        if let Some(rows) = contiguous_rows(src, inner) {
            let sums = sum_rows(src, rows, c, len_k, inner as usize)?;
            return Ok(sums.into_iter().map(|sum| plain_sum(len_k, sum)).collect());
        }
    }
    let vec_f = |v: f64, on: bool| if on { vec![v; c] } else { Vec::new() };
    let vec_i = |v: i128, on: bool| if on { vec![v; c] } else { Vec::new() };
    let mut cols = Columns {
        need,
        n_valid: vec_f(0.0, !plain),
        sum: vec_f(0.0, float),
        mean: vec_f(0.0, need.m2),
        m2: vec_f(0.0, need.m2),
        min_f: vec_f(f64::INFINITY, float && !plain),
        max_f: vec_f(f64::NEG_INFINITY, float && !plain),
        sum_int: vec_i(0, !float),
        min_i: vec_i(i128::MAX, !float && need.minmax),
        max_i: vec_i(i128::MIN, !float && need.minmax),
    };
    let plane = len_k * inner;
    walk(src, |first, mut block| {
        let mut p = first;
        while block.len() > 0 {
            let j = p % inner;
            let cell = (p / plane * inner + j) as usize;
            let take = ((inner - j) as usize).min(block.len());
            let (head, rest) = block.split_at(take);
            cols.add(cell, head);
            block = rest;
            p += take as u64;
        }
        Ok(())
    })?;
    Ok((0..c)
        .map(|i| {
            if plain {
                return plain_sum(len_k, cols.sum[i]);
            }
            let mut s = Summary::empty();
            s.n = len_k;
            let n_valid = cols.n_valid[i];
            s.n_nan = len_k - n_valid as u64;
            s.moments.n = n_valid;
            if float {
                s.moments.sum = cols.sum[i];
            } else {
                s.sum_int = cols.sum_int[i];
                s.moments.sum = cols.sum_int[i] as f64;
            }
            if need.m2 {
                s.moments.m2 = cols.m2[i];
            }
            if float {
                (s.min_f, s.max_f) = (cols.min_f[i], cols.max_f[i]);
            } else if need.minmax {
                (s.min_i, s.max_i) = (cols.min_i[i], cols.max_i[i]);
            }
            s
        })
        .collect())
}

/// A cell of `n` elements whose float sum, NaN propagated, is `sum`.
fn plain_sum(n: u64, sum: f64) -> Summary {
    let mut s = Summary::empty();
    s.n = n;
    s.moments.n = n as f64;
    s.moments.sum = sum;
    s
}

/// Cells per tile of [`sum_rows`]: a tile of sums (16 KiB) and of four float32 rows stay in L1.
const ROW_TILE: usize = 2048;

/// The stored floats of a source, as the row-sum kernels read them straight from the map:
/// the one place that picks a kernel for the dtype and byte order.
struct StoredFloats<'a> {
    map: &'a [u8],
    scalar: Scalar,
    swapped: bool,
    /// Bytes per element.
    size: usize,
}

impl<'a> StoredFloats<'a> {
    fn of(src: &Source<'a>) -> StoredFloats<'a> {
        let dtype = src.dataset.dtype;
        StoredFloats {
            map: &src.dataset.mapped.bytes,
            scalar: dtype.scalar,
            swapped: dtype.is_swapped(),
            size: dtype.itemsize(),
        }
    }

    /// Sum of one block of elements, in [`LANES`] lanes.
    fn sum(&self, block: &[u8]) -> f64 {
        match self.scalar {
            Scalar::F16 => stored_sum::<f16>(block, self.swapped),
            Scalar::F32 => stored_sum::<f32>(block, self.swapped),
            _ => stored_sum::<f64>(block, self.swapped),
        }
    }

    /// Adds four rows of elements to `sum`, element-wise.
    fn add_rows4(&self, sum: &mut [f64], rows: [&[u8]; 4]) {
        match self.scalar {
            Scalar::F16 => add_rows4::<f16>(sum, rows, self.swapped),
            Scalar::F32 => add_rows4::<f32>(sum, rows, self.swapped),
            _ => add_rows4::<f64>(sum, rows, self.swapped),
        }
    }

    /// Adds one row of elements to `sum`, element-wise.
    fn add_row(&self, sum: &mut [f64], row: &[u8]) {
        match self.scalar {
            Scalar::F16 => add_row::<f16>(sum, row, self.swapped),
            Scalar::F32 => add_row::<f32>(sum, row, self.swapped),
            _ => add_row::<f64>(sum, row, self.swapped),
        }
    }
}

/// Plain float sums along a non-last axis whose rows of `inner` cells are contiguous in the
/// map (`rows` are their offsets, in output order; each plane of `len_k` rows reduces into
/// `inner` consecutive cells). Four rows at a time, decoded straight from the map, so each sum
/// is loaded and stored once per four rows: measured 2-3x faster than decoding blocks into a
/// buffer and adding them one row at a time.
fn sum_rows(
    src: &Source<'_>,
    mut rows: impl Iterator<Item = usize>,
    cells: usize,
    len_k: u64,
    inner: usize,
) -> Result<Vec<f64>, ReduceError> {
    let mut checks = ReadChecks::start(src)?;
    let floats = StoredFloats::of(src);
    let mut sums = vec![0.0; cells];
    for plane in sums.chunks_exact_mut(inner) {
        let mut left = len_k;
        while left > 0 {
            let group = left.min(4) as usize;
            let mut starts = [0usize; 4];
            for start in &mut starts[..group] {
                *start = rows.next().expect("len_k rows per plane");
            }
            for (t, tile) in plane.chunks_mut(ROW_TILE).enumerate() {
                let from = t * ROW_TILE * floats.size;
                let bytes = tile.len() * floats.size;
                checks.before((group * bytes) as u64)?;
                let row = |g: usize| &floats.map[starts[g] + from..starts[g] + from + bytes];
                if group == 4 {
                    floats.add_rows4(tile, [row(0), row(1), row(2), row(3)]);
                } else {
                    for g in 0..group {
                        floats.add_row(tile, row(g));
                    }
                }
            }
            left -= group as u64;
        }
    }
    checks.finish()?;
    Ok(sums)
}

/// Plain float sums of `cells` rows of `row_len` elements that are contiguous in the map
/// (`rows` are their offsets): each row summed straight from the map in blocks of
/// [`BLOCK_ELEMS`], the blocks combined pairwise as [`Acc`] does, without the decode into a
/// block buffer first (measured 1.4x faster on float32).
fn sum_each_row(
    src: &Source<'_>,
    rows: impl Iterator<Item = usize>,
    cells: usize,
    row_len: u64,
) -> Result<Vec<f64>, ReduceError> {
    let mut checks = ReadChecks::start(src)?;
    let floats = StoredFloats::of(src);
    let row_bytes = row_len as usize * floats.size;
    let mut sums = Vec::with_capacity(cells);
    for start in rows.take(cells) {
        let mut cascade = Cascade::new(false);
        for block in floats.map[start..start + row_bytes].chunks(BLOCK_ELEMS * floats.size) {
            checks.before(block.len() as u64)?;
            cascade.push(Moments {
                n: (block.len() / floats.size) as f64,
                sum: floats.sum(block),
                m2: 0.0,
            });
        }
        sums.push(cascade.finish().sum);
    }
    checks.finish()?;
    Ok(sums)
}

/// Sum of a block of stored floats in [`LANES`] independent lanes, as [`float_sum`] does for
/// decoded ones; NaN propagates.
///
/// With AVX-512 the sixteen lanes are two registers and the loop runs at the map's read speed
/// (measured on float32: 0.061 s per GiB on one core, against 0.12 s for the AVX2 build, which
/// the compiler lays out in 128-bit halves to suit the lane tree).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "x86_64+avx"))]
fn stored_sum<E: Element + Into<f64>>(bytes: &[u8], swapped: bool) -> f64 {
    #[inline(always)]
    fn lanes<E: Element + Into<f64>, const SWAPPED: bool>(bytes: &[u8]) -> f64 {
        let mut acc = [0.0f64; LANES];
        let chunks = bytes.chunks_exact(LANES * E::SIZE);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                acc[l] += E::decode(&c[l * E::SIZE..(l + 1) * E::SIZE], SWAPPED).into();
            }
        }
        for (l, c) in rest.chunks_exact(E::SIZE).enumerate() {
            acc[l] += E::decode(c, SWAPPED).into();
        }
        tree(acc)
    }
    if swapped {
        lanes::<E, true>(bytes)
    } else {
        lanes::<E, false>(bytes)
    }
}

/// Adds four rows of stored floats to `sum`, element-wise; NaN propagates.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn add_rows4<E: Element + Into<f64>>(sum: &mut [f64], rows: [&[u8]; 4], swapped: bool) {
    // Branch outside the loop so each loop vectorises (the byte swap becomes a shuffle).
    #[inline(always)]
    fn add<E: Element + Into<f64>, const SWAPPED: bool>(sum: &mut [f64], rows: [&[u8]; 4]) {
        let [a, b, c, d] = rows.map(|r| r.chunks_exact(E::SIZE));
        let x = |c: &[u8]| -> f64 { E::decode(c, SWAPPED).into() };
        for (s, (((a, b), c), d)) in sum.iter_mut().zip(a.zip(b).zip(c).zip(d)) {
            *s += (x(a) + x(b)) + (x(c) + x(d));
        }
    }
    if swapped {
        add::<E, true>(sum, rows);
    } else {
        add::<E, false>(sum, rows);
    }
}

/// Adds one row of stored floats to `sum`, element-wise; NaN propagates.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn add_row<E: Element + Into<f64>>(sum: &mut [f64], row: &[u8], swapped: bool) {
    for (s, c) in sum.iter_mut().zip(row.chunks_exact(E::SIZE)) {
        *s += E::decode(c, swapped).into();
    }
}

impl Columns {
    /// Adds `block` element-wise to cells `cell..cell + block.len()`.
    fn add(&mut self, cell: usize, block: Block<'_>) {
        let range = cell..cell + block.len();
        match block {
            Block::F(x) => self.add_float(range, x),
            Block::I(x) => self.add_int(range, x.iter().map(|&v| i128::from(v))),
            Block::U(x) => self.add_int(range, x.iter().map(|&v| i128::from(v))),
        }
    }

    fn add_float(&mut self, range: Range<usize>, x: &[f64]) {
        if self.n_valid.is_empty() {
            cols_sum(&mut self.sum[range], x);
            return;
        }
        let n_valid = &mut self.n_valid[range.clone()];
        cols_counted(
            n_valid,
            &mut self.sum[range.clone()],
            &mut self.min_f[range.clone()],
            &mut self.max_f[range.clone()],
            x,
        );
        if self.need.m2 {
            cols_welford(
                n_valid,
                &mut self.mean[range.clone()],
                &mut self.m2[range],
                x,
            );
        }
    }

    fn add_int(&mut self, range: Range<usize>, x: impl Iterator<Item = i128>) {
        let need = self.need;
        for (k, v) in range.zip(x) {
            self.n_valid[k] += 1.0;
            self.sum_int[k] += v;
            if need.minmax {
                self.min_i[k] = self.min_i[k].min(v);
                self.max_i[k] = self.max_i[k].max(v);
            }
            if need.m2 {
                welford(
                    &mut self.mean[k],
                    &mut self.m2[k],
                    self.n_valid[k],
                    v as f64,
                );
            }
        }
    }
}

/// Adds `x` to the cells' sums; NaN propagates.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn cols_sum(sum: &mut [f64], x: &[f64]) {
    for (s, &v) in sum.iter_mut().zip(x) {
        *s += v;
    }
}

/// Counts the non-NaN values of `x` into the cells and adds them to their sums, mins and maxes.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn cols_counted(n: &mut [f64], sum: &mut [f64], min: &mut [f64], max: &mut [f64], x: &[f64]) {
    let len = x.len();
    let (n, sum, min, max) = (
        &mut n[..len],
        &mut sum[..len],
        &mut min[..len],
        &mut max[..len],
    );
    for i in 0..len {
        let v = x[i];
        // NaN compares false everywhere, so it never becomes a min or max.
        let valid = !v.is_nan();
        n[i] += if valid { 1.0 } else { 0.0 };
        sum[i] += if valid { v } else { 0.0 };
        min[i] = if v < min[i] { v } else { min[i] };
        max[i] = if v > max[i] { v } else { max[i] };
    }
}

/// Welford's update of the cells with the non-NaN values of `x`; `n` already counts them.
/// Branch-free, so it vectorises: a NaN adds a zero deviation.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn cols_welford(n: &[f64], mean: &mut [f64], m2: &mut [f64], x: &[f64]) {
    let len = x.len();
    let (n, mean, m2) = (&n[..len], &mut mean[..len], &mut m2[..len]);
    for i in 0..len {
        let v = x[i];
        let valid = !v.is_nan();
        let d = if valid { v - mean[i] } else { 0.0 };
        // `max` keeps a cell that has seen only NaNs at 0 / 1, not 0 / 0.
        let next = mean[i] + d / n[i].max(1.0);
        // An infinite value makes this `inf * (inf - inf)`: NaN, as NumPy's variance is.
        m2[i] += if valid { d * (v - next) } else { 0.0 };
        mean[i] = next;
    }
}

/// Welford's update with the `n`-th value `v` (`n` already counts it).
#[inline]
fn welford(mean: &mut f64, m2: &mut f64, n: f64, v: f64) {
    let d = v - *mean;
    *mean += d / n;
    *m2 += d * (v - *mean);
}

/// Adds the lanes as a balanced tree.
#[inline(always)]
fn tree(mut lanes: [f64; LANES]) -> f64 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
    }
    lanes[0]
}

/// Sum of a block in [`LANES`] independent lanes; NaN propagates.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn float_sum(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    for (l, &v) in rest.iter().enumerate() {
        acc[l] += v;
    }
    tree(acc)
}

/// Sum and count of the non-NaN values, and their min and max (`+inf`/`-inf` when none).
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn float_full(x: &[f64]) -> (f64, f64, f64, f64) {
    let mut sum = [0.0f64; LANES];
    let mut cnt = [0.0f64; LANES];
    let mut mn = [f64::INFINITY; LANES];
    let mut mx = [f64::NEG_INFINITY; LANES];
    let mut lane = |l: usize, v: f64| {
        // NaN compares false everywhere, so it never becomes a min or max.
        let valid = !v.is_nan();
        sum[l] += if valid { v } else { 0.0 };
        cnt[l] += if valid { 1.0 } else { 0.0 };
        mn[l] = if v < mn[l] { v } else { mn[l] };
        mx[l] = if v > mx[l] { v } else { mx[l] };
    };
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            lane(l, c[l]);
        }
    }
    for (l, &v) in rest.iter().enumerate() {
        lane(l, v);
    }
    let min = mn
        .iter()
        .fold(f64::INFINITY, |a, &b| if b < a { b } else { a });
    let max = mx
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    (tree(sum), tree(cnt), min, max)
}

/// Sum of squared deviations from `mean` of the non-NaN values. Only NaN elements are left
/// out: an infinite value (or an infinite or NaN `mean`) gives a NaN deviation, which makes
/// the variance NaN, as NumPy's `inf - inf` does.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn float_m2(x: &[f64], mean: f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let d = c[l] - mean;
            acc[l] += if c[l].is_nan() { 0.0 } else { d * d };
        }
    }
    for (l, &v) in rest.iter().enumerate() {
        let d = v - mean;
        acc[l] += if v.is_nan() { 0.0 } else { d * d };
    }
    tree(acc)
}

fn int_m2(x: impl Iterator<Item = f64>, mean: f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    for (i, v) in x.enumerate() {
        let d = v - mean;
        acc[i % LANES] += d * d;
    }
    tree(acc)
}

/// Exact sum, min and max of a block of signed values. The high halves (`v >> 32`, at most
/// 2^31 in magnitude) and low halves (`v & 0xffff_ffff`, below 2^32) are summed separately in
/// 64-bit lanes, which cannot overflow within a block of [`BLOCK_ELEMS`].
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn signed_block(x: &[i64]) -> (i128, i64, i64) {
    const _: () = assert!(BLOCK_ELEMS < 1 << 31);
    let mut hi = [0i64; LANES];
    let mut lo = [0i64; LANES];
    let mut mn = [i64::MAX; LANES];
    let mut mx = [i64::MIN; LANES];
    for (i, &v) in x.iter().enumerate() {
        let l = i % LANES;
        hi[l] += v >> 32;
        lo[l] += v & 0xffff_ffff;
        mn[l] = mn[l].min(v);
        mx[l] = mx[l].max(v);
    }
    let hi: i128 = hi.iter().map(|&h| i128::from(h)).sum();
    let lo: i128 = lo.iter().map(|&l| i128::from(l)).sum();
    let min = mn.iter().copied().min().unwrap_or(i64::MAX);
    let max = mx.iter().copied().max().unwrap_or(i64::MIN);
    ((hi << 32) + lo, min, max)
}

/// As [`signed_block`], for unsigned values and bools.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn unsigned_block(x: &[u64]) -> (i128, u64, u64) {
    let mut hi = [0u64; LANES];
    let mut lo = [0u64; LANES];
    let mut mn = [u64::MAX; LANES];
    let mut mx = [u64::MIN; LANES];
    for (i, &v) in x.iter().enumerate() {
        let l = i % LANES;
        hi[l] += v >> 32;
        lo[l] += v & 0xffff_ffff;
        mn[l] = mn[l].min(v);
        mx[l] = mx[l].max(v);
    }
    let hi: i128 = hi.iter().map(|&h| i128::from(h)).sum();
    let lo: i128 = lo.iter().map(|&l| i128::from(l)).sum();
    let min = mn.iter().copied().min().unwrap_or(u64::MAX);
    let max = mx.iter().copied().max().unwrap_or(u64::MIN);
    ((hi << 32) + lo, min, max)
}

#[cfg(test)]
mod tests;
