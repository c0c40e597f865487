//! The front of every request, in one middleware function (each `from_fn` layer costs a boxed
//! future per request, measured in README "Performance"), in this order:
//!
//! 1. request id: `X-Request-Id` taken when sane (1 to 200 visible ASCII characters),
//!    otherwise generated; echoed on the answer;
//! 2. drain: while the server drains, everything but the probes gets `503 draining` with
//!    `Connection: close`;
//! 3. load shedding: past `--max-concurrent` requests in progress, `503 overloaded` with
//!    `Retry-After` at once (never a queue); the probes are never shed;
//! 4. tokens ([`auth`](super::auth));
//! 5. the request target's length (`414`);
//! 6. the handler, bounded by `--request-timeout-secs` to its response head;
//! 7. observation: the route's metrics at the head, and when the body is done (sent, cut or
//!    dropped) its byte count and one log line: method, route, status, bytes, duration,
//!    request id. A 5xx's cause, which the answer does not carry, goes into that line.
//!
//! A request counts as in progress from step 3 until its body is done, so streams count, and
//! the drain waits for them.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};

use super::auth::Access;
use super::conn::{Activity, OpenAnswer};
use super::error::{Error, InternalCause};
use super::AppState;

/// `X-Request-Id`.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Requests in progress and whether the server drains: what shedding and the drain read.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// Requests past the gate whose body is not done yet, probes excepted.
    in_progress: AtomicUsize,
    /// Set once by the first SIGTERM; `/readyz` answers 503 from then on.
    draining: std::sync::atomic::AtomicBool,
}

impl Lifecycle {
    /// Requests in progress (their bodies included), probes excepted.
    pub fn in_progress(&self) -> usize {
        self.in_progress.load(Ordering::Relaxed)
    }

    /// Whether the server drains.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Starts the drain: `/readyz` answers 503 and new work is refused.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}

/// Probes answer whatever the load, the drain or the tokens.
fn is_probe(path: &str) -> bool {
    path == "/healthz" || path == "/readyz"
}

/// The middleware; see the module documentation for the order of its steps.
pub(super) async fn front(state: AppState, mut request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| super::metrics::route_label(p.as_str()));
    let request_id = request_id(request.headers().get(&X_REQUEST_ID));
    let activity = request.extensions_mut().remove::<Arc<Activity>>();
    let path = request.uri().path();
    let probe = is_probe(path);
    let (mut response, in_progress) = match gate(&state, &request, probe) {
        Err(e) => (e.into_response(), None),
        Ok(in_progress) => {
            let timeout = Duration::from_secs(state.config.request_timeout_secs);
            let response = match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => Error::Timeout(timeout.as_secs()).into_response(),
            };
            (response, in_progress)
        }
    };
    let status = response.status();
    state
        .metrics
        .answered(route, &method, status, start.elapsed());
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id.clone());
    let cause = response.extensions().get::<InternalCause>().cloned();
    let done = Done {
        state,
        route,
        method,
        status,
        request_id,
        cause,
        start,
        bytes: 0,
        complete: false,
        _in_progress: in_progress,
        _answer: activity.as_ref().map(Activity::answer),
    };
    response.map(|inner| {
        let mut done = done;
        // An empty body (HEAD, 304) is never polled: it is complete as it stands.
        done.complete = inner.is_end_stream();
        Body::new(Observed {
            inner,
            done: Some(done),
        })
    })
}

/// Steps 2 to 5: `Ok` with the in-progress guard (none for probes), or the refusal.
fn gate(state: &AppState, request: &Request, probe: bool) -> Result<Option<InProgress>, Error> {
    if probe {
        return Ok(None);
    }
    let lifecycle = &state.lifecycle;
    if lifecycle.draining() {
        return Err(Error::Draining);
    }
    let limit = state.config.max_concurrent;
    if lifecycle.in_progress.fetch_add(1, Ordering::Relaxed) >= limit {
        lifecycle.in_progress.fetch_sub(1, Ordering::Relaxed);
        return Err(Error::Overloaded(limit));
    }
    let guard = InProgress(Arc::clone(lifecycle));
    let uri = request.uri();
    state
        .tokens
        .check(Access::of(request.method(), uri.path()), request.headers())?;
    let len = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    let max_uri = state.config.max_uri_bytes;
    if len > max_uri {
        return Err(Error::UriTooLong {
            len,
            limit: max_uri,
        });
    }
    Ok(Some(guard))
}

