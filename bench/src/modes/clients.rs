//! `clients`: the user simulator at scale (the original's fake_client). N clients each check
//! in (or take a fixed target), connect, send their command, check the framing of everything
//! they receive, and succeed when the server hangs up after a complete `stop` (or right after
//! the status of a match that is not live). At most C connection attempts are in flight.
//!
//! With `--play`, the bench is also the match's watcher: it creates a match with a unique id,
//! posts the script up to `start` before the clients connect, and plays the rest once every
//! client has its status (or has failed), so that every client sees the whole match.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use matchstream_client::player::load_script;
use matchstream_client::HttpClient;
use matchstream_protocol::script::Step;
use matchstream_protocol::MatchId;

use crate::figures::latency::Summary;
use crate::figures::progress::{self, Live, Mode, Progress};
use crate::figures::report::{self, BenchCost, Table};
use crate::figures::sysstat;
use crate::net::{self, Api, SourceIps};
use crate::options::{Output, Spread};
use crate::subscribers::outcome::FailureCounts;
use crate::subscribers::plan::{Outcome, Plan, Target};
use crate::subscribers::shards::Shards;
use crate::watcher::{self, Played};
use crate::wire::decode::Protocol;

/// The long `--help` text.
pub const LONG_ABOUT: &str = "The user simulator at scale (the original's fake_client).

N is the number of users: each simulated client checks in (GET /1/checkin, with --api) or
takes the next --targets address, connects, sends VERSION:<v>:CONNECT:<user>:MATCH:<id>,
checks the framing of every frame, and succeeds when the server hangs up after a complete
stop frame (or right after the status of a match that is not live).

C is the number of concurrent attempts: at most C clients are between their first connect
and their status frame at once. Connected clients stay connected (they count towards N, not
C) until the match ends.

Stage 1 of the seed: a handful of clients beside a person watching with nc:
  matchstream-bench clients --api http://127.0.0.1:8888 --token T --play sample --n 5";

/// Options of `clients`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The API: each client checks in there (GET /1/checkin) before connecting.
    #[arg(long, env = "MATCHSTREAM_URL")]
    pub api: Option<String>,

    /// Connect straight to these stream addresses instead of checking in (host:port,...).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,

    /// The match to watch (someone else plays it, e.g. `matchstream replay`).
    #[arg(long = "match", value_name = "ID", conflicts_with = "play")]
    pub match_id: Option<String>,

    /// Create a match and play this script (`sample` or a file) as its watcher: up to
    /// `start` before the clients connect, the rest once every client has its status.
    #[arg(long, value_name = "SCRIPT")]
    pub play: Option<String>,

    /// The watcher's bearer token (with --play).
    #[arg(long, env = "MATCHSTREAM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Speed factor of the played script's sleeps (0 = no sleeps).
    #[arg(long, default_value_t = 20.0)]
    pub speed: f64,

    /// N: clients (users) to simulate.
    #[arg(long, default_value_t = 1)]
    pub n: u64,

    /// C: connection attempts in flight at once (default: N).
    #[arg(long)]
    pub c: Option<u64>,

    /// Stream protocol version (1 = the original's).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub version: u8,

    /// Seconds the whole run may take; clients still open then fail as `timeout`.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub timeout: f64,

    /// How connections are spread.
    #[command(flatten)]
    pub spread: Spread,

    /// Report and progress.
    #[command(flatten)]
    pub output: Output,
}

