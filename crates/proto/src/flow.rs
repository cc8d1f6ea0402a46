//! Flow-control windows (RFC 9113 §5.2, §6.9).
//!
//! [`RecvWindow`] credits the peer only when the application *consumes* data, and only in
//! batches: a WINDOW_UPDATE is due once the consumed-but-unannounced bytes reach a threshold
//! (by default half the window, at most [`MAX_UPDATE_THRESHOLD`]), never after the stream
//! ended.

use thiserror::Error;

/// Largest legal flow-control window, 2^31-1 (RFC 9113 §6.9.1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;

/// The most consumed bytes we hold back before crediting them (16 MiB). Half of a 2 MiB
/// window is 1 MiB; half of a 64 MiB window would be 32 MiB, and a long fat link loses a
/// quarter of its window on average to such coarse credit: large windows are credited in
/// steps of at most this many bytes instead (a 64 MiB window in quarters, one update per
/// 16 MiB).
pub const MAX_UPDATE_THRESHOLD: i64 = 16 << 20;

/// A flow-control rule the peer broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FlowError {
    /// RFC 9113 §6.9.1: the peer sent more than the window allowed (FLOW_CONTROL_ERROR).
    #[error("RFC 9113 §6.9.1: peer sent {len} bytes with only {available} bytes of window")]
    WindowExceeded {
        /// Bytes received.
        len: u32,
        /// Window that was available.
        available: i64,
    },
    /// RFC 9113 §6.9.1: a WINDOW_UPDATE pushed the window above 2^31-1 (FLOW_CONTROL_ERROR).
    #[error("RFC 9113 §6.9.1: window update overflows 2^31-1")]
    Overflow,
    /// RFC 9113 §6.9: WINDOW_UPDATE with an increment of 0 (PROTOCOL_ERROR).
    #[error("RFC 9113 §6.9: WINDOW_UPDATE increment of 0")]
    ZeroIncrement,
}

/// Our receive window for one stream or the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvWindow {
    /// Target window size (what we want the peer to be allowed in flight).
    target: u32,
    /// Window the peer currently believes it has.
    advertised: i64,
    /// Bytes received and not yet consumed by the application.
    buffered: u64,
    /// Threshold in 1/256 of `target`.
    threshold_256: u32,
    ended: bool,
}

impl RecvWindow {
    /// A window the peer initially believes to be `initial`, growing toward `target`.
    pub fn new(initial: u32, target: u32, threshold_256: u32) -> Self {
        RecvWindow {
            target,
            advertised: i64::from(initial),
            buffered: 0,
            threshold_256: threshold_256.clamp(1, 256),
            ended: false,
        }
    }

    /// Account for `len` received flow-controlled bytes (DATA payload incl. padding).
    pub fn on_data(&mut self, len: u32) -> Result<(), FlowError> {
        if i64::from(len) > self.advertised {
            return Err(FlowError::WindowExceeded {
                len,
                available: self.advertised,
            });
        }
        self.advertised -= i64::from(len);
        self.buffered += u64::from(len);
        Ok(())
    }

    /// The application consumed `n` bytes (capped at what is buffered); returns the bytes
    /// actually released.
    pub fn consume(&mut self, n: u64) -> u64 {
        let n = n.min(self.buffered);
        self.buffered -= n;
        n
    }

    /// Our SETTINGS_INITIAL_WINDOW_SIZE changed from `old` to `new` and the peer acknowledged
    /// it (RFC 9113 §6.9.2: the window moves by the difference, possibly below zero).
    pub fn on_initial_change(&mut self, old: u32, new: u32) {
        let delta = i64::from(new) - i64::from(old);
        self.advertised += delta;
        self.target = (i64::from(self.target) + delta).clamp(0, MAX_WINDOW) as u32;
    }

    /// Whether the stream ended (no more updates).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The stream received END_STREAM or was reset: no more updates for it.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Bytes received and not yet consumed.
    pub fn buffered(&self) -> u64 {
        self.buffered
    }

    /// Window the peer currently has.
    pub fn available(&self) -> i64 {
        self.advertised
    }

    /// Raise the target window (adaptive growth), capped at 2^31-1.
    pub fn set_target(&mut self, target: u32) {
        self.target = target.min(MAX_WINDOW as u32).max(self.target);
    }

