//! Novacula control plane: organizations, users, API keys, executors, nodes,
//! events and alerts over HTTP (axum), stored in one redb file.
//!
//! A library: the `novacula` binary (the `cli` crate) serves it. It depends on
//! `novacula-core` and its own IO crates only, never on an executor.

pub mod api;
pub mod auth;
pub mod clock;
pub mod console;
pub mod error;
pub mod events;
pub mod executors;
pub mod keys;
pub mod nodes;
pub mod orgs;
pub mod protocol;
pub mod server;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod tls;
pub mod users;

pub use api::{router, serve};
pub use state::{AppState, Config};
pub use store::Store;
