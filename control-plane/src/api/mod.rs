//! The REST API: handlers per concept that parse, authorize, call a service
//! and encode; the router and its OpenAPI document come from one list.

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod console;
pub mod error;
pub mod events;
pub mod executors;
pub mod graphql;
pub mod invitations;
pub mod keys;
pub mod logs;
pub mod nodes;
pub mod org;
pub mod platform;
pub mod protocol;
pub mod users;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use error::ApiError;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest accepted request body; specs and reports are far smaller.
pub const MAX_BODY: usize = 1024 * 1024;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Novacula control plane", description = "Organizations, users, API keys, executors, nodes and events. Users authenticate with a session token from /api/v1/login; executors with an API key. Both go in `Authorization: Bearer <token>`. Errors are JSON `{error, details}`."),
    modifiers(&Security)
)]
struct ApiDoc;

/// Answers that follow from an operation's shape, stated once here instead of
/// on every route: an authenticated operation can answer 401 and 403; one that
/// takes a body or query parameters, 400; a body can be too large (413) or not
/// JSON (415); and a storage failure is a 500. Routes state only the answers
/// particular to them (404, 409, 422, 429, 503).
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
        let error = |what: &str| {
            let content = ContentBuilder::new().schema(Some(utoipa::openapi::Ref::from_schema_name("ApiError"))).build();
            RefOr::T(ResponseBuilder::new().description(what).content("application/json", content).build())
        };
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete].into_iter().flatten() {
                let with_body = op.request_body.is_some();
                let with_query = op.parameters.iter().flatten().any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
                let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let responses = &mut op.responses.responses;
                if authenticated {
                    responses.entry("401".into()).or_insert_with(|| error("not authenticated"));
                    responses.entry("403".into()).or_insert_with(|| error("role or key may not do this"));
                }
                if with_body || with_query {
                    responses.entry("400".into()).or_insert_with(|| error("invalid input"));
                }
                if with_body {
                    responses.entry("413".into()).or_insert_with(|| error("request body larger than 1 MiB"));
                    responses.entry("415".into()).or_insert_with(|| error("request body is not application/json"));
                }
                responses.entry("500".into()).or_insert_with(|| error("storage failure; see the control plane's logs"));
            }
        }
    }
}

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(what.to_string())).build());
        c.add_security_scheme("session", bearer("session token (nvs_...) from POST /api/v1/login"));
        c.add_security_scheme("apiKey", bearer("organization API key (nvk_...)"));
    }
}

/// Every API route with its OpenAPI operation; the router and the document come from this one list.
fn api_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(users::login))
        .routes(routes!(users::signup_info, users::signup))
        .routes(routes!(users::logout))
        .routes(routes!(users::me))
        .routes(routes!(users::change_password))
        .routes(routes!(users::leave))
        .routes(routes!(users::orgs))
        .routes(routes!(users::transfer_ownership))
        .routes(routes!(org::get, org::update))
        .routes(routes!(org::logo, org::set_logo, org::remove_logo))
        .routes(routes!(org::deactivate))
        .routes(routes!(org::reactivate))
        .routes(routes!(users::list, users::create))
        .routes(routes!(invitations::list, invitations::create))
        .routes(routes!(invitations::resend))
        .routes(routes!(invitations::cancel))
        .routes(routes!(invitations::preview))
        .routes(routes!(invitations::accept))
        .routes(routes!(users::set_role, users::remove))
        .routes(routes!(users::reset_password))
        .routes(routes!(users::disable))
        .routes(routes!(users::enable))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(keys::rotate))
        .routes(routes!(keys::delete))
        .routes(routes!(executors::list))
        .routes(routes!(executors::get, executors::delete))
        .routes(routes!(executors::deactivate))
        .routes(routes!(executors::reactivate))
        .routes(routes!(executors::draft))
        .routes(routes!(executors::list_upgrades, executors::set_upgrade))
        .routes(routes!(protocol::sync))
        .routes(routes!(protocol::specs))
        .routes(routes!(protocol::report))
        .routes(routes!(logs::push))
        .routes(routes!(logs::stream))
        .routes(routes!(nodes::history))
        .routes(routes!(nodes::list, nodes::deploy))
        .routes(routes!(nodes::get, nodes::delete))
        .routes(routes!(nodes::edit))
        .routes(routes!(nodes::upgrade))
        .routes(routes!(nodes::lifecycle_action))
        .routes(routes!(events::list))
        .routes(routes!(audit::list))
        .routes(routes!(audit::mine))
        .routes(routes!(nodes::alerts))
        .routes(routes!(alerts::settings, alerts::set_settings))
        .routes(routes!(alerts::policies))
        .routes(routes!(alerts::node_policy, alerts::set_node_policy))
        .routes(routes!(alerts::incidents))
        .routes(routes!(alerts::channels, alerts::create_channel))
        .routes(routes!(alerts::update_channel, alerts::delete_channel))
        .routes(routes!(alerts::test_channel))
        .routes(routes!(alerts::deliveries))
        .routes(routes!(alerts::replay))
        .routes(routes!(platform::orgs))
        .routes(routes!(platform::deactivate))
        .routes(routes!(platform::reactivate))
        .routes(routes!(platform::releases, platform::publish))
        .routes(routes!(platform::impersonate))
        .routes(routes!(platform::audit))
}

/// The OpenAPI document of the HTTP API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes_and_doc().1
}

/// The routes and their document; the common answers are stated once the paths exist.
fn api_routes_and_doc() -> (axum::Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    use utoipa::Modify;
    let (api, mut doc) = api_routes().split_for_parts();
    CommonResponses.modify(&mut doc);
    (api, doc)
}

pub fn router(state: Arc<AppState>) -> Router {
    let (api, doc) = api_routes_and_doc();
    let doc = Arc::new(doc);
    let schema = graphql::schema(state.config.graphql_introspection);
    api.route(graphql::PATH, axum::routing::post(move |s, principal, body| graphql::handle(schema.clone(), s, principal, body)))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::metrics::track))
        .route("/healthz", get(|| async { "ok" }))
        .route(OPENAPI_PATH, get(move || async move { axum::Json(doc.as_ref().clone()) }))
        .merge(console::routes())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async { ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(state.clone(), refuse_if_outdated))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Every request, `/healthz` included, answers 503 once a newer release has
/// migrated the database under this control plane (see `Store::outdated`;
/// noticed at a sweep's start if no request finds it first): executors and
/// load balancers go to an upgraded replica instead.
async fn refuse_if_outdated(
    axum::extract::State(s): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match s.store.outdated() {
        // Logged once, when the store first refused.
        Some(e) => ApiError::from(e).quiet(),
        None => next.run(req).await,
    }
}

/// Serve until `shutdown` resolves, with the health sweeper running beside it.
/// `listener` is a `TcpListener`, or a [`crate::tls::TlsListener`] for HTTPS.
pub async fn serve<L: axum::serve::Listener<Addr = std::net::SocketAddr>>(
    listener: L,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(crate::sweeper::run(state.clone()));
    let notifier = tokio::spawn(crate::notify::run(state.clone()));
    let limits = state.config.http.clone();
    let res = crate::server::serve(listener, router(state.clone()), limits, shutdown).await;
    sweeper.abort();
    notifier.abort();
    // Their hold on the state (and the database) ends before this returns.
    let _ = sweeper.await;
    let _ = notifier.await;
    // The last heartbeats held in memory, so a clean stop loses none.
    if let Err(e) = state.liveness.flush_all(&state.store) {
        tracing::warn!(error = %e, "could not write executors' last heartbeats at shutdown");
    }
    res
}
