//! `GET`/`HEAD /zarr/...`: every dataset as a Zarr array (README "Zarr"). The protocol is in
//! [`crate::zarr`]; this handler looks the key up and answers it.
//!
//! Metadata is built from the registry on every request, so it follows registrations and
//! rescans at once, and costs one small JSON document. A chunk answer is its run of the map
//! streamed like `/raw` (the same producer, the same inline path for small cached chunks),
//! followed by zeros up to the full chunk size for an edge chunk, with the validators,
//! conditional requests and single byte ranges of `/raw` over that padded chunk. A request
//! for several ranges gets the whole chunk (`200`), as RFC 9110 allows; Zarr readers ask for
//! one range at most.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::cache::{Outcome, Validators, CACHE_CONTROL};
use super::error::{Error, Result};
use super::range::{self, ByteRange, RangeSpec};
use super::raw::Planned;
use super::AppState;
use crate::dataset::Dataset;
use crate::plan::Run;
use crate::produce::Segment;
use crate::zarr::grid::{ChunkRun, Grid};
use crate::zarr::key::{ArrayKey, Key, RootDoc};
use crate::zarr::{listing, meta};

pub(super) async fn get(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    request: HeaderMap,
) -> Result<Response> {
    let path = uri.path();
    let missing = || Error::NoSuchKey(path.chars().take(200).collect());
    let tail = path.strip_prefix("/zarr").ok_or_else(missing)?;
    match Key::parse(tail) {
        Key::RootIndex => {
            // Only the arrays: zarr-python, listing a group, takes every entry for a child
            // node and probes it, so the group's own metadata keys would cost requests and
            // warnings; it reads them by name anyway.
            let entries: Vec<String> = state
                .registry
                .list()
                .iter()
                .map(|d| format!("{}/", d.name))
                .collect();
            Ok(html(listing::html("/zarr/", &entries)))
        }
        Key::Root(doc) => {
            let datasets = state.registry.list();
            let specs: Vec<meta::ArraySpec<'_>> =
                datasets.iter().map(|d| spec(d, &state)).collect();
            Ok(json(match doc {
                RootDoc::ZarrJson => meta::root_v3(&specs),
                RootDoc::ZGroup => meta::zgroup(),
                RootDoc::ZAttrs => Value::Object(serde_json::Map::new()),
                RootDoc::ZMetadata => meta::zmetadata(&specs),
            }))
        }
        Key::Array { name, rest } => {
            let dataset = state.dataset(name)?;
            let spec = spec(&dataset, &state);
            match ArrayKey::parse(rest, dataset.shape.len()) {
                ArrayKey::Index => {
                    let entries = ["zarr.json", ".zarray", ".zattrs"].map(String::from);
                    Ok(html(listing::html(&format!("/zarr/{name}/"), &entries)))
                }
                ArrayKey::ZarrJson => Ok(json(spec.v3())),
                ArrayKey::ZArray => Ok(json(spec.zarray())),
                ArrayKey::ZAttrs => Ok(json(spec.zattrs())),
                ArrayKey::Chunk(position) => {
                    let run = spec.grid.chunk(&position).ok_or_else(missing)?;
                    chunk(&state, Arc::clone(&dataset), run, &method, &request)
                }
                ArrayKey::Missing => Err(missing()),
            }
        }
        Key::Missing => Err(missing()),
    }
}

fn spec<'a>(dataset: &'a Dataset, state: &AppState) -> meta::ArraySpec<'a> {
    meta::ArraySpec {
        name: &dataset.name,
        dtype: dataset.dtype,
        order: dataset.order,
        grid: Grid::new(
            &dataset.shape,
            dataset.dtype.itemsize() as u64,
            dataset.order,
            state.config.zarr_chunk_bytes,
        ),
        dims: dataset.dims.as_deref(),
        attrs: dataset.attrs.as_ref(),
    }
}

fn json(value: Value) -> Response {
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        )],
        axum::Json(value),
    )
        .into_response()
}

fn html(page: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ],
        page,
    )
        .into_response()
}

