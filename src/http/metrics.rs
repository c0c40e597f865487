//! `GET /metrics`: Prometheus text (README "Deploying" lists every series).
//!
//! Request series are labelled with the route template (`/v1/datasets/{name}/data`), never
//! the raw path, so their number stays bounded whatever clients send. Gauges that other parts
//! of the server already count (streams, reductions, datasets, mapped bytes, SIGBUS faults,
//! rescans) are read when a scrape comes, not kept twice.

use std::cell::RefCell;
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
    /// Tells this instance's handles apart in the per-thread cache (tests run several
    /// servers in one process).
    id: u64,
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
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Metrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
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
        let (method, status) = (method_label(method), status.as_u16());
        HANDLES.with(|handles| {
            let mut handles = handles.borrow_mut();
            handles.requests(self, route, method, status).inc();
            handles
                .route(self, route)
                .duration
                .observe(head.as_secs_f64());
        });
    }

    /// Counts the body bytes of an answer once it is sent (or cut).
    pub(super) fn sent(&self, route: &'static str, bytes: u64) {
        HANDLES.with(|handles| {
            handles
                .borrow_mut()
                .route(self, route)
                .body_bytes
                .inc_by(bytes);
        });
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

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::default();
}

/// Handles of the request series, cloned out of the families once per thread and label set.
///
/// A family lookup hashes the labels and takes the family's lock, about 1k instructions a
/// request for the three series (README "Performance"); a handle is the family's own series
/// (an `Arc`), so counting through it is counting in the family. Found again by a short
/// linear search: label sets are few (routes, methods and statuses seen).
#[derive(Default)]
struct Handles {
    requests: Vec<(u64, RequestLabels, Counter)>,
    routes: Vec<(u64, &'static str, RouteHandles)>,
}

/// The per-route series of one route.
struct RouteHandles {
    duration: Histogram,
    body_bytes: Counter,
}

/// Label sets kept per thread and kind; past it the cache starts over (it never should).
const KEEP_HANDLES: usize = 1024;

impl Handles {
    fn requests(
        &mut self,
        metrics: &Metrics,
        route: &'static str,
        method: &'static str,
        status: u16,
    ) -> &Counter {
        let labels = RequestLabels {
            route,
            method,
            status,
        };
        let found = self
            .requests
            .iter()
            .position(|(id, seen, _)| *id == metrics.id && *seen == labels);
        let i = found.unwrap_or_else(|| {
            if self.requests.len() >= KEEP_HANDLES {
                self.requests.clear();
            }
            let counter = metrics.requests.get_or_create(&labels).clone();
            self.requests.push((metrics.id, labels, counter));
            self.requests.len() - 1
        });
        &self.requests[i].2
    }

    fn route(&mut self, metrics: &Metrics, route: &'static str) -> &RouteHandles {
        let found = self
            .routes
            .iter()
            .position(|(id, seen, _)| *id == metrics.id && *seen == route);
        let i = found.unwrap_or_else(|| {
            if self.routes.len() >= KEEP_HANDLES {
                self.routes.clear();
            }
            let labels = RouteLabels { route };
            let handles = RouteHandles {
                duration: metrics.duration.get_or_create(&labels).clone(),
                body_bytes: metrics.body_bytes.get_or_create(&labels).clone(),
            };
            self.routes.push((metrics.id, route, handles));
            self.routes.len() - 1
        });
        &self.routes[i].2
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts through the per-thread handles land in each instance's own families.
    #[test]
    fn cached_handles_count_in_their_own_families() {
        let (a, b) = (Metrics::new(), Metrics::new());
        let route = route_label("/v1/datasets/{name}/data");
        let ms = Duration::from_millis(1);
        for _ in 0..3 {
            a.answered(route, &Method::GET, StatusCode::OK, ms);
            a.sent(route, 10);
        }
        b.answered(route, &Method::GET, StatusCode::OK, ms);
        b.answered(route, &Method::HEAD, StatusCode::NOT_FOUND, ms);
        let count = |m: &Metrics, method, status| {
            m.requests
                .get_or_create(&RequestLabels {
                    route,
                    method,
                    status,
                })
                .get()
        };
        assert_eq!(count(&a, "GET", 200), 3);
        assert_eq!(count(&b, "GET", 200), 1);
        assert_eq!(count(&b, "HEAD", 404), 1);
        assert_eq!(count(&a, "HEAD", 404), 0);
        let labels = RouteLabels { route };
        assert_eq!(a.body_bytes.get_or_create(&labels).get(), 30);
        assert_eq!(b.body_bytes.get_or_create(&labels).get(), 0);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &a.registry).unwrap();
        assert!(
            text.contains(
                "arrayd_http_request_duration_seconds_count{route=\"/v1/datasets/{name}/data\"} 3"
            ),
            "{text}"
        );
    }
}
