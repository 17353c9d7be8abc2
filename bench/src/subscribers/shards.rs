//! Spreading subscribers over shards: one thread of this process when they fit under its
//! open-files limit, otherwise worker processes (this same binary re-executed with the hidden
//! `worker` subcommand), each holding a share below its own limit.
//!
//! Worker protocol, one JSON document per line: the coordinator writes the shard's
//! [`Plan`] on the worker's stdin and keeps stdin open; the worker answers on stdout with
//! `{"progress":{..}}` every quarter second, `{"frontier":[[match, seq],..]}` whenever the
//! smallest seq of a match's live subscribers changed (for the window of `fanout --rate max`,
//! kept on the run's [`Board`]), `"ready"` once every attempt has ended, and
//! finally `{"done":{..}}` (its [`Outcome`], histograms included, so they merge exactly) or
//! `{"error":".."}`. When the coordinator closes a worker's stdin, the worker gives up: what is
//! still open fails as `timeout` and it reports at once. A worker that does not report within a
//! grace period after that is killed by its pid.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::figures::progress::{Live, Snapshot};
use crate::net;
use crate::publisher::window::Board;
use crate::subscribers::plan::{Outcome, Plan};
use crate::subscribers::subscribe::{self, Signal};

/// How long a shard may take to report after it was told to give up.
const GRACE: Duration = Duration::from_secs(10);

/// Environment variable naming the executable to run as a worker (default: this one).
pub const EXE_ENV: &str = "MATCHSTREAM_BENCH_EXE";

/// One line of a worker's stdout.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerLine {
    /// Its live counters.
    Progress(Snapshot),
    /// Matches whose smallest live seq changed: `(match, seq or u64::MAX for none)`.
    Frontier(Vec<(u32, u64)>),
    /// Every attempt has ended.
    Ready,
    /// Its result.
    Done(Box<Outcome>),
    /// It failed to run.
    Error(String),
}

enum Msg {
    Ready(usize),
    Done(usize, Box<Result<Outcome, String>>),
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// Running shards of one subscriber run.
pub struct Shards {
    rx: Receiver<Msg>,
    lives: Vec<Arc<Live>>,
    board: Arc<Board>,
    workers: Vec<Worker>,
    threads: Vec<JoinHandle<()>>,
    abort: Arc<AtomicBool>,
    ready: Vec<bool>,
    done: Vec<Option<Result<Outcome, String>>>,
}

/// How a run is spread: `(shards, in worker processes)`.
pub fn layout(count: u64, concurrency: u64, workers: usize) -> (usize, bool) {
    if workers > 0 {
        return (workers, true);
    }
    let per_process = net::connections_per_process(concurrency + 16);
    if count <= per_process {
        (1, false)
    } else {
        // Each worker also spends its share of the concurrency on transient descriptors.
        let per_worker = net::connections_per_process(concurrency.div_ceil(2) + 16);
        (count.div_ceil(per_worker).max(2) as usize, true)
    }
}

/// Splits `plan` into `n` plans of contiguous subscriber ranges.
pub fn split(plan: &Plan, n: usize) -> Vec<Plan> {
    let n = n.max(1) as u64;
    let base = plan.count / n;
    let extra = plan.count % n;
    let mut first = plan.first;
    (0..n)
        .map(|i| {
            let count = base + u64::from(i < extra);
            let p = Plan {
                first,
                count,
                concurrency: plan.concurrency.div_ceil(n).max(1),
                ..plan.clone()
            };
            first += count;
            p
        })
        .collect()
}

impl Shards {
    /// Starts `plan` over `workers` worker processes (0 = decide from the open-files limit).
    pub fn start(plan: &Plan, workers: usize) -> anyhow::Result<Shards> {
        let (n, processes) = layout(plan.count, plan.concurrency, workers);
        let plans = split(plan, n);
        let (tx, rx) = mpsc::channel();
        let mut shards = Shards {
            rx,
            lives: (0..n).map(|_| Arc::new(Live::default())).collect(),
            board: Arc::new(Board::new(n, plan.channels.len())),
            workers: Vec::new(),
            threads: Vec::new(),
            abort: Arc::new(AtomicBool::new(false)),
            ready: vec![false; n],
            done: (0..n).map(|_| None).collect(),
        };
        for (i, p) in plans.into_iter().enumerate() {
            if processes {
                shards.spawn_worker(i, &p, tx.clone())?;
            } else {
                shards.spawn_thread(i, p, tx.clone())?;
            }
        }
        Ok(shards)
    }

    /// Number of shards and whether they are processes, for reports.
    pub fn describe(&self) -> (usize, bool) {
        (self.lives.len(), !self.workers.is_empty())
    }

