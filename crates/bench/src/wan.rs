//! `h2mux bench --wan RTT_MS[,LOSS%]`: the bulk rows across an emulated long fat link.
//!
//! Two network namespaces (`h2mux-wan-<pid>-srv`, `h2mux-wan-<pid>-cli`) hold the server and
//! the client side of every row; the harness's server thread enters the first and its client
//! thread the second with `setns(2)`, so each contender's sockets live on either end of the link
//! and TCP sees the real round-trip time, losses and all.
//!
//! The link is emulated in one of two ways, chosen automatically:
//! - **netem** (preferred): a veth pair with `tc qdisc … netem delay RTT/2 [loss L%]` on each
//!   end — when the kernel has `sch_netem`;
//! - **tun delay line** (fallback for kernels built without netem, such as small VMs): each
//!   namespace gets a point-to-point TUN device and two threads of this process carry IP
//!   packets between them, holding each packet for RTT/2 and dropping L% at random. Its MTU is
//!   65 000 so the per-packet cost stays low; it is slower than netem at very high rates, and
//!   it runs in the same process, so it shares the CPU with the contenders (equally for all).
//!   Packets carry a virtio_net_hdr (`IFF_VNET_HDR`) whose `hdr_len` makes the receiving
//!   kernel build them as page-fragment skbs, as a NIC's GRO or a veth does ([`set_vnet_header`]):
//!   written plainly, each packet became one linear allocation that TCP cannot coalesce in
//!   the receive queue, and with two half-window segments per RTT the receiver's buffer
//!   autotuning (Linux 6.18) then stalled at the initial 84 KB window for 0.2–3 s at random.
//!
//! Both namespaces get TCP buffer limits of 64 MiB (`net.ipv4.tcp_rmem`/`tcp_wmem`) so that
//! raw TCP — the yardstick — is limited by the link, not by the default 4 MiB send buffer;
//! the comparison is then about each HTTP/2 engine's own flow-control windows. Both also get
//! the same TCP congestion control (`--wan-cc`, default cubic): a new namespace would otherwise
//! copy the host's, and a BBR host gives very different ramps than a cubic one.
//!
//! Root and iproute2 (`ip`, `tc`) are required; without them [`Link::create`] returns a clear
//! [`LinkError`]. The namespaces are deleted on every exit path: when the [`Link`] is dropped
//! (normal return, error, panic), on SIGINT/SIGTERM/SIGHUP (see [`install_signal_cleanup`]),
//! and namespaces left behind by a process that was killed with SIGKILL are removed by the
//! next run ([`remove_stale`]).

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Prefix of every namespace this module creates.
const NS_PREFIX: &str = "h2mux-wan-";
/// Server end of the link.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// Client end of the link.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// MTU of the TUN delay line.
const TUN_MTU: usize = 65_000;
/// Bytes the TUN delay line holds per direction before it drops (a router's tail drop).
const TUN_QUEUE_LIMIT: usize = 512 << 20;
/// Packets a TUN device queues for its delay-line thread (the kernel's default is 500). The
/// ring only bridges the moments the thread is not scheduled; at 500 packets it overflowed
/// under load on 2 cores (`ip -s link` TX dropped), losses no real link of this kind has —
/// the delay line's own queue ([`TUN_QUEUE_LIMIT`]) is the link's buffer.
const TUN_TX_QUEUE: u32 = 8192;
/// TCP buffer limit set in both namespaces.
const TCP_BUFFER_MAX: u32 = 64 << 20;

/// The link to emulate: round-trip time and random loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkSpec {
    /// Round-trip time in milliseconds (split evenly between the two directions).
    pub rtt_ms: u32,
    /// Packet loss in percent, applied in each direction.
    pub loss_pct: f64,
}

impl FromStr for LinkSpec {
    type Err = String;

