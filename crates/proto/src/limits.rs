//! Bookkeeping that keeps peer-driven memory and work bounded: the stream map, the memory of
//! recently closed streams (RFC 9113 §5.1 "closed"), and rate windows for resets and empty
//! frames (RFC 9113 §10.5).

use h2mux_wire::StreamId;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

/// A cheap hasher for stream ids (multiplicative; ids are not attacker-chosen in a way that
/// matters: the map is bounded by SETTINGS_MAX_CONCURRENT_STREAMS). Public so that drivers
/// keeping their own per-stream maps need not pay for SipHash.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Streams by id. A stale id simply misses: lookups never panic.
#[derive(Debug)]
pub(crate) struct IdMap<T> {
    map: HashMap<u32, T, BuildHasherDefault<IdHasher>>,
}

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        IdMap {
            map: HashMap::default(),
        }
    }
}

impl<T> IdMap<T> {
    pub fn get(&self, id: StreamId) -> Option<&T> {
        self.map.get(&id.value())
    }
    pub fn get_mut(&mut self, id: StreamId) -> Option<&mut T> {
        self.map.get_mut(&id.value())
    }
    pub fn insert(&mut self, id: StreamId, v: T) {
        self.map.insert(id.value(), v);
    }
    pub fn remove(&mut self, id: StreamId) -> Option<T> {
        self.map.remove(&id.value())
    }
    pub fn keys(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.map.keys().map(|k| StreamId::new(*k))
    }
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.map.values_mut()
    }
    pub fn clear(&mut self) {
        self.map.clear();
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }
}

/// The last `cap` closed streams and whether we reset them.
#[derive(Debug)]
pub(crate) struct ClosedMemory {
    cap: usize,
    order: VecDeque<u32>,
    reset: HashMap<u32, bool, BuildHasherDefault<IdHasher>>,
}

impl ClosedMemory {
    pub fn new(cap: usize) -> Self {
        ClosedMemory {
            cap,
            order: VecDeque::new(),
            reset: HashMap::default(),
        }
    }

    pub fn remember(&mut self, id: StreamId, was_reset: bool) {
        if self.cap == 0 {
            return;
        }
        let v = id.value();
        if let Some(r) = self.reset.get_mut(&v) {
            *r |= was_reset;
            return;
        }
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.reset.remove(&old);
            }
        }
        self.order.push_back(v);
        self.reset.insert(v, was_reset);
    }

    pub fn was_reset(&self, id: StreamId) -> bool {
        self.reset.get(&id.value()).copied().unwrap_or(false)
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.reset.contains_key(&id.value())
    }
}

/// Counts events in fixed windows of time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RateWindow {
    start: Option<Instant>,
    count: u32,
}

impl RateWindow {
    /// Records one event at `now`; true if more than `max` happened in the current window.
    pub fn hit(&mut self, now: Instant, window: Duration, max: u32) -> bool {
        match self.start {
            Some(s) if now.saturating_duration_since(s) < window => {}
            _ => {
                self.start = Some(now);
                self.count = 0;
            }
        }
        self.count = self.count.saturating_add(1);
        self.count > max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_memory_is_bounded_and_remembers_resets() {
        let mut m = ClosedMemory::new(2);
        m.remember(StreamId::new(1), true);
        m.remember(StreamId::new(3), false);
        assert!(m.was_reset(StreamId::new(1)));
        assert!(!m.was_reset(StreamId::new(3)));
        m.remember(StreamId::new(5), false);
        assert!(!m.contains(StreamId::new(1)), "oldest forgotten");
        assert!(m.contains(StreamId::new(3)) && m.contains(StreamId::new(5)));
    }

    #[test]
    fn rate_window_counts_per_window() {
        let mut r = RateWindow::default();
        let t = Instant::now();
        let w = Duration::from_secs(1);
        assert!(!r.hit(t, w, 2));
        assert!(!r.hit(t, w, 2));
        assert!(r.hit(t, w, 2));
        assert!(!r.hit(t + w, w, 2), "new window");
    }

    #[test]
    fn id_map_misses_stale_ids() {
        let mut m = IdMap::default();
        m.insert(StreamId::new(7), 'a');
        assert_eq!(m.get(StreamId::new(7)), Some(&'a'));
        assert_eq!(m.remove(StreamId::new(7)), Some('a'));
        assert_eq!(m.get(StreamId::new(7)), None);
        assert_eq!(m.get_mut(StreamId::new(9)), None);
    }
}
