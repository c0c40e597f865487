//! `GET /metrics`: Prometheus text (README "Deploying" lists every series).
//!
//! Request series are labelled with the route template (`/v1/datasets/{name}/data`), never
//! the raw path, so their number stays bounded whatever clients send. Gauges that other parts
//! of the server already count (streams, reductions, datasets, mapped bytes, SIGBUS faults,
//! rescans) are read when a scrape comes, not kept twice.
//!
//! The request series (count, latency histogram, body bytes) are counted by each serving
//! thread in a [`Shard`] of its own and summed when a scrape comes: counting in shared
//! counters made the two serving threads pass the same cache lines (and the histogram's
//! lock) back and forth on every request, which cost more than the rest of the metrics
//! (README "Performance").

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::AppState;

/// Labels of `arrayd_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
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
    /// Tells this instance's shards apart in the per-thread list (tests run several servers
    /// in one process).
    id: u64,
    registry: Registry,
    served: Arc<Served>,
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
        let served = Arc::<Served>::default();
        registry.register_collector(Box::new(Arc::clone(&served)));
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
            served,
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
        let labels = RequestLabels {
            route,
            method: method_label(method),
            status: status.as_u16(),
        };
        self.count(|shard| {
            *shard.request(labels) += 1;
            shard.route(route).observe(head.as_secs_f64());
        });
    }

    /// Counts the body bytes of an answer once it is sent (or cut).
    pub(super) fn sent(&self, route: &'static str, bytes: u64) {
        self.count(|shard| shard.route(route).body_bytes += bytes);
    }

    /// Runs `add` on this thread's shard, made and listed for scrapes on first use.
    fn count(&self, add: impl FnOnce(&mut Shard)) {
        // `try_with`: a count made while the thread's locals are torn down is dropped.
        let _ = SHARDS.try_with(|shards| {
            let mut shards = shards.borrow_mut();
            let i = match shards.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    // Shards of dropped instances (only the thread holds them) go first.
                    shards.retain(|(_, shard)| Arc::strong_count(shard) > 1);
                    let shard = Arc::<Mutex<Shard>>::default();
                    lock(&self.served.shards).push(Arc::clone(&shard));
                    shards.push((self.id, shard));
                    shards.len() - 1
                }
            };
            // Uncontended but for a scrape: the lock stays in this core's cache.
            add(&mut lock(&shards[i].1));
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

/// A lock whose holder cannot have left its counts half-made (they are plain additions), so
/// a poisoned one is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// This thread's shard of each [`Metrics`] instance it has counted for.
    static SHARDS: RefCell<Vec<(u64, Arc<Mutex<Shard>>)>> = const { RefCell::new(Vec::new()) };
}

/// The request series of one instance: every thread's shard, summed at scrape time.
#[derive(Debug, Default)]
struct Served {
    shards: Mutex<Vec<Arc<Mutex<Shard>>>>,
}

/// One thread's counts of the request series. Label sets are few (routes, methods and
/// statuses seen), so they are found by a short linear search.
#[derive(Debug, Default)]
struct Shard {
    requests: Vec<(RequestLabels, u64)>,
    routes: Vec<(&'static str, RouteCounts)>,
}

/// The per-route series of one route.
#[derive(Debug, Clone, Default)]
struct RouteCounts {
    /// Observations per latency bucket, not cumulative; the last one is past every bound
    /// (`le="+Inf"` counts them all).
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    seconds: f64,
    body_bytes: u64,
}

impl RouteCounts {
    fn observe(&mut self, seconds: f64) {
        let bucket = LATENCY_BUCKETS.partition_point(|&bound| bound < seconds);
        self.buckets[bucket] += 1;
        self.seconds += seconds;
    }

    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    fn add(&mut self, other: &RouteCounts) {
        for (sum, n) in self.buckets.iter_mut().zip(other.buckets) {
            *sum += n;
        }
        self.seconds += other.seconds;
        self.body_bytes += other.body_bytes;
    }
}

impl Shard {
    fn request(&mut self, labels: RequestLabels) -> &mut u64 {
        let i = match self.requests.iter().position(|(seen, _)| *seen == labels) {
            Some(i) => i,
            None => {
                self.requests.push((labels, 0));
                self.requests.len() - 1
            }
        };
        &mut self.requests[i].1
    }