    /// Parses `RTT_MS` or `RTT_MS,LOSS%` (the `%` is optional), e.g. `50` or `50,0.5`.
    fn from_str(s: &str) -> Result<LinkSpec, String> {
        let (rtt, loss) = match s.split_once(',') {
            Some((r, l)) => (r.trim(), Some(l.trim().trim_end_matches('%'))),
            None => (s.trim(), None),
        };
        let rtt_ms: u32 = rtt
            .parse()
            .map_err(|_| format!("RTT {rtt:?} is not a whole number of milliseconds"))?;
        if !(1..=10_000).contains(&rtt_ms) {
            return Err(format!("RTT {rtt_ms} ms is outside 1..=10000"));
        }
        let loss_pct = match loss {
            None => 0.0,
            Some(l) => l
                .parse::<f64>()
                .map_err(|_| format!("loss {l:?} is not a percentage"))?,
        };
        if !(0.0..=50.0).contains(&loss_pct) || loss_pct.is_nan() {
            return Err(format!("loss {loss_pct}% is outside 0..=50"));
        }
        Ok(LinkSpec { rtt_ms, loss_pct })
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms RTT, {}% loss", self.rtt_ms, self.loss_pct)
    }
}

/// How the link is emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// veth pair + `tc netem`.
    Netem,
    /// TUN devices + an in-process delay line.
    TunDelayLine,
}