/// The figures of a `clients` run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// N.
    pub n: u64,
    /// C.
    pub c: u64,
    /// Protocol version.
    pub version: u8,
    /// The match watched.
    pub match_id: String,
    /// `checkin <url>` or the target addresses.
    pub target: String,
    /// Clients that watched the match to its end.
    pub ok: u64,
    /// Clients that failed.
    pub failed: u64,
    /// Clients whose status frame arrived.
    pub connected: u64,
    /// `ok / n`, in percent.
    pub success_percent: f64,
    /// Failures by kind (`connect_refused`, `closed_early`, ...).
    pub failures: FailureCounts,
    /// `ERROR:` lines by reason.
    pub error_lines: std::collections::BTreeMap<String, u64>,
    /// Framing violations by description.
    pub framing: std::collections::BTreeMap<String, u64>,
    /// Checkin round trip (with --api).
    pub checkin: Option<Summary>,
    /// Connect latency: connect call to established.
    pub connect: Summary,
    /// Time to status: connect call to the complete status frame.
    pub time_to_status: Summary,
    /// Seconds until every attempt had ended (all connected or failed).
    pub connect_phase_seconds: f64,
    /// Clients connected per second during that phase.
    pub connects_per_second: f64,
    /// Seconds of the whole run.
    pub seconds: f64,
    /// What the bench played, with --play.
    pub played: Option<Played>,
    /// Why playing failed, if it did.
    pub play_error: Option<String>,
    /// The bench's own cost.
    pub bench: BenchCost,
    /// Growth of the kernel's TCP socket memory (`/proc/net/sockstat`, `TCP: ... mem` pages
    /// × page size) over the connect phase, per connected client, in bytes. Machine-wide:
    /// over loopback it holds both ends of each connection (the server's and the client's),
    /// plus whatever other sockets of the host did meanwhile. Null when unknown (no
    /// sockstat, no client connected).
    #[serde(default)]
    pub kernel_socket_bytes_per_connection: Option<f64>,
    /// Growth of the kernel's slab memory (`/proc/meminfo`, `Slab:` kB × 1024) over the
    /// connect phase, per connected client, in bytes: what a connection costs the kernel
    /// outside `tcp_mem` (`struct sock`, inode, dentry, file, epoll items), which an idle
    /// socket's near-zero buffers above do not show. Machine-wide: with a loopback target
    /// both ends of each connection are on this host, so it holds both (the server's and
    /// the client's), plus whatever else of the host grew or shrank meanwhile. Null when
    /// unknown (no meminfo, no client connected) or when the slab shrank.
    #[serde(default)]
    pub kernel_slab_bytes_per_connection: Option<f64>,
}

/// A resolved `clients` run (also used by `ramp`).
#[derive(Debug)]
pub struct Setup {
    /// Where to connect.
    pub target: Target,
    /// The match.
    pub match_id: String,
    /// N.
    pub n: u64,
    /// C.
    pub c: u64,
    /// 1 or 2.
    pub version: u8,
    /// Bound of the run.
    pub time_limit: Duration,
    /// Bound of one connect.
    pub connect_timeout_ms: u64,
    /// Source addresses.
    pub source_ips: Option<SourceIps>,
    /// Worker processes (0 = as needed).
    pub workers: usize,
    /// Progress output.
    pub mode: Mode,
    /// Progress label.
    pub label: String,
    /// User ids are `<user_prefix><i>`.
    pub user_prefix: String,
    /// What to play once the clients are connected.
    pub play: Option<Play>,
}

/// The rest of a match to play as its watcher.
#[derive(Debug)]
pub struct Play {
    /// The API client (with the token).
    pub api: HttpClient,
    /// The match (created by the bench).
    pub id: MatchId,
    /// Steps after `start`.
    pub steps: Vec<Step>,
    /// Speed factor.
    pub speed: f64,
}

/// Runs `clients` from its command-line options.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    if opts.n == 0 {
        bail!("--n must be at least 1");
    }
    let api = opts.api.as_deref().map(Api::parse).transpose()?;
    let target = match (&api, opts.targets.is_empty()) {
        (_, false) => Target::Direct(
            opts.targets
                .iter()
                .map(|t| net::parse_target(t))
                .collect::<anyhow::Result<_>>()?,
        ),
        (Some(url), true) => Target::Checkin(url.clone()),
        (None, true) => bail!("give --api URL (clients check in) or --targets host:port,..."),
    };
    let run = watcher::run_id();
    let (match_id, play) = match (&opts.match_id, &opts.play) {
        (Some(id), None) => (id.clone(), None),
        (None, Some(script)) => {
            let api = api.as_ref().context("--play needs --api")?;
            let token = opts.token.as_deref().context("--play needs --token")?;
            let mut client = HttpClient::for_url(api.url.clone()).with_token(token);
            let script = load_script(script)?;
            let renamed = watcher::rename(
                &script,
                &watcher::team(&format!("b{run}"))?,
                &watcher::team("clients")?,
            )?;
            let prepared = watcher::prepare(&mut client, &renamed)?;
            let play = Play {
                api: client,
                id: prepared.id.clone(),
                steps: prepared.rest,
                speed: opts.speed,
            };
            (prepared.id.to_string(), Some(play))
        }
        _ => bail!("give --match ID (a match someone plays) or --play SCRIPT (the bench plays)"),
    };
    let created = play.as_ref().map(|p| p.id.clone());
    let report = execute(Setup {
        target,
        match_id,
        n: opts.n,
        c: opts.c.unwrap_or(opts.n).max(1),
        version: opts.version,
        time_limit: Duration::from_secs_f64(opts.timeout.max(0.1)),
        connect_timeout_ms: opts.spread.connect_timeout_ms(),
        source_ips: opts.spread.source_ips.clone(),
        workers: opts.spread.workers,
        mode: opts.output.mode(),
        label: "clients".into(),
        user_prefix: format!("b{run}u"),
        play,
    })?;
    // The match the bench created (--play) is deleted once played, so runs do not pile up
    // matches on the server (best effort).
    if let (Some(id), Some(api), Some(token)) = (created, &api, &opts.token) {
        let _ = HttpClient::for_url(api.url.clone())
            .with_token(token)
            .cancel_match(&id);
    }
    Ok(report)
}

