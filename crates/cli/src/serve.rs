//! `h2mux serve`. Not built yet: see README's status table.

use std::process::ExitCode;

/// Arguments of `h2mux serve`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `h2mux serve`.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("h2mux serve: not built yet (see README.md status table)");
    ExitCode::from(2)
}
