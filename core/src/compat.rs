//! Compatibility window between control plane and executor majors.

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompatStatus {
    InWindow,
    /// One major behind: works, flagged for upgrade.
    Deprecated,
    /// Sync and upgrade specs still served; node queries answer 409.
    OutOfSupport,
}

impl CompatStatus {
    /// Whether the executor may read and report nodes.
    pub fn serves_nodes(self) -> bool {
        self != CompatStatus::OutOfSupport
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompatStatus::InWindow => "in-window",
            CompatStatus::Deprecated => "deprecated",
            CompatStatus::OutOfSupport => "out-of-support",
        }
    }
}

/// The compatibility of an executor reporting `executor_version` with a control
/// plane of major `cp_major`. A version that does not parse is out of support:
/// nothing is known of what it speaks.
pub fn compat_of_version(cp_major: u64, executor_version: &str) -> CompatStatus {
    match executor_version.parse::<crate::Version>() {
        Ok(v) => compat_window_status(cp_major, v.major),
        Err(_) => CompatStatus::OutOfSupport,
    }
}

/// Equal majors are in-window, one behind is deprecated, anything else is out of support.
/// An executor *ahead* of the control plane speaks a protocol this control plane does
/// not know, so it is out of support too until the control plane is upgraded.
pub fn compat_window_status(cp_major: u64, executor_major: u64) -> CompatStatus {
    if executor_major == cp_major {
        CompatStatus::InWindow
    } else if executor_major.checked_add(1) == Some(cp_major) {
        CompatStatus::Deprecated
    } else {
        CompatStatus::OutOfSupport
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unparseable_version_is_out_of_support_everywhere() {
        assert_eq!(compat_of_version(1, "garbage"), CompatStatus::OutOfSupport);
        assert_eq!(compat_of_version(1, "0.9.0"), CompatStatus::Deprecated);
        assert_eq!(compat_of_version(1, "v1.2.0"), CompatStatus::InWindow);
    }

    #[test]
    fn same_major_in_window() {
        assert_eq!(compat_window_status(3, 3), CompatStatus::InWindow);
    }

    #[test]
    fn major_minus_one_deprecated() {
        assert_eq!(compat_window_status(3, 2), CompatStatus::Deprecated);
        assert!(CompatStatus::Deprecated.serves_nodes());
    }

    #[test]
    fn major_minus_two_out_of_support() {
        assert_eq!(compat_window_status(3, 1), CompatStatus::OutOfSupport);
        assert_eq!(compat_window_status(3, 0), CompatStatus::OutOfSupport);
        assert!(!CompatStatus::OutOfSupport.serves_nodes());
    }

    #[test]
    fn newer_executor_out_of_support() {
        assert_eq!(compat_window_status(3, 4), CompatStatus::OutOfSupport);
    }

    #[test]
    fn zero_major_edges() {
        assert_eq!(compat_window_status(0, 0), CompatStatus::InWindow);
        assert_eq!(compat_window_status(1, 0), CompatStatus::Deprecated);
        assert_eq!(compat_window_status(u64::MAX, u64::MAX - 1), CompatStatus::Deprecated);
    }
}
