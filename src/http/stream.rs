//! The one producer shape for every streamed body (STYLE habit 12): a blocking thread encodes
//! chunks into a small bounded channel, and the receiver is the body.
//!
//! The channel's capacity bounds the memory a slow client costs; a dropped receiver (the
//! client went away) makes the next send fail, which stops the producer within one chunk.
//! A failure after the head was sent is reported as a body error, on which hyper cuts the
//! connection, so no client mistakes a truncated body for a whole one.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::dataset::Dataset;
use crate::encode::{self, EncodeError, Job, Piece};

/// Chunks buffered between the producer and hyper.
const CHANNEL_CHUNKS: usize = 2;

/// Starts producing `job` on a blocking thread and returns the body that streams it.
pub(super) fn body(job: Job) -> Body {
    let name = job.dataset.name.clone();
    spawn(name, move |emit| encode::produce(&job, emit))
}

/// Starts sending `pieces` of `dataset`'s file (a `/raw` answer) on a blocking thread and
/// returns the body that streams them.
pub(super) fn raw_body(dataset: Arc<Dataset>, pieces: Vec<Piece>, chunk_bytes: usize) -> Body {
    let name = dataset.name.clone();
    spawn(name, move |emit| {
        encode::produce_raw(&dataset, &pieces, chunk_bytes, emit)
    })
}

fn spawn<F>(dataset: String, produce: F) -> Body
where
    F: FnOnce(&mut dyn FnMut(Bytes) -> bool) -> Result<(), EncodeError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let result = produce(&mut |chunk| tx.blocking_send(Ok(chunk)).is_ok());
        match result {
            Ok(()) | Err(EncodeError::Disconnected) => {}
            Err(e) => {
                tracing::error!(error = %e, %dataset, "stream cut");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
    });
    Body::from_stream(ReceiverStream::new(rx))
}
