//! `advise`: the seed's stage 5 as arithmetic. It reads the reports this bench wrote on this
//! machine (`--json` of `fanout`, `clients`, `ramp`, `soak`; [`recorded`]) and says what N
//! subscribers receiving R events/s need ([`need`]): nodes by open files, cores by CPU per
//! delivery, memory in user space and in the kernel (each socket's slab objects and its
//! buffers), Redis operations, and the settings of tuning/ ([`tuning`]); each number printed
//! with the measured figure it derives from and its report ([`render`]). A figure no report
//! gives is named with the run that measures it. It measures nothing itself.

use std::path::PathBuf;

use clap::Args;

pub mod need;
pub mod recorded;
pub mod render;
pub mod tuning;
pub mod words;

pub use need::Advice;

/// The long `--help` text.
pub const LONG_ABOUT: &str = "The seed's stage 5 (capacity planning) as arithmetic.

Reads the --json reports of this bench measured on this machine (fanout: server CPU per
delivery and memory per subscriber, with --server-pid; clients or ramp: kernel slab and
socket buffer memory per connection; soak: an upper bound of memory per subscriber; every
report: the open-files limit) and prints what N subscribers receiving R events/s each need:
nodes, cores, open files, memory (user space, kernel slab, kernel socket buffers; tcp_mem
from the buffers alone), Redis operations/s and the settings of tuning/, each number
followed by the figure it derives from and its report. A figure no report gives is named,
with the command that measures it.

  matchstream-bench advise --subscribers 1000000 --events-per-s 20 \\
      --report fanout.json --report clients.json";

/// Options of `advise`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// N: subscribers, over all matches.
    #[arg(long)]
    pub subscribers: u64,

    /// R: events per second each subscriber receives (per match).
    #[arg(long = "events-per-s", value_name = "R")]
    pub events_per_s: f64,

    /// M: live matches (R events/s each).
    #[arg(long, default_value_t = 1)]
    pub matches: u64,

    /// Reports of this bench (--json of fanout, clients, ramp or soak), repeatable.
    #[arg(long = "report", value_name = "FILE.json", num_args = 1..)]
    pub reports: Vec<PathBuf>,

    /// The load generator runs on the nodes' hosts: its end of every connection counts too
    /// (both ends on loopback).
    #[arg(long)]
    pub clients_on_this_host: bool,

    /// The server's open-files limit, instead of the reports' environment.open_files.hard.
    #[arg(long, value_name = "L")]
    pub open_files_limit: Option<u64>,

    /// Descriptors a node keeps for itself (listeners, store, publishers, checkins).
    #[arg(long, value_name = "FILES", default_value_t = 500)]
    pub reserve: u64,

    /// The share of its cores a node may use: cores = busy cores / this.
    #[arg(long, value_name = "SHARE", default_value_t = 0.7)]
    pub headroom: f64,

    /// Also write the advice as JSON to FILE (schema: bench/README.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Reads the reports and works out the advice.
pub fn run(opts: &Options) -> anyhow::Result<Advice> {
    if opts.subscribers == 0 {
        anyhow::bail!("--subscribers must be at least 1");
    }
    if !(opts.events_per_s > 0.0 && opts.events_per_s.is_finite()) {
        anyhow::bail!("--events-per-s must be a positive number");
    }
    if opts.matches == 0 || opts.matches > opts.subscribers {
        anyhow::bail!("--matches must be between 1 and --subscribers");
    }
    if !(opts.headroom > 0.0 && opts.headroom <= 1.0) {
        anyhow::bail!("--headroom must be above 0 and at most 1");
    }
    let recorded = opts
        .reports
        .iter()
        .map(|p| recorded::load(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let measured = recorded::measure(&recorded)?;
    let ask = need::Ask {
        subscribers: opts.subscribers,
        events_per_s: opts.events_per_s,
        matches: opts.matches,
        clients_here: opts.clients_on_this_host,
        open_files_limit: opts.open_files_limit,
        reserve: opts.reserve,
        headroom: opts.headroom,
    };
    Ok(need::advise(&ask, &measured))
}

impl Advice {
    /// The text printed.
    pub fn table(&self) -> String {
        render::text(self)
    }
}