    /// Live counters of every shard (for the progress line).
    pub fn lives(&self) -> Vec<Arc<Live>> {
        self.lives.clone()
    }

    /// The frontiers the shards report (the window of `fanout --rate max`).
    pub fn board(&self) -> Arc<Board> {
        self.board.clone()
    }

    /// The worker processes' pids (empty when the shards are threads).
    pub fn pids(&self) -> Vec<u32> {
        self.workers.iter().map(|w| w.child.id()).collect()
    }

    fn spawn_thread(&mut self, i: usize, plan: Plan, tx: Sender<Msg>) -> anyhow::Result<()> {
        let live = self.lives[i].clone();
        let abort = self.abort.clone();
        let board = self.board.clone();
        let t = std::thread::Builder::new()
            .name(format!("shard-{i}"))
            .spawn(move || {
                let ready_tx = tx.clone();
                let mut signal = |s: Signal<'_>| match s {
                    Signal::Ready => {
                        let _ = ready_tx.send(Msg::Ready(i));
                    }
                    Signal::Frontier(changes) => board.report(i, changes),
                    Signal::Tick => {}
                };
                let r = subscribe::run(&plan, &live, &abort, &mut signal);
                let _ = tx.send(Msg::Done(i, Box::new(r.map_err(|e| format!("{e:#}")))));
            })
            .context("starting a shard thread")?;
        self.threads.push(t);
        Ok(())
    }

    fn spawn_worker(&mut self, i: usize, plan: &Plan, tx: Sender<Msg>) -> anyhow::Result<()> {
        let exe = match std::env::var_os(EXE_ENV) {
            Some(p) => p.into(),
            None => std::env::current_exe().context("locating the bench executable")?,
        };
        let mut child = Command::new(&exe)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting worker {} ({})", i, exe.display()))?;
        let mut stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let mut line = serde_json::to_vec(plan)?;
        line.push(b'\n');
        stdin
            .write_all(&line)
            .context("sending a worker its plan")?;
        stdin.flush()?;
        let live = self.lives[i].clone();
        let board = self.board.clone();
        let t = std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || read_worker(i, stdout, &live, &board, &tx))
            .context("starting a worker reader")?;
        self.threads.push(t);
        self.workers.push(Worker {
            child,
            stdin: Some(stdin),
        });
        Ok(())
    }

    /// Waits until every shard is ready (every attempt ended) or `limit`; true if all are.
    pub fn wait_ready(&mut self, limit: Instant) -> bool {
        while !self.ready.iter().all(|r| *r) {
            // Short waits, so that Ctrl-C is heard while subscribers connect.
            let until = limit.min(Instant::now() + Duration::from_millis(100));
            if !self.receive(until) && (Instant::now() >= limit || crate::interrupt::requested()) {
                return false;
            }
        }
        true
    }

    /// Receives one message (false at `limit`).
    fn receive(&mut self, limit: Instant) -> bool {
        let wait = limit.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(wait) {
            Ok(Msg::Ready(i)) => self.ready[i] = true,
            Ok(Msg::Done(i, r)) => {
                self.ready[i] = true;
                self.done[i] = Some(*r);
            }
            Err(RecvTimeoutError::Timeout) => return false,
            Err(RecvTimeoutError::Disconnected) => {
                // Every sender is gone: nothing more will come.
                for (r, d) in self.ready.iter_mut().zip(&mut self.done) {
                    *r = true;
                    d.get_or_insert_with(|| Err("shard ended without a result".into()));
                }
            }
        }
        true
    }

    /// Tells every shard to give up now.
    pub fn abort(&mut self) {
        self.abort.store(true, Ordering::Relaxed);
        for w in &mut self.workers {
            w.stdin = None;
        }
    }

    /// Waits for every shard's result (until `limit`, then tells them to give up, then kills
    /// workers that still do not report) and merges them.
    pub fn finish(mut self, limit: Instant) -> anyhow::Result<Outcome> {
        let mut aborted = false;
        while self.done.iter().any(Option::is_none) {
            let until = if aborted { limit + GRACE } else { limit };
            if !self.receive(until) {
                if aborted {
                    break;
                }
                self.abort();
                aborted = true;
            }
        }
        self.abort();
        for w in &mut self.workers {
            if self.done.iter().any(Option::is_none) {
                // Only our own children, by their pid.
                let _ = w.child.kill();
            }
            let _ = w.child.wait();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let mut total = Outcome::default();
        for (i, d) in self.done.iter().enumerate() {
            match d {
                Some(Ok(o)) => total.merge(o),
                Some(Err(e)) => bail!("shard {i}: {e}"),
                None => bail!("shard {i} did not report"),
            }
        }
        Ok(total)
    }
}

