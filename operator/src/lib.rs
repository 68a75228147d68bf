//! Novacula operator: the Kubernetes executor. The executor side turns the
//! control plane's specs into `BlockchainNode` custom resources (same loops as
//! the agent, another `Backend`); the controller side turns each CR into a
//! ConfigMap, Secret, StatefulSet and Service.

pub mod controller;
pub mod crd;
pub mod health;
pub mod nodes;
pub mod rbac;
pub mod render;
pub mod status;
pub mod upgrade;
