//! Encoders: a selection's runs turned into body chunks in one of the `/data` formats
//! (README "API"), plus content negotiation.
//!
//! [`produce`] is the one producer every `/data` body goes through. It is synchronous and may
//! fault pages in, so callers run it off the async workers; it hands each finished chunk to
//! an `emit` callback, and stops as soon as `emit` reports the client gone. [`produce_raw`] is
//! its sibling for `/raw`: byte ranges of the file, with literal pieces (multipart part
//! headers) between them, through the same chunker and guards.

mod bin;
mod negotiate;
pub mod number;
mod text;

use std::sync::Arc;

use bytes::Bytes;

use crate::dataset::Dataset;
use crate::plan::{self, Run};
use crate::selection::Selection;

pub use negotiate::{negotiate, FormatError};
pub use number::Style;

/// A `/data` response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Nested lists; the default.
    Json,
    /// One row a line.
    Csv,
    /// Raw bytes of the elements, as stored.
    Bin,
    /// A `.npy` file.
    Npy,
}

impl Format {
    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Bin => "application/octet-stream",
            Format::Npy => "application/x-npy",
        }
    }

    /// The `format=` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Bin => "bin",
            Format::Npy => "npy",
        }
    }
}

/// What to encode: everything the producer needs, owned, so it can move to a blocking thread.
#[derive(Debug)]
pub struct Job {
    /// The dataset read.
    pub dataset: Arc<Dataset>,
    /// The parsed selection.
    pub selection: Selection,
    /// Output format.
    pub format: Format,
    /// Spelling of non-finite values in JSON (`Style::JsonNull` or `Style::JsonString`).
    pub json_style: Style,
    /// Upper bound of one chunk, in bytes.
    pub chunk_bytes: usize,
    /// Whether zero-copy chunks are faulted in before they are handed over.
    pub madvise: bool,
}

impl Job {
    /// The exact body length for `bin` and `npy` (whose sizes are known before the first
    /// byte); `None` for the text formats.
    pub fn content_length(&self) -> Option<u64> {
        let data = self.selection.n_elems() * self.dataset.dtype.itemsize() as u64;
        match self.format {
            Format::Bin => Some(data),
            Format::Npy => Some(self.npy_header().len() as u64 + data),
            Format::Json | Format::Csv => None,
        }
    }

    fn npy_header(&self) -> Vec<u8> {
        crate::npy::write_header(self.dataset.dtype, &self.selection.out_shape())
    }
}

/// Why a body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The client went away; nothing to report to anyone.
    #[error("client disconnected")]
    Disconnected,
    /// The data file shrank under its map, or its pages could not be read.
    #[error("data file of {dataset:?} can no longer be read: {source}")]
    Unreadable {
        /// Dataset name.
        dataset: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Collects encoded bytes into chunks of at most `limit` bytes and hands them to `emit`.
pub(crate) struct Chunker<'a> {
    buf: Vec<u8>,
    limit: usize,
    /// Whether the file length was checked since the last chunk went out.
    checked: bool,
    /// `Job::madvise`.
    madvise: bool,
    dataset: &'a Dataset,
    emit: &'a mut dyn FnMut(Bytes) -> bool,
}

impl<'a> Chunker<'a> {
    fn new(job: &'a Job, emit: &'a mut dyn FnMut(Bytes) -> bool, capacity: usize) -> Self {
        Chunker::over(&job.dataset, job.chunk_bytes, job.madvise, emit, capacity)
    }

    fn over(
        dataset: &'a Dataset,
        chunk_bytes: usize,
        madvise: bool,
        emit: &'a mut dyn FnMut(Bytes) -> bool,
        capacity: usize,
    ) -> Self {
        let limit = chunk_bytes.max(1);
        Chunker {
            buf: Vec::with_capacity(limit.min(capacity)),
            limit,
            checked: false,
            madvise,
            dataset,
            emit,
        }
    }

