//! An executor's metrics: its loops (syncs, reconcile passes and the
//! changes they made, refusals, reports) and its nodes as last observed
//! (up, head, peers, sync distance, disk used). Served, when the host asks
//! for it, on a local listener ([`serve`]); the one inbound socket an
//! executor may have, and never to the control plane. Labels are bounded:
//! results, and the nodes and processes of this host.

use novacula_core::exposition::{prometheus_text, wants_openmetrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
use novacula_core::sync::LockExt;
use novacula_core::{ObservedNodeState, ObservedNodeStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessLabels {
    node: String,
    process: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

pub struct ExecutorMetrics {
    registry: Registry,
    syncs: Family<Outcome, Counter>,
    reports: Family<Outcome, Counter>,
    reconcile_seconds: Histogram,
    changes: Counter,
    refusals: Counter,
    observe_errors: Counter,
    /// The nodes as last observed, rendered at each scrape (a node gone is gone).
    nodes: Mutex<Vec<ObservedNodeState>>,
}

impl Default for ExecutorMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("novacula_executor");
        let m = ExecutorMetrics {
            syncs: Family::default(),
            reports: Family::default(),
            reconcile_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            changes: Counter::default(),
            refusals: Counter::default(),
            observe_errors: Counter::default(),
            nodes: Mutex::new(Vec::new()),
            registry: Registry::default(),
        };
        registry.register("syncs", "syncExecutor calls, by result (ok, error)", m.syncs.clone());
        registry.register("reports", "Reports of observed states, by result", m.reports.clone());
        registry.register("reconcile_duration_seconds", "Time of a reconcile pass over every desired node", m.reconcile_seconds.clone());
        registry.register("driver_changes", "Changes the reconciler applied through the driver (units, files, processes)", m.changes.clone());
        registry.register("spec_refusals", "Desired nodes this executor refused to run (its own checks)", m.refusals.clone());
        registry.register("observe_errors", "Nodes that could not be observed", m.observe_errors.clone());
        ExecutorMetrics { registry, ..m }
    }
}

fn outcome<T, E>(r: &Result<T, E>) -> Outcome {
    Outcome { result: if r.is_ok() { "ok" } else { "error" } }
}

impl ExecutorMetrics {
    pub fn synced<T, E>(&self, r: &Result<T, E>) {
        self.syncs.get_or_create(&outcome(r)).inc();
    }
    pub fn reported<T, E>(&self, r: &Result<T, E>) {
        self.reports.get_or_create(&outcome(r)).inc();
    }
    pub fn reconciled(&self, seconds: f64, changes: usize, refusals: usize) {
        self.reconcile_seconds.observe(seconds);
        self.changes.inc_by(changes as u64);
        self.refusals.inc_by(refusals as u64);
    }
    pub fn observe_failed(&self) {
        self.observe_errors.inc();
    }
    pub fn observed(&self, states: &[ObservedNodeState]) {
        *self.nodes.locked() = states.to_vec();
    }

    /// The nodes as last observed, in a registry of their own.
    fn nodes(&self) -> Registry {
        let mut r = Registry::with_prefix("novacula_node");
        let (up, head, peers, distance) = (
            Family::<ProcessLabels, Gauge>::default(),
            Family::<ProcessLabels, Gauge>::default(),
            Family::<ProcessLabels, Gauge>::default(),
            Family::<ProcessLabels, Gauge>::default(),
        );
        let disk = Family::<NodeLabels, Gauge>::default();
        for n in self.nodes.locked().iter() {
            for p in &n.processes {
                let l = ProcessLabels { node: n.node.clone(), process: p.name.clone() };
                up.get_or_create(&l).set(i64::from(matches!(p.status, ObservedNodeStatus::Running | ObservedNodeStatus::Syncing)));
                if let Some(s) = &p.sync {
                    head.get_or_create(&l).set(i64::try_from(s.current_block).unwrap_or(i64::MAX));
                    peers.get_or_create(&l).set(i64::from(s.peers));
                    distance.get_or_create(&l).set(i64::try_from(s.sync_distance).unwrap_or(i64::MAX));
                }
            }
            if let Some(d) = n.disk {
                disk.get_or_create(&NodeLabels { node: n.node.clone() }).set(i64::try_from(d.used_bytes).unwrap_or(i64::MAX));
            }
        }
        r.register("up", "1 when the process runs or syncs, else 0", up);
        r.register("head", "The newest block (or slot) the process has", head);
        r.register("peers", "Peers of the process", peers);
        r.register("sync_distance", "Blocks (or slots) behind the network's head", distance);
        r.register("disk_used_bytes", "Disk used by the node's data", disk);
        r
    }

    /// OpenMetrics text of everything.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.nodes());
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

/// Answer `GET /metrics` on `listener` with `metrics` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: std::sync::Arc<ExecutorMetrics>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let resp = if req.uri().path() != "/metrics" {
                        Response::builder().status(StatusCode::NOT_FOUND).body(Full::new(Bytes::from_static(b"only /metrics here\n")))
                    } else {
                        let om = wants_openmetrics(req.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok()));
                        let text = metrics.render();
                        let (ty, body) = if om { (OPENMETRICS_CONTENT_TYPE, text) } else { (PROMETHEUS_CONTENT_TYPE, prometheus_text(&text)) };
                        Response::builder().header(hyper::header::CONTENT_TYPE, ty).body(Full::new(Bytes::from(body)))
                    };
                    resp
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}
