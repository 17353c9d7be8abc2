//! `fanout --runs K`: every run of every system and their medians, and the cells of the
//! report's tables ([`crate::modes::fanout::report`]): one line per run (p50/p95/p99/max,
//! deliveries later than 100 ms and 1 s, loss, publish rate, CPU shares, the IDLE-BUT-SLOW
//! flag) so that a stall in one run stays visible, then the systems side by side (medians
//! over the runs) with matchstream's ratio to each baseline.

use crate::figures::latency::Latency;
use crate::figures::report::ms;
use crate::modes::fanout::measured::Figures;

/// Medians over the runs of one system.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Medians {
    /// Delivery latency p50, ms.
    pub p50_ms: f64,
    /// p95, ms.
    pub p95_ms: f64,
    /// p99, ms.
    pub p99_ms: f64,
    /// max, ms.
    pub max_ms: f64,
    /// Deliveries later than 100 ms.
    pub over_100ms: f64,
    /// Deliveries later than 1 s.
    pub over_1s: f64,
    /// Deliveries per second.
    pub deliveries_per_second: f64,
    /// Achieved publish rate (events/s).
    pub achieved_events_per_second: f64,
    /// Server CPU share of the machine in the publish window (null without a pid).
    pub server_share: Option<f64>,
    /// Bench CPU share of the machine in the publish window.
    pub bench_share: f64,
}

/// Every run of one system.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SystemRuns {
    /// `matchstream` (over TCP), `matchstream-sse`, `redis` or `nats`.
    pub system: String,
    /// How its subscribers receive the events: `tcp` (matchstream's stream ports, Redis and
    /// NATS) or `sse` (matchstream's event streams on the API port).
    #[serde(default)]
    pub transport: String,
    /// The URL measured.
    pub target: String,
    /// Each run, in order.
    pub runs: Vec<Figures>,
    /// Medians over the runs.
    pub median: Medians,
}

/// The median of `values` (the mean of the middle two for an even count; 0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn median_of(runs: &[Figures], get: impl Fn(&Figures) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = runs.iter().filter_map(get).collect();
    (!values.is_empty()).then(|| median(&values))
}

impl SystemRuns {
    /// The runs of one system over `transport` and their medians.
    pub fn new(runs: Vec<Figures>, target: String, transport: &str) -> SystemRuns {
        let m = |get: fn(&Figures) -> f64| median_of(&runs, |f| Some(get(f))).unwrap_or(0.0);
        let median = Medians {
            p50_ms: m(|f| f.latency.p50_ms),
            p95_ms: m(|f| f.latency.p95_ms),
            p99_ms: m(|f| f.latency.p99_ms),
            max_ms: m(|f| f.latency.max_ms),
            over_100ms: m(|f| f.over_100ms as f64),
            over_1s: m(|f| f.over_1s as f64),
            deliveries_per_second: m(|f| f.deliveries_per_second),
            achieved_events_per_second: m(|f| f.publish.achieved_events_per_second),
            server_share: median_of(&runs, |f| f.cpu.server_share),
            bench_share: m(|f| f.cpu.bench_share),
        };
        SystemRuns {
            system: runs.first().map_or_else(String::new, |f| f.system.clone()),
            transport: transport.to_owned(),
            target,
            runs,
            median,
        }
    }

    /// Every run's deliveries in one histogram.
    pub fn merged(&self) -> Latency {
        let mut all = Latency::new();
        for f in &self.runs {
            all.merge(&f.histogram);
        }
        all
    }
}

/// The warning line of an idle-but-slow run.
pub fn idle_but_slow_line(f: &Figures) -> String {
    format!(
        "IDLE-BUT-SLOW: {} run {}: p99 {} ms while the server used {} of {} cores (busiest \
         thread {}): the time went to waiting (a stall, a timer, a lock), not to CPU",
        f.system,
        f.run,
        ms(f.latency.p99_ms),
        pct(f.cpu.server_share),
        f.cpu.cores,
        pct(f.cpu.server_busiest_thread)
    )
}

/// The warning line of a run starved of CPU by other processes.
pub fn starved_line(f: &Figures) -> String {
    format!(
        "STARVED: {} run {}: p99 {} ms while the server used {} of {} cores and the machine \
         was {} idle: other processes took the CPU (with kernel.sched_autogroup_enabled=1, \
         nice does not act across sessions; give the measuring session priority: \
         echo -10 > /proc/self/autogroup)",
        f.system,
        f.run,
        ms(f.latency.p99_ms),
        pct(f.cpu.server_share),
        f.cpu.cores,
        pct(f.cpu.machine_idle)
    )
}

/// A share as a whole percentage, `-` when unknown.
pub(super) fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0}%", v * 100.0))
}

/// A count.
pub(super) fn count(v: f64) -> String {
    format!("{v:.0}")
}

/// The achieved publish rate, with its share of the target (and the accepted share when lower).
pub(super) fn publish_cell(f: &Figures) -> String {
    let p = &f.publish;
    match (p.achieved_percent, p.accepted_percent) {
        (Some(sent), Some(ok)) if ok < sent - 0.5 => format!(
            "{:.1} ({sent:.0}%, accepted {ok:.0}%)",
            p.achieved_events_per_second
        ),
        (Some(sent), _) => format!("{:.1} ({sent:.0}%)", p.achieved_events_per_second),
        _ => format!("{:.1}", p.achieved_events_per_second),
    }
}

