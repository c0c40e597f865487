//! Reductions: the aggregates of README "Aggregates", "/histogram" and "/downsample", computed
//! over a selection's runs without materialising the selection.
//!
//! Every reducer is a pure synchronous function over a [`Source`] (dataset, selection, cancel
//! flag). `walk` is the one loop that reads the map: it follows the planner's runs in output
//! order, gathers the elements into blocks of at most [`BLOCK_ELEMS`], decodes each block into a
//! typed buffer (`Block`: `f64` for floats, `i64` for signed integers, `u64` for unsigned ones
//! and bools) with one `match` on the dtype, and hands the block to the reducer. Between blocks
//! it checks the cancel flag (the client went away) and the map's poisoned flag (a truncated
//! file's lost pages read as zeros, see [`crate::sigbus`]), and, every [`CHECK_BYTES`], that
//! the data file still covers the array, so a truncation is noticed before its pages fault.
//!
//! This module does not know HTTP: the handlers in `http::stats` run reducers on blocking
//! threads behind a semaphore and set the cancel flag when the client disconnects.

pub mod downsample;
pub mod histogram;
pub mod stats;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use half::f16;

use crate::dataset::Dataset;
use crate::dtype::Scalar;
use crate::element::Element;
use crate::encode::number::{Style, Text};
use crate::plan;
use crate::selection::Selection;

/// Elements per decoded block: small enough that a block and its decoded copy stay in L1, large
/// enough that per-block work (cancel check, pairwise merge) costs nothing measurable. It is
/// also the leaf size of the pairwise summation (see `stats`).
pub const BLOCK_ELEMS: usize = 512;

/// Bytes read between two checks that the data file still covers the array.
pub const CHECK_BYTES: u64 = 1 << 20;

/// Selections of fewer elements run on one thread: below a few MiB a second thread costs more
/// than it saves.
const MIN_SPLIT_ELEMS: u64 = 1 << 20;

/// Most entries an aggregate answer may hold (reduced cells with `axis=`, bins, buckets).
pub const MAX_RESULT_ENTRIES: u64 = 1_000_000;

/// Reductions stopped because their client went away, since the process started.
static CANCELLED: AtomicU64 = AtomicU64::new(0);

/// How many reductions stopped early because their client disconnected (for tests and logs).
pub fn cancelled_count() -> u64 {
    CANCELLED.load(Ordering::Relaxed)
}

/// Why an aggregate could not be computed. [`ReduceError::code`] is the HTTP error code.
#[derive(Debug, thiserror::Error)]
pub enum ReduceError {
    /// Complex data: aggregates are not defined for it yet (README "Aggregates").
    #[error("aggregates of {0} data are not supported")]
    UnsupportedDtype(String),
    /// An `ops=` entry that is not one of `count,sum,mean,min,max,std,var`.
    #[error("unknown op {0:?}; ops are count,sum,mean,min,max,std,var")]
    BadOp(String),
    /// `axis=` that does not parse or is outside the selection's output dimensions.
    #[error("axis {axis:?} is out of range for a {ndim}-d selection")]
    BadAxis {
        /// The axis as written.
        axis: String,
        /// Dimensions of the selection's output.
        ndim: usize,
    },
    /// `ddof=` that is not a non-negative integer.
    #[error("ddof must be a non-negative integer, not {0:?}")]
    BadDdof(String),
    /// `nan=` other than `propagate` or `ignore`.
    #[error("nan must be propagate or ignore, not {0:?}")]
    BadNan(String),
    /// `bins=` outside `1..=1,000,000` or not an integer.
    #[error("bins must be an integer from 1 to {MAX_RESULT_ENTRIES}, not {0:?}")]
    BadBins(String),
    /// `range=` that is not `lo,hi` with finite `lo <= hi`.
    #[error("bad range {0:?}: expected lo,hi with finite lo <= hi")]
    BadRange(String),
    /// `buckets=` outside `1..=1,000,000` or not an integer.
    #[error("buckets must be an integer from 1 to {MAX_RESULT_ENTRIES}, not {0:?}")]
    BadBuckets(String),
    /// `/downsample` of a selection whose output is not 1-d.
    #[error("downsample needs a 1-d selection; this one has shape {0:?}")]
    Not1d(Vec<u64>),
    /// The answer would hold more than [`MAX_RESULT_ENTRIES`] entries.
    #[error("the answer would hold {0} entries, over the limit of {MAX_RESULT_ENTRIES}")]
    TooLarge(u64),
    /// The cancel flag was set: the client went away.
    #[error("cancelled: the client went away")]
    Cancelled,
    /// The data file shrank under its map.
    #[error("data file of {dataset:?} can no longer be read: {source}")]
    Unreadable {
        /// Dataset name.
        dataset: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ReduceError {
    /// The stable error code of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            ReduceError::UnsupportedDtype(_) => "unsupported_dtype",
            ReduceError::BadOp(_) => "bad_op",
            ReduceError::BadAxis { .. } => "bad_axis",
            ReduceError::BadDdof(_) => "bad_ddof",
            ReduceError::BadNan(_) => "bad_nan",
            ReduceError::BadBins(_) => "bad_bins",
            ReduceError::BadRange(_) => "bad_range",
            ReduceError::BadBuckets(_) => "bad_buckets",
            ReduceError::Not1d(_) => "not_1d",
            ReduceError::TooLarge(_) => "too_large",
            ReduceError::Cancelled => "cancelled",
            ReduceError::Unreadable { .. } => "data_unreadable",
        }
    }