    /// Current target window.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// The WINDOW_UPDATE increment due now, if any; marks it announced.
    ///
    /// Due when the gap between the target and what the peer may send (minus unread data)
    /// reaches the threshold. Never for an ended window.
    pub fn take_update(&mut self) -> Option<u32> {
        if self.ended {
            return None;
        }
        let in_use = self.advertised + self.buffered as i64;
        let gap = i64::from(self.target) - in_use;
        let threshold = (i64::from(self.target) * i64::from(self.threshold_256) / 256)
            .min(MAX_UPDATE_THRESHOLD);
        if gap <= 0 || gap < threshold.max(1) {
            return None;
        }
        let inc = gap.min(MAX_WINDOW - self.advertised) as u32;
        if inc == 0 {
            return None;
        }
        self.advertised += i64::from(inc);
        Some(inc)
    }
}

/// The peer's receive window as seen by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    window: i64,
}

impl SendWindow {
    /// A window of `initial` bytes.
    pub fn new(initial: u32) -> Self {
        SendWindow {
            window: i64::from(initial),
        }
    }

    /// Bytes we may send now (0 when the window is negative after a SETTINGS change).
    pub fn available(&self) -> u32 {
        self.window.clamp(0, MAX_WINDOW) as u32
    }

    /// Raw window, possibly negative (RFC 9113 §6.9.2).
    pub fn raw(&self) -> i64 {
        self.window
    }

    /// We sent `n` bytes; caller must not exceed [`Self::available`].
    pub fn consume(&mut self, n: u32) {
        debug_assert!(i64::from(n) <= self.window);
        self.window -= i64::from(n);
    }

    /// Apply a WINDOW_UPDATE increment.
    pub fn on_update(&mut self, inc: u32) -> Result<(), FlowError> {
        if inc == 0 {
            return Err(FlowError::ZeroIncrement);
        }
        let w = self.window + i64::from(inc);
        if w > MAX_WINDOW {
            return Err(FlowError::Overflow);
        }
        self.window = w;
        Ok(())
    }

    /// Apply a change of SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 §6.9.2): the window moves by
    /// the difference and may become negative.
    pub fn on_initial_change(&mut self, old: u32, new: u32) -> Result<(), FlowError> {
        let w = self.window + i64::from(new) - i64::from(old);
        if w > MAX_WINDOW {
            return Err(FlowError::Overflow);
        }
        self.window = w;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_come_in_batches_of_half_the_window() {
        let mut w = RecvWindow::new(1 << 20, 1 << 20, 128);
        let mut updates = 0;
        let mut total = 0u64;
        // 64 MiB in 16 KiB frames, consumed at once.
        for _ in 0..(64 * 64) {
            w.on_data(16 << 10).unwrap();
            w.consume(16 << 10);
            total += 16 << 10;
            if let Some(inc) = w.take_update() {
                assert!(inc >= 512 << 10, "batch too small: {inc}");
                updates += 1;
            }
        }
        assert_eq!(total, 64 << 20);
        // "WINDOW_UPDATE released in batches ... about half of the window": 2 per MiB window.
        assert!(updates <= 128, "{updates} updates for 64 MiB");
        assert!(updates >= 120, "{updates}: peer starved");
    }

    #[test]
    fn slow_reader_gets_no_credit() {
        let mut w = RecvWindow::new(65_535, 65_535, 128);
        w.on_data(65_535).unwrap();
        assert_eq!(w.take_update(), None);
        assert!(matches!(
            w.on_data(1),
            Err(FlowError::WindowExceeded {
                len: 1,
                available: 0
            })
        ));
        w.consume(40_000);
        assert_eq!(w.take_update(), Some(40_000));
    }

    #[test]
    fn no_update_after_end_stream() {
        let mut w = RecvWindow::new(1000, 1000, 128);
        w.on_data(1000).unwrap();
        w.end();
        w.consume(1000);
        assert_eq!(w.take_update(), None);
    }

    #[test]
    fn growing_target_announces_the_difference() {
        let mut w = RecvWindow::new(65_535, 65_535, 128);
        w.set_target(4 << 20);
        assert_eq!(w.take_update(), Some((4 << 20) - 65_535));
        assert_eq!(w.available(), 4 << 20);
    }

    #[test]
    fn send_window_rules() {
        let mut s = SendWindow::new(100);
        s.consume(100);
        assert_eq!(s.available(), 0);
        // RFC 9113 §6.9.2: "can become negative if a sender receives a SETTINGS frame that
        // reduces the initial flow-control window size"
        s.on_initial_change(100, 50).unwrap();
        assert_eq!(s.raw(), -50);
        assert_eq!(s.available(), 0);
        assert_eq!(s.on_update(0), Err(FlowError::ZeroIncrement));
        // §6.9.1: "A sender MUST NOT allow a flow-control window to exceed 2^31-1 octets."
        s.on_update(150).unwrap();
        assert_eq!(s.available(), 100);
        assert_eq!(s.on_update(u32::MAX >> 1), Err(FlowError::Overflow));
        assert_eq!(s.available(), 100);
    }
}
