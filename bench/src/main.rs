//! The `matchstream-bench` binary: parse the command line, run the subcommand, print its
//! table (and the environment above it) on stdout, write `--json` if asked.
//!
//! Exit status: 0 when the run passed; 1 when it ran but failed (the problems are printed on
//! stderr: loss, failures, refused publishes, a missed rate, a broken `--fail-on` criterion,
//! ...); 2 when it could not run (a bad argument, a pre-flight check, an error).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use matchstream_bench::cli::{Cli, Command, Output};
use matchstream_bench::env::Environment;
use matchstream_bench::{clients, fanout, http, net, ramp, report, shards};
use serde::Serialize;

fn main() -> ExitCode {
    let soft_initial = net::raise_nofile();
    let cli = Cli::parse();
    match run(cli, soft_initial) {
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

/// Runs the command; its problems (empty: it passed).
fn run(cli: Cli, soft_initial: u64) -> anyhow::Result<Vec<String>> {
    if let Command::Worker = cli.command {
        shards::worker_main()?;
        return Ok(Vec::new());
    }
    let env = Environment::capture(soft_initial);
    match &cli.command {
        Command::Clients(o) => {
            matchstream_bench::preflight::output(&o.output)?;
            let r = clients::run(o).context("clients")?;
            finish(&env, "clients", &o.output, &r, &r.table())?;
            Ok(r.problems())
        }
        Command::Http(o) => {
            matchstream_bench::preflight::output(&o.output)?;
            let r = http::run(o).context("http")?;
            finish(&env, "http", &o.output, &r, &r.table())?;
            Ok(r.problems())
        }
        Command::Fanout(o) => {
            // Ctrl-C: a partial report rather than none.
            matchstream_bench::interrupt::install();
            let r = fanout::run(o).context("fanout")?;
            finish(&env, "fanout", &o.output, &r, &r.table())?;
            Ok(r.problems())
        }
        Command::Ramp(o) => {
            matchstream_bench::preflight::output(&o.output)?;
            let r = ramp::run(o).context("ramp")?;
            finish(&env, "ramp", &o.output, &r, &r.table())?;
            Ok(r.problems())
        }
        Command::Compare(o) => matchstream_bench::compare::run(o),
        Command::Worker => Ok(Vec::new()),
    }
}

fn finish<R: Serialize>(
    env: &Environment,
    command: &str,
    output: &Output,
    report: &R,
    table: &str,
) -> anyhow::Result<()> {
    println!("{}\n", env.describe());
    print!("{table}");
    if let Some(path) = &output.json {
        report::write_json(path, env, command, report)?;
        println!("report: {}", path.display());
    }
    Ok(())
}
