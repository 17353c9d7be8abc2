//! One run of one system in `fanout`: connect the subscribers, publish under the flow control,
//! wait for the deliveries, and measure: deliveries, loss, order, latency (from each event's
//! stamp), the publisher's achieved rate, and the CPU the server and the bench used during the
//! publish window as a share of the machine (the idle-but-slow detector).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fanout::Options;
use crate::flow::{Flow, Schedule};
use crate::latency::{Latency, Summary};
use crate::pipeline;
use crate::plan::{Plan, Protocol, Target};
use crate::progress::{self, Live, Progress};
use crate::publish::{Published, Sink};
use crate::report::BenchCost;
use crate::shards::Shards;
use crate::sysstat::{self, ServerSample};

/// Deliveries later than this count as late (ms).
pub const LATE_MS: u64 = 100;
/// Deliveries later than this count as stalled (ms).
pub const STALLED_MS: u64 = 1000;
/// A server thread busy this share of the publish window counts as saturated.
pub const SATURATED_THREAD: f64 = 0.9;
/// How long subscribers may wait for a stop whose publish was not acknowledged.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Server-side figures from `--server-pid` (or `--baseline-pid`).
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
    /// CPU seconds spent in the publish window (first publish until the subscribers were done).
    pub cpu_seconds_publishing: f64,
    /// `cpu_seconds_publishing` per million deliveries.
    pub cpu_seconds_per_million_deliveries: f64,
}

/// CPU use in the publish window, as a share of the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpuShare {
    /// Seconds from the first publish until the subscribers were done.
    pub window_seconds: f64,
    /// CPUs of the machine (those the bench may use).
    pub cores: usize,
    /// The server's CPU seconds in the window (null without a pid).
    pub server_cpu_seconds: Option<f64>,
    /// `server_cpu_seconds / (window_seconds × cores)`: 1.0 is every core busy.
    pub server_share: Option<f64>,
    /// The bench's CPU seconds in the window (publisher, subscribers, workers).
    pub bench_cpu_seconds: f64,
    /// `bench_cpu_seconds / (window_seconds × cores)`.
    pub bench_share: f64,
    /// The busiest single server thread's CPU seconds over the window: near 1.0, that thread
    /// was saturated (null without a pid).
    #[serde(default)]
    pub server_busiest_thread: Option<f64>,
}

impl CpuShare {
    /// p99 over a second while the server used under half of the machine and none of its
    /// threads was saturated: the time went somewhere other than work (a stall, a timer, a
    /// lock), not to CPU. (A single-threaded server such as Redis is saturated at one core:
    /// its busiest thread shows it, whatever share of the machine that is.)
    pub fn idle_but_slow(&self, p99_ms: f64) -> bool {
        p99_ms > STALLED_MS as f64
            && self.server_share.is_some_and(|s| s < 0.5)
            && self
                .server_busiest_thread
                .is_none_or(|t| t < SATURATED_THREAD)
    }
}

/// The figures of one run of one system.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    /// `matchstream`, `redis` or `nats`.
    pub system: String,
    /// Run number (from 1).
    pub run: u32,
    /// Subscribers that got their status (Redis: their subscribe confirmation; NATS: PONG).
    pub connected: u64,
    /// Subscribers that failed.
    pub failed: u64,
    /// Failures by kind.
    pub failures: crate::outcome::FailureCounts,
    /// `ERROR:` lines by reason.
    pub error_lines: std::collections::BTreeMap<String, u64>,
    /// Framing (or RESP, NATS) violations by description.
    pub framing: std::collections::BTreeMap<String, u64>,
    /// `connected × E` (measured events only).
    pub expected: u64,
    /// Measured deliveries received.
    pub delivered: u64,
    /// `expected − (delivered − duplicated)`.
    pub lost: u64,
    /// Frames whose seq was not above the last one the subscriber had seen.
    pub duplicated: u64,
    /// Frames whose seq skipped ahead of the next expected one.
    pub out_of_order: u64,
    /// Deliveries per second, first publish to last delivery.
    pub deliveries_per_second: f64,
    /// Stamp (scheduled or actual send time) to complete frame at the subscriber.
    pub latency: Summary,
    /// Deliveries later than 100 ms.
    pub over_100ms: u64,
    /// Deliveries later than 1 s.
    pub over_1s: u64,
    /// Time to status of the subscribers.
    pub time_to_status: Summary,
    /// Seconds the subscribers took to connect.
    pub connect_seconds: f64,
    /// The publisher's side.
    pub publish: Published,
    /// CPU shares in the publish window.
    pub cpu: CpuShare,
    /// p99 over 1 s while the server used under half of the machine.
    pub idle_but_slow: bool,
    /// With --server-pid / --baseline-pid.
    pub server: Option<ServerFigures>,
    /// The bench's own cost for this run.
    pub bench: BenchCost,
    /// The delivery latency histogram (hdrhistogram V2, base64; microseconds).
    pub histogram: Latency,
}

