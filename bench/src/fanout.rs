//! `fanout`: the benchmark for performance engineers. N subscribers (version 2) spread over
//! M matches that the bench creates, starts and plays as their watcher: E comment events per
//! match under one flow control ([`crate::flow`]: paced at R per second per match, or `max`
//! with a window of W events ahead of the slowest subscriber), then a stop. The same
//! publisher loop ([`crate::pipeline`]) drives matchstream and every baseline
//! (`--baseline redis://..`, `--baseline nats://..`, see [`crate::baseline`]), pipelining its
//! publishes. Every event carries its stamp, so every subscriber in every worker process
//! measures each delivery's latency from the frame alone; per subscriber the v2 seq is
//! tracked to count duplicates and gaps. `--runs K` repeats the whole measurement with fresh
//! matches (see [`crate::runs`] for the tables), and the bench exits non-zero on any loss,
//! failure, refused publish, missed rate or broken `--fail-on` criterion.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use matchstream_client::{match_id, HttpClient};
use matchstream_protocol::frame::{render_event, Version};
use matchstream_protocol::{Event, EventData, EventKind, MatchId, PostedEvent};

use crate::baseline::Baseline;
use crate::cli::{Output, Spread};
use crate::flow::Flow;
use crate::measure::{self, Figures, Shape};
use crate::net::{self, Api};
use crate::plan::{Protocol, Target};
use crate::publish::{self, Sink};
use crate::runs::{self, SystemRuns};
use crate::thresholds::Criteria;
use crate::watcher;
use crate::window::DEFAULT_WINDOW;

/// The long `--help` text.
pub const LONG_ABOUT: &str = "The fanout benchmark, for performance engineers.

N subscribers (--subscribers, protocol version 2, each checking in unless --targets) are spread
evenly over M matches (--matches) that the bench creates with ids unique to the run, starts
and plays as their watcher: --warmup unmeasured events, then E measured comment events per
match (--events), then a stop. The matches are deleted at the end (--keep-matches keeps them).

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
was saturated (90 % of the window: a single-threaded server at one core is busy, not idle).

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

    /// Connect straight to these stream addresses instead of checking in (host:port,...).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,

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

/// The flow control, as the report states it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FlowControl {
    /// `paced` or `window`.
    pub mode: String,
    /// Paced: R, events per second per match.
    pub rate_per_match: Option<f64>,
    /// Window: W.
    pub window: Option<u64>,
    /// Publishing connections (pipelined).
    pub publishers: usize,
    /// The definition, in words.
    pub description: String,
}

/// A server process the run sampled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerProcess {
    /// `matchstream`, `redis` or `nats`.
    pub system: String,
    /// Its pid.
    pub pid: u32,
    /// Its command line (`/proc/PID/cmdline`).
    pub command: Vec<String>,
}

/// The figures of a `fanout` invocation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// N.
    pub subscribers: u64,
    /// M.
    pub matches: u64,
    /// E (measured events per match).
    pub events: u64,
    /// Unmeasured events per match before them.
    pub warmup: u64,
    /// R (`"10/s per match"` or `"max"`).
    pub rate: String,
    /// How publishing was paced, the same for every system.
    pub flow_control: FlowControl,
    /// Bytes of each measured event's v2 frame (the baselines' payload size).
    pub frame_bytes: usize,
    /// K.
    pub runs: u32,
    /// CPUs of the machine.
    pub cores: usize,
    /// The sampled server processes (--server-pid, --baseline-pid) and their command lines
    /// (the server's version and flags, as they ran).
    pub servers: Vec<ServerProcess>,
    /// matchstream first, then each baseline: every run and the medians.
    pub systems: Vec<SystemRuns>,
    /// Why the invocation failed (empty when it passed): the exit status is 1 unless empty.
    pub problems: Vec<String>,
    /// Things worth knowing that do not fail the run (idle-but-slow runs, cleanup).
    pub warnings: Vec<String>,
}

impl Report {
    /// The problems that make the exit status non-zero.
    pub fn problems(&self) -> Vec<String> {
        self.problems.clone()
    }
}

