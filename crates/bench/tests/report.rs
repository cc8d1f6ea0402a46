//! Tests of the pure parts: JSON schema, ratios, SVG well-formedness, percentiles.

use h2mux_bench::report::{
    civil_from_days, fill_ratios, iso8601, percentile, ratio, to_json, to_svg, to_table, Machine,
    Row,
};

fn machine() -> Machine {
    Machine {
        cpu_model: "Test CPU <x> & co".into(),
        cores: 2,
        kernel: "6.1.0".into(),
        date: "2026-11-23T02:00:00Z".into(),
    }
}

fn row(w: &str, c: &str, v: Option<f64>) -> Row {
    Row {
        workload: w.into(),
        contender: c.into(),
        value: v,
        unit: "MiB/s".into(),
        p50_us: Some(10.0),
        p99_us: None,
        cpu_s: Some(1.5),
        ratio_to_h2mux: None,
        note: String::new(),
    }
}

fn sample_rows() -> Vec<Row> {
    vec![
        row("bulk-1", "raw-tcp", Some(3000.0)),
        row("bulk-1", "h2mux", Some(1500.0)),
        row("bulk-1", "h2-default", None),
        row("rps-1conn", "h2-tuned", Some(100.0)),
        row("rps-1conn", "h2mux", None),
    ]
}

#[test]
fn percentile_nearest_rank() {
    let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
    assert_eq!(percentile(&mut v, 0.5), Some(50.0));
    assert_eq!(percentile(&mut v, 0.99), Some(99.0));
    assert_eq!(percentile(&mut v, 1.0), Some(100.0));
    assert_eq!(percentile(&mut v, 0.0), Some(1.0));
    assert_eq!(percentile(&mut [], 0.5), None);
    assert_eq!(percentile(&mut [7.0], 0.99), Some(7.0));
    let mut three = [3.0, 1.0, 2.0];
    assert_eq!(percentile(&mut three, 0.5), Some(2.0));
}

#[test]
fn ratio_to_h2mux() {
    assert_eq!(ratio(Some(3000.0), Some(1500.0)), Some(2.0));
    assert_eq!(ratio(None, Some(1.0)), None);
    assert_eq!(ratio(Some(1.0), None), None);
    assert_eq!(ratio(Some(1.0), Some(0.0)), None);
    let mut rows = sample_rows();
    fill_ratios(&mut rows);
    let r: Vec<Option<f64>> = rows.iter().map(|r| r.ratio_to_h2mux).collect();
    assert_eq!(r, vec![Some(2.0), Some(1.0), None, None, None]);
}

#[test]
fn json_has_exactly_the_issue_8_field_names() {
    let mut rows = sample_rows();
    fill_ratios(&mut rows);
    let doc = to_json(&machine(), &rows);
    let obj = doc.as_object().expect("top-level object");
    let mut top: Vec<&str> = obj.keys().map(String::as_str).collect();
    top.sort_unstable();
    assert_eq!(top, ["machine", "rows"]);
    let mut mk: Vec<&str> = obj["machine"]
        .as_object()
        .expect("machine object")
        .keys()
        .map(String::as_str)
        .collect();
    mk.sort_unstable();
    assert_eq!(mk, ["cores", "cpu_model", "date", "kernel"]);
    let rows_json = obj["rows"].as_array().expect("rows array");
    assert_eq!(rows_json.len(), 5);
    for r in rows_json {
        let mut k: Vec<&str> = r
            .as_object()
            .expect("row object")
            .keys()
            .map(String::as_str)
            .collect();
        k.sort_unstable();
        assert_eq!(
            k,
            [
                "contender",
                "cpu_s",
                "p50_us",
                "p99_us",
                "ratio_to_h2mux",
                "unit",
                "value",
                "workload"
            ]
        );
    }
    assert_eq!(rows_json[0]["ratio_to_h2mux"], 2.0);
    assert!(rows_json[2]["value"].is_null(), "not built is null");
    assert_eq!(rows_json[0]["workload"], "bulk-1");
    assert_eq!(rows_json[0]["contender"], "raw-tcp");
}

/// Minimal XML-ish check: tags balance, self-closing tags allowed, no raw `<` or `&` in text.
fn tags_balance(s: &str) -> bool {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        if text.contains('>') {
            return false;
        }
        let Some(j) = rest[i..].find('>') else {
            return false;
        };
        let tag = &rest[i + 1..i + j];
        rest = &rest[i + j + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop().as_deref() != Some(name.trim()) {
                return false;
            }
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap_or("").to_string();
            stack.push(name);
        }
    }
    stack.is_empty() && !rest.contains('>')
}

#[test]
fn svg_is_well_formed() {
    let mut rows = sample_rows();
    fill_ratios(&mut rows);
    let svg = to_svg(&machine(), &rows);
    assert!(svg.starts_with("<svg"));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(tags_balance(&svg), "unbalanced SVG:\n{svg}");
    assert!(
        svg.contains("&lt;x&gt; &amp; co"),
        "machine text is escaped"
    );
    assert!(svg.contains("not built"));
    assert!(
        !tags_balance("<svg><g></svg>"),
        "the checker itself rejects bad input"
    );
}

#[test]
fn table_lists_every_row() {
    let rows = sample_rows();
    let t = to_table(&machine(), &rows);
    assert_eq!(t.lines().count(), 2 + rows.len());
    assert!(t.contains("raw-tcp"));
}

#[test]
fn dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(iso8601(86_399), "1970-01-01T23:59:59Z");
}

#[test]
fn repeated_runs_fold_into_medians_of_per_run_ratios() {
    // Three runs on a drifting machine: every value halves, h2mux stays at 2x raw-tcp.
    let run = |scale: f64| {
        let mut rows = vec![
            row("bulk-1", "raw-tcp", Some(100.0 * scale)),
            row("bulk-1", "h2mux", Some(200.0 * scale)),
        ];
        h2mux_bench::report::fill_ratios(&mut rows);
        rows
    };
    let runs = vec![run(1.0), run(0.5), run(0.25)];
    let s = h2mux_bench::report::summarize(&runs);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].contender, "raw-tcp");
    assert_eq!(s[0].value, Some(50.0));
    assert_eq!(s[0].ratio_to_h2mux, Some(0.5));
    assert!(s[0].note.contains("median of 3 runs"), "{}", s[0].note);
    assert!(s[0].note.contains("0.50–0.50"), "{}", s[0].note);
    assert_eq!(s[1].ratio_to_h2mux, Some(1.0));
}
