//! `ramp`: the seed's stage 2, "finding the boundaries". N starts at `--start` and doubles up
//! to `--max`; C grows with it (`min(N, --max-c)`). Each step runs the HTTP test alone, the
//! clients alone (watching a match the bench plays), then both together, and records the
//! kernel's TCP counters around each phase. The ramp stops at the first step with any failure
//! and names it, with the counters that explain it (a failure with rising ListenOverflows is
//! an accept queue overflow). Report: a table per step, JSON, and an SVG chart of N against
//! success rate, connect latency p99 and HTTP latency p99.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use matchstream_client::player::load_script;
use matchstream_client::HttpClient;
use matchstream_protocol::script::Script;

use crate::figures::chart::{self, Axis, Chart, Series};
use crate::figures::progress::Mode;
use crate::figures::report::{self, BenchCost, Table};
use crate::figures::sysstat;
use crate::modes::clients::{self, Play};
use crate::modes::http;
use crate::net::Api;
use crate::options::{Output, Spread};
use crate::subscribers::plan::Target;
use crate::watcher;

pub mod diagnose;

/// The long `--help` text.
pub const LONG_ABOUT: &str = "The seed's stage 2: finding the boundaries.

N (users) starts at --start and doubles up to --max; C (concurrent attempts: connection
attempts in flight for the clients, requests in flight for HTTP) grows with it as
min(N, --max-c). Each step runs the HTTP test alone (N requests over C connections), N
clients alone (watching a match the bench creates and plays once they are connected), then
both together. The ramp stops at the first step with any failure and names it, with the
kernel's TCP counters of that step (ListenOverflows, ListenDrops, TCP memory pressure).";

/// Options of `ramp`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The API of the node under test.
    #[arg(long, env = "MATCHSTREAM_URL")]
    pub api: String,

    /// The watcher's bearer token (the ramp creates and plays a match per phase).
    #[arg(long, env = "MATCHSTREAM_TOKEN", hide_env_values = true)]
    pub token: String,

    /// First N.
    #[arg(long, default_value_t = 16)]
    pub start: u64,

    /// Last N (N doubles until it would exceed this).
    #[arg(long, default_value_t = 4096)]
    pub max: u64,

    /// Largest C (C = min(N, --max-c)).
    #[arg(long, default_value_t = 512)]
    pub max_c: u64,

    /// HTTP paths, round-robin; `{match}` stands for the step's match. Default:
    /// /1/matches and /1/match/{match}/history (the original's two ab calls).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,

    /// Reuse HTTP connections (ab -k); default: a new connection per request.
    #[arg(long)]
    pub keep_alive: bool,

    /// The match script the watcher plays (`sample` or a file).
    #[arg(long, default_value = "sample")]
    pub script: String,

    /// Speed factor of the script's sleeps.
    #[arg(long, default_value_t = 100.0)]
    pub speed: f64,

    /// Stream protocol version of the clients.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub version: u8,

    /// Seconds each phase may take.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub phase_timeout: f64,

    /// Write the SVG chart here (default: beside --json, with .svg).
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,

    /// How connections are spread.
    #[command(flatten)]
    pub spread: Spread,

    /// Report and progress.
    #[command(flatten)]
    pub output: Output,
}

/// One step of the ramp.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// N.
    pub n: u64,
    /// C.
    pub c: u64,
    /// The HTTP test alone.
    pub http: http::Report,
    /// The clients alone.
    pub clients: clients::Report,
    /// The HTTP test while the clients run.
    pub both_http: http::Report,
    /// The clients while the HTTP test runs.
    pub both_clients: clients::Report,
    /// Deltas of the kernel's TcpExt counters per phase (`http`, `clients`, `both`).
    pub kernel: BTreeMap<String, BTreeMap<String, u64>>,
    /// Successes over attempts of all phases, in percent.
    pub success_percent: f64,
    /// What failed in this step, if anything.
    pub failure: Option<String>,
}

