//! What a `fanout` invocation reports: its setup (matchstream's transports among it), every
//! run of every system and the medians ([`crate::modes::fanout::runs`]), SSE against TCP when
//! both ran ([`crate::modes::fanout::transport`]), the problems that fail it and the warnings
//! that do not; as a table and as CSV (one line per run).

use crate::figures::report::{self, ms, Table};
use crate::modes::fanout::runs::{count, pct, publish_cell, ratio_columns, rows, SystemRuns};
use crate::modes::fanout::transport::{SseVsTcp, Transport};

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
    /// How matchstream's subscribers received the events, in the order they ran: `tcp`
    /// (system `matchstream`), `sse` (system `matchstream-sse`).
    #[serde(default)]
    pub transports: Vec<String>,
    /// Bytes of each measured event's v2 frame (the baselines' payload size).
    pub frame_bytes: usize,
    /// Bytes of each measured event as an SSE event (null without the SSE transport).
    #[serde(default)]
    pub sse_frame_bytes: Option<usize>,
    /// K.
    pub runs: u32,
    /// CPUs of the machine.
    pub cores: usize,
    /// The sampled server processes (--server-pid, --baseline-pid) and their command lines
    /// (the server's version and flags, as they ran).
    pub servers: Vec<ServerProcess>,
    /// matchstream first (over each transport), then each baseline: every run and the
    /// medians.
    pub systems: Vec<SystemRuns>,
    /// SSE against TCP, when both ran: the server's CPU per delivery (null otherwise).
    #[serde(default)]
    pub sse_vs_tcp: Option<SseVsTcp>,
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

    /// Every run of every system as CSV (`--csv`): one line per run, the figures of the
    /// per-run table.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "system,run,p50_ms,p95_ms,p99_ms,p99_9_ms,max_ms,over_100ms,over_1s,expected,\
             delivered,lost,duplicated,out_of_order,deliveries_per_second,\
             target_events_per_second,achieved_events_per_second,accepted_events_per_second,\
             server_share,bench_share,idle_but_slow,machine_idle,starved\n",
        );
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        for s in &self.systems {
            for f in &s.runs {
                let l = &f.latency;
                let p = &f.publish;
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
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
                    f.idle_but_slow,
                    opt(f.cpu.machine_idle),
                    f.starved
                ));
            }
        }
        out
    }

    /// The table printed at the end: the setup, one line per run, the medians side by side,
    /// then failures, warnings and problems.
    pub fn table(&self) -> String {
        let mut out = self.setup_lines();
        out.push_str(&self.runs_table().render());
        out.push('\n');
        out.push_str(&self.comparison_table().render());
        if let Some(c) = &self.sse_vs_tcp {
            out.push_str(&c.lines());
        }
        out.push_str(&self.closing_lines());
        out
    }

    /// Runs of the first system (each system has as many).
    fn done(&self) -> usize {
        self.systems.first().map_or(0, |s| s.runs.len())
    }

    /// The shape, the flow control and the sampled servers.
    fn setup_lines(&self) -> String {
        let fc = &self.flow_control;
        let warm = if self.warmup > 0 {
            format!(" (after {} warm-up)", self.warmup)
        } else {
            String::new()
        };
        let sse_frame = self
            .sse_frame_bytes
            .map_or(String::new(), |b| format!(" ({b} B as an SSE event)"));
        let transports: Vec<&str> = self
            .transports
            .iter()
            .filter_map(|t| {
                [Transport::Tcp, Transport::Sse]
                    .into_iter()
                    .find(|k| k.name() == t)
                    .map(Transport::describe)
            })
            .collect();
        let mut out = format!(
            "fanout: N={} subscribers over M={} matches, E={} events each{warm}, frame {} \
             B{sse_frame}, {} run(s), {} cores\ntransport: {}\nflow control: {} ({} publishing \
             connection(s))\n\n",
            self.subscribers,
            self.matches,
            self.events,
            self.frame_bytes,
            self.runs,
            self.cores,
            transports.join("; then "),
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
        out
    }

    /// One line per run of every system, then (with several runs) each system's medians.
    fn runs_table(&self) -> Table {
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
                    } else if f.starved {
                        "STARVED".into()
                    } else {
                        String::new()
                    },
                ]);
            }
        }
        if self.done() > 1 {
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
        t
    }

    /// The systems side by side (medians over the runs) with SSE's ratio to TCP and
    /// matchstream's to each baseline.
    fn comparison_table(&self) -> Table {
        let done = self.done();
        let title = if done > 1 {
            format!("median of {done} runs")
        } else {
            "fanout".to_owned()
        };
        let mut header = vec![title];
        header.extend(self.systems.iter().map(|s| s.system.clone()));
        header.extend(ratio_columns(&self.systems).into_iter().map(|c| c.2));
        let mut cmp = Table::new(header);
        for row in rows(&self.systems) {
            cmp.row(row);
        }
        cmp
    }

    /// Failures and the bench's cost per system, the warnings, and the result.
    fn closing_lines(&self) -> String {
        let mut out = String::new();
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
                "{} over {} ({}): failures by run: {failures}; bench cost (last run): {cost}\n",
                s.system, s.transport, s.target
            ));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out.push_str(&report::result_lines(&self.problems));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes::fanout::measured::Figures;

    #[test]
    fn a_stalled_run_stays_visible_beside_the_median() {
        let runs = vec![
            Figures::sample("matchstream", 1, 2.0, 100),
            Figures::sample("matchstream", 2, 4000.0, 100),
            Figures::sample("matchstream", 3, 3.0, 100),
        ];
        let s = SystemRuns::new(runs, "http://x".into(), "tcp");
        assert_eq!(s.median.p99_ms, 3.0);
        let report = Report {
            subscribers: 1,
            matches: 1,
            events: 1,
            warmup: 0,
            rate: "max".into(),
            flow_control: FlowControl {
                mode: "window".into(),
                rate_per_match: None,
                window: Some(64),
                publishers: 1,
                description: "window W=64".into(),
            },
            transports: vec!["tcp".into()],
            frame_bytes: 10,
            sse_frame_bytes: None,
            runs: 3,
            cores: 2,
            servers: Vec::new(),
            systems: vec![s],
            sse_vs_tcp: None,
            problems: vec!["matchstream run 2: 1 deliveries lost".into()],
            warnings: Vec::new(),
        };
        let text = report.table();
        assert!(
            text.contains("transport: tcp (stream protocol v2"),
            "{text}"
        );
        assert!(text.contains("matchstream over tcp (http://x)"), "{text}");
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
}
