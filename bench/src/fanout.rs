//! `fanout`: the benchmark for performance engineers. N subscribers (version 2) spread over
//! M matches that the bench creates, starts and plays as their watcher: E comment events per
//! match at R per second per match (or as fast as the server answers), then a stop. Every
//! event carries its POST time, so every subscriber in every worker process measures each
//! delivery's latency from the frame alone. Per subscriber the v2 seq is tracked to count
//! duplicates and gaps. With `--server-pid`, the server's RSS before and after the
//! subscribers connected (bytes per subscriber) and its CPU time while publishing (seconds
//! per million deliveries). With `--baseline redis://..`, the same shape against Redis
//! pub/sub in the same invocation (see [`crate::baseline`]).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use matchstream_protocol::frame::{render_event, Version};
use matchstream_protocol::{Event, EventData, EventKind, MatchId, PostedEvent};

use crate::api::ApiClient;
use crate::baseline;
use crate::cli::{Output, Spread};
use crate::httpc::Url;
use crate::latency::Summary;
use crate::plan::{Plan, Protocol, Target};
use crate::progress::{self, Live, Progress};
use crate::publish::{self, Published, Publisher, Sink};
use crate::report::{self, BenchCost, Table};
use crate::requests::{self, Codec};
use crate::shards::Shards;
use crate::sysstat::{self, ServerSample};
use crate::watcher;

/// The long `--help` text.
pub const LONG_ABOUT: &str = "The fanout benchmark, for performance engineers.

N subscribers (--subscribers, protocol version 2, each checking in unless --targets) are spread
evenly over M matches (--matches) that the bench creates with ids unique to the run, starts
and plays as their watcher: E comment events per match (--events) at R events per second per
match (--rate, or max: as fast as the server answers, one POST in flight per publishing
connection), then a stop. Each event's comment carries the time its POST was sent, so every
subscriber measures each delivery's latency from the frame alone, in any worker process.

Reported: connected, expected deliveries (connected x E), delivered, lost, duplicated and out
of order (per-subscriber seq tracking), deliveries/s, latency percentiles; with --server-pid,
the server's bytes per subscriber and CPU seconds per million deliveries. --baseline
redis://host:port runs the same shape against Redis pub/sub and prints both side by side with
their ratio (start that redis-server with --protected-mode no when using --source-ips).";

/// Events per second per match, or as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as the answers come.
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

    /// R: events per second per match, or `max`.
    #[arg(long, default_value = "10")]
    pub rate: Rate,

    /// C: subscriber connection attempts in flight at once.
    #[arg(long, default_value_t = 512)]
    pub c: u64,

    /// Length of each event's comment in bytes (at least the 22-byte stamp).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub payload: usize,

    /// Publishing connections (each with one POST in flight; default: min(M, 32)).
    #[arg(long)]
    pub publishers: Option<usize>,

    /// Connect straight to these stream addresses instead of checking in (host:port,...).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,

    /// Pid of a server process to sample (RSS, CPU); repeatable for many nodes.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,

    /// Also run the same shape against Redis pub/sub at this address (redis://host:port).
    #[arg(long, value_name = "URL")]
    pub baseline: Option<String>,

    /// Pid of the baseline's redis-server, to sample like --server-pid.
    #[arg(long = "baseline-pid", value_name = "PID")]
    pub baseline_pids: Vec<u32>,

    /// Seconds each system's run may take; subscribers still open then fail as `timeout`.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub timeout: f64,

    /// How connections are spread.
    #[command(flatten)]
    pub spread: Spread,

    /// Report and progress.
    #[command(flatten)]
    pub output: Output,
}

/// Server-side figures from `--server-pid`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ServerFigures {
    /// The pids sampled.
    pub pids: Vec<u32>,
    /// RSS before the subscribers connected, bytes.
    pub rss_before: u64,
    /// RSS once they had connected, bytes.
    pub rss_connected: u64,
    /// `(rss_connected - rss_before) / connected`.
    pub bytes_per_subscriber: f64,
    /// CPU seconds spent while the subscribers connected.
    pub cpu_seconds_connecting: f64,
    /// CPU seconds spent from the first POST until the subscribers were done.
    pub cpu_seconds_publishing: f64,
    /// `cpu_seconds_publishing` per million deliveries.
    pub cpu_seconds_per_million_deliveries: f64,
}

