//! The control plane's services: one module per concept, each operation one
//! transaction over the [`crate::store`] that applies core's rules. They know
//! nothing of HTTP: the REST handlers in the `api` folder (and any later API)
//! parse, authorize, call a service and encode its answer.

pub mod alerts;
pub mod audit;
pub mod credentials;
pub mod events;
pub mod executors;
pub mod fleet;
pub mod history;
pub mod invitations;
pub mod keys;
pub mod nodes;
pub mod orgs;
pub mod platform;
pub mod protocol;
pub mod users;

use crate::store::StoreError;

/// Why a service refused or failed, in terms any API can render.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Malformed or out-of-range input.
    #[error("{0}")]
    BadInput(String),
    /// Not authenticated (a wrong password, an unknown or revoked key).
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Conflicts with the current state (exists already, deactivated, deleted).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but not valid here; `details` names each problem.
    #[error("{message}")]
    Invalid { message: String, details: Vec<String> },
    /// A spec the target executor cannot run: each problem with its code and field.
    #[error("spec is not valid for the target executor")]
    InvalidSpec(Vec<novacula_core::validate::ValidationError>),
    /// Too much at once (sign-ins in progress, too many failures): retry later.
    #[error("{0}")]
    Busy(String),
    /// Too many failed attempts: locked out for a while.
    #[error("{0}")]
    Throttled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<credentials::HashPoolBusy> for ServiceError {
    fn from(_: credentials::HashPoolBusy) -> Self {
        ServiceError::Busy("too many sign-ins in progress; retry in a second".into())
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
