//! `h2mux bench`. Not built yet: see README's status table.

use std::process::ExitCode;

/// Arguments of `h2mux bench`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `h2mux bench`.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("h2mux bench: not built yet (see README.md status table)");
    ExitCode::from(2)
}
