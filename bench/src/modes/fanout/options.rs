//! `fanout`'s command line: its options, its `--help` text and the rate they ask for.

use std::path::PathBuf;

use clap::Args;

use crate::modes::fanout::thresholds::Criteria;
pub use crate::modes::fanout::transport::Transport;
use crate::options::{Output, Spread};
use crate::publisher::flow::Flow;
use crate::publisher::window::DEFAULT_WINDOW;

/// The long `--help` text.
pub const LONG_ABOUT: &str = "The fanout benchmark, for performance engineers.

N subscribers (--subscribers) are spread evenly over M matches (--matches) that the bench
creates with ids unique to the run, starts and plays as their watcher: --warmup unmeasured
events, then E measured comment events per match (--events), then a stop. The matches are
deleted at the end (--keep-matches keeps them).

Transport (--transport, default tcp), how matchstream's subscribers receive the events:
  tcp      protocol version 2 on a stream port, each subscriber checking in first
           (GET /1/checkin) unless --targets names the stream addresses;
  sse      server-sent events: each subscriber opens GET /1/match/<id>/stream (HTTP/1.1,
           Accept: text/event-stream) on the API port of a node under test (--api, or spread
           over --sse-targets), no checkin; every event (id: <seq>, event: <kind>, data:
           <json>) is checked and accounted for exactly as a stream frame;
  tcp,sse  both in every run, back to back on fresh matches of the same server: the systems
           matchstream and matchstream-sse side by side with an sse/tcp column, and the
           server's CPU per delivery over SSE against TCP (with --server-pid; goal: within
           1.2x). The table and the JSON name the transport of every system.
The Redis and NATS baselines are TCP pub/sub and run beside matchstream's TCP run;
--transport sse alone with --baseline is refused (use --transport tcp,sse).

Flow control, the same for matchstream and every baseline, one publisher loop for all:
  --rate R    paced: event k of each match is published at t0 + k/R without waiting for any
              answer (requests pipelined on keep-alive connections; replies are read and
              checked as they come). Latency runs from each event's *scheduled* send time, so a
              publisher or server that falls behind shows (no coordinated omission). The run
              fails when the achieved publish rate is below 95 % of R x M; the rate the
              server accepted (answered) is reported beside it (a warning below 95 %,
              --fail-on accepted>=95 to fail).
  --rate max  event k of a match is published as soon as every live subscriber of that match
              has received event k - W (--window W, default 64), pipelined. Latency runs from
              the actual send time.

Baselines: --baseline redis://host:port (Redis pub/sub) and/or --baseline nats://host:port
(NATS core pub/sub), each run in the same shape right after matchstream in every run: N
subscribers over M channels, payloads as long as matchstream's frame, the same events and flow
control. Ratios are printed per baseline. (Start redis-server with --protected-mode no when
using --source-ips, and raise --maxclients / NATS max_connections above N.)

--runs K repeats the whole measurement K times (fresh matches and channels, same servers) and
prints every run's p50/p95/p99/max and its deliveries later than 100 ms and 1 s, then the
medians: a stalled run stays visible. With --server-pid, each run shows the server's and the
bench's CPU use in the publish window as a share of the machine, and flags IDLE-BUT-SLOW a run
whose p99 is over 1 s while the server used under half of the cores and none of its threads
was saturated (90 % of the window: a single-threaded server at one core is busy, not idle),
or STARVED when the machine had under 10 % idle CPU meanwhile (other processes took it; with
scheduler autogroups, give the measuring session priority: echo -10 > /proc/self/autogroup).

Exit status: 0 when every run delivered everything, in order, at the target rate; 1 when a
run failed (loss, failed subscribers, refused or unanswered publishes, rate below 95 %, a
broken --fail-on criterion, Ctrl-C), the reasons on stderr; 2 when the run could not start
(pre-flight: API, baselines, --server-pid, --source-ips, --json/--hgrm/--csv paths). Ctrl-C
stops where the run is and still writes a partial report; a second Ctrl-C exits at once.";

/// Events per second per match, or as fast as the window allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as the window allows.
    Max,
    /// Events per second per match.
    PerSecond(f64),
}

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        if s == "max" {
            return Ok(Rate::Max);
        }
        match s.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "{s:?}: a positive number of events per second, or max"
            )),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Max => f.write_str("max"),
            Rate::PerSecond(r) => write!(f, "{r}/s per match"),
        }
    }
}