    /// True for failures of the server or its data, false for bad requests.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            ReduceError::Cancelled | ReduceError::Unreadable { .. }
        )
    }
}

/// What a reducer reads: a selection of a dataset, and the flag that stops it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The dataset whose map is read.
    pub dataset: &'a Dataset,
    /// The selection, already parsed against the dataset's shape.
    pub selection: &'a Selection,
    /// Set (by the HTTP layer) when the client went away; checked between blocks.
    pub cancel: &'a AtomicBool,
}

impl Source<'_> {
    /// Refuses dtypes the aggregates do not support (complex).
    ///
    /// # Errors
    /// [`ReduceError::UnsupportedDtype`] for `c8`/`c16` data.
    pub fn check_dtype(&self) -> Result<(), ReduceError> {
        if self.dataset.dtype.scalar.is_complex() {
            return Err(ReduceError::UnsupportedDtype(self.dataset.dtype.descr()));
        }
        Ok(())
    }

    /// Which typed buffer this dataset's elements decode into.
    pub(crate) fn kind(&self) -> Kind {
        Kind::of(self.dataset.dtype.scalar)
    }

    /// Called before each block is decoded: stops on the cancel flag, and on a poisoned map
    /// (the block may hold the zeros the SIGBUS guard mapped in; see [`crate::sigbus`]).
    fn cancelled(&self) -> Result<(), ReduceError> {
        if self.cancel.load(Ordering::Relaxed) {
            CANCELLED.fetch_add(1, Ordering::Relaxed);
            return Err(ReduceError::Cancelled);
        }
        self.check_poisoned()
    }

    fn check_poisoned(&self) -> Result<(), ReduceError> {
        self.dataset
            .check_poisoned()
            .map_err(|source| ReduceError::Unreadable {
                dataset: self.dataset.name.clone(),
                source,
            })
    }

    fn check_len(&self) -> Result<(), ReduceError> {
        self.dataset
            .check_len()
            .map_err(|source| ReduceError::Unreadable {
                dataset: self.dataset.name.clone(),
                source,
            })
    }
}

