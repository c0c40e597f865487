//! Extractors that reject in arrayd's error format instead of axum's plain text.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path as AxumPath, Query as AxumQuery};

use super::error::Error;
use crate::encode::Style;

/// `axum::extract::Query` whose rejection is a `400 bad_query` JSON error.
#[derive(Debug, FromRequestParts)]
#[from_request(via(AxumQuery), rejection(Error))]
pub(super) struct Query<T>(pub(super) T);

/// `axum::extract::Path` whose rejection is a `400 bad_query` JSON error.
#[derive(Debug, FromRequestParts)]
#[from_request(via(AxumPath), rejection(Error))]
pub(super) struct Path<T>(pub(super) T);

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Error::BadQuery(rejection.body_text())
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Error::BadQuery(rejection.body_text())
    }
}

/// The JSON spelling of NaN and ±Inf chosen by `nonfinite=` (`null`, the default, or
/// `string`), shared by `/data` and the aggregates.
pub(super) fn nonfinite_style(nonfinite: Option<&str>) -> Result<Style, Error> {
    match nonfinite {
        None | Some("null") => Ok(Style::JsonNull),
        Some("string") => Ok(Style::JsonString),
        Some(other) => Err(Error::BadQuery(format!(
            "nonfinite must be null or string, not {:?}",
            other.chars().take(40).collect::<String>()
        ))),
    }
}
