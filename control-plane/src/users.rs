//! Login and user management.

use crate::auth::{hash_password, random_hex, sha256_hex, verify_password, UserCtx, SESSION_PREFIX, SESSION_TTL};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::model::{Session, User, UserView};
use crate::orgs::check_user_fields;
use crate::state::AppState;
use crate::store::{SESSIONS, USERS};
use axum::extract::State;
use axum::http::StatusCode;
use novacula_core::authz::{Permission, Role};
use novacula_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: Timestamp,
    pub user: UserView,
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no user has this password"))
}

#[utoipa::path(post, path = "/api/v1/login", tag = "users", request_body = LoginRequest, responses((status = 200, description = "session token", body = LoginResponse), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 429, description = "too many failed sign-ins for this user (5 in 15 min)", body = novacula_core::wire::ApiError)))]
pub async fn login(State(s): State<Arc<AppState>>, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<LoginResponse> {
    let now = s.now();
    if let Err(wait) = s.login_throttle.lock().expect("lock").check(&req.username, now) {
        tracing::warn!(user = %req.username, "sign-in refused: too many failed attempts");
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed sign-ins for this user; try again in {} s", wait.as_secs().max(1)),
        ));
    }
    let user: Option<User> = s.store.read(|r| r.get(USERS, &req.username))?;
    // An unknown user costs the same hash as a known one, so timing does not tell names apart.
    let ok = match &user {
        Some(u) => verify_password(&req.password, &u.password_hash),
        None => {
            let _ = verify_password(&req.password, dummy_hash());
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        s.login_throttle.lock().expect("lock").failed(&req.username, now);
        tracing::info!(user = %req.username, "sign-in failed");
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    s.login_throttle.lock().expect("lock").succeeded(&req.username);
    let token = format!("{SESSION_PREFIX}_{}", random_hex(32));
    let expires_at = now.plus(SESSION_TTL);
    s.store.write(|w| w.put(SESSIONS, &sha256_hex(&token), &Session { username: user.username.clone(), expires_at }))?;
    tracing::info!(user = %user.username, org = %user.org_id, "login");
    Ok(ApiJson(LoginResponse { token, expires_at, user: UserView::from(&user) }))
}

/// The signed-in user and what the role lets them do (the console greys out the rest).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    pub can_operate_nodes: bool,
    pub can_manage_executors: bool,
    pub can_manage_users: bool,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "users", security(("session" = [])), responses((status = 200, body = MeView), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError)))]
pub async fn me(user: UserCtx) -> ApiResult<MeView> {
    let role = user.user.role;
    Ok(ApiJson(MeView {
        user: UserView::from(&user.user),
        can_operate_nodes: role.can(Permission::OperateNodes),
        can_manage_executors: role.can(Permission::ManageExecutors),
        can_manage_users: role.can(Permission::ManageUsers),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub password: String,
    pub role: Role,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("session" = [])), request_body = CreateUserRequest, responses((status = 201, body = UserView), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn create(State(s): State<Arc<AppState>>, user: UserCtx, ApiJson(req): ApiJson<CreateUserRequest>) -> Result<(StatusCode, ApiJson<UserView>), ApiError> {
    user.require(Permission::ManageUsers)?;
    if !user.user.role.can_grant(req.role) {
        return Err(ApiError::forbidden(format!("role {} may not create a user with role {}", user.user.role.as_str(), req.role.as_str())));
    }
    check_user_fields(&req.username, &req.password)?;
    let new = User {
        username: req.username.clone(),
        org_id: user.org().to_string(),
        role: req.role,
        password_hash: hash_password(&req.password),
        created_at: s.now(),
    };
    s.store.write(|w| {
        if w.get::<User>(USERS, &req.username)?.is_some() {
            return Err(ApiError::conflict(format!("user {:?} already exists", req.username)));
        }
        Ok(w.put(USERS, &req.username, &new)?)
    })?;
    Ok((StatusCode::CREATED, ApiJson(UserView::from(&new))))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("session" = [])), responses((status = 200, body = Vec<UserView>), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<UserView>> {
    user.require(Permission::Read)?;
    let all: Vec<(String, User)> = s.store.read(|r| r.scan(USERS, ""))?;
    Ok(ApiJson(all.into_iter().map(|(_, u)| u).filter(|u| u.org_id == user.user.org_id).map(|u| UserView::from(&u)).collect()))
}
