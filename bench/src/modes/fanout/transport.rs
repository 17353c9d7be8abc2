//! `fanout --transport tcp|sse|tcp,sse`: how matchstream's subscribers receive the events —
//! the stream protocol (version 2) on a stream port after a checkin, or server-sent events
//! (`GET /1/match/<id>/stream`) on the API port of the nodes under test — and, with both in
//! one invocation, what SSE costs against TCP ([`SseVsTcp`]): per run, the server's CPU
//! seconds per delivery over each transport, measured back to back on the same server, and
//! their ratio against the goal (within [`GOAL`]).
//!
//! The Redis and NATS baselines are TCP pub/sub: they run beside matchstream's TCP run and are
//! compared with it; `--transport sse` alone with a baseline is refused (nothing to compare it
//! with over SSE).

use matchstream_protocol::{sse, Event, EventData, EventKind, MatchId};

use crate::modes::fanout::measured::Figures;
use crate::modes::fanout::runs::{median, SystemRuns};
use crate::publisher::publish;
use crate::wire::decode::Protocol;

/// The goal: SSE's server CPU per delivery within this factor of TCP's.
pub const GOAL: f64 = 1.2;

/// How matchstream's subscribers receive the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Transport {
    /// The stream protocol, version 2, on the stream port a checkin names (or `--targets`).
    Tcp,
    /// Server-sent events: `GET /1/match/<id>/stream` on the API port (or `--sse-targets`).
    Sse,
}

impl Transport {
    /// `tcp` or `sse`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Sse => "sse",
        }
    }

    /// The system's name in the report: `matchstream` over TCP (as before the transports),
    /// `matchstream-sse` over SSE.
    pub fn system(self) -> &'static str {
        match self {
            Transport::Tcp => "matchstream",
            Transport::Sse => "matchstream-sse",
        }
    }

    /// The subscribers' protocol.
    pub fn protocol(self) -> Protocol {
        match self {
            Transport::Tcp => Protocol::Stream { version: 2 },
            Transport::Sse => Protocol::Sse,
        }
    }

    /// What the transport is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp (stream protocol v2 on a stream port, after a checkin)",
            Transport::Sse => "sse (GET /1/match/<id>/stream on the API port, text/event-stream)",
        }
    }
}

/// The transports asked for, each once, TCP first: the order they run in.
pub fn normalize(asked: &[Transport]) -> Vec<Transport> {
    let mut t = asked.to_vec();
    t.sort_unstable();
    t.dedup();
    if t.is_empty() {
        t.push(Transport::Tcp);
    }
    t
}

/// Bytes of the SSE event of a measured event with seq `seq` and a comment of `len` bytes.
pub fn sse_frame_size(seq: u64, len: usize) -> usize {
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
    sse::render_event(&event, &mut out);
    out.len()
}

/// One run's SSE against TCP.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunCost {
    /// Run number (from 1).
    pub run: u32,
    /// The server's CPU seconds per million deliveries over TCP (null without --server-pid).
    pub tcp_server_cpu_seconds_per_million: Option<f64>,
    /// The same over SSE.
    pub sse_server_cpu_seconds_per_million: Option<f64>,
    /// SSE / TCP of the server's CPU per delivery.
    pub server_cpu_ratio: Option<f64>,
    /// SSE / TCP of the bench's own CPU per delivery in the publish window.
    pub bench_cpu_ratio: Option<f64>,
    /// SSE / TCP of the bytes a subscriber reads per delivery.
    pub bytes_ratio: Option<f64>,
}

/// SSE against TCP over every run of the invocation.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SseVsTcp {
    /// Each run: both transports measured back to back on the same server.
    pub runs: Vec<RunCost>,
    /// Median over the runs of the server's CPU per delivery, SSE / TCP (null without
    /// --server-pid).
    pub server_cpu_ratio: Option<f64>,
    /// Median of the bench's CPU per delivery, SSE / TCP.
    pub bench_cpu_ratio: Option<f64>,
    /// Median of the bytes read per delivery, SSE / TCP.
    pub bytes_ratio: Option<f64>,
    /// The goal: the server's ratio at most this.
    pub goal: f64,
    /// Whether the median server ratio is within the goal (null when unknown).
    pub within_goal: Option<bool>,
}

impl SseVsTcp {
    /// The comparison of the TCP and SSE systems' runs, paired by run number.
    pub fn new(tcp: &SystemRuns, sse: &SystemRuns) -> SseVsTcp {
        let runs: Vec<RunCost> = tcp
            .runs
            .iter()
            .filter_map(|t| {
                let s = sse.runs.iter().find(|s| s.run == t.run)?;
                let (tc, sc) = (server_cost(t), server_cost(s));
                Some(RunCost {
                    run: t.run,
                    tcp_server_cpu_seconds_per_million: tc,
                    sse_server_cpu_seconds_per_million: sc,
                    server_cpu_ratio: ratio(sc, tc),
                    bench_cpu_ratio: ratio(bench_cost(s), bench_cost(t)),
                    bytes_ratio: ratio(s.bytes_per_delivery(), t.bytes_per_delivery()),
                })
            })
            .collect();
        let med = |get: fn(&RunCost) -> Option<f64>| {
            let v: Vec<f64> = runs.iter().filter_map(get).collect();
            (!v.is_empty()).then(|| median(&v))
        };
        let server_cpu_ratio = med(|r| r.server_cpu_ratio);
        SseVsTcp {
            server_cpu_ratio,
            bench_cpu_ratio: med(|r| r.bench_cpu_ratio),
            bytes_ratio: med(|r| r.bytes_ratio),
            goal: GOAL,
            within_goal: server_cpu_ratio.map(|r| r <= GOAL),
            runs,
        }
    }

