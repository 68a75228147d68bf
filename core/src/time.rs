//! Time as a value. Core never reads a clock; callers pass `now` in.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Milliseconds since the Unix epoch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is in the future
    /// (clock skew between hosts must not make a fresh heartbeat look stale).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.as_millis() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_saturates_on_skew() {
        assert_eq!(Timestamp(1_000).since(Timestamp(5_000)), Duration::ZERO);
        assert_eq!(Timestamp(5_000).since(Timestamp(1_000)), Duration::from_secs(4));
        assert_eq!(Timestamp(1).plus(Duration::from_secs(1)), Timestamp(1_001));
    }
}
