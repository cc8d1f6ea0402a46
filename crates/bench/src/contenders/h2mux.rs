//! The h2mux contender — THE place to plug the engine in once `crates/h2mux` has its client
//! and server (issue 5).
//!
//! To fill in: a server function (accept on the given listener, serve `/bytes/N` as N bytes in
//! 1 MiB writes and `/echo` echoing the POST body) and a client function per workload, run with
//! [`super::on_two_threads`] exactly like [`super::hyper_peers`] does. Until then every row
//! answers [`Outcome::NotBuilt`] and prints "not built" (JSON: `value: null`).

use crate::{Config, Outcome, Workload};
use std::io;

/// Runs one repetition of workload `w` with h2mux on both sides.
pub fn run(w: Workload, cfg: &Config) -> io::Result<Outcome> {
    let _ = (w, cfg);
    Ok(Outcome::NotBuilt)
}
