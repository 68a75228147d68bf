//! Secrets and who is calling: user sessions and executor API keys.
//!
//! API keys look like `nvk_<id>_<secret>`: the id finds the record, the secret
//! is checked against its SHA-256 (secrets are 256 random bits, so a fast hash
//! is enough). Passwords, which are low-entropy, use argon2.

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::model::{ApiKey, Session, User};
use crate::store::{API_KEYS, SESSIONS, USERS};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use novacula_core::authz::Permission;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

pub const API_KEY_PREFIX: &str = "nvk";
pub const SESSION_PREFIX: &str = "nvs";
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

use novacula_core::entropy::random_hex;
use novacula_core::entropy::Entropy;

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Constant-time comparison, so key checks leak no timing.
fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A fresh key: `(id, full secret shown once, hash to store)`.
pub fn new_api_key(e: &dyn Entropy) -> (String, String, String) {
    let id = random_hex(e, 6);
    let secret = random_hex(e, 32);
    let full = format!("{API_KEY_PREFIX}_{id}_{secret}");
    (id, full, sha256_hex(&secret))
}

/// A fresh salt for [`hash_password`].
pub fn new_salt(e: &dyn Entropy) -> [u8; 16] {
    let mut raw = [0u8; 16];
    e.fill(&mut raw);
    raw
}

#[allow(clippy::expect_used, reason = "the salt length and argon2's default parameters are valid")]
pub fn hash_password(password: &str, raw: [u8; 16]) -> String {
    let salt = SaltString::encode_b64(&raw).expect("16-byte salt");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 with default params").to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Where password hashing runs: blocking threads, at most `workers` at once,
/// with a bounded queue. Argon2 is deliberately expensive; on the async
/// workers (or unbounded) a flood of sign-ins would starve every heartbeat.
pub struct HashPool {
    running: tokio::sync::Semaphore,
    queued: std::sync::atomic::AtomicUsize,
    queued_max: usize,
}

/// The pool is full: the caller answers 503 and the client retries.
#[derive(Debug)]
pub struct HashPoolBusy;

impl HashPool {
    pub fn new(workers: usize, queued_max: usize) -> HashPool {
        HashPool { running: tokio::sync::Semaphore::new(workers.max(1)), queued: Default::default(), queued_max }
    }

    /// Half the machine's cores (at least one), so hashing never takes them all.
    pub fn for_this_machine() -> HashPool {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        HashPool::new(cores / 2, 32)
    }

    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashPoolBusy> {
        use std::sync::atomic::Ordering;
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.queued_max {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(HashPoolBusy);
        }
        let permit = self.running.acquire().await;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|_| HashPoolBusy)?;
        tokio::task::spawn_blocking(work).await.map_err(|_| HashPoolBusy)
    }
}

impl From<HashPoolBusy> for ApiError {
    fn from(_: HashPoolBusy) -> Self {
        ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "too many sign-ins in progress; retry in a second")
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let h = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization header (expected 'Bearer <token>')"))?;
    h.to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header (expected 'Bearer <token>')"))
}

/// A logged-in user (session token).
pub struct UserCtx {
    pub user: User,
}

impl UserCtx {
    pub fn org(&self) -> &str {
        &self.user.org_id
    }
    pub fn actor(&self) -> String {
        format!("user:{}", self.user.username)
    }
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.user.role.can(p) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("role {} may not do this", self.user.role.as_str())))
        }
    }
}

impl FromRequestParts<Arc<AppState>> for UserCtx {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if token.starts_with(API_KEY_PREFIX) {
            return Err(ApiError::forbidden("API keys authenticate executors; log in as a user for this endpoint"));
        }
        let now = state.now();
        let user = state.store.read(|r| {
            let Some(s) = r.get::<Session>(SESSIONS, &sha256_hex(token))? else { return Ok(None) };
            if s.expires_at <= now {
                return Ok(None);
            }
            r.get::<User>(USERS, &s.username)
        })?;
        user.map(|user| UserCtx { user }).ok_or_else(|| ApiError::unauthorized("invalid or expired session token"))
    }
}

/// An executor authenticated by an active API key.
pub struct ExecutorKey {
    pub key: ApiKey,
}

impl FromRequestParts<Arc<AppState>> for ExecutorKey {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let invalid = || ApiError::unauthorized("invalid API key");
        let rest = token.strip_prefix(API_KEY_PREFIX).and_then(|r| r.strip_prefix('_')).ok_or_else(invalid)?;
        let (id, secret) = rest.split_once('_').ok_or_else(invalid)?;
        let key = state.store.read(|r| r.get::<ApiKey>(API_KEYS, id))?.ok_or_else(invalid)?;
        if !ct_eq(&key.secret_hash, &sha256_hex(secret)) {
            return Err(invalid());
        }
        if key.revoked_at.is_some() {
            return Err(ApiError::unauthorized("API key has been revoked"));
        }
        Ok(ExecutorKey { key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use novacula_core::entropy::OsEntropy;

    #[test]
    fn api_keys_are_unique_and_hash_only_the_secret() {
        let (id, full, hash) = new_api_key(&OsEntropy);
        let (_, other, _) = new_api_key(&OsEntropy);
        assert_ne!(full, other);
        assert!(full.starts_with(&format!("nvk_{id}_")));
        let secret = full.rsplit('_').next().unwrap();
        assert_eq!(sha256_hex(secret), hash);
        assert!(!hash.contains(secret));
    }

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse", new_salt(&OsEntropy));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "ab"));
    }
}
