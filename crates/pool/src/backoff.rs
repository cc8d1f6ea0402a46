//! Redial backoff after a lost connection: capped exponential with "equal jitter"
//! (half the delay fixed, half random), so that many clients that lost the same server do
//! not redial in lockstep. The randomness is passed in, keeping this deterministic in tests.

use std::time::Duration;

/// Backoff state of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays start at `base` and double up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// The delay before the next attempt; `jitter` is a uniformly random u32.
    pub fn next_delay(&mut self, jitter: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = exp / 2;
        half + half.mul_f64(f64::from(jitter) / f64::from(u32::MAX))
    }

    /// A connection succeeded: start again from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let max: Vec<u128> = (0..7).map(|_| b.next_delay(u32::MAX).as_millis()).collect();
        assert_eq!(max, [100, 200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.next_delay(0), Duration::from_millis(50));
        assert_eq!(b.attempts(), 1);
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..1000 {
            assert!(b.next_delay(12345) <= Duration::from_secs(30));
        }
    }
}
