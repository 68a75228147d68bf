//! Login and user management.

use crate::auth::{hash_password, new_salt, sha256_hex, verify_password, UserCtx, SESSION_PREFIX, SESSION_TTL};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::orgs::check_user_fields;
use crate::state::AppState;
use crate::store::model::{Session, User, UserView};
use crate::store::{SESSIONS, USERS};
use axum::extract::State;
use axum::http::StatusCode;
use novacula_core::authz::Permission;
use novacula_core::sync::LockExt;
use novacula_core::throttle::LoginThrottle;
use novacula_core::validate::valid_name;
use novacula_core::wire::{CreateUserRequest, LoginRequest, LoginResponse, MeView};
use std::sync::Arc;

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no user has this password", [0; 16]))
}

#[utoipa::path(post, path = "/api/v1/login", tag = "users", request_body = LoginRequest, responses((status = 200, description = "session token", body = LoginResponse), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 429, description = "too many failed sign-ins for this user (5 in 15 min) or from this address (20 in 15 min)", body = novacula_core::wire::ApiError), (status = 503, description = "too many sign-ins in progress; retry", body = novacula_core::wire::ApiError)))]
pub async fn login(State(s): State<Arc<AppState>>, peer: Peer, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<LoginResponse> {
    // Nothing is stored, hashed or logged for a name that cannot exist.
    if !valid_name(&req.username) {
        return Err(ApiError::bad_request("username must be lowercase letters, digits and '-' (at most 63)"));
    }
    if req.password.chars().count() > PASSWORD_CHARS_MAX {
        return Err(ApiError::bad_request(format!("password longer than {PASSWORD_CHARS_MAX} characters")));
    }
    let now = s.now();
    let address = peer.0.map(|a| a.ip().to_string());
    let locked = |t: &std::sync::Mutex<LoginThrottle>, key: &str| t.locked().check(key, now);
    let lockout = locked(&s.user_throttle, &req.username)
        .err()
        .map(|w| (w, "for this user"))
        .or_else(|| address.as_deref().and_then(|a| locked(&s.address_throttle, a).err()).map(|w| (w, "from this address")));
    if let Some((wait, whom)) = lockout {
        tracing::warn!(user = %req.username, address = ?address, "sign-in refused: too many failed attempts {whom}");
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed sign-ins {whom}; try again in {} s", wait.as_secs().max(1)),
        ));
    }
    let user: Option<User> = s.store.read(|r| r.get(USERS, &req.username))?;
    // An unknown user costs the same hash as a known one, so timing does not tell names apart.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = req.password.clone();
    let ok = s.hash_pool.run(move || verify_password(&password, hash.as_deref().unwrap_or_else(|| dummy_hash()))).await? && user.is_some();
    let Some(user) = user.filter(|_| ok) else {
        s.user_throttle.locked().failed(&req.username, now);
        if let Some(a) = &address {
            s.address_throttle.locked().failed(a, now);
        }
        tracing::info!(user = %req.username, address = ?address, "sign-in failed");
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    s.user_throttle.locked().succeeded(&req.username);
    let token = format!("{SESSION_PREFIX}_{}", s.random_hex(32));
    let expires_at = now.plus(SESSION_TTL);
    s.store.write(|w| w.put(SESSIONS, &sha256_hex(&token), &Session { username: user.username.clone(), expires_at }))?;
    tracing::info!(user = %user.username, org = %user.org_id, "login");
    Ok(ApiJson(LoginResponse { token, expires_at, user: UserView::from(&user) }))
}

/// Longest password accepted (argon2 takes any length; a megabyte would only cost us).
pub const PASSWORD_CHARS_MAX: usize = 1024;

/// The client's address, when the request came through the server loop.
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(crate::server::peer(parts)))
    }
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

#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("session" = [])), request_body = CreateUserRequest, responses((status = 201, body = UserView), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, ApiJson<UserView>), ApiError> {
    user.require(Permission::ManageUsers)?;
    if !user.user.role.can_grant(req.role) {
        return Err(ApiError::forbidden(format!("role {} may not create a user with role {}", user.user.role.as_str(), req.role.as_str())));
    }
    check_user_fields(&req.username, &req.password)?;
    let (password, salt) = (req.password.clone(), new_salt(s.entropy.as_ref()));
    let password_hash = s.hash_pool.run(move || hash_password(&password, salt)).await?;
    let new = User { username: req.username.clone(), org_id: user.org().to_string(), role: req.role, password_hash, created_at: s.now() };
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
