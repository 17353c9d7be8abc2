//! `http`: the HTTP load test (the original's ApacheBench script). N requests over C
//! connections, one in flight each, round-robin over the `--path`s; a new connection per
//! request unless `--keep-alive` (ab without and with `-k`). Reports requests per second,
//! latency percentiles (request start, connect included, to complete response), status
//! counts, non-2xx answers and socket errors by kind.
//!
//! That is a closed loop: a slow server slows the load it is offered. `--rate R --duration D`
//! makes it open (wrk2 style): request i is due at t0 + i/R whatever the answers, goes out on
//! the first free connection, and its latency runs from that *intended* time, so a server
//! that falls behind shows as latency instead of as fewer requests.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use matchstream_client::write_request;

use crate::figures::latency::{Latency, Summary};
use crate::figures::progress::{self, Live, Mode, Progress};
use crate::figures::report::{self, BenchCost, Table};
use crate::net::{Api, SourceIps};
use crate::options::Output;
use crate::requests::{self, Codec, ErrorKind, Next, Reply, Source};

/// The long `--help` text.
pub const LONG_ABOUT: &str = "The HTTP load test (the original's ApacheBench script).

N is the number of requests (the users). C is the number of concurrent attempts: requests
in flight at once, each on its own connection. Without --keep-alive every request opens a new
connection, as ab does without -k, so the latency includes the connect. Requests go
round-robin over the --path values.

That is a closed loop, like ab: a slow server lowers the load it is offered. --duration D
without --rate runs the closed loop for D seconds instead of N requests (wrk -d, ab -t). With
--rate R
(requests per second) and --duration D (seconds; or --n requests), request i is due at
t0 + i/R, goes out on the first of the C connections that is free, and its latency is measured
from that intended time (wrk2's constant throughput mode, no coordinated omission); the run
fails when fewer than 95 % of R went out (raise --c).";

/// Options of `http`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The API, e.g. http://127.0.0.1:8888.
    #[arg(long, env = "MATCHSTREAM_URL")]
    pub api: String,

    /// Path to request (repeatable; round-robin). Default: /1/matches.
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,

    /// N: requests to send.
    #[arg(long, default_value_t = 1000)]
    pub n: u64,

    /// C: requests in flight at once (one connection each).
    #[arg(long, default_value_t = 16)]
    pub c: u64,

    /// Reuse connections (ab -k); default: a new connection per request.
    #[arg(long)]
    pub keep_alive: bool,

    /// Open loop: R requests per second (request i due at t0 + i/R), latency from the
    /// intended send time.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Seconds of load. With --rate: N = R x D, instead of --n. Without: a closed loop that
    /// sends requests for D seconds, as many as are answered (as wrk -d and ab -t; --n is then
    /// ignored), so a faster server is not measured over a shorter run.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Seconds one request may take (connect included).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,

    /// Seconds the whole run may take; requests still in flight then fail as `timeout`.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub time_limit: f64,

    /// Bind each outgoing socket to the next of these source addresses, e.g.
    /// 127.0.0.2-127.0.0.254 (without keep-alive every request takes a new ephemeral port).
    #[arg(long, value_name = "A-B|A,B,..", value_parser = SourceIps::parse)]
    pub source_ips: Option<SourceIps>,

    /// Report and progress.
    #[command(flatten)]
    pub output: Output,
}

/// The figures of an `http` run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// N.
    pub n: u64,
    /// C.
    pub c: u64,
    /// Connections reused.
    pub keep_alive: bool,
    /// The paths requested.
    pub paths: Vec<String>,
    /// Requests answered (any status).
    pub answered: u64,
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Answers with another status.
    pub non_2xx: u64,
    /// Answers by status code.
    pub status: BTreeMap<String, u64>,
    /// Requests that got no answer, by kind (`connect_refused`, `reset`, `timeout`, ...).
    pub errors: BTreeMap<String, u64>,
    /// All such errors.
    pub error_total: u64,
    /// Latency of answered requests.
    pub latency: Summary,
    /// Answers per second over the run.
    pub requests_per_second: f64,
    /// Seconds of the run.
    pub seconds: f64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Connections opened.
    pub connections: u64,
    /// The bench's own cost.
    pub bench: BenchCost,
    /// Open loop (--rate): the target requests per second; latency is then from each
    /// request's intended send time. Null for the closed loop.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Open loop: requests per second that went out (the schedule's span over the span it
    /// took).
    #[serde(default)]
    pub achieved_rate: Option<f64>,
    /// Open loop: the most a request went out after its intended time, ms.
    #[serde(default)]
    pub max_lag_ms: Option<f64>,
    /// With several paths: the latency of each (answered requests).
    #[serde(default)]
    pub path_latency: BTreeMap<String, Summary>,
}

