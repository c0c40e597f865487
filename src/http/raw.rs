//! `GET`/`HEAD /v1/datasets/{name}/raw`: the array region of a dataset's file, bytes as
//! stored (not the `.npy` header), with RFC 9110 byte ranges and validators (README "/raw and
//! caching").
//!
//! One range is a `206` with `Content-Range`; several are a `206 multipart/byteranges` whose
//! parts are sorted and coalesced by [`range`](super::range); none satisfiable is a `416`.
//! Every answer's length is known before its head goes out.
//!
//! Two ways to send the bytes:
//! - A body of at most [`INLINE_MAX_BYTES`] data bytes whose pages are all in the page cache is
//!   copied out on the async worker with `preadv2(RWF_NOWAIT)` ([`produce::read_cached`]),
//!   which never waits for the disk and never touches the map. A blocking-thread hop and a
//!   channel would cost more than the copy for the 4 KiB reads this path exists for
//!   (README "Performance", the /raw rows).
//! - Anything else (large, or not cached) streams through a [`Producer`], exactly like
//!   `bin`: zero-copy slices of the map in chunks of
//!   `--chunk-bytes`, each populated before it is handed to hyper, so no async worker takes a
//!   page fault and memory stays bounded.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::cache::{Outcome, Validators};
use super::data::{answer, array_head, produce_options, value};
use super::error::{Error, Result};
use super::extract::Path;
use super::range::{self, ByteRange, RangeSpec};
use super::{stream, AppState};
use crate::dataset::Dataset;
use crate::plan::Run;
use crate::produce::{self, Producer, Segment, INLINE_MAX_BYTES};

pub(super) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    request: HeaderMap,
) -> Result<Response> {
    let dataset = state.dataset(&name)?;
    let validators = Validators::raw(&dataset);
    // Filled in place and moved into the answer whole, as in `data`.
    let mut head = HeaderMap::with_capacity(12);
    validators.headers(&mut head);
    head.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let use_range = match validators.evaluate(&request, SystemTime::now()) {
        Outcome::NotModified => return Ok((StatusCode::NOT_MODIFIED, head).into_response()),
        Outcome::Serve { use_range } => use_range,
    };
    array_head(&mut head, dataset.dtype, &dataset.shape);
    let len = dataset.nbytes;
    let range_header = request
        .get(header::RANGE)
        .filter(|_| use_range)
        .and_then(|v| v.to_str().ok());
    let (status, body) = match range::parse(range_header, len) {
        RangeSpec::Unsatisfiable => return Err(Error::RangeNotSatisfiable { len }),
        RangeSpec::Full => (StatusCode::OK, single(&dataset, full(len), &mut head)),
        RangeSpec::Satisfiable(ranges) => {
            let body = match ranges.as_slice() {
                [one] => {
                    head.insert(header::CONTENT_RANGE, value(&one.content_range(len)));
                    single(&dataset, *one, &mut head)
                }
                many => multipart(&dataset, many, &mut head),
            };
            (StatusCode::PARTIAL_CONTENT, body)
        }
    };
    if method == Method::HEAD {
        return Ok(answer(status, head, Body::empty()));
    }
    let body = body.into_body(dataset, &state)?;
    Ok(answer(status, head, body))
}

/// A body decided but not started: started only for `GET`. Zarr chunks use it too.
pub(super) struct Planned {
    pub(super) segments: Vec<Segment>,
    /// Data bytes (not part headers), to choose between the inline and streamed paths.
    pub(super) data_len: u64,
}

impl Planned {
    pub(super) fn into_body(self, dataset: Arc<Dataset>, state: &AppState) -> Result<Body> {
        if self.data_len <= INLINE_MAX_BYTES {
            if let Some(body) = produce::read_cached(&dataset, &self.segments) {
                return Ok(Body::from(body));
            }
        }
        // A file truncated before this request gets a clean 500 instead of a cut stream.
        dataset
            .check_len()
            .map_err(|e| Error::Unreadable(format!("{}: {e}", dataset.name)))?;
        let options = produce_options(&state.config);
        let producer = Producer::new(dataset, self.segments.into(), None, options);
        Ok(stream::body(producer, &state.streams_in_flight))
    }
}

/// The whole representation as one range (empty when the array is).
fn full(len: u64) -> ByteRange {
    ByteRange {
        start: 0,
        end_exc: len,
    }
}

/// A `200` or single-range `206` body.
fn single(dataset: &Dataset, r: ByteRange, head: &mut HeaderMap) -> Planned {
    head.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    head.insert(header::CONTENT_LENGTH, HeaderValue::from(r.len()));
    let segments = if r.len() == 0 {
        Vec::new()
    } else {
        vec![Segment::File(run(dataset, r))]
    };
    Planned {
        segments,
        data_len: r.len(),
    }
}

/// A `multipart/byteranges` body (RFC 9110 §14.6): each part opens with a boundary line,
/// `Content-Type` and `Content-Range`, and the body closes with `--BOUNDARY--`.
fn multipart(dataset: &Dataset, ranges: &[ByteRange], head: &mut HeaderMap) -> Planned {
    let boundary = boundary();
    let len = dataset.nbytes;
    let mut segments = Vec::with_capacity(2 * ranges.len() + 1);
    let mut total = 0u64;
    let mut data_len = 0u64;
    for (i, r) in ranges.iter().enumerate() {
        let part_head = format!(
            "{}--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: {}\r\n\r\n",
            if i == 0 { "" } else { "\r\n" },
            r.content_range(len),
        );
        total += part_head.len() as u64 + r.len();
        data_len += r.len();
        segments.push(Segment::Literal(Bytes::from(part_head)));
        segments.push(Segment::File(run(dataset, *r)));
    }
    let close = format!("\r\n--{boundary}--\r\n");
    total += close.len() as u64;
    segments.push(Segment::Literal(Bytes::from(close)));
    head.insert(
        header::CONTENT_TYPE,
        value(&format!("multipart/byteranges; boundary={boundary}")),
    );
    head.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    Planned { segments, data_len }
}

/// A fresh 128-bit random boundary: array bytes are arbitrary, so a fixed boundary could
/// occur in the data; a random one practically cannot. `RandomState` is seeded from the OS
/// per process and varied per instance, which is all the randomness this needs.
fn boundary() -> String {
    let random = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("arrayd-{:016x}{:016x}", random(), random())
}

/// The file run of representation range `r`.
fn run(dataset: &Dataset, r: ByteRange) -> Run {
    Run {
        offset: dataset.offset + r.start,
        len: r.len(),
    }
}