/// The figures of one system (matchstream, or the Redis baseline).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    /// `matchstream` or `redis`.
    pub system: String,
    /// Subscribers that got their status (Redis: their subscribe confirmation).
    pub connected: u64,
    /// Subscribers that failed.
    pub failed: u64,
    /// Failures by kind.
    pub failures: crate::outcome::FailureCounts,
    /// `ERROR:` lines by reason.
    pub error_lines: std::collections::BTreeMap<String, u64>,
    /// Framing (or RESP) violations by description.
    pub framing: std::collections::BTreeMap<String, u64>,
    /// `connected × E`.
    pub expected: u64,
    /// Measured deliveries received.
    pub delivered: u64,
    /// `expected − (delivered − duplicated)`.
    pub lost: u64,
    /// Frames whose seq was not above the last one the subscriber had seen.
    pub duplicated: u64,
    /// Frames whose seq skipped ahead of the next expected one.
    pub out_of_order: u64,
    /// Deliveries per second, first POST to last delivery.
    pub deliveries_per_second: f64,
    /// POST (or PUBLISH) to complete frame at the subscriber.
    pub latency: Summary,
    /// Time to status of the subscribers.
    pub time_to_status: Summary,
    /// Seconds the subscribers took to connect.
    pub connect_seconds: f64,
    /// The publisher's side.
    pub publish: Published,
    /// With --server-pid / --baseline-pid.
    pub server: Option<ServerFigures>,
    /// The bench's own cost for this system's run.
    pub bench: BenchCost,
}

/// The figures of a `fanout` run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// N.
    pub subscribers: u64,
    /// M.
    pub matches: u64,
    /// E.
    pub events: u64,
    /// R.
    pub rate: String,
    /// Bytes of each measured event's v2 frame (the Redis payload size).
    pub frame_bytes: usize,
    /// matchstream's figures.
    pub matchstream: Figures,
    /// The Redis baseline's, with --baseline.
    pub baseline: Option<Figures>,
}

/// One system's run, resolved.
pub(crate) struct Shape<'a> {
    pub opts: &'a Options,
    pub system: &'static str,
    pub protocol: Protocol,
    pub target: Target,
    pub channels: Vec<String>,
    pub sink: Sink,
    pub codec: Codec,
    pub publish_addr: std::net::SocketAddr,
    pub pids: &'a [u32],
    pub user_prefix: String,
}

/// Runs `fanout` (and its baseline).
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    if opts.subscribers == 0 || opts.matches == 0 || opts.events == 0 {
        bail!("--subscribers, --matches and --events must be at least 1");
    }
    let api = Url::parse(&opts.api)?;
    let run = watcher::run_id();
    let comment_len = opts.payload;
    let frame_bytes = frame_size(opts.events + 1, comment_len);
    let mut client = ApiClient::new(&api, Some(&opts.token));
    let mut ids = Vec::new();
    let home = watcher::team(&format!("b{run}"))?;
    let start_date = matchstream_protocol::Date::parse(watcher::DATE).context("date")?;
    for i in 0..opts.matches {
        let m = matchstream_protocol::NewMatch {
            home: home.clone(),
            visit: watcher::team(&format!("m{i}"))?,
            start_date,
            stadium: None,
            home_players: Vec::new(),
            visit_players: Vec::new(),
        };
        let id = client.create_match(&m)?;
        client.post_event(&id, &PostedEvent::new(EventKind::Start))?;
        ids.push(id);
    }
    let target = if opts.targets.is_empty() {
        Target::Checkin(api.clone())
    } else {
        Target::Direct(
            opts.targets
                .iter()
                .map(|t| crate::clients::parse_target(t))
                .collect::<anyhow::Result<_>>()?,
        )
    };
    let matchstream = measure(&Shape {
        opts,
        system: "matchstream",
        protocol: Protocol::Stream { version: 2 },
        target,
        channels: ids,
        sink: Sink::Matchstream {
            api: api.clone(),
            token: opts.token.clone(),
        },
        codec: Codec::Http,
        publish_addr: api.addr,
        pids: &opts.server_pids,
        user_prefix: format!("b{run}f"),
    })?;
    let baseline = match &opts.baseline {
        Some(url) => Some(baseline::run(opts, url, &run, frame_bytes)?),
        None => None,
    };
    Ok(Report {
        subscribers: opts.subscribers,
        matches: opts.matches,
        events: opts.events,
        rate: opts.rate.to_string(),
        frame_bytes,
        matchstream,
        baseline,
    })
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

