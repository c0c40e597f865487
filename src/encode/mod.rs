//! Encoders: a selection's runs turned into body chunks in one of the `/data` formats
//! (README "API"), plus content negotiation.
//!
//! [`Producer`] is the one producer every streamed body goes through: `/data` in any format
//! ([`Producer::new`]) and `/raw` byte ranges with literal pieces (multipart part headers)
//! between them ([`Producer::raw`]), through the same chunker and guards. It is pulled, a
//! chunk at a time ([`Producer::next_chunk`]): the encoders keep their place between chunks
//! (the run they are in, the output index their separators need), so a body waiting for a
//! slow client is a small struct, not a thread. `next_chunk` is synchronous and may fault
//! pages in, so callers run it off the async workers.

mod bin;
mod negotiate;
pub mod number;
mod text;

use std::collections::VecDeque;
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

/// What to encode: everything the producer needs, owned, so it can move to the blocking pool.
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
        let data = self.data_bytes();
        match self.format {
            Format::Bin => Some(data),
            Format::Npy => Some(self.npy_header().len() as u64 + data),
            Format::Json | Format::Csv => None,
        }
    }

    /// Bytes of the selected elements as stored.
    fn data_bytes(&self) -> u64 {
        self.selection.n_elems() * self.dataset.dtype.itemsize() as u64
    }

    fn npy_header(&self) -> Vec<u8> {
        crate::npy::write_header(self.dataset.dtype, &self.selection.out_shape())
    }
}

