//! The store thread: the only place a [`Store`] runs, so a core never blocks on storage.
//!
//! Cores call the typed operations of a [`StoreHandle`] ([`StoreHandle::create`], ...), which
//! send an [`Op`] and await its answer on a oneshot channel whose waker the store thread fires
//! (glommio accepts wakes from foreign threads). The thread takes
//! every request waiting in its channel as one batch (group commit: one transaction and one
//! fsync however many events arrived together), then publishes what was committed on the bus
//! *before* answering, so a client that got its 201 finds the event on every core. Connect
//! visits are coalesced per user and ride along with the next commit (at most [`VISIT_DELAY`]
//! later), so a connect burst costs a handful of commits.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use futures_channel::oneshot;
use matchstream_protocol::{Event, Match, MatchId, NewMatch, PostedEvent};

use super::{Op, Outcome, Store, StoreError};
use crate::bus::{BusHandle, BusMsg};
use crate::health::StoreHealth;
use crate::stats::store::StoreStats;

/// The store thread's name.
pub const THREAD_NAME: &str = "matchstream-store";

/// Most operations committed together.
pub const MAX_BATCH: usize = 4096;

type Reply = oneshot::Sender<Result<Outcome, StoreError>>;

struct Request {
    op: Op,
    reply: Option<Reply>,
}

/// A core's (or any thread's) way to the store thread; cheap to clone.
#[derive(Clone)]
pub struct StoreHandle {
    tx: Sender<Request>,
}

impl StoreHandle {
    /// Creates a match (409 if it exists) with a new incarnation; returns it as stored.
    pub async fn create(&self, new: NewMatch, now_ms: u64) -> Result<Arc<Match>, StoreError> {
        let incarnation = crate::incarnation::draw();
        let op = Op::Create {
            new,
            now_ms,
            incarnation,
        };
        self.call(op, |outcome| match outcome {
            Outcome::Created(m) => Some(m),
            _ => None,
        })
        .await
    }

    /// Validates and stores an event; returns it as stored (with its seq and timestamp).
    pub async fn apply(
        &self,
        id: MatchId,
        event: PostedEvent,
        now_ms: u64,
    ) -> Result<Arc<Event>, StoreError> {
        self.call(Op::Apply { id, event, now_ms }, |outcome| match outcome {
            Outcome::Applied { event, .. } => Some(event),
            _ => None,
        })
        .await
    }

    /// Cancels a match: removes it and its history.
    pub async fn cancel(&self, id: MatchId) -> Result<(), StoreError> {
        self.call(Op::Cancel { id }, |outcome| match outcome {
            Outcome::Cancelled(_) => Some(()),
            _ => None,
        })
        .await
    }

    /// A user's visit count.
    pub async fn visits(&self, user: &str) -> Result<u64, StoreError> {
        let op = Op::GetVisits {
            user: user.to_owned(),
        };
        self.call(op, |outcome| match outcome {
            Outcome::Visits(n) => Some(n),
            _ => None,
        })
        .await
    }

    /// Runs `op` on the store thread and waits for its result without blocking the core;
    /// `take` picks the answer out of the outcome. A backend answers each op with its own kind
    /// of outcome ([`Store::execute`]); any other is a backend's bug, [`StoreError::Unexpected`].
    async fn call<T>(&self, op: Op, take: fn(Outcome) -> Option<T>) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request {
                op,
                reply: Some(reply),
            })
            .map_err(|_| StoreError::Unavailable("store thread stopped".into()))?;
        let outcome = answer
            .await
            .map_err(|_| StoreError::Unavailable("store thread stopped".into()))??;
        take(outcome).ok_or(StoreError::Unexpected)
    }

    /// Counts one connect of `user`, without waiting (visits ride along with the next batch).
    pub fn visit(&self, user: &str) {
        let op = Op::Visit {
            user: user.to_owned(),
            count: 1,
        };
        // If the store thread is gone the server is stopping; a lost visit count is harmless.
        let _ = self.tx.send(Request { op, reply: None });
    }
}

/// The running store thread.
pub struct StoreService {
    thread: Option<JoinHandle<()>>,
}

impl StoreService {
    /// Starts the store thread running `store` (loaded already) and publishing on `bus`; it
    /// counts as running in `health` until it ends (`GET /readyz`).
    /// Returns the service and the handle cores use.
    pub fn start(
        store: Box<dyn Store>,
        bus: BusHandle,
        health: Arc<StoreHealth>,
    ) -> std::io::Result<(StoreService, StoreHandle)> {
        StoreService::start_counted(store, bus, health, Arc::default())
    }

