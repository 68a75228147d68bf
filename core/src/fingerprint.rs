//! Stable fingerprints of what a process was configured from.
//!
//! Postcard gives canonical bytes (field order, `BTreeMap` order), and FNV-1a
//! is fixed across platforms and releases, unlike `std`'s hasher.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Fingerprint)
    }
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Fingerprint of any serializable value.
#[allow(clippy::expect_used, reason = "spec inputs are plain data; encoding into a Vec cannot fail")]
pub fn fingerprint<T: Serialize>(value: &T) -> Fingerprint {
    // Serializing plain data types to a Vec cannot fail.
    let bytes = postcard::to_allocvec(value).expect("postcard serialization of plain data");
    Fingerprint(fnv1a(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn fingerprint_distinguishes_and_round_trips_text() {
        let a = fingerprint(&("geth", "1.14.11"));
        let b = fingerprint(&("geth", "1.14.12"));
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<Fingerprint>().unwrap(), a);
    }
}
