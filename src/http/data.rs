//! `GET`/`HEAD /v1/datasets/{name}/data`: a selection, streamed in the negotiated format
//! (README "API").
//!
//! Everything that can fail with a 4xx (dataset, slice, format, parameters) is checked before
//! the response head goes out; after it, the only failures are a vanished client (the
//! producer stops) and a data file truncated under its map (the connection is cut).
//!
//! Answers carry the validators of [`cache`](super::cache); a matching `If-None-Match` or
//! `If-Modified-Since` gets a `304` without reading the map.

use axum::body::Body;
use axum::extract::State;
use std::time::SystemTime;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::cache::{Outcome, Validators};
use super::error::{Error, Result};
use super::extract::{nonfinite_style, Path, Query};
use super::{stream, AppState};
use crate::config::Config;
use crate::dtype::DType;
use crate::encode::{self, Format, Output, Style};
use crate::plan;
use crate::produce::{self, Producer};
use crate::selection::Selection;

/// `X-Array-Dtype`: the stored dtype.
static X_ARRAY_DTYPE: HeaderName = HeaderName::from_static("x-array-dtype");
/// `X-Array-Shape`: the output shape, comma-separated.
static X_ARRAY_SHAPE: HeaderName = HeaderName::from_static("x-array-shape");

/// Query parameters of `/data`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DataQuery {
    /// NumPy basic-indexing selection; the whole array when absent.
    slice: Option<String>,
    /// `json|csv|bin|npy`; beats `Accept`.
    format: Option<String>,
    /// `null` (default) or `string`: how JSON spells NaN and ±Inf.
    nonfinite: Option<String>,
}

pub(super) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<DataQuery>,
) -> Result<Response> {
    let dataset = state.dataset(&name)?;
    // A file already truncated under its map gets a clean 500 instead of a cut stream.
    dataset
        .check_poisoned()
        .map_err(|e| Error::Unreadable(format!("{}: {e}", dataset.name)))?;
    let selection = Selection::parse(query.slice.as_deref().unwrap_or(""), &dataset.shape)?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = encode::negotiate(query.format.as_deref(), accept)?;
    let json_style = nonfinite_style(query.nonfinite.as_deref())?;
    let nonfinite = if json_style == Style::JsonString {
        "string"
    } else {
        "null"
    };
    let slice = query.slice.as_deref().unwrap_or("");
    let validators = Validators::data(&dataset, slice, format.as_str(), nonfinite);
    // One header map, filled in place and moved into the answer: merging maps (or letting
    // `IntoResponse` copy them) showed in profiles of small requests (README "Performance").
    let mut head = HeaderMap::with_capacity(12);
    validators.headers(&mut head);
    if query.format.is_none() {
        // The format then came from `Accept` (README "API").
        head.insert(header::VARY, HeaderValue::from_static("accept"));
    }
    if validators.evaluate(&headers, SystemTime::now()) == Outcome::NotModified {
        return Ok((StatusCode::NOT_MODIFIED, head).into_response());
    }
    let output = Output {
        format,
        dtype: dataset.dtype,
        shape: selection.out_shape(),
        json_style,
    };
    add_head(&output, &dataset.name, &mut head);
    if method == Method::HEAD {
        return Ok(answer(StatusCode::OK, head, Body::empty()));
    }
    let options = produce_options(&state.config);
    let runs = plan::runs(&selection, &dataset.layout());
    let inline = produce::inline(
        &dataset,
        runs.clone(),
        output.encoder(),
        output.size_estimate(),
        options,
    );
    let body = if let Some(body) = inline {
        Body::from(body.map_err(|e| Error::Unreadable(e.to_string()))?)
    } else {
        let producer = Producer::new(dataset, runs.into(), Some(output.encoder()), options);
        stream::body(producer, &state.streams_in_flight)
    };
    Ok(answer(StatusCode::OK, head, body))
}

/// How producers read, from `--chunk-bytes` and `--madvise` (`/raw` and Zarr chunks too).
pub(super) fn produce_options(config: &Config) -> produce::Options {
    produce::Options {
        chunk_bytes: config.chunk_bytes,
        madvise: config.madvise,
    }
}

/// An answer of `status` with exactly `head` and `body`, the map moved in whole (`/raw`
/// uses it too).
pub(super) fn answer(status: StatusCode, head: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = head;
    response
}

/// Adds the headers that describe a `/data` answer's body to `head`.
fn add_head(output: &Output, name: &str, head: &mut HeaderMap) {
    head.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(output.format.content_type()),
    );
    array_head(head, output.dtype, &output.shape);
    if let Some(len) = output.content_length() {
        head.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if output.format == Format::Npy {
        let file = format!("attachment; filename=\"{name}.npy\"");
        head.insert(header::CONTENT_DISPOSITION, value(&file));
    }
}

/// Adds `X-Array-Dtype` and `X-Array-Shape` (`/raw` sends them too).
pub(super) fn array_head(head: &mut HeaderMap, dtype: DType, shape: &[u64]) {
    head.insert(X_ARRAY_DTYPE.clone(), value(&dtype.descr()));
    head.insert(X_ARRAY_SHAPE.clone(), value(&shape_text(shape)));
}

/// A shape as `X-Array-Shape` writes it: `16384,16384` (empty for a 0-d array).
fn shape_text(shape: &[u64]) -> String {
    let mut n = itoa::Buffer::new();
    let mut out = String::with_capacity(12 * shape.len());
    for (i, &d) in shape.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(n.format(d));
    }
    out
}

/// A header value of text arrayd wrote: dtype strings, digits, commas, dataset names, byte
/// ranges and multipart boundaries, all visible ASCII (anything else would become empty).
pub(super) fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes_are_comma_separated() {
        assert_eq!(super::shape_text(&[16384, 1024]), "16384,1024");
        assert_eq!(super::shape_text(&[7]), "7");
        assert_eq!(super::shape_text(&[]), "");
        assert_eq!(super::shape_text(&[0, u64::MAX]), "0,18446744073709551615");
    }
}