/// Counts one request in progress for as long as it lives.
#[derive(Debug)]
struct InProgress(Arc<Lifecycle>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client's `X-Request-Id` when sane, else a fresh one: a random prefix per process (so
/// replicas do not collide) and a counter.
fn request_id(given: Option<&HeaderValue>) -> HeaderValue {
    if let Some(value) = given {
        let bytes = value.as_bytes();
        if (1..=200).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic) {
            return value.clone();
        }
    }
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish() as u32
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Hex digits into a stack buffer: this runs for every request without an id.
    let mut text = [0u8; 8 + 1 + 16];
    let mut len = hex(u64::from(prefix), 8, &mut text);
    text[len] = b'-';
    len += 1;
    len += hex(n, 1, &mut text[len..]);
    HeaderValue::from_bytes(&text[..len]).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Writes `n` in lowercase hex, at least `min_digits` long, at the start of `out`; returns the
/// number of bytes written.
fn hex(n: u64, min_digits: usize, out: &mut [u8]) -> usize {
    let digits = (16 - n.leading_zeros() as usize / 4).max(min_digits);
    for (i, byte) in out[..digits].iter_mut().enumerate() {
        let nibble = (n >> (4 * (digits - 1 - i))) & 0xf;
        *byte = b"0123456789abcdef"[nibble as usize];
    }
    digits
}

/// What is left to record of a request once its body is done.
struct Done {
    state: AppState,
    route: &'static str,
    method: Method,
    status: StatusCode,
    request_id: HeaderValue,
    cause: Option<InternalCause>,
    start: Instant,
    bytes: u64,
    /// The body reached its end (as opposed to being cut or dropped early).
    complete: bool,
    _in_progress: Option<InProgress>,
    _answer: Option<OpenAnswer>,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.state.metrics.sent(self.route, self.bytes);
        // Fields of plain types (integers, `&str`, no floats): formatting them is most of a
        // request line's cost; the usual line skips tracing altogether (README "Performance").
        let request_id = self.request_id.to_str().unwrap_or("-");
        let us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let method = super::metrics::method_label(&self.method);
        let status = self.status.as_u16();
        match &self.cause {
            Some(cause) => tracing::error!(
                target: "arrayd::request",
                method,
                route = self.route,
                status,
                bytes = self.bytes,
                us,
                request_id,
                cause = %cause.0,
                "request failed"
            ),
            None => crate::logline::RequestLine {
                method,
                route: self.route,
                status,
                bytes: self.bytes,
                complete: self.complete,
                us,
                request_id,
            }
            .log(),
        }
    }
}

/// A response body that counts its bytes and records the request when it is done.
struct Observed {
    inner: Body,
    done: Option<Done>,
}

impl HttpBody for Observed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let Some(done) = this.done.as_mut() else {
            return polled;
        };
        let finished = match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    done.bytes += data.len() as u64;
                }
                // hyper stops polling a body of known length after its last frame.
                this.inner.is_end_stream()
            }
            Poll::Ready(None) => true,
            Poll::Ready(Some(Err(_))) => {
                // The stream was cut: recorded as incomplete.
                this.done = None;
                return polled;
            }
            Poll::Pending => false,
        };
        if finished {
            done.complete = true;
            // Recorded now rather than when hyper drops the body.
            this.done = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_taken_when_sane() {
        let given = HeaderValue::from_static("abc-123");
        assert_eq!(request_id(Some(&given)), given);
        let long = HeaderValue::from_str(&"x".repeat(201)).unwrap();
        assert_ne!(request_id(Some(&long)), long);
        let spaced = HeaderValue::from_static("a b");
        assert_ne!(request_id(Some(&spaced)), spaced);
        assert_eq!(hex(0, 1, &mut [0; 16]), 1);
        let mut buf = [0; 16];
        let n = hex(0xabc, 8, &mut buf);
        assert_eq!(&buf[..n], b"00000abc");
        let n = hex(u64::MAX, 1, &mut buf);
        assert_eq!(&buf[..n], b"ffffffffffffffff");
        let (a, b) = (request_id(None), request_id(None));
        assert_ne!(a, b);
        assert!(a.to_str().unwrap().len() <= 200);
    }
}
