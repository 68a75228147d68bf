//! Drift: the distance between what the control plane wants and what it knows.

use crate::heartbeat::is_online;
use crate::spec::Revision;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// How many revisions the executor has yet to materialize (0 = none).
    pub revisions_behind: u64,
    /// The executor has not synced within the heartbeat timeout: the node is unreachable.
    pub liveness: bool,
}

impl Drift {
    pub fn revision(&self) -> bool {
        self.revisions_behind > 0
    }

    pub fn any(&self) -> bool {
        self.revision() || self.liveness
    }
}

/// `observed` is the revision the executor last reported for the node (`None`: never);
/// `last_sync` is the executor's last heartbeat (`None`: never synced).
pub fn detect_drift(desired: Revision, observed: Option<Revision>, now: Timestamp, last_sync: Option<Timestamp>, timeout: Duration) -> Drift {
    let observed = observed.unwrap_or_default();
    Drift { revisions_behind: desired.0.saturating_sub(observed.0), liveness: !last_sync.is_some_and(|t| is_online(now, t, timeout)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::HEARTBEAT_TIMEOUT;

    const NOW: Timestamp = Timestamp(100_000);

    #[test]
    fn revision_drift_counts_gap() {
        let d = detect_drift(Revision(5), Some(Revision(3)), NOW, Some(NOW), HEARTBEAT_TIMEOUT);
        assert_eq!(d.revisions_behind, 2);
        assert!(d.revision() && !d.liveness && d.any());
        let none = detect_drift(Revision(2), None, NOW, Some(NOW), HEARTBEAT_TIMEOUT);
        assert_eq!(none.revisions_behind, 2);
    }

    #[test]
    fn caught_up_and_online_is_no_drift() {
        let d = detect_drift(Revision(5), Some(Revision(5)), NOW, Some(Timestamp(75_000)), HEARTBEAT_TIMEOUT);
        assert!(!d.any());
    }

    #[test]
    fn liveness_drift_at_exactly_timeout_and_when_never_synced() {
        let d = detect_drift(Revision(1), Some(Revision(1)), NOW, Some(Timestamp(70_000)), HEARTBEAT_TIMEOUT);
        assert!(d.liveness && !d.revision());
        assert!(detect_drift(Revision(1), None, NOW, None, HEARTBEAT_TIMEOUT).liveness);
    }
}
