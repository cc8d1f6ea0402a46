//! The dynamic capacity and creation-interval rule of the client pool.
//!
//! The pool manager works in rounds (one round = one creation interval). At the end of each
//! round it reports what happened and the rule moves two knobs, each within its bounds:
//!
//! * **capacity** (how many idle pre-opened streams to keep):
//!   - usage = streams taken by the application during the round ÷ capacity;
//!   - usage ≥ 80 %: grow by a quarter (at least 1), up to `max_capacity`;
//!   - usage ≤ 20 %: shrink by an eighth (at least 1), down to `min_capacity`;
//!   - otherwise unchanged. Growth is faster than shrinkage so bursts are absorbed quickly
//!     and a quiet minute does not throw the pool away.
//! * **interval** (time between creation rounds):
//!   - more creations failed than succeeded: double it (back off), up to `max_interval`;
//!   - else fill = the fewest idle streams during the round (its low-water mark) ÷
//!     capacity; fill < 20 % (running low): halve it, down to `min_interval`;
//!     fill ≥ 80 % (full): double it, up to `max_interval`;
//!   - otherwise unchanged.
//!
//! The pool starts at `min_capacity` and `min_interval`. There is no clock here: the caller
//! ends rounds, so tests drive the rule in virtual time.

use std::time::Duration;

/// Bounds of the two knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fewest idle streams kept (≥ 1).
    pub min_capacity: usize,
    /// Most idle streams kept.
    pub max_capacity: usize,
    /// Shortest time between creation rounds.
    pub min_interval: Duration,
    /// Longest time between creation rounds.
    pub max_interval: Duration,
}

impl Limits {
    /// Bounds sorted and sane: capacities ≥ 1 and min ≤ max, intervals ≥ 1 ms and min ≤ max.
    pub fn normalized(self) -> Limits {
        let min_capacity = self.min_capacity.max(1);
        let min_interval = self.min_interval.max(Duration::from_millis(1));
        Limits {
            min_capacity,
            max_capacity: self.max_capacity.max(min_capacity),
            min_interval,
            max_interval: self.max_interval.max(min_interval),
        }
    }
}

/// What happened during one round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Streams the application took from the pool.
    pub taken: usize,
    /// The fewest idle pre-opened streams during the round (a pool that refills as soon as
    /// it empties ran low even if it ends the round full).
    pub idle: usize,
    /// Stream creations that succeeded.
    pub created: usize,
    /// Stream creations that failed.
    pub failed: usize,
}

/// The two knobs and the rule that moves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjuster {
    limits: Limits,
    capacity: usize,
    interval: Duration,
}

