//! Compression of JSON and CSV answers (zstd, br or gzip, as the client's `Accept-Encoding`
//! allows; README "API"), and no cost for the answers that are never compressed.
//!
//! tower-http's compression wraps every body it sees in an encoder enum large enough to hold
//! a brotli state, even when it then leaves the body alone; on a small `format=bin` answer
//! that wrapping is the dearest step of the request (README "Performance"). So a request
//! whose answer cannot be compressed — no encoding the server speaks in `Accept-Encoding`,
//! a `/raw` byte range, or an explicit `format=bin` or `format=npy` — skips the compressor.
//! Whatever reaches the compressor is still judged on the answer: only JSON and CSV bodies
//! over 256 bytes are compressed (an `Accept` header that picks bin is left alone there).
//!
//! Every encoding runs at its level 1 (gzip 1, br 1, zstd 1), not at the libraries' defaults
//! (gzip 6, br 4, zstd 3): the answers compressed here are numbers in text, whose entropy a
//! fast level already removes. On the 307 KB JSON of a `sum` along one axis of a 16384 x 16384
//! array, gzip 6 took 13 ms and gave 134 KB, gzip 1 2.5 ms and 146 KB; the 1.6 MB answer of
//! all ops along that axis took 76 ms at gzip 6 and 12 ms at gzip 1 (README "Aggregates").
//! Compression runs after the reduction, on one thread, so its time is added to the answer's.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use tower::{Layer, Service};
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionLayer, CompressionLevel};

/// The level of every encoding: see the module notes.
const LEVEL: CompressionLevel = CompressionLevel::Precise(1);

/// Only JSON and CSV bodies.
#[derive(Debug, Clone, Copy)]
struct TextBody;

impl Predicate for TextBody {
    fn should_compress<B>(&self, response: &axum::http::Response<B>) -> bool
    where
        B: axum::body::HttpBody,
    {
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/csv"))
    }
}

type Policy = tower_http::compression::predicate::And<SizeAbove, TextBody>;

/// The layer: put it inside the front, so the front counts the bytes that go on the wire.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CompressText;

impl<S: Clone> Layer<S> for CompressText {
    type Service = MaybeCompress<S>;

    fn layer(&self, inner: S) -> MaybeCompress<S> {
        let policy = SizeAbove::new(256).and(TextBody);
        MaybeCompress {
            compressed: CompressionLayer::new()
                .quality(LEVEL)
                .compress_when(policy)
                .layer(inner.clone()),
            plain: inner,
        }
    }
}

/// Sends each request to the compressor or straight to the inner service.
#[derive(Clone)]
pub(super) struct MaybeCompress<S> {
    plain: S,
    compressed: Compression<S, Policy>,
}

/// Whether the answer to a request with these parts may be compressed.
fn may_compress(path: &str, query: Option<&str>, headers: &HeaderMap) -> bool {
    let accepts = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("gzip") || v.contains("br") || v.contains("zstd") || v.contains('*')
        });
    let binary_format = query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "format=bin" || pair == "format=npy")
    });
    accepts && !path.ends_with("/raw") && !binary_format && !is_zarr_chunk(path)
}

/// Whether `path` may be a Zarr chunk (anything under `/zarr/` but the JSON metadata and the
/// listings): bytes as stored, with ranges over them, like `/raw`.
fn is_zarr_chunk(path: &str) -> bool {
    path.strip_prefix("/zarr/").is_some_and(|key| {
        let last = key.rsplit('/').next().unwrap_or("");
        !(last.is_empty() || last == "zarr.json" || last.starts_with(".z"))
    })
}

impl<S> Service<Request> for MaybeCompress<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Both wrap the same kind of service; readiness of a clone-per-call axum route is
        // always immediate, but ask both so neither is called unready.
        match self.plain.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.compressed.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let uri = request.uri();
        if may_compress(uri.path(), uri.query(), request.headers()) {
            let future = self.compressed.call(request);
            Box::pin(async move { Ok(future.await?.map(Body::new)) })
        } else {
            Box::pin(self.plain.call(request))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(accept_encoding: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = accept_encoding {
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_requests_that_may_get_text_in_an_encoding_we_speak_are_compressed() {
        let data = "/v1/datasets/m/data";
        assert!(may_compress(
            data,
            Some("slice=0"),
            &headers(Some("gzip, deflate"))
        ));
        assert!(may_compress(data, None, &headers(Some("ZSTD"))));
        assert!(may_compress(data, Some("format=csv"), &headers(Some("br"))));
        assert!(!may_compress(data, None, &headers(None)));
        assert!(!may_compress(data, None, &headers(Some("identity"))));
        assert!(!may_compress(
            data,
            Some("slice=0&format=bin"),
            &headers(Some("gzip"))
        ));
        assert!(!may_compress(
            data,
            Some("format=npy"),
            &headers(Some("gzip"))
        ));
        assert!(!may_compress(
            "/v1/datasets/m/raw",
            None,
            &headers(Some("gzip"))
        ));
        assert!(!may_compress("/zarr/m/c/0/1", None, &headers(Some("gzip"))));
        assert!(!may_compress("/zarr/m/0.1", None, &headers(Some("gzip"))));
        for meta in [
            "/zarr/zarr.json",
            "/zarr/m/.zarray",
            "/zarr/.zmetadata",
            "/zarr/",
        ] {
            assert!(may_compress(meta, None, &headers(Some("gzip"))), "{meta}");
        }
    }
}