/// A resolved `http` run (also used by `ramp`).
#[derive(Debug, Clone)]
pub struct Setup {
    /// The API.
    pub api: Api,
    /// Paths, round-robin.
    pub paths: Vec<String>,
    /// N.
    pub n: u64,
    /// C.
    pub c: u64,
    /// Reuse connections.
    pub keep_alive: bool,
    /// Open loop: requests per second.
    pub rate: Option<f64>,
    /// Closed loop for a time: no request starts after this long (N is then unbounded).
    pub until: Option<Duration>,
    /// Bound of one request.
    pub timeout: Duration,
    /// Bound of the run.
    pub time_limit: Duration,
    /// Source addresses.
    pub source_ips: Option<SourceIps>,
    /// Progress output.
    pub mode: Mode,
    /// Progress label.
    pub label: String,
}

/// Runs `http` from its command-line options.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    if opts.n == 0 || opts.c == 0 {
        bail!("--n and --c must be at least 1");
    }
    if opts.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of requests per second");
    }
    let (n, until) = match (opts.rate, opts.duration) {
        (_, Some(d)) if !(d > 0.0 && d.is_finite()) => bail!("--duration must be positive"),
        (Some(r), Some(d)) => (((r * d).round() as u64).max(1), None),
        (None, Some(d)) => (u64::MAX, Some(Duration::from_secs_f64(d))),
        (_, None) => (opts.n, None),
    };
    let paths = if opts.paths.is_empty() {
        vec!["/1/matches".to_owned()]
    } else {
        opts.paths.clone()
    };
    execute(&Setup {
        api: Api::parse(&opts.api)?,
        paths,
        n,
        c: opts.c,
        keep_alive: opts.keep_alive,
        rate: opts.rate,
        until,
        timeout: Duration::from_secs_f64(opts.timeout.max(0.001)),
        time_limit: Duration::from_secs_f64(opts.time_limit.max(0.1)),
        source_ips: opts.source_ips.clone(),
        mode: opts.output.mode(),
        label: "http".into(),
    })
}

struct Load<'a> {
    setup: &'a Setup,
    issued: u64,
    latency: Latency,
    report: Report,
    live: Arc<Live>,
    /// Open loop: t0, each slot's request's intended send time, the last request's, and the
    /// most a request went out after it.
    t0: Instant,
    intended: Vec<Option<Instant>>,
    last_sent: Option<(Instant, Instant)>,
    max_lag: Duration,
    /// Per path: its latencies; per slot: the path of its request.
    per_path: Vec<Latency>,
    slot_path: Vec<usize>,
}

/// The open loop's achieved rate: the schedule's span against the span it took to send
/// (wrk2's), for `share` of the requests sent, the last `due` then and `sent` at.
fn achieved_rate(rate: f64, share: f64, started: Instant, due: Instant, sent: Instant) -> f64 {
    let period = 1.0 / rate;
    let nominal = due.duration_since(started).as_secs_f64() + period;
    let actual = sent.duration_since(started).as_secs_f64() + period;
    rate * share * (nominal / actual).min(1.0)
}