    /// The table's lines: the ratios, each run's, and the verdict on the goal.
    pub fn lines(&self) -> String {
        let x = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}x"));
        let per_run: Vec<String> = self
            .runs
            .iter()
            .map(|r| format!("run {} {}", r.run, x(r.server_cpu_ratio)))
            .collect();
        let verdict = match self.within_goal {
            Some(true) => format!("within the goal of {GOAL}x"),
            Some(false) => format!("ABOVE the goal of {GOAL}x"),
            None => "unknown: give --server-pid to measure the server's CPU".to_owned(),
        };
        format!(
            "sse/tcp: server CPU per delivery {} ({}), {verdict}; bench CPU per delivery {}, \
             bytes per delivery {}\n",
            x(self.server_cpu_ratio),
            per_run.join(", "),
            x(self.bench_cpu_ratio),
            x(self.bytes_ratio)
        )
    }

    /// The warning when SSE costs the server more than the goal allows.
    pub fn warning(&self) -> Option<String> {
        match (self.within_goal, self.server_cpu_ratio) {
            (Some(false), Some(r)) => Some(format!(
                "SSE cost the server {r:.2}x TCP's CPU per delivery (median over the runs; the \
                 goal is within {GOAL}x)"
            )),
            _ => None,
        }
    }
}

/// The server's CPU seconds per million deliveries of a run (with --server-pid).
fn server_cost(f: &Figures) -> Option<f64> {
    f.server
        .as_ref()
        .filter(|_| f.delivered > 0)
        .map(|s| s.cpu_seconds_per_million_deliveries)
}

/// The bench's CPU seconds per delivery in the publish window.
fn bench_cost(f: &Figures) -> Option<f64> {
    (f.delivered > 0).then(|| f.cpu.bench_cpu_seconds / f.delivered as f64)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes::fanout::measured::ServerFigures;

    fn run(system: &str, run: u32, cpu_per_m: Option<f64>, bytes: u64) -> Figures {
        let mut f = Figures::sample(system, run, 1.0, 1000);
        f.bytes_received = bytes;
        f.cpu.bench_cpu_seconds = 0.5;
        f.server = cpu_per_m.map(|c| ServerFigures {
            cpu_seconds_per_million_deliveries: c,
            ..ServerFigures::default()
        });
        f
    }

    #[test]
    fn transports_run_once_each_tcp_first() {
        use Transport::{Sse, Tcp};
        assert_eq!(normalize(&[Sse, Tcp, Sse]), [Tcp, Sse]);
        assert_eq!(normalize(&[Sse]), [Sse]);
        assert_eq!(normalize(&[]), [Tcp]);
        assert_eq!(
            (Tcp.system(), Sse.system()),
            ("matchstream", "matchstream-sse")
        );
    }

    #[test]
    fn the_ratio_is_sse_over_tcp_per_run_and_its_median() {
        let tcp = SystemRuns::new(
            vec![
                run("matchstream", 1, Some(10.0), 100_000),
                run("matchstream", 2, Some(10.0), 100_000),
                run("matchstream", 3, Some(20.0), 100_000),
            ],
            String::new(),
            "tcp",
        );
        let sse = SystemRuns::new(
            vec![
                run("matchstream-sse", 1, Some(11.0), 150_000),
                run("matchstream-sse", 2, Some(14.0), 150_000),
                run("matchstream-sse", 3, Some(22.0), 150_000),
            ],
            String::new(),
            "sse",
        );
        let c = SseVsTcp::new(&tcp, &sse);
        let ratios: Vec<Option<f64>> = c.runs.iter().map(|r| r.server_cpu_ratio).collect();
        assert_eq!(ratios, [Some(1.1), Some(1.4), Some(1.1)]);
        assert_eq!(c.server_cpu_ratio, Some(1.1));
        assert_eq!(c.within_goal, Some(true));
        assert_eq!(c.bytes_ratio, Some(1.5));
        assert_eq!(c.bench_cpu_ratio, Some(1.0));
        assert!(c.warning().is_none());
        let text = c.lines();
        assert!(text.contains("server CPU per delivery 1.10x"), "{text}");
        assert!(text.contains("run 2 1.40x"), "{text}");
        assert!(text.contains("within the goal of 1.2x"), "{text}");
        // Over the goal: a warning, not a failure.
        let costly = SystemRuns::new(
            vec![run("matchstream-sse", 1, Some(13.0), 150_000)],
            String::new(),
            "sse",
        );
        let c = SseVsTcp::new(&tcp, &costly);
        assert_eq!(c.within_goal, Some(false));
        assert!(c.warning().is_some_and(|w| w.contains("1.30x")));
        // Without --server-pid the server's ratio is unknown, and says how to get it.
        let blind = |s: &str, b| SystemRuns::new(vec![run(s, 1, None, b)], String::new(), "x");
        let c = SseVsTcp::new(&blind("matchstream", 100), &blind("matchstream-sse", 120));
        assert_eq!((c.server_cpu_ratio, c.within_goal), (None, None));
        assert!(c.lines().contains("give --server-pid"), "{}", c.lines());
    }

    #[test]
    fn an_sse_event_is_longer_than_its_v2_frame() {
        let sse = sse_frame_size(101, 0);
        let tcp = crate::modes::fanout::frame_size(101, 0);
        assert!(sse > tcp, "{sse} vs {tcp}");
        assert!(sse_frame_size(101, 500) >= 500);
    }
}
