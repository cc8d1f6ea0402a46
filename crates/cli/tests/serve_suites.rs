//! Runs the conformance suite against a real `h2mux serve` process (issue 9 §2): the binary
//! is started on an ephemeral port and every case must pass (`N passed, N failed` is
//! printed). The attacks have their own tests, one per attack (tests/attacks.rs).

use std::process::Stdio;

use h2mux_conformance::{run, Options};

mod common;

fn serve() -> common::Serve {
    common::serve(&["--listen", "127.0.0.1:0"], Stdio::inherit())
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