/// Why the link could not be set up.
#[derive(Debug)]
pub enum LinkError {
    /// Not running as root.
    NotRoot,
    /// A required program is missing.
    MissingTool(&'static str),
    /// A command failed.
    Command {
        /// The command line.
        cmd: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A system call failed.
    Io(&'static str, io::Error),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::NotRoot => write!(
                f,
                "--wan needs root (it creates network namespaces and links); run it as root"
            ),
            LinkError::MissingTool(t) => write!(
                f,
                "--wan needs `{t}` from iproute2 (Debian: apt-get install iproute2)"
            ),
            LinkError::Command { cmd, stderr } => write!(f, "`{cmd}` failed: {}", stderr.trim()),
            LinkError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for LinkError {}

/// Namespaces that exist right now and must be deleted on exit.
static LIVE_NAMESPACES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Where the harness's two threads put their sockets (see [`crate::contenders::on_two_threads`]).
#[derive(Debug, Clone)]
pub struct Placement {
    /// Namespace of the server thread.
    pub server_ns: String,
    /// Namespace of the client thread.
    pub client_ns: String,
    /// Address the server binds.
    pub server_ip: IpAddr,
}

static PLACEMENT: Mutex<Option<Placement>> = Mutex::new(None);

/// The current placement (None: loopback in the caller's namespace).
pub fn placement() -> Option<Placement> {
    PLACEMENT.lock().map(|p| p.clone()).unwrap_or(None)
}

/// A live emulated link. Dropping it stops the delay line and deletes the namespaces.
pub struct Link {
    /// What was asked for.
    pub spec: LinkSpec,
    /// How it is emulated.
    pub emulator: Emulator,
    server_ns: String,
    client_ns: String,
    stop: Arc<AtomicBool>,
    forwarders: Vec<JoinHandle<()>>,
}

fn run(cmd: &[&str]) -> Result<(), LinkError> {
    let line = cmd.join(" ");
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                LinkError::MissingTool(if cmd[0] == "tc" { "tc" } else { "ip" })
            }
            _ => LinkError::Io("spawning iproute2", e),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LinkError::Command {
            cmd: line,
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        })
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Moves the calling thread into network namespace `name` (created by `ip netns add`).
pub fn enter_namespace(name: &str) -> io::Result<()> {
    let ns = File::open(format!("/run/netns/{name}"))?;
    // SAFETY: `ns` is an open namespace file descriptor for the whole call; setns only changes
    // the calling thread's network namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets the default TCP congestion control of namespace `ns` to `cc`.
///
/// Linux lets a namespace other than the initial one pick only an algorithm listed in the
/// host-wide `net.ipv4.tcp_allowed_congestion_control` (the host's own default is always
/// listed; on a host whose default is `bbr`, `cubic` usually is not). When the first attempt is
/// refused, `cc` is added to that list — which only allows it, it changes no socket — and the
/// setting is retried; a note on stderr says so.
fn set_congestion_control(ns: &str, cc: &str) -> Result<(), LinkError> {
    let value = format!("net.ipv4.tcp_congestion_control={cc}");
    let set = || run(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", &value]);
    let Err(first) = set() else {
        return Ok(());
    };
    let available = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
        .unwrap_or_default();
    if !available.split_whitespace().any(|a| a == cc) {
        return Err(LinkError::Command {
            cmd: format!("sysctl -w {value}"),
            stderr: format!(
                "this kernel has no congestion control {cc:?} (available: {})",
                available.trim()
            ),
        });
    }
    let allowed_path = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";
    let allowed = std::fs::read_to_string(allowed_path).unwrap_or_default();
    if allowed.split_whitespace().any(|a| a == cc) {
        return Err(first);
    }
    let widened = format!("{} {cc}", allowed.trim());
    std::fs::write(allowed_path, &widened)
        .map_err(|e| LinkError::Io("adding to net.ipv4.tcp_allowed_congestion_control", e))?;
    eprintln!(
        "h2mux bench --wan: added {cc:?} to net.ipv4.tcp_allowed_congestion_control \
         (now {widened:?}) so that the namespaces may use it"
    );
    set()
}

/// Deletes namespaces left behind by earlier runs whose process no longer exists.
pub fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

/// Deletes every namespace this process created and has not deleted yet.
pub fn cleanup_all() {
    let names = LIVE_NAMESPACES
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default();
    for name in names {
        let _ = run(&["ip", "netns", "del", &name]);
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in every thread it spawns
/// afterwards) and starts a thread that waits for them, deletes the namespaces and exits with
/// 128 + the signal number. Call it first thing in `main` before `--wan` starts any thread.
pub fn install_signal_cleanup() {
    // SAFETY: the sigset is initialised by sigemptyset before use; pthread_sigmask and sigwait
    // only read it. Blocking signals in this thread is inherited by threads spawned later.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("wan-signals".into())
            .spawn(move || {
                let mut sig: libc::c_int = 0;
                if libc::sigwait(&set, &mut sig) == 0 {
                    eprintln!("h2mux bench: signal {sig}: deleting the --wan namespaces");
                    cleanup_all();
                    std::process::exit(128 + sig);
                }
            });
    }
}

impl Link {
    /// Creates the namespaces and the link, and places the harness's threads on its ends.
    /// `congestion_control` (e.g. `"cubic"`, `"bbr"`) is set in both namespaces for every
    /// contender alike; `None` keeps what a new namespace inherits from the host (Linux copies
    /// the initial namespace's `net.ipv4.tcp_congestion_control`), which varies from machine
    /// to machine and changes the figures (see BENCHMARKS.md, "--wan and the congestion
    /// control").
    pub fn create(spec: LinkSpec, congestion_control: Option<&str>) -> Result<Link, LinkError> {
        if !is_root() {
            return Err(LinkError::NotRoot);
        }
        for tool in ["ip", "tc"] {
            if Command::new(tool).arg("-V").output().is_err() {
                return Err(LinkError::MissingTool(tool));
            }
        }
        remove_stale();
        let pid = std::process::id();
        let server_ns = format!("{NS_PREFIX}{pid}-srv");
        let client_ns = format!("{NS_PREFIX}{pid}-cli");
        let mut link = Link {
            spec,
            emulator: Emulator::Netem,
            server_ns: server_ns.clone(),
            client_ns: client_ns.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            forwarders: Vec::new(),
        };
        for ns in [&server_ns, &client_ns] {
            run(&["ip", "netns", "add", ns])?;
            if let Ok(mut live) = LIVE_NAMESPACES.lock() {
                live.push(ns.clone());
            }
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            for key in ["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"] {
                let value = format!("{key}=4096 131072 {TCP_BUFFER_MAX}");
                run(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", &value])?;
            }
            let core = format!("net.core.rmem_max={TCP_BUFFER_MAX}");
            let _ = run(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", &core]);
            if let Some(cc) = congestion_control {
                set_congestion_control(ns, cc)?;
            }
        }
        let netem_works = run(&[
            "tc", "-n", &server_ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .is_ok();
        if netem_works {
            let _ = run(&["tc", "-n", &server_ns, "qdisc", "del", "dev", "lo", "root"]);
            link.setup_netem()?;
        } else {
            link.emulator = Emulator::TunDelayLine;
            link.setup_tun()?;
        }
        if let Ok(mut p) = PLACEMENT.lock() {
            *p = Some(Placement {
                server_ns: server_ns.clone(),
                client_ns: client_ns.clone(),
                server_ip: IpAddr::V4(SERVER_IP),
            });
        }
        Ok(link)
    }

    fn setup_netem(&mut self) -> Result<(), LinkError> {
        let pid = std::process::id() % 100_000;
        let (a, b) = (format!("h2mw{pid}s"), format!("h2mw{pid}c"));
        run(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b])?;
        let half = format!("{}us", u64::from(self.spec.rtt_ms) * 500);
        let loss = format!("{}%", self.spec.loss_pct);
        for (dev, ns, ip) in [
            (&a, &self.server_ns, SERVER_IP),
            (&b, &self.client_ns, CLIENT_IP),
        ] {
            run(&["ip", "link", "set", dev, "netns", ns])?;
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                dev,
            ])?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
            let mut tc = vec![
                "tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "netem", "delay", &half,
                "limit", "1000000",
            ];
            if self.spec.loss_pct > 0.0 {
                tc.extend(["loss", &loss]);
            }
            run(&tc)?;
        }
        Ok(())
    }

    fn setup_tun(&mut self) -> Result<(), LinkError> {
        let server = open_tun_in(&self.server_ns)?;
        let client = open_tun_in(&self.client_ns)?;
        for (ns, local, peer) in [
            (&self.server_ns, SERVER_IP, CLIENT_IP),
            (&self.client_ns, CLIENT_IP, SERVER_IP),
        ] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &local.to_string(),
                "peer",
                &peer.to_string(),
                "dev",
                TUN_NAME,
            ])?;
            run(&[
                "ip",
                "-n",
                ns,
                "link",
                "set",
                TUN_NAME,
                "mtu",
                &TUN_MTU.to_string(),
                "txqueuelen",
                &TUN_TX_QUEUE.to_string(),
                "up",
            ])?;
        }
        let one_way = Duration::from_micros(u64::from(self.spec.rtt_ms) * 500);
        let clone = |f: &File| {
            f.try_clone()
                .map_err(|e| LinkError::Io("duplicating a TUN descriptor", e))
        };
        let directions = [
            (clone(&server)?, clone(&client)?, 0x5eed_0001u64),
            (client, server, 0x5eed_0002u64),
        ];
        for (from, to, seed) in directions {
            let stop = self.stop.clone();
            let loss = self.spec.loss_pct / 100.0;
            let seed = seed ^ u64::from(std::process::id());
            let handle = std::thread::Builder::new()
                .name("wan-delay-line".into())
                .spawn(move || delay_line(from, to, one_way, loss, seed, &stop))
                .map_err(|e| LinkError::Io("starting the delay line", e))?;
            self.forwarders.push(handle);
        }
        Ok(())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.forwarders.drain(..) {
            let _ = t.join();
        }
        if let Ok(mut p) = PLACEMENT.lock() {
            *p = None;
        }
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = run(&["ip", "netns", "del", ns]);
            if let Ok(mut live) = LIVE_NAMESPACES.lock() {
                live.retain(|n| n != ns);
            }
        }
    }
}

const TUN_NAME: &str = "h2mwan";

/// Opens a TUN device named [`TUN_NAME`] inside namespace `ns` (from a short-lived thread that
/// enters it, so the caller's own namespace never changes).
fn open_tun_in(ns: &str) -> Result<File, LinkError> {
    let ns = ns.to_string();
    std::thread::spawn(move || -> io::Result<File> {
        enter_namespace(&ns)?;
        let file = File::options()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
        const IFF_TUN: libc::c_short = 0x0001;
        const IFF_NO_PI: libc::c_short = 0x1000;
        // Every packet read or written is preceded by a virtio_net_hdr (see set_vnet_header).
        const IFF_VNET_HDR: libc::c_short = 0x4000;
        // struct ifreq: 16-byte name, then the flags (a short) at offset 16; 40 bytes in all.
        let mut ifreq = [0u8; 40];
        ifreq[..TUN_NAME.len()].copy_from_slice(TUN_NAME.as_bytes());
        ifreq[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI | IFF_VNET_HDR).to_ne_bytes());
        // SAFETY: `ifreq` is a writable 40-byte buffer laid out as the kernel's struct ifreq
        // and outlives the call; the descriptor is open.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, ifreq.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(file)
    })
    .join()
    .map_err(|_| LinkError::Io("opening a TUN device", io::Error::other("thread panicked")))?
    .map_err(|e| LinkError::Io("opening a TUN device (/dev/net/tun, TUNSETIFF)", e))
}

/// Carries packets from `from` to `to`, each held for `delay`, a fraction `loss` dropped at
/// random, until `stop`.
fn delay_line(
    mut from: File,
    mut to: File,
    delay: Duration,
    loss: f64,
    seed: u64,
    stop: &AtomicBool,
) {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut queued_bytes = 0usize;
    let mut rng = seed.max(1);
    let mut buf = vec![0u8; TUN_MTU + 64];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while queue.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, pkt)) = queue.pop_front() {
                queued_bytes -= pkt.len();
                let _ = to.write(&pkt);
            }
        }
        let wait_ms = match queue.front() {
            Some((due, _)) => {
                due.saturating_duration_since(now).as_millis().clamp(0, 50) as libc::c_int
            }
            None => 50,
        };
        let mut pfd = libc::pollfd {
            fd: from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, wait_ms) };
        if ready <= 0 || pfd.revents & libc::POLLIN == 0 {
            continue;
        }
        // Drain what is ready now (bounded, so due packets are not held back).
        for _ in 0..64 {
            let n = match from.read(&mut buf) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let dropped = loss > 0.0 && (rng as f64 / u64::MAX as f64) < loss;
            if !dropped && queued_bytes + n <= TUN_QUEUE_LIMIT {
                queued_bytes += n;
                let mut pkt = buf[..n].to_vec();
                set_vnet_header(&mut pkt);
                queue.push_back((Instant::now() + delay, pkt));
            }
            let mut more = libc::pollfd {
                fd: from.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: as above; a zero timeout only asks whether another packet is ready.
            if unsafe { libc::poll(&mut more, 1, 0) } <= 0 {
                break;
            }
        }
    }
}

