//! Producing a body from a dataset's file: the read path's I/O policy, in one place.
//!
//! Every answer that reads the map goes through here: `/data` in any format, `/raw` byte
//! ranges and Zarr chunks. A handler plans what to read (the runs of [`crate::plan`], or
//! byte ranges as [`Segment`]s), and a [`Producer`] reads it, a chunk at a time, handing the
//! stored bytes to an [`Encoder`] when the format is not the stored bytes themselves. The
//! policy the producer applies, and nothing else does:
//!
//! - the file is checked (`fstat`) to still cover the array before each chunk is read, and
//!   the map's poisoned flag (see [`crate::sigbus`]) before each chunk is handed over, so a
//!   file truncated under its map cuts the body instead of sending zeros;
//! - long runs of stored bytes go out as zero-copy slices of the map, faulted in here
//!   (`MADV_POPULATE_READ`) with the next windows read ahead (`MADV_WILLNEED`), so the
//!   socket write never takes a page fault on an async worker;
//! - long runs being encoded are read ahead a window at a time and faulted in per step.
//!
//! A producer is pulled ([`Producer::next_chunk`]) and keeps its place between chunks (the
//! run it is in, the encoder's state), so a body waiting for a slow client is a small struct,
//! not a thread. `next_chunk` is synchronous and may fault pages in, so callers run it off
//! the async workers; [`inline`] and [`read_cached`] are the two ways a small answer is made
//! on the async worker without blocking.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use crate::dataset::Dataset;
use crate::encode::Encoder;
use crate::plan::{Run, Runs};

/// Largest answer made at once on the calling (async) thread instead of streamed, in bytes:
/// 16 pages, a copy or an encoding of a few microseconds.
pub const INLINE_MAX_BYTES: u64 = 64 * 1024;

/// Largest span of the file, first run to last, that [`inline`] checks for residency.
const INLINE_MAX_SPAN: u64 = 1 << 20;

/// First capacity of a streamed chunk buffer; it grows to `--chunk-bytes` as needed.
const STREAM_START_CAPACITY: usize = 64 * 1024;

/// Runs of stored bytes at least this long are sent as slices of the map instead of being
/// copied. Below it, a chunk per run would cost more in per-chunk overhead than the copy
/// saves.
const ZERO_COPY_MIN: u64 = 64 * 1024;

/// Chunks read ahead of the one being sent zero-copy, on cold data.
const LOOKAHEAD_CHUNKS: u64 = 4;

/// Runs at least this long are read ahead before they are encoded.
const PREFETCH_MIN_RUN: u64 = 64 * 1024;

/// Bytes of a long run being encoded read ahead at a time (two windows are in flight).
const PREFETCH_WINDOW: u64 = 1 << 20;

/// Why a body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The data file shrank under its map, or its pages could not be read.
    #[error("data file of {dataset:?} can no longer be read: {source}")]
    Unreadable {
        /// Dataset name.
        dataset: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How a producer reads: `--chunk-bytes` and `--madvise`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Upper bound of one chunk, in bytes.
    pub chunk_bytes: usize,
    /// Whether chunks are faulted in (and read ahead) before they are read or handed over.
    pub madvise: bool,
}

/// One piece of a body of stored bytes (`/raw`, Zarr chunks).
#[derive(Debug, Clone)]
pub enum Segment {
    /// A run of the data file, sent as stored.
    File(Run),
    /// Bytes sent as they are: a multipart answer's part headers, a Zarr edge chunk's zeros.
    Literal(Bytes),
}

/// What a producer reads, in order.
#[derive(Debug)]
pub enum Source {
    /// A selection's runs.
    Runs(Runs),
    /// Segments of stored bytes.
    Segments(std::vec::IntoIter<Segment>),
}

impl From<Runs> for Source {
    fn from(runs: Runs) -> Source {
        Source::Runs(runs)
    }
}

impl From<Vec<Segment>> for Source {
    fn from(segments: Vec<Segment>) -> Source {
        Source::Segments(segments.into_iter())
    }
}

impl Source {
    #[inline]
    fn next(&mut self) -> Option<Segment> {
        match self {
            Source::Runs(runs) => runs.next().map(Segment::File),
            Source::Segments(segments) => segments.next(),
        }
    }
}

