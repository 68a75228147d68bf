//! Seeded jitter for the emulated fleet: timers spread over their period and
//! random picks, the same on every run (splitmix64; not for secrets).

pub struct Seq(u64);

impl Seq {
    pub fn new(seed: u64) -> Seq {
        Seq(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
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
