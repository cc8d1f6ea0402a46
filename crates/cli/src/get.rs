//! `h2mux get`. Not built yet: see README's status table.

use std::process::ExitCode;

/// Arguments of `h2mux get`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `h2mux get`.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("h2mux get: not built yet (see README.md status table)");
    ExitCode::from(2)
}
