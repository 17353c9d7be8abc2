//! The `matchstream-bench` binary: parse the command line, run the subcommand, print its
//! table (and the environment above it) on stdout, write `--json` if asked.

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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("matchstream-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, soft_initial: u64) -> anyhow::Result<()> {
    if let Command::Worker = cli.command {
        return shards::worker_main();
    }
    let env = Environment::capture(soft_initial);
    match &cli.command {
        Command::Clients(o) => {
            let r = clients::run(o).context("clients")?;
            finish(&env, "clients", &o.output, &r, &r.table())
        }
        Command::Http(o) => {
            let r = http::run(o).context("http")?;
            finish(&env, "http", &o.output, &r, &r.table())
        }
        Command::Fanout(o) => {
            let r = fanout::run(o).context("fanout")?;
            finish(&env, "fanout", &o.output, &r, &r.table())
        }
        Command::Ramp(o) => {
            let r = ramp::run(o).context("ramp")?;
            finish(&env, "ramp", &o.output, &r, &r.table())
        }
        Command::Worker => Ok(()),
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