/// The figures of a ramp.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// First N.
    pub start: u64,
    /// Last N asked for.
    pub max: u64,
    /// Largest C.
    pub max_c: u64,
    /// HTTP paths (with `{match}`).
    pub paths: Vec<String>,
    /// HTTP keep-alive.
    pub keep_alive: bool,
    /// Clients' protocol version.
    pub version: u8,
    /// The steps run, in order.
    pub steps: Vec<Step>,
    /// Largest N whose step had no failure.
    pub highest_clean_n: Option<u64>,
    /// The first failing step's N and what failed.
    pub first_failure: Option<(u64, String)>,
    /// Where the chart was written.
    pub chart: Option<String>,
    /// The bench's own cost over the whole ramp.
    pub bench: BenchCost,
}

/// Runs the ramp.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    if opts.start == 0 || opts.max < opts.start {
        bail!("need 1 <= --start <= --max");
    }
    let api = Api::parse(&opts.api)?;
    let script = load_script(&opts.script)?;
    let run = watcher::run_id();
    let paths = if opts.paths.is_empty() {
        vec![
            "/1/matches".to_owned(),
            "/1/match/{match}/history".to_owned(),
        ]
    } else {
        opts.paths.clone()
    };
    let cpu_start = sysstat::own_cpu_seconds();
    let mut steps = Vec::new();
    let mut n = opts.start;
    while n <= opts.max {
        let step = step(opts, &api, &script, &run, &paths, n)?;
        let failed = step.failure.is_some();
        eprintln!(
            "ramp: N={} C={}: {}",
            step.n,
            step.c,
            step.failure.as_deref().unwrap_or("ok")
        );
        steps.push(step);
        if failed {
            break;
        }
        n = n.saturating_mul(2);
    }
    let first_failure = steps
        .iter()
        .find_map(|s| s.failure.clone().map(|f| (s.n, f)));
    let highest_clean_n = steps
        .iter()
        .filter(|s| s.failure.is_none())
        .map(|s| s.n)
        .max();
    let chart = opts
        .chart
        .clone()
        .or_else(|| opts.output.json.as_ref().map(|j| j.with_extension("svg")));
    if let Some(path) = &chart {
        let svg = render_chart(&steps);
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Report {
        start: opts.start,
        max: opts.max,
        max_c: opts.max_c,
        paths,
        keep_alive: opts.keep_alive,
        version: opts.version,
        steps,
        highest_clean_n,
        first_failure,
        chart: chart.map(|p| p.display().to_string()),
        bench: BenchCost {
            cpu_seconds: sysstat::own_cpu_seconds() - cpu_start,
            shards: 1,
            worker_processes: opts.spread.workers > 0,
            rss_bytes_per_connection: None,
        },
    })
}

/// One step's shape: N and C, and what its phases share.
struct StepPlan<'a> {
    opts: &'a Options,
    api: &'a Api,
    /// The run's id (in team codes and user ids).
    run: &'a str,
    /// HTTP paths, `{match}` still in them.
    paths: &'a [String],
    n: u64,
    c: u64,
    /// Bound of each phase.
    timeout: Duration,
}

