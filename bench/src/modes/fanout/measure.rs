//! One run of one system in `fanout`: connect the subscribers, publish under the flow control,
//! wait for the deliveries, and measure: deliveries, loss, order, latency (from each event's
//! stamp), the publisher's achieved rate, and the CPU the server and the bench used during the
//! publish window as a share of the machine (the idle-but-slow detector).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::figures::latency::realtime_ns;
use crate::figures::progress::{self, Live, Progress};
use crate::figures::report::{self, BenchCost};
use crate::figures::sysstat::{self, ServerSample};
use crate::modes::fanout::measured::{CpuShare, Figures, ServerFigures, LATE_MS, STALLED_MS};
use crate::modes::fanout::options::Options;
use crate::publisher::flow::{Flow, Schedule};
use crate::publisher::pipeline;
use crate::publisher::publish::{Published, Sink};
use crate::subscribers::plan::{Outcome, Plan, Target};
use crate::subscribers::shards::Shards;
use crate::wire::decode::Protocol;

/// The reply timeout of publishing connections.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long subscribers may wait for a stop whose publish was not acknowledged.
const STOP_GRACE: Duration = Duration::from_secs(10);

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
    let mut shards = Shards::start(&plan(shape, time_limit), opts.spread.workers)?;
    let sent = Arc::new(AtomicU64::new(0));
    let progress = show_progress(shape, &shards, &sent);
    if !shards.wait_ready(limit) && crate::interrupt::requested() {
        shards.abort();
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let connected = sysstat::sample_servers(shape.pids);
    let threads_before = sysstat::server_thread_cpu_seconds(shape.pids);
    let window = publish(shape, shards, &sent, limit);
    progress.finish();
    let after = sysstat::sample_servers(shape.pids);
    let threads_after = sysstat::server_thread_cpu_seconds(shape.pids);
    let published = window.published?;
    let o = window.outcome?;
    let server = server_figures(shape.pids, before, connected, after, &o);
    let busiest = sysstat::busiest_thread_delta(&threads_before, &threads_after);
    let cpu = cpu_share(&window.cpu, &o, server.as_ref(), busiest);
    let bench = BenchCost {
        cpu_seconds: sysstat::own_cpu_seconds() - cpu_start,
        shards: window.cpu.shards,
        worker_processes: window.cpu.processes,
        rss_bytes_per_connection: o.rss_per_connection(),
    };
    let mut f = figures(shape, o, window.cpu.start_ns, published, cpu);
    f.connect_seconds = connect_seconds;
    f.server = server;
    f.bench = bench;
    Ok(f)
}

/// What the subscribers of this run are asked to do.
fn plan(shape: &Shape<'_>, time_limit: Duration) -> Plan {
    let opts = shape.opts;
    Plan {
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
        resume: None,
    }
}

/// The live progress line of this run.
fn show_progress(shape: &Shape<'_>, shards: &Shards, sent: &Arc<AtomicU64>) -> Progress {
    let opts = shape.opts;
    let lives = shards.lives();
    let sent = Arc::clone(sent);
    let (n, system, (run, runs)) = (opts.subscribers, shape.system, shape.run);
    let per = opts.events;
    let planned = (opts.warmup + opts.events) * opts.matches;
    Progress::start(opts.output.mode(), move |t| {
        let s = Live::sum(&lives);
        format!(
            "{system} run {run}/{runs} {}: connected {}/{n}, failed {}, published {}/{planned}, \
             delivered {}/{}, open {}, last 1 s p50 {} p99 {} ms",
            progress::secs(t),
            s.connected,
            s.failed,
            sent.load(Ordering::Relaxed),
            s.delivered,
            s.connected * per,
            s.open,
            report::ms(s.p50_us as f64 / 1000.0),
            report::ms(s.p99_us as f64 / 1000.0)
        )
    })
}

/// The publish window's own figures: where it started and what it cost the bench.
struct WindowCost {
    /// Realtime at the first publish, ns since the epoch.
    start_ns: u64,
    /// From the first publish until the subscribers were done.
    seconds: f64,
    /// This process's CPU seconds over the window.
    own_cpu_seconds: f64,
    /// Shards the subscribers were spread over.
    shards: usize,
    /// Whether some were worker processes.
    processes: bool,
    /// The share of the machine idle over the window.
    machine_idle: Option<f64>,
}

