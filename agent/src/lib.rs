//! Novacula agent: the bare-metal executor.

pub mod client;