    /// [`StoreService::start`], the thread counting its queue, batches and commits into
    /// `stats` (the node's `/1/stats`).
    pub fn start_counted(
        store: Box<dyn Store>,
        bus: BusHandle,
        health: Arc<StoreHealth>,
        stats: Arc<StoreStats>,
    ) -> std::io::Result<(StoreService, StoreHandle)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        health.set_store_thread(true);
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn({
                let health = health.clone();
                move || {
                    let _running = health.store_thread_guard();
                    run(store, rx, bus, &stats);
                }
            })
            .inspect_err(|_| health.set_store_thread(false))?;
        Ok((
            StoreService {
                thread: Some(thread),
            },
            StoreHandle { tx },
        ))
    }

    /// Waits for the store thread to finish (it ends when every handle is dropped).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!(target: "matchstream::store", "store thread panicked");
            }
        }
    }
}

/// How long connect visits may wait to ride along with the next commit: they are counts, not
/// acknowledged writes, so a burst of 20,000 connects costs a few commits, not thousands.
pub const VISIT_DELAY: Duration = Duration::from_millis(200);

/// Most users whose connect visits wait for a commit: past it they are committed at once, so
/// a burst of connects with distinct user ids cannot grow the waiting map without bound.
pub const MAX_PENDING_VISITS: usize = MAX_BATCH;

fn run(mut store: Box<dyn Store>, rx: Receiver<Request>, bus: BusHandle, stats: &StoreStats) {
    let mut visits: HashMap<String, u64> = HashMap::new();
    let mut visits_due: Option<Instant> = None;
    loop {
        let first = match visits_due {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        let mut batch = Vec::new();
        let stopping = match first {
            Ok(request) => {
                batch.push(request);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            stats.took(batch.len(), rx.len());
        }
        // Visits without a reply wait (coalesced per user) for a commit that happens anyway.
        batch.retain_mut(|r| match (&r.op, &r.reply) {
            (Op::Visit { user, count }, None) => {
                *visits.entry(user.clone()).or_default() += count;
                visits_due.get_or_insert_with(|| Instant::now() + VISIT_DELAY);
                false
            }
            _ => true,
        });
        let visits_ripe = visits_due.is_some_and(|due| Instant::now() >= due);
        let visits_many = visits.len() >= MAX_PENDING_VISITS;
        if !visits.is_empty() && (!batch.is_empty() || visits_ripe || visits_many || stopping) {
            // Before the rest: these connects happened before anything in this batch.
            let earlier: Vec<Request> = visits
                .drain()
                .map(|(user, count)| Request {
                    op: Op::Visit { user, count },
                    reply: None,
                })
                .collect();
            batch.splice(0..0, earlier);
            visits_due = None;
        }
        if !batch.is_empty() {
            commit(store.as_mut(), batch, &bus, &rx, stats);
        }
        if stopping {
            break;
        }
    }
    log::debug!(target: "matchstream::store", "store thread stopping");
}

/// Executes one batch, counts it (before anyone is answered: a client that got its answer
/// finds its write counted), publishes what it committed, then answers.
fn commit(
    store: &mut dyn Store,
    batch: Vec<Request>,
    bus: &BusHandle,
    queue: &Receiver<Request>,
    stats: &StoreStats,
) {
    let size = batch.len();
    let (ops, replies): (Vec<Op>, Vec<Option<Reply>>) =
        batch.into_iter().map(|r| (r.op, r.reply)).unzip();
    let started = Instant::now();
    let results = store.execute(ops);
    stats.committed(size, started.elapsed(), queue.len());
    let publishes = store.publishes_on_bus();
    for result in results.iter().flatten().filter(|_| publishes) {
        match result {
            Outcome::Created(m) => bus.broadcast(BusMsg::Created(m.clone())),
            Outcome::Applied { event, state } => bus.broadcast(BusMsg::Event {
                event: event.clone(),
                state: state.clone(),
            }),
            Outcome::Cancelled(id) => bus.broadcast(BusMsg::Cancelled(id.clone())),
            Outcome::Visited | Outcome::Visits(_) => {}
        }
    }
    for (reply, result) in replies.into_iter().zip(results) {
        if let Some(reply) = reply {
            // The caller may have gone (connection closed); the write stands regardless.
            let _ = reply.send(result);
        }
    }
}