fn read_worker(
    i: usize,
    stdout: std::process::ChildStdout,
    live: &Live,
    board: &Board,
    tx: &Sender<Msg>,
) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<WorkerLine>(&line) {
            Ok(WorkerLine::Progress(s)) => live.store(&s),
            Ok(WorkerLine::Frontier(changes)) => board.report(i, &changes),
            Ok(WorkerLine::Ready) => {
                let _ = tx.send(Msg::Ready(i));
            }
            Ok(WorkerLine::Done(o)) => {
                let _ = tx.send(Msg::Done(i, Box::new(Ok(*o))));
                return;
            }
            Ok(WorkerLine::Error(e)) => {
                let _ = tx.send(Msg::Done(i, Box::new(Err(e))));
                return;
            }
            Err(e) => {
                let msg = format!("unreadable worker output: {e}");
                let _ = tx.send(Msg::Done(i, Box::new(Err(msg))));
                return;
            }
        }
    }
    let msg = "worker exited without a result".to_owned();
    let _ = tx.send(Msg::Done(i, Box::new(Err(msg))));
}

/// The hidden `worker` subcommand: reads a [`Plan`] from stdin, runs it, reports on stdout.
pub fn worker_main() -> anyhow::Result<()> {
    crate::interrupt::ignore();
    let mut stdin = BufReader::new(std::io::stdin());
    let mut first = String::new();
    stdin.read_line(&mut first).context("reading the plan")?;
    let plan: Plan = serde_json::from_str(&first).context("parsing the plan")?;
    let abort = Arc::new(AtomicBool::new(false));
    let flag = abort.clone();
    // The coordinator closes our stdin to make us give up (or it died).
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stdin.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
        flag.store(true, Ordering::Relaxed);
    });
    let live = Live::default();
    let out = std::io::stdout();
    let emit = |l: &WorkerLine| -> std::io::Result<()> {
        let mut lock = out.lock();
        serde_json::to_writer(&mut lock, l)?;
        lock.write_all(b"\n")?;
        lock.flush()
    };
    let mut signal = |s: Signal<'_>| {
        let line = match s {
            Signal::Ready => {
                // The counters as they stand at Ready, so the coordinator's are exact then
                // rather than up to a tick old.
                let _ = emit(&WorkerLine::Progress(live.snapshot()));
                WorkerLine::Ready
            }
            Signal::Tick => WorkerLine::Progress(live.snapshot()),
            Signal::Frontier(changes) => WorkerLine::Frontier(changes.to_vec()),
        };
        let _ = emit(&line);
    };
    let line = match subscribe::run(&plan, &live, &abort, &mut signal) {
        Ok(o) => WorkerLine::Done(Box::new(o)),
        Err(e) => WorkerLine::Error(format!("{e:#}")),
    };
    emit(&line).context("reporting to the coordinator")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::plan::Target;
    use crate::wire::decode::Protocol;

    fn plan(count: u64) -> Plan {
        Plan {
            protocol: Protocol::Stream { version: 2 },
            target: Target::Direct(vec!["127.0.0.1:1".parse().expect("addr")]),
            channels: vec!["a-b-2011-09-13".into()],
            user_prefix: "u".into(),
            first: 0,
            count,
            concurrency: 10,
            connect_timeout_ms: 1000,
            time_limit_ms: 1000,
            source_ips: None,
            resume: None,
        }
    }

    #[test]
    fn splits_cover_every_subscriber_once() {
        let parts = split(&plan(10), 3);
        let counts: Vec<u64> = parts.iter().map(|p| p.count).collect();
        assert_eq!(counts, [4, 3, 3]);
        let firsts: Vec<u64> = parts.iter().map(|p| p.first).collect();
        assert_eq!(firsts, [0, 4, 7]);
        assert!(parts.iter().all(|p| p.concurrency == 4));
    }

    #[test]
    fn layout_uses_workers_beyond_the_open_files_limit() {
        assert_eq!(layout(100, 10, 0), (1, false));
        assert_eq!(layout(100, 10, 3), (3, true));
        let limit = net::connections_per_process(26);
        let (n, procs) = layout(limit * 3, 10, 0);
        assert!(procs && n >= 3, "{n}");
    }

    #[test]
    fn worker_lines_round_trip() {
        let text = serde_json::to_string(&WorkerLine::Ready).expect("json");
        assert_eq!(text, "\"ready\"");
        let f = serde_json::to_string(&WorkerLine::Frontier(vec![(3, 7)])).expect("json");
        assert_eq!(f, r#"{"frontier":[[3,7]]}"#);
        let done = serde_json::to_string(&WorkerLine::Done(Box::default())).expect("json");
        assert!(matches!(
            serde_json::from_str::<WorkerLine>(&done).expect("back"),
            WorkerLine::Done(_)
        ));
    }
}