impl Figures {
    /// What deserves a warning in this run without failing it.
    pub fn warnings(&self) -> Vec<String> {
        let who = format!("{} run {}", self.system, self.run);
        self.publish
            .warnings()
            .into_iter()
            .map(|w| format!("{who}: {w}"))
            .collect()
    }

    /// What went wrong in this run, as sentences.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let who = format!("{} run {}", self.system, self.run);
        if self.connected == 0 {
            out.push(format!("{who}: no subscriber connected"));
        }
        if self.failed > 0 {
            out.push(format!(
                "{who}: {} subscribers failed ({})",
                self.failed,
                crate::report::counts(&self.failures)
            ));
        }
        for (what, n) in [
            ("deliveries lost", self.lost),
            ("deliveries duplicated", self.duplicated),
            ("deliveries out of order", self.out_of_order),
        ] {
            if n > 0 {
                out.push(format!("{who}: {n} {what}"));
            }
        }
        out.extend(
            self.publish
                .problems()
                .into_iter()
                .map(|p| format!("{who}: {p}")),
        );
        out
    }
}

/// One system's run, resolved.
pub struct Shape<'a> {
    /// The options.
    pub opts: &'a Options,
    /// The system's name.
    pub system: &'static str,
    /// Run number (from 1) and of how many.
    pub run: (u32, u32),
    /// The subscribers' protocol.
    pub protocol: Protocol,
    /// Where they connect.
    pub target: Target,
    /// Matches, channels or subjects.
    pub channels: Vec<String>,
    /// What the publisher writes.
    pub sink: Sink,
    /// Where it writes.
    pub publish_addr: std::net::SocketAddr,
    /// Server pids to sample.
    pub pids: &'a [u32],
    /// User ids' prefix (matchstream).
    pub user_prefix: String,
    /// The flow control.
    pub flow: Flow,
}

