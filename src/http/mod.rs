//! The HTTP surface: application state, the router with its middleware, and `serve`.
//!
//! A request's path through this module: [`serve`] accepts a connection and hands it to
//! `conn` (hyper's HTTP/1 over a socket wrapper that enforces the head, idle and send limits);
//! the [`router`] matches the route; CORS answers preflights; `front` (the one middleware)
//! tags, gates (drain, shedding, tokens from `auth`), times and logs the request and counts it
//! in `metrics`; `compress` compresses JSON and CSV bodies; the handler answers.
//!
//! Handlers live one resource per file (`datasets`, `register` for its writes, `data`, `raw`, `stats` for the
//! aggregates, `metrics`, `zarr` for the Zarr view); `stream` turns an encoding job into a streamed body; `range` parses
//! `Range` headers and `cache` holds the validators and conditional requests of `/data` and
//! `/raw`; `error` is the one error type every handler returns. Only this module and its
//! children use axum.

mod admin;
mod auth;
mod cache;
mod compress;
mod conn;
mod data;
mod datasets;
pub mod error;
/// `/` and `/explorer/{file}`: the explorer page.
mod explorer;
mod extract;
mod front;
mod metrics;
mod range;
mod raw;
mod register;
/// `/stats`, `/histogram`, `/downsample`.
mod stats;
mod stream;
/// `/zarr/...`: the Zarr view.
mod zarr;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::dataset::Dataset;
use crate::registry::Registry;
pub use auth::{TokenError, Tokens};
pub use error::Error;
pub use front::Lifecycle;
pub use metrics::Metrics;

/// What every handler shares: the registry, the configuration and the server's counters.
///
/// One `Arc` around all of it: requests clone the state a few times each, and one shared
/// count to bump is cheaper than seven (README "Performance").
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// All datasets.
    pub registry: Arc<Registry>,
    /// The server's configuration.
    pub config: Arc<Config>,
    /// The read and admin tokens, resolved from the configuration.
    pub tokens: Arc<Tokens>,
    /// Requests in progress and the drain flag.
    pub lifecycle: Arc<Lifecycle>,
    /// The `/metrics` series.
    pub metrics: Arc<Metrics>,
    /// Streamed bodies in progress (stalled ones included): what a vanished client must bring back
    /// down within a chunk (tests watch it).
    pub streams_in_flight: Arc<AtomicUsize>,
    /// Aggregates being computed.
    pub reductions_in_flight: Arc<AtomicUsize>,
}

impl AppState {
    /// State over `registry` and `config`, with nothing in flight.
    ///
    /// # Errors
    /// [`TokenError`] when a configured token file cannot be read or a token is unusable.
    pub fn new(registry: Registry, config: Config) -> Result<AppState, TokenError> {
        Ok(AppState(Arc::new(Shared {
            registry: Arc::new(registry),
            tokens: Arc::new(Tokens::from_config(&config)?),
            config: Arc::new(config),
            lifecycle: Arc::default(),
            metrics: Arc::default(),
            streams_in_flight: Arc::new(AtomicUsize::new(0)),
            reductions_in_flight: Arc::new(AtomicUsize::new(0)),
        })))
    }

    /// The dataset called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownDataset`] when no dataset has that name.
    pub fn dataset(&self, name: &str) -> Result<Arc<Dataset>, Error> {
        self.registry
            .get(name)
            .ok_or_else(|| Error::UnknownDataset(name.chars().take(200).collect()))
    }
}

/// Blocking jobs that may run at once, all permits taken: stream chunks and reductions, each
/// bounded by its own semaphore. A serving thread's blocking pool is sized from this.
pub fn blocking_jobs_at_once() -> usize {
    stream::producer_permits() + stats::cores()
}

/// The OpenAPI description served at `/openapi.yaml`: the file at the repository root.
const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// Why the configured CORS origins cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--cors-origin {0:?} is not an origin such as https://dash.example.org or *")]
pub struct BadOrigin(pub String);

