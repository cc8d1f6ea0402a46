//! `h2mux bench --split`: each row's server runs in a child process (`--serve-half`), the
//! client here; the row is measured and the child goes away with the row.

use std::process::Command;

#[test]
fn split_rows_run_the_server_in_a_child_process() {
    let out = Command::new(env!("CARGO_BIN_EXE_h2mux"))
        .args([
            "bench",
            "--split",
            "--only",
            "connect-h2c,rps-1conn",
            "--contenders",
            "raw-tcp,h2mux",
            "--json",
        ])
        .arg(std::env::temp_dir().join(format!("bench-split-{}.json", std::process::id())))
        .output()
        .expect("h2mux runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |w: &str, c: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().take(2).eq([w, c]))
            .unwrap_or_else(|| panic!("no {w} {c} row in\n{table}"))
            .to_string()
    };
    for (w, c) in [
        ("connect-h2c", "raw-tcp"),
        ("connect-h2c", "h2mux"),
        ("rps-1conn", "h2mux"),
    ] {
        let r = row(w, c);
        assert!(r.contains("2 processes"), "{r}");
        let value: f64 = r.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(value > 0.0, "{r}");
    }
    // Not applicable stays not applicable, without a server process.
    assert!(row("rps-1conn", "raw-tcp").contains("n/a"));
}