impl StepPlan<'_> {
    /// An API client with the watcher's token.
    fn client(&self) -> HttpClient {
        HttpClient::for_url(self.api.url.clone()).with_token(&self.opts.token)
    }

    /// Creates a match for the phase `tag` from the script, played up to its start; the rest
    /// is played once its clients are connected.
    fn prepare(
        &self,
        control: &mut HttpClient,
        script: &Script,
        tag: &str,
    ) -> anyhow::Result<Play> {
        let home = watcher::team(&format!("b{}", self.run))?;
        let visit = watcher::team(&format!("s{}{tag}", self.n))?;
        let p = watcher::prepare(control, &watcher::rename(script, &home, &visit)?)?;
        Ok(Play {
            api: self.client(),
            id: p.id,
            steps: p.rest,
            speed: self.opts.speed,
        })
    }

    /// The HTTP test of a phase, on the match `match_id`.
    fn http(&self, match_id: &str, label: &str, mode: Mode) -> http::Setup {
        http::Setup {
            rate: None,
            until: None,
            api: self.api.clone(),
            paths: self
                .paths
                .iter()
                .map(|p| p.replace("{match}", match_id))
                .collect(),
            n: self.n,
            c: self.c,
            keep_alive: self.opts.keep_alive,
            timeout: Duration::from_secs(10),
            time_limit: self.timeout,
            source_ips: self.opts.spread.source_ips.clone(),
            mode,
            label: label.to_owned(),
        }
    }

    /// The clients of a phase, watching the match `play` plays.
    fn clients(&self, play: Play, tag: &str) -> clients::Setup {
        let (opts, n, run) = (self.opts, self.n, self.run);
        clients::Setup {
            target: Target::Checkin(self.api.clone()),
            match_id: play.id.to_string(),
            n,
            c: self.c,
            version: opts.version,
            time_limit: self.timeout,
            connect_timeout_ms: opts.spread.connect_timeout_ms(),
            source_ips: opts.spread.source_ips.clone(),
            workers: opts.spread.workers,
            mode: opts.output.mode(),
            label: format!("N={n} {tag}"),
            user_prefix: format!("b{run}n{n}{tag}"),
            play: Some(play),
        }
    }
}

/// Runs step N: the HTTP test alone, the clients alone, then both together, with the
/// kernel's TCP counters of each phase, and names what failed.
fn step(
    opts: &Options,
    api: &Api,
    script: &Script,
    run: &str,
    paths: &[String],
    n: u64,
) -> anyhow::Result<Step> {
    let plan = StepPlan {
        opts,
        api,
        run,
        paths,
        n,
        c: n.min(opts.max_c).max(1),
        timeout: Duration::from_secs_f64(opts.phase_timeout.max(1.0)),
    };
    let c = plan.c;
    let mode = opts.output.mode();
    let mut control = plan.client();
    let alone_play = plan.prepare(&mut control, script, "a")?;
    let both_play = plan.prepare(&mut control, script, "b")?;
    let (alone_id, both_id) = (alone_play.id.to_string(), both_play.id.to_string());
    let created = [alone_play.id.clone(), both_play.id.clone()];
    let mut kernel = BTreeMap::new();

    let before = sysstat::netstat();
    let http_alone = http::execute(&plan.http(&alone_id, &format!("N={n} http"), mode))?;
    let mid = sysstat::netstat();
    kernel.insert("http".to_owned(), sysstat::netstat_delta(&before, &mid));

    let clients_alone = clients::execute(plan.clients(alone_play, "clients"))?;
    let after = sysstat::netstat();
    kernel.insert("clients".to_owned(), sysstat::netstat_delta(&mid, &after));

    let both_http_setup = plan.http(&both_id, "", Mode::Off);
    let (both_http, both_clients) = std::thread::scope(|s| {
        let h = s.spawn(|| http::execute(&both_http_setup));
        let cl = clients::execute(plan.clients(both_play, "both"));
        let h = h
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the http thread panicked")));
        (h, cl)
    });
    let (both_http, both_clients) = (both_http?, both_clients?);
    let end = sysstat::netstat();
    kernel.insert("both".to_owned(), sysstat::netstat_delta(&after, &end));
    // The step's matches are played out: delete them, so /1/matches (which the next step's
    // HTTP test reads) does not grow step after step. Best effort: a failure here is no
    // failure of the step.
    for id in &created {
        let _ = plan.client().cancel_match(id);
    }

    let ok = http_alone.ok + clients_alone.ok + both_http.ok + both_clients.ok;
    let success_percent = report::percent(ok, 4 * n);
    let failure = diagnose::judge(
        &[
            ("http", Some(&http_alone), None),
            ("clients", None, Some(&clients_alone)),
            ("both", Some(&both_http), Some(&both_clients)),
        ],
        &kernel,
    );
    Ok(Step {
        n,
        c,
        http: http_alone,
        clients: clients_alone,
        both_http,
        both_clients,
        kernel,
        success_percent,
        failure,
    })
}

