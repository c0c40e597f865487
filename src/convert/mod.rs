//! `arrayd convert`: a CSV, TSV or whitespace-separated text table of any size → a `.npy`
//! file equal to what `np.save(OUT, np.loadtxt(IN, ...))` writes (README "Converting text to
//! .npy" has the rules and the exceptions).
//!
//! One streaming pass, memory bounded whatever the input's size:
//!
//! ```text
//! reader (this thread) ──blocks──▶ workers (one per core) ──rows──▶ writer ──▶ OUT.tmp ─rename─▶ OUT
//!          ▲                                                          │
//!          └────────────────────── free slots ◀────────────────────────┘
//! ```
//!
//! The reader cuts the input into blocks of whole lines (`block`); workers split and parse
//! them in parallel (`line`, `field`, `parse`); the writer puts the blocks back in
//! input order, checks what a block cannot know alone (the column count of earlier rows,
//! the global line number of an error), and appends the bytes after a reserved header
//! (`output`). A block travels in a slot (its input and output buffers) that returns to the
//! reader once written, and there are `SLOTS_PER_WORKER` slots per worker, so the memory in
//! flight is bounded by the slot count, not by the input.

mod block;
mod error;
mod field;
mod line;
mod output;
mod parse;
mod progress;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

pub use error::ConvertError;
pub use line::Syntax;

use crate::dtype::{DType, Scalar};
use block::{Blocks, Fill};
use field::Kind;
use output::Output;
use parse::{Parsed, Rules};
use progress::Progress;

/// Slots per worker: one being parsed, one queued for it, one being written or reordered.
const SLOTS_PER_WORKER: usize = 3;

/// Parsing threads at most: memory in flight grows with them (a few MiB each), and past the
/// cores they buy nothing.
const MAX_THREADS: usize = 64;

/// What to convert and how: the command line of `arrayd convert`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The text file; `-` is standard input.
    pub input: PathBuf,
    /// The `.npy` to write.
    pub output: PathBuf,
    /// The element type.
    pub dtype: DType,
    /// Delimiter and comment marker.
    pub syntax: Syntax,
    /// Physical lines dropped first, comments and blank lines included (`loadtxt`'s
    /// `skiprows`).
    pub skip_rows: u64,
    /// Fields kept (negative from the end); `None`: all.
    pub usecols: Option<Vec<i64>>,
    /// Parsing threads; 0: one per core.
    pub threads: usize,
    /// Draw a progress bar when standard error is a terminal.
    pub progress: bool,
}

/// What a finished conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Shape of the array written (`loadtxt`'s: size-1 axes dropped).
    pub shape: Vec<u64>,
    /// Data rows read.
    pub rows: u64,
    /// Input bytes read.
    pub bytes_read: u64,
}

/// Converts `options.input` into `options.output`.
///
/// # Errors
/// [`ConvertError`] for a bad input or output path, a read or write error, and the first bad
/// line of the input; no output file exists then.
pub fn run(options: &Options) -> Result<Summary, ConvertError> {
    let kind = Kind::of(options.dtype).ok_or(ConvertError::Complex(options.dtype))?;
    if options.usecols.as_ref().is_some_and(Vec::is_empty) {
        return Err(ConvertError::Usage("--usecols names no column".into()));
    }
    if let Some(d) = options.syntax.delimiter {
        if options.syntax.comments.contains(&d) {
            // As loadtxt refuses it: every field would start a comment.
            return Err(ConvertError::Usage(format!(
                "the comment marker {:?} contains the delimiter {:?}",
                String::from_utf8_lossy(&options.syntax.comments),
                char::from(d)
            )));
        }
    }
    let input = open_input(&options.input)?;
    check_output(&options.output, input.identity)?;
    let out_err = |source| ConvertError::Output {
        path: options.output.clone(),
        source,
    };
    let output = Output::create(&options.output, options.dtype).map_err(out_err)?;
    let rules = Rules {
        syntax: options.syntax.clone(),
        kind,
        usecols: options.usecols.clone(),
    };
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
    .min(MAX_THREADS);
    let progress = Progress::new(input.len, options.progress);
    let result = pipeline(input.reader, options, rules, threads, output, &progress);
    progress.finish();
    result
}

