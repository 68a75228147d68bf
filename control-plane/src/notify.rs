//! Delivering notifications from the durable outbox (`store::OUTBOX`).
//!
//! An incident's transition is queued in the transaction that made it, so a
//! crash loses none; this loop, on the control plane holding the lease, sends
//! each channel's oldest waiting notification (a channel's receiver sees its
//! transitions in order), records every attempt, and retries failures with
//! backoff (`alerts::retry_after`). A notification can arrive twice (a crash
//! after sending, before recording): its idempotency key says so.

use crate::services::alerts::record_delivery;
use crate::state::AppState;
use crate::store::model::{AlertChannel, Delivery, OutboxEntry};
use crate::store::{key, StoreError, ALERT_CHANNELS, OUTBOX};
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use novacula_core::alerts::{self, ChannelKind, Notification};
use novacula_core::wire::DeliveryView;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Outbox entries read per pass (the oldest first).
const SCAN: usize = 1000;
/// Deliveries in flight at once.
const PARALLEL: usize = 16;
const TICK: Duration = Duration::from_secs(1);

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP(S) client trusting the system's roots; no redirects are followed.
pub fn client() -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(alerts::DELIVERY_TIMEOUT));
    http.set_nodelay(true);
    http.enforce_http(false);
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|e| unreachable!("ring supports the default protocol versions: {e}"));
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(15)).build(https)
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub response_code: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
}

impl Outcome {
    pub fn delivered(&self) -> bool {
        self.response_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// POST `n` to `ch` in its format, signed when it has a secret (PagerDuty's
/// secret is its routing key, inside the body instead).
pub async fn send(client: &HttpClient, ch: &AlertChannel, n: &Notification, unix_secs: u64) -> Outcome {
    let started = Instant::now();
    let result = async {
        let body = serde_json::to_vec(&alerts::render(ch.kind, n, ch.secret.as_deref())).map_err(|e| format!("encoding: {e}"))?;
        let mut req = hyper::Request::post(ch.url.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, concat!("novacula/", env!("CARGO_PKG_VERSION")))
            .header(alerts::IDEMPOTENCY_HEADER, n.idempotency_key.as_str());
        if let Some(secret) = ch.secret.as_deref().filter(|_| ch.kind != ChannelKind::Pagerduty) {
            req = req.header(alerts::SIGNATURE_HEADER, alerts::signature(secret.as_bytes(), unix_secs, &body));
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| format!("bad request: {e}"))?;
        match tokio::time::timeout(alerts::DELIVERY_TIMEOUT, client.request(req)).await {
            Err(_) => Err(format!("no answer within {} s", alerts::DELIVERY_TIMEOUT.as_secs())),
            Ok(Err(e)) => Err(connect_error(&e)),
            // The body is not read: only the status counts.
            Ok(Ok(resp)) => Ok(resp.status().as_u16()),
        }
    }
    .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(code) => Outcome { response_code: Some(code), error: (!(200..300).contains(&code)).then(|| format!("answered {code}")), latency_ms },
        Err(error) => Outcome { response_code: None, error: Some(error), latency_ms },
    }
}

/// The innermost cause: "connection refused" rather than "client error (Connect)".
fn connect_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    format!("{e}: {inner}")
}

fn attempt_record(ch_id: &str, ch_name: &str, entry: &OutboxEntry, o: &Outcome, at: novacula_core::Timestamp, final_failure: bool) -> Delivery {
    Delivery {
        id: String::new(),
        org_id: entry.org_id.clone(),
        channel_id: ch_id.to_string(),
        channel_name: ch_name.to_string(),
        notification: entry.notification.clone(),
        attempt: entry.attempts + 1,
        at,
        latency_ms: o.latency_ms,
        response_code: o.response_code,
        error: o.error.clone(),
        delivered: o.delivered(),
        final_failure,
        replay_of: entry.replay_of.clone(),
    }
}