/// Runs `each` over up to `threads` pieces of the selection of `src`, one thread per piece, and
/// returns the results in output order. The pieces split the selection along its first axis
/// longer than one (see [`Selection::split`]), so each is contiguous in output order; `each`
/// also gets the output position of its piece's first element.
///
/// # Errors
/// The first error of a piece, in piece order.
pub(crate) fn in_parts<T: Send>(
    src: &Source<'_>,
    threads: usize,
    each: impl Fn(&Source<'_>, u64) -> Result<T, ReduceError> + Sync,
) -> Result<Vec<T>, ReduceError> {
    if threads <= 1 || src.selection.n_elems() < MIN_SPLIT_ELEMS {
        return Ok(vec![each(src, 0)?]);
    }
    let parts = src.selection.split(threads as u64);
    let each = &each;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|(selection, first)| {
                let part = Source { selection, ..*src };
                scope.spawn(move || each(&part, *first))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The map offsets of the selection's output rows of `row_len` elements, in output order, when
/// each row is one contiguous range of the map: the planner's blocks hold whole rows (C-order
/// data whose selection takes its last axes whole, such as rows of a matrix). `None`
/// otherwise. Reducers that read such rows themselves make the checks of [`ReadChecks`].
pub(crate) fn contiguous_rows<'s>(
    src: &Source<'s>,
    row_len: u64,
) -> Option<impl Iterator<Item = usize> + 's> {
    let layout = src.dataset.layout();
    let runs = plan::runs(src.selection, &layout);
    let row_bytes = row_len.checked_mul(layout.itemsize)?;
    if row_bytes == 0 || runs.max_run_len() % row_bytes != 0 {
        return None;
    }
    Some(runs.flat_map(move |run| {
        (0..run.len / row_bytes).map(move |i| (run.offset + i * row_bytes) as usize)
    }))
}

/// The checks [`walk`] makes between blocks, for a reducer that reads the map itself: before
/// each piece, the cancel flag and the poisoned map; every [`CHECK_BYTES`], the file length;
/// at the end, the poisoned map once more.
pub(crate) struct ReadChecks<'a> {
    src: &'a Source<'a>,
    /// Bytes read since the file length was last checked.
    unchecked: u64,
}

impl<'a> ReadChecks<'a> {
    pub(crate) fn start(src: &'a Source<'a>) -> Result<Self, ReduceError> {
        src.check_dtype()?;
        src.cancelled()?;
        src.check_len()?;
        Ok(ReadChecks { src, unchecked: 0 })
    }

    /// Called before reading the next `len` bytes.
    pub(crate) fn before(&mut self, len: u64) -> Result<(), ReduceError> {
        self.src.cancelled()?;
        if self.unchecked + len > CHECK_BYTES {
            self.src.check_len()?;
            self.unchecked = 0;
        }
        self.unchecked += len;
        Ok(())
    }

    /// Called once everything was read, before the result is used.
    pub(crate) fn finish(self) -> Result<(), ReduceError> {
        self.src.check_poisoned()
    }
}

/// The output axis that [`in_parts`] splits: the first one longer than one.
pub(crate) fn split_axis(selection: &Selection) -> Option<usize> {
    selection.out_shape().iter().position(|&len| len > 1)
}

/// The buffer type elements decode into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `bool` and unsigned integers, as `u64`.
    Unsigned,
    /// Signed integers, as `i64`.
    Signed,
    /// Floats, widened to `f64` (exact for f16 and f32).
    Float,
}

impl Kind {
    fn of(scalar: Scalar) -> Kind {
        match scalar {
            Scalar::Bool | Scalar::U8 | Scalar::U16 | Scalar::U32 | Scalar::U64 => Kind::Unsigned,
            Scalar::I8 | Scalar::I16 | Scalar::I32 | Scalar::I64 => Kind::Signed,
            Scalar::F16 | Scalar::F32 | Scalar::F64 | Scalar::C64 | Scalar::C128 => Kind::Float,
        }
    }
}

/// One decoded block of consecutive selected elements, in output order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Block<'b> {
    /// Bools and unsigned integers.
    U(&'b [u64]),
    /// Signed integers.
    I(&'b [i64]),
    /// Floats.
    F(&'b [f64]),
}

impl<'b> Block<'b> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Block::U(v) => v.len(),
            Block::I(v) => v.len(),
            Block::F(v) => v.len(),
        }
    }

    /// The first `at` elements and the rest.
    pub(crate) fn split_at(self, at: usize) -> (Block<'b>, Block<'b>) {
        match self {
            Block::U(v) => {
                let (a, b) = v.split_at(at);
                (Block::U(a), Block::U(b))
            }
            Block::I(v) => {
                let (a, b) = v.split_at(at);
                (Block::I(a), Block::I(b))
            }
            Block::F(v) => {
                let (a, b) = v.split_at(at);
                (Block::F(a), Block::F(b))
            }
        }
    }
}

