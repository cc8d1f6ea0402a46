//! An in-memory client ↔ server pair in virtual time, for deterministic tests and benchmarks.
//!
//! Two [`Connection`]s joined by two one-way links. Each link has an optional one-way
//! latency and bandwidth (a long-fat link), and may deliver bytes in small pieces (down to
//! byte-by-byte) to exercise partial-frame handling. Time is virtual: [`Pair::run`] jumps to
//! the next arrival or timer deadline, so a 100 ms RTT costs nothing.
//!
//! A frame-header tap on each link counts frames by type as they are sent and delivered, and
//! checks that no WINDOW_UPDATE is sent for a stream after its END_STREAM was delivered to
//! the sender of the update (issue 4: "never for a stream that has ended").

use crate::{Config, Connection, Event, Role, StreamId};
use bytes::{Bytes, BytesMut};
use h2mux_wire::frame::{flags, kind, CLIENT_PREFACE, FRAME_HEADER_LEN};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Counts the frames crossing one link, from their 9-byte headers only.
#[derive(Debug, Default, Clone)]
pub struct Tap {
    preface_left: usize,
    hdr: Vec<u8>,
    skip: usize,
    /// Frames by type (index = type code; unknown types in the last slot).
    pub frames: [u64; 11],
    /// WINDOW_UPDATE frames on stream 0.
    pub connection_window_updates: u64,
    /// WINDOW_UPDATE frames on streams.
    pub stream_window_updates: u64,
    /// Streams whose END_STREAM crossed this tap.
    pub end_streams: HashSet<u32>,
    /// WINDOW_UPDATE frames for streams listed in the `ended` set given to `feed`.
    pub window_updates_after_end: u64,
    /// Largest DATA frame payload seen.
    pub max_data_frame: u32,
}

impl Tap {
    fn new(preface: bool) -> Tap {
        Tap {
            preface_left: if preface { CLIENT_PREFACE.len() } else { 0 },
            ..Tap::default()
        }
    }

