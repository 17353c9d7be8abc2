//! The cross-core bus: one inbound channel per core carrying committed events and control.
//!
//! Senders live on any thread (the store thread, or the Redis feed of a node); each core owns
//! its [`Inbox`]. A send pushes onto the core's crossbeam channel and then wakes the task
//! parked on the inbox through an [`AtomicWaker`]; glommio lets a foreign thread wake a task
//! (the waker is queued to the owning executor, which is notified), so a core sleeps in
//! io_uring when idle and is woken promptly when something arrives: no polling loop.
//!
//! Each message carries the instant it was broadcast (the store thread's or the feed's
//! publish), from which a core measures publish→flush latency (`/1/stats`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use atomic_waker::AtomicWaker;
use crossbeam_channel::{Receiver, Sender};
use matchstream_protocol::{Event, Match, MatchId};

/// A match with its whole history: what a core's table is seeded with at start, and what a
/// node that catches up on Redis takes whole ([`BusMsg::Snapshot`]).
#[derive(Debug, Clone)]
pub struct MatchRecord {
    /// The current state.
    pub state: Arc<Match>,
    /// Every event, seq 1..=state.last_seq, in order.
    pub history: Vec<Arc<Event>>,
}

/// What travels on the bus.
#[derive(Debug, Clone)]
pub enum BusMsg {
    /// A match was created.
    Created(Arc<Match>),
    /// An event was committed; `state` is the match after it.
    Event {
        /// The stored event.
        event: Arc<Event>,
        /// The match state after the event.
        state: Arc<Match>,
    },
    /// A whole match taken from the store (a node catching up): added, or brought up to date.
    Snapshot(MatchRecord),
    /// A match was cancelled: disconnect its subscribers and forget it.
    Cancelled(MatchId),
    /// The store holds another history for this match now (a new incarnation): end its
    /// subscribers with `match history changed` and take this record instead.
    Replaced(MatchRecord),
    /// What the store holds for this match fails the node's checks: end its subscribers with
    /// `match unavailable` and forget it until it comes back valid (as a [`BusMsg::Snapshot`]).
    Withdrawn(MatchId),
    /// The node is draining ([`crate::drain`]): end the subscribers that can resume elsewhere
    /// (v2, SSE) with `node draining`, keep the v1 ones, and send every later subscriber away.
    Drain,
    /// The server is shutting down.
    Shutdown,
}

/// A message and the instant it was broadcast.
type Stamped = (Instant, BusMsg);

struct Lane {
    tx: Sender<Stamped>,
    waker: Arc<AtomicWaker>,
}

/// The sending side of the bus; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct BusHandle {
    lanes: Arc<Vec<Lane>>,
}

/// A core's receiving side.
pub struct Inbox {
    rx: Receiver<Stamped>,
    waker: Arc<AtomicWaker>,
}

/// Creates a bus with one lane per core.
pub fn bus(cores: usize) -> (BusHandle, Vec<Inbox>) {
    let mut lanes = Vec::with_capacity(cores);
    let mut inboxes = Vec::with_capacity(cores);
    for _ in 0..cores {
        let (tx, rx) = crossbeam_channel::unbounded();
        let waker = Arc::new(AtomicWaker::new());
        lanes.push(Lane {
            tx,
            waker: waker.clone(),
        });
        inboxes.push(Inbox { rx, waker });
    }
    (
        BusHandle {
            lanes: Arc::new(lanes),
        },
        inboxes,
    )
}

impl BusHandle {
    /// Sends `msg` to every core.
    pub fn broadcast(&self, msg: BusMsg) {
        let at = Instant::now();
        for lane in self.lanes.iter() {
            // A closed lane is a core that has already stopped: nothing left to tell it.
            let _ = lane.tx.send((at, msg.clone()));
            lane.waker.wake();
        }
    }
}

impl Inbox {
    /// Takes the next message, if any, without waiting.
    pub fn try_recv(&self) -> Option<BusMsg> {
        self.try_recv_stamped().map(|(msg, _)| msg)
    }

    /// Takes the next message, if any, with the instant it was broadcast.
    pub fn try_recv_stamped(&self) -> Option<(BusMsg, Instant)> {
        self.rx.try_recv().ok().map(|(at, msg)| (msg, at))
    }

    /// Messages waiting (the "inbound bus depth" of the stats).
    pub fn depth(&self) -> usize {
        self.rx.len()
    }

    /// Registers `waker` to be woken by the next send.
    pub fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Resolves when at least one message is waiting.
    pub fn ready(&self) -> Ready<'_> {
        Ready { inbox: self }
    }
}

/// Future of [`Inbox::ready`].
pub struct Ready<'a> {
    inbox: &'a Inbox,
}

impl Future for Ready<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.inbox.rx.is_empty() {
            return Poll::Ready(());
        }
        self.inbox.waker.register(cx.waker());
        // Check again after registering: a send between the first check and the
        // registration would otherwise be missed.
        if self.inbox.rx.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_reaches_every_core_in_order() {
        let (handle, inboxes) = bus(3);
        handle.broadcast(BusMsg::Shutdown);
        handle.broadcast(BusMsg::Cancelled(
            MatchId::parse("a-b-2011-01-01").expect("valid id"),
        ));
        for inbox in &inboxes {
            assert_eq!(inbox.depth(), 2);
            assert!(matches!(inbox.try_recv(), Some(BusMsg::Shutdown)));
            assert!(matches!(inbox.try_recv(), Some(BusMsg::Cancelled(_))));
            assert!(inbox.try_recv().is_none());
        }
    }

    #[test]
    fn messages_carry_the_instant_of_their_broadcast() {
        let (handle, inboxes) = bus(2);
        let before = Instant::now();
        handle.broadcast(BusMsg::Shutdown);
        let after = Instant::now();
        let stamps: Vec<Instant> = inboxes
            .iter()
            .map(|i| i.try_recv_stamped().expect("a message").1)
            .collect();
        assert_eq!(stamps[0], stamps[1], "one instant per broadcast");
        assert!(before <= stamps[0] && stamps[0] <= after);
    }

    #[test]
    fn a_send_from_another_thread_wakes_a_glommio_task() {
        let (handle, mut inboxes) = bus(1);
        let inbox = inboxes.remove(0);
        let ex = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                inbox.ready().await;
                inbox.try_recv().is_some()
            })
            .expect("executor");
        std::thread::sleep(std::time::Duration::from_millis(50));
        handle.broadcast(BusMsg::Shutdown);
        assert!(ex.join().expect("join"));
    }
}
