//! Sign-in and the organization's users.

use super::credentials::{hash_password, new_salt, sha256_hex, verify_password, SESSION_PREFIX, SESSION_TTL};
use super::orgs::check_user_fields;
use super::{Result, ServiceError};
use crate::state::AppState;
use crate::store::model::{Session, User, UserView};
use crate::store::{SESSIONS, USERS};
use novacula_core::authz::Role;
use novacula_core::sync::LockExt;
use novacula_core::throttle::LoginThrottle;
use novacula_core::validate::valid_name;
use novacula_core::wire::{CreateUserRequest, LoginRequest, LoginResponse};

/// Longest password accepted (argon2 takes any length; a megabyte would only cost us).
pub const PASSWORD_CHARS_MAX: usize = 1024;

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no user has this password", [0; 16]))
}

/// Check a password and open a session; failures count against the user and
/// the client's `address` (the throttles lock both out for a while).
pub async fn login(s: &AppState, address: Option<String>, req: &LoginRequest) -> Result<LoginResponse> {
    // Nothing is stored, hashed or logged for a name that cannot exist.
    if !valid_name(&req.username) {
        return Err(ServiceError::BadInput("username must be lowercase letters, digits and '-' (at most 63)".into()));
    }
    if req.password.chars().count() > PASSWORD_CHARS_MAX {
        return Err(ServiceError::BadInput(format!("password longer than {PASSWORD_CHARS_MAX} characters")));
    }
    let now = s.now();
    let locked = |t: &std::sync::Mutex<LoginThrottle>, key: &str| t.locked().check(key, now);
    let lockout = locked(&s.user_throttle, &req.username)
        .err()
        .map(|w| (w, "for this user"))
        .or_else(|| address.as_deref().and_then(|a| locked(&s.address_throttle, a).err()).map(|w| (w, "from this address")));
    if let Some((wait, whom)) = lockout {
        tracing::warn!(user = %req.username, address = ?address, "sign-in refused: too many failed attempts {whom}");
        return Err(ServiceError::Throttled(format!("too many failed sign-ins {whom}; try again in {} s", wait.as_secs().max(1))));
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
        return Err(ServiceError::Unauthenticated("wrong username or password".into()));
    };
    s.user_throttle.locked().succeeded(&req.username);
    let token = format!("{SESSION_PREFIX}_{}", s.random_hex(32));
    let expires_at = now.plus(SESSION_TTL);
    s.store.write(|w| w.put(SESSIONS, &sha256_hex(&token), &Session { username: user.username.clone(), expires_at }))?;
    tracing::info!(user = %user.username, org = %user.org_id, "login");
    Ok(LoginResponse { token, expires_at, user: UserView::from(&user) })
}

/// A new user of `org`, created by someone with role `creator`.
pub async fn create(s: &AppState, org: &str, creator: Role, req: &CreateUserRequest) -> Result<UserView> {
    if !creator.can_grant(req.role) {
        return Err(ServiceError::Forbidden(format!("role {} may not create a user with role {}", creator.as_str(), req.role.as_str())));
    }
    check_user_fields(&req.username, &req.password)?;
    let (password, salt) = (req.password.clone(), new_salt(s.entropy.as_ref()));
    let password_hash = s.hash_pool.run(move || hash_password(&password, salt)).await?;
    let new = User { username: req.username.clone(), org_id: org.to_string(), role: req.role, password_hash, created_at: s.now() };
    s.store.write(|w| {
        if w.get::<User>(USERS, &req.username)?.is_some() {
            return Err(ServiceError::Conflict(format!("user {:?} already exists", req.username)));
        }
        Ok(w.put(USERS, &req.username, &new)?)
    })?;
    Ok(UserView::from(&new))
}

pub fn list(s: &AppState, org: &str) -> Result<Vec<UserView>> {
    let all: Vec<(String, User)> = s.store.read(|r| r.scan(USERS, ""))?;
    Ok(all.into_iter().map(|(_, u)| u).filter(|u| u.org_id == org).map(|u| UserView::from(&u)).collect())
}
