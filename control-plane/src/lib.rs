//! Novacula control plane: organizations, users, API keys, executors, nodes,
//! events and alerts over HTTP (axum), stored in one redb file.
//!
//! A library: the `novacula` binary (the `cli` crate) serves it. It depends on
//! `novacula-core` and its own IO crates only, never on an executor.
//!
//! Three layers, each using only the ones below it:
//! - [`api`]: REST handlers (parse, authorize, call a service, encode), the
//!   router with its OpenAPI document, the GraphQL API over the same
//!   services, the web console's files;
//! - [`services`]: one module per concept, each operation a transaction over
//!   the store that applies core's rules;
//! - [`store`]: the records, behind an engine trait (redb).
//!
//! Beside them: the server loop ([`server`], [`tls`]), the shared state
//! ([`state`], [`clock`]), outgoing [`mail`], [`metrics`] and the background
//! [`sweeper`].

pub mod api;
pub mod clock;
pub mod known;
pub mod liveness;
pub mod logs;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod polls;
pub mod server;
pub mod services;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod tls;
pub mod watch;

pub use api::{router, serve};
pub use state::{AppState, Config};
pub use store::Store;
