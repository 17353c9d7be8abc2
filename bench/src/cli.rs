//! The command line: one subcommand per mode (each in [`crate::modes`], with its options and
//! `--help` text), and the dispatch that runs one and prints its report: the environment, the
//! table, and the JSON document with `--json`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::figures::env::Environment;
use crate::figures::report;
use crate::modes::{advise, clients, compare, fanout, http, ramp, soak};
use crate::options::Output;
use crate::subscribers::shards;
use crate::{interrupt, preflight};

const ABOUT: &str = "Load tools for matchstream: the user simulator (clients), the HTTP load \
test (http), the fanout benchmark (fanout), the seed's stage 2 ramp (ramp), the soak test \
(soak), compare, and what N subscribers need (advise).";

const LONG_ABOUT: &str = "Load tools for matchstream, after the \"Scaling Erlang\" procedure.

Two numbers drive every test, as in the seed:
  N  the number of users: simulated subscribers (clients, ramp) or HTTP requests (http);
  C  the number of concurrent attempts: TCP connection attempts in flight (clients) or HTTP
     requests in flight (http). C grows with N in a ramp.

Stage 1 (is it really working?):  matchstream-bench clients --api URL --play sample --token T --n 5
Stage 2 (finding the boundaries): matchstream-bench ramp --api URL --token T --max 16384
Fanout, stream ports against SSE: matchstream-bench fanout --api URL --token T --transport tcp,sse
Soak (half an hour, with resumes): matchstream-bench soak --api URL --token T --server-pid PID
  (or bench/scripts/soak.sh [minutes], which starts the server)
Stage 5 (what a million need):     matchstream-bench advise --subscribers 1000000 --events-per-s 20
  --report fanout.json --report clients.json

Every subcommand prints a table, and with --json FILE writes a report whose first object is
the environment (kernel, cores, limits, sysctls, git revision, arguments). The bench spreads
its connections over worker processes (each below its open-files limit) and source addresses
(--source-ips), and states its own CPU time: it shares the machine with what it measures.

Exit status: 0 when the run passed; 1 when it ran but failed (any failure, loss, refused
publish, non-2xx answer, failing ramp step, missed rate or --fail-on criterion; the reasons
on stderr); 2 when it could not run (bad arguments, a pre-flight check, an error).";

/// matchstream-bench: the load tools of matchstream.
#[derive(Debug, Parser)]
#[command(name = "matchstream-bench", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// The tool to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The user simulator at scale (the original's fake_client): N clients watch a match,
    /// C connection attempts in flight, every stream's framing checked.
    #[command(long_about = crate::modes::clients::LONG_ABOUT)]
    Clients(crate::modes::clients::Options),
    /// The HTTP load test (the original's ApacheBench script): N requests, C in flight.
    #[command(long_about = crate::modes::http::LONG_ABOUT)]
    Http(crate::modes::http::Options),
    /// The fanout benchmark: subscribers over matches (stream ports, server-sent events, or
    /// both compared: --transport), events published under one flow control (paced or
    /// windowed) for matchstream and its Redis and NATS baselines alike.
    #[command(long_about = crate::modes::fanout::LONG_ABOUT)]
    Fanout(crate::modes::fanout::Options),
    /// The seed's stage 2: N doubling from --start, HTTP alone, clients alone, both; stops
    /// at the first failing step and names the cause.
    #[command(long_about = crate::modes::ramp::LONG_ABOUT)]
    Ramp(crate::modes::ramp::Options),
    /// The soak test: subscribers over matches kept live for --minutes at a steady rate, a
    /// share of them resuming with SINCE every minute, the server's RSS and open files
    /// sampled; fails on RSS growth, loss, duplicates or disorder.
    #[command(long_about = crate::modes::soak::LONG_ABOUT)]
    Soak(crate::modes::soak::Options),
    /// What N subscribers at R events/s need (nodes, cores, open files, memory, Redis
    /// operations, tuning/'s settings), from the --json reports measured on this machine.
    #[command(long_about = crate::modes::advise::LONG_ABOUT)]
    Advise(crate::modes::advise::Options),
    /// Two --json reports side by side: the figures that differ, and a warning when their
    /// environments or arguments differ.
    Compare(crate::modes::compare::Options),
    /// Internal: a worker process of a larger run (reads its plan on stdin).
    #[command(hide = true)]
    Worker,
}

/// Runs the command; its problems (empty: it passed). `soft_initial` is the open-files limit
/// the process started with (the environment reports it).
pub fn run(cli: Cli, soft_initial: u64) -> anyhow::Result<Vec<String>> {
    if let Command::Worker = cli.command {
        shards::worker_main()?;
        return Ok(Vec::new());
    }
    let env = Environment::capture(soft_initial);
    match &cli.command {
        Command::Clients(o) => {
            preflight::output(&o.output)?;
            let r = clients::run(o).context("clients")?;
            finish(&env, "clients", &o.output, &r, &r.table())?;
            Ok(r.problems())
        }
        Command::Http(o) => {
            preflight::output(&o.output)?;
            let r = http::run(o).context("http")?;
            finish(&env, "http", &o.output, &r, &r.table())?;
            Ok(r.problems())
        }
        Command::Fanout(o) => {
            // Ctrl-C: a partial report rather than none.
            interrupt::install();
            let r = fanout::run(o).context("fanout")?;
            finish(&env, "fanout", &o.output, &r, &r.table())?;
            Ok(r.problems())
        }
        Command::Ramp(o) => {
            preflight::output(&o.output)?;
            let r = ramp::run(o).context("ramp")?;
            finish(&env, "ramp", &o.output, &r, &r.table())?;
            Ok(r.problems())
        }
        Command::Soak(o) => {
            // Ctrl-C: publishing stops, the subscribers give up, the report says so.
            interrupt::install();
            let r = soak::run(o).context("soak")?;
            finish(&env, "soak", &o.output, &r, &r.table())?;
            Ok(r.problems())
        }
        Command::Advise(o) => {
            let a = advise::run(o).context("advise")?;
            print!("{}", a.table());
            if let Some(path) = &o.json {
                report::write_json(path, &env, "advise", &a)?;
                println!("report: {}", path.display());
            }
            Ok(Vec::new())
        }
        Command::Compare(o) => compare::run(o),
        Command::Worker => Ok(Vec::new()),
    }
}

/// Prints the environment and the table, and writes the JSON document if asked.
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_explains_n_and_c() {
        let mut cli = Cli::command();
        let help = cli.render_long_help().to_string();
        assert!(help.contains("number of users"), "{help}");
        assert!(help.contains("concurrent attempts"), "{help}");
        for name in ["clients", "http", "ramp"] {
            let sub = cli.find_subcommand_mut(name).expect("subcommand");
            let help = sub.render_long_help().to_string();
            assert!(
                help.contains("N is the number") || help.contains("N (users)"),
                "{help}"
            );
            assert!(
                help.contains("C is the number") || help.contains("C (concurrent"),
                "{help}"
            );
        }
    }
}
