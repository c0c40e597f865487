//! `GET /metrics`: Prometheus text (README "Deploying" lists every series).
//!
//! Request series are labelled with the route template (`/v1/datasets/{name}/data`), never
//! the raw path, so their number stays bounded whatever clients send. Gauges that other parts
//! of the server already count (streams, reductions, datasets, mapped bytes, SIGBUS faults,
//! rescans) are read when a scrape comes, not kept twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::AppState;

/// Labels of `arrayd_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// Labels of the per-route series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// Labels of `arrayd_build_info`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Every series the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    body_bytes: Family<RouteLabels, Counter>,
    streams: Gauge,
    reductions: Gauge,
    datasets: Gauge,
    mapped_bytes: Gauge,
    sigbus_faults: Mirror,
    rescans: Mirror,
}

/// A counter that mirrors a count kept elsewhere: at each scrape it moves forward by what is
/// new, so the exported series is a true (monotonic) counter.
#[derive(Debug, Default)]
struct Mirror {
    counter: Counter,
    seen: AtomicU64,
}

impl Mirror {
    fn register(registry: &mut Registry, name: &str, help: &str) -> Mirror {
        let mirror = Mirror::default();
        registry.register(name, help, mirror.counter.clone());
        mirror
    }

    fn update(&self, now: u64) {
        let before = self.seen.swap(now, Ordering::Relaxed);
        self.counter.inc_by(now.saturating_sub(before));
    }
}

/// Upper bounds of the latency buckets, in seconds: 100 µs (a cached small answer) to 10 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every series at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("arrayd");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from the request head to the response head, by route template",
            duration.clone(),
        );
        let body_bytes = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_response_body_bytes",
            "Response body bytes sent (after compression), by route template",
            body_bytes.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let streams = gauge(
            &mut registry,
            "streams_in_flight",
            "Streamed bodies in progress",
        );
        let reductions = gauge(
            &mut registry,
            "reductions_in_flight",
            "Aggregates (/stats, /histogram, /downsample) being computed",
        );
        let datasets = gauge(&mut registry, "datasets", "Datasets served");
        let mapped_bytes = gauge(
            &mut registry,
            "mapped_bytes",
            "Bytes of data files memory-mapped",
        );
        let rescans = Mirror::register(
            &mut registry,
            "rescans",
            "Rescans of the data directory and registrations",
        );
        let sigbus_faults = Mirror::register(
            &mut registry,
            "sigbus_faults",
            "Page faults on truncated data files caught by the SIGBUS guard",
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The running build", build);
        Metrics {
            registry,
            requests,
            duration,
            body_bytes,
            streams,
            reductions,
            datasets,
            mapped_bytes,
            sigbus_faults,
            rescans,
        }
    }

    /// Counts an answered request when its head goes out.
    pub(super) fn answered(
        &self,
        route: &'static str,
        method: &Method,
        status: StatusCode,
        head: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method: method_label(method),
                status: status.as_u16(),
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels { route })
            .observe(head.as_secs_f64());
    }

    /// Counts the body bytes of an answer once it is sent (or cut).
    pub(super) fn sent(&self, route: &'static str, bytes: u64) {
        self.body_bytes
            .get_or_create(&RouteLabels { route })
            .inc_by(bytes);
    }

    fn render(&self, state: &AppState) -> String {
        let gauge = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge(
            &self.streams,
            state.streams_in_flight.load(Ordering::Relaxed) as u64,
        );
        gauge(
            &self.reductions,
            state.reductions_in_flight.load(Ordering::Relaxed) as u64,
        );
        let datasets = state.registry.list();
        gauge(&self.datasets, datasets.len() as u64);
        gauge(
            &self.mapped_bytes,
            datasets.iter().map(|d| d.mapped.bytes.len() as u64).sum(),
        );
        self.rescans.update(state.registry.rescans());
        self.sigbus_faults
            .update(crate::sigbus::faults_handled() as u64);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The route template as a `&'static str`, so labels cost no allocation per request.
///
/// Templates come from the router, so there are as many as it has routes: each is leaked
/// once, the first time it is seen, and found again by a lookup in a short list.
pub(super) fn route_label(template: &str) -> &'static str {
    static SEEN: std::sync::RwLock<Vec<&'static str>> = std::sync::RwLock::new(Vec::new());
    let find = |seen: &[&'static str]| seen.iter().copied().find(|r| *r == template);
    if let Some(route) = find(&SEEN.read().unwrap_or_else(|e| e.into_inner())) {
        return route;
    }
    let mut seen = SEEN.write().unwrap_or_else(|e| e.into_inner());
    if let Some(route) = find(&seen) {
        return route;
    }
    let route: &'static str = Box::leak(template.to_owned().into_boxed_str());
    seen.push(route);
    route
}

pub(super) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        // Any other method is one label, so clients cannot mint series.
        _ => "other",
    }
}

/// `GET /metrics`.
pub(super) async fn get(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