/// Builds the application: every route and the middleware around them.
///
/// # Errors
/// [`BadOrigin`] for a `--cors-origin` that is not a valid header value.
pub fn router(state: AppState) -> Result<Router, BadOrigin> {
    let cors = cors(&state.config.cors_origin)?;
    let front_state = state.clone();
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::get))
        .route("/openapi.yaml", get(openapi))
        .route("/", get(explorer::index))
        .route("/explorer/{file}", get(explorer::file))
        .route("/v1/admin/rescan", post(admin::rescan))
        .route("/v1/datasets", get(datasets::list).post(register::post))
        .route(
            "/v1/datasets/{name}",
            get(datasets::get).delete(register::delete),
        )
        .route("/v1/datasets/{name}/data", get(data::get))
        .route("/v1/datasets/{name}/raw", get(raw::get))
        // Aggregates.
        .route("/v1/datasets/{name}/stats", get(stats::get_stats))
        .route("/v1/datasets/{name}/histogram", get(stats::get_histogram))
        .route("/v1/datasets/{name}/downsample", get(stats::get_downsample))
        // The Zarr view: one handler parses every key (`/zarr` and `/zarr/` are the listing).
        .route("/zarr", get(zarr::get))
        .route("/zarr/", get(zarr::get))
        .route("/zarr/{*key}", get(zarr::get))
        .fallback(|req: Request| async move {
            Error::NoRoute(req.uri().path().chars().take(200).collect())
        })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .with_state(state)
        // Layers wrap from the inside out: each `.layer` call becomes the outer one.
        // Innermost: compression of JSON and CSV (error bodies included), so the front
        // counts the bytes that go on the wire. bin, npy and /raw keep their lengths and
        // ranges; tiny answers are not worth a compressor.
        .layer(compress::CompressText)
        // Then the front: request id, drain, shedding, tokens, timeout, metrics and logs
        // (one `from_fn`: see `front`).
        .layer(axum::middleware::from_fn(move |req, next| {
            front::front(front_state.clone(), req, next)
        }));
    // Outermost: CORS, so preflights are answered without a token and every answer, errors
    // included, carries the CORS headers a browser needs to read it.
    Ok(match cors {
        Some(cors) => router.layer(cors),
        None => router,
    })
}

/// The CORS layer for `origins` (none: no CORS headers at all, browsers refuse cross-origin
/// reads).
fn cors(origins: &[String]) -> Result<Option<CorsLayer>, BadOrigin> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| o.parse().map_err(|_| BadOrigin(o.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    let exposed = [
        HeaderName::from_static("x-array-dtype"),
        HeaderName::from_static("x-array-shape"),
        HeaderName::from_static("x-request-id"),
        header::CONTENT_RANGE,
        header::CONTENT_LENGTH,
        header::ACCEPT_RANGES,
        header::ETAG,
    ];
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::RANGE,
                header::IF_NONE_MATCH,
                header::IF_MODIFIED_SINCE,
                header::IF_RANGE,
                header::CONTENT_TYPE,
            ])
            .expose_headers(exposed)
            .max_age(Duration::from_secs(600)),
    ))
}

/// Where a server is in its life; every connection watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepting and answering.
    Serving,
    /// SIGTERM came: requests in progress finish, idle connections close, new connections
    /// are still accepted so that probes get an answer (`/readyz` 503), everything else is
    /// `503 draining`.
    Draining,
    /// Every connection is dropped where it stands; the accept loop returns.
    Stopped,
}

/// Accepts connections on `listener` and serves them with `router` until `phase` turns
/// [`Phase::Stopped`] (or its sender goes away).
///
/// # Errors
/// None so far: a failed `accept` (out of file descriptors, say) is logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &Config,
    mut phase: watch::Receiver<Phase>,
) -> std::io::Result<()> {
    let limits = conn::Limits::from_config(config);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(conn::serve_connection(stream, router.clone(), limits, phase.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Stopped {
                    return Ok(());
                }
            }
        }
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 while serving, 503 once the drain began, so a load balancer stops
/// sending before the server stops (`/healthz`, the liveness probe, stays 200).
async fn readyz(State(state): State<AppState>) -> Response {
    if state.lifecycle.draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
            .into_response()
    } else {
        Json(json!({"status": "ready"})).into_response()
    }
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML)
}
