//! Draining a node before it is taken down (SPEC §9): it leaves checkin and the cluster
//! registry at once, tells its v2 and SSE subscribers `node draining` so that they check in
//! again and resume elsewhere, keeps its v1 subscribers (who cannot resume) until their
//! matches end or a deadline, then stops.
//!
//! Who does what:
//! - [`Drain`], in the node's [`NodeStats`] so every core and thread sees it, holds the flag
//!   and the deadline. `POST /1/admin/drain` ([`crate::api::admin`], deadline
//!   `--drain-timeout`) and SIGTERM/SIGINT ([`crate::signals`], deadline
//!   `--shutdown-grace-ms`) call [`Drain::begin`]; a second call is harmless and never
//!   pushes the deadline back (a signal may bring it forward).
//! - The drain thread ([`Drainer`]), started with the node, waits for that, sends
//!   [`BusMsg::Drain`] to every core (each ends its v2 and SSE subscribers with `node
//!   draining` and keeps its v1 ones, [`crate::fanout`]), then waits until the node has no
//!   subscriber left or the deadline passes, and marks the drain finished:
//!   [`crate::ServerHandle::wait`] returns and the node stops as usual (v1 subscribers still
//!   there get `server shutting down`).
//! - While the flag is set, the registry thread keeps the node out of the registry
//!   ([`crate::cluster::registry`]), checkin sends clients to the other nodes only
//!   ([`crate::checkin`]), `GET /readyz` answers 503, and new subscribers are refused with
//!   `node draining` ([`crate::session`], [`crate::api::stream`], [`crate::replay`]).

pub mod flag;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use flag::{Begun, Drain, Trigger, LAST_WORDS, MAX_TIMEOUT};

use crate::bus::{BusHandle, BusMsg};
use crate::stats::NodeStats;

/// What a draining node says to the subscribers it sends away, and to new ones.
pub const REASON: &str = "node draining";

/// The drain thread's name.
pub const THREAD_NAME: &str = "matchstream-drain";

/// How often the drain thread looks whether subscribers are left: a drain ends at most this
/// long after the last one. Only while draining; an idle node's thread sleeps.
const POLL: Duration = Duration::from_millis(50);

/// The drain thread of a running node.
pub struct Drainer {
    node: Arc<NodeStats>,
    thread: Option<JoinHandle<()>>,
}

impl Drainer {
    /// Starts the thread that carries out `node`'s drain when one begins, telling the cores
    /// through `bus`.
    pub fn start(node: Arc<NodeStats>, bus: BusHandle) -> std::io::Result<Drainer> {
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn({
                let node = node.clone();
                move || run(&node, &bus)
            })?;
        Ok(Drainer {
            node,
            thread: Some(thread),
        })
    }

    /// Stops the thread (a drain under way is cut short) and waits for it.
    pub fn stop(mut self) {
        self.node.drain.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(node: &NodeStats, bus: &BusHandle) {
    if !node.drain.wait_begun() {
        return;
    }
    bus.broadcast(BusMsg::Drain);
    let began = Instant::now();
    log::info!(target: "matchstream::drain",
        "draining: out of checkin and the registry; v2 and SSE subscribers told to resume elsewhere, v1 subscribers kept until their matches end (at most {:?})",
        node.drain.time_left().unwrap_or_default());
    loop {
        let left: u64 = node.cores.iter().map(|c| c.subscribers()).sum();
        if left == 0 {
            log::info!(target: "matchstream::drain",
                "drained in {:?}: no subscriber left", began.elapsed());
            break;
        }
        if node.drain.wait_step(POLL) {
            if !node.drain.is_closed() {
                log::warn!(target: "matchstream::drain",
                    "drain time is up after {:?} with {left} subscribers left: stopping", began.elapsed());
            }
            break;
        }
    }
    node.drain.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_thread_tells_the_cores_and_finishes_once_no_subscriber_is_left() {
        let node = Arc::new(NodeStats::for_tests());
        let (bus, inboxes) = crate::bus::bus(2);
        node.cores[1].subscribers_delta(true);
        let drainer = Drainer::start(node.clone(), bus).expect("thread");
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            inboxes.iter().all(|i| i.try_recv().is_none()),
            "no drain yet"
        );
        node.drain.begin(Duration::from_secs(60), Trigger::Request);
        let waiter = std::thread::spawn({
            let node = node.clone();
            move || {
                node.drain.wait_finished();
                Instant::now()
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while inboxes[0].depth() == 0 || inboxes[1].depth() == 0 {
            assert!(Instant::now() < deadline, "the cores were not told");
            std::thread::sleep(Duration::from_millis(5));
        }
        for inbox in &inboxes {
            assert!(matches!(inbox.try_recv(), Some(BusMsg::Drain)));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(!waiter.is_finished(), "a subscriber is left");
        let emptied = Instant::now();
        node.cores[1].subscribers_delta(false);
        let finished = waiter.join().expect("waiter");
        assert!(finished >= emptied);
        assert!(finished - emptied < Duration::from_secs(2));
        drainer.stop();
    }

    #[test]
    fn a_drain_ends_at_its_deadline_with_subscribers_left() {
        let node = Arc::new(NodeStats::for_tests());
        let (bus, _inboxes) = crate::bus::bus(2);
        node.cores[0].subscribers_delta(true);
        let drainer = Drainer::start(node.clone(), bus).expect("thread");
        let began = Instant::now();
        node.drain
            .begin(Duration::from_millis(300), Trigger::Request);
        node.drain.wait_finished();
        let took = began.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
        drainer.stop();
    }

    #[test]
    fn stopping_the_node_releases_every_waiter() {
        let node = Arc::new(NodeStats::for_tests());
        let (bus, _inboxes) = crate::bus::bus(1);
        let drainer = Drainer::start(node.clone(), bus).expect("thread");
        let waiter = std::thread::spawn({
            let node = node.clone();
            move || node.drain.wait_finished()
        });
        drainer.stop();
        waiter.join().expect("released");
    }
}
