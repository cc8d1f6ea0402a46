//! The pure parts of the harness: rows, percentiles, ratios, the table, `--json` and `--svg`.
//!
//! Nothing here touches sockets or clocks, so it is unit-tested in `tests/report.rs`.

use serde_json::{json, Value};

/// One line of the result table (and one element of the JSON `rows` array).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Workload name, e.g. `bulk-1` (see issue 8 for the list).
    pub workload: String,
    /// Contender name, e.g. `raw-tcp`, `h2mux`.
    pub contender: String,
    /// Throughput (MiB/s), requests/s or connections/s; `None` when not built / not applicable.
    pub value: Option<f64>,
    /// Unit of `value`.
    pub unit: String,
    /// Median latency in microseconds, where it applies.
    pub p50_us: Option<f64>,
    /// 99th percentile latency in microseconds, where it applies.
    pub p99_us: Option<f64>,
    /// Process CPU seconds (user + system) spent during the row.
    pub cpu_s: Option<f64>,
    /// `value / value(h2mux)` for the same workload; filled in by [`fill_ratios`].
    pub ratio_to_h2mux: Option<f64>,
    /// Free text shown in the table only (e.g. "not built", per-stream spread).
    pub note: String,
}

/// Description of the machine the run happened on (the JSON `machine` object).
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// UTC date and time of the run, ISO 8601.
    pub date: String,
}

/// The `q`-quantile (0.0..=1.0) of `samples` by nearest rank; `None` for no samples.
/// Sorts `samples` in place.
pub fn percentile(samples: &mut [f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let q = q.clamp(0.0, 1.0);
    let rank = (q * samples.len() as f64).ceil() as usize;
    let idx = rank.saturating_sub(1).min(samples.len() - 1);
    samples.get(idx).copied()
}

/// Median of a list of repetitions (for `--full`); `None` for no samples.
pub fn median(samples: &mut [f64]) -> Option<f64> {
    percentile(samples, 0.5)
}

/// Ratio of `value` to the h2mux value; `None` if either is missing or h2mux is zero.
pub fn ratio(value: Option<f64>, h2mux: Option<f64>) -> Option<f64> {
    match (value, h2mux) {
        (Some(v), Some(h)) if h > 0.0 && h.is_finite() && v.is_finite() => Some(v / h),
        _ => None,
    }
}

/// Sets `ratio_to_h2mux` of every row from the h2mux row of the same workload.
pub fn fill_ratios(rows: &mut [Row]) {
    let h2mux: Vec<(String, Option<f64>)> = rows
        .iter()
        .filter(|r| r.contender == "h2mux")
        .map(|r| (r.workload.clone(), r.value))
        .collect();
    for row in rows.iter_mut() {
        let h = h2mux
            .iter()
            .find(|(w, _)| *w == row.workload)
            .and_then(|(_, v)| *v);
        row.ratio_to_h2mux = ratio(row.value, h);
    }
}

/// Folds the rows of several runs of the same selection (`--repeat`, each run's ratios filled
/// in) into one row per (workload, contender): the median value, latencies and CPU, and the
/// median of the per-run ratios to h2mux — a ratio taken inside each run, so drift between
/// runs on a shared machine cancels — with their range in the note.
pub fn summarize(runs: &[Vec<Row>]) -> Vec<Row> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for proto in first {
        let same: Vec<&Row> = runs
            .iter()
            .filter_map(|rows| {
                rows.iter()
                    .find(|r| r.workload == proto.workload && r.contender == proto.contender)
            })
            .collect();
        let med = |f: fn(&Row) -> Option<f64>| {
            let mut v: Vec<f64> = same.iter().filter_map(|r| f(r)).collect();
            median(&mut v)
        };
        let mut ratios: Vec<f64> = same.iter().filter_map(|r| r.ratio_to_h2mux).collect();
        let range = match (
            ratios.iter().copied().reduce(f64::min),
            ratios.iter().copied().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) if proto.contender != "h2mux" => {
                format!("; x h2mux {lo:.2}–{hi:.2}")
            }
            _ => String::new(),
        };
        let measured = same.iter().filter(|r| r.value.is_some()).count();
        let note = if measured == 0 {
            proto.note.clone()
        } else {
            format!("median of {measured} runs{range}")
        };
        out.push(Row {
            workload: proto.workload.clone(),
            contender: proto.contender.clone(),
            value: med(|r| r.value),
            unit: proto.unit.clone(),
            p50_us: med(|r| r.p50_us),
            p99_us: med(|r| r.p99_us),
            cpu_s: med(|r| r.cpu_s),
            ratio_to_h2mux: median(&mut ratios),
            note,
        });
    }
    out
}