/// Decoding buffers, reused across blocks.
struct Buffers {
    u: Vec<u64>,
    i: Vec<i64>,
    f: Vec<f64>,
}

/// Calls `each(first, block)` for the selected elements in output (C) order, in blocks of at
/// most [`BLOCK_ELEMS`]; `first` is the output position of the block's first element.
///
/// # Errors
/// [`ReduceError::Cancelled`] once the cancel flag is set, [`ReduceError::Unreadable`] when the
/// file shrank or the map is poisoned, or the first error `each` returns.
pub(crate) fn walk(
    src: &Source<'_>,
    each: impl FnMut(u64, Block<'_>) -> Result<(), ReduceError>,
) -> Result<(), ReduceError> {
    src.check_dtype()?;
    src.cancelled()?;
    src.check_len()?;
    // Monomorphised per itemsize so element copies and offsets compile to fixed-size moves
    // and shifts.
    match src.dataset.dtype.itemsize() {
        1 => Walker::<1>::new(src).run(each),
        2 => Walker::<2>::new(src).run(each),
        4 => Walker::<4>::new(src).run(each),
        8 => Walker::<8>::new(src).run(each),
        other => unreachable!("no real dtype has itemsize {other}"),
    }?;
    // Blocks decoded straight from the map are checked only before they are read; the last
    // one is checked here, before the caller uses the result.
    src.check_poisoned()
}

/// The state of one walk over elements of `N` bytes.
struct Walker<'a, const N: usize> {
    src: &'a Source<'a>,
    map: &'a [u8],
    bufs: Buffers,
    /// Elements gathered from short runs until a block is full.
    gather: Vec<u8>,
    /// Bytes in `gather`.
    filled: usize,
    /// Output position of the first element in `gather`.
    gather_first: u64,
    /// Output position of the next element.
    pos: u64,
    /// Bytes read since the file length was last checked.
    unchecked: u64,
}

impl<'a, const N: usize> Walker<'a, N> {
    const BLOCK_BYTES: usize = BLOCK_ELEMS * N;

    fn new(src: &'a Source<'a>) -> Self {
        Walker {
            src,
            map: &src.dataset.mapped.bytes,
            bufs: Buffers {
                u: vec![0; BLOCK_ELEMS],
                i: vec![0; BLOCK_ELEMS],
                f: vec![0.0; BLOCK_ELEMS],
            },
            gather: vec![0; Self::BLOCK_BYTES],
            filled: 0,
            gather_first: 0,
            pos: 0,
            unchecked: 0,
        }
    }

