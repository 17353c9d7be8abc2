//! The options every mode shares: where the report goes and how progress shows
//! ([`Output`]), how connections are spread over processes and source addresses ([`Spread`]).

use std::path::PathBuf;

use clap::Args;

use crate::figures::progress::Mode;
use crate::net::SourceIps;

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
