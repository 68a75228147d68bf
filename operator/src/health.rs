//! The operator's probe endpoint: `GET /healthz` and `GET /readyz` answer
//! 200 while it runs. It is bound once the Kubernetes client, the CRD and the
//! control-plane client are set up, so a pod is ready only after a
//! successful start; with the chart's `minReadySeconds`, an image that
//! crashes soon after is never "available", and the old pod, which watches
//! the rollout, rolls it back.
//!
//! The same port serves the executor's Prometheus metrics at `/metrics`
//! (the chart's optional PodMonitor scrapes it).

use axum::routing::get;
use axum::Router;
use novacula_executor::metrics::ExecutorMetrics;
use std::sync::Arc;

pub fn router(metrics: Arc<ExecutorMetrics>) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(|| async { "ready" })).route(
        "/metrics",
        get(move |headers: axum::http::HeaderMap| async move {
            use novacula_core::exposition::{prometheus_text, wants_openmetrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
            let text = metrics.render();
            if wants_openmetrics(headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok())) {
                ([(axum::http::header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text)
            } else {
                ([(axum::http::header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], prometheus_text(&text))
            }
        }),
    )
}

/// Serve the probes and the metrics on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<ExecutorMetrics>) -> std::io::Result<()> {
    axum::serve(listener, router(metrics)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probes_and_metrics_answer_200() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let metrics = Arc::new(ExecutorMetrics::default());
        metrics.reconciled(0.01, 2, 0);
        tokio::spawn(serve(listener, metrics));
        let api = novacula_client::HttpApi::new(&url, None).unwrap();
        for path in ["/healthz", "/readyz", "/metrics"] {
            let (status, _) = api.raw(novacula_client::Method::GET, path, None, std::time::Duration::from_secs(2)).await.unwrap();
            assert_eq!(status.as_u16(), 200, "{path}");
        }
        let (_, text) = api.raw(novacula_client::Method::GET, "/metrics", None, std::time::Duration::from_secs(2)).await.unwrap();
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("novacula_executor_driver_changes_total 2"), "{text}");
        assert!(!text.contains("# EOF"), "the classic text format for a client that did not ask for OpenMetrics");
    }
}