/// One chunk's answer; see the module docs.
fn chunk(
    state: &AppState,
    dataset: Arc<Dataset>,
    run: ChunkRun,
    method: &Method,
    request: &HeaderMap,
) -> Result<Response> {
    let validators = Validators::zarr_chunk(&dataset, run.offset, run.len, run.padded);
    let mut head = HeaderMap::new();
    validators.headers(&mut head);
    head.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let use_range = match validators.evaluate(request, SystemTime::now()) {
        Outcome::NotModified => return Ok((StatusCode::NOT_MODIFIED, head).into_response()),
        Outcome::Serve { use_range } => use_range,
    };
    head.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let range_header = request
        .get(header::RANGE)
        .filter(|_| use_range)
        .and_then(|v| v.to_str().ok());
    let whole = ByteRange {
        start: 0,
        end_exc: run.padded,
    };
    let (status, wanted) = match range::parse(range_header, run.padded) {
        RangeSpec::Unsatisfiable => return Err(Error::RangeNotSatisfiable { len: run.padded }),
        RangeSpec::Satisfiable(ranges) if ranges.len() == 1 => {
            let one = ranges[0];
            if let Ok(v) = HeaderValue::from_str(&one.content_range(run.padded)) {
                head.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, one)
        }
        RangeSpec::Full | RangeSpec::Satisfiable(_) => (StatusCode::OK, whole),
    };
    head.insert(header::CONTENT_LENGTH, HeaderValue::from(wanted.len()));
    if method == Method::HEAD {
        return Ok((status, head, Body::empty()).into_response());
    }
    let planned = Planned {
        segments: segments(dataset.offset + run.offset, run.len, wanted),
        data_len: wanted.len(),
    };
    let body = planned.into_body(dataset, state)?;
    Ok((status, head, body).into_response())
}

/// Zeros for padding, shared by every answer.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// The segments of bytes `wanted` of a padded chunk whose first `len` bytes are the file run at
/// `file_offset` and the rest zeros.
fn segments(file_offset: u64, len: u64, wanted: ByteRange) -> Vec<Segment> {
    let mut out = Vec::new();
    let data_end = wanted.end_exc.min(len);
    if wanted.start < data_end {
        out.push(Segment::File(Run {
            offset: file_offset + wanted.start,
            len: data_end - wanted.start,
        }));
    }
    let mut zeros = wanted.end_exc - wanted.start.max(data_end);
    while zeros > 0 {
        let n = zeros.min(ZEROS.len() as u64);
        out.push(Segment::Literal(Bytes::from_static(&ZEROS[..n as usize])));
        zeros -= n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{segments, ZEROS};
    use crate::http::range::ByteRange;
    use crate::produce::Segment;

    /// `(file offset, len)` for runs, `(u64::MAX, len)` for zeros.
    fn shape(segments: &[Segment]) -> Vec<(u64, u64)> {
        segments
            .iter()
            .map(|p| match p {
                Segment::File(r) => (r.offset, r.len),
                Segment::Literal(b) => {
                    assert!(b.iter().all(|&x| x == 0));
                    (u64::MAX, b.len() as u64)
                }
            })
            .collect()
    }

    fn range(start: u64, end_exc: u64) -> ByteRange {
        ByteRange { start, end_exc }
    }

    #[test]
    fn runs_then_zeros_for_any_range() {
        let z = u64::MAX;
        assert_eq!(shape(&segments(100, 10, range(0, 10))), vec![(100, 10)]);
        assert_eq!(
            shape(&segments(100, 10, range(0, 16))),
            vec![(100, 10), (z, 6)]
        );
        assert_eq!(
            shape(&segments(100, 10, range(4, 12))),
            vec![(104, 6), (z, 2)]
        );
        assert_eq!(shape(&segments(100, 10, range(12, 16))), vec![(z, 4)]);
        assert_eq!(shape(&segments(100, 10, range(2, 5))), vec![(102, 3)]);
        let big = ZEROS.len() as u64;
        assert_eq!(
            shape(&segments(0, 1, range(0, 1 + 2 * big + 3))),
            vec![(0, 1), (z, big), (z, big), (z, 3)]
        );
    }
}