/// A row of the side-by-side comparison: its name, how to read it, how to print it.
type Row = (&'static str, fn(&Figures) -> Option<f64>, fn(f64) -> String);

const ROWS: [Row; 26] = [
    ("connected", |f| Some(f.connected as f64), count),
    ("failed", |f| Some(f.failed as f64), count),
    ("expected deliveries", |f| Some(f.expected as f64), count),
    ("delivered", |f| Some(f.delivered as f64), count),
    ("lost", |f| Some(f.lost as f64), count),
    ("duplicated", |f| Some(f.duplicated as f64), count),
    ("out of order", |f| Some(f.out_of_order as f64), count),
    ("deliveries/s", |f| Some(f.deliveries_per_second), count),
    ("bytes read/delivery", Figures::bytes_per_delivery, count),
    ("latency p50 ms", |f| Some(f.latency.p50_ms), ms),
    ("latency p90 ms", |f| Some(f.latency.p90_ms), ms),
    ("latency p95 ms", |f| Some(f.latency.p95_ms), ms),
    ("latency p99 ms", |f| Some(f.latency.p99_ms), ms),
    ("latency p99.9 ms", |f| Some(f.latency.p99_9_ms), ms),
    ("latency max ms", |f| Some(f.latency.max_ms), ms),
    ("deliveries > 100 ms", |f| Some(f.over_100ms as f64), count),
    ("deliveries > 1 s", |f| Some(f.over_1s as f64), count),
    ("connect phase s", |f| Some(f.connect_seconds), secs),
    (
        "published events/s",
        |f| Some(f.publish.achieved_events_per_second),
        one,
    ),
    ("publish lag max ms", |f| Some(f.publish.max_lag_ms), ms),
    (
        "answer lag max ms",
        |f| Some(f.publish.max_answer_lag_ms),
        ms,
    ),
    (
        "server bytes/subscriber",
        |f| f.server.as_ref().map(|s| s.bytes_per_subscriber),
        count,
    ),
    (
        "server CPU s/M deliveries",
        |f| {
            f.server
                .as_ref()
                .map(|s| s.cpu_seconds_per_million_deliveries)
        },
        secs,
    ),
    (
        "server CPU % of machine",
        |f| f.cpu.server_share.map(|s| s * 100.0),
        one,
    ),
    (
        "bench CPU % of machine",
        |f| Some(f.cpu.bench_share * 100.0),
        one,
    ),
    ("bench CPU s", |f| Some(f.bench.cpu_seconds), secs),
];

fn secs(v: f64) -> String {
    format!("{v:.2}")
}

fn one(v: f64) -> String {
    format!("{v:.1}")
}

/// The ratio columns of the comparison: `(numerator, denominator, header)`, indexes into the
/// systems: SSE over TCP when both ran (`sse/tcp`), then the first system (matchstream over
/// its first transport) over each baseline (`matchstream/redis`).
pub fn ratio_columns(systems: &[SystemRuns]) -> Vec<(usize, usize, String)> {
    let find = |name: &str| systems.iter().position(|s| s.system == name);
    let mut out = Vec::new();
    if let (Some(tcp), Some(sse)) = (find("matchstream"), find("matchstream-sse")) {
        out.push((sse, tcp, "sse/tcp".to_owned()));
    }
    for (i, s) in systems.iter().enumerate().skip(1) {
        if !s.system.starts_with("matchstream") {
            out.push((0, i, format!("{}/{}", systems[0].system, s.system)));
        }
    }
    out
}

/// The comparison rows: per figure, the median over each system's runs, then the ratios of
/// [`ratio_columns`].
pub fn rows(systems: &[SystemRuns]) -> Vec<Vec<String>> {
    let ratios = ratio_columns(systems);
    ROWS.iter()
        .map(|(name, get, fmt)| {
            let values: Vec<Option<f64>> =
                systems.iter().map(|s| median_of(&s.runs, get)).collect();
            let mut row = vec![(*name).to_owned()];
            row.extend(values.iter().map(|v| v.map_or("-".into(), fmt)));
            for &(a, b, _) in &ratios {
                row.push(match (values[a], values[b]) {
                    (Some(a), Some(b)) if b != 0.0 => format!("{:.2}x", a / b),
                    _ => "-".into(),
                });
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn ratios_are_per_baseline_and_sse_over_tcp() {
        let system = |name: &str, delivered, transport| {
            SystemRuns::new(
                vec![Figures::sample(name, 1, 1.0, delivered)],
                String::new(),
                transport,
            )
        };
        let ms = system("matchstream", 200, "tcp");
        let redis = system("redis", 100, "tcp");
        let nats = system("nats", 50, "tcp");
        let rows = rows(&[ms.clone(), redis.clone(), nats.clone()]);
        let delivered = rows.iter().find(|r| r[0] == "delivered").expect("row");
        assert_eq!(delivered[1..], ["200", "100", "50", "2.00x", "4.00x"]);
        let single = super::rows(&[system("m", 1, "tcp")]);
        assert!(single.iter().all(|r| r.len() == 2));
        // Both transports: SSE over TCP first, then matchstream (TCP) over each baseline.
        let all = [ms, system("matchstream-sse", 300, "sse"), redis];
        let headers: Vec<String> = ratio_columns(&all).into_iter().map(|c| c.2).collect();
        assert_eq!(headers, ["sse/tcp", "matchstream/redis"]);
        let rows = super::rows(&all);
        let delivered = rows.iter().find(|r| r[0] == "delivered").expect("row");
        assert_eq!(delivered[1..], ["200", "300", "100", "1.50x", "2.00x"]);
        // SSE alone: no ratio.
        assert!(ratio_columns(&[system("matchstream-sse", 1, "sse")]).is_empty());
    }
}
