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
pub mod metrics;