/// Size of the `virtio_net_hdr` that precedes every packet on an `IFF_VNET_HDR` TUN device
/// (`TUNSETVNETHDRSZ` is left at its default).
const VNET_HDR: usize = 10;

/// Rewrites the virtio_net_hdr in front of an IP packet (`pkt` = header + packet, as read from
/// the other TUN device) for writing: no offload flags, and `hdr_len` = the packet's IPv4 + TCP
/// header length. The kernel then builds the received skb as a linear head of just the headers
/// plus page fragments — as a NIC's GRO or a veth deliver it — instead of one linear
/// allocation of the whole packet (what `hdr_len` 0, or no vnet header at all, gives). Only
/// fragment skbs can be coalesced in the receiving socket's queue, and without that a 64 KB MTU
/// link starves Linux's receive-buffer autotuning (see `BENCHMARKS.md`, "the TUN link's
/// uncoalescable skbs"). Anything shorter than the vnet header is left alone; a packet that is
/// not IPv4 gets `hdr_len` 0 (the old behaviour).
fn set_vnet_header(pkt: &mut [u8]) {
    if pkt.len() < VNET_HDR {
        return;
    }
    let (hdr, ip) = pkt.split_at_mut(VNET_HDR);
    let len = ip_tcp_header_len(ip);
    hdr.fill(0);
    hdr[2..4].copy_from_slice(&len.to_le_bytes());
}

