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

use crate::figures::chart::{self, Chart, Series};
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

fn step(
    opts: &Options,
    api: &Api,
    script: &matchstream_protocol::script::Script,
    run: &str,
    paths: &[String],
    n: u64,
) -> anyhow::Result<Step> {
    let c = n.min(opts.max_c).max(1);
    let timeout = Duration::from_secs_f64(opts.phase_timeout.max(1.0));
    let mode = opts.output.mode();
    let client = || HttpClient::for_url(api.url.clone()).with_token(&opts.token);
    let mut control = client();
    let home = watcher::team(&format!("b{run}"))?;
    let mut prepare = |tag: &str| -> anyhow::Result<(String, Play)> {
        let renamed = watcher::rename(script, &home, &watcher::team(&format!("s{n}{tag}"))?)?;
        let p = watcher::prepare(&mut control, &renamed)?;
        let play = Play {
            api: client(),
            id: p.id.clone(),
            steps: p.rest,
            speed: opts.speed,
        };
        Ok((p.id.to_string(), play))
    };
    let (alone_id, alone_play) = prepare("a")?;
    let (both_id, both_play) = prepare("b")?;
    let created = [alone_play.id.clone(), both_play.id.clone()];
    let http_setup = |match_id: &str, label: &str, mode: Mode| http::Setup {
        rate: None,
        api: api.clone(),
        paths: paths
            .iter()
            .map(|p| p.replace("{match}", match_id))
            .collect(),
        n,
        c,
        keep_alive: opts.keep_alive,
        timeout: Duration::from_secs(10),
        time_limit: timeout,
        source_ips: opts.spread.source_ips.clone(),
        mode,
        label: label.to_owned(),
    };
    let clients_setup = |match_id: &str, play: Play, tag: &str| clients::Setup {
        target: Target::Checkin(api.clone()),
        match_id: match_id.to_owned(),
        n,
        c,
        version: opts.version,
        time_limit: timeout,
        connect_timeout_ms: opts.spread.connect_timeout_ms(),
        source_ips: opts.spread.source_ips.clone(),
        workers: opts.spread.workers,
        mode,
        label: format!("N={n} {tag}"),
        user_prefix: format!("b{run}n{n}{tag}"),
        play: Some(play),
    };
    let mut kernel = BTreeMap::new();

    let before = sysstat::netstat();
    let http_alone = http::execute(&http_setup(&alone_id, &format!("N={n} http"), mode))?;
    let mid = sysstat::netstat();
    kernel.insert("http".to_owned(), sysstat::netstat_delta(&before, &mid));

    let clients_alone = clients::execute(clients_setup(&alone_id, alone_play, "clients"))?;
    let after = sysstat::netstat();
    kernel.insert("clients".to_owned(), sysstat::netstat_delta(&mid, &after));

    let both_http_setup = http_setup(&both_id, "", Mode::Off);
    let (both_http, both_clients) = std::thread::scope(|s| {
        let h = s.spawn(|| http::execute(&both_http_setup));
        let cl = clients::execute(clients_setup(&both_id, both_play, "both"));
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
        let _ = client().cancel_match(id);
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
            let k = |phase: &str| s.kernel.get(phase).map(report::counts).unwrap_or_default();
            let http_cells = |h: &http::Report| {
                [
                    format!("{:.0}", h.requests_per_second),
                    report::ms(h.latency.p99_ms),
                    (h.n - h.ok).to_string(),
                ]
            };
            let client_cells = |c: &clients::Report| {
                [
                    format!("{:.1}%", c.success_percent),
                    report::ms(c.connect.p99_ms),
                    report::ms(c.time_to_status.p99_ms),
                    c.failed.to_string(),
                ]
            };
            let dash = || "-".to_owned();
            let [a, b, cc] = http_cells(&s.http);
            t.row([
                s.n.to_string(),
                s.c.to_string(),
                "http".into(),
                a,
                b,
                cc,
                dash(),
                dash(),
                dash(),
                dash(),
                k("http"),
            ]);
            let [d, e, f, g] = client_cells(&s.clients);
            t.row([
                String::new(),
                String::new(),
                "clients".into(),
                dash(),
                dash(),
                dash(),
                d,
                e,
                f,
                g,
                k("clients"),
            ]);
            let [a, b, cc] = http_cells(&s.both_http);
            let [d, e, f, g] = client_cells(&s.both_clients);
            t.row([
                String::new(),
                String::new(),
                "both".into(),
                a,
                b,
                cc,
                d,
                e,
                f,
                g,
                k("both"),
            ]);
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
