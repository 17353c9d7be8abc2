//! `fanout --runs K`: every run of every system, their medians, and the tables: one line per
//! run (p50/p95/p99/max, deliveries later than 100 ms and 1 s, loss, publish rate, CPU shares,
//! the IDLE-BUT-SLOW flag) so that a stall in one run stays visible, then the systems side by
//! side (medians over the runs) with matchstream's ratio to each baseline.

use crate::fanout::Report;
use crate::latency::Latency;
use crate::measure::Figures;
use crate::report::{self, ms, Table};

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
    /// `matchstream`, `redis` or `nats`.
    pub system: String,
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
    /// The runs of one system and their medians.
    pub fn new(runs: Vec<Figures>, target: String) -> SystemRuns {
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

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0}%", v * 100.0))
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn publish_cell(f: &Figures) -> String {
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

const ROWS: [Row; 25] = [
    ("connected", |f| Some(f.connected as f64), count),
    ("failed", |f| Some(f.failed as f64), count),
    ("expected deliveries", |f| Some(f.expected as f64), count),
    ("delivered", |f| Some(f.delivered as f64), count),
    ("lost", |f| Some(f.lost as f64), count),
    ("duplicated", |f| Some(f.duplicated as f64), count),
    ("out of order", |f| Some(f.out_of_order as f64), count),
    ("deliveries/s", |f| Some(f.deliveries_per_second), count),
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

/// The comparison rows: per figure, the median over each system's runs, then matchstream's
/// ratio to each baseline.
pub fn rows(systems: &[SystemRuns]) -> Vec<Vec<String>> {
    ROWS.iter()
        .map(|(name, get, fmt)| {
            let values: Vec<Option<f64>> =
                systems.iter().map(|s| median_of(&s.runs, get)).collect();
            let mut row = vec![(*name).to_owned()];
            row.extend(values.iter().map(|v| v.map_or("-".into(), fmt)));
            for b in values.iter().skip(1) {
                row.push(match (values[0], b) {
                    (Some(a), Some(b)) if *b != 0.0 => format!("{:.2}x", a / b),
                    _ => "-".into(),
                });
            }
            row
        })
        .collect()
}

impl Report {
    /// Every run of every system as CSV (`--csv`): one line per run, the figures of the
    /// per-run table.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "system,run,p50_ms,p95_ms,p99_ms,p99_9_ms,max_ms,over_100ms,over_1s,expected,\
             delivered,lost,duplicated,out_of_order,deliveries_per_second,\
             target_events_per_second,achieved_events_per_second,accepted_events_per_second,\
             server_share,bench_share,idle_but_slow\n",
        );
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        for s in &self.systems {
            for f in &s.runs {
                let l = &f.latency;
                let p = &f.publish;
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    f.system,
                    f.run,
                    l.p50_ms,
                    l.p95_ms,
                    l.p99_ms,
                    l.p99_9_ms,
                    l.max_ms,
                    f.over_100ms,
                    f.over_1s,
                    f.expected,
                    f.delivered,
                    f.lost,
                    f.duplicated,
                    f.out_of_order,
                    f.deliveries_per_second,
                    opt(p.target_events_per_second),
                    p.achieved_events_per_second,
                    p.accepted_events_per_second,
                    opt(f.cpu.server_share),
                    f.cpu.bench_share,
                    f.idle_but_slow
                ));
            }
        }
        out
    }

    /// The table printed at the end: the setup, one line per run, the medians side by side,
    /// then failures, warnings and problems.
    pub fn table(&self) -> String {
        let fc = &self.flow_control;
        let warm = if self.warmup > 0 {
            format!(" (after {} warm-up)", self.warmup)
        } else {
            String::new()
        };
        let mut out = format!(
            "fanout: N={} subscribers over M={} matches, E={} events each{warm}, frame {} B, \
             {} run(s), {} cores\nflow control: {} ({} publishing connection(s))\n\n",
            self.subscribers,
            self.matches,
            self.events,
            self.frame_bytes,
            self.runs,
            self.cores,
            fc.description,
            fc.publishers
        );
        for p in &self.servers {
            out.push_str(&format!(
                "server: {} pid {}: {}\n",
                p.system,
                p.pid,
                p.command.join(" ")
            ));
        }
        if !self.servers.is_empty() {
            out.push('\n');
        }
        let mut t = Table::new([
            "run",
            "system",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            ">100ms",
            ">1s",
            "lost",
            "deliveries/s",
            "published/s",
            "server CPU",
            "bench CPU",
            "",
        ]);
        for s in &self.systems {
            for f in &s.runs {
                t.row([
                    f.run.to_string(),
                    f.system.clone(),
                    ms(f.latency.p50_ms),
                    ms(f.latency.p95_ms),
                    ms(f.latency.p99_ms),
                    ms(f.latency.max_ms),
                    f.over_100ms.to_string(),
                    f.over_1s.to_string(),
                    f.lost.to_string(),
                    count(f.deliveries_per_second),
                    publish_cell(f),
                    pct(f.cpu.server_share),
                    pct(Some(f.cpu.bench_share)),
                    if f.idle_but_slow {
                        "IDLE-BUT-SLOW".into()
                    } else {
                        String::new()
                    },
                ]);
            }
        }
        let done = self.systems.first().map_or(0, |s| s.runs.len());
        if done > 1 {
            for s in &self.systems {
                let m = &s.median;
                t.row([
                    "median".to_owned(),
                    s.system.clone(),
                    ms(m.p50_ms),
                    ms(m.p95_ms),
                    ms(m.p99_ms),
                    ms(m.max_ms),
                    count(m.over_100ms),
                    count(m.over_1s),
                    String::new(),
                    count(m.deliveries_per_second),
                    format!("{:.1}", m.achieved_events_per_second),
                    pct(m.server_share),
                    pct(Some(m.bench_share)),
                    String::new(),
                ]);
            }
        }
        out.push_str(&t.render());
        out.push('\n');
        let title = if done > 1 {
            format!("median of {done} runs")
        } else {
            "fanout".to_owned()
        };
        let mut header = vec![title];
        header.extend(self.systems.iter().map(|s| s.system.clone()));
        header.extend(
            self.systems
                .iter()
                .skip(1)
                .map(|s| format!("matchstream/{}", s.system)),
        );
        let mut cmp = Table::new(header);
        for row in rows(&self.systems) {
            cmp.row(row);
        }
        out.push_str(&cmp.render());
        for s in &self.systems {
            let failures = s
                .runs
                .iter()
                .map(|f| report::counts(&f.failures))
                .collect::<Vec<_>>()
                .join(" | ");
            let cost = s
                .runs
                .last()
                .map_or(String::new(), |f| report::cost_line(&f.bench));
            out.push_str(&format!(
                "{} ({}): failures by run: {failures}; bench cost (last run): {cost}\n",
                s.system, s.target
            ));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        if self.problems.is_empty() {
            out.push_str("result: PASS\n");
        } else {
            out.push_str(&format!(
                "result: FAIL ({} problem(s))\n",
                self.problems.len()
            ));
            for p in &self.problems {
                out.push_str(&format!("  - {p}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(system: &str, run: u32, p99: f64, delivered: u64) -> Figures {
        let mut f = Figures {
            system: system.into(),
            run,
            delivered,
            ..Figures::default()
        };
        f.latency.p99_ms = p99;
        f
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn a_stalled_run_stays_visible_beside_the_median() {
        let runs = vec![
            run("matchstream", 1, 2.0, 100),
            run("matchstream", 2, 4000.0, 100),
            run("matchstream", 3, 3.0, 100),
        ];
        let s = SystemRuns::new(runs, "http://x".into());
        assert_eq!(s.median.p99_ms, 3.0);
        let report = Report {
            subscribers: 1,
            matches: 1,
            events: 1,
            warmup: 0,
            rate: "max".into(),
            flow_control: crate::fanout::FlowControl {
                mode: "window".into(),
                rate_per_match: None,
                window: Some(64),
                publishers: 1,
                description: "window W=64".into(),
            },
            frame_bytes: 10,
            runs: 3,
            cores: 2,
            servers: Vec::new(),
            systems: vec![s],
            problems: vec!["matchstream run 2: 1 deliveries lost".into()],
            warnings: Vec::new(),
        };
        let text = report.table();
        let line = text
            .lines()
            .find(|l| l.starts_with("2 "))
            .expect("run 2's line");
        assert!(line.contains("4000"), "{text}");
        assert!(text.contains("median"), "{text}");
        assert!(text.contains("result: FAIL"), "{text}");
        assert!(text.contains("window W=64"), "{text}");
        let csv = report.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        let columns = lines[0].split(',').count();
        assert!(
            lines.iter().all(|l| l.split(',').count() == columns),
            "{csv}"
        );
        assert!(lines[2].starts_with("matchstream,2,0,0,4000,"), "{csv}");
    }

    #[test]
    fn ratios_are_per_baseline() {
        let ms = SystemRuns::new(vec![run("matchstream", 1, 1.0, 200)], String::new());
        let redis = SystemRuns::new(vec![run("redis", 1, 1.0, 100)], String::new());
        let nats = SystemRuns::new(vec![run("nats", 1, 1.0, 50)], String::new());
        let rows = rows(&[ms, redis, nats]);
        let delivered = rows.iter().find(|r| r[0] == "delivered").expect("row");
        assert_eq!(delivered[1..], ["200", "100", "50", "2.00x", "4.00x"]);
        let single = super::rows(&[SystemRuns::new(vec![run("m", 1, 1.0, 1)], String::new())]);
        assert!(single.iter().all(|r| r.len() == 2));
    }
}
