//! Sign-in, sessions, and the members of an organization.

use super::auth::{AccountCtx, UserCtx};
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::services::users;
use crate::state::AppState;
use crate::store::model::UserView;
use axum::extract::State;
use axum::http::StatusCode;
use novacula_core::wire::{
    ChangePasswordRequest, CreateUserRequest, LoginRequest, LoginResponse, MeView, OrgMembershipView, ResetPasswordRequest, SetRoleRequest, SignupInfo,
    SignupRequest, TransferOwnershipRequest,
};
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/login", tag = "users", request_body = LoginRequest, responses((status = 200, description = "session token", body = LoginResponse), (status = 401, description = "wrong username or password, or the user is disabled", body = novacula_core::wire::ApiError), (status = 403, description = "not a member of the organization asked for, or of none", body = novacula_core::wire::ApiError), (status = 429, description = "too many failed sign-ins for this user (5 in 15 min) or from this address (20 in 15 min)", body = novacula_core::wire::ApiError), (status = 503, description = "too many sign-ins in progress; retry", body = novacula_core::wire::ApiError)))]
pub async fn login(State(s): State<Arc<AppState>>, peer: Peer, client: Client, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<LoginResponse> {
    Ok(ApiJson(users::login(&s, peer.0.map(|a| a.ip().to_string()), client.0, &req).await?))
}

/// Whether this server takes sign-ups (the console shows "Create an account").
#[utoipa::path(get, path = "/api/v1/signup", tag = "users", responses((status = 200, body = SignupInfo)))]
pub async fn signup_info(State(s): State<Arc<AppState>>) -> ApiJson<SignupInfo> {
    ApiJson(SignupInfo { enabled: s.config.allow_signup })
}

/// Create an account and an organization of its own, owned by it (when `serve --allow-signup`).
#[utoipa::path(post, path = "/api/v1/signup", tag = "users", request_body = SignupRequest, responses((status = 201, description = "a session in the new organization", body = LoginResponse), (status = 403, description = "sign-up is off", body = novacula_core::wire::ApiError), (status = 409, description = "the username or organization exists", body = novacula_core::wire::ApiError), (status = 429, description = "too many sign-ups from this address", body = novacula_core::wire::ApiError), (status = 503, description = "too many sign-ins in progress; retry", body = novacula_core::wire::ApiError)))]
pub async fn signup(
    State(s): State<Arc<AppState>>,
    peer: Peer,
    client: Client,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, ApiJson<LoginResponse>), ApiError> {
    let address = peer.0.map(|a| a.ip().to_string());
    Ok((StatusCode::CREATED, ApiJson(crate::services::orgs::signup(&s, address, client.0, &req).await?)))
}

/// Through what the request came (`X-Novacula-Client`).
pub struct Client(pub novacula_core::audit::Source);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(super::auth::source(parts)))
    }
}

/// The client's address, when the request came through the server loop.
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(crate::server::peer(parts)))
    }
}

/// Ends this session at once: its token no longer works anywhere.
#[utoipa::path(post, path = "/api/v1/logout", tag = "users", security(("session" = [])), responses((status = 204, description = "signed out")))]
pub async fn logout(State(s): State<Arc<AppState>>, account: AccountCtx) -> Result<StatusCode, ApiError> {
    s.blocking(move |s| users::logout(s, &account.session_key, &account.session, account.source)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "users", security(("session" = [])), responses((status = 200, body = MeView)))]
