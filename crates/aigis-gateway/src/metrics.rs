//! Prometheus metrics, served on the admin listener at `/metrics`. Labels never carry prompt
//! content, credentials or caller-chosen strings of unbounded variety (model names are
//! reported as the route that served them).

use std::sync::{Mutex, PoisonError, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub endpoint: &'static str,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct UpstreamLabels {
    pub upstream: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TlsLabels {
    pub group: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AuthLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CacheLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GuardLabels {
    detector: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SecurityLabels {
    pub event: &'static str,
    pub subject: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LimitLabels {
    pub limit: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelCheckLabels {
    pub route: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReloadLabels {
    pub result: &'static str,
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) duration: Family<EndpointLabels, Histogram>,
    pub(crate) upstream: Family<UpstreamLabels, Counter>,
    pub(crate) tls: Family<TlsLabels, Counter>,
    pub(crate) reloads: Family<ReloadLabels, Counter>,
    pub(crate) model_checks: Family<ModelCheckLabels, Counter>,
    pub(crate) auth_failures: Family<AuthLabels, Counter>,
    pub(crate) security_events: Family<SecurityLabels, Counter>,
    pub(crate) guard: Family<GuardLabels, Counter>,
    guard_cache: GuardCache,
    pub(crate) limits: LimitEvents,
    pub(crate) active_streams: Gauge,
    pub(crate) in_flight: Gauge,
    /// Handles of `requests`, `duration` and `upstream` already looked up.
    handles: Handles,
}

/// Metric handles by a `String` label and small fixed labels, so a request finds its counter
/// with one cheap hash of a `&str` instead of cloning the label into a key for
/// `Family::get_or_create` (SipHash over every label). Family entries are never removed, so
/// a cached handle stays the one the registry encodes.
#[derive(Default)]
struct Handles {
    requests: Cached<Counter>,
    durations: Cached<Histogram>,
    upstream: Cached<Counter>,
}

/// `name -> [(tag, code, handle)]`; the list per name stays short (endpoints × statuses).
struct Cached<M>(RwLock<foldhash::HashMap<String, Vec<Tagged<M>>>>);

/// A handle with its fixed labels (a static tag and a code).
type Tagged<M> = (&'static str, u16, M);

impl<M> Default for Cached<M> {
    fn default() -> Self {
        Self(RwLock::default())
    }
}

impl<M: Clone> Cached<M> {
    /// Applies `f` to the handle for `(name, tag, code)`, made by `make` the first time.
    fn with(
        &self,
        name: &str,
        tag: &'static str,
        code: u16,
        make: impl FnOnce() -> M,
        f: impl FnOnce(&M),
    ) {
        let find = |list: &[Tagged<M>]| list.iter().position(|(t, c, _)| *c == code && *t == tag);
        if let Ok(map) = self.0.read()
            && let Some(list) = map.get(name)
            && let Some(i) = find(list)
        {
            f(&list[i].2);
            return;
        }
        let handle = make();
        f(&handle);
        if let Ok(mut map) = self.0.write() {
            let list = map.entry(name.to_owned()).or_default();
            if find(list).is_none() {
                list.push((tag, code, handle));
            }
        }
    }
}

/// The guard's findings cache, as of the last scrape.
struct GuardCache {
    parts: Family<CacheLabels, Counter>,
    bytes: Gauge,
    /// Held while the counters are brought up to date (one scrape at a time).
    sync: Mutex<()>,
}

impl GuardCache {
    fn register(registry: &mut Registry) -> Self {
        let parts = Family::default();
        registry.register(
            "guard_cache_parts",
            "Inspected parts whose findings came from the guard's findings cache (hit) or were \
             computed and cached (miss); parts under 256 bytes are not counted",
            parts.clone(),
        );
        let bytes = Gauge::default();
        registry.register(
            "guard_cache_bytes",
            "Bytes the guard's findings cache holds, approximately",
            bytes.clone(),
        );
        Self {
            parts,
            bytes,
            sync: Mutex::new(()),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("aigis");
        let requests = Family::default();
        registry.register(
            "requests",
            "Requests answered, by endpoint, route and status",
            requests.clone(),
        );
        let duration = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 18))
        });
        registry.register(
            "request_duration_seconds",
            "Time to response headers (streams: to the first byte), by endpoint",
            duration.clone(),
        );
        let upstream = Family::default();
        registry.register(
            "upstream_requests",
            "Upstream attempts, by upstream and outcome",
            upstream.clone(),
        );
        let tls = Family::default();
        registry.register(
            "tls_handshakes",
            "Completed TLS handshakes, by key-exchange group and version",
            tls.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "config_reloads",
            "Config reloads, by result",
            reloads.clone(),
        );
        let model_checks = Family::default();
        registry.register(
            "model_checks",
            "Checks of routes' self-hosted models (signature and scan) at start and reload, by \
             route and result (verified, failed; a failed route answers 503 model_unverified)",
            model_checks.clone(),
        );
        let auth_failures = Family::default();
        registry.register(
            "auth_failures",
            "Failed authentications, by kind",
            auth_failures.clone(),
        );
        let security_events = Family::default();
        registry.register(
            "security_events",
            "Security events (e.g. bursts of failed authentications), by event and subject",
            security_events.clone(),
        );
        let guard = Family::default();
        registry.register(
            "guard_findings",
            "Guard findings on requests, by detector and action",
            guard.clone(),
        );
        let guard_cache = GuardCache::register(&mut registry);
        let limits = LimitEvents::default();
        registry.register(
            "limit_events",
            "Limit refusals, streams cut off, and requests let through unmetered or refused \
             because the limit store was unreachable (outcome: refused, cut_off, \
             store_error_open, store_error_closed)",
            limits.0.clone(),
        );
        let active_streams = Gauge::default();
        registry.register(
            "active_streams",
            "Streamed responses being relayed now",
            active_streams.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Requests being handled now",
            in_flight.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            upstream,
            tls,
            reloads,
            model_checks,
            auth_failures,
            security_events,
            guard,
            guard_cache,
            limits,
            active_streams,
            in_flight,
            handles: Handles::default(),
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Brings the guard cache's metrics up to `stats` (at each scrape: the guard counts them).
    pub(crate) fn guard_cache(&self, stats: aigis_guard::CacheStats) {
        let c = &self.guard_cache;
        let _one = c.sync.lock().unwrap_or_else(PoisonError::into_inner);
        for (result, total) in [("hit", stats.hits), ("miss", stats.misses)] {
            let counter = c.parts.get_or_create(&CacheLabels { result });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        c.bytes.set(i64::try_from(stats.bytes).unwrap_or(i64::MAX));
    }

    pub(crate) fn auth_failure(&self, kind: &'static str) {
        self.auth_failures.get_or_create(&AuthLabels { kind }).inc();
    }

    /// Counts `detector:kind:action` findings by detector and action.
    pub(crate) fn guard_findings(&self, findings: &[String]) {
        for f in findings {
            let mut parts = f.split(':');
            let detector = parts.next().unwrap_or_default().to_owned();
            let action = parts.next_back().unwrap_or_default().to_owned();
            self.guard
                .get_or_create(&GuardLabels { detector, action })
                .inc();
        }
    }

    pub(crate) fn limit_event(&self, limit: &str, outcome: &'static str) {
        self.limits.inc(limit, outcome);
    }

    pub(crate) fn security_event(&self, event: &'static str, subject: &str) {
        self.security_events
            .get_or_create(&SecurityLabels {
                event,
                subject: subject.to_owned(),
            })
            .inc();
    }

    pub(crate) fn upstream_outcome(&self, upstream: &str, outcome: &'static str) {
        let make = || {
            self.upstream
                .get_or_create(&UpstreamLabels {
                    upstream: upstream.to_owned(),
                    outcome,
                })
                .clone()
        };
        self.handles.upstream.with(upstream, outcome, 0, make, |c| {
            c.inc();
        });
    }

    /// Counts a request answered with `status` by `endpoint` on `route`, and the time it took.
    pub(crate) fn request(&self, endpoint: &'static str, route: &str, status: u16, secs: f64) {
        let make = || {
            self.requests
                .get_or_create(&RequestLabels {
                    endpoint,
                    route: route.to_owned(),
                    status,
                })
                .clone()
        };
        self.handles
            .requests
            .with(route, endpoint, status, make, |c| {
                c.inc();
            });
        let make = || {
            self.duration
                .get_or_create(&EndpointLabels { endpoint })
                .clone()
        };
        self.handles
            .durations
            .with("", endpoint, 0, make, |h| h.observe(secs));
    }
}

/// `aigis_limit_events_total`, cheap to clone into a metered stream.
#[derive(Clone, Default)]
pub(crate) struct LimitEvents(Family<LimitLabels, Counter>);

impl LimitEvents {
    pub(crate) fn inc(&self, limit: &str, outcome: &'static str) {
        self.0
            .get_or_create(&LimitLabels {
                limit: limit.to_owned(),
                outcome,
            })
            .inc();
    }
}

/// Decrements a gauge when dropped (an in-flight request or a stream that ended, however).
pub(crate) struct GaugeGuard(Gauge);

impl GaugeGuard {
    pub(crate) fn new(g: &Gauge) -> Self {
        g.inc();
        Self(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
