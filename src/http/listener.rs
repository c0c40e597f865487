//! The TCP listener: sets `TCP_NODELAY` on each connection and gives JSON bodies to the
//! few error answers that hyper writes itself.
//!
//! hyper answers requests it cannot parse before any handler runs: a request target over
//! 64 KiB gets `414`, headers past its buffer `431`, garbage `400`, each with
//! `content-length: 0`. DESIGN wants the JSON error body on every error, so [`JsonErrorIo`]
//! watches what is written: an answer that starts `HTTP/1.1 4` and declares an empty body can
//! only be one of hyper's (every answer of arrayd's own has a body), and it is rewritten with
//! a JSON body. hyper closes the connection after such an answer, so nothing follows it.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A [`TcpListener`] whose connections are [`JsonErrorIo`]s.
#[derive(Debug)]
pub(super) struct Listener(pub(super) TcpListener);

impl axum::serve::Listener for Listener {
    type Io = JsonErrorIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    // Small answers go out at once instead of waiting for Nagle's timer.
                    let _ = stream.set_nodelay(true);
                    return (
                        JsonErrorIo {
                            inner: stream,
                            pending: None,
                            at_answer_start: false,
                        },
                        addr,
                    );
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose bodiless 4xx answers (hyper's own) are given a JSON body.
#[derive(Debug)]
pub(super) struct JsonErrorIo {
    inner: TcpStream,
    /// A rewritten answer being written: its bytes, how many went out, and the length of
    /// the original buffer, which is what hyper is told was written.
    pending: Option<(Vec<u8>, usize, usize)>,
    /// True from a read until the next write: only then can a write start an answer. Body
    /// bytes that happen to look like an error head are never rewritten.
    at_answer_start: bool,
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
        "414" => ("uri_too_long", "request target is longer than 64 KiB"),
        "431" => ("headers_too_large", "request headers are too large"),
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

impl JsonErrorIo {
    /// Writes the pending rewritten answer; `Ready(Ok(n))` reports the original length.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some((bytes, written, reported)) = self.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let reported = *reported;
        self.pending = None;
        Poll::Ready(Ok(reported))
    }
}

impl AsyncRead for JsonErrorIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.at_answer_start = true;
        }
        polled
    }
}

impl AsyncWrite for JsonErrorIo {
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
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
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
                None => return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
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
