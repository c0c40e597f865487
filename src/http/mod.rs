//! The HTTP surface: application state, the router with its middleware, and `serve`.
//!
//! Handlers live one resource per file (`datasets`, `data`, `raw`, `stats` for the
//! aggregates); `stream` turns an encoding job into a streamed body; `range` parses `Range`
//! headers and `cache` holds the validators and conditional requests of `/data` and `/raw`;
//! `error` is the one error type every handler returns. Only this module and its children use
//! axum.

mod cache;
mod data;
mod datasets;
pub mod error;
mod extract;
mod listener;
mod range;
mod raw;
/// `/stats`, `/histogram`, `/downsample`.
mod stats;
mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tower::limit::ConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::dataset::Dataset;
use crate::registry::Registry;
pub use error::Error;

/// What every handler shares: the registry and the configuration.
#[derive(Debug, Clone)]
pub struct AppState {
    /// All datasets.
    pub registry: Arc<Registry>,
    /// The server's configuration.
    pub config: Arc<Config>,
    /// Bodies whose producer thread is running: what a vanished client must bring back
    /// down within a chunk (tests watch it).
    pub streams_in_flight: Arc<AtomicUsize>,
}

impl AppState {
    /// State over `registry` and `config`, with nothing in flight.
    pub fn new(registry: Registry, config: Config) -> AppState {
        AppState {
            registry: Arc::new(registry),
            config: Arc::new(config),
            streams_in_flight: Arc::new(AtomicUsize::new(0)),
        }
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

/// The OpenAPI description served at `/openapi.yaml`: the file at the repository root.
const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// Builds the application: every route and the middleware around them.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let max_uri = state.config.max_uri_bytes;
    // Layers listed outermost first: `ServiceBuilder` applies them top to bottom.
    let middleware = ServiceBuilder::new()
        // The span of every request, with its matched route.
        .layer(TraceLayer::new_for_http())
        // Queue requests past the limit instead of starting unbounded work.
        .layer(ConcurrencyLimitLayer::new(state.config.max_concurrent))
        // One function for the rest (each `from_fn` layer costs a boxed future per request):
        // target length, head timeout, logging of 5xx causes.
        .layer(middleware::from_fn(move |req, next| {
            guard(max_uri, timeout, req, next)
        }));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.yaml", get(openapi))
        .route("/v1/datasets", get(datasets::list))
        .route("/v1/datasets/{name}", get(datasets::get))
        .route("/v1/datasets/{name}/data", get(data::get))
        .route("/v1/datasets/{name}/raw", get(raw::get))
        // Aggregates.
        .route("/v1/datasets/{name}/stats", get(stats::get_stats))
        .route("/v1/datasets/{name}/histogram", get(stats::get_histogram))
        .route("/v1/datasets/{name}/downsample", get(stats::get_downsample))
        .fallback(|req: Request| async move {
            Error::NoRoute(req.uri().path().chars().take(200).collect())
        })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware)
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then lets in-flight requests
/// finish.
///
/// # Errors
/// The accept loop's I/O error.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener::Listener(listener), router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds `n` listening sockets on `addr` with `SO_REUSEPORT`, so that `n` single-threaded
/// runtimes can each accept on their own socket and the kernel spreads connections over them.
/// When `addr` has port 0, the first bind picks the port and the others share it.
///
/// One runtime per core, as nginx runs one worker per core, avoids the cross-thread wake-ups
/// of a work-stealing runtime, which dominated small requests in profiles (README
/// "Performance").
///
/// # Errors
/// The socket, bind or listen error.
pub fn bind_reuseport(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut addr = addr;
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML)
}

/// Refuses over-long targets before any parsing sees them, bounds the time to the response
/// head (bodies stream as long as the client reads), and logs the cause of every 5xx answer,
/// which the answer itself does not carry.
async fn guard(max_uri: usize, timeout: Duration, req: Request, next: Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > max_uri {
        return Error::UriTooLong {
            len,
            limit: max_uri,
        }
        .into_response();
    }
    let response = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout(timeout.as_secs()).into_response(),
    };
    if let Some(cause) = response.extensions().get::<error::InternalCause>() {
        tracing::error!(cause = %cause.0, "internal error");
    }
    response
}
