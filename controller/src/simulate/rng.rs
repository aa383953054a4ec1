//! A small seeded pseudo-random generator for the simulator's realism knobs.
//!
//! SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, full period, good
//! enough statistics for arrival and service noise, and the same stream on
//! every platform, so a run is reproducible from its seed. Not for secrets.

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A stream for `seed`; `stream` separates independent uses of one seed
    /// (arrivals, service, boot) so that a policy's decisions cannot change
    /// the arrivals every policy sees.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Rng {
            state: seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F),
        };
        // Decorrelate nearby seeds.
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..=max`.
    pub fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(span) => self.next_u64() % span,
            None => self.next_u64(),
        }
    }

    /// A Poisson draw with mean `mean` (≥ 0). Knuth's product method on chunks
    /// of mean ≤ 30 (a sum of independent Poisson variables is Poisson), so
    /// `exp(-chunk)` never underflows and the draw is exact for any mean.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if !mean.is_finite() || mean <= 0.0 {
            return 0;
        }
        let mut left = mean;
        let mut total: u64 = 0;
        while left > 0.0 {
            let chunk = left.min(30.0);
            left -= chunk;
            let limit = (-chunk).exp();
            let mut product = self.unit();
            while product > limit {
                total = total.saturating_add(1);
                product *= self.unit();
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7, 1);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7, 1);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut other = Rng::new(7, 2);
        assert_ne!(a[0], other.next_u64());
    }

    #[test]
    fn poisson_mean_and_variance_are_close_to_the_mean() {
        let mut r = Rng::new(42, 0);
        for mean in [0.5, 5.0, 46.0] {
            let n = 20_000;
            let draws: Vec<f64> = (0..n).map(|_| r.poisson(mean) as f64).collect();
            let avg = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|d| (d - avg).powi(2)).sum::<f64>() / n as f64;
            assert!((avg - mean).abs() < 0.05 * mean + 0.02, "{mean}: {avg}");
            assert!((var - mean).abs() < 0.1 * mean + 0.05, "{mean}: {var}");
        }
        assert_eq!(r.poisson(0.0), 0);
        assert_eq!(r.poisson(f64::NAN), 0);
    }

    #[test]
    fn unit_and_up_to_stay_in_range() {
        let mut r = Rng::new(1, 0);
        for _ in 0..1000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(r.up_to(9) <= 9);
        }
        let _ = r.up_to(u64::MAX);
    }
}