/// Options of `fanout`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The API of the node under test.
    #[arg(long, env = "MATCHSTREAM_URL")]
    pub api: String,

    /// The watcher's bearer token.
    #[arg(long, env = "MATCHSTREAM_TOKEN", hide_env_values = true)]
    pub token: String,

    /// N: subscribers, spread evenly over the matches.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: u64,

    /// M: matches the bench creates and plays.
    #[arg(long, default_value_t = 10)]
    pub matches: u64,

    /// E: measured events per match (a stop follows).
    #[arg(long, default_value_t = 100)]
    pub events: u64,

    /// Unmeasured events per match before the measured ones (same flow control).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warmup: u64,

    /// R: events per second per match (paced, latency from the scheduled time), or `max`
    /// (windowed, see --window).
    #[arg(long, default_value = "10")]
    pub rate: Rate,

    /// W for --rate max: event k goes once every live subscriber of its match has event k-W.
    #[arg(long, value_name = "W", default_value_t = DEFAULT_WINDOW)]
    pub window: u64,

    /// K: repeat the whole measurement K times (fresh matches), then print the medians.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub runs: u32,

    /// C: subscriber connection attempts in flight at once.
    #[arg(long, default_value_t = 512)]
    pub c: u64,

    /// Length of each event's comment in bytes (at least the 22-byte stamp).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub payload: usize,

    /// Publishing connections, pipelined (match m on connection m mod P; default min(M, 32)).
    #[arg(long)]
    pub publishers: Option<usize>,

    /// How matchstream's subscribers receive the events: tcp (stream port, after a
    /// checkin), sse (the match's event stream on the API port), or tcp,sse (both in every
    /// run, compared).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tcp",
        value_name = "tcp|sse|tcp,sse"
    )]
    pub transport: Vec<Transport>,

    /// Connect straight to these stream addresses instead of checking in (host:port,...).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,

    /// With --transport sse: spread the SSE subscribers over these nodes' API addresses
    /// (host:port,...; default: --api alone).
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT,..")]
    pub sse_targets: Vec<String>,

    /// Pid of a server process to sample (RSS, CPU); repeatable for many nodes.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,

    /// Also run the same shape against redis://host:port or nats://host:port; repeatable.
    #[arg(long = "baseline", value_name = "URL")]
    pub baselines: Vec<String>,

    /// Pid of a baseline's server, to sample like --server-pid: the first for the first
    /// --baseline, and so on.
    #[arg(long = "baseline-pid", value_name = "PID")]
    pub baseline_pids: Vec<u32>,

    /// Fail the run unless every matchstream run meets these criteria, e.g.
    /// 'p99<20ms,lost=0,errors<0.1%' (see bench/README.md).
    #[arg(long, value_name = "CRITERIA", value_parser = Criteria::parse)]
    pub fail_on: Option<Criteria>,

    /// Write matchstream's delivery latency (all runs) as an HdrHistogram percentile
    /// distribution to FILE; each baseline's goes beside it as <FILE stem>-<system>.hgrm.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,

    /// Also write every run of every system as CSV to FILE (one line per run).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Keep the matches the bench created (default: deleted after each run).
    #[arg(long)]
    pub keep_matches: bool,

    /// Seconds each system's run may take; subscribers still open then fail as `timeout`.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub timeout: f64,

    /// With the window: seconds without any subscriber progress after which publishing stops.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub stall_timeout: f64,

    /// How connections are spread.
    #[command(flatten)]
    pub spread: Spread,

    /// Report and progress.
    #[command(flatten)]
    pub output: Output,
}

impl Options {
    /// The transports asked for, each once, TCP first (the order they run in).
    pub fn transports(&self) -> Vec<Transport> {
        crate::modes::fanout::transport::normalize(&self.transport)
    }

    /// The flow control these options ask for.
    pub fn flow(&self) -> Flow {
        match self.rate {
            Rate::Max => Flow::Window {
                window: self.window,
            },
            Rate::PerSecond(rate) => Flow::Paced { rate },
        }
    }
}
