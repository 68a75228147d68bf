//! The operator's probe endpoint: `GET /healthz` and `GET /readyz` answer
//! 200 while it runs. It is bound once the Kubernetes client, the CRD and the
//! control-plane client are set up, so a pod is ready only after a
//! successful start; with the chart's `minReadySeconds`, an image that
//! crashes soon after is never "available", and the old pod, which watches
//! the rollout, rolls it back.

use axum::routing::get;
use axum::Router;

pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(|| async { "ready" }))
}

/// Serve the probes on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probes_answer_200() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener));
        let api = novacula_client::HttpApi::new(&url, None).unwrap();
        for path in ["/healthz", "/readyz"] {
            let (status, _) = api.raw(novacula_client::Method::GET, path, None, std::time::Duration::from_secs(2)).await.unwrap();
            assert_eq!(status.as_u16(), 200, "{path}");
        }
    }
}
