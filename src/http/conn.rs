//! One client connection: hyper's HTTP/1 state machine over a socket wrapper that enforces the
//! connection limits (README "Deploying") and gives JSON bodies to the few error answers hyper
//! writes itself.
//!
//! The limits live in the socket wrapper because only it sees every byte and every stall:
//! - **head timeout**: a request head must be complete within `--header-read-timeout-secs` of
//!   its first byte (of the connection's start, for the first request); a client that sends
//!   half a request line and waits is closed (slowloris);
//! - **keep-alive idle**: a connection with no request in progress is closed after
//!   `--keep-alive-secs` of silence;
//! - **send timeout**: a write that makes no progress for `--send-timeout-secs` fails, which
//!   makes hyper drop the connection and with it the answer's producer; a slow reader that
//!   keeps taking bytes is never cut.
//!
//! hyper's own `header_read_timeout` cannot serve for the first two: it also runs while a
//! keep-alive connection waits for its next request, so idle and head time would be one limit.
//!
//! hyper answers requests it cannot parse before any handler runs: a request target over its
//! buffer gets `414`, headers past `--max-header-bytes` `431`, garbage `400`, each with
//! `content-length: 0`. Every error must carry the JSON body, so [`ConnIo`] watches what is
//! written: an answer that starts `HTTP/1.1 4` and declares an empty body can only be one of
//! hyper's (every answer of arrayd's own has a body), and it is rewritten with a JSON body.
//! hyper closes the connection after such an answer, so nothing follows it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use super::Phase;
use crate::config::Config;

/// The connection limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    head: Duration,
    idle: Duration,
    send: Duration,
    max_header_bytes: usize,
}

impl Limits {
    pub(super) fn from_config(config: &Config) -> Limits {
        Limits {
            head: Duration::from_secs(config.header_read_timeout_secs),
            idle: Duration::from_secs(config.keep_alive_secs),
            send: Duration::from_secs(config.send_timeout_secs),
            max_header_bytes: config.max_header_bytes,
        }
    }
}

/// What a connection's requests tell its socket wrapper: whether an answer is in progress
/// (then no read deadline applies: hyper polls the socket for a close while it writes) and
/// since when the connection waits for a request head.
#[derive(Debug)]
pub(crate) struct Activity {
    /// Requests of this connection whose answer is not completely sent.
    open: AtomicUsize,
    /// When the wait for the next head began, in ms since [`epoch`]: the connection's start,
    /// or the end of the last answer.
    idle_since_ms: AtomicU64,
    /// When the first byte of the next head arrived (ms since [`epoch`]), or [`NO_HEAD`].
    head_since_ms: AtomicU64,
    /// Whether a request head was ever read on this connection.
    used: AtomicBool,
}

/// `head_since_ms` while no byte of a next head has arrived.
const NO_HEAD: u64 = u64::MAX;

/// The zero of the millisecond clocks in [`Activity`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX - 1)
}

fn at_ms(ms: u64) -> Instant {
    epoch() + Duration::from_millis(ms)
}

impl Activity {
    fn new() -> Activity {
        let now = now_ms();
        Activity {
            open: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(now),
            // A new connection owes its first head from the start.
            head_since_ms: AtomicU64::new(now),
            used: AtomicBool::new(false),
        }
    }

    /// A request head was read and its answer begins.
    fn head_done(&self) {
        self.head_since_ms.store(NO_HEAD, Ordering::Relaxed);
        self.used.store(true, Ordering::Relaxed);
    }

    /// Marks an answer in progress until the guard drops (when its body is sent or dropped).
    pub(super) fn answer(self: &Arc<Activity>) -> OpenAnswer {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenAnswer(Arc::clone(self))
    }

    /// When a pending read must give up, if a deadline applies now.
    fn read_deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.open.load(Ordering::Relaxed) > 0 {
            return None;
        }
        match self.head_since_ms.load(Ordering::Relaxed) {
            NO_HEAD => Some(at_ms(self.idle_since_ms.load(Ordering::Relaxed)) + limits.idle),
            since => Some(at_ms(since) + limits.head),
        }
    }

    /// Bytes arrived: if nothing is in progress and no head was started, they start one.
    fn bytes_read(&self) {
        if self.open.load(Ordering::Relaxed) == 0
            && self.head_since_ms.load(Ordering::Relaxed) == NO_HEAD
        {
            self.head_since_ms.store(now_ms(), Ordering::Relaxed);
        }
    }
}