    fn run(
        mut self,
        mut each: impl FnMut(u64, Block<'_>) -> Result<(), ReduceError>,
    ) -> Result<(), ReduceError> {
        let layout = self.src.dataset.layout();
        let runs = plan::runs(self.src.selection, &layout);
        let rows = self.src.selection.row_starts();
        match rows {
            // Runs of one element: the fastest output axis is strided. Walk its rows with a
            // fixed stride instead of taking one run per element from the planner.
            Some((starts, k, axis)) if runs.max_run_len() == N as u64 => {
                let stride = layout.strides()[k];
                let delta = i64::try_from(i128::from(axis.step) * i128::from(stride))
                    .expect("element distance fits the array");
                for run in plan::runs(&starts, &layout) {
                    for e in 0..run.len / N as u64 {
                        self.row(run.offset + e * N as u64, delta, axis.len, &mut each)?;
                    }
                }
            }
            _ => {
                for run in runs {
                    self.bytes(run.offset, run.len, &mut each)?;
                }
            }
        }
        if self.filled > 0 {
            self.flush(&mut each)?;
        }
        Ok(())
    }

    /// Before `len` more bytes are read: the file's length is checked (an `fstat`) once every
    /// [`CHECK_BYTES`], so a file truncated under the map fails the reduction.
    fn check_length_every(&mut self, len: u64) -> Result<(), ReduceError> {
        if self.unchecked + len > CHECK_BYTES {
            self.src.check_len()?;
            self.unchecked = 0;
        }
        self.unchecked += len;
        Ok(())
    }

    fn flush(
        &mut self,
        each: &mut impl FnMut(u64, Block<'_>) -> Result<(), ReduceError>,
    ) -> Result<(), ReduceError> {
        self.src.cancelled()?;
        let dtype = self.src.dataset.dtype;
        let block = decode(
            dtype.scalar,
            dtype.is_swapped(),
            &self.gather[..self.filled],
            &mut self.bufs,
        );
        let first = self.gather_first;
        self.filled = 0;
        each(first, block)
    }

    /// `n` elements from `offset`, `delta` bytes apart.
    fn row(
        &mut self,
        offset: u64,
        delta: i64,
        n: u64,
        each: &mut impl FnMut(u64, Block<'_>) -> Result<(), ReduceError>,
    ) -> Result<(), ReduceError> {
        self.check_length_every(n * N as u64)?;
        let mut at = offset as i64;
        let mut left = n;
        while left > 0 {
            if self.filled == 0 {
                self.gather_first = self.pos;
            }
            let room = ((Self::BLOCK_BYTES - self.filled) / N) as u64;
            let take = room.min(left);
            let out = &mut self.gather[self.filled..self.filled + take as usize * N];
            for slot in out.chunks_exact_mut(N) {
                let o = at as usize;
                let element: &[u8; N] = self.map[o..o + N].try_into().expect("N bytes");
                slot.copy_from_slice(element);
                at += delta;
            }
            self.filled += take as usize * N;
            self.pos += take;
            left -= take;
            if self.filled == Self::BLOCK_BYTES {
                self.flush(each)?;
            }
        }
        Ok(())
    }

    /// The `len` contiguous bytes at `offset`.
    fn bytes(
        &mut self,
        offset: u64,
        len: u64,
        each: &mut impl FnMut(u64, Block<'_>) -> Result<(), ReduceError>,
    ) -> Result<(), ReduceError> {
        self.check_length_every(len)?;
        let map = self.map;
        let mut bytes = &map[offset as usize..(offset + len) as usize];
        while !bytes.is_empty() {
            if self.filled == 0 && bytes.len() >= Self::BLOCK_BYTES {
                // Whole blocks straight from the map, without a copy.
                let (head, rest) = bytes.split_at(Self::BLOCK_BYTES);
                self.src.cancelled()?;
                let dtype = self.src.dataset.dtype;
                let block = decode(dtype.scalar, dtype.is_swapped(), head, &mut self.bufs);
                each(self.pos, block)?;
                self.pos += BLOCK_ELEMS as u64;
                bytes = rest;
                continue;
            }
            if self.filled == 0 {
                self.gather_first = self.pos;
            }
            let n = (Self::BLOCK_BYTES - self.filled).min(bytes.len());
            self.gather[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            self.pos += (n / N) as u64;
            bytes = &bytes[n..];
            if self.filled == Self::BLOCK_BYTES {
                self.flush(each)?;
            }
        }
        Ok(())
    }
}

/// Decodes `bytes` (whole elements of `scalar`) into the matching buffer: the one `match` on
/// the dtype that every reducer goes through.
fn decode<'b>(scalar: Scalar, swapped: bool, bytes: &[u8], bufs: &'b mut Buffers) -> Block<'b> {
    let n = bytes.len() / scalar.itemsize();
    match scalar {
        Scalar::Bool => {
            let out = &mut bufs.u[..n];
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = u64::from(b != 0);
            }
            Block::U(out)
        }
        Scalar::U8 => {
            decode_u::<u8>(bytes, swapped, &mut bufs.u[..n]);
            Block::U(&bufs.u[..n])
        }
        Scalar::U16 => {
            decode_u::<u16>(bytes, swapped, &mut bufs.u[..n]);
            Block::U(&bufs.u[..n])
        }
        Scalar::U32 => {
            decode_u::<u32>(bytes, swapped, &mut bufs.u[..n]);
            Block::U(&bufs.u[..n])
        }
        Scalar::U64 => {
            decode_u::<u64>(bytes, swapped, &mut bufs.u[..n]);
            Block::U(&bufs.u[..n])
        }
        Scalar::I8 => {
            decode_i::<i8>(bytes, swapped, &mut bufs.i[..n]);
            Block::I(&bufs.i[..n])
        }
        Scalar::I16 => {
            decode_i::<i16>(bytes, swapped, &mut bufs.i[..n]);
            Block::I(&bufs.i[..n])
        }
        Scalar::I32 => {
            decode_i::<i32>(bytes, swapped, &mut bufs.i[..n]);
            Block::I(&bufs.i[..n])
        }
        Scalar::I64 => {
            decode_i::<i64>(bytes, swapped, &mut bufs.i[..n]);
            Block::I(&bufs.i[..n])
        }
        Scalar::F16 => {
            decode_f::<f16>(bytes, swapped, &mut bufs.f[..n]);
            Block::F(&bufs.f[..n])
        }
        Scalar::F32 => {
            decode_f::<f32>(bytes, swapped, &mut bufs.f[..n]);
            Block::F(&bufs.f[..n])
        }
        Scalar::F64 => {
            decode_f::<f64>(bytes, swapped, &mut bufs.f[..n]);
            Block::F(&bufs.f[..n])
        }
        // `walk` refuses complex data before reading anything.
        Scalar::C64 | Scalar::C128 => unreachable!("complex data is refused by check_dtype"),
    }
}

#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn decode_u<E: Element + Into<u64>>(bytes: &[u8], swapped: bool, out: &mut [u64]) {
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(E::SIZE)) {
        *o = E::decode(c, swapped).into();
    }
}