/// What the publish window produced.
struct Window {
    published: anyhow::Result<Published>,
    outcome: anyhow::Result<Outcome>,
    cpu: WindowCost,
}

/// Publishes under the flow control, then waits for the subscribers to end with their
/// match's stop (not for the time limit when some stop may not have gone out: giving up at
/// once when nothing more will be sent, or after a grace).
fn publish(shape: &Shape<'_>, mut shards: Shards, sent: &AtomicU64, limit: Instant) -> Window {
    let opts = shape.opts;
    let mut schedule = Schedule::new(shape.flow, shape.channels.len(), opts.warmup, opts.events);
    let board = shards.board();
    let t0 = Instant::now();
    let own_t0 = sysstat::process_cpu_seconds();
    let machine_t0 = sysstat::MachineTicks::now();
    schedule.start(t0, realtime_ns());
    let start_ns = realtime_ns();
    let published = pipeline::run(
        &pipeline::Options {
            addr: shape.publish_addr,
            connections: opts
                .publishers
                .unwrap_or(32)
                .clamp(1, shape.channels.len().max(1)),
            reply_timeout: REPLY_TIMEOUT,
            stall_timeout: Duration::from_secs_f64(opts.stall_timeout.max(0.1)),
            limit,
        },
        &shape.sink,
        &shape.channels,
        &mut schedule,
        &board,
        sent,
    );
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
    let cpu = WindowCost {
        start_ns,
        seconds: t0.elapsed().as_secs_f64(),
        own_cpu_seconds: sysstat::process_cpu_seconds() - own_t0,
        shards: shard_count,
        processes,
        machine_idle: sysstat::MachineTicks::now().idle_since(&machine_t0),
    };
    Window {
        published,
        outcome,
        cpu,
    }
}

/// CPU use in the publish window as a share of the machine; `busiest` is the busiest server
/// thread's CPU seconds over it.
fn cpu_share(
    w: &WindowCost,
    o: &Outcome,
    server: Option<&ServerFigures>,
    busiest: f64,
) -> CpuShare {
    let workers_window = if w.processes {
        (o.cpu_at_end - o.cpu_at_ready).max(0.0)
    } else {
        0.0
    };
    let cores = sysstat::cores();
    let machine = (w.seconds * cores as f64).max(1e-9);
    let bench_window = w.own_cpu_seconds + workers_window;
    CpuShare {
        window_seconds: w.seconds,
        cores,
        server_cpu_seconds: server.map(|s| s.cpu_seconds_publishing),
        server_share: server.map(|s| s.cpu_seconds_publishing / machine),
        bench_cpu_seconds: bench_window,
        bench_share: bench_window / machine,
        server_busiest_thread: server.map(|_| busiest / w.seconds.max(1e-9)),
        machine_idle: w.machine_idle,
    }
}

/// The run's figures from the subscribers' outcome and the publisher's side (the connect
/// phase, the server's and the bench's cost are the caller's to fill in).
fn figures(
    shape: &Shape<'_>,
    o: Outcome,
    start_ns: u64,
    published: Published,
    cpu: CpuShare,
) -> Figures {
    let expected = o.connected * shape.opts.events;
    let span_ns = o.last_delivery_ns.saturating_sub(start_ns);
    let latency = o.delivery.summary();
    Figures {
        system: shape.system.to_owned(),
        run: shape.run.0,
        connected: o.connected,
        failed: o.failed,
        failures: o.failures.clone(),
        error_lines: o.error_lines.clone(),
        framing: o.framing.clone(),
        expected,
        delivered: o.delivered,
        bytes_received: o.bytes_received,
        lost: o.lost(expected),
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
        connect_seconds: 0.0,
        publish: published,
        idle_but_slow: cpu.idle_but_slow(latency.p99_ms),
        starved: cpu.starved(latency.p99_ms),
        cpu,
        server: None,
        bench: BenchCost::default(),
        histogram: o.delivery,
    }
}

/// The server's figures from its samples before the subscribers connected, once they had,
/// and after the run (none without a pid).
fn server_figures(
    pids: &[u32],
    before: ServerSample,
    connected: ServerSample,
    after: ServerSample,
    o: &Outcome,
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
