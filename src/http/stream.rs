//! The one producer shape for every streamed body (STYLE habit 12): a blocking thread encodes
//! chunks into a small bounded channel, and the receiver is the body.
//!
//! The channel's capacity bounds the memory a slow client costs; a dropped receiver (the
//! client went away) makes the next send fail, which stops the producer within one chunk.
//! A failure after the head was sent is reported as a body error, on which hyper cuts the
//! connection, so no client mistakes a truncated body for a whole one.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::Config;
use crate::dataset::Dataset;
use crate::encode::{self, EncodeError, Job, Piece};

/// Chunks buffered between the producer and hyper.
const CHANNEL_CHUNKS: usize = 2;

/// Starts producing `job` on a blocking thread and returns the body that streams it;
/// `in_flight` counts the producer while it runs.
pub(super) fn body(job: Job, in_flight: &Arc<AtomicUsize>) -> Body {
    let name = job.dataset.name.clone();
    spawn(name, in_flight, move |emit| encode::produce(&job, emit))
}

/// Starts sending `pieces` of `dataset`'s file (a `/raw` answer) on a blocking thread and
/// returns the body that streams them.
pub(super) fn raw_body(
    dataset: Arc<Dataset>,
    pieces: Vec<Piece>,
    config: &Config,
    in_flight: &Arc<AtomicUsize>,
) -> Body {
    let name = dataset.name.clone();
    let (chunk_bytes, madvise) = (config.chunk_bytes, config.madvise);
    spawn(name, in_flight, move |emit| {
        encode::produce_raw(&dataset, &pieces, chunk_bytes, madvise, emit)
    })
}

fn spawn<F>(dataset: String, in_flight: &Arc<AtomicUsize>, produce: F) -> Body
where
    F: FnOnce(&mut dyn FnMut(Bytes) -> bool) -> Result<(), EncodeError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let in_flight = InFlight::enter(in_flight);
    tokio::task::spawn_blocking(move || {
        let _in_flight = in_flight;
        // A panic would drop `tx` and end a chunked body as if it were complete; catch it and
        // cut the stream instead (README "Limits and known gaps").
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            produce(&mut |chunk| tx.blocking_send(Ok(chunk)).is_ok())
        }));
        let failure = match result {
            Ok(Ok(()) | Err(EncodeError::Disconnected)) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "producer panicked".to_owned(),
        };
        tracing::error!(error = %failure, %dataset, "stream cut");
        let _ = tx.blocking_send(Err(io::Error::other(failure)));
    });
    Body::from_stream(ReceiverStream::new(rx))
}

/// Counts one running producer for as long as it lives.
pub(super) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub(super) fn enter(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