    fn route(&mut self, route: &'static str) -> &mut RouteCounts {
        let i = match self.routes.iter().position(|(seen, _)| *seen == route) {
            Some(i) => i,
            None => {
                self.routes.push((route, RouteCounts::default()));
                self.routes.len() - 1
            }
        };
        &mut self.routes[i].1
    }
}

impl Served {
    /// Every shard's counts added up, in label order (so scrapes list series in a stable order).
    fn total(
        &self,
    ) -> (
        BTreeMap<RequestLabels, u64>,
        BTreeMap<&'static str, RouteCounts>,
    ) {
        let (mut requests, mut routes) = (BTreeMap::new(), BTreeMap::<_, RouteCounts>::new());
        for shard in lock(&self.shards).iter() {
            let shard = lock(shard);
            for (labels, n) in &shard.requests {
                *requests.entry(labels.clone()).or_default() += n;
            }
            for (route, counts) in &shard.routes {
                routes.entry(*route).or_default().add(counts);
            }
        }
        (requests, routes)
    }
}

impl Collector for Served {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let (requests, routes) = self.total();
        // Like the registry's own families, a series kind nobody has counted yet is left out.
        if requests.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            None,
            MetricType::Counter,
        )?;
        for (labels, n) in &requests {
            ConstCounter::new(*n).encode(family.encode_family(labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "http_request_duration_seconds",
            "Time from the request head to the response head, by route template",
            None,
            MetricType::Histogram,
        )?;
        let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(|bound| (bound, 0))
            .collect();
        for (&route, counts) in &routes {
            for (bucket, n) in buckets.iter_mut().zip(counts.buckets) {
                bucket.1 = n;
            }
            family
                .encode_family(&RouteLabels { route })?
                .encode_histogram::<NoLabelSet>(counts.seconds, counts.count(), &buckets, None)?;
        }
        let mut family = encoder.encode_descriptor(
            "http_response_body_bytes",
            "Response body bytes sent (after compression), by route template",
            None,
            MetricType::Counter,
        )?;
        for (&route, counts) in &routes {
            ConstCounter::new(counts.body_bytes)
                .encode(family.encode_family(&RouteLabels { route })?)?;
        }
        Ok(())
    }
}

/// The route template as a `&'static str`, so labels cost no allocation per request.
///
/// Templates come from the router, so there are as many as it has routes: each is leaked
/// once, the first time it is seen, and found again in a short per-thread list (a shared one
/// would make every request take its lock).
pub(super) fn route_label(template: &str) -> &'static str {
    thread_local! {
        static KNOWN: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
    }
    let find = |seen: &[&'static str]| seen.iter().copied().find(|r| *r == template);
    let known = KNOWN.try_with(|known| find(&known.borrow()));
    if let Ok(Some(route)) = known {
        return route;
    }
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let route = {
        let mut seen = lock(&SEEN);
        find(&seen).unwrap_or_else(|| {
            let route: &'static str = Box::leak(template.to_owned().into_boxed_str());
            seen.push(route);
            route
        })
    };
    let _ = KNOWN.try_with(|known| known.borrow_mut().push(route));
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

    fn text(m: &Metrics) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        text
    }

    /// Counts made on several threads are summed at scrape time, each instance apart, with
    /// cumulative buckets that end in `le="+Inf"` holding every observation.
    #[test]
    fn shards_of_every_thread_are_summed_per_instance() {
        let (a, b) = (Arc::new(Metrics::new()), Metrics::new());
        assert!(!text(&a).contains("http_requests"), "{}", text(&a));
        let route = route_label("/v1/datasets/{name}/data");
        let threads: Vec<_> = [Duration::from_micros(50), Duration::from_millis(30)]
            .into_iter()
            .map(|head| {
                let a = Arc::clone(&a);
                std::thread::spawn(move || {
                    for _ in 0..3 {
                        a.answered(route, &Method::GET, StatusCode::OK, head);
                        a.sent(route, 10);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        b.answered(
            route,
            &Method::HEAD,
            StatusCode::NOT_FOUND,
            Duration::from_secs(60),
        );
        let (a, b) = (text(&a), text(&b));
        let series = |name: &str, labels: &str, value: &str| {
            format!("arrayd_{name}{{route=\"/v1/datasets/{{name}}/data\"{labels}}} {value}\n")
        };
        // The encoder writes a bucket's `le` before the family's own labels.
        let bucket = |le: &str, value: &str| {
            format!(
                "arrayd_http_request_duration_seconds_bucket{{le=\"{le}\",\
                 route=\"/v1/datasets/{{name}}/data\"}} {value}\n"
            )
        };
        for line in [
            series("http_requests_total", ",method=\"GET\",status=\"200\"", "6"),
            series("http_response_body_bytes_total", "", "60"),
            series("http_request_duration_seconds_count", "", "6"),
            bucket("0.0001", "3"),
            bucket("0.025", "3"),
            bucket("0.05", "6"),
            bucket("+Inf", "6"),
        ] {
            assert!(a.contains(&line), "{line} not in {a}");
        }
        assert!(!a.contains("HEAD"), "{a}");
        for line in [
            series(
                "http_requests_total",
                ",method=\"HEAD\",status=\"404\"",
                "1",
            ),
            bucket("10.0", "0"),
            bucket("+Inf", "1"),
        ] {
            assert!(b.contains(&line), "{line} not in {b}");
        }
        assert!(!b.contains("GET"), "{b}");
    }

    #[test]
    fn route_labels_are_interned() {
        let a = route_label("/x/{name}");
        let b = std::thread::spawn(|| route_label("/x/{name}"))
            .join()
            .unwrap();
        assert!(std::ptr::eq(a, b));
        assert_eq!(route_label(&String::from("/x/{name}")), "/x/{name}");
    }
}
