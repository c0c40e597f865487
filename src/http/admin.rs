//! `POST /v1/admin/rescan`: the rescan SIGHUP starts, on demand, answered with its report (the
//! admin token is checked by the front). The walk and the maps run on the blocking pool.

use axum::extract::State;
use axum::Json;

use super::error::{Error, Result};
use super::AppState;
use crate::rescan::RescanReport;

/// `POST /v1/admin/rescan`: 200 with what the rescan added, removed, re-mapped and skipped.
pub(super) async fn rescan(State(state): State<AppState>) -> Result<Json<RescanReport>> {
    let registry = state.registry.clone();
    let report = tokio::task::spawn_blocking(move || registry.rescan())
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("rescan failed: {e}")))?;
    tracing::info!(
        added = ?report.added,
        removed = ?report.removed,
        remapped = ?report.remapped,
        skipped = report.skipped.len(),
        "rescan done (POST /v1/admin/rescan)"
    );
    Ok(Json(report))
}