/// Length of the IPv4 header and, for TCP, the TCP header after it (never more than `ip`).
fn ip_tcp_header_len(ip: &[u8]) -> u16 {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return 0;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let mut len = ihl;
    if ip[9] == 6 && ip.len() >= ihl + 13 {
        len += usize::from(ip[ihl + 12] >> 4) * 4;
    }
    len.min(ip.len()) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 packet: 20-byte IP header, then a TCP header of `doff` words, then `payload`.
    fn tcp_packet(doff: u8, payload: usize) -> Vec<u8> {
        let mut p = vec![0u8; 20 + usize::from(doff) * 4 + payload];
        p[0] = 0x45;
        p[9] = 6;
        p[20 + 12] = doff << 4;
        p
    }

    #[test]
    fn vnet_header_asks_for_a_linear_head_of_just_the_headers() {
        // A TCP segment with timestamps (doff 8 = 32-byte TCP header), after a vnet header
        // the kernel filled in on the other device.
        let mut pkt = vec![0xffu8; VNET_HDR];
        pkt.extend(tcp_packet(8, 41_984));
        set_vnet_header(&mut pkt);
        assert_eq!(&pkt[..VNET_HDR], &[0, 0, 52, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(pkt[VNET_HDR], 0x45, "the packet itself is untouched");

        // Not TCP: just the IP header. Not IPv4: 0, as without a vnet header.
        let mut udp = vec![0u8; VNET_HDR];
        udp.extend(tcp_packet(5, 100));
        udp[VNET_HDR + 9] = 17;
        set_vnet_header(&mut udp);
        assert_eq!(u16::from_le_bytes([udp[2], udp[3]]), 20);
        let mut v6 = vec![0u8; VNET_HDR + 60];
        v6[VNET_HDR] = 0x60;
        set_vnet_header(&mut v6);
        assert_eq!(u16::from_le_bytes([v6[2], v6[3]]), 0);
    }

    #[test]
    fn vnet_header_never_claims_more_than_the_packet() {
        // Truncated and malformed packets: no panic, hdr_len within the packet.
        for len in 0..80 {
            let mut ip = tcp_packet(15, 0);
            ip[0] = 0x4f; // IHL 15: a 60-byte IP header
            ip.resize(len, 0xff);
            let mut pkt = vec![0u8; VNET_HDR];
            pkt.extend(&ip);
            set_vnet_header(&mut pkt);
            assert!(usize::from(u16::from_le_bytes([pkt[2], pkt[3]])) <= len);
        }
        let mut short = vec![7u8; VNET_HDR - 1];
        set_vnet_header(&mut short);
        assert_eq!(short, vec![7u8; VNET_HDR - 1]);
    }

    #[test]
    fn link_spec_parses_rtt_and_optional_loss() {
        assert_eq!(
            "50".parse::<LinkSpec>(),
            Ok(LinkSpec {
                rtt_ms: 50,
                loss_pct: 0.0
            })
        );
        assert_eq!(
            "50,1".parse::<LinkSpec>(),
            Ok(LinkSpec {
                rtt_ms: 50,
                loss_pct: 1.0
            })
        );
        assert_eq!(
            "100, 0.5%".parse::<LinkSpec>(),
            Ok(LinkSpec {
                rtt_ms: 100,
                loss_pct: 0.5
            })
        );
    }

    #[test]
    fn link_spec_rejects_nonsense_with_a_reason() {
        assert!("".parse::<LinkSpec>().unwrap_err().contains("milliseconds"));
        assert!("0".parse::<LinkSpec>().unwrap_err().contains("outside"));
        assert!("50,x"
            .parse::<LinkSpec>()
            .unwrap_err()
            .contains("percentage"));
        assert!("50,80".parse::<LinkSpec>().unwrap_err().contains("outside"));
        assert!("50,NaN".parse::<LinkSpec>().is_err());
    }
}
