//! `h2mux conformance`: run the RFC 9113 / RFC 7541 conformance suite against a server.

use std::process::ExitCode;
use std::time::Duration;

use h2mux_conformance::{run, Options, Outcome};

/// Arguments of `h2mux conformance`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The server to check, as HOST:PORT, speaking cleartext HTTP/2 with prior knowledge (h2c).
    #[arg(long)]
    target: String,
    /// Run only the cases whose id starts with this prefix (repeatable), e.g. `6.5` or `hpack`.
    #[arg(long)]
    only: Vec<String>,
    /// How long to wait for each reaction of the server, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Print every case, not only the failed ones.
    #[arg(long, short)]
    verbose: bool,
    /// Instead of the conformance cases, run the known attacks (CVE-2019-9511…9518, Rapid
    /// Reset, MadeYouReset, CONTINUATION flood, HPACK bomb, slowloris on the preface and the
    /// TLS handshake, connection floods, idle connections), each bounded, and print how the
    /// server reacted. `--only` filters attacks by name.
    #[arg(long)]
    attacks: bool,
    /// With --attacks: the server's process id, to report its memory growth during each attack
    /// and run a well-behaved client beside it.
    #[arg(long)]
    pid: Option<u32>,
    /// With --attacks: the local address attack connections come from (e.g. 127.0.0.2, so that
    /// a per-address connection limit hits the attacker and not the well-behaved client).
    #[arg(long, value_name = "IP")]
    attack_from: Option<std::net::IpAddr>,
}

/// Runs the suite; exit code 0 when every case passed (or was not applicable), 1 otherwise.
pub fn run_cmd(args: Args) -> ExitCode {
    if args.attacks {
        return run_attacks(&args);
    }
    let options = Options {
        timeout: Duration::from_millis(args.timeout_ms),
        only: args.only,
    };
    let verbose = args.verbose;
    let report = run(&args.target, &options, |r| match &r.outcome {
        Outcome::Pass if verbose => println!("PASS {:<48} {}", r.case.id, r.case.rfc),
        Outcome::Pass => {}
        Outcome::NotApplicable(why) => println!("N/A  {:<48} {} — {why}", r.case.id, r.case.rfc),
        Outcome::Fail(why) => {
            println!("FAIL {:<48} {}", r.case.id, r.case.rfc);
            println!("     MUST: {}", r.case.must);
            println!("     saw:  {why}");
        }
    });
    match report {
        Ok(report) => {
            println!("{}", report.summary());
            if report.failed() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("h2mux conformance: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_attacks(args: &Args) -> ExitCode {
    use std::net::ToSocketAddrs;
    let Some(addr) = args
        .target
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        eprintln!(
            "h2mux conformance: cannot resolve target {:?} to an address",
            args.target
        );
        return ExitCode::from(2);
    };
    let budget = h2mux_conformance::attacks::Budget {
        source: args.attack_from,
        ..h2mux_conformance::attacks::Budget::default()
    };
    for (name, attack) in h2mux_conformance::attacks::all() {
        if !args.only.is_empty() && !args.only.iter().any(|p| name.starts_with(p.as_str())) {
            continue;
        }
        let (r, extra) = match args.pid {
            Some(pid) => {
                let w = h2mux_conformance::attacks::run_watched(pid, addr, attack, &budget);
                let extra = format!(
                    "  rss +{} KiB, good client {} ok / {} failed, max {:?}",
                    w.rss_growth_kib(),
                    w.good_client.len() - w.good_failures(),
                    w.good_failures(),
                    w.good_max_latency().unwrap_or_default()
                );
                (w.report, extra)
            }
            None => (attack(addr, &budget), String::new()),
        };
        println!(
            "{:<24} {:<28} {:>9} frames {:>11} bytes {:>6.1} s{extra}",
            r.name,
            format!("{:?}", r.reaction),
            r.frames_sent,
            r.bytes_sent,
            r.elapsed.as_secs_f64()
        );
        if !r.detail.is_empty() {
            println!("{:<24} {}", "", r.detail);
        }
    }
    ExitCode::SUCCESS
}
