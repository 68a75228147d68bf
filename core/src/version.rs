//! Semantic versions for executor binaries and client releases.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `MAJOR.MINOR.PATCH` with an optional `-pre` suffix; a leading `v` is accepted
/// because client projects (lighthouse, reth) tag releases that way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {input:?}: expected MAJOR.MINOR.PATCH (e.g. 1.14.11 or v5.3.0)")]
pub struct VersionError {
    pub input: String,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version { major, minor, patch, pre: None }
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionError { input: s.to_string() };
        let body = s.strip_prefix('v').unwrap_or(s);
        let (core, pre) = match body.split_once('-') {
            Some((c, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') => (c, Some(p.to_string())),
            Some(_) => return Err(err()),
            None => (body, None),
        };
        let mut parts = core.split('.');
        let mut next = || -> Result<u64, VersionError> {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.len() > 18 {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        let v = Version { major: next()?, minor: next()?, patch: next()?, pre };
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(p) = &self.pre {
            write!(f, "-{p}")?;
        }
        Ok(())
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
        assert_eq!(pre.pre.as_deref(), Some("rc.1"));
        assert_eq!(pre.to_string(), "2.0.0-rc.1");
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "1", "1.2", "1.2.3.4", "a.b.c", "1..3", "1.2.3-", "1.2.3-!x", " 1.2.3", "v", "-1.2.3"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn orders_numerically() {
        let a: Version = "1.9.0".parse().unwrap();
        let b: Version = "1.10.0".parse().unwrap();
        assert!(a < b);
    }
}