/// Runs a resolved `clients` run.
pub fn execute(mut setup: Setup) -> anyhow::Result<Report> {
    let cpu_start = crate::figures::sysstat::own_cpu_seconds();
    let started = Instant::now();
    let limit = started + setup.time_limit;
    let socket_memory_before = sysstat::tcp_socket_memory_bytes();
    let slab_before = sysstat::slab_bytes();
    let plan = Plan {
        protocol: Protocol::Stream {
            version: setup.version,
        },
        target: setup.target.clone(),
        channels: vec![setup.match_id.clone()],
        user_prefix: setup.user_prefix.clone(),
        first: 0,
        count: setup.n,
        concurrency: setup.c,
        connect_timeout_ms: setup.connect_timeout_ms,
        time_limit_ms: setup.time_limit.as_millis() as u64,
        source_ips: setup.source_ips.clone(),
        resume: None,
    };
    let mut shards = Shards::start(&plan, setup.workers)?;
    let lives = shards.lives();
    let (n, label) = (setup.n, setup.label.clone());
    let progress = Progress::start(setup.mode, move |t| {
        let s = Live::sum(&lives);
        format!(
            "{label} {}: started {}/{n}, connected {}, ok {}, failed {}, open {}",
            progress::secs(t),
            s.started,
            s.connected,
            s.ok,
            s.failed,
            s.open
        )
    });
    shards.wait_ready(limit);
    let connect_phase = started.elapsed().as_secs_f64();
    let socket_memory = Growth {
        before: socket_memory_before,
        after: sysstat::tcp_socket_memory_bytes(),
    };
    let slab = Growth {
        before: slab_before,
        after: sysstat::slab_bytes(),
    };
    let (mut played, mut play_error) = (None, None);
    if let Some(play) = &mut setup.play {
        match watcher::play(&mut play.api, &play.id, &play.steps, play.speed) {
            Ok(p) => played = Some(p),
            Err(e) => {
                play_error = Some(format!("{e:#}"));
                shards.abort();
            }
        }
    }
    let (shard_count, processes) = shards.describe();
    let outcome = shards.finish(limit);
    let seconds = started.elapsed().as_secs_f64();
    progress.finish();
    let outcome = outcome?;
    let bench = BenchCost {
        cpu_seconds: crate::figures::sysstat::own_cpu_seconds() - cpu_start,
        shards: shard_count,
        worker_processes: processes,
        rss_bytes_per_connection: outcome.rss_per_connection(),
    };
    let mut report = report_of(
        &setup,
        outcome,
        connect_phase,
        seconds,
        played,
        play_error,
        bench,
    );
    report.kernel_socket_bytes_per_connection = socket_memory.per(report.connected);
    // A shrunk slab (the kernel reclaimed caches meanwhile) says nothing about connections.
    report.kernel_slab_bytes_per_connection = slab.per(report.connected).filter(|b| *b >= 0.0);
    Ok(report)
}

/// A machine-wide figure before and after the connect phase.
#[derive(Debug, Clone, Copy)]
struct Growth {
    before: Option<u64>,
    after: Option<u64>,
}

impl Growth {
    /// The growth per connection (`None` when either end is unknown or nobody connected).
    fn per(self, connected: u64) -> Option<f64> {
        let (before, after) = (self.before?, self.after?);
        (connected > 0).then(|| (after as f64 - before as f64) / connected as f64)
    }
}

