//! HTTP routes.

use crate::error::ApiError;
use crate::state::AppState;
use crate::{events, executors, keys, nodes, protocol, users};
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use std::sync::Arc;

/// Largest accepted request body; specs and reports are far smaller.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/login", post(users::login))
        .route("/me", get(users::me))
        .route("/users", get(users::list).post(users::create))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}", delete(keys::revoke))
        .route("/executors", get(executors::list))
        .route("/executors/{name}", get(executors::get))
        .route("/executors/{name}/deactivate", post(executors::deactivate))
        .route("/upgrades", get(executors::list_upgrades).put(executors::set_upgrade))
        .route("/executor/sync", post(protocol::sync))
        .route("/executor/specs", get(protocol::specs))
        .route("/executor/report", post(protocol::report))
        .route("/nodes", get(nodes::list).post(nodes::deploy))
        .route("/nodes/{name}", get(nodes::get).delete(nodes::delete))
        .route("/nodes/{name}/spec", put(nodes::edit))
        .route("/nodes/{name}/upgrade", post(nodes::upgrade))
        .route("/nodes/{name}/lifecycle", post(nodes::lifecycle_action))
        .route("/events", get(events::list))
        .route("/alerts", get(nodes::alerts));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .nest("/api/v1", v1)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve until `shutdown` resolves, with the health sweeper running beside it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(crate::sweeper::run(state.clone()));
    let res = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await;
    sweeper.abort();
    res
}