#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn decode_i<E: Element + Into<i64>>(bytes: &[u8], swapped: bool, out: &mut [i64]) {
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(E::SIZE)) {
        *o = E::decode(c, swapped).into();
    }
}

#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn decode_f<E: Element + Into<f64>>(bytes: &[u8], swapped: bool, out: &mut [f64]) {
    // Branch outside the loop so each loop vectorises (the byte swap becomes a shuffle).
    if swapped {
        for (o, c) in out.iter_mut().zip(bytes.chunks_exact(E::SIZE)) {
            *o = E::decode(c, true).into();
        }
    } else {
        for (o, c) in out.iter_mut().zip(bytes.chunks_exact(E::SIZE)) {
            *o = E::decode(c, false).into();
        }
    }
}

/// One value of an aggregate answer, kept in the type it is printed as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// No value: an empty or all-NaN reduction.
    Null,
    /// A bool (bool min and max, as NumPy returns them).
    Bool(bool),
    /// An exact integer: counts, integer sums, integer min and max.
    Int(i128),
    /// A float16 element, printed shortest for float16.
    F16(f16),
    /// A float32 element, printed shortest for float32.
    F32(f32),
    /// A float64 result or element.
    F64(f64),
}

impl Num {
    /// An element value `v` (decoded into a `Kind` buffer) as the stored scalar type prints it.
    pub(crate) fn element(scalar: Scalar, v: Value) -> Num {
        match (scalar, v) {
            (Scalar::Bool, Value::U(u)) => Num::Bool(u != 0),
            (_, Value::U(u)) => Num::Int(i128::from(u)),
            (_, Value::I(i)) => Num::Int(i128::from(i)),
            (Scalar::F16, Value::F(f)) => Num::F16(f16::from_f64(f)),
            (Scalar::F32, Value::F(f)) => Num::F32(f as f32),
            (_, Value::F(f)) => Num::F64(f),
        }
    }

    /// Appends the JSON text of the value: integers exact, floats shortest round-trip for their
    /// type, NaN and ±Inf as `null` or strings per `style`.
    pub fn write_json(self, out: &mut Vec<u8>, style: Style) {
        match self {
            Num::Null => out.extend_from_slice(b"null"),
            Num::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Num::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            Num::F16(v) => v.write(out, style),
            Num::F32(v) => v.write(out, style),
            Num::F64(v) => v.write(out, style),
        }
    }
}

/// A decoded element, as it sits in its block buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    U(u64),
    I(i64),
    F(f64),
}

