//! Novacula core: the deterministic, IO-free rules of the system.
//!
//! Every production shell (control plane, agent, operator) and the simulator
//! drive these functions. Nothing here reads a clock, touches the network or
//! the disk, or draws randomness: time comes in as a [`time::Timestamp`].

pub mod admission;
pub mod alerts;
pub mod audit;
pub mod authz;
pub mod compat;
pub mod deadline;
pub mod draft;
pub mod drift;
pub mod entropy;
pub mod error;
pub mod events;
pub mod executor;
pub mod exposition;
pub mod fingerprint;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod heartbeat;
pub mod lifecycle;
pub mod logo;
pub mod logs;
pub mod naming;
pub mod observed;
pub mod phase;
pub mod ports;
pub mod reconcile;
pub mod spec;
pub mod sync;
pub mod throttle;
pub mod time;
pub mod validate;
pub mod version;
pub mod wire;

pub use compat::{compat_window_status, CompatStatus};
pub use drift::{detect_drift, Drift};
pub use executor::{Channel, ExecutorCapabilities, ExecutorKind, ProgramAllowlist};
pub use heartbeat::{is_online, HEARTBEAT_TIMEOUT};
pub use observed::{DiskUsage, ObservedNodeState, ObservedNodeStatus, ObservedProcess, SyncMetrics};
pub use phase::{derived_node_phase, NodePhase, PhaseInput};
pub use reconcile::{diff, Action, LocalNode, LocalProcess};
pub use spec::{DesiredNode, DesiredState, NodeSpec, Revision};
pub use time::Timestamp;
pub use version::Version;
