//! Bandwidth-delay-product estimator for adaptive receive windows.
//!
//! A PING is timed (RTT); bytes received while it is in flight give the receive rate over one
//! RTT, i.e. the BDP. When the bytes received in one RTT reach 2/3 of the current window, the
//! window is the bottleneck: grow it to twice the sample, capped at the configured maximum.
//! Time is passed in (`Instant`s from the caller): the core has no clock.

use std::time::{Duration, Instant};

/// Estimator state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bdp {
    window: u32,
    max: u32,
    ping_sent_at: Option<Instant>,
    bytes_since_ping: u64,
    rtt: Option<Duration>,
}

impl Bdp {
    /// Start with `window`, never growing above `max`.
    pub fn new(window: u32, max: u32) -> Self {
        Bdp {
            window,
            max: max.max(window),
            ping_sent_at: None,
            bytes_since_ping: 0,
            rtt: None,
        }
    }

    /// Whether a BDP ping should be sent now (none in flight, room to grow).
    pub fn wants_ping(&self) -> bool {
        self.ping_sent_at.is_none() && self.window < self.max
    }

    /// Whether a BDP ping is in flight.
    pub fn ping_in_flight(&self) -> bool {
        self.ping_sent_at.is_some()
    }

    /// A BDP ping was written at `now`.
    pub fn on_ping_sent(&mut self, now: Instant) {
        self.ping_sent_at = Some(now);
        self.bytes_since_ping = 0;
    }

    /// `n` DATA bytes arrived.
    pub fn on_data(&mut self, n: u32) {
        self.bytes_since_ping += u64::from(n);
    }

    /// The BDP ping was acknowledged at `now`. Returns the new window if it grew.
    pub fn on_ping_ack(&mut self, now: Instant) -> Option<u32> {
        let sent = self.ping_sent_at.take()?;
        self.rtt = Some(now.saturating_duration_since(sent));
        let sample = self.bytes_since_ping;
        if sample * 3 >= u64::from(self.window) * 2 && self.window < self.max {
            let new = (sample * 2).min(u64::from(self.max)) as u32;
            if new > self.window {
                self.window = new;
                return Some(new);
            }
        }
        None
    }

    /// Latest RTT sample.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Current window.
    pub fn window(&self) -> u32 {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long-fat link in virtual time: 100 ms RTT, 1 Gbit/s = 12.5 MB per RTT -> BDP ~ 12 MiB.
    /// The sender is window-limited, so each RTT delivers one window.
    #[test]
    fn window_grows_to_bdp_on_long_fat_link() {
        let rtt = Duration::from_millis(100);
        let link_bytes_per_rtt: u64 = 12_500_000;
        let mut bdp = Bdp::new(2 << 20, 16 << 20);
        let mut now = Instant::now();
        for _ in 0..20 {
            if bdp.wants_ping() {
                bdp.on_ping_sent(now);
            }
            let delivered = link_bytes_per_rtt.min(u64::from(bdp.window()));
            bdp.on_data(delivered as u32);
            now += rtt;
            bdp.on_ping_ack(now);
        }
        assert!(
            u64::from(bdp.window()) >= link_bytes_per_rtt,
            "{}",
            bdp.window()
        );
        assert!(bdp.window() <= 16 << 20);
        assert_eq!(bdp.rtt(), Some(rtt));
    }

    #[test]
    fn idle_link_does_not_grow() {
        let mut bdp = Bdp::new(2 << 20, 16 << 20);
        let t0 = Instant::now();
        bdp.on_ping_sent(t0);
        bdp.on_data(1000);
        assert_eq!(bdp.on_ping_ack(t0 + Duration::from_millis(10)), None);
        assert_eq!(bdp.window(), 2 << 20);
    }
}
