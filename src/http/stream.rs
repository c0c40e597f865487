//! The one body every streamed answer goes out as: a [`Producer`] pulled a chunk at a time,
//! only when hyper asks for the next frame, that is when the socket has taken the last one.
//!
//! So a client that stops reading costs its buffered chunks and this small struct, never a
//! thread: hyper stops asking, and nothing runs until it asks again (or the send timeout
//! cuts the connection and drops the body). Each chunk is made on the blocking pool, since
//! encoding may fault pages in; at most [`producers`] chunks are made at once across the
//! server, which bounds the threads streams use whatever the number of clients. Aggregates
//! have their own bound (`stats`), so they never wait behind streams.
//!
//! A dropped body (the client went away) stops the work within the chunk being made. A
//! failure after the head was sent is reported as a body error, on which hyper cuts the
//! connection, so no client mistakes a truncated body for a whole one.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use tokio::sync::Semaphore;

use crate::produce::Producer;

/// Starts streaming `producer`'s body; `in_flight` counts the body while it lives.
pub(super) fn body(producer: Producer, in_flight: &Arc<AtomicUsize>) -> Body {
    let name = producer.dataset().name.clone();
    Body::new(Streamed::new(producer, name, in_flight))
}

/// Chunks made at once across the server: twice the cores, at least 4. More would only
/// queue on the same cores and disks, and every permit may hold a blocking thread.
pub(crate) fn producers() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(Semaphore::new(producer_permits())))
}

/// The number of [`producers`] permits.
pub(super) fn producer_permits() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (2 * cores).max(4)
}

/// What a chunk's blocking task hands back: the producer (for the next chunk) and the result.
type Made = (
    Box<Producer>,
    std::thread::Result<Result<Option<Bytes>, String>>,
);

enum State {
    /// Waiting for hyper to ask for the next frame.
    Idle(Box<Producer>),
    /// A chunk is being made (or waits for a permit).
    Making(Pin<Box<dyn Future<Output = Result<Made, tokio::task::JoinError>> + Send>>),
    Done,
}

/// The body; see the module documentation.
struct Streamed {
    state: State,
    dataset: String,
    _in_flight: Option<InFlight>,
}

impl Streamed {
    fn new(producer: Producer, dataset: String, in_flight: &Arc<AtomicUsize>) -> Streamed {
        Streamed {
            state: State::Idle(Box::new(producer)),
            dataset,
            _in_flight: Some(InFlight::enter(in_flight)),
        }
    }

    fn make(mut producer: Box<Producer>) -> State {
        State::Making(Box::pin(async move {
            // The semaphore is never closed, so acquiring fails only if it were.
            let permit = producers().clone().acquire_owned().await;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                // A panic would otherwise end a chunked body as if it were complete; catch it
                // and cut the stream instead (README "Limits and known gaps").
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    producer.next_chunk().map_err(|e| e.to_string())
                }));
                (producer, result)
            })
            .await
        }))
    }

    fn fail(&mut self, failure: String) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        tracing::error!(error = %failure, dataset = %self.dataset, "stream cut");
        self.finish();
        Poll::Ready(Some(Err(io::Error::other(failure))))
    }

    fn finish(&mut self) {
        self.state = State::Done;
        self._in_flight = None;
    }
}

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Idle(producer) => this.state = Streamed::make(producer),
                State::Making(mut making) => match making.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.state = State::Making(making);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => return this.fail(format!("producer task: {e}")),
                    Poll::Ready(Ok((_, Err(_)))) => return this.fail("producer panicked".into()),
                    Poll::Ready(Ok((_, Ok(Err(e))))) => return this.fail(e),
                    Poll::Ready(Ok((_, Ok(Ok(None))))) => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Ok((producer, Ok(Ok(Some(chunk)))))) => {
                        this.state = State::Idle(producer);
                        return Poll::Ready(Some(Ok(Frame::data(chunk))));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

/// Counts one streamed body for as long as it lives.
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
