//! The store thread: the only place a [`Store`] runs, so a core never blocks on storage.
//!
//! Cores send [`Op`]s through a [`StoreHandle`] and await the answer on a oneshot channel whose
//! waker the store thread fires (glommio accepts wakes from foreign threads). The thread takes
//! every request waiting in its channel as one batch (group commit: one transaction and one
//! fsync however many events arrived together), then publishes what was committed on the bus
//! *before* answering, so a client that got its 201 finds the event on every core.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use futures_channel::oneshot;

use super::{MatchRecord, Op, Outcome, Store, StoreError};
use crate::bus::{BusHandle, BusMsg};

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
    /// Runs `op` on the store thread and waits for its result without blocking the core.
    pub async fn call(&self, op: Op) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request {
                op,
                reply: Some(reply),
            })
            .map_err(|_| StoreError::Unavailable("store thread stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("store thread stopped".into()))?
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

    /// Requests waiting for the store thread.
    pub fn depth(&self) -> usize {
        self.tx.len()
    }
}

/// The running store thread.
pub struct StoreService {
    thread: Option<JoinHandle<()>>,
}

impl StoreService {
    /// Loads every match from `store`, then starts the store thread publishing on `bus`.
    /// Returns the service, the handle cores use, and the loaded matches that seed the cores.
    pub fn start(
        mut store: Box<dyn Store>,
        bus: BusHandle,
    ) -> Result<(StoreService, StoreHandle, Vec<MatchRecord>), StoreError> {
        let records = store.load()?;
        log::info!(target: "matchstream::store",
            "store {} holds {} matches", store.describe(), records.len());
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("matchstream-store".into())
            .spawn(move || run(store, rx, bus))
            .map_err(|e| StoreError::Unavailable(format!("cannot start store thread: {e}")))?;
        Ok((
            StoreService {
                thread: Some(thread),
            },
            StoreHandle { tx },
            records,
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

fn run(mut store: Box<dyn Store>, rx: Receiver<Request>, bus: BusHandle) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let (ops, replies): (Vec<Op>, Vec<Option<Reply>>) =
            batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        let results = store.execute(ops);
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
    log::debug!(target: "matchstream::store", "store thread stopping");
}