impl Adjuster {
    /// Starts at the minimum capacity and the minimum interval.
    pub fn new(limits: Limits) -> Adjuster {
        let limits = limits.normalized();
        Adjuster {
            limits,
            capacity: limits.min_capacity,
            interval: limits.min_interval,
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// New bounds (normalized); the knobs keep their values, clamped into the new bounds.
    pub fn set_limits(&mut self, limits: Limits) {
        let l = limits.normalized();
        self.limits = l;
        self.capacity = self.capacity.clamp(l.min_capacity, l.max_capacity);
        self.interval = self.interval.clamp(l.min_interval, l.max_interval);
    }

    /// Idle streams to keep now.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Time until the next creation round.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Streams to create this round to get back to capacity.
    pub fn to_create(&self, idle: usize) -> usize {
        self.capacity.saturating_sub(idle)
    }

    /// Applies the rule (module docs) to what happened in the round that just ended.
    pub fn end_round(&mut self, r: Round) {
        let l = self.limits;
        let cap = self.capacity;
        if r.taken * 5 >= cap * 4 {
            self.capacity = (cap + (cap / 4).max(1)).min(l.max_capacity);
        } else if r.taken * 5 <= cap {
            self.capacity = cap.saturating_sub((cap / 8).max(1)).max(l.min_capacity);
        }
        self.interval = if r.failed > r.created {
            (self.interval * 2).min(l.max_interval)
        } else if r.idle * 5 < cap {
            (self.interval / 2).max(l.min_interval)
        } else if r.idle * 5 >= cap * 4 {
            (self.interval * 2).min(l.max_interval)
        } else {
            self.interval
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            min_capacity: 5,
            max_capacity: 20,
            min_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(5),
        }
    }

    /// Rounds in which the application takes every stream and creation refills.
    fn busy_rounds(a: &mut Adjuster, n: usize) {
        for _ in 0..n {
            a.end_round(Round {
                taken: a.capacity(),
                idle: 0,
                created: a.capacity(),
                failed: 0,
            });
        }
    }

    #[test]
    fn heavy_use_grows_capacity_to_the_maximum_and_keeps_the_interval_short() {
        let mut a = Adjuster::new(limits());
        let mut caps = vec![a.capacity()];
        for _ in 0..10 {
            // The application takes every stream; creation refills, so the pool ends empty.
            a.end_round(Round {
                taken: a.capacity(),
                idle: 0,
                created: a.capacity(),
                failed: 0,
            });
            caps.push(a.capacity());
        }
        assert_eq!(caps[..7], [5, 6, 7, 8, 10, 12, 15]);
        assert_eq!(a.capacity(), 20);
        assert_eq!(a.interval(), Duration::from_millis(500));
    }

    #[test]
    fn idleness_shrinks_capacity_to_the_minimum_and_lengthens_the_interval() {
        let mut a = Adjuster::new(limits());
        busy_rounds(&mut a, 10);
        let mut intervals = Vec::new();
        for _ in 0..30 {
            a.end_round(Round {
                taken: 0,
                idle: a.capacity(),
                created: 0,
                failed: 0,
            });
            intervals.push(a.interval().as_millis());
        }
        assert_eq!(a.capacity(), 5);
        assert_eq!(intervals[..4], [1000, 2000, 4000, 5000]);
        assert_eq!(a.interval(), Duration::from_secs(5));
    }

    #[test]
    fn running_low_halves_the_interval() {
        let mut a = Adjuster::new(limits());
        for _ in 0..4 {
            a.end_round(Round {
                taken: 0,
                idle: a.capacity(),
                created: 0,
                failed: 0,
            });
        }
        assert_eq!(a.interval(), Duration::from_secs(5));
        a.end_round(Round {
            taken: 2,
            idle: 0,
            created: 2,
            failed: 0,
        });
        assert_eq!(a.interval(), Duration::from_millis(2500));
    }

    #[test]
    fn failures_back_off_without_touching_capacity_beyond_the_usage_rule() {
        let mut a = Adjuster::new(limits());
        a.end_round(Round {
            taken: 2,
            idle: 0,
            created: 1,
            failed: 4,
        });
        assert_eq!(a.interval(), Duration::from_secs(1));
        a.end_round(Round {
            taken: 2,
            idle: 0,
            created: 0,
            failed: 5,
        });
        assert_eq!(a.interval(), Duration::from_secs(2));
        assert_eq!(a.capacity(), 5);
    }

    #[test]
    fn knobs_stay_within_bounds_whatever_happens() {
        let mut a = Adjuster::new(limits());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = Round {
                taken: (x % 40) as usize,
                idle: ((x >> 8) % 40) as usize,
                created: ((x >> 16) % 10) as usize,
                failed: ((x >> 24) % 10) as usize,
            };
            a.end_round(r);
            assert!((5..=20).contains(&a.capacity()));
            assert!(
                a.interval() >= Duration::from_millis(500)
                    && a.interval() <= Duration::from_secs(5)
            );
        }
    }

    #[test]
    fn new_limits_clamp_the_knobs_and_keep_them_otherwise() {
        let mut a = Adjuster::new(limits());
        busy_rounds(&mut a, 10);
        assert_eq!(a.capacity(), 20);
        a.set_limits(Limits {
            max_capacity: 8,
            ..limits()
        });
        assert_eq!(a.capacity(), 8);
        a.set_limits(Limits {
            min_capacity: 30,
            max_capacity: 40,
            min_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(2),
        });
        assert_eq!(a.capacity(), 30);
        assert_eq!(a.interval(), Duration::from_secs(1));
        assert_eq!(a.limits().max_capacity, 40);
    }

    #[test]
    fn nonsense_limits_are_normalized() {
        let a = Adjuster::new(Limits {
            min_capacity: 0,
            max_capacity: 0,
            min_interval: Duration::ZERO,
            max_interval: Duration::ZERO,
        });
        assert_eq!(a.capacity(), 1);
        assert_eq!(a.interval(), Duration::from_millis(1));
        assert_eq!(a.to_create(0), 1);
    }
}
