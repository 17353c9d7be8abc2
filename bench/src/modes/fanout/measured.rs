//! What one run of one system in `fanout` measured ([`Figures`]): deliveries, loss, order,
//! latency from each event's stamp, the publisher's side, the CPU the server and the bench
//! used in the publish window as a share of the machine (the idle-but-slow detector), and
//! the problems and warnings those figures show.

use crate::figures::latency::{Latency, Summary};
use crate::figures::report::BenchCost;
use crate::publisher::publish::Published;

/// Deliveries later than this count as late (ms).
pub const LATE_MS: u64 = 100;
/// Deliveries later than this count as stalled (ms).
pub const STALLED_MS: u64 = 1000;
/// A server thread busy this share of the publish window counts as saturated.
pub const SATURATED_THREAD: f64 = 0.9;
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
    /// The share of the whole machine idle in the window (idle and iowait of `/proc/stat`):
    /// near 0, something took every CPU, the bench's and the server's included.
    #[serde(default)]
    pub machine_idle: Option<f64>,
}

/// Below this share of the machine idle in the window, a slow run with an idle server was
/// starved of CPU by other processes, not stalled.
pub const STARVED_IDLE: f64 = 0.10;

impl CpuShare {
    /// p99 over a second while the server used under half of the machine and none of its
    /// threads was saturated: the time went somewhere other than work (a stall, a timer, a
    /// lock), not to CPU. (A single-threaded server such as Redis is saturated at one core:
    /// its busiest thread shows it, whatever share of the machine that is.)
    /// A machine with no idle CPU meanwhile is [`CpuShare::starved`] instead.
    pub fn idle_but_slow(&self, p99_ms: f64) -> bool {
        self.slow_with_an_unbusy_server(p99_ms)
            && self.machine_idle.is_none_or(|i| i >= STARVED_IDLE)
    }

    /// p99 over a second while the server used under half of the machine, none of its
    /// threads was saturated, and yet the machine had under [`STARVED_IDLE`] of it idle:
    /// other processes took the CPU (the server and the bench were ready to run and waited
    /// for it). With `kernel.sched_autogroup_enabled=1` each session gets an equal share of
    /// the CPU whatever its processes' nice values: a measurement's session needs its own
    /// priority (`echo -10 > /proc/self/autogroup`).
    pub fn starved(&self, p99_ms: f64) -> bool {
        self.slow_with_an_unbusy_server(p99_ms)
            && self.machine_idle.is_some_and(|i| i < STARVED_IDLE)
    }

    fn slow_with_an_unbusy_server(&self, p99_ms: f64) -> bool {
        p99_ms > STALLED_MS as f64
            && self.server_share.is_some_and(|s| s < 0.5)
            && self
                .server_busiest_thread
                .is_none_or(|t| t < SATURATED_THREAD)
    }
}

impl Figures {
    /// Bytes the subscribers read per measured delivery (`None` before any delivery).
    pub fn bytes_per_delivery(&self) -> Option<f64> {
        (self.delivered > 0).then(|| self.bytes_received as f64 / self.delivered as f64)
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
    pub failures: crate::subscribers::outcome::FailureCounts,
    /// `ERROR:` lines by reason.
    pub error_lines: std::collections::BTreeMap<String, u64>,
    /// Framing (or RESP, NATS) violations by description.
    pub framing: std::collections::BTreeMap<String, u64>,
    /// `connected × E` (measured events only).
    pub expected: u64,
    /// Measured deliveries received.
    pub delivered: u64,
    /// Bytes the subscribers read (answer heads, statuses, every event and keep-alive).
    #[serde(default)]
    pub bytes_received: u64,
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
    /// p99 over 1 s while the server used under half of the machine, and the machine had
    /// idle CPU: a stall.
    pub idle_but_slow: bool,
    /// p99 over 1 s while the server used under half of the machine, and the machine had no
    /// idle CPU: other processes took it.
    #[serde(default)]
    pub starved: bool,
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
                crate::figures::report::counts(&self.failures)
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

#[cfg(test)]
impl Figures {
    /// Run `run` of `system` with this delivery p99 and count, all else default (tests).
    pub(crate) fn sample(system: &str, run: u32, p99: f64, delivered: u64) -> Figures {
        let mut f = Figures {
            system: system.into(),
            run,
            delivered,
            ..Figures::default()
        };
        f.latency.p99_ms = p99;
        f
    }
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
    fn a_slow_run_on_a_machine_with_no_idle_cpu_is_starved_not_stalled() {
        let share = |idle: Option<f64>| CpuShare {
            server_share: Some(0.11),
            server_busiest_thread: Some(0.14),
            machine_idle: idle,
            ..CpuShare::default()
        };
        // (machine idle, p99 ms, idle-but-slow, starved)
        let cases = [
            (Some(0.0), 2974.0, false, true), // measured: every CPU went to other sessions
            (Some(0.09), 1500.0, false, true),
            (Some(0.10), 1500.0, true, false), // the machine had room: a stall
            (Some(0.6), 1500.0, true, false),
            (None, 1500.0, true, false),      // unreadable: as before
            (Some(0.0), 900.0, false, false), // not slow
        ];
        for (idle, p99, stalled, starved) in cases {
            let c = share(idle);
            assert_eq!(c.idle_but_slow(p99), stalled, "{idle:?} {p99}");
            assert_eq!(c.starved(p99), starved, "{idle:?} {p99}");
        }
        let busy = CpuShare {
            server_share: Some(0.7),
            machine_idle: Some(0.0),
            ..CpuShare::default()
        };
        assert!(
            !busy.starved(5000.0),
            "a busy server explains its own latency"
        );
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