/// The SVG chart of the steps: N against success rate (all phases), connect latency p99
/// (clients alone) and HTTP latency p99 (http alone).
fn render_chart(steps: &[Step]) -> String {
    let series = [
        Series {
            name: "success % (all phases)",
            color: "#2a9d4b",
            right_axis: false,
            values: steps.iter().map(|s| s.success_percent).collect(),
        },
        Series {
            name: "connect p99 ms (clients alone)",
            color: "#1f5fbf",
            right_axis: true,
            values: steps.iter().map(|s| s.clients.connect.p99_ms).collect(),
        },
        Series {
            name: "HTTP p99 ms (http alone)",
            color: "#d2691e",
            right_axis: true,
            values: steps.iter().map(|s| s.http.latency.p99_ms).collect(),
        },
    ];
    let xs: Vec<u64> = steps.iter().map(|s| s.n).collect();
    chart::render(&Chart {
        title: "matchstream ramp: N against success and p99 latency",
        x_label: "N (users; C = min(N, max-c))",
        xs: &xs,
        left: Axis::PERCENT,
        right: Axis::MS,
        series: &series,
    })
}

impl Report {
    /// Why the ramp failed: its first failing step (empty when no step failed).
    pub fn problems(&self) -> Vec<String> {
        self.first_failure
            .iter()
            .map(|(n, what)| format!("ramp step N={n} failed: {what}"))
            .collect()
    }

    /// The table printed at the end: one row per phase of each step.
    pub fn table(&self) -> String {
        let mut t = Table::new([
            "N",
            "C",
            "phase",
            "http req/s",
            "http p99",
            "http fail",
            "clients ok",
            "connect p99",
            "status p99",
            "client fail",
            "kernel",
        ]);
        for s in &self.steps {
            let phases = [
                ("http", Some(&s.http), None),
                ("clients", None, Some(&s.clients)),
                ("both", Some(&s.both_http), Some(&s.both_clients)),
            ];
            for (i, (phase, h, c)) in phases.into_iter().enumerate() {
                let (n, cc) = if i == 0 {
                    (s.n.to_string(), s.c.to_string())
                } else {
                    (String::new(), String::new())
                };
                let kernel = s.kernel.get(phase).map(report::counts).unwrap_or_default();
                let [a, b, f] =
                    h.map_or_else(|| ["-".to_owned(), "-".into(), "-".into()], http_cells);
                let [d, e, g, j] = c.map_or_else(
                    || ["-".to_owned(), "-".into(), "-".into(), "-".into()],
                    client_cells,
                );
                t.row([n, cc, phase.into(), a, b, f, d, e, g, j, kernel]);
            }
        }
        let mut out = t.render();
        out.push_str("(latencies in ms)\n");
        match &self.first_failure {
            Some((n, what)) => out.push_str(&format!("first failure at N={n}: {what}\n")),
            None => out.push_str("no failure up to --max\n"),
        }
        if let Some(n) = self.highest_clean_n {
            out.push_str(&format!("highest N without failure: {n}\n"));
        }
        if let Some(c) = &self.chart {
            out.push_str(&format!("chart: {c}\n"));
        }
        out.push_str(&format!(
            "bench cost: {:.2} CPU s\n",
            self.bench.cpu_seconds
        ));
        out
    }
}

/// The `http` cells of a phase's row: requests/s, p99, failures.
fn http_cells(h: &http::Report) -> [String; 3] {
    [
        format!("{:.0}", h.requests_per_second),
        report::ms(h.latency.p99_ms),
        (h.n - h.ok).to_string(),
    ]
}

/// The clients' cells of a phase's row: ok share, connect p99, status p99, failures.
fn client_cells(c: &clients::Report) -> [String; 4] {
    [
        format!("{:.1}%", c.success_percent),
        report::ms(c.connect.p99_ms),
        report::ms(c.time_to_status.p99_ms),
        c.failed.to_string(),
    ]
}