/// An answer in progress on its connection; see [`Activity::answer`].
#[derive(Debug)]
pub(super) struct OpenAnswer(Arc<Activity>);

impl Drop for OpenAnswer {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle_since_ms.store(now_ms(), Ordering::Relaxed);
        }
    }
}

/// Serves one accepted connection with `router` until the client closes it, a limit cuts it,
/// or `phase` says so: [`Phase::Draining`] finishes the request in progress and closes
/// (an idle connection at once), [`Phase::Stopped`] drops it where it stands.
pub(super) async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    mut phase: watch::Receiver<Phase>,
) {
    // Small answers go out at once instead of waiting for Nagle's timer.
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = ConnIo {
        inner: stream,
        pending: None,
        at_answer_start: false,
        activity: Arc::clone(&activity),
        limits,
        read_timer: None,
        write_timer: None,
        phase: phase.clone(),
    };
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        requests.head_done();
        request.extensions_mut().insert(Arc::clone(&requests));
        router.clone().oneshot(request.map(Body::new))
    });
    let draining = *phase.borrow() != Phase::Serving;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        // hyper refuses buffers under 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192))
        .header_read_timeout(None)
        // A connection accepted during the drain answers one request (a probe) and closes.
        .keep_alive(!draining);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    // A connection the drain found before its first request: its client connected to send
    // one, maybe already did, and closing now would fail that request. It is treated as one
    // accepted during the drain: its first request is answered, then it closes (or the head
    // timeout closes it).
    let mut close_after_first_head: Option<Instant> = None;
    let mut check = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            changed = phase.changed() => {
                let now = if changed.is_err() { Phase::Stopped } else { *phase.borrow() };
                match now {
                    Phase::Serving => {}
                    Phase::Draining if !activity.used.load(Ordering::Relaxed) => {
                        close_after_first_head = Some(Instant::now() + limits.head);
                    }
                    Phase::Draining => conn.as_mut().graceful_shutdown(),
                    Phase::Stopped => return,
                }
            }
            _ = check.tick(), if close_after_first_head.is_some() => {
                let waited_enough = close_after_first_head.is_some_and(|at| Instant::now() >= at);
                if activity.used.load(Ordering::Relaxed) || waited_enough {
                    close_after_first_head = None;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A connection's socket with the head, idle and send limits, whose bodiless 4xx answers
/// (hyper's own) are given a JSON body.
#[derive(Debug)]
struct ConnIo {
    inner: TcpStream,
    /// A rewritten answer being written: its bytes, how many went out, and the length of
    /// the original buffer, which is what hyper is told was written.
    pending: Option<(Vec<u8>, usize, usize)>,
    /// True from a read until the next write: only then can a write start an answer. Body
    /// bytes that happen to look like an error head are never rewritten.
    at_answer_start: bool,
    activity: Arc<Activity>,
    limits: Limits,
    /// Armed while a read waits under a deadline.
    read_timer: Option<Pin<Box<Sleep>>>,
    /// Armed when a write found the socket full; disarmed by any progress.
    write_timer: Option<Pin<Box<Sleep>>>,
    /// The server's phase: a connection dropped once it is [`Phase::Stopped`] is being cut.
    phase: watch::Receiver<Phase>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        // A connection the server stops under may hold megabytes of an answer in its send
        // buffer. A plain close would queue the FIN behind them, and when the process is a
        // container's, its network namespace goes away before they drain: the client would
        // wait for bytes that never come. A reset tells it at once that the answer was cut.
        // Checked on drop, not where the loop sees the phase change: a runtime shutting down
        // drops its connection tasks without running them again.
        if *self.phase.borrow() == Phase::Stopped {
            let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
        }
    }
}

/// Longest answer head that can be one of hyper's error answers.
const MAX_ERROR_HEAD: usize = 512;

/// The rewritten form of `buf` when it is one of hyper's bodiless 4xx answers.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.1 4") || buf.len() < 12 {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let head = head.strip_suffix("\r\n\r\n")?;
    // hyper's own error answers are short, close the connection and declare no body.
    let has = |line: &str| head.lines().any(|l| l.eq_ignore_ascii_case(line));
    if buf.len() > MAX_ERROR_HEAD || !has("content-length: 0") || !has("connection: close") {
        return None;
    }
    let status = &head[9..12];
    let (code, message) = match status {
        "414" => ("uri_too_long", "request target is too long"),
        "431" => (
            "headers_too_large",
            "request line and headers are too large",
        ),
        _ => ("bad_request", "the request could not be parsed as HTTP"),
    };
    let body = format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#);
    let mut out = String::new();
    for line in head.lines() {
        if !line.eq_ignore_ascii_case("content-length: 0") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("content-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    Some(out.into_bytes())
}

impl ConnIo {
    /// Writes the pending rewritten answer; `Ready(Ok(n))` reports the original length.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some((bytes, written, reported)) = self.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *written < bytes.len() {
            let n = ready!(Self::poll_timed_write(
                &mut self.inner,
                &mut self.write_timer,
                self.limits.send,
                cx,
                |inner, cx| Pin::new(inner).poll_write(cx, &bytes[*written..]),
            ))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let reported = *reported;
        self.pending = None;
        Poll::Ready(Ok(reported))
    }

    /// Runs one write under the send timeout: the timer starts at the first `Pending` and
    /// fails the write when it fires before the socket takes a byte.
    fn poll_timed_write(
        inner: &mut TcpStream,
        timer: &mut Option<Pin<Box<Sleep>>>,
        limit: Duration,
        cx: &mut Context<'_>,
        write: impl FnOnce(&mut TcpStream, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match write(inner, cx) {
            Poll::Pending => {
                let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client accepted no byte within the send timeout",
                    )));
                }
                Poll::Pending
            }
            ready => {
                *timer = None;
                ready
            }
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {
                let Some(deadline) = this.activity.read_deadline(&this.limits) else {
                    this.read_timer = None;
                    return Poll::Pending;
                };
                let sleep = match &mut this.read_timer {
                    Some(sleep) => {
                        if sleep.deadline() != deadline {
                            sleep.as_mut().reset(deadline);
                        }
                        sleep
                    }
                    None => this
                        .read_timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                if sleep.as_mut().poll(cx).is_ready() {
                    // hyper closes the connection on a read error, without an answer: a
                    // client too slow to send a head gets nothing to wait for.
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no complete request head within the limit",
                    )));
                }
                Poll::Pending
            }
            ready => {
                if buf.filled().len() > before {
                    this.at_answer_start = true;
                    this.activity.bytes_read();
                }
                ready
            }
        }
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            let fresh = std::mem::take(&mut this.at_answer_start);
            match rewrite(buf).filter(|_| fresh) {
                Some(bytes) => this.pending = Some((bytes, 0, buf.len())),
                None => {
                    return Self::poll_timed_write(
                        &mut this.inner,
                        &mut this.write_timer,
                        this.limits.send,
                        cx,
                        |inner, cx| Pin::new(inner).poll_write(cx, buf),
                    )
                }
            }
        }
        this.poll_pending(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            let fresh = std::mem::take(&mut this.at_answer_start);
            let first = bufs.iter().find(|b| !b.is_empty()).filter(|_| fresh);
            match first.and_then(|b| rewrite(b).map(|r| (r, b.len()))) {
                Some((bytes, len)) => this.pending = Some((bytes, 0, len)),
                None => {
                    return Self::poll_timed_write(
                        &mut this.inner,
                        &mut this.write_timer,
                        this.limits.send,
                        cx,
                        |inner, cx| Pin::new(inner).poll_write_vectored(cx, bufs),
                    )
                }
            }
        }
        this.poll_pending(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn rewrites_only_bodiless_4xx() {
        let hyper = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\nconnection: close\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "uri_too_long");

        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-length: 60\r\n\r\n";
        let open = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert!(
            rewrite(open).is_none(),
            "hyper's errors close the connection"
        );
        assert!(rewrite(ours).is_none());
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 4").is_none());
    }
}