    fn feed(&mut self, mut data: &[u8], ended: Option<&HashSet<u32>>) {
        while !data.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(data.len());
                self.preface_left -= n;
                data = &data[n..];
                continue;
            }
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                // The 4-byte WINDOW_UPDATE payload is not needed: the header says it all.
                continue;
            }
            let need = FRAME_HEADER_LEN - self.hdr.len();
            let n = need.min(data.len());
            self.hdr.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.hdr.len() < FRAME_HEADER_LEN {
                break;
            }
            let h = &self.hdr;
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]);
            let ty = h[3];
            let fl = h[4];
            let sid = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            self.hdr.clear();
            self.skip = len as usize;
            self.frames[usize::from(ty.min(10))] += 1;
            match ty {
                kind::DATA | kind::HEADERS => {
                    if ty == kind::DATA {
                        self.max_data_frame = self.max_data_frame.max(len);
                    }
                    if fl & flags::END_STREAM != 0 {
                        self.end_streams.insert(sid);
                    }
                }
                kind::WINDOW_UPDATE => {
                    if sid == 0 {
                        self.connection_window_updates += 1;
                    } else {
                        self.stream_window_updates += 1;
                        if ended.is_some_and(|e| e.contains(&sid)) {
                            self.window_updates_after_end += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// One direction of the pair.
#[derive(Debug)]
pub struct Link {
    /// One-way delay.
    pub latency: Duration,
    /// Bytes per second (`None`: infinite).
    pub rate: Option<u64>,
    /// Deliver at most this many bytes per `recv` call (`Some(1)`: byte by byte).
    pub piece: Option<usize>,
    /// Run the frame taps (on by default; benchmarks turn them off: their per-stream sets
    /// grow without bound).
    pub tap: bool,
    in_flight: VecDeque<(Instant, Bytes)>,
    free_at: Option<Instant>,
    rx: BytesMut,
    /// Frames as sent.
    pub sent: Tap,
    /// Frames as delivered.
    pub delivered: Tap,
    /// Bytes delivered.
    pub bytes: u64,
}

impl Link {
    fn new(preface: bool) -> Link {
        Link {
            latency: Duration::ZERO,
            rate: None,
            piece: None,
            tap: true,
            in_flight: VecDeque::new(),
            free_at: None,
            rx: BytesMut::new(),
            sent: Tap::new(preface),
            delivered: Tap::new(preface),
            bytes: 0,
        }
    }

    fn send(&mut self, now: Instant, chunk: Bytes) {
        let depart = match (self.rate, self.free_at) {
            (Some(rate), free) => {
                let start = free.map_or(now, |f| f.max(now));
                let secs = chunk.len() as f64 / rate.max(1) as f64;
                let d = start + Duration::from_secs_f64(secs);
                self.free_at = Some(d);
                d
            }
            (None, _) => now,
        };
        self.in_flight.push_back((depart + self.latency, chunk));
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.front().map(|(t, _)| *t)
    }
}

/// One end of the pair: its connection and what it received.
#[derive(Debug)]
pub struct Side {
    /// The connection.
    pub conn: Connection,
    /// Events not yet taken by the test (DATA is kept only if `keep_data`).
    pub events: VecDeque<Event>,
    /// DATA bytes received per stream.
    pub received: HashMap<StreamId, u64>,
    /// Streams whose END_STREAM arrived (DATA or trailers/headers).
    pub ended: HashSet<StreamId>,
    /// Release DATA as soon as it arrives (an infinitely fast reader).
    pub auto_release: bool,
    /// Keep `Event::Data` in `events` (off for bulk transfers: the payloads are dropped).
    pub keep_data: bool,
    /// The error `recv` returned, if any.
    pub error: Option<crate::ConnectionError>,
    chunks: Vec<Bytes>,
}

impl Side {
    fn new(conn: Connection) -> Side {
        Side {
            conn,
            events: VecDeque::new(),
            received: HashMap::new(),
            ended: HashSet::new(),
            auto_release: true,
            keep_data: true,
            error: None,
            chunks: Vec::new(),
        }
    }

    fn pump_events(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            match &ev {
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => {
                    *self.received.entry(*id).or_default() += data.len() as u64;
                    if *end_stream {
                        self.ended.insert(*id);
                    }
                    if self.auto_release {
                        let _ = self.conn.release_capacity(*id, data.len());
                    }
                    if !self.keep_data {
                        continue;
                    }
                }
                Event::Headers {
                    id,
                    end_stream: true,
                    ..
                }
                | Event::Trailers { id, .. } => {
                    self.ended.insert(*id);
                }
                _ => {}
            }
            self.events.push_back(ev);
        }
    }

    /// Takes the first event matching `f`.
    pub fn take(&mut self, f: impl Fn(&Event) -> bool) -> Option<Event> {
        let i = self.events.iter().position(f)?;
        self.events.remove(i)
    }
}

/// A client and a server connected in memory.
#[derive(Debug)]
pub struct Pair {
    /// The client end.
    pub client: Side,
    /// The server end.
    pub server: Side,
    /// Client → server.
    pub c2s: Link,
    /// Server → client.
    pub s2c: Link,
    /// Virtual now.
    pub now: Instant,
}

impl Pair {
    /// A pair with the given configurations, at virtual time "now".
    pub fn new(client: Config, server: Config) -> Pair {
        let now = Instant::now();
        Pair {
            client: Side::new(Connection::new(Role::Client, client, now)),
            server: Side::new(Connection::new(Role::Server, server, now)),
            c2s: Link::new(true),
            s2c: Link::new(false),
            now,
        }
    }

    /// A pair with default configurations, handshake done.
    pub fn connected() -> Pair {
        let mut p = Pair::new(Config::default(), Config::default());
        p.run();
        p
    }

    /// Sets the one-way latency and the rate (bytes/s) of both links.
    pub fn set_link(&mut self, latency: Duration, rate: Option<u64>) {
        for l in [&mut self.c2s, &mut self.s2c] {
            l.latency = latency;
            l.rate = rate;
        }
    }

    fn transmit(side: &mut Side, link: &mut Link, now: Instant, ended: &HashSet<u32>) -> bool {
        let mut any = false;
        loop {
            let n = side.conn.poll_transmit(now, &mut side.chunks);
            if n == 0 {
                break;
            }
            any = true;
            for c in side.chunks.drain(..) {
                if link.tap {
                    link.sent.feed(&c, Some(ended));
                }
                link.send(now, c);
            }
        }
        any
    }

    fn deliver(link: &mut Link, side: &mut Side, now: Instant) -> bool {
        let mut any = false;
        while link.next_arrival().is_some_and(|t| t <= now) {
            let Some((_, chunk)) = link.in_flight.pop_front() else {
                break;
            };
            any = true;
            if link.tap {
                link.delivered.feed(&chunk, None);
            }
            link.bytes += chunk.len() as u64;
            match link.piece {
                None => {
                    link.rx.extend_from_slice(&chunk);
                    if side.error.is_none() {
                        if let Err(e) = side.conn.recv(&mut link.rx, now) {
                            side.error = Some(e);
                        }
                    }
                }
                Some(p) => {
                    for piece in chunk.chunks(p.max(1)) {
                        link.rx.extend_from_slice(piece);
                        if side.error.is_none() {
                            if let Err(e) = side.conn.recv(&mut link.rx, now) {
                                side.error = Some(e);
                            }
                        }
                    }
                }
            }
            side.pump_events();
        }
        any
    }

    /// One round at the current virtual time: both sides transmit, due bytes are delivered,
    /// events are collected. Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        // The set a side checks its WINDOW_UPDATEs against: streams whose END_STREAM was
        // delivered to it.
        let mut any = Self::transmit(
            &mut self.client,
            &mut self.c2s,
            now,
            &self.s2c.delivered.end_streams,
        );
        any |= Self::transmit(
            &mut self.server,
            &mut self.s2c,
            now,
            &self.c2s.delivered.end_streams,
        );
        any |= Self::deliver(&mut self.c2s, &mut self.server, now);
        any |= Self::deliver(&mut self.s2c, &mut self.client, now);
        self.client.pump_events();
        self.server.pump_events();
        any
    }

    /// The next virtual instant at which something happens (arrival or timer).
    pub fn next_instant(&self) -> Option<Instant> {
        [
            self.c2s.next_arrival(),
            self.s2c.next_arrival(),
            self.client.conn.poll_timeout(),
            self.server.conn.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs until nothing is in flight and nothing is left to send, without firing timers.
    pub fn run(&mut self) {
        loop {
            while self.step() {}
            let next = [self.c2s.next_arrival(), self.s2c.next_arrival()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) => self.now = self.now.max(t),
                None => break,
            }
        }
    }

    /// Runs, firing timers too, until `cond` holds or virtual time passes `limit` from now.
    /// Returns whether `cond` held.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Pair) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            while self.step() {
                if cond(self) {
                    return true;
                }
            }
            if cond(self) {
                return true;
            }
            let Some(t) = self.next_instant() else {
                return false;
            };
            if t > end {
                self.now = end;
                return false;
            }
            self.now = self.now.max(t);
            self.client.conn.handle_timeout(self.now);
            self.server.conn.handle_timeout(self.now);
        }
    }

    /// Advances virtual time by `d` (firing timers at `now + d`), then runs.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.client.conn.handle_timeout(self.now);
        self.server.conn.handle_timeout(self.now);
        self.run();
    }
}
