//! One (workload, contender) row with a fixed amount of work and no time bound, for profiling
//! and for CPU-per-unit comparisons on a busy machine (`perf stat`, `valgrind --tool=callgrind`):
//!
//! ```sh
//! cargo build --release -p h2mux-bench --example load
//! perf stat -e task-clock,page-faults,context-switches \
//!     target/release/examples/load bulk-1 h2mux 4096     # MiB
//! valgrind --tool=callgrind target/release/examples/load rps-1conn h2mux 20000  # requests
//! ```
//! The count is MiB for bulk-1, MiB per stream for bulk-100, requests for rps-*, connections
//! for connect-*.

use h2mux_bench::{contenders, report, Config, Contender, Outcome, Workload};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: load WORKLOAD CONTENDER [COUNT]";
    let (Some(w), Some(c)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Some(w) = Workload::from_name(w) else {
        eprintln!("unknown workload {w}; {usage}");
        std::process::exit(2);
    };
    let Some(c) = Contender::all().into_iter().find(|x| x.name() == c) else {
        eprintln!("unknown contender {c}; {usage}");
        std::process::exit(2);
    };
    let count: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let mut cfg = Config::quick();
    cfg.max_time = Duration::from_secs(3600);
    cfg.bulk1_bytes = count << 20;
    cfg.bulk100_stream_bytes = count << 20;
    cfg.rps_requests = count as usize;
    cfg.connects = count as usize;
    cfg.tls = args.iter().any(|a| a == "--tls");
    // Longest time without a received byte (bulk rows), to catch stalls.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut last, mut since, mut worst) = (0, std::time::Instant::now(), 0.0f64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                let now = h2mux_bench::received_bytes();
                if now != last {
                    if last != 0 {
                        worst = worst.max(since.elapsed().as_secs_f64());
                    }
                    last = now;
                    since = std::time::Instant::now();
                }
            }
            worst
        })
    };
    let cpu0 = h2mux_bench::cpu_seconds();
    let result = contenders::run(w, c, &cfg);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let stall = watch.join().unwrap_or(0.0);
    match result {
        Ok(Outcome::Measured(mut m)) => {
            let p50 = report::percentile(&mut m.latencies_us, 0.5);
            let p99 = report::percentile(&mut m.latencies_us, 0.99);
            println!(
                "{} {} {:.1} {} p50 {:?} p99 {:?} cpu {:.2} s stall {:.3} s {}",
                w.name(),
                c.name(),
                m.value,
                m.unit,
                p50,
                p99,
                h2mux_bench::cpu_seconds() - cpu0,
                stall,
                m.note
            );
        }
        other => {
            eprintln!("{other:?}");
            std::process::exit(1);
        }
    }
}