/// Connects the subscribers, publishes, waits for the deliveries, and measures.
pub fn measure(shape: &Shape<'_>) -> anyhow::Result<Figures> {
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
    let sent = Arc::new(AtomicU64::new(0));
    let sent_live = sent.clone();
    let (n, system, (run, runs)) = (opts.subscribers, shape.system, shape.run);
    let per = opts.events;
    let planned = (opts.warmup + opts.events) * opts.matches;
    let progress = Progress::start(opts.output.mode(), move |t| {
        let s = Live::sum(&lives);
        format!(
            "{system} run {run}/{runs} {}: connected {}/{n}, failed {}, published {}/{planned}, \
             delivered {}/{}, open {}, last 1 s p50 {} p99 {} ms",
            progress::secs(t),
            s.connected,
            s.failed,
            sent_live.load(Ordering::Relaxed),
            s.delivered,
            s.connected * per,
            s.open,
            crate::report::ms(s.p50_us as f64 / 1000.0),
            crate::report::ms(s.p99_us as f64 / 1000.0)
        )
    });
    if !shards.wait_ready(limit) && crate::interrupt::requested() {
        shards.abort();
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let connected_sample = sysstat::sample_servers(shape.pids);
    let threads_before = sysstat::server_thread_cpu_seconds(shape.pids);
    let mut schedule = Schedule::new(shape.flow, shape.channels.len(), opts.warmup, opts.events);
    let board = shards.board();
    let t0 = Instant::now();
    let own_t0 = sysstat::process_cpu_seconds();
    schedule.start(t0, crate::subscribe::realtime_ns());
    let publish_start_ns = crate::subscribe::realtime_ns();
    let published = pipeline::run(
        &pipeline::Options {
            addr: shape.publish_addr,
            connections: opts
                .publishers
                .unwrap_or(32)
                .clamp(1, shape.channels.len().max(1)),
            reply_timeout: crate::fanout::REPLY_TIMEOUT,
            stall_timeout: Duration::from_secs_f64(opts.stall_timeout.max(0.1)),
            limit,
        },
        &shape.sink,
        &shape.channels,
        &mut schedule,
        &board,
        &sent,
    );
    // Subscribers end with their match's stop. When some stop may not have gone out, do
    // not wait for the time limit: give up now (nothing more will be sent) or after a grace.
    let mut until = limit;
    match &published {
        Err(_) => shards.abort(),
        Ok(p) if p.stalled.is_some() || p.unsent > 0 => shards.abort(),
        Ok(p) if p.stops_ok < shape.channels.len() as u64 => {
            until = until.min(Instant::now() + STOP_GRACE);
        }
        Ok(_) => {}
    }
    let (shard_count, processes) = shards.describe();
    let outcome = shards.finish(until);
    let window = t0.elapsed().as_secs_f64();
    let own_window = sysstat::process_cpu_seconds() - own_t0;
    progress.finish();
    let after = sysstat::sample_servers(shape.pids);
    let threads_after = sysstat::server_thread_cpu_seconds(shape.pids);
    let published = published?;
    let o = outcome?;
    let expected = o.connected * opts.events;
    let span_ns = o.last_delivery_ns.saturating_sub(publish_start_ns);
    let server = server_figures(shape.pids, before, connected_sample, after, &o);
    let workers_window = if processes {
        (o.cpu_at_end - o.cpu_at_ready).max(0.0)
    } else {
        0.0
    };
    let cores = sysstat::cores();
    let machine = (window * cores as f64).max(1e-9);
    let bench_window = own_window + workers_window;
    let cpu = CpuShare {
        window_seconds: window,
        cores,
        server_cpu_seconds: server.as_ref().map(|s| s.cpu_seconds_publishing),
        server_share: server.as_ref().map(|s| s.cpu_seconds_publishing / machine),
        bench_cpu_seconds: bench_window,
        bench_share: bench_window / machine,
        server_busiest_thread: server.as_ref().map(|_| {
            sysstat::busiest_thread_delta(&threads_before, &threads_after) / window.max(1e-9)
        }),
    };
    let latency = o.delivery.summary();
    Ok(Figures {
        system: shape.system.to_owned(),
        run,
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
        latency,
        over_100ms: o.delivery.count_above_ms(LATE_MS),
        over_1s: o.delivery.count_above_ms(STALLED_MS),
        time_to_status: o.status.summary(),
        connect_seconds,
        publish: published,
        idle_but_slow: cpu.idle_but_slow(latency.p99_ms),
        cpu,
        server,
        bench: BenchCost {
            cpu_seconds: sysstat::own_cpu_seconds() - cpu_start,
            shards: shard_count,
            worker_processes: processes,
            rss_bytes_per_connection: crate::clients::rss_per_connection(&o),
        },
        histogram: o.delivery,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_but_slow_needs_a_slow_p99_and_an_idle_server() {
        let share = |s: Option<f64>, t: Option<f64>| CpuShare {
            server_share: s,
            server_busiest_thread: t,
            ..CpuShare::default()
        };
        // (server share, busiest thread, p99 ms, flagged)
        let cases = [
            (Some(0.1), Some(0.1), 1500.0, true),
            (Some(0.49), Some(0.6), 1001.0, true),
            (Some(0.1), None, 1500.0, true), // threads unreadable: the share decides
            (Some(0.5), Some(0.5), 5000.0, false), // busy: the machine explains it
            (Some(0.48), Some(0.95), 1500.0, false), // one thread saturated (Redis)
            (Some(0.1), Some(0.1), 1000.0, false), // not over a second
            (Some(0.1), Some(0.1), 20.0, false),
            (None, None, 5000.0, false), // no pid: cannot tell
        ];
        for (s, t, p99, want) in cases {
            assert_eq!(share(s, t).idle_but_slow(p99), want, "{s:?} {t:?} {p99}");
        }
    }

    #[test]
    fn problems_name_every_shortfall() {
        let f = Figures {
            system: "matchstream".into(),
            run: 2,
            connected: 10,
            ..Figures::default()
        };
        assert!(f.problems().is_empty());
        let bad = Figures {
            failed: 2,
            lost: 5,
            duplicated: 1,
            ..f.clone()
        };
        let text = bad.problems().join("; ");
        assert!(
            text.contains("matchstream run 2: 2 subscribers failed"),
            "{text}"
        );
        assert!(text.contains("5 deliveries lost"), "{text}");
        assert!(text.contains("1 deliveries duplicated"), "{text}");
        let none = Figures { connected: 0, ..f };
        assert!(none.problems()[0].contains("no subscriber connected"));
    }
}
