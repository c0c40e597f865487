//! Where log lines go: a shared buffer that a writer thread empties into the output a few
//! times a second, so that one line per request costs the serving threads an append, not a
//! system call or a wakeup.
//!
//! A channel with a thread that writes whenever it wakes (what `tracing-appender` does)
//! wakes that thread once per line or so under load; on a two-core machine those wakeups
//! and small writes cost more than the request they record (README "Performance"). Here
//! the writer sleeps for [`FLUSH_EVERY`] or until the buffer holds [`FLUSH_BYTES`], then
//! writes everything at once. No line is ever dropped: past [`MAX_BYTES`] (the output
//! stalls, say a pipe nobody reads) the logging thread waits for the writer, as a plain
//! `write` to stderr would. [`LogGuard`] writes what is left when the binary exits.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest time a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A buffer this full is written at once.
pub const FLUSH_BYTES: usize = 256 * 1024;
/// A buffer this full makes loggers wait for the writer.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    /// Wakes the writer (buffer full, or closed).
    filled: Condvar,
    /// Wakes loggers waiting for room.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A logger that panicked mid-append leaves at worst a partial line; keep logging.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `io::Write` handed to the log formatter; cheap to clone, one per line.
#[derive(Clone)]
pub struct LogSink(Arc<Shared>);

/// Owns the writer thread; dropping it writes every buffered line and stops the thread.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A sink writing into `out` from a thread of its own.
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn<W: Write + Send + 'static>(out: W) -> io::Result<(LogSink, LogGuard)> {
    let shared = Arc::new(Shared::default());
    let thread = std::thread::Builder::new()
        .name("arrayd-log".into())
        .spawn({
            let shared = Arc::clone(&shared);
            move || write_loop(&shared, out)
        })?;
    Ok((
        LogSink(Arc::clone(&shared)),
        LogGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_loop<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::new();
    loop {
        let mut buffer = shared.lock();
        if buffer.bytes.len() < FLUSH_BYTES && !buffer.closed {
            buffer = shared
                .filled
                .wait_timeout(buffer, FLUSH_EVERY)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let closed = buffer.closed;
        std::mem::swap(&mut buffer.bytes, &mut spare);
        drop(buffer);
        shared.drained.notify_all();
        if !spare.is_empty() {
            // Nowhere to report a failing log output; the lines are lost, the server goes on.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
            // Keep the allocation of a usual batch, not of a burst.
            spare.shrink_to(FLUSH_BYTES * 2);
        }
        if closed {
            return;
        }
    }
}

impl LogSink {
    /// Lets `write` append to the buffer in place (after waiting for room like any write):
    /// the request line is formatted straight into it, without a copy (see `logline`).
    pub fn append(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let shared = &*self.0;
        let mut buffer = shared.lock();
        while buffer.bytes.len() >= MAX_BYTES && !buffer.closed {
            buffer = shared
                .drained
                .wait(buffer)
                .unwrap_or_else(|e| e.into_inner());
        }
        write(&mut buffer.bytes);
        let full = buffer.bytes.len() >= FLUSH_BYTES;
        drop(buffer);
        if full {
            shared.filled.notify_one();
        }
    }
}

impl Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.append(|buffer| buffer.extend_from_slice(bytes));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Lines are written within `FLUSH_EVERY`; waiting here would undo the batching.
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        self.clone()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.filled.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An output the test can read while the writer holds it.
    #[derive(Clone, Default)]
    struct Output(Arc<Mutex<Vec<u8>>>);

    impl Write for Output {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_output_within_the_flush_interval() {
        let out = Output::default();
        let (mut sink, _guard) = spawn(out.clone()).unwrap();
        sink.write_all(b"one\n").unwrap();
        let start = Instant::now();
        while out.0.lock().unwrap().is_empty() {
            assert!(start.elapsed() < FLUSH_EVERY * 20, "line never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(&*out.0.lock().unwrap(), b"one\n");
    }

    #[test]
    fn the_guard_writes_every_line_in_order_from_many_threads() {
        let out = Output::default();
        let (sink, guard) = spawn(out.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        sink.write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let mut next = [0; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t}'s lines out of order or lost");
            next[t] += 1;
        }
        assert_eq!(next, [20_000; 4]);
    }

    /// A stalled output makes loggers wait rather than grow the buffer or drop lines.
    #[test]
    fn a_stalled_output_bounds_the_buffer() {
        struct Stalled(Arc<(Mutex<bool>, Condvar)>, Output);
        impl Write for Stalled {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                let (open, cv) = &*self.0;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
                self.1.write(bytes)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Output::default();
        let (mut sink, guard) = spawn(Stalled(Arc::clone(&gate), out.clone())).unwrap();
        let line = vec![b'x'; 1023];
        let writer = std::thread::spawn(move || {
            for _ in 0..(3 * MAX_BYTES / 1024) {
                sink.write_all(&line).unwrap();
                sink.write_all(b"\n").unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !writer.is_finished(),
            "3x the cap went into a stalled buffer"
        );
        assert!(guard.shared.lock().bytes.len() <= MAX_BYTES + 1024);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        writer.join().unwrap();
        drop(guard);
        assert_eq!(out.0.lock().unwrap().len(), 3 * MAX_BYTES);
    }
}
