//! `h2mux bench`: h2mux side by side with raw TCP, hyper HTTP/1.1 and hyper's HTTP/2, on
//! loopback, in one process (see `h2mux_bench` for how each row is measured).

use h2mux_bench::{report, run_row, Config, Contender, Workload};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `h2mux bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Longer run: bigger transfers, three repetitions per row, medians.
    #[arg(long)]
    full: bool,
    /// Run only these workloads (comma-separated, e.g. bulk-1, bulk-100, rps-1conn,rps-4conn,
    /// connect-h2c).
    #[arg(long, value_name = "WORKLOAD")]
    only: Option<String>,
    /// Run the whole selection N times and print the medians (values, and ratios taken
    /// inside each run) with the range of the ratios: for a shared, noisy machine.
    #[arg(long, value_name = "N", default_value_t = 1)]
    repeat: usize,
    /// Run each row's server in a child process (client here, server there: two processes,
    /// as a real deployment has), e.g. for one connection against four. Cleartext rows only.
    #[arg(long, conflicts_with = "wan")]
    split: bool,
    /// Worker threads of each side's runtime (default 1: `current_thread` runtimes). With
    /// `--split`, `--threads 2` lets each process use both cores of a 2-core machine.
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
    /// Internal (the child of `--split`): serve WORKLOAD:CONTENDER until stdin closes.
    #[arg(long, hide = true, value_name = "WORKLOAD:CONTENDER")]
    serve_half: Option<String>,
    /// Run only these contenders (comma-separated, e.g. `raw-tcp,h2mux`).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    contenders: Vec<String>,
    /// Also run the bulk and rps workloads with the HTTP contenders over TLS (rows
    /// `<workload>-tls`; the pool rows are TLS already, the RPC and memory rows cleartext).
    #[arg(long)]
    tls: bool,
    /// Write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write an SVG bar chart of the results to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Run the bulk rows across an emulated long fat link between two network namespaces:
    /// RTT in milliseconds, optionally a loss percentage (e.g. `50` or `50,0.5`). Needs root and
    /// iproute2; uses `tc netem` when the kernel has it, an in-process TUN delay line otherwise.
    #[arg(long, value_name = "RTT_MS[,LOSS%]")]
    wan: Option<h2mux_bench::wan::LinkSpec>,
    /// With `--wan`: the TCP congestion control of both namespaces, for every contender
    /// (`cubic`, Linux's default; `bbr`; ... or `inherit` to keep the host's, which a new
    /// namespace copies and which differs between machines).
    #[arg(long, value_name = "NAME", default_value = "cubic", requires = "wan")]
    wan_cc: String,
}

/// Runs `h2mux bench`.
pub fn run(args: Args) -> ExitCode {
    h2mux_bench::contenders::set_runtime_workers(args.threads);
    if let Some(pair) = &args.serve_half {
        return serve_half(pair, args.tls);
    }
    let link = match args.wan {
        Some(spec) => {
            h2mux_bench::wan::install_signal_cleanup();
            let cc = (args.wan_cc != "inherit").then_some(args.wan_cc.as_str());
            match h2mux_bench::wan::Link::create(spec, cc) {
                Ok(link) => {
                    eprintln!(
                        "h2mux bench --wan: {spec} ({:?}, congestion control {}) between two \
                         network namespaces",
                        link.emulator, args.wan_cc
                    );
                    Some(link)
                }
                Err(e) => {
                    eprintln!("h2mux bench --wan: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let cfg = if link.is_some() {
        Config::wan()
    } else if args.full {
        Config::full()
    } else {
        Config::quick()
    };
    let all_workloads: Vec<Workload> = if link.is_some() {
        vec![Workload::Bulk1, Workload::Bulk100]
    } else {
        Workload::all().to_vec()
    };
    let contenders: Vec<Contender> = if link.is_some() {
        // Across the link: the cleartext contenders (raw TLS and tonic have no bulk WAN row).
        Contender::all()
            .into_iter()
            .filter(|c| !matches!(c, Contender::RawTls | Contender::Tonic))
            .collect()
    } else {
        Contender::all().to_vec()
    };
    for name in &args.contenders {
        if !Contender::all().iter().any(|c| c.name() == name) {
            let names: Vec<_> = Contender::all().iter().map(|c| c.name()).collect();
            eprintln!(
                "h2mux bench: unknown contender {name:?}; one of: {}",
                names.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let contenders: Vec<Contender> = contenders
        .into_iter()
        .filter(|c| args.contenders.is_empty() || args.contenders.iter().any(|n| n == c.name()))
        .collect();
    let workloads: Vec<Workload> = match &args.only {
        Some(list) => {
            let mut chosen = Vec::new();
            for name in list.split(',') {
                match Workload::from_name(name).filter(|w| all_workloads.contains(w)) {
                    Some(w) => chosen.push(w),
                    None => {
                        let names: Vec<_> = all_workloads.iter().map(|w| w.name()).collect();
                        eprintln!(
                            "h2mux bench: unknown workload {name:?}; one of: {}",
                            names.join(", ")
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            chosen
        }
        None => all_workloads,
    };
    let pairs: Vec<(Workload, Contender)> = workloads
        .iter()
        .flat_map(|w| contenders.iter().map(move |c| (*w, *c)))
        .collect();
    let repeat = args.repeat.max(1);
    let bar = indicatif::ProgressBar::new((pairs.len() * repeat) as u64);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut runs = Vec::new();
    for _ in 0..repeat {
        let mut rows = run_pairs(
            &pairs,
            &cfg,
            args.tls,
            args.split.then_some(args.threads),
            &bar,
        );
        report::fill_ratios(&mut rows);
        runs.push(rows);
    }
    bar.finish_and_clear();
    drop(link);
    let rows = if repeat == 1 {
        runs.pop().unwrap_or_default()
    } else {
        report::summarize(&runs)
    };
    let machine = h2mux_bench::machine();
    print!("{}", report::to_table(&machine, &rows));
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &args.json {
        let doc = report::to_json(&machine, &rows);
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("h2mux bench: cannot write {}: {e}", path.display());
            code = ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.svg {
        if let Err(e) = std::fs::write(path, report::to_svg(&machine, &rows)) {
            eprintln!("h2mux bench: cannot write {}: {e}", path.display());
            code = ExitCode::FAILURE;
        }
    }
    code
}

/// One run of every (workload, contender) pair (and its `-tls` twin with `--tls`).
fn run_pairs(
    pairs: &[(Workload, Contender)],
    cfg: &Config,
    tls: bool,
    split_threads: Option<usize>,
    bar: &indicatif::ProgressBar,
) -> Vec<report::Row> {
    let split = split_threads.is_some();
    let threads = split_threads.unwrap_or(1).to_string();
    let spawn = |w: Workload, c: Contender| {
        std::process::Command::new(std::env::current_exe()?)
            .args(["bench", "--threads", &threads, "--serve-half"])
            .arg(format!("{}:{}", w.name(), c.name()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
    };
    let mut rows = Vec::new();
    for &(w, c) in pairs {
        bar.set_message(format!("{} / {}", w.name(), c.name()));
        let memory = matches!(w, Workload::MemConn | Workload::MemStream);
        let splittable = !matches!(w, Workload::ConnectTls) && c != Contender::RawTls;
        let row = if memory && !split {
            // Each memory row's server in a fresh process (see h2mux_bench::contenders::mem).
            let mut r = h2mux_bench::run_row_with(w, c, cfg, Some(&spawn));
            if r.value.is_some() {
                r.note = format!("server in its own process; {}", r.note);
            }
            r
        } else if split && splittable {
            let mut r = h2mux_bench::run_row_with(w, c, cfg, Some(&spawn));
            r.note = format!("2 processes; {}", r.note)
                .trim_end_matches("; ")
                .to_string();
            r
        } else if split {
            report::Row::empty(
                w.name(),
                c.name(),
                "n/a: --split is for cleartext rows that measure the client side",
            )
        } else {
            run_row(w, c, cfg)
        };
        rows.push(row);
        if tls && !split && w.has_tls_twin() {
            // The same workload with every HTTP contender over TLS: `<workload>-tls`.
            let tls_cfg = Config {
                tls: true,
                ..cfg.clone()
            };
            let mut t = run_row(w, c, &tls_cfg);
            t.workload = format!("{}-tls", w.name());
            rows.push(t);
        }
        bar.inc(1);
    }
    rows
}

/// The child of `--split`: the server half of one row, until stdin closes.
fn serve_half(pair: &str, tls: bool) -> ExitCode {
    let found = pair.split_once(':').and_then(|(w, c)| {
        let w = Workload::from_name(w)?;
        let c = Contender::all().into_iter().find(|x| x.name() == c)?;
        Some((w, c))
    });
    let Some((w, c)) = found else {
        eprintln!("h2mux bench --serve-half: unknown pair {pair:?}");
        return ExitCode::from(2);
    };
    let cfg = Config {
        tls,
        ..Config::quick()
    };
    match h2mux_bench::contenders::serve_half(w, c, &cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("h2mux bench --serve-half {pair}: {e}");
            ExitCode::FAILURE
        }
    }
}