/// An opened input and what is known of it.
struct Input {
    reader: Box<dyn Read + Send>,
    /// Size in bytes, for the progress bar (a regular file's).
    len: Option<u64>,
    /// Device and inode, to refuse an output over the input.
    identity: Option<(u64, u64)>,
}

fn open_input(path: &Path) -> Result<Input, ConvertError> {
    if path.as_os_str() == "-" {
        return Ok(Input {
            reader: Box::new(std::io::stdin()),
            len: None,
            identity: None,
        });
    }
    let err = |source| ConvertError::Input {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if meta.is_dir() {
        return Err(err(std::io::Error::other("it is a directory")));
    }
    Ok(Input {
        reader: Box::new(file),
        len: meta.is_file().then_some(meta.len()),
        identity: Some((meta.dev(), meta.ino())),
    })
}

/// Refuses an output in a missing directory, over a directory, or over the input itself,
/// before anything is read.
fn check_output(path: &Path, input: Option<(u64, u64)>) -> Result<(), ConvertError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(ConvertError::NoOutputDir(dir.to_owned()));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_dir() {
            return Err(ConvertError::OutputIsDir(path.to_owned()));
        }
        if input == Some((meta.dev(), meta.ino())) {
            return Err(ConvertError::OutputIsInput(path.to_owned()));
        }
    }
    Ok(())
}

/// A block's buffers, reused from block to block.
#[derive(Default)]
struct Slot {
    input: Vec<u8>,
    output: Vec<u8>,
    overlong: bool,
}

/// A parsed block on its way to the writer.
struct Done {
    seq: u64,
    slot: Slot,
    parsed: Parsed,
}

fn pipeline(
    input: Box<dyn Read + Send>,
    options: &Options,
    rules: Rules,
    threads: usize,
    output: Output,
    progress: &Progress,
) -> Result<Summary, ConvertError> {
    let read_err = |source| ConvertError::Input {
        path: options.input.clone(),
        source,
    };
    let mut blocks = Blocks::new(input);
    let skipped = blocks.skip_lines(options.skip_rows).map_err(read_err)?;
    let n_slots = threads * SLOTS_PER_WORKER;
    let (free_tx, free_rx) = sync_channel::<Slot>(n_slots);
    for _ in 0..n_slots {
        free_tx.send(Slot::default()).ok();
    }
    let (work_tx, work_rx) = sync_channel::<(u64, Slot)>(n_slots);
    let (done_tx, done_rx) = sync_channel::<Done>(n_slots);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let rules = Arc::new(rules);
    let writer = Writer {
        output,
        path: options.output.clone(),
        dtype: options.dtype,
        line_base: skipped,
        usecols: options.usecols.as_ref().map(Vec::len),
        columns: None,
        rows: 0,
        bytes: blocks.bytes_read,
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (work_rx, done_tx, rules) = (Arc::clone(&work_rx), done_tx.clone(), &rules);
            scope.spawn(move || work(&work_rx, &done_tx, rules));
        }
        drop(done_tx);
        let writing = scope.spawn(move || writer.run(&done_rx, &free_tx, progress));
        let reading = read(&mut blocks, &free_rx, &work_tx);
        drop(work_tx);
        let written = writing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // A read error matters only when the writer did not stop first on an earlier line;
        // either way the writer is dropped unfinished, which removes the temporary file.
        match (written, reading) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(read_err(e)),
            (Ok(writer), Ok(())) => writer.finish().map(|summary| Summary {
                bytes_read: blocks.bytes_read,
                ..summary
            }),
        }
    })
}

/// Fills free slots with blocks until the input ends, the writer stops (no slot comes back),
/// or a line is too long.
fn read<R: Read>(
    blocks: &mut Blocks<R>,
    free: &Receiver<Slot>,
    work: &SyncSender<(u64, Slot)>,
) -> std::io::Result<()> {
    for seq in 0.. {
        let Ok(mut slot) = free.recv() else {
            return Ok(());
        };
        let fill = blocks.fill(&mut slot.input)?;
        slot.overlong = fill == Fill::Overlong;
        if fill == Fill::End || work.send((seq, slot)).is_err() || fill == Fill::Overlong {
            return Ok(());
        }
    }
    Ok(())
}

