//! `GET /v1/datasets` and `GET /v1/datasets/{name}`: the registry as META objects.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::Result;
use super::extract::Path;
use super::AppState;

/// `GET /v1/datasets`: every dataset, sorted by name.
pub(super) async fn list(State(state): State<AppState>) -> Json<Value> {
    let datasets = state.registry.list();
    let metas: Vec<_> = datasets.iter().map(|d| d.meta()).collect();
    Json(json!({ "datasets": metas }))
}

/// `GET /v1/datasets/{name}`: one dataset's META.
pub(super) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    let dataset = state.dataset(&name)?;
    Ok(Json(json!(dataset.meta())))
}
