//! Runs the conformance suite against a real `h2mux serve` process (issue 9 §2): the binary
//! is started on an ephemeral port and every case must pass (`N passed, N failed` is
//! printed). The attacks have their own tests, one per attack (tests/attacks.rs).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use h2mux_conformance::{run, Options};

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
