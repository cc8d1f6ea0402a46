//! What the process-level tests share: an `h2mux serve` child on an ephemeral port.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// A running `h2mux serve`, killed when dropped.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `h2mux serve ARGS` (add `--listen 127.0.0.1:0`) and waits for its
/// `listening on ADDR` line. Its stderr is `stderr` (piped, to be read by the test, or
/// inherited).
pub fn serve(args: &[&str], stderr: Stdio) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_h2mux"))
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start h2mux serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from h2mux serve: {line:?}"));
    Serve { child, addr }
}
