//! `GET /v1/datasets/{name}/stats`, `/histogram` and `/downsample`: the aggregates (README
//! "Aggregates").
//!
//! Each handler parses everything (dataset, `slice=`, parameters) before any work, so bad input
//! is a clean 4xx. The reduction then runs on a blocking thread (never on an async worker, so
//! `/healthz` stays live) behind a process-wide semaphore with one permit per core (tokio's
//! advice for CPU-bound work). Each reduction also takes the permits that are free at that
//! moment and splits its selection across that many threads. A drop guard sets the
//! reduction's cancel flag when hyper drops the handler future (the client went away), and the
//! reducer stops at its next block.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{Error, Result};
use super::extract::{nonfinite_style, Path, Query};
use super::stream::InFlight;
use super::AppState;
use crate::dataset::Dataset;
use crate::reduce::downsample::{self, DownsampleParams};
use crate::reduce::histogram::{self, HistogramParams};
use crate::reduce::stats::{self, StatsParams};
use crate::reduce::{ReduceError, Source};
use crate::selection::Selection;

/// Query parameters of `/stats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatsQuery {
    slice: Option<String>,
    ops: Option<String>,
    axis: Option<String>,
    ddof: Option<String>,
    nan: Option<String>,
    nonfinite: Option<String>,
}

/// Query parameters of `/histogram`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistogramQuery {
    slice: Option<String>,
    bins: Option<String>,
    range: Option<String>,
    nonfinite: Option<String>,
}

/// Query parameters of `/downsample`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DownsampleQuery {
    slice: Option<String>,
    buckets: Option<String>,
    nonfinite: Option<String>,
}

pub(super) async fn get_stats(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<StatsQuery>,
) -> Result<Response> {
    let (dataset, selection) = prepare(&state, &name, q.slice.as_deref())?;
    let style = nonfinite_style(q.nonfinite.as_deref())?;
    let params = StatsParams::parse(
        q.ops.as_deref(),
        q.axis.as_deref(),
        q.ddof.as_deref(),
        q.nan.as_deref(),
        selection.out_shape().len(),
    )?;
    run(&state, dataset, selection, cores(), move |src, threads| {
        Ok(stats::stats(src, &params, threads)?.to_json(style))
    })
    .await
}

pub(super) async fn get_histogram(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HistogramQuery>,
) -> Result<Response> {
    let (dataset, selection) = prepare(&state, &name, q.slice.as_deref())?;
    let style = nonfinite_style(q.nonfinite.as_deref())?;
    let params = HistogramParams::parse(q.bins.as_deref(), q.range.as_deref())?;
    run(&state, dataset, selection, cores(), move |src, threads| {
        Ok(histogram::histogram(src, &params, threads)?.to_json(style))
    })
    .await
}

pub(super) async fn get_downsample(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<DownsampleQuery>,
) -> Result<Response> {
    let (dataset, selection) = prepare(&state, &name, q.slice.as_deref())?;
    let style = nonfinite_style(q.nonfinite.as_deref())?;
    let params = DownsampleParams::parse(q.buckets.as_deref())?;
    let shape = selection.out_shape();
    if shape.len() != 1 {
        return Err(ReduceError::Not1d(shape).into());
    }
    run(&state, dataset, selection, cores(), move |src, threads| {
        Ok(downsample::downsample(src, &params, threads)?.to_json(style))
    })
    .await
}

/// The dataset and the parsed selection; complex data is refused here, before other checks
/// that would not matter for it.
fn prepare(state: &AppState, name: &str, slice: Option<&str>) -> Result<(Arc<Dataset>, Selection)> {
    let dataset = state.dataset(name)?;
    let selection = Selection::parse(slice.unwrap_or(""), &dataset.shape)?;
    if dataset.dtype.scalar.is_complex() {
        return Err(ReduceError::UnsupportedDtype(dataset.dtype.descr()).into());
    }
    Ok((dataset, selection))
}

/// Cores of this machine: the semaphore's permits.
pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The permits of all reductions in this process: one per core, so reductions never take more
/// threads than there are cores and the async workers keep a share of CPU.
fn permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(Semaphore::new(cores())))
}

/// Sets the cancel flag when dropped: when hyper drops the handler future because the client
/// went away, the blocking reduction sees the flag at its next block (a probe of this design stopped within one block).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `job` on a blocking thread with one permit, plus up to `max_threads - 1` more permits
/// if they are free right now; `job` gets the number of permits held as its thread budget.
async fn run<F>(
    state: &AppState,
    dataset: Arc<Dataset>,
    selection: Selection,
    max_threads: usize,
    job: F,
) -> Result<Response>
where
    F: FnOnce(&Source<'_>, usize) -> Result<Vec<u8>, ReduceError> + Send + 'static,
{
    // Counted while waiting for a permit too: a queue of reductions is what an operator
    // wants to see in `arrayd_reductions_in_flight`.
    let _counted = InFlight::enter(&state.reductions_in_flight);
    let semaphore = permits();
    let first = Arc::clone(semaphore)
        .acquire_owned()
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut held: Vec<OwnedSemaphorePermit> = vec![first];
    while held.len() < max_threads {
        match Arc::clone(semaphore).try_acquire_owned() {
            Ok(permit) => held.push(permit),
            Err(_) => break,
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(Arc::clone(&cancel));
    let body = tokio::task::spawn_blocking(move || {
        let threads = held.len();
        let src = Source {
            dataset: &dataset,
            selection: &selection,
            cancel: &cancel,
        };
        let result = job(&src, threads);
        drop(held);
        // The walks check the poisoned flag too; this is the last word before the answer is
        // used: a reduction that read a truncated file's zero pages is never answered.
        result.and_then(|body| {
            dataset
                .check_poisoned()
                .map_err(|source| ReduceError::Unreadable {
                    dataset: dataset.name.clone(),
                    source,
                })?;
            Ok(body)
        })
    })
    .await
    .map_err(|e| Error::Internal(format!("reduction panicked: {e}")))??;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
