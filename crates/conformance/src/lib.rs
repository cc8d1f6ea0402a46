//! # h2mux-conformance — does a server do what RFC 9113 and RFC 7541 say it MUST?
//!
//! A suite of cases, each quoting one requirement of RFC 9113 (§3.4–§8) or RFC 7541 (§2–§6)
//! that a client can observe, each sending hand-crafted frames over a fresh cleartext
//! (prior-knowledge h2c) connection and checking the required reaction: a connection error
//! with its code, a stream error with its code, or "ignored" (the connection keeps answering).
//!
//! The suite has its own minimal frame writer/reader and HPACK literal encoder, so it can send
//! what a correct implementation never would and is an oracle independent of h2mux's codec.
//! Run it with `h2mux conformance [--target HOST:PORT]` (default: an `h2mux serve` started in
//! process) or from Rust with [`run`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

pub mod attacks;
pub mod cases;
pub mod conn;
pub mod hpack_lite;

pub use cases::{Case, Outcome, Setup};

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long each expectation waits for the server's reaction (default 2 s).
    pub timeout: Duration,
    /// Run only the cases whose id starts with one of these prefixes (empty: all).
    pub only: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(2),
            only: Vec::new(),
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// What happened.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// The results of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One entry per case run, in suite order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// Cases the server passed.
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Pass)
            .count()
    }
    /// Cases the server failed.
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
            .count()
    }
    /// Cases that could not be checked against this server.
    pub fn not_applicable(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::NotApplicable(_)))
            .count()
    }
    /// The ids of the failed cases.
    pub fn failed_ids(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
            .map(|r| r.case.id)
            .collect()
    }
    /// `N passed, N failed` (and not applicable, when any).
    pub fn summary(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed(), self.failed());
        if self.not_applicable() > 0 {
            s.push_str(&format!(", {} not applicable", self.not_applicable()));
        }
        s
    }
}

/// Errors that stop the suite before any case runs.
#[derive(Debug)]
pub enum SuiteError {
    /// The target did not resolve to an address.
    Resolve(String),
}

impl std::fmt::Display for SuiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuiteError::Resolve(t) => write!(f, "cannot resolve target {t:?} to an address"),
        }
    }
}

impl std::error::Error for SuiteError {}

/// Runs the suite against `target` (`host:port`), calling `on_result` after each case.
pub fn run(
    target: &str,
    options: &Options,
    mut on_result: impl FnMut(&CaseResult),
) -> Result<Report, SuiteError> {
    let addr: SocketAddr = target
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| SuiteError::Resolve(target.to_string()))?;
    let authority = target.to_string();
    let mut report = Report::default();
    for case in cases::all() {
        if !options.only.is_empty() && !options.only.iter().any(|p| case.id.starts_with(p.as_str()))
        {
            continue;
        }
        let started = Instant::now();
        let outcome = run_case(&case, addr, &authority, options.timeout);
        let result = CaseResult {
            case,
            outcome,
            elapsed: started.elapsed(),
        };
        on_result(&result);
        report.results.push(result);
    }
    Ok(report)
}

fn run_case(case: &Case, addr: SocketAddr, authority: &str, timeout: Duration) -> Outcome {
    let mut conn = match conn::Conn::connect(addr, authority, timeout) {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("cannot connect to {addr}: {e}")),
    };
    let handshake = match case.setup {
        Setup::Handshake => conn.handshake(&[]),
        Setup::HandshakeWith(settings) => conn.handshake(settings),
        Setup::Raw => Ok(()),
    };
    match handshake {
        Ok(()) => (case.run)(&mut conn),
        Err(e) => Outcome::Fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_are_unique_and_every_case_quotes_a_requirement() {
        let all = cases::all();
        let mut ids: Vec<_> = all.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate case ids");
        for c in &all {
            assert!(
                c.must.contains("MUST"),
                "{} does not quote a MUST: {}",
                c.id,
                c.must
            );
            assert!(
                c.rfc.starts_with("RFC 9113 §") || c.rfc.starts_with("RFC 7541 §"),
                "{}",
                c.id
            );
        }
        assert!(all.len() >= 60, "only {} cases", all.len());
    }

    #[test]
    fn an_unresolvable_target_is_a_clear_error() {
        let err = run("no-such-host.invalid:1", &Options::default(), |_| {}).unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"));
    }
}