fn work(queue: &Mutex<Receiver<(u64, Slot)>>, done: &SyncSender<Done>, rules: &Rules) {
    loop {
        // The lock is held only to take one block.
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok((seq, mut slot)) = next else { return };
        let parsed = parse::parse_block(&slot.input, slot.overlong, rules, &mut slot.output);
        if done.send(Done { seq, slot, parsed }).is_err() {
            return;
        }
    }
}

/// The in-order half: reorders parsed blocks, checks them against the rows before, writes;
/// [`Writer::finish`] (the header and the rename) only once the whole input was read.
struct Writer {
    output: Output,
    /// The target, for error messages.
    path: PathBuf,
    dtype: DType,
    /// Physical lines before the current block.
    line_base: u64,
    /// Columns kept per row with `--usecols`.
    usecols: Option<usize>,
    /// The first row's line and column count.
    columns: Option<(u64, usize)>,
    rows: u64,
    /// Input bytes of the blocks written, skipped lines included.
    bytes: u64,
}

impl Writer {
    fn run(
        mut self,
        done: &Receiver<Done>,
        free: &SyncSender<Slot>,
        progress: &Progress,
    ) -> Result<Writer, ConvertError> {
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for block in done {
            waiting.insert(block.seq, block);
            while let Some(block) = waiting.remove(&next) {
                self.write(&block)?;
                progress.update(self.bytes, self.rows);
                next += 1;
                // The reader may have stopped already; then the slot is simply dropped.
                let _ = free.send(block.slot);
            }
        }
        Ok(self)
    }

    fn write(&mut self, block: &Done) -> Result<(), ConvertError> {
        let parsed = &block.parsed;
        if let (Some((line, found)), Some((reference, expected)), None) =
            (parsed.first_row, self.columns, self.usecols)
        {
            if found != expected {
                let problem = parse::Problem::Columns { found, expected };
                return Err(ConvertError::line(
                    self.line_base + line,
                    &problem,
                    self.dtype,
                    reference,
                ));
            }
        }
        if let Some((line, problem)) = &parsed.problem {
            let reference = self.columns.map_or(self.line_base, |(l, _)| l);
            let reference = parsed
                .first_row
                .filter(|_| self.columns.is_none())
                .map_or(reference, |(l, _)| self.line_base + l);
            return Err(ConvertError::line(
                self.line_base + line,
                problem,
                self.dtype,
                reference,
            ));
        }
        if self.columns.is_none() {
            self.columns = parsed.first_row.map(|(l, n)| (self.line_base + l, n));
        }
        let path = &self.path;
        self.output
            .write(&block.slot.output)
            .map_err(|source| ConvertError::Output {
                path: path.clone(),
                source,
            })?;
        self.line_base += parsed.lines;
        self.rows += parsed.rows;
        self.bytes += block.slot.input.len() as u64;
        Ok(())
    }

    fn finish(self) -> Result<Summary, ConvertError> {
        let columns = self.usecols.or(self.columns.map(|(_, n)| n));
        let shape = loadtxt_shape(self.rows, columns);
        if self.rows == 0 {
            eprintln!("arrayd convert: warning: the input holds no data");
        }
        let path = self.path;
        self.output
            .finish(&shape)
            .map_err(|source| ConvertError::Output { path, source })?;
        Ok(Summary {
            shape,
            rows: self.rows,
            bytes_read: self.bytes,
        })
    }
}

/// `loadtxt`'s shape (its default `ndmin=0`): the `(rows, columns)` table with its size-1
/// axes squeezed out, so one column or one row is 1-d and one value 0-d. An input without
/// data is `(0,)`, or `(0, k)` for `k > 1` columns named by `--usecols`.
fn loadtxt_shape(rows: u64, columns: Option<usize>) -> Vec<u64> {
    let Some(columns) = columns else {
        return vec![0];
    };
    [rows, columns as u64]
        .into_iter()
        .filter(|&n| n != 1)
        .collect()
}