pub async fn me(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<MeView> {
    Ok(ApiJson(user.caller.me(&s)))
}

/// Your own password; every session of yours ends, and the answer is a new one.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "users", security(("session" = [])), request_body = ChangePasswordRequest, responses((status = 200, description = "a new session (the others ended)", body = LoginResponse), (status = 429, description = "too many wrong current passwords (they count as failed sign-ins)", body = novacula_core::wire::ApiError)))]
pub async fn change_password(State(s): State<Arc<AppState>>, account: AccountCtx, ApiJson(req): ApiJson<ChangePasswordRequest>) -> ApiResult<LoginResponse> {
    Ok(ApiJson(users::change_password(&s, &account.user, &account.session, account.source, &req).await?))
}

/// Leave the organization this request works in (the owner transfers ownership first).
#[utoipa::path(delete, path = "/api/v1/me/membership", tag = "users", security(("session" = [])), responses((status = 204, description = "left"), (status = 409, description = "the owner cannot leave", body = novacula_core::wire::ApiError)))]
pub async fn leave(State(s): State<Arc<AppState>>, user: UserCtx) -> Result<StatusCode, ApiError> {
    let me = user.caller.clone();
    s.blocking(move |s| users::leave(s, &me)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your organizations and your role in each; send `X-Novacula-Org: <org>` to work in another.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "users", security(("session" = [])), responses((status = 200, body = Vec<OrgMembershipView>)))]
pub async fn orgs(State(s): State<Arc<AppState>>, account: AccountCtx) -> ApiResult<Vec<OrgMembershipView>> {
    let name = account.user.username;
    Ok(ApiJson(s.blocking(move |s| users::orgs(s, &name)).await?))
}

/// The owner hands the organization to another member and becomes admin.
#[utoipa::path(post, path = "/api/v1/ownership", tag = "users", security(("session" = [])), request_body = TransferOwnershipRequest, responses((status = 200, description = "the new owner", body = UserView), (status = 404, description = "no such member", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn transfer_ownership(State(s): State<Arc<AppState>>, user: UserCtx, ApiJson(req): ApiJson<TransferOwnershipRequest>) -> ApiResult<UserView> {
    let owner = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| users::transfer_ownership(s, &owner, &req.username)).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("session" = [])), request_body = CreateUserRequest, responses((status = 201, body = UserView), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, ApiJson<UserView>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(users::create(&s, &user.caller, &req).await?)))
}

/// The organization's members.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("session" = [])), responses((status = 200, body = Vec<UserView>)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<UserView>> {
    let by = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| users::list(s, &by)).await?))
}

/// Change a member's role: owners any but owner, admins member, operator and
/// admin and never an owner's; nobody their own.
#[utoipa::path(put, path = "/api/v1/users/{username}", tag = "users", security(("session" = [])), params(("username" = String, Path, description = "username")), request_body = SetRoleRequest, responses((status = 200, body = UserView), (status = 404, description = "no such member", body = novacula_core::wire::ApiError)))]
pub async fn set_role(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<SetRoleRequest>,
) -> ApiResult<UserView> {
    let by = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| users::set_role(s, &by, &name, req.role)).await?))
}

/// Remove a member from the organization (not the owner, not yourself); the account stays.
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "users", security(("session" = [])), params(("username" = String, Path, description = "username")), responses((status = 204, description = "removed"), (status = 404, description = "no such member", body = novacula_core::wire::ApiError)))]
pub async fn remove(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let by = user.caller.clone();
    s.blocking(move |s| users::remove(s, &by, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set the password of a member who belongs to this organization alone; their sessions end.
#[utoipa::path(put, path = "/api/v1/users/{username}/password", tag = "users", security(("session" = [])), params(("username" = String, Path, description = "username")), request_body = ResetPasswordRequest, responses((status = 200, body = UserView), (status = 404, description = "no such member", body = novacula_core::wire::ApiError), (status = 409, description = "the user belongs to other organizations too", body = novacula_core::wire::ApiError)))]
pub async fn reset_password(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> ApiResult<UserView> {
    Ok(ApiJson(users::reset_password(&s, &user.caller, &name, &req.new_password).await?))
}

/// Disable a member who belongs to this organization alone: they cannot sign in, and their sessions stop at once.
#[utoipa::path(post, path = "/api/v1/users/{username}/disable", tag = "users", security(("session" = [])), params(("username" = String, Path, description = "username")), responses((status = 200, body = UserView), (status = 404, description = "no such member", body = novacula_core::wire::ApiError), (status = 409, description = "the user belongs to other organizations too", body = novacula_core::wire::ApiError)))]
pub async fn disable(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<UserView> {
    let by = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| users::set_disabled(s, &by, &name, true)).await?))
}

#[utoipa::path(post, path = "/api/v1/users/{username}/enable", tag = "users", security(("session" = [])), params(("username" = String, Path, description = "username")), responses((status = 200, body = UserView), (status = 404, description = "no such member", body = novacula_core::wire::ApiError), (status = 409, description = "the user belongs to other organizations too", body = novacula_core::wire::ApiError)))]
pub async fn enable(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<UserView> {
    let by = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| users::set_disabled(s, &by, &name, false)).await?))
}
