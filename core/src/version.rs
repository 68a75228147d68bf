//! Semantic versions for executor binaries and client releases: the `semver`
//! crate's rules (ordering of pre-releases included), with a leading `v`
//! accepted because client projects (lighthouse, reth) tag releases that way.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// A parsed version; `major`, `minor`, `patch` and `pre` read through to semver's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(semver::Version);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {input:?}: expected MAJOR.MINOR.PATCH (e.g. 1.14.11 or v5.3.0)")]
pub struct VersionError {
    pub input: String,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version(semver::Version::new(major, minor, patch))
    }
}

impl Deref for Version {
    type Target = semver::Version;
    fn deref(&self) -> &semver::Version {
        &self.0
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s.strip_prefix('v').unwrap_or(s);
        semver::Version::parse(body).map(Version).map_err(|_| VersionError { input: s.to_string() })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether two version strings name the same release (`v1.1.0` and `1.1.0` do);
/// unparseable ones only when equal as text.
pub fn same_release(a: &str, b: &str) -> bool {
    match (a.parse::<Version>(), b.parse::<Version>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_prefixed_and_pre() {
        assert_eq!("1.14.11".parse::<Version>().unwrap(), Version::new(1, 14, 11));
        assert_eq!("v5.3.0".parse::<Version>().unwrap(), Version::new(5, 3, 0));
        let pre: Version = "2.0.0-rc.1".parse().unwrap();
        assert_eq!(pre.pre.as_str(), "rc.1");
        assert_eq!(pre.to_string(), "2.0.0-rc.1");
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "1", "1.2", "1.2.3.4", "a.b.c", "1..3", "1.2.3-", "1.2.3-!x", " 1.2.3", "v", "-1.2.3", "01.2.3"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn orders_numerically_and_releases_after_their_pre_releases() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(v("1.9.0") < v("1.10.0"));
        // hand-written ordering got these wrong: a release sorted before its
        // own release candidates, and rc.10 before rc.9
        assert!(v("2.0.0-rc.1") < v("2.0.0"));
        assert!(v("2.0.0-rc.9") < v("2.0.0-rc.10"));
        assert!(same_release("v1.1.0", "1.1.0"));
        assert!(!same_release("1.1.0", "1.1.1"));
    }
}
