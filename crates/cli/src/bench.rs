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
    /// Run only this workload (e.g. bulk-1, bulk-100, rps-1conn, rps-4conn, connect-h2c).
    #[arg(long, value_name = "WORKLOAD")]
    only: Option<String>,
    /// Run only these contenders (comma-separated, e.g. `raw-tcp,h2mux`).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    contenders: Vec<String>,
    /// Also run every workload with the HTTP contenders over TLS (rows `<workload>-tls`).
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
}

/// Runs `h2mux bench`.
pub fn run(args: Args) -> ExitCode {
    let link = match args.wan {
        Some(spec) => {
            h2mux_bench::wan::install_signal_cleanup();
            match h2mux_bench::wan::Link::create(spec) {
                Ok(link) => {
                    eprintln!(
                        "h2mux bench --wan: {spec} ({:?}) between two network namespaces",
                        link.emulator
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
        Some(name) => match Workload::from_name(name).filter(|w| all_workloads.contains(w)) {
            Some(w) => vec![w],
            None => {
                let names: Vec<_> = all_workloads.iter().map(|w| w.name()).collect();
                eprintln!(
                    "h2mux bench: unknown workload {name:?}; one of: {}",
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        },
        None => all_workloads,
    };
    let pairs: Vec<(Workload, Contender)> = workloads
        .iter()
        .flat_map(|w| contenders.iter().map(move |c| (*w, *c)))
        .collect();
    let bar = indicatif::ProgressBar::new(pairs.len() as u64);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut rows = Vec::new();
    for (w, c) in pairs {
        bar.set_message(format!("{} / {}", w.name(), c.name()));
        let row = run_row(w, c, &cfg);
        rows.push(row);
        if args.tls && !matches!(w, Workload::ConnectH2c | Workload::ConnectTls) {
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
    bar.finish_and_clear();
    drop(link);
    report::fill_ratios(&mut rows);
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
