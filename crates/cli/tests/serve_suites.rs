//! Runs the conformance suite and the attack suite against a real `h2mux serve` process
//! (issue 9 §1–§2): the binary is started on an ephemeral port, every conformance case must
//! pass, and every attack must be repelled with bounded memory while a well-behaved client on
//! another connection keeps getting answers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use h2mux_conformance::attacks::{self, Budget, Reaction};
use h2mux_conformance::{run, Options};
use h2mux_wire::ErrorCode;

struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_h2mux"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start h2mux serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from h2mux serve: {line:?}"));
    Serve { child, addr }
}

#[test]
fn h2mux_serve_passes_the_whole_conformance_suite() {
    let s = serve();
    let report = run(&s.addr.to_string(), &Options::default(), |r| {
        eprintln!("{:?} {}", r.outcome, r.case.id)
    })
    .unwrap();
    eprintln!("h2mux serve: {}", report.summary());
    assert_eq!(
        report.failed_ids(),
        Vec::<&str>::new(),
        "{}",
        report.summary()
    );
}

/// What each attack must provoke from h2mux (its documented limits, crates/proto Config).
fn acceptable(name: &str, r: &Reaction) -> bool {
    let calm =
        |r: &Reaction| matches!(r, Reaction::Goaway(c) if *c == ErrorCode::ENHANCE_YOUR_CALM);
    match name {
        // Floods of frames that make us answer: closed with ENHANCE_YOUR_CALM, or throttled.
        "ping-flood" | "settings-flood" => {
            calm(r) || matches!(r, Reaction::Throttled | Reaction::Closed)
        }
        // Rate limits on resets and empty frames.
        "rapid-reset" | "made-you-reset" | "reset-flood" | "empty-frames" => calm(r),
        // Bounded header blocks: the connection ends (calm or a protocol error).
        "continuation-flood" => matches!(r, Reaction::Goaway(_) | Reaction::Closed),
        // Oversized header lists are refused per stream, or the connection is ended.
        "zero-length-headers" | "hpack-bomb" => !matches!(r, Reaction::Nothing),
        // The preface must not be dribbled forever (SETTINGS_TIMEOUT after 10 s).
        "slowloris-preface" => matches!(r, Reaction::Goaway(_) | Reaction::Closed),
        // Idle connections are closed by the handshake timeout.
        "connection-flood" => matches!(r, Reaction::Closed),
        // Defended by bounded memory alone (checked by the caller): any visible reaction is fine.
        _ => true,
    }
}

#[test]
fn h2mux_serve_repels_every_attack_with_bounded_memory() {
    let s = serve();
    let pid = s.child.id();
    let budget = Budget {
        max_frames: 500_000,
        max_time: Duration::from_secs(6),
        ..Budget::default()
    };
    let mut failures = Vec::new();
    for (name, attack) in attacks::all() {
        let w = attacks::run_watched(pid, s.addr, attack, &budget);
        eprintln!(
            "{name}: {:?} after {} frames; rss +{} KiB; good client {} ok / {} failed",
            w.report.reaction,
            w.report.frames_sent,
            w.rss_growth_kib(),
            w.good_client.len() - w.good_failures(),
            w.good_failures()
        );
        if !acceptable(name, &w.report.reaction) {
            failures.push(format!("{name}: reaction {:?}", w.report.reaction));
        }
        if w.rss_growth_kib() > 128 * 1024 {
            failures.push(format!(
                "{name}: server RSS grew by {} KiB",
                w.rss_growth_kib()
            ));
        }
        if w.good_client.is_empty() || w.good_failures() * 10 > w.good_client.len() {
            failures.push(format!(
                "{name}: the well-behaved client failed {} of {} requests",
                w.good_failures(),
                w.good_client.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
