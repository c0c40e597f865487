//! `POST /v1/datasets` and `DELETE /v1/datasets/{name}`: registrations over HTTP (the admin
//! token is checked by the front). The file work (validation, map, the durable save) runs on
//! the blocking pool.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::{Error, Result};
use super::extract::Path;
use super::AppState;
use crate::registration::Registration;
use crate::registry::RegisterError;

/// `POST /v1/datasets`: 201 with the new dataset's META and its `Location`.
pub(super) async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    if !is_json(&headers) {
        return Err(Error::UnsupportedMediaType);
    }
    let bytes = read_limited(body, &headers, state.config.max_body_bytes).await?;
    let reg = Registration::parse(&bytes).map_err(Error::BadRegistration)?;
    let registry = state.registry.clone();
    let dataset = tokio::task::spawn_blocking(move || registry.register(&reg))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(from_register)?;
    let location = format!("/v1/datasets/{}", dataset.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(json!(dataset.meta())),
    )
        .into_response())
}

/// `DELETE /v1/datasets/{name}`: 204 once the registration's file is gone.
pub(super) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    let registry = state.registry.clone();
    tokio::task::spawn_blocking(move || registry.unregister(&name))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(from_register)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Bytes of a too-large body read and thrown away before the 413, so a client still writing
/// a moderately large body reads the answer instead of a connection reset.
const DRAIN_BYTES: usize = 1 << 20;

/// The body, or `413` when it is over `limit` bytes.
async fn read_limited(body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>> {
    use tokio_stream::StreamExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > (limit + DRAIN_BYTES) as u64) {
        return Err(Error::BodyTooLarge(limit));
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::BadRegistration(format!("body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit + DRAIN_BYTES {
            break;
        }
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(Error::BodyTooLarge(limit));
    }
    Ok(buf)
}

fn from_register(e: RegisterError) -> Error {
    match e {
        RegisterError::Bad(reason) => Error::BadRegistration(reason),
        RegisterError::Conflict(reason) => Error::Conflict(reason),
        RegisterError::Unknown(name) => Error::UnknownDataset(name),
        RegisterError::State(e) => Error::Internal(format!("state directory: {e}")),
    }
}

/// `application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
