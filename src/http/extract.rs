//! Extractors that reject in arrayd's error format instead of axum's plain text.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path as AxumPath, Query as AxumQuery};

use super::error::Error;

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
