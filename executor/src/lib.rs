//! The executor runtime: what the agent and the operator share.
//!
//! - [`loops`]: heartbeat (`syncExecutor`), spec long-poll, reconcile and
//!   report, generic over a [`backend::Backend`] and the HTTP connector.
//! - [`backend`]: how an executor materializes nodes (systemd units or
//!   processes on an agent host, custom resources on Kubernetes).
//! - [`adapter`]: chain adapters, which render each process of a node and
//!   say how to probe it, and the capabilities they add up to.
//!
//! Nothing here knows systemd, Kubernetes or the host's files beyond a node's
//! paths: those live in the `agent` and `operator` crates.

pub mod adapter;
pub mod backend;
pub mod loops;

/// A random hex string of `bytes` random bytes: the secrets a backend generates
/// for a rendered `FileContents::Secret` (the engine JWT).
#[allow(clippy::expect_used, reason = "without the operating system's RNG no secret can be made; nothing can go on")]
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("operating system RNG unavailable");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
