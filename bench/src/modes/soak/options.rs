//! `soak`'s command line: its options and its `--help` text.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::options::{Output, Spread};

/// The long `--help` text.
pub const LONG_ABOUT: &str =
    "The soak test (issue 11, item 10): does a node hold steady for half an
hour under a steady load with reconnections?

N subscribers (--subscribers, protocol version 2, each checking in) are spread evenly over M
matches (--matches) that the bench creates and starts, and over worker processes (--workers,
--source-ips). Each match gets R comment events per second (--rate, paced: event k at
t0 + k/R, stamped with that scheduled time) for --minutes, and no stop until the end: then a
stop each, which every subscriber must receive before the server hangs up. The matches are
deleted afterwards (--keep-matches keeps them).

Resumes: every --resume-every seconds each shard picks --resume-percent of its streaming
subscribers at random; their turns are spread evenly over --resume-spread seconds, and at its
turn a subscriber checks in again, connects, closes its old connection and sends
VERSION:2:CONNECT:<user>:MATCH:<id>:SINCE:<the last seq it received whole>. Every subscriber
checks that it receives every seq exactly once and in order across its reconnections: a seq
not above the last one seen is duplicated, one beyond the next is out of order, and lost =
expected - (delivered - duplicated), expected being connected x events per match. An ERROR
line (a resume's backlog over the server's --max-queue answers ERROR: too slow) fails its
subscriber.

Samples: every --sample-every seconds from the first publish, the server's (--server-pid) RSS
(VmRSS of /proc/PID/status) and open files (the entries of /proc/PID/fd), the subscribers
connected (open connections less resumes under way), the events published and the resumes
done so far: one line on stderr each, and with --csv one CSV row each, written as it is taken
(columns time_s, rss_kib, open_files, subscribers_connected, events_published,
resumes_so_far). At the end an SVG chart of RSS, open files and subscribers over time
(--chart, default beside --csv with .svg) and a summary: RSS at the reference (the sample at
--reference-minutes; runs shorter than that plus a minute take the first sample after a
warm-up of a quarter of the run, at most a minute, and say so), RSS at the end (the last
sample before the stops), their ratio, lost, duplicated, out of order, resumes done, and the
verdict.

Exit status: 0 when the end's RSS is within --rss-tolerance percent of the reference's and no
event was lost, duplicated or out of order, no subscriber failed (ERROR lines included) and
every publish was accepted at the target rate; 1 otherwise, the reasons on stderr; 2 when it
could not run (pre-flight: the API, --server-pid, the server's open-files limit below N + 64,
--source-ips, the output paths).";

/// Options of `soak`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The API of the node under test.
    #[arg(long, env = "MATCHSTREAM_URL")]
    pub api: String,

    /// The watcher's bearer token.
    #[arg(long, env = "MATCHSTREAM_TOKEN", hide_env_values = true)]
    pub token: String,

    /// Pid of the server process, sampled for RSS and open files (required: the verdict
    /// rests on its RSS).
    #[arg(long, value_name = "PID")]
    pub server_pid: u32,

    /// N: subscribers, spread evenly over the matches.
    #[arg(long, default_value_t = 19_000)]
    pub subscribers: u64,

    /// M: matches the bench creates, keeps live for the whole run, and stops at its end.
    #[arg(long, default_value_t = 20)]
    pub matches: u64,

    /// R: events per second per match (paced, latency from the scheduled time).
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,

    /// How long events are published, in minutes (fractions allowed: 0.5 is 30 s).
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,

    /// Percent of the subscribers each resume round disconnects and resumes with SINCE.
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    pub resume_percent: f64,

    /// Seconds between resume rounds (the first one this long after the subscribers are in).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub resume_every: f64,

    /// Seconds over which a round's resumes are spread evenly (default: half of
    /// --resume-every; 0: all at once, which the server briefly pays for with one more file
    /// per resume until it sees the old connections closed).
    #[arg(long, value_name = "SECS")]
    pub resume_spread: Option<f64>,

    /// Seconds between samples of the server.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub sample_every: f64,

    /// The RSS reference: the first sample at or after this many minutes of publishing.
    #[arg(long, value_name = "MIN", default_value_t = 5.0)]
    pub reference_minutes: f64,

    /// How far (in percent of the reference) the end's RSS may lie from the reference's.
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    pub rss_tolerance: f64,

    /// Write the samples as CSV to FILE, one row as each is taken.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Write the SVG chart here (default: beside --csv, with .svg).
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,

    /// Seed of the resume picks (default: from the clock; the report gives it).
    #[arg(long)]
    pub seed: Option<u64>,

    /// C: subscriber connection attempts in flight at once.
    #[arg(long, default_value_t = 512)]
    pub c: u64,

    /// Length of each event's comment in bytes (at least the 22-byte stamp).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub payload: usize,

    /// Publishing connections, pipelined (match m on connection m mod P; default min(M, 32)).
    #[arg(long)]
    pub publishers: Option<usize>,

    /// Keep the matches the bench created (default: deleted at the end).
    #[arg(long)]
    pub keep_matches: bool,

    /// Seconds beyond --minutes the run may take (connecting, the final stops); subscribers
    /// still open then fail as `timeout`.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub timeout: f64,

    /// How connections are spread.
    #[command(flatten)]
    pub spread: Spread,

    /// Report and progress.
    #[command(flatten)]
    pub output: Output,
}

impl Options {
    /// How long events are published.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.minutes.max(0.0) * 60.0)
    }

    /// Events per match: R for each second of the run.
    pub fn events_per_match(&self) -> u64 {
        (self.rate * self.duration().as_secs_f64()).round() as u64
    }

    /// Seconds a round's resumes are spread over.
    pub fn resume_spread(&self) -> f64 {
        self.resume_spread
            .unwrap_or(self.resume_every / 2.0)
            .clamp(0.0, self.resume_every.max(0.0))
    }

    /// The chart's path: `--chart`, or beside `--csv` with `.svg`.
    pub fn chart_path(&self) -> Option<PathBuf> {
        self.chart
            .clone()
            .or_else(|| self.csv.as_ref().map(|p| p.with_extension("svg")))
    }
}
