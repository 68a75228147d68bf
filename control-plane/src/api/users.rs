//! Login and user management.

use super::auth::UserCtx;
use super::error::{ApiError, ApiJson, ApiResult};
use crate::services::users;
use crate::state::AppState;
use crate::store::model::UserView;
use axum::extract::State;
use axum::http::StatusCode;
use novacula_core::wire::{CreateUserRequest, LoginRequest, LoginResponse, MeView};
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/login", tag = "users", request_body = LoginRequest, responses((status = 200, description = "session token", body = LoginResponse), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 429, description = "too many failed sign-ins for this user (5 in 15 min) or from this address (20 in 15 min)", body = novacula_core::wire::ApiError), (status = 503, description = "too many sign-ins in progress; retry", body = novacula_core::wire::ApiError)))]
pub async fn login(State(s): State<Arc<AppState>>, peer: Peer, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<LoginResponse> {
    Ok(ApiJson(users::login(&s, peer.0.map(|a| a.ip().to_string()), &req).await?))
}

/// The client's address, when the request came through the server loop.
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(crate::server::peer(parts)))
    }
}

#[utoipa::path(get, path = "/api/v1/me", tag = "users", security(("session" = [])), responses((status = 200, body = MeView)))]
pub async fn me(user: UserCtx) -> ApiResult<MeView> {
    Ok(ApiJson(MeView { user: UserView::from(&user.user), permissions: user.user.role.permissions() }))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("session" = [])), request_body = CreateUserRequest, responses((status = 201, body = UserView), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, ApiJson<UserView>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(users::create(&s, user.org(), user.user.role, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("session" = [])), responses((status = 200, body = Vec<UserView>)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<UserView>> {
    Ok(ApiJson(users::list(&s, user.org())?))
}