/// Connects the subscribers, publishes, waits for the deliveries, and measures.
pub(crate) fn measure(shape: &Shape<'_>) -> anyhow::Result<Figures> {
    let opts = shape.opts;
    let cpu_start = sysstat::own_cpu_seconds();
    let started = Instant::now();
    let time_limit = Duration::from_secs_f64(opts.timeout.max(1.0));
    let limit = started + time_limit;
    let before = sysstat::sample_servers(shape.pids);
    let plan = Plan {
        protocol: shape.protocol,
        target: shape.target.clone(),
        channels: shape.channels.clone(),
        user_prefix: shape.user_prefix.clone(),
        first: 0,
        count: opts.subscribers,
        concurrency: opts.c.max(1),
        connect_timeout_ms: opts.spread.connect_timeout_ms(),
        time_limit_ms: time_limit.as_millis() as u64,
        source_ips: opts.spread.source_ips.clone(),
    };
    let mut shards = Shards::start(&plan, opts.spread.workers)?;
    let lives = shards.lives();
    let (n, system) = (opts.subscribers, shape.system);
    let expected_per = opts.events;
    let progress = Progress::start(opts.output.mode(), move |t| {
        let s = Live::sum(&lives);
        format!(
            "{system} {}: connected {}/{n}, failed {}, delivered {}/{}, open {}",
            progress::secs(t),
            s.connected,
            s.failed,
            s.delivered,
            s.connected * expected_per,
            s.open
        )
    });
    shards.wait_ready(limit);
    let connect_seconds = started.elapsed().as_secs_f64();
    let connected_sample = sysstat::sample_servers(shape.pids);
    let mut publisher = Publisher::new(
        shape.sink.clone(),
        &shape.channels,
        opts.events,
        match opts.rate {
            Rate::Max => None,
            Rate::PerSecond(r) => Some(r),
        },
        opts.publishers.unwrap_or(32),
        opts.payload,
    );
    let publish_opts = requests::Options {
        addr: shape.publish_addr,
        slots: publisher.slots(),
        keep_alive: true,
        codec: shape.codec,
        request_timeout: Duration::from_secs(10),
        time_limit: limit.saturating_duration_since(Instant::now()),
        source_ips: None,
    };
    let publish_start_ns = crate::subscribe::realtime_ns();
    publisher.begin();
    let published = requests::run(&publish_opts, &mut publisher);
    let (shard_count, processes) = shards.describe();
    let outcome = shards.finish(limit);
    progress.finish();
    let after = sysstat::sample_servers(shape.pids);
    published?;
    let o = outcome?;
    let published = publisher.finish();
    let expected = o.connected * opts.events;
    let span_ns = o.last_delivery_ns.saturating_sub(publish_start_ns);
    Ok(Figures {
        system: shape.system.to_owned(),
        connected: o.connected,
        failed: o.failed,
        failures: o.failures.clone(),
        error_lines: o.error_lines.clone(),
        framing: o.framing.clone(),
        expected,
        delivered: o.delivered,
        lost: expected.saturating_sub(o.delivered.saturating_sub(o.duplicated)),
        duplicated: o.duplicated,
        out_of_order: o.out_of_order,
        deliveries_per_second: if span_ns > 0 {
            o.delivered as f64 / (span_ns as f64 / 1e9)
        } else {
            0.0
        },
        latency: o.delivery.summary(),
        time_to_status: o.status.summary(),
        connect_seconds,
        publish: published,
        server: server_figures(shape.pids, before, connected_sample, after, &o),
        bench: BenchCost {
            cpu_seconds: sysstat::own_cpu_seconds() - cpu_start,
            shards: shard_count,
            worker_processes: processes,
            rss_bytes_per_connection: crate::clients::rss_per_connection(&o),
        },
    })
}

fn server_figures(
    pids: &[u32],
    before: ServerSample,
    connected: ServerSample,
    after: ServerSample,
    o: &crate::plan::Outcome,
) -> Option<ServerFigures> {
    if pids.is_empty() {
        return None;
    }
    let publishing = after.cpu_seconds - connected.cpu_seconds;
    Some(ServerFigures {
        pids: pids.to_vec(),
        rss_before: before.rss_bytes,
        rss_connected: connected.rss_bytes,
        bytes_per_subscriber: if o.connected > 0 {
            connected.rss_bytes.saturating_sub(before.rss_bytes) as f64 / o.connected as f64
        } else {
            0.0
        },
        cpu_seconds_connecting: connected.cpu_seconds - before.cpu_seconds,
        cpu_seconds_publishing: publishing,
        cpu_seconds_per_million_deliveries: if o.delivered > 0 {
            publishing * 1e6 / o.delivered as f64
        } else {
            0.0
        },
    })
}

impl Report {
    /// The table printed at the end: one column per system, and their ratio.
    pub fn table(&self) -> String {
        let systems: Vec<&Figures> = std::iter::once(&self.matchstream)
            .chain(self.baseline.as_ref())
            .collect();
        let mut header = vec!["fanout".to_owned()];
        header.extend(systems.iter().map(|f| f.system.clone()));
        if systems.len() == 2 {
            header.push("ratio".into());
        }
        let mut t = Table::new(header);
        for row in baseline::rows(&systems) {
            t.row(row);
        }
        let mut out = format!(
            "fanout: N={} subscribers over M={} matches, E={} events each at {}, \
             frame {} B\n\n",
            self.subscribers, self.matches, self.events, self.rate, self.frame_bytes
        );
        out.push_str(&t.render());
        for f in &systems {
            out.push_str(&format!(
                "{} failures: {}; publish refused: {}, errors: {}; bench cost: {}\n",
                f.system,
                report::counts(&f.failures),
                report::counts(&f.publish.refused),
                report::counts(&f.publish.errors),
                report::cost_line(&f.bench)
            ));
        }
        out
    }
}