/// The `--json` document: `{"machine": {...}, "rows": [...]}` with the field names of issue 8.
pub fn to_json(machine: &Machine, rows: &[Row]) -> Value {
    json!({
        "machine": {
            "cpu_model": machine.cpu_model,
            "cores": machine.cores,
            "kernel": machine.kernel,
            "date": machine.date,
        },
        "rows": rows.iter().map(|r| json!({
            "workload": r.workload,
            "contender": r.contender,
            "value": r.value,
            "unit": r.unit,
            "p50_us": r.p50_us,
            "p99_us": r.p99_us,
            "cpu_s": r.cpu_s,
            "ratio_to_h2mux": r.ratio_to_h2mux,
        })).collect::<Vec<_>>(),
    })
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(v) => format!("{v:.prec$}"),
        None => "-".to_string(),
    }
}

/// The human-readable table.
pub fn to_table(machine: &Machine, rows: &[Row]) -> String {
    let mut out = format!(
        "machine: {} ({} cores), kernel {}, {}\n",
        machine.cpu_model, machine.cores, machine.kernel, machine.date
    );
    out.push_str(&format!(
        "{:<14} {:<11} {:>12} {:<8} {:>10} {:>10} {:>7} {:>8}  {}\n",
        "workload", "contender", "value", "unit", "p50_us", "p99_us", "cpu_s", "x h2mux", "note"
    ));
    for r in rows {
        let value = match r.value {
            Some(v) => format!("{v:.1}"),
            None => "-".into(),
        };
        out.push_str(&format!(
            "{:<14} {:<11} {:>12} {:<8} {:>10} {:>10} {:>7} {:>8}  {}\n",
            r.workload,
            r.contender,
            value,
            r.unit,
            fmt_opt(r.p50_us, 0),
            fmt_opt(r.p99_us, 0),
            fmt_opt(r.cpu_s, 2),
            fmt_opt(r.ratio_to_h2mux, 2),
            r.note
        ));
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A hand-written SVG bar chart: one group per workload, one bar per contender, bars scaled to
/// the largest value of their workload (units differ between workloads).
pub fn to_svg(machine: &Machine, rows: &[Row]) -> String {
    let mut workloads: Vec<&str> = Vec::new();
    for r in rows {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
    }
    let bar_h = 16.0;
    let label_w = 220.0;
    let bar_w = 480.0;
    let width = label_w + bar_w + 160.0;
    let mut y = 50.0;
    let mut body = String::new();
    for w in &workloads {
        body.push_str(&format!(
            "<text x=\"10\" y=\"{:.0}\" font-weight=\"bold\">{}</text>\n",
            y + 12.0,
            xml_escape(w)
        ));
        y += bar_h + 4.0;
        let group: Vec<&Row> = rows.iter().filter(|r| r.workload == *w).collect();
        let max = group.iter().filter_map(|r| r.value).fold(0.0_f64, f64::max);
        for r in group {
            let len = match r.value {
                Some(v) if max > 0.0 => v / max * bar_w,
                _ => 0.0,
            };
            let fill = if r.contender == "h2mux" {
                "#d9480f"
            } else {
                "#1c7ed6"
            };
            let label = match r.value {
                Some(v) => format!("{v:.1} {}", r.unit),
                None => "not built".to_string(),
            };
            body.push_str(&format!(
                "<text x=\"20\" y=\"{:.0}\">{}</text>\n<rect x=\"{label_w:.0}\" y=\"{:.0}\" width=\"{len:.1}\" height=\"{:.0}\" fill=\"{fill}\"/>\n<text x=\"{:.1}\" y=\"{:.0}\">{}</text>\n",
                y + 12.0,
                xml_escape(&r.contender),
                y,
                bar_h - 2.0,
                label_w + len + 6.0,
                y + 12.0,
                xml_escape(&label)
            ));
            y += bar_h;
        }
        y += 10.0;
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"24\" font-size=\"14\">h2mux bench: {} ({} cores), kernel {}, {}</text>\n{body}</svg>\n",
        y + 10.0,
        xml_escape(&machine.cpu_model),
        machine.cores,
        xml_escape(&machine.kernel),
        xml_escape(&machine.date)
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// UTC ISO 8601 timestamp from seconds since the epoch.
pub fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