/// Collects bytes into chunks of at most `limit` bytes, queued for the body, and checks the
/// file on the way (see the module documentation).
struct Chunker {
    /// Allocated on first use only: a zero-copy body never copies, and a stalled client's
    /// body should cost no buffer (thousands of them may wait at once).
    buf: Vec<u8>,
    /// What `buf` is given when it is first needed: the last chunk's size, at most `limit`.
    capacity: usize,
    limit: usize,
    /// Whether the file length was checked since the last chunk went out.
    checked: bool,
    /// `Options::madvise`.
    madvise: bool,
    dataset: Arc<Dataset>,
    /// Finished chunks, oldest first.
    ready: VecDeque<Bytes>,
}

impl Chunker {
    fn new(dataset: Arc<Dataset>, options: Options, capacity: usize) -> Self {
        let limit = options.chunk_bytes.max(1);
        Chunker {
            buf: Vec::new(),
            capacity: limit.min(capacity),
            limit,
            checked: false,
            madvise: options.madvise,
            dataset,
            ready: VecDeque::new(),
        }
    }

    /// The buffer to append bytes to; call [`Chunker::flush_if_full`] after.
    fn buf(&mut self) -> &mut Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.capacity);
        }
        &mut self.buf
    }

    /// The buffer and the dataset together, to read the one into the other.
    fn buf_and_dataset(&mut self) -> (&mut Vec<u8>, &Dataset) {
        self.buf();
        (&mut self.buf, &self.dataset)
    }

    /// Whether a finished chunk waits: where a step ends.
    fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Queues the buffer once it holds `limit` bytes or more.
    fn flush_if_full(&mut self) -> Result<(), ProduceError> {
        if self.buf.len() >= self.limit {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues whatever is buffered.
    fn flush(&mut self) -> Result<(), ProduceError> {
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
    fn send(&mut self, chunk: Bytes) -> Result<(), ProduceError> {
        self.dataset
            .check_poisoned()
            .map_err(|source| self.unreadable(source))?;
        self.checked = false;
        self.ready.push_back(chunk);
        Ok(())
    }

    /// Fails when the data file shrank since it was mapped or the map is poisoned, before
    /// anything more is read. Cheap to call per run: it costs one `fstat` per chunk.
    fn check_file(&mut self) -> Result<(), ProduceError> {
        if !self.checked {
            self.dataset
                .check_len()
                .map_err(|source| self.unreadable(source))?;
            self.checked = true;
        }
        Ok(())
    }

    /// Starts reading `[offset, offset+len)` ahead, without waiting (a hint).
    fn prefetch(&self, offset: u64, len: u64) {
        if self.madvise && len > 0 {
            self.dataset.prefetch(offset, len);
        }
    }

    /// Faults `[offset, offset+len)` in before it is read or handed to the socket.
    fn populate(&self, offset: u64, len: u64) -> Result<(), ProduceError> {
        if !self.madvise {
            return Ok(());
        }
        self.dataset
            .populate(offset, len)
            .map_err(|source| self.unreadable(source))
    }

    fn unreadable(&self, source: std::io::Error) -> ProduceError {
        ProduceError::Unreadable {
            dataset: self.dataset.name.clone(),
            source,
        }
    }
}

/// Where a producer stands inside a run.
#[derive(Debug, Clone, Copy)]
enum InRun {
    /// Stored bytes `[next, end)` of a long run, going out as slices of the map.
    ZeroCopy { next: u64, end: u64 },
    /// A run being encoded, and the bytes of it done.
    Encoding { run: Run, done: u64 },
}

/// A body being produced, a chunk at a time; see the module documentation.
pub struct Producer {
    chunker: Chunker,
    source: Source,
    /// `None`: the body is the stored bytes (and literals) as they are.
    encoder: Option<Box<dyn Encoder>>,
    /// Whether runs go out as stored: no encoder, or one that passes stored bytes through.
    stored: bool,
    in_run: Option<InRun>,
    opened: bool,
    started: bool,
    done: bool,
}

impl Producer {
    /// The producer of `source` read from `dataset`'s file, encoded by `encoder` (`None` for
    /// stored bytes as they are).
    pub fn new(
        dataset: Arc<Dataset>,
        source: Source,
        encoder: Option<Box<dyn Encoder>>,
        options: Options,
    ) -> Producer {
        Producer::with_capacity(dataset, source, encoder, options, STREAM_START_CAPACITY)
    }

    fn with_capacity(
        dataset: Arc<Dataset>,
        source: Source,
        encoder: Option<Box<dyn Encoder>>,
        options: Options,
        capacity: usize,
    ) -> Producer {
        let stored = encoder.as_ref().is_none_or(|e| e.is_stored());
        Producer {
            chunker: Chunker::new(dataset, options, capacity),
            source,
            encoder,
            stored,
            in_run: None,
            opened: false,
            started: false,
            done: false,
        }
    }

    /// The dataset read.
    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.chunker.dataset
    }

    /// The next chunk of the body, `None` after the last.
    ///
    /// # Errors
    /// [`ProduceError::Unreadable`] when the data file was truncated under the map; the body
    /// must then be cut, not ended.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, ProduceError> {
        loop {
            if let Some(chunk) = self.chunker.ready.pop_front() {
                return Ok(Some(chunk));
            }
            if self.done {
                return Ok(None);
            }
            if !self.started {
                self.started = true;
                self.chunker.check_file()?;
            }
            if self.step()? {
                self.chunker.flush()?;
                self.done = true;
            }
        }
    }

    /// Produces until a chunk is ready or the body is complete; true when complete (what is
    /// left in the buffer is then the last chunk).
    fn step(&mut self) -> Result<bool, ProduceError> {
        let chunker = &mut self.chunker;
        if !self.opened {
            if let Some(encoder) = &mut self.encoder {
                // Most bodies open with a few bytes or none (`bin`): the chunk buffer is
                // reserved only for bytes, or every stalled zero-copy stream would hold one.
                let mut head = Vec::new();
                encoder.open(&mut head);
                if !head.is_empty() {
                    chunker.buf().append(&mut head);
                }
            }
            self.opened = true;
        }
        loop {
            match self.in_run {
                Some(InRun::ZeroCopy { next, end }) => {
                    let limit = chunker.limit as u64;
                    let len = limit.min(end - next);
                    chunker.check_file()?;
                    // Read the next windows ahead while this one goes out, then fault this
                    // one in here, off the async workers, so hyper's write from the map never
                    // stalls one on a cold page.
                    let ahead = (end - next - len).min(LOOKAHEAD_CHUNKS * limit);
                    chunker.prefetch(next + len, ahead);
                    chunker.populate(next, len)?;
                    let piece = chunker.dataset.slice(next, len);
                    chunker.send(piece)?;
                    self.in_run = (next + len < end).then_some(InRun::ZeroCopy {
                        next: next + len,
                        end,
                    });
                    return Ok(false);
                }
                Some(InRun::Encoding { run, done }) => {
                    let encoder = self
                        .encoder
                        .as_mut()
                        .expect("only an encoder's runs are encoded");
                    let at = run.offset + done;
                    let len = encoder.step_bytes().min(run.len - done);
                    chunker.check_file()?;
                    if run.len >= PREFETCH_MIN_RUN {
                        // Long runs are read ahead a window at a time and each step faulted
                        // in before it is encoded, so cold data arrives in large reads, ahead
                        // of the encoder.
                        if done % PREFETCH_WINDOW == 0 {
                            let end_exc = run.offset + run.len;
                            chunker.prefetch(at, PREFETCH_WINDOW.min(end_exc - at) * 2);
                        }
                        chunker.populate(at, len)?;
                    }
                    let (buf, dataset) = chunker.buf_and_dataset();
                    encoder.encode(dataset.view(at, len), buf);
                    self.in_run = (done + len < run.len).then_some(InRun::Encoding {
                        run,
                        done: done + len,
                    });
                }
                None => match self.source.next() {
                    None => return finish(&mut self.encoder, chunker),
                    Some(Segment::Literal(bytes)) => chunker.buf().extend_from_slice(&bytes),
                    Some(Segment::File(run)) if !self.stored => {
                        self.in_run = Some(InRun::Encoding { run, done: 0 });
                    }
                    Some(Segment::File(run)) if run.len >= ZERO_COPY_MIN => {
                        chunker.flush()?;
                        self.in_run = Some(InRun::ZeroCopy {
                            next: run.offset,
                            end: run.offset + run.len,
                        });
                    }
                    Some(Segment::File(run)) => {
                        chunker.check_file()?;
                        let (buf, dataset) = chunker.buf_and_dataset();
                        buf.extend_from_slice(dataset.view(run.offset, run.len));
                    }
                },
            }
            chunker.flush_if_full()?;
            if chunker.has_ready() {
                return Ok(false);
            }
        }
    }
}

