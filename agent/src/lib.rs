//! Novacula agent: the bare-metal executor. It runs the shared executor
//! runtime (`novacula-executor`) over its own backend:
//!
//! - [`backend`]: `Processes`, nodes as processes, driven by core's reconcile diff;
//! - [`driver`]: the `ProcessDriver` contract and the local-process driver;
//! - [`systemd`]: the systemd driver over D-Bus (zbus);
//! - [`files`]: link-safe, atomic file writes and the hand-over of directories to `run_as`;
//! - [`artifacts`]: client binaries downloaded and pinned by SHA-256;
//! - [`probe`]: health and sync probes of running clients;
//! - [`upgrade`]: self-upgrade (release_dir, hash, rollback);
//! - [`service`]: the agent installed as a systemd service (`install`, `status`, ...);
//! - [`config`]: the agent's configuration file, `agent.toml`.

pub mod artifacts;
pub mod backend;
pub mod config;
pub mod disk;
pub mod driver;
pub mod files;
pub mod journal;
pub mod logfile;
pub mod probe;
pub mod service;
pub mod systemd;
pub mod upgrade;
