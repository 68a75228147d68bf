//! `/metrics`: what the control plane does (HTTP requests by route, store
//! commits, events written) and what the fleet looks like (executors by
//! state and compatibility, nodes by phase and chain, drift), in the
//! Prometheus/OpenMetrics text format, on a listener of its own
//! (`serve --metrics-listen`). Every label has a bounded set of values:
//! routes as the router names them, methods, status classes, enum states.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// Store commits, timed where every write commits (`Store::write`).
pub static STORE_COMMIT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(exponential_buckets(0.0001, 2.0, 16)));
/// Events appended to organizations' feeds.
pub static EVENTS_WRITTEN: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Notification attempts, by channel kind and result.
pub static NOTIFICATIONS: LazyLock<Family<NotificationLabels, Counter>> = LazyLock::new(Family::default);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// webhook, slack, pagerduty, alertmanager.
    pub kind: &'static str,
    /// delivered, failed (retried or given up), dropped (channel gone or disabled).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// The control plane's own counters, registered once.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("novacula");
        let requests = Family::<RequestLabels, Counter>::default();
        // Up to a minute: spec long-polls wait up to 30 s by design.
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 17)));
        registry.register("http_requests", "HTTP requests answered, by route, method and status class", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer an HTTP request, by route", durations.clone());
        registry.register("store_commit_duration_seconds", "Time to commit a write transaction", STORE_COMMIT_SECONDS.clone());
        registry.register("events_written", "Events appended to organizations' feeds", EVENTS_WRITTEN.clone());
        registry.register("notifications", "Notification delivery attempts, by channel kind and result", NOTIFICATIONS.clone());
        Metrics { registry, requests, durations }
    }
}

/// Counts and times every routed request (a `route_layer`: the route is known).
pub async fn track(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = match resp.status().as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    };
    s.metrics.durations.get_or_create(&RouteLabels { route: route.clone() }).observe(start.elapsed().as_secs_f64());
    s.metrics.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    resp
}

/// A method as a label: the standard ones by name, any other as one value
/// (a route answers only its own methods anyway).
fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExecutorLabels {
    kind: String,
    state: String,
    compat: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    chain: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    kind: String,
}

/// The fleet as of now, in a registry of its own (made per scrape, so a
/// state nobody is in any more is not reported).
fn fleet(stats: &crate::services::fleet::FleetStats) -> Registry {
    let mut r = Registry::with_prefix("novacula");
    let executors = Family::<ExecutorLabels, Gauge>::default();
    for (k, n) in &stats.executors {
        executors.get_or_create(&ExecutorLabels { kind: k.kind.into(), state: k.state.into(), compat: k.compat.into() }).set(*n as i64);
    }
    let nodes = Family::<NodeLabels, Gauge>::default();
    for ((chain, phase), n) in &stats.nodes {
        nodes.get_or_create(&NodeLabels { chain: chain.clone(), phase: (*phase).into() }).set(*n as i64);
    }
    let drift = Family::<DriftLabels, Gauge>::default();
    drift.get_or_create(&DriftLabels { kind: "revision".into() }).set(stats.revision_drift as i64);
    drift.get_or_create(&DriftLabels { kind: "liveness".into() }).set(stats.liveness_drift as i64);
    let firing = Gauge::<i64>::default();
    firing.set(stats.node_down_firing as i64);
    let orgs = Gauge::<i64>::default();
    orgs.set(stats.organizations as i64);
    r.register("executors", "Executors by kind, state (online, offline, deactivated) and compatibility window", executors);
    r.register("nodes", "Nodes (not yet removed) by chain and derived phase", nodes);
    r.register("nodes_drifting", "Nodes behind their spec (revision) or on an offline executor (liveness)", drift);
    r.register("node_down_alerts_firing", "Nodes whose node_down alert fires", firing);
    r.register("organizations", "Organizations", orgs);
    let incidents = Family::<RuleLabels, Gauge>::default();
    for (rule, n) in &stats.incidents_open {
        incidents.get_or_create(&RuleLabels { rule }).set(*n as i64);
    }
    r.register("incidents_open", "Open incidents, by alert rule", incidents);
    let outbox = Gauge::<i64>::default();
    outbox.set(stats.outbox as i64);
    r.register("notifications_queued", "Notifications waiting in the outbox (retries included)", outbox);
    r
}

/// The text a scrape gets.
pub async fn render(s: &Arc<AppState>) -> Result<String, crate::api::error::ApiError> {
    let stats = s.blocking(crate::services::fleet::stats).await?;
    let mut out = String::new();
    let fail = |_| crate::api::error::ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "could not encode the metrics");
    prometheus_client::encoding::text::encode_registry(&mut out, &s.metrics.registry).map_err(fail)?;
    prometheus_client::encoding::text::encode_registry(&mut out, &fleet(&stats)).map_err(fail)?;
    prometheus_client::encoding::text::encode_eof(&mut out).map_err(fail)?;
    Ok(out)
}

async fn scrape(State(s): State<Arc<AppState>>, headers: axum::http::HeaderMap) -> Response {
    use novacula_core::exposition::{prometheus_text, wants_openmetrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
    let openmetrics = wants_openmetrics(headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()));
    match render(&s).await {
        Ok(text) if openmetrics => ([(axum::http::header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Ok(text) => ([(axum::http::header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], prometheus_text(&text)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The metrics listener's router: `GET /metrics`.
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state(state)
}

/// Serve [`router`] on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) {
    if let Err(e) = axum::serve(listener, router(state)).await {
        tracing::error!(error = %e, "metrics listener stopped");
    }
}