fn report_of(
    setup: &Setup,
    o: Outcome,
    connect_phase: f64,
    seconds: f64,
    played: Option<Played>,
    play_error: Option<String>,
    bench: BenchCost,
) -> Report {
    Report {
        n: setup.n,
        c: setup.c,
        version: setup.version,
        match_id: setup.match_id.clone(),
        target: setup.target.describe(),
        ok: o.ok,
        failed: o.failed,
        connected: o.connected,
        success_percent: report::percent(o.ok, setup.n),
        failures: o.failures,
        error_lines: o.error_lines,
        framing: o.framing,
        checkin: (o.checkin.count() > 0).then(|| o.checkin.summary()),
        connect: o.connect.summary(),
        time_to_status: o.status.summary(),
        connect_phase_seconds: connect_phase,
        connects_per_second: if connect_phase > 0.0 {
            o.connected as f64 / connect_phase
        } else {
            0.0
        },
        seconds,
        played,
        play_error,
        bench,
        kernel_socket_bytes_per_connection: None,
        kernel_slab_bytes_per_connection: None,
    }
}

impl Report {
    /// Why the run failed (empty when every client watched the match to its end).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.failed > 0 {
            out.push(format!(
                "{} of {} clients failed ({})",
                self.failed,
                self.n,
                report::counts(&self.failures)
            ));
        }
        if let Some(e) = &self.play_error {
            out.push(format!("playing the match failed: {e}"));
        }
        out
    }

    /// The table printed at the end of the run.
    pub fn table(&self) -> String {
        let mut t = Table::kv("clients");
        t.row(["match".into(), self.match_id.clone()]);
        t.row(["target".into(), self.target.clone()]);
        t.row([
            "N / C / version".into(),
            format!("{} / {} / {}", self.n, self.c, self.version),
        ]);
        t.row([
            "ok".into(),
            format!("{} ({:.2}%)", self.ok, self.success_percent),
        ]);
        t.row(["failed".into(), self.failed.to_string()]);
        t.row(["failed by reason".into(), report::counts(&self.failures)]);
        if !self.error_lines.is_empty() {
            t.row(["error lines".into(), report::counts(&self.error_lines)]);
        }
        if !self.framing.is_empty() {
            t.row(["framing errors".into(), report::counts(&self.framing)]);
        }
        if let Some(c) = &self.checkin {
            report::latency_rows(&mut t, "checkin", c);
        }
        report::latency_rows(&mut t, "connect", &self.connect);
        report::latency_rows(&mut t, "time to status", &self.time_to_status);
        t.row([
            "connect phase".into(),
            format!(
                "{:.2} s, {:.0} connects/s",
                self.connect_phase_seconds, self.connects_per_second
            ),
        ]);
        if let Some(p) = &self.played {
            t.row([
                "played".into(),
                format!("{} events in {:.2} s", p.events, p.seconds),
            ]);
        }
        if let Some(e) = &self.play_error {
            t.row(["play error".into(), e.clone()]);
        }
        if let Some(b) = self.kernel_socket_bytes_per_connection {
            t.row([
                "kernel socket memory".into(),
                format!("{b:.0} B per connection (TCP mem of /proc/net/sockstat over the connect phase, machine-wide)"),
            ]);
        }
        if let Some(b) = self.kernel_slab_bytes_per_connection {
            t.row([
                "kernel slab memory".into(),
                format!("{b:.0} B per connection (Slab of /proc/meminfo over the connect phase, machine-wide: both ends on loopback)"),
            ]);
        }
        t.row(["run".into(), format!("{:.2} s", self.seconds)]);
        t.row(["bench cost".into(), report::cost_line(&self.bench)]);
        t.row([
            "closed loop".to_owned(),
            "at most C attempts at once: a slow server slows the arrivals it is offered".to_owned(),
        ]);
        t.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_memory_growth_is_per_connected_client() {
        let g = |before, after| Growth { before, after };
        assert_eq!(g(Some(40_960), Some(450_560)).per(100), Some(4096.0));
        assert_eq!(g(Some(8192), Some(4096)).per(2), Some(-2048.0));
        assert_eq!(g(Some(0), Some(4096)).per(0), None);
        assert_eq!(g(None, Some(4096)).per(1), None);
        assert_eq!(g(Some(4096), None).per(1), None);
    }
}
