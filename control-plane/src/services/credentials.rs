//! Secrets: API keys, session tokens and password hashes.
//!
//! API keys look like `nvk_<id>_<secret>`: the id finds the record, the secret
//! is checked against its SHA-256 (secrets are 256 random bits, so a fast hash
//! is enough). Passwords, which are low-entropy, use argon2, on a bounded pool
//! of blocking threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use novacula_core::entropy::{random_hex, Entropy};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub const API_KEY_PREFIX: &str = "nvk";

pub const SESSION_PREFIX: &str = "nvs";

pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub fn sha256_hex(s: &str) -> String {
    // By hand: `hex::encode` goes a char at a time, and every API call hashes its key.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(s.as_bytes()) {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Constant-time comparison, so key checks leak no timing.
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
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

#[cfg(test)]
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