/// Appends `values` as JSON nested lists of `shape` (a bare value for a 0-d shape).
pub(crate) fn write_nested(out: &mut Vec<u8>, shape: &[u64], values: &[Num], style: Style) {
    fn rec(out: &mut Vec<u8>, shape: &[u64], values: &[Num], style: Style) {
        let Some((&len, inner)) = shape.split_first() else {
            values[0].write_json(out, style);
            return;
        };
        let step: u64 = inner.iter().product();
        out.push(b'[');
        for i in 0..len {
            if i > 0 {
                out.push(b',');
            }
            let from = (i * step) as usize;
            rec(out, inner, &values[from..from + step as usize], style);
        }
        out.push(b']');
    }
    rec(out, shape, values, style);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::registry::Registry;

    /// A registry over a temp dir holding one `.npy` named `a` of `dtype`/`shape` with `data`.
    pub(crate) fn dataset(
        dtype: &str,
        shape: &[u64],
        data: &[u8],
    ) -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let dtype = crate::dtype::DType::parse(dtype).unwrap();
        let mut bytes = crate::npy::write_header(dtype, shape);
        bytes.extend_from_slice(data);
        std::fs::write(dir.path().join("a.npy"), bytes).unwrap();
        let (registry, skipped) = Registry::scan(dir.path()).unwrap();
        assert!(skipped.is_empty());
        (dir, registry)
    }

    /// Runs `reduce` over the selection `slice` of dataset `a` of `registry`.
    pub(crate) fn over<T>(
        registry: &Registry,
        slice: &str,
        reduce: impl FnOnce(&Source<'_>) -> Result<T, ReduceError>,
    ) -> T {
        let ds = registry.get("a").unwrap();
        let selection = Selection::parse(slice, &ds.shape).unwrap();
        let cancel = AtomicBool::new(false);
        let src = Source {
            dataset: &ds,
            selection: &selection,
            cancel: &cancel,
        };
        reduce(&src).unwrap()
    }

    /// 1.2 million float32 values, over the threshold that splits a walk across threads,
    /// with NaNs and infinities among them.
    pub(crate) fn big_f32() -> (u64, Vec<u8>) {
        let n = 1_200_000u64;
        let data = (0..n)
            .flat_map(|i| {
                let v = match i % 997 {
                    0 => f32::NAN,
                    1 if i % 3 == 0 => f32::INFINITY,
                    _ => ((i as f32) * 0.37).sin() * 100.0,
                };
                v.to_le_bytes()
            })
            .collect();
        (n, data)
    }

    #[test]
    fn nums_print_exactly() {
        let text = |n: Num| {
            let mut out = Vec::new();
            n.write_json(&mut out, Style::JsonNull);
            String::from_utf8(out).unwrap()
        };
        let big = i128::from(u64::MAX) * 3;
        assert_eq!(text(Num::Int(big)), big.to_string());
        assert_eq!(text(Num::Int(i128::MIN)), i128::MIN.to_string());
        assert_eq!(text(Num::F32(0.1)), "0.1");
        assert_eq!(
            text(Num::element(Scalar::F32, Value::F(0.1f32.into()))),
            "0.1"
        );
        assert_eq!(
            text(Num::element(
                Scalar::F16,
                Value::F(f16::from_f32(0.1).into())
            )),
            "0.1"
        );
        assert_eq!(text(Num::F64(f64::NAN)), "null");
        assert_eq!(text(Num::element(Scalar::Bool, Value::U(1))), "true");
    }

    #[test]
    fn nested_lists_follow_the_shape() {
        let values: Vec<Num> = (0..6).map(Num::Int).collect();
        let mut out = Vec::new();
        write_nested(&mut out, &[2, 3], &values, Style::JsonNull);
        assert_eq!(out, b"[[0,1,2],[3,4,5]]");
        out.clear();
        write_nested(&mut out, &[], &values[..1], Style::JsonNull);
        assert_eq!(out, b"0");
        out.clear();
        write_nested(&mut out, &[0], &[], Style::JsonNull);
        assert_eq!(out, b"[]");
    }
}
