//! The HTTP layer's error: every failure a handler can meet, mapped in one `match` to a
//! status and a stable `code`, and rendered as the body of README "API"
//! `{"error": {"code": "...", "message": "..."}}`.
//!
//! 5xx answers carry a generic message; the cause goes into the response extensions, where
//! the logging middleware finds it, so no host path or internal detail reaches a client.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::encode::FormatError;
use crate::reduce::ReduceError;
use crate::selection::SelectionError;

/// Result of a handler.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `404`: no dataset by that name.
    #[error("no dataset named {0:?}")]
    UnknownDataset(String),
    /// `404`: no such key in the Zarr view (readers take it for "fill value").
    #[error("no such Zarr key: {0}")]
    NoSuchKey(String),
    /// `404`: no route for the path.
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    /// `405`: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `400`: the `slice=` parameter.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// `400` or `406`: `format=` or `Accept`.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// `400`: a query parameter that does not parse.
    #[error("bad query: {0}")]
    BadQuery(String),
    /// `414`: the request target is longer than `--max-uri-bytes`.
    #[error("request target is {len} bytes, over the limit of {limit}")]
    UriTooLong {
        /// Length of path and query.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// `503`: no response head within `--request-timeout-secs`.
    #[error("no answer within {0} s")]
    Timeout(u64),
    /// `400` for bad aggregate parameters or dtype; `500` when the data file cannot be read.
    #[error(transparent)]
    Reduce(#[from] ReduceError),
    /// `500`: a bug or an I/O failure; the message stays in the logs.
    #[error("internal error: {0}")]
    Internal(String),
    /// `416`: a valid `Range` of which nothing lies inside the `len`-byte representation;
    /// the answer carries `Content-Range: bytes */len` (RFC 9110 §15.5.17).
    #[error("no requested range lies inside the {len} bytes of the array")]
    RangeNotSatisfiable {
        /// Length of the representation in bytes.
        len: u64,
    },
    /// `401`: a guarded route without the token (`invalid: false`) or with a wrong one; the
    /// answer carries `WWW-Authenticate: Bearer` (RFC 6750 §3).
    #[error("{}", if *invalid { "the bearer token is not valid" } else { "this call needs a bearer token (Authorization: Bearer TOKEN)" })]
    Unauthorized {
        /// A token was given but matches none.
        invalid: bool,
    },
    /// `403`: a write with the read token, or while no admin token is configured.
    #[error("{0}")]
    Forbidden(&'static str),
    /// `503`: `--max-concurrent` requests are in progress; the answer says `Retry-After`.
    #[error("the server is at its limit of {0} requests in progress; retry shortly")]
    Overloaded(usize),
    /// `503`: the server is draining before it stops; the answer closes the connection.
    #[error("the server is shutting down; retry on another replica")]
    Draining,
    /// `400`: a registration body or its data file is unusable.
    #[error("bad registration: {0}")]
    BadRegistration(String),
    /// `409`: a registration's name is taken, or a deletion of a data-directory dataset.
    #[error("{0}")]
    Conflict(String),
    /// `415`: a registration whose `Content-Type` is not `application/json`.
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    /// `413`: a request body over `--max-body-bytes`.
    #[error("the body is over the limit of {0} bytes")]
    BodyTooLarge(usize),
    /// `500`: the data file shrank under its map or its pages cannot be read (README
    /// "Limits and known gaps"); found before the head was sent.
    #[error("data file can no longer be read: {0}")]
    Unreadable(String),
}

impl Error {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::UnknownDataset(_) => (StatusCode::NOT_FOUND, "unknown_dataset"),
            Error::NoRoute(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::NoSuchKey(_) => (StatusCode::NOT_FOUND, "no_such_key"),
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::Selection(e) => (StatusCode::BAD_REQUEST, e.code()),
            Error::Format(FormatError::Unknown(_)) => (StatusCode::BAD_REQUEST, "bad_format"),
            Error::Format(FormatError::NotAcceptable(_)) => {
                (StatusCode::NOT_ACCEPTABLE, "not_acceptable")
            }
            Error::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
            Error::UriTooLong { .. } => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            Error::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Error::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            Error::Unreadable(_) => (StatusCode::INTERNAL_SERVER_ERROR, "data_unreadable"),
            Error::Unauthorized { invalid: false } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Unauthorized { invalid: true } => (StatusCode::UNAUTHORIZED, "invalid_token"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Error::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
            Error::BadRegistration(_) => (StatusCode::BAD_REQUEST, "bad_registration"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Error::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Error::Reduce(e) if e.is_internal() => (StatusCode::INTERNAL_SERVER_ERROR, e.code()),
            Error::Reduce(e) => (StatusCode::BAD_REQUEST, e.code()),
        }
    }
}

impl Error {
    /// A 5xx that is the server's fault: its message stays in the log. Overload, drain and
    /// timeouts are 503s too, but their messages tell the client what to do.
    fn is_fault(&self) -> bool {
        self.status_and_code().0.is_server_error()
            && !matches!(
                self,
                Error::Overloaded(_) | Error::Draining | Error::Timeout(_)
            )
    }
}

/// The cause of a 5xx, left in the response extensions for the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub Arc<String>);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let fault = self.is_fault();
        let message = if fault {
            "internal server error; the cause is in the server log".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            Error::RangeNotSatisfiable { len } => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
            }
            Error::Unauthorized { invalid } => {
                let challenge = if *invalid {
                    r#"Bearer realm="arrayd", error="invalid_token""#
                } else {
                    r#"Bearer realm="arrayd""#
                };
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            Error::Overloaded(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Error::Draining => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if fault {
            response
                .extensions_mut()
                .insert(InternalCause(Arc::new(self.to_string())));
        }
        response
    }
}