/// Writes the end of the body a bounded amount at a time; true once all of it is written.
fn finish(
    encoder: &mut Option<Box<dyn Encoder>>,
    chunker: &mut Chunker,
) -> Result<bool, ProduceError> {
    let Some(encoder) = encoder else {
        return Ok(true);
    };
    loop {
        let closed = encoder.close(chunker.buf());
        chunker.flush_if_full()?;
        if closed {
            return Ok(true);
        }
        if chunker.has_ready() {
            return Ok(false);
        }
    }
}

/// Makes a small body at once, on the calling (async) thread, when that cannot block: its
/// `size` (the encoder's estimate) is at most [`INLINE_MAX_BYTES`] and every page `runs`
/// read is already in memory (`mincore`). Returns `None` when either is not so; the caller
/// then streams it with a [`Producer`].
///
/// A small selection is most requests a dashboard makes; a thread hop and a channel cost
/// more than encoding it.
///
/// # Errors
/// As [`Producer::next_chunk`].
pub fn inline(
    dataset: &Arc<Dataset>,
    runs: Runs,
    encoder: Box<dyn Encoder>,
    size: u64,
    options: Options,
) -> Option<Result<Bytes, ProduceError>> {
    if size > INLINE_MAX_BYTES {
        return None;
    }
    let mut lo = u64::MAX;
    let mut hi = 0;
    for run in runs.clone() {
        lo = lo.min(run.offset);
        hi = hi.max(run.offset + run.len);
    }
    if hi > lo && (hi - lo > INLINE_MAX_SPAN || !dataset.is_resident(lo, hi - lo)) {
        return None;
    }
    let mut producer = Producer::with_capacity(
        Arc::clone(dataset),
        runs.into(),
        Some(encoder),
        options,
        size as usize,
    );
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

/// The whole body of `segments` copied from the page cache, or `None` when any of it is not
/// cached. [`Dataset::read_cached`] never waits for the disk and never touches the map, so
/// this is safe on an async worker; callers use it for bodies of at most
/// [`INLINE_MAX_BYTES`] data bytes, where a blocking-thread hop would cost more than the copy.
pub fn read_cached(dataset: &Dataset, segments: &[Segment]) -> Option<Bytes> {
    let mut out: Vec<Bytes> = Vec::with_capacity(segments.len());
    for segment in segments {
        out.push(match segment {
            Segment::Literal(bytes) => bytes.clone(),
            Segment::File(run) => dataset.read_cached(run.offset, run.len)?,
        });
    }
    Some(match out.len() {
        0 => Bytes::new(),
        1 => out.swap_remove(0),
        _ => out.concat().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Format, Output, Style};
    use crate::registry::Registry;
    use crate::selection::Selection;

    /// A 1-d `|u1` dataset of `len` bytes counting up, in a fresh data directory.
    fn dataset(len: usize) -> (tempfile::TempDir, Arc<Dataset>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..=255u8).cycle().take(len).collect();
        std::fs::write(dir.path().join("r.u1"), &data).unwrap();
        let descriptor = format!(r#"{{"file": "r.u1", "dtype": "|u1", "shape": [{len}]}}"#);
        std::fs::write(dir.path().join("r.array.json"), descriptor).unwrap();
        let (registry, _) = Registry::scan(dir.path()).unwrap();
        let dataset = registry.get("r").unwrap();
        (dir, dataset, data)
    }

    fn chunks(mut producer: Producer) -> Result<Vec<Bytes>, ProduceError> {
        let mut out = Vec::new();
        while let Some(chunk) = producer.next_chunk()? {
            out.push(chunk);
        }
        Ok(out)
    }

    const OPTIONS: Options = Options {
        chunk_bytes: 16 * 1024,
        madvise: true,
    };

    #[test]
    fn segments_go_out_in_order_long_runs_as_slices_of_the_map() {
        let (_dir, dataset, data) = dataset(300_000);
        let segments = vec![
            Segment::Literal(Bytes::from_static(b"head")),
            Segment::File(Run {
                offset: 10,
                len: 200_000,
            }),
            Segment::Literal(Bytes::from_static(b"mid")),
            Segment::File(Run {
                offset: 250_000,
                len: 100,
            }),
        ];
        let producer = Producer::new(Arc::clone(&dataset), segments.into(), None, OPTIONS);
        let got = chunks(producer).unwrap();
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&data[10..200_010]);
        expected.extend_from_slice(b"mid");
        expected.extend_from_slice(&data[250_000..250_100]);
        assert_eq!(got.concat(), expected);
        assert!(got.iter().all(|c| c.len() <= OPTIONS.chunk_bytes));
        // The long run's chunks point into the map: not copied.
        let map = dataset.view(0, 300_000).as_ptr_range();
        let in_map = got.iter().filter(|c| map.contains(&c.as_ptr())).count();
        assert_eq!(in_map, 200_000usize.div_ceil(OPTIONS.chunk_bytes));
    }

    #[test]
    fn a_zero_copy_stream_holds_no_chunk_buffer() {
        // Thousands of stalled `bin` streams may wait at once: between chunks, each must hold
        // slices of the map only, not a reserved (if untouched) copy buffer.
        let (_dir, dataset, _) = dataset(300_000);
        let selection = Selection::parse(":", &dataset.shape).unwrap();
        let output = Output {
            format: Format::Bin,
            dtype: dataset.dtype,
            shape: selection.out_shape(),
            json_style: Style::JsonNull,
        };
        let runs = crate::plan::runs(&selection, &dataset.layout());
        let mut producer = Producer::new(
            Arc::clone(&dataset),
            runs.into(),
            Some(output.encoder()),
            OPTIONS,
        );
        let first = producer.next_chunk().unwrap().unwrap();
        assert_eq!(first.len(), OPTIONS.chunk_bytes);
        assert_eq!(producer.chunker.buf.capacity(), 0);
    }

    #[test]
    fn streamed_and_inline_text_agree() {
        let (_dir, dataset, data) = dataset(70_000);
        let selection = Selection::parse("::7", &dataset.shape).unwrap();
        for format in [Format::Json, Format::Csv, Format::Bin, Format::Npy] {
            let output = Output {
                format,
                dtype: dataset.dtype,
                shape: selection.out_shape(),
                json_style: Style::JsonNull,
            };
            let runs = crate::plan::runs(&selection, &dataset.layout());
            let options = Options {
                chunk_bytes: 1000,
                madvise: true,
            };
            let producer = Producer::new(
                Arc::clone(&dataset),
                runs.clone().into(),
                Some(output.encoder()),
                options,
            );
            let streamed = chunks(producer).unwrap().concat();
            let picked: Vec<u8> = data.iter().step_by(7).copied().collect();
            if format == Format::Bin {
                assert_eq!(streamed, picked);
            }
            if let Some(len) = output.content_length() {
                assert_eq!(streamed.len() as u64, len, "{format:?}");
            }
            if format == Format::Json {
                let text: Vec<String> = picked.iter().map(u8::to_string).collect();
                assert_eq!(streamed, format!("[{}]", text.join(",")).into_bytes());
            }
            // Small enough for the inline path once the file is in the page cache.
            let small = Selection::parse("100:200", &dataset.shape).unwrap();
            let small_output = Output {
                shape: small.out_shape(),
                ..output.clone()
            };
            let small_runs = crate::plan::runs(&small, &dataset.layout());
            let make = || {
                Producer::new(
                    Arc::clone(&dataset),
                    small_runs.clone().into(),
                    Some(small_output.encoder()),
                    options,
                )
            };
            let expected = chunks(make()).unwrap().concat();
            if let Some(inline) = inline(
                &dataset,
                small_runs.clone(),
                small_output.encoder(),
                small_output.size_estimate(),
                options,
            ) {
                assert_eq!(inline.unwrap(), expected, "{format:?}");
            }
        }
    }

    #[test]
    fn empty_json_is_written_in_bounded_steps() {
        let (_dir, dataset, _) = dataset(10);
        let output = Output {
            format: Format::Json,
            dtype: dataset.dtype,
            shape: vec![3, 5000, 0],
            json_style: Style::JsonNull,
        };
        let options = Options {
            chunk_bytes: 4096,
            madvise: false,
        };
        let producer = Producer::new(dataset, Vec::new().into(), Some(output.encoder()), options);
        let got = chunks(producer).unwrap();
        assert!(got.len() > 2 && got.iter().all(|c| c.len() < 4 * 4096));
        let text = String::from_utf8(got.concat()).unwrap();
        let row = format!("[{}]", vec!["[]"; 5000].join(","));
        assert_eq!(text, format!("[{}]", vec![row; 3].join(",")));
    }

    #[test]
    fn a_file_shorter_than_its_array_stops_the_body_before_a_read() {
        let (dir, dataset, _) = dataset(100_000);
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("r.u1"))
            .unwrap()
            .set_len(50_000)
            .unwrap();
        let segments = vec![Segment::File(Run {
            offset: 0,
            len: 100_000,
        })];
        let producer = Producer::new(dataset, segments.into(), None, OPTIONS);
        assert!(matches!(
            chunks(producer),
            Err(ProduceError::Unreadable { .. })
        ));
    }
}