/// Why a body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The data file shrank under its map, or its pages could not be read.
    #[error("data file of {dataset:?} can no longer be read: {source}")]
    Unreadable {
        /// Dataset name.
        dataset: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Collects encoded bytes into chunks of at most `limit` bytes, queued for the body.
pub(crate) struct Chunker {
    /// Allocated on first use only: a zero-copy body never copies, and a stalled client's
    /// body should cost no buffer (thousands of them may wait at once).
    buf: Vec<u8>,
    /// What `buf` is given when it is first needed: the last chunk's size, at most `limit`.
    capacity: usize,
    limit: usize,
    /// Whether the file length was checked since the last chunk went out.
    checked: bool,
    /// `Job::madvise`.
    madvise: bool,
    dataset: Arc<Dataset>,
    /// Finished chunks, oldest first.
    ready: VecDeque<Bytes>,
}

impl Chunker {
    fn new(dataset: Arc<Dataset>, chunk_bytes: usize, madvise: bool, capacity: usize) -> Self {
        let limit = chunk_bytes.max(1);
        Chunker {
            buf: Vec::new(),
            capacity: limit.min(capacity),
            limit,
            checked: false,
            madvise,
            dataset,
            ready: VecDeque::new(),
        }
    }

    /// The buffer to append encoded bytes to; call [`Chunker::flush_if_full`] after.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.capacity);
        }
        &mut self.buf
    }

    /// The buffer and the dataset together, for encoders that read one into the other.
    pub(crate) fn buf_and_dataset(&mut self) -> (&mut Vec<u8>, &Dataset) {
        self.buf();
        (&mut self.buf, &self.dataset)
    }

    /// Whether a finished chunk waits: where an encoder's step ends.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Queues the buffer once it holds `limit` bytes or more.
    pub(crate) fn flush_if_full(&mut self) -> Result<(), EncodeError> {
        if self.buf.len() >= self.limit {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues whatever is buffered.
    pub(crate) fn flush(&mut self) -> Result<(), EncodeError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.capacity = self.limit.min(self.buf.capacity());
        let chunk = std::mem::take(&mut self.buf);
        self.send(Bytes::from(chunk))
    }

    /// Queues one ready-made chunk (a zero-copy slice of the map) after the buffered bytes.
    ///
    /// Every chunk passes here, so this is where a poisoned map stops the body: a chunk
    /// copied or decoded from it may hold the zeros the SIGBUS guard mapped in, and is never
    /// sent.
    pub(crate) fn send(&mut self, chunk: Bytes) -> Result<(), EncodeError> {
        self.dataset
            .check_poisoned()
            .map_err(|source| self.unreadable(source))?;
        self.checked = false;
        self.ready.push_back(chunk);
        Ok(())
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

/// A body's encoding, resumable: each step does a bounded amount of work.
pub(crate) trait Steps: Send {
    /// Encodes until a chunk is ready in `chunker` or the body is complete; true when
    /// complete (what is left in the chunker's buffer is then the last chunk).
    fn step(&mut self, chunker: &mut Chunker) -> Result<bool, EncodeError>;
}

/// A body being produced, a chunk at a time; see the module documentation.
pub struct Producer {
    chunker: Chunker,
    steps: Box<dyn Steps>,
    started: bool,
    done: bool,
}

impl Producer {
    /// The producer of a `/data` body.
    pub fn new(job: &Job) -> Producer {
        Producer::with_capacity(job, STREAM_START_CAPACITY)
    }

    fn with_capacity(job: &Job, capacity: usize) -> Producer {
        let mut chunker = Chunker::new(
            Arc::clone(&job.dataset),
            job.chunk_bytes,
            job.madvise,
            capacity,
        );
        let runs = plan::runs(&job.selection, &job.dataset.layout());
        let steps: Box<dyn Steps> = match job.format {
            Format::Bin => Box::new(bin::BinSteps::new(runs)),
            Format::Npy => {
                chunker.buf().extend_from_slice(&job.npy_header());
                Box::new(bin::BinSteps::new(runs))
            }
            Format::Json => text::steps(job, runs, job.json_style),
            Format::Csv => text::steps(job, runs, Style::Csv),
        };
        Producer {
            chunker,
            steps,
            started: false,
            done: false,
        }
    }

    /// The producer of a `/raw` body: `pieces` of `dataset`'s file, in order.
    pub fn raw(
        dataset: Arc<Dataset>,
        pieces: Vec<Piece>,
        chunk_bytes: usize,
        madvise: bool,
    ) -> Producer {
        Producer {
            chunker: Chunker::new(dataset, chunk_bytes, madvise, STREAM_START_CAPACITY),
            steps: Box::new(bin::RawSteps::new(pieces)),
            started: false,
            done: false,
        }
    }

    /// The next chunk of the body, `None` after the last.
    ///
    /// # Errors
    /// [`EncodeError::Unreadable`] when the data file was truncated under the map; the body
    /// must then be cut, not ended.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, EncodeError> {
        loop {
            if let Some(chunk) = self.chunker.ready.pop_front() {
                return Ok(Some(chunk));
            }
            if self.done {
                return Ok(None);
            }
            if !self.started {
                self.started = true;
                self.chunker.guard()?;
            }
            if self.steps.step(&mut self.chunker)? {
                self.chunker.flush()?;
                self.done = true;
            }
        }
    }
}

/// Largest body [`produce_inline`] builds on the calling thread, in bytes.
pub const INLINE_MAX_BYTES: u64 = 64 * 1024;

/// Largest span of the file, first run to last, that [`produce_inline`] checks for residency.
const INLINE_MAX_SPAN: u64 = 1 << 20;

/// Encodes a small body at once, on the calling (async) thread, when that cannot block:
/// the answer is at most [`INLINE_MAX_BYTES`] and every page it reads is already in memory.
/// Returns `None` when either is not so; the caller then streams it with a [`Producer`].
///
/// A small selection is most requests a dashboard makes; a thread hop and a channel cost
/// more than encoding it.
///
/// # Errors
/// As [`Producer::next_chunk`].
pub fn produce_inline(job: &Job) -> Option<Result<Bytes, EncodeError>> {
    let estimate = match job.format {
        Format::Bin | Format::Npy => job.data_bytes(),
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
    let header = if job.format == Format::Npy { 128 } else { 0 };
    let mut producer = Producer::with_capacity(job, estimate as usize + header);
    // mincore found every page resident, which also means the file still covers them: a
    // truncated file's pages leave the page cache. No `fstat` needed.
    producer.chunker.checked = true;
    producer.started = true;
    let mut chunks = Vec::new();
    loop {
        match producer.next_chunk() {
            Ok(Some(chunk)) => chunks.push(chunk),
            Ok(None) => break,
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => chunks.concat().into(),
    }))
}

/// First capacity of a streamed chunk buffer; it grows to `--chunk-bytes` as needed.
const STREAM_START_CAPACITY: usize = 64 * 1024;

/// One piece of a `/raw` body.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes sent as they are: the part headers and closing boundary of a multipart answer.
    Literal(Bytes),
    /// A run of the data file, sent like `bin` sends one: large runs as zero-copy slices of the
    /// map in chunks of at most `chunk_bytes`, each populated on the producer's thread first.
    Run(Run),
}