/// Parses `--dtype`: a NumPy type string (`<f4`, `>i2`, `|u1`), a kind code (`f4`, `u1`,
/// `b1`, native little-endian) or a NumPy name (`float32`, `uint8`, `bool`).
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_dtype(text: &str) -> Result<DType, String> {
    if text.starts_with(['<', '>', '|', '=']) {
        return DType::parse(text).map_err(|e| e.to_string());
    }
    let scalar = match text {
        "bool" | "b1" | "?" => Scalar::Bool,
        "int8" | "i1" => Scalar::I8,
        "int16" | "i2" => Scalar::I16,
        "int32" | "i4" => Scalar::I32,
        "int64" | "i8" => Scalar::I64,
        "uint8" | "u1" => Scalar::U8,
        "uint16" | "u2" => Scalar::U16,
        "uint32" | "u4" => Scalar::U32,
        "uint64" | "u8" => Scalar::U64,
        "float16" | "f2" => Scalar::F16,
        "float32" | "f4" => Scalar::F32,
        "float64" | "f8" | "float" => Scalar::F64,
        "complex64" | "c8" => Scalar::C64,
        "complex128" | "c16" | "complex" => Scalar::C128,
        _ => {
            return Err(format!(
                "unknown dtype {text:?}: use f2, f4, f8, i1..i8, u1..u8, b1 (or float32, \
                 uint8, ..., or a type string such as >f4)"
            ))
        }
    };
    Ok(DType {
        scalar,
        order: crate::dtype::ByteOrder::Little,
    })
}

/// Parses `--delimiter`: one ASCII character, or `\t` / `tab` for a tab.
///
/// # Errors
/// A message when it is not one ASCII character other than a line end.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    let byte = match text {
        "\\t" | "tab" => b'\t',
        _ => match text.as_bytes() {
            [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => *b,
            _ => {
                return Err(format!(
                    "delimiter {text:?}: one ASCII character (\\t or tab for a tab)"
                ))
            }
        },
    };
    Ok(byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `1\n` lines for `len` bytes, then a read error.
    struct FailingInput {
        len: usize,
    }

    impl Read for FailingInput {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.len == 0 {
                return Err(std::io::Error::other("disk gone"));
            }
            let n = buf.len().min(self.len) & !1;
            for pair in buf[..n].chunks_mut(2) {
                pair.copy_from_slice(b"1\n");
            }
            self.len -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            input: "in.txt".into(),
            output: dir.path().join("out.npy"),
            dtype: parse_dtype("u1").unwrap(),
            syntax: Syntax {
                delimiter: None,
                comments: b"#".to_vec(),
            },
            skip_rows: 0,
            usecols: None,
            threads: 2,
            progress: false,
        };
        let output = Output::create(&options.output, options.dtype).unwrap();
        let rules = Rules {
            syntax: options.syntax.clone(),
            kind: Kind::of(options.dtype).unwrap(),
            usecols: None,
        };
        let input = Box::new(FailingInput { len: 3 << 20 });
        let progress = Progress::new(None, false);
        let err = pipeline(input, &options, rules, 2, output, &progress).unwrap_err();
        assert!(err.to_string().contains("disk gone"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn shapes_are_loadtxts() {
        assert_eq!(loadtxt_shape(5, Some(3)), [5, 3]);
        assert_eq!(loadtxt_shape(5, Some(1)), [5]);
        assert_eq!(loadtxt_shape(1, Some(3)), [3]);
        assert_eq!(loadtxt_shape(1, Some(1)), Vec::<u64>::new());
        assert_eq!(loadtxt_shape(0, None), [0]);
        assert_eq!(loadtxt_shape(0, Some(2)), [0, 2]);
        assert_eq!(loadtxt_shape(0, Some(1)), [0]);
    }

    #[test]
    fn dtype_names() {
        assert_eq!(parse_dtype("f4").unwrap().descr(), "<f4");
        assert_eq!(parse_dtype("uint8").unwrap().descr(), "|u1");
        assert_eq!(parse_dtype(">i2").unwrap().descr(), ">i2");
        assert!(parse_dtype("f3").is_err());
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert!(parse_delimiter(",,").is_err());
    }
}
