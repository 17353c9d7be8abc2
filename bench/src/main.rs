//! The `matchstream-bench` binary: raise the open-files limit, parse the command line, run
//! it ([`matchstream_bench::cli::run`] prints the table, and the environment above it, on
//! stdout and writes `--json` if asked), and turn its problems into the exit status.
//!
//! Exit status: 0 when the run passed; 1 when it ran but failed (the problems are printed on
//! stderr: loss, failures, refused publishes, a missed rate, a broken `--fail-on` criterion,
//! ...); 2 when it could not run (a bad argument, a pre-flight check, an error).

use std::process::ExitCode;

use clap::Parser;
use matchstream_bench::cli::{self, Cli};
use matchstream_bench::net;

fn main() -> ExitCode {
    let soft_initial = net::raise_nofile();
    let cli = Cli::parse();
    match cli::run(cli, soft_initial) {
        Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
        Ok(problems) => {
            eprintln!("matchstream-bench: FAILED:");
            for p in &problems {
                eprintln!("  - {p}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("matchstream-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