/// Runs `fanout` (and its baselines), `--runs` times.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    if opts.subscribers == 0 || opts.matches == 0 || opts.events == 0 || opts.runs == 0 {
        bail!("--subscribers, --matches, --events and --runs must be at least 1");
    }
    if opts.rate == Rate::Max && opts.window == 0 {
        bail!("--window must be at least 1 (W = 0 would never publish)");
    }
    let api = Api::parse(&opts.api)?;
    let baselines = Baseline::parse_all(&opts.baselines, &opts.baseline_pids)?;
    crate::preflight::fanout(opts, &api, &baselines)?;
    let frame_bytes = frame_size(opts.warmup + opts.events + 1, opts.payload);
    let target = if opts.targets.is_empty() {
        Target::Checkin(api.clone())
    } else {
        Target::Direct(
            opts.targets
                .iter()
                .map(|t| net::parse_target(t))
                .collect::<anyhow::Result<_>>()?,
        )
    };
    let flow = opts.flow();
    let servers = std::iter::once(("matchstream", &opts.server_pids))
        .chain(baselines.iter().map(|b| (b.name(), &b.pids)))
        .flat_map(|(system, pids)| {
            pids.iter().map(move |&pid| ServerProcess {
                system: system.to_owned(),
                pid,
                command: crate::env::redact(crate::sysstat::cmdline(pid)),
            })
        })
        .collect();
    let mut client = HttpClient::for_url(api.url.clone()).with_token(&opts.token);
    let mut all: Vec<Vec<Figures>> = vec![Vec::new(); 1 + baselines.len()];
    let mut warnings = Vec::new();
    let mut interrupted = None;
    for k in 1..=opts.runs {
        if crate::interrupt::requested() {
            break;
        }
        let run = watcher::run_id();
        let ids = create_matches(&mut client, &run, opts.matches)
            .with_context(|| format!("creating the matches of run {k}"))?;
        let channels: Vec<String> = ids.iter().map(MatchId::to_string).collect();
        let m = measure::measure(&Shape {
            opts,
            system: "matchstream",
            run: (k, opts.runs),
            protocol: Protocol::Stream { version: 2 },
            target: target.clone(),
            channels,
            sink: Sink::Matchstream {
                api: api.url.clone(),
                token: opts.token.clone(),
                comment_len: opts.payload,
            },
            publish_addr: api.addr,
            pids: &opts.server_pids,
            user_prefix: format!("b{run}f"),
            flow,
        });
        if !opts.keep_matches {
            if let Err(e) = delete_matches(&mut client, &ids) {
                warnings.push(format!("run {k}: deleting its matches: {e:#}"));
            }
        }
        all[0].push(m?);
        for (i, b) in baselines.iter().enumerate() {
            if crate::interrupt::requested() {
                break;
            }
            let f = measure::measure(&Shape {
                opts,
                system: b.name(),
                run: (k, opts.runs),
                protocol: b.protocol(),
                target: Target::Direct(vec![b.addr]),
                channels: b.channels(&run, opts.matches),
                sink: b.sink(frame_bytes),
                publish_addr: b.addr,
                pids: &b.pids,
                user_prefix: String::new(),
                flow,
            })
            .with_context(|| format!("the {} baseline, run {k}", b.name()))?;
            all[1 + i].push(f);
        }
        if crate::interrupt::requested() {
            interrupted = Some(k);
        }
    }
    // Systems without a single run (interrupted before theirs) are left out.
    let keep = all.iter().take_while(|r| !r.is_empty()).count().max(1);
    all.truncate(keep);
    let targets = std::iter::once(api.url.to_string())
        .chain(baselines.iter().map(|b| b.url.clone()))
        .collect::<Vec<_>>();
    let systems: Vec<SystemRuns> = all
        .into_iter()
        .zip(targets)
        .map(|(runs, target)| SystemRuns::new(runs, target))
        .collect();
    let mut problems: Vec<String> = interrupted
        .map(|k| {
            format!(
                "interrupted (Ctrl-C) in run {k} of {}: this report is partial",
                opts.runs
            )
        })
        .into_iter()
        .collect();
    problems.extend(
        systems
            .iter()
            .flat_map(|s| s.runs.iter().flat_map(Figures::problems)),
    );
    if let Some(criteria) = &opts.fail_on {
        for f in &systems[0].runs {
            problems.extend(criteria.check(f));
        }
    }
    for s in &systems {
        for f in &s.runs {
            warnings.extend(f.warnings());
            if f.idle_but_slow {
                warnings.push(runs::idle_but_slow_line(f));
            }
        }
    }
    if let Some(path) = &opts.hgrm {
        write_hgrms(path, &systems)?;
    }
    let report = Report {
        subscribers: opts.subscribers,
        matches: opts.matches,
        events: opts.events,
        warmup: opts.warmup,
        rate: opts.rate.to_string(),
        flow_control: FlowControl {
            mode: flow.mode().to_owned(),
            rate_per_match: match flow {
                Flow::Paced { rate } => Some(rate),
                Flow::Window { .. } => None,
            },
            window: match flow {
                Flow::Window { window } => Some(window),
                Flow::Paced { .. } => None,
            },
            publishers: opts
                .publishers
                .unwrap_or(32)
                .clamp(1, opts.matches.max(1) as usize),
            description: flow.describe(),
        },
        frame_bytes,
        runs: opts.runs,
        cores: crate::sysstat::cores(),
        servers,
        systems,
        problems,
        warnings,
    };
    if let Some(path) = &opts.csv {
        std::fs::write(path, report.csv())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// Creates and starts `count` matches with ids unique to `run`.
fn create_matches(client: &mut HttpClient, run: &str, count: u64) -> anyhow::Result<Vec<MatchId>> {
    let home = watcher::team(&format!("b{run}"))?;
    let start_date = matchstream_protocol::Date::parse(watcher::DATE).context("date")?;
    let mut ids = Vec::new();
    for i in 0..count {
        let m = matchstream_protocol::NewMatch {
            home: home.clone(),
            visit: watcher::team(&format!("m{i}"))?,
            start_date,
            stadium: None,
            home_players: Vec::new(),
            visit_players: Vec::new(),
        };
        let id = client
            .create_match(&m)?
            .with_context(|| format!("creating the match {}: it exists already", match_id(&m)))?;
        client.post_event(&id, &PostedEvent::new(EventKind::Start))?;
        ids.push(id);
    }
    Ok(ids)
}

/// `DELETE /1/match/<id>` for each (so `/1/matches` does not grow run after run).
fn delete_matches(client: &mut HttpClient, ids: &[MatchId]) -> anyhow::Result<()> {
    for id in ids {
        client.cancel_match(id)?;
    }
    Ok(())
}

fn write_hgrms(path: &std::path::Path, systems: &[SystemRuns]) -> anyhow::Result<()> {
    for (i, s) in systems.iter().enumerate() {
        let file = if i == 0 {
            path.to_path_buf()
        } else {
            let stem = path
                .file_stem()
                .map_or("latency".into(), |s| s.to_string_lossy());
            path.with_file_name(format!("{stem}-{}.hgrm", s.system))
        };
        std::fs::write(&file, s.merged().hgrm())
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// Bytes of the v2 frame of a measured event with seq `seq` and a comment of `len` bytes.
pub fn frame_size(seq: u64, len: usize) -> usize {
    let Ok(match_id) = MatchId::parse("a-b-2011-09-13") else {
        return 0;
    };
    let event = Event {
        match_id,
        seq,
        timestamp_ms: 1_700_000_000_000,
        kind: EventKind::Comment,
        data: EventData {
            comment: Some(publish::comment(1_700_000_000_000_000_000, len)),
            ..EventData::default()
        },
    };
    let mut out = Vec::new();
    render_event(&event, Version::V2, &mut out);
    out.len()
}

/// The reply timeout of publishing connections.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
