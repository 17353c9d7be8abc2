//! Live counters and the progress line.
//!
//! Every load loop bumps a [`Live`] (atomics, relaxed: they are only displayed); a worker
//! process sends snapshots of its own to the coordinator, which stores them in the `Live` it
//! keeps for that worker. The progress line sums them: on a terminal (or with `--progress`)
//! it is rewritten in place on stderr every quarter second, otherwise a plain line is printed
//! every five seconds, and nothing at all for runs shorter than [`QUIET_START`].

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs shorter than this print no progress.
pub const QUIET_START: Duration = Duration::from_secs(2);
/// Rewrite interval of the in-place line.
const TTY_EVERY: Duration = Duration::from_millis(250);
/// Interval of plain lines when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Counters a load loop updates as it goes.
#[derive(Debug, Default)]
pub struct Live {
    /// Subscribers or requests started.
    pub started: AtomicU64,
    /// Subscribers that got their status.
    pub connected: AtomicU64,
    /// Subscribers or requests that ended well.
    pub ok: AtomicU64,
    /// Subscribers or requests that failed.
    pub failed: AtomicU64,
    /// Measured deliveries received.
    pub delivered: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Delivery latency p50 over the last second of deliveries, µs.
    pub p50_us: AtomicU64,
    /// Delivery latency p99 over the last second of deliveries, µs.
    pub p99_us: AtomicU64,
    /// Resumes done (`soak`): subscribers that reconnected with `SINCE`.
    pub resumes: AtomicU64,
    /// Resumes under way: disconnected, their `SINCE` command not sent yet.
    pub resuming: AtomicU64,
}

/// A copy of a [`Live`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[allow(missing_docs)]
pub struct Snapshot {
    pub started: u64,
    pub connected: u64,
    pub ok: u64,
    pub failed: u64,
    pub delivered: u64,
    pub open: u64,
    #[serde(default)]
    pub p50_us: u64,
    #[serde(default)]
    pub p99_us: u64,
    #[serde(default)]
    pub resumes: u64,
    #[serde(default)]
    pub resuming: u64,
}

impl Live {
    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            started: g(&self.started),
            connected: g(&self.connected),
            ok: g(&self.ok),
            failed: g(&self.failed),
            delivered: g(&self.delivered),
            open: g(&self.open),
            p50_us: g(&self.p50_us),
            p99_us: g(&self.p99_us),
            resumes: g(&self.resumes),
            resuming: g(&self.resuming),
        }
    }

    /// Overwrites every counter (a worker's latest snapshot).
    pub fn store(&self, s: &Snapshot) {
        let p = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        p(&self.started, s.started);
        p(&self.connected, s.connected);
        p(&self.ok, s.ok);
        p(&self.failed, s.failed);
        p(&self.delivered, s.delivered);
        p(&self.open, s.open);
        p(&self.p50_us, s.p50_us);
        p(&self.p99_us, s.p99_us);
        p(&self.resumes, s.resumes);
        p(&self.resuming, s.resuming);
    }

    /// The sum of several (the live percentiles: the worst shard's, which bounds the whole).
    pub fn sum(lives: &[Arc<Live>]) -> Snapshot {
        lives
            .iter()
            .map(|l| l.snapshot())
            .fold(Snapshot::default(), |a, b| Snapshot {
                started: a.started + b.started,
                connected: a.connected + b.connected,
                ok: a.ok + b.ok,
                failed: a.failed + b.failed,
                delivered: a.delivered + b.delivered,
                open: a.open + b.open,
                p50_us: a.p50_us.max(b.p50_us),
                p99_us: a.p99_us.max(b.p99_us),
                resumes: a.resumes + b.resumes,
                resuming: a.resuming + b.resuming,
            })
    }
}

/// When to print progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In place on a terminal, plain lines otherwise.
    Auto,
    /// In place even when stderr is not a terminal (`--progress`).
    InPlace,
    /// Never (`--quiet`).
    Off,
}

/// A running progress line; [`Progress::finish`] (or drop) stops and clears it.
#[derive(Debug)]
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts printing `render(elapsed)` per `mode`.
    pub fn start(mode: Mode, render: impl Fn(Duration) -> String + Send + 'static) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        if mode == Mode::Off {
            return Progress { stop, thread: None };
        }
        let in_place = mode == Mode::InPlace || std::io::stderr().is_terminal();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || progress_loop(&flag, in_place, &render))
            .ok();
        Progress { stop, thread }
    }

    /// Stops the line and clears it.
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn progress_loop(stop: &AtomicBool, in_place: bool, render: &dyn Fn(Duration) -> String) {
    let started = Instant::now();
    let every = if in_place { TTY_EVERY } else { PLAIN_EVERY };
    let mut next = QUIET_START;
    let mut printed = false;
    while !stop.load(Ordering::Relaxed) {
        // Woken early by `finish`, so stopping never delays the run.
        std::thread::park_timeout(Duration::from_millis(50));
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let elapsed = started.elapsed();
        if elapsed < next {
            continue;
        }
        next = elapsed + every;
        let line = render(elapsed);
        let mut err = std::io::stderr().lock();
        let _ = if in_place {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        printed = true;
    }
    if in_place && printed {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
}

/// `12.3s` style elapsed time for progress lines.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_sum_and_store() {
        let a = Arc::new(Live::default());
        let b = Arc::new(Live::default());
        a.ok.fetch_add(2, Ordering::Relaxed);
        b.store(&Snapshot {
            ok: 3,
            open: 5,
            ..Snapshot::default()
        });
        let s = Live::sum(&[a, b]);
        assert_eq!((s.ok, s.open), (5, 5));
    }
}