    /// The buffer to append encoded bytes to; call [`Chunker::flush_if_full`] after.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Sends the buffer once it holds `limit` bytes or more.
    pub(crate) fn flush_if_full(&mut self) -> Result<(), EncodeError> {
        if self.buf.len() >= self.limit {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends whatever is buffered.
    pub(crate) fn flush(&mut self) -> Result<(), EncodeError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = Vec::with_capacity(self.limit.min(self.buf.capacity()));
        let chunk = std::mem::replace(&mut self.buf, next);
        self.send(Bytes::from(chunk))
    }

    /// Sends one ready-made chunk (a zero-copy slice of the map) after the buffered bytes.
    ///
    /// Every chunk passes here, so this is where a poisoned map stops the body: a chunk
    /// copied or decoded from it may hold the zeros the SIGBUS guard mapped in, and is never
    /// sent.
    pub(crate) fn send(&mut self, chunk: Bytes) -> Result<(), EncodeError> {
        self.dataset
            .check_poisoned()
            .map_err(|source| self.unreadable(source))?;
        self.checked = false;
        if (self.emit)(chunk) {
            Ok(())
        } else {
            Err(EncodeError::Disconnected)
        }
    }

    /// Fails when the data file shrank since it was mapped or the map is poisoned, before
    /// anything more is read. Cheap to call per run: it costs one `fstat` per chunk.
    pub(crate) fn guard(&mut self) -> Result<(), EncodeError> {
        if !self.checked {
            self.dataset
                .check_len()
                .map_err(|source| self.unreadable(source))?;
            self.checked = true;
        }
        Ok(())
    }

    /// Starts reading `[offset, offset+len)` ahead, without waiting (a hint).
    pub(crate) fn prefetch(&self, offset: u64, len: u64) {
        if self.madvise && len > 0 {
            self.dataset.prefetch(offset, len);
        }
    }

    /// Faults `[offset, offset+len)` in before it is read or handed to the socket.
    pub(crate) fn populate(&self, offset: u64, len: u64) -> Result<(), EncodeError> {
        if !self.madvise {
            return Ok(());
        }
        self.dataset
            .populate(offset, len)
            .map_err(|source| self.unreadable(source))
    }

    fn unreadable(&self, source: std::io::Error) -> EncodeError {
        EncodeError::Unreadable {
            dataset: self.dataset.name.clone(),
            source,
        }
    }
}

/// Largest body [`produce_inline`] builds on the calling thread, in bytes.
pub const INLINE_MAX_BYTES: u64 = 64 * 1024;

/// Largest span of the file, first run to last, that [`produce_inline`] checks for residency.
const INLINE_MAX_SPAN: u64 = 1 << 20;

/// Encodes a small body at once, on the calling (async) thread, when that cannot block:
/// the answer is at most [`INLINE_MAX_BYTES`] and every page it reads is already in memory.
/// Returns `None` when either is not so; the caller then streams from a blocking thread.
///
/// A small selection is most requests a dashboard makes; a thread hop and a channel cost
/// more than encoding it.
///
/// # Errors
/// As [`produce`].
pub fn produce_inline(job: &Job) -> Option<Result<Bytes, EncodeError>> {
    let data_bytes = job.selection.n_elems() * job.dataset.dtype.itemsize() as u64;
    let estimate = match job.format {
        Format::Bin | Format::Npy => data_bytes,
        // Text is at most ~25 bytes an element (a complex128 in JSON is more; it is rare).
        Format::Json | Format::Csv => job.selection.n_elems().saturating_mul(25),
    };
    if estimate > INLINE_MAX_BYTES {
        return None;
    }
    let mut lo = u64::MAX;
    let mut hi = 0;
    for run in plan::runs(&job.selection, &job.dataset.layout()) {
        lo = lo.min(run.offset);
        hi = hi.max(run.offset + run.len);
    }
    if hi > lo && (hi - lo > INLINE_MAX_SPAN || !job.dataset.is_resident(lo, hi - lo)) {
        return None;
    }
    let mut chunks = Vec::new();
    let mut emit = |chunk| {
        chunks.push(chunk);
        true
    };
    let header = if job.format == Format::Npy { 128 } else { 0 };
    let mut chunker = Chunker::new(job, &mut emit, estimate as usize + header);
    // mincore found every page resident, which also means the file still covers them: a
    // truncated file's pages leave the page cache. No `fstat` needed.
    chunker.checked = true;
    let result = encode_into(job, chunker);
    Some(result.map(|()| match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => chunks.concat().into(),
    }))
}

/// Encodes the whole body of `job`, chunk by chunk, into `emit`; `emit` returns false when
/// the receiver is gone, which stops the work within one chunk.
///
/// # Errors
/// [`EncodeError::Disconnected`] when `emit` refused a chunk; [`EncodeError::Unreadable`] when
/// the data file was truncated under the map.
pub fn produce(job: &Job, emit: &mut dyn FnMut(Bytes) -> bool) -> Result<(), EncodeError> {
    let mut chunker = Chunker::new(job, emit, STREAM_START_CAPACITY);
    chunker.guard()?;
    encode_into(job, chunker)
}

/// First capacity of a streamed chunk buffer; it grows to `--chunk-bytes` as needed.
const STREAM_START_CAPACITY: usize = 64 * 1024;

fn encode_into(job: &Job, mut chunker: Chunker<'_>) -> Result<(), EncodeError> {
    let dataset = &*job.dataset;
    let runs = plan::runs(&job.selection, &dataset.layout());
    match job.format {
        Format::Bin => bin::write(runs, &mut chunker)?,
        Format::Npy => {
            chunker.buf().extend_from_slice(&job.npy_header());
            bin::write(runs, &mut chunker)?;
        }
        Format::Json => text::write(job, runs, job.json_style, &mut chunker)?,
        Format::Csv => text::write(job, runs, Style::Csv, &mut chunker)?,
    }
    chunker.flush()
}

/// One piece of a `/raw` body.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes sent as they are: the part headers and closing boundary of a multipart answer.
    Literal(Bytes),
    /// A run of the data file, sent like `bin` sends one: large runs as zero-copy slices of the
    /// map in chunks of at most `chunk_bytes`, each populated on the producer's thread first.
    Run(Run),
}

/// Sends `pieces` of `dataset`'s file, in order, chunk by chunk, into `emit`.
///
/// # Errors
/// As [`produce`].
pub fn produce_raw(
    dataset: &Dataset,
    pieces: &[Piece],
    chunk_bytes: usize,
    madvise: bool,
    emit: &mut dyn FnMut(Bytes) -> bool,
) -> Result<(), EncodeError> {
    let mut chunker = Chunker::over(dataset, chunk_bytes, madvise, emit, STREAM_START_CAPACITY);
    chunker.guard()?;
    for piece in pieces {
        match piece {
            Piece::Literal(bytes) => {
                chunker.buf().extend_from_slice(bytes);
                chunker.flush_if_full()?;
            }
            Piece::Run(run) => bin::write(std::iter::once(*run), &mut chunker)?,
        }
    }
    chunker.flush()
}
