//! Randomness, injected like the clock: every secret and id is drawn from an
//! [`Entropy`] the shell passes in. Production shells use [`OsEntropy`] (the
//! `os-entropy` feature, the one place the operating system's generator is
//! read); the simulator a [`Seeded`] source, so a seed fixes every id.

use crate::sync::LockExt;
use std::sync::Mutex;

pub trait Entropy: Send + Sync + 'static {
    /// Fill `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// `bytes` random bytes as lowercase hex: secrets, key ids, executor ids.
pub fn random_hex(e: &dyn Entropy, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    e.fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// splitmix64 from a seed: deterministic, for the simulator and tests only
/// (predictable, so never for a real secret).
#[derive(Debug)]
pub struct Seeded(Mutex<u64>);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded(Mutex::new(seed))
    }
}

impl Entropy for Seeded {
    fn fill(&self, buf: &mut [u8]) {
        let mut state = self.0.locked();
        for chunk in buf.chunks_mut(8) {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// The operating system's generator.
#[cfg(feature = "os-entropy")]
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

#[cfg(feature = "os-entropy")]
impl Entropy for OsEntropy {
    #[allow(clippy::expect_used, reason = "without the operating system's RNG no secret can be made; nothing can go on")]
    fn fill(&self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("operating system RNG unavailable");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sources_repeat_and_differ_by_seed() {
        let (a, b, c) = (Seeded::new(7), Seeded::new(7), Seeded::new(8));
        let x = random_hex(&a, 13);
        assert_eq!(x.len(), 26);
        assert_eq!(x, random_hex(&b, 13));
        assert_ne!(x, random_hex(&c, 13));
        assert_ne!(x, random_hex(&a, 13), "a source moves on");
    }
}