impl<'a> Load<'a> {
    /// The load of `setup`, nothing sent yet.
    fn new(setup: &'a Setup, live: Arc<Live>) -> Load<'a> {
        let slots = setup.c.min(setup.n).max(1) as usize;
        Load {
            setup,
            issued: 0,
            latency: Latency::new(),
            report: Report {
                n: setup.n,
                c: setup.c,
                keep_alive: setup.keep_alive,
                paths: setup.paths.clone(),
                rate: setup.rate,
                ..Report::default()
            },
            live,
            t0: Instant::now(),
            intended: vec![None; slots],
            last_sent: None,
            max_lag: Duration::ZERO,
            per_path: vec![Latency::new(); setup.paths.len()],
            slot_path: vec![0; slots],
        }
    }
}

impl Load<'_> {
    /// The latency of `slot`'s request: from its intended time (open loop) or its start.
    fn latency_of(&mut self, slot: usize, measured: Duration) -> Duration {
        match self.intended.get_mut(slot).and_then(Option::take) {
            Some(t) => t.elapsed(),
            None => measured,
        }
    }
}

impl Source for Load<'_> {
    fn next(&mut self, slot: usize, now: Instant, out: &mut Vec<u8>) -> Next {
        if self.issued >= self.setup.n || self.setup.until.is_some_and(|d| now >= self.t0 + d) {
            return Next::Done;
        }
        if let Some(rate) = self.setup.rate {
            let due = self.t0 + Duration::from_secs_f64(self.issued as f64 / rate);
            if now < due {
                return Next::Wait(due);
            }
            if let Some(i) = self.intended.get_mut(slot) {
                *i = Some(due);
            }
            self.last_sent = Some((due, now));
            self.max_lag = self.max_lag.max(now.saturating_duration_since(due));
        }
        let which = (self.issued % self.setup.paths.len() as u64) as usize;
        if let Some(p) = self.slot_path.get_mut(slot) {
            *p = which;
        }
        let path = &self.setup.paths[which];
        self.issued += 1;
        self.live.started.fetch_add(1, Ordering::Relaxed);
        let full = format!("{}{path}", self.setup.api.url.prefix());
        write_request(
            "GET",
            self.setup.api.url.host_header(),
            &full,
            None,
            None,
            self.setup.keep_alive,
            out,
        );
        Next::Send
    }

    fn reply(&mut self, slot: usize, reply: &Reply, latency: Duration) {
        let latency = self.latency_of(slot, latency);
        self.latency.record(latency);
        if let Some(h) = self
            .slot_path
            .get(slot)
            .and_then(|&p| self.per_path.get_mut(p))
        {
            h.record(latency);
        }
        self.report.answered += 1;
        self.report.bytes_received += reply.bytes as u64;
        *self
            .report
            .status
            .entry(reply.status.to_string())
            .or_default() += 1;
        if (200..300).contains(&reply.status) {
            self.report.ok += 1;
            self.live.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.report.non_2xx += 1;
            self.live.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn error(&mut self, slot: usize, kind: ErrorKind, _latency: Duration) {
        self.latency_of(slot, Duration::ZERO);
        *self.report.errors.entry(kind.key().to_owned()).or_default() += 1;
        self.report.error_total += 1;
        self.live.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs a resolved `http` run.
pub fn execute(setup: &Setup) -> anyhow::Result<Report> {
    let cpu_start = crate::figures::sysstat::own_cpu_seconds();
    let live = Arc::new(Live::default());
    let shown = live.clone();
    let label = setup.label.clone();
    let of = match setup.until {
        Some(d) => format!(" in {}", progress::secs(d)),
        None => format!("/{}", setup.n),
    };
    let progress = Progress::start(setup.mode, move |t| {
        let s = shown.snapshot();
        let rate = (s.ok + s.failed) as f64 / t.as_secs_f64().max(0.001);
        format!(
            "{label} {}: {}{of} sent, {} ok, {} failed, {rate:.0} req/s",
            progress::secs(t),
            s.started,
            s.ok,
            s.failed
        )
    });
    let mut load = Load::new(setup, live);
    let opts = requests::Options {
        addr: setup.api.addr,
        slots: setup.c.min(setup.n).max(1) as usize,
        keep_alive: setup.keep_alive,
        codec: Codec::Http,
        request_timeout: setup.timeout,
        time_limit: setup.time_limit,
        source_ips: setup.source_ips.clone(),
    };
    let started = Instant::now();
    load.t0 = started;
    let connections = requests::run(&opts, &mut load);
    let seconds = started.elapsed().as_secs_f64();
    progress.finish();
    let connections = connections?;
    let mut r = load.report;
    if setup.until.is_some() {
        // N is what went out in the time given.
        r.n = load.issued;
    }
    r.latency = load.latency.summary();
    if setup.paths.len() > 1 {
        r.path_latency = setup
            .paths
            .iter()
            .zip(&load.per_path)
            .map(|(p, h)| (p.clone(), h.summary()))
            .collect();
    }
    r.seconds = seconds;
    r.requests_per_second = r.answered as f64 / seconds.max(1e-9);
    r.connections = connections;
    if let (Some(rate), Some((due, sent))) = (setup.rate, load.last_sent) {
        let share = load.issued as f64 / setup.n.max(1) as f64;
        r.achieved_rate = Some(achieved_rate(rate, share, started, due, sent));
        r.max_lag_ms = Some(load.max_lag.as_secs_f64() * 1000.0);
    }
    r.bench = BenchCost {
        cpu_seconds: crate::figures::sysstat::own_cpu_seconds() - cpu_start,
        shards: 1,
        worker_processes: false,
        rss_bytes_per_connection: None,
    };
    Ok(r)
}

impl Report {
    /// Why the run failed (empty when every request got a 2xx answer).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.error_total > 0 {
            out.push(format!(
                "{} of {} requests got no answer ({})",
                self.error_total,
                self.n,
                report::counts(&self.errors)
            ));
        }
        if self.non_2xx > 0 {
            out.push(format!(
                "{} of {} answers were not 2xx ({})",
                self.non_2xx,
                self.n,
                report::counts(&self.status)
            ));
        }
        if self.answered < self.n && self.error_total == 0 {
            out.push(format!(
                "{} of {} requests were answered",
                self.answered, self.n
            ));
        }
        if let (Some(target), Some(got)) = (self.rate, self.achieved_rate) {
            if got < 0.95 * target {
                out.push(format!(
                    "{got:.1} of {target:.1} requests/s went out ({:.1} %, below 95 %: all {} \
                     connections were busy; raise --c)",
                    100.0 * got / target,
                    self.c
                ));
            }
        }
        out
    }

    /// True when every request got a 2xx answer.
    pub fn clean(&self) -> bool {
        self.non_2xx == 0 && self.error_total == 0 && self.ok == self.n
    }

    /// The table printed at the end of the run.
    pub fn table(&self) -> String {
        let mut t = Table::kv("http");
        t.row(["paths".into(), self.paths.join(" ")]);
        t.row([
            "N / C / keep-alive".into(),
            format!(
                "{} / {} / {}",
                self.n,
                self.c,
                if self.keep_alive { "yes" } else { "no" }
            ),
        ]);
        t.row([
            "requests/s".into(),
            format!("{:.1}", self.requests_per_second),
        ]);
        t.row(["answered".into(), self.answered.to_string()]);
        t.row(["2xx".into(), self.ok.to_string()]);
        t.row(["non-2xx".into(), self.non_2xx.to_string()]);
        t.row(["status".into(), report::counts(&self.status)]);
        t.row(["socket errors".into(), report::counts(&self.errors)]);
        report::latency_rows(&mut t, "latency", &self.latency);
        for (path, s) in &self.path_latency {
            report::latency_rows(&mut t, &format!("  {path}"), s);
        }
        t.row([
            "run".into(),
            format!(
                "{:.2} s, {} connections, {} bytes received",
                self.seconds, self.connections, self.bytes_received
            ),
        ]);
        t.row(["bench cost".into(), report::cost_line(&self.bench)]);
        match (self.rate, self.achieved_rate) {
            (Some(target), achieved) => t.row([
                "open loop".to_owned(),
                format!(
                    "target {target:.1} req/s, {:.1} went out (lag max {} ms); latency from each \
                     request's intended send time",
                    achieved.unwrap_or(0.0),
                    report::ms(self.max_lag_ms.unwrap_or(0.0))
                ),
            ]),
            (None, _) => t.row([
                "closed loop".to_owned(),
                "each connection sends its next request after the last answer: latency is from \
                 the actual send, and a slow server lowers the load it is offered (--rate for \
                 an open loop)"
                    .to_owned(),
            ]),
        }
        t.render()
    }
}
