//! Executor liveness from heartbeats.

use crate::time::Timestamp;
use std::time::Duration;

/// An executor that has not synced for this long is offline.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often executors call `syncExecutor`.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// Online iff `now - updated_at < timeout` (strict: exactly `timeout` old is offline).
pub fn is_online(now: Timestamp, updated_at: Timestamp, timeout: Duration) -> bool {
    now.since(updated_at) < timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    #[test]
    fn online_just_before_timeout() {
        assert!(is_online(T0.plus(Duration::from_millis(29_999)), T0, HEARTBEAT_TIMEOUT));
    }

    #[test]
    fn offline_at_exactly_timeout() {
        assert!(!is_online(T0.plus(Duration::from_secs(30)), T0, HEARTBEAT_TIMEOUT));
        assert!(!is_online(T0.plus(Duration::from_secs(31)), T0, HEARTBEAT_TIMEOUT));
    }

    #[test]
    fn future_heartbeat_counts_as_online() {
        assert!(is_online(T0, T0.plus(Duration::from_secs(5)), HEARTBEAT_TIMEOUT));
    }

    #[test]
    fn timeout_is_configurable() {
        let t = Duration::from_secs(10);
        assert!(is_online(T0.plus(Duration::from_secs(9)), T0, t));
        assert!(!is_online(T0.plus(Duration::from_secs(10)), T0, t));
    }
}
