//! Redial delays (the gRPC connection-backoff rule): the first retry after `initial`, each
//! next one `multiplier` times longer up to `max`, every delay spread by ±`jitter` so that
//! many clients of one restarted server do not redial in lockstep.
//!
//! Pure arithmetic: the caller passes the random number, so the rule is tested exactly.

use std::time::Duration;

/// How redial delays grow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Growth per failure (gRPC: 1.6).
    pub multiplier: f64,
    /// Spread of each delay, as a fraction of it (gRPC: 0.2).
    pub jitter: f64,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 200 ms, ×1.6, ±20 %, at most 10 s (gRPC's rule with a shorter start and cap, because
    /// the channel redials in the background while calls fail fast).
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(200),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay after `failures` failed dials in a row (`failures ≥ 1`); `unit` is a
    /// uniform random number in [0, 1) choosing where in the jitter band it falls.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let steps = failures.saturating_sub(1).min(64) as i32;
        let base = (self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(steps))
            .min(self.max.as_secs_f64());
        let spread = self.jitter.clamp(0.0, 1.0) * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((base * (1.0 + spread)).max(0.0)).min(self.max)
    }
}

/// A small xorshift generator for the jitter (statistical quality is irrelevant here; no
/// dependency needed).
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn seeded(seed: u64) -> Jitter {
        Jitter(seed | 1)
    }

    /// A number in [0, 1).
    pub(crate) fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> Backoff {
        Backoff {
            jitter: 0.0,
            ..Backoff::default()
        }
    }

    #[test]
    fn delays_grow_by_the_multiplier_up_to_the_cap() {
        let b = no_jitter();
        let ms: Vec<u128> = (1..=12).map(|n| b.delay(n, 0.5).as_millis()).collect();
        assert_eq!(&ms[..4], &[200, 320, 512, 819]);
        assert!(ms.windows(2).all(|w| w[0] <= w[1]), "{ms:?}");
        assert_eq!(*ms.last().unwrap(), 10_000);
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_its_band_and_under_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(160));
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(200));
        assert!(b.delay(1, 0.999_999) <= Duration::from_millis(240));
        assert!(b.delay(40, 0.999_999) <= b.max);
        let mut j = Jitter::seeded(7);
        for _ in 0..1000 {
            let u = j.next_unit();
            assert!((0.0..1.0).contains(&u));
            let d = b.delay(3, u);
            assert!(
                d >= Duration::from_millis(409) && d <= Duration::from_millis(615),
                "{d:?}"
            );
        }
    }
}