/// One pass: each channel's oldest due notification, sent in parallel and
/// recorded. Returns how many were attempted (0 off the lease).
pub async fn deliver_due(s: &Arc<AppState>, client: &HttpClient) -> Result<usize, StoreError> {
    let now = s.now();
    let due = s
        .blocking(move |s| {
            if !s.store.hold_lease()? {
                return Ok(Vec::new());
            }
            s.store.read(|r| {
                let entries: Vec<(String, OutboxEntry)> = r.scan_page(OUTBOX, "", None, SCAN)?;
                // A channel's later notifications wait for its oldest.
                let mut seen = BTreeSet::new();
                let mut due = Vec::new();
                for (_, e) in entries {
                    if seen.insert((e.org_id.clone(), e.channel_id.clone())) && e.next_at <= now && due.len() < PARALLEL {
                        let ch: Option<AlertChannel> = r.get(ALERT_CHANNELS, &key(&[&e.org_id, &e.channel_id]))?;
                        due.push((e, ch));
                    }
                }
                Ok::<_, StoreError>(due)
            })
        })
        .await?;
    let n = due.len();
    let mut sends = tokio::task::JoinSet::new();
    for (entry, ch) in due {
        let client = client.clone();
        sends.spawn(async move {
            let outcome = match &ch {
                Some(ch) if ch.enabled => Some(send(&client, ch, &entry.notification, now.0 / 1000).await),
                _ => None,
            };
            (entry, ch, outcome)
        });
    }
    let mut results = Vec::with_capacity(n);
    while let Some(done) = sends.join_next().await {
        if let Ok(r) = done {
            results.push(r);
        }
    }
    if results.is_empty() {
        return Ok(0);
    }
    s.blocking(move |s| {
        s.store.write(|w| {
            for (entry, ch, outcome) in &results {
                let (id, name) = ch.as_ref().map_or((entry.channel_id.as_str(), "(deleted)"), |c| (c.id.as_str(), c.name.as_str()));
                let (outcome, retry_at) = match outcome {
                    Some(o) => {
                        let retry = alerts::retry_after(entry.attempts + 1).map(|d| now.plus(d));
                        (o.clone(), retry)
                    }
                    None => {
                        let why = if ch.is_some() { "channel disabled" } else { "channel deleted" };
                        (Outcome { response_code: None, error: Some(why.into()), latency_ms: 0 }, None)
                    }
                };
                let result = match (ch, outcome.delivered()) {
                    (_, true) => "delivered",
                    (Some(c), false) if c.enabled => "failed",
                    _ => "dropped",
                };
                let kind = ch.as_ref().map_or("unknown", |c| c.kind.as_str());
                crate::metrics::NOTIFICATIONS.get_or_create(&crate::metrics::NotificationLabels { kind, result }).inc();
                if !outcome.delivered() {
                    tracing::warn!(org = %entry.org_id, channel = %name, attempt = entry.attempts + 1, error = ?outcome.error, retry = retry_at.is_some(), "notification not delivered");
                }
                let record = attempt_record(id, name, entry, &outcome, now, !outcome.delivered() && retry_at.is_none());
                record_delivery(w, record, Some((entry, retry_at)))?;
            }
            Ok::<_, StoreError>(())
        })
    })
    .await?;
    Ok(n)
}

/// A channel's Test button: sent now, recorded like any attempt.
pub async fn test(s: &Arc<AppState>, client: &HttpClient, ch: AlertChannel, n: Notification) -> Result<DeliveryView, StoreError> {
    let now = s.now();
    let outcome = send(client, &ch, &n, now.0 / 1000).await;
    let entry = OutboxEntry { seq: 0, org_id: ch.org_id.clone(), channel_id: ch.id.clone(), notification: n, attempts: 0, next_at: now, replay_of: None };
    s.blocking(move |s| s.store.write(|w| record_delivery(w, attempt_record(&ch.id, &ch.name, &entry, &outcome, now, false), None))).await
}

pub async fn run(s: Arc<AppState>) {
    let client = client();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match deliver_due(&s, &client).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(attempted = n, "notifications delivered"),
            Err(e) => tracing::error!(error = %e, "delivering notifications failed; will retry"),
        }
    }
}
