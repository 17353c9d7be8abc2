//! The command line: one subcommand per load tool, plus the options they share (where the
//! report goes, how connections are spread over processes and source addresses).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::net::SourceIps;
use crate::progress::Mode;

const ABOUT: &str = "Load tools for matchstream: the user simulator (clients), the HTTP load \
test (http), the fanout benchmark (fanout), the seed's stage 2 ramp (ramp), and compare.";

const LONG_ABOUT: &str = "Load tools for matchstream, after the \"Scaling Erlang\" procedure.

Two numbers drive every test, as in the seed:
  N  the number of users: simulated subscribers (clients, ramp) or HTTP requests (http);
  C  the number of concurrent attempts: TCP connection attempts in flight (clients) or HTTP
     requests in flight (http). C grows with N in a ramp.

Stage 1 (is it really working?):  matchstream-bench clients --api URL --play sample --token T --n 5
Stage 2 (finding the boundaries): matchstream-bench ramp --api URL --token T --max 16384

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
    #[command(long_about = crate::clients::LONG_ABOUT)]
    Clients(crate::clients::Options),
    /// The HTTP load test (the original's ApacheBench script): N requests, C in flight.
    #[command(long_about = crate::http::LONG_ABOUT)]
    Http(crate::http::Options),
    /// The fanout benchmark: subscribers over matches, events published under one flow
    /// control (paced or windowed) for matchstream and its Redis and NATS baselines alike.
    #[command(long_about = crate::fanout::LONG_ABOUT)]
    Fanout(crate::fanout::Options),
    /// The seed's stage 2: N doubling from --start, HTTP alone, clients alone, both; stops
    /// at the first failing step and names the cause.
    #[command(long_about = crate::ramp::LONG_ABOUT)]
    Ramp(crate::ramp::Options),
    /// Two --json reports side by side: the figures that differ, and a warning when their
    /// environments or arguments differ.
    Compare(crate::compare::Options),
    /// Internal: a worker process of a larger run (reads its plan on stdin).
    #[command(hide = true)]
    Worker,
}

/// Where the results go and how progress shows.
#[derive(Debug, Clone, Default, Args)]
pub struct Output {
    /// Also write the report as JSON to FILE (schema: bench/README.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Rewrite the progress line in place even when stderr is not a terminal.
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,

    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

impl Output {
    /// The progress mode these flags ask for.
    pub fn mode(&self) -> Mode {
        if self.quiet {
            Mode::Off
        } else if self.progress {
            Mode::InPlace
        } else {
            Mode::Auto
        }
    }
}

/// How connections are spread.
#[derive(Debug, Clone, Default, Args)]
pub struct Spread {
    /// Bind each outgoing socket to the next of these source addresses, e.g.
    /// 127.0.0.2-127.0.0.254 (one address has ~28k ephemeral ports per destination).
    #[arg(long, value_name = "A-B|A,B,..", value_parser = SourceIps::parse)]
    pub source_ips: Option<SourceIps>,

    /// Worker processes to spread subscribers over (0 = as many as the open-files limit
    /// requires, none when they fit in this process).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,

    /// Seconds one connect (and one checkin) may take before it counts as a connect timeout.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
}

impl Spread {
    /// `--connect-timeout` in milliseconds.
    pub fn connect_timeout_ms(&self) -> u64 {
        (self.connect_timeout.max(0.001) * 1000.0) as u64
    }
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
