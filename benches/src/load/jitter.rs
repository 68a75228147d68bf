//! Seeded jitter for the emulated fleet: timers spread over their period and
//! random picks, the same on every run (core's seeded splitmix64; not for secrets).

pub struct Seq(novacula_core::entropy::Seeded);

impl Seq {
    pub fn new(seed: u64) -> Seq {
        Seq(novacula_core::entropy::Seeded::new(seed))
    }

    fn next(&mut self) -> u64 {
        let mut b = [0u8; 8];
        novacula_core::entropy::Entropy::fill(&self.0, &mut b);
        u64::from_le_bytes(b)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::Seq;

    #[test]
    fn spreads_over_the_range_and_repeats_per_seed() {
        let mut a = Seq::new(7);
        let picks: Vec<usize> = (0..1000).map(|_| a.below(10)).collect();
        for v in 0..10 {
            let n = picks.iter().filter(|p| **p == v).count();
            assert!((50..150).contains(&n), "{v} drawn {n} times in 1000");
        }
        assert_eq!(Seq::new(7).below(1_000_000), Seq::new(7).below(1_000_000));
        assert_ne!(Seq::new(7).below(1_000_000), Seq::new(8).below(1_000_000));
        let u = Seq::new(1).unit();
        assert!((0.0..1.0).contains(&u));
        assert_eq!(Seq::new(3).below(0), 0);
    }
}
