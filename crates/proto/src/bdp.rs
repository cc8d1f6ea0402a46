//! Bandwidth-delay-product estimator for adaptive receive windows (RFC 9113 §6.9, §6.9.1:
//! the receiver decides how much to credit; §6.7 PING for the RTT).
//!
//! A PING is timed (RTT); the DATA bytes the **application consumed** (released) while it is
//! in flight give the rate at which the reader drains the window over one RTT, i.e. the BDP
//! of the whole path including the reader. When the bytes consumed in one RTT reach half of
//! the current window, the window may be the bottleneck (credit goes back in batches of half
//! a window, so a sender held back by the window delivers between half and all of it per
//! RTT): double it (or grow it to twice the sample if that is more), like TCP slow start —
//! 2 → 64 MiB in five RTT samples — capped at the configured maximum, but only if the
//! measured rate (bytes / RTT) beat the best rate seen so far by 5 %. On a link that is the
//! bottleneck, a larger window only fills queues and inflates the RTT while the rate stays
//! flat; without that check a queueing link would push the window to the maximum for
//! nothing (the same guard as hyper's h2 BDP estimator).
//!
//! Counting consumed rather than received bytes is what keeps a large maximum safe: a reader
//! that stops reading (or reads slowly) never grows the window, so what a peer can make us
//! buffer stays at the window that the reader has proven it drains in one RTT. The worst case
//! per connection is therefore `Config::max_connection_window` of received-but-unread DATA
//! (reached only by a reader that consumed at that rate and then stopped), see
//! `crate::config`.
//!
//! Time is passed in (`Instant`s from the caller): the core has no clock.

use std::time::{Duration, Instant};

/// Estimator state.
#[derive(Debug, Clone)]
pub struct Bdp {
    window: u32,
    max: u32,
    ping_sent_at: Option<Instant>,
    bytes_since_ping: u64,
    rtt: Option<Duration>,
    /// Best rate seen, bytes per second.
    max_rate: f64,
}

impl PartialEq for Bdp {
    fn eq(&self, o: &Self) -> bool {
        self.window == o.window
            && self.max == o.max
            && self.ping_sent_at == o.ping_sent_at
            && self.bytes_since_ping == o.bytes_since_ping
            && self.rtt == o.rtt
    }
}
impl Eq for Bdp {}

impl Bdp {
    /// Start with `window`, never growing above `max`.
    pub fn new(window: u32, max: u32) -> Self {
        Bdp {
            window,
            max: max.max(window),
            ping_sent_at: None,
            bytes_since_ping: 0,
            rtt: None,
            max_rate: 0.0,
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

    /// The application consumed (released) `n` DATA bytes.
    pub fn on_consumed(&mut self, n: u64) {
        self.bytes_since_ping += n;
    }

    /// The BDP ping was acknowledged at `now`. Returns the new window if it grew.
    pub fn on_ping_ack(&mut self, now: Instant) -> Option<u32> {
        let sent = self.ping_sent_at.take()?;
        let rtt = now.saturating_duration_since(sent);
        self.rtt = Some(rtt);
        let sample = self.bytes_since_ping;
        let rate = sample as f64 / rtt.as_secs_f64().max(1e-6);
        let faster = rate > self.max_rate * 1.05;
        self.max_rate = self.max_rate.max(rate);
        if !faster {
            return None;
        }
        // Window-limited: with credit returned every half window (or every
        // `MAX_UPDATE_THRESHOLD`), a sender held back by our window still delivers at least
        // half of it per RTT. Then double, like slow start (or twice the sample when the
        // connection's streams together moved more than the window).
        if sample * 2 >= u64::from(self.window) && self.window < self.max {
            let new = (u64::from(self.window) * 2)
                .max(sample * 2)
                .min(u64::from(self.max)) as u32;
            self.window = new;
            return Some(new);
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
            bdp.on_consumed(delivered);
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

    /// A 10 MB/s link with 10 ms RTT whose queue holds the whole window: the RTT grows
    /// with the window, the rate does not, so the window stays.
    #[test]
    fn queueing_link_does_not_grow() {
        let rate = 10_000_000.0;
        let mut bdp = Bdp::new(2 << 20, 16 << 20);
        let mut now = Instant::now();
        let mut growths = 0;
        for _ in 0..20 {
            bdp.on_ping_sent(now);
            let w = f64::from(bdp.window());
            // The window sits in the link queue: one window per (w / rate + 10 ms).
            let rtt = Duration::from_secs_f64(w / rate + 0.010);
            bdp.on_consumed(u64::from(bdp.window()));
            now += rtt;
            growths += usize::from(bdp.on_ping_ack(now).is_some());
        }
        assert!(growths <= 1, "{growths} growths");
        assert!(bdp.window() <= 4 << 20, "{}", bdp.window());
    }

    #[test]
    fn idle_link_does_not_grow() {
        let mut bdp = Bdp::new(2 << 20, 16 << 20);
        let t0 = Instant::now();
        bdp.on_ping_sent(t0);
        bdp.on_consumed(1000);
        assert_eq!(bdp.on_ping_ack(t0 + Duration::from_millis(10)), None);
        assert_eq!(bdp.window(), 2 << 20);
    }
}
