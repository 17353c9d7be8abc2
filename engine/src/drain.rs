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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bus::{BusHandle, BusMsg};
use crate::stats::NodeStats;

/// What a draining node says to the subscribers it sends away, and to new ones.
pub const REASON: &str = "node draining";

/// The drain thread's name.
pub const THREAD_NAME: &str = "matchstream-drain";

/// How often the drain thread looks whether subscribers are left: a drain ends at most this
/// long after the last one. Only while draining; an idle node's thread sleeps.
const POLL: Duration = Duration::from_millis(50);

/// Least time the shutdown after a signal's drain gives connections for their last words,
/// when the drain took the whole grace period (the time a cut-off subscriber gets too).
pub const LAST_WORDS: Duration = Duration::from_secs(1);

/// The longest drain: a longer timeout counts as this (so that no deadline overflows).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Who asked for a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `POST /1/admin/drain` (or `matchstream drain`).
    Request,
    /// SIGTERM or SIGINT: the shutdown that follows keeps to the same deadline.
    Signal,
}

/// The answer to [`Drain::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begun {
    /// A drain was under way already.
    pub already: bool,
    /// The longest the drain may still take.
    pub exit_within: Duration,
}

/// A node's drain: whether one runs and until when. Shared by every core and thread.
#[derive(Debug, Default)]
pub struct Drain {
    /// Set once, when the drain begins: what the hot paths read.
    draining: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// When the drain must end, whatever is left (set once it began).
    deadline: Option<Instant>,
    /// A signal set or brought forward the deadline: the shutdown keeps to it too.
    signalled: bool,
    /// The drain thread is done: the node may stop.
    finished: bool,
    /// The node is stopping without (the rest of) a drain: waiters give up.
    closed: bool,
}

impl Drain {
    /// True once a drain has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Begins a drain that ends within `timeout`; during one, brings its deadline forward to
    /// `timeout` from now if that is sooner (never later).
    pub fn begin(&self, timeout: Duration, trigger: Trigger) -> Begun {
        let now = Instant::now();
        let wanted = now + timeout.min(MAX_TIMEOUT);
        let mut state = self.state();
        let already = state.deadline.is_some();
        let deadline = match state.deadline {
            Some(current) if current <= wanted => current,
            _ => {
                state.signalled |= trigger == Trigger::Signal;
                wanted
            }
        };
        state.deadline = Some(deadline);
        self.draining.store(true, Ordering::Release);
        self.changed.notify_all();
        Begun {
            already,
            exit_within: deadline.saturating_duration_since(now),
        }
    }

    /// How long the drain may still take (`None` before one began).
    pub fn time_left(&self) -> Option<Duration> {
        let state = self.state();
        state
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The deadline of a drain a signal began or hurried: the node's shutdown after it keeps
    /// to it ([`Drain::final_wait`]).
    fn signal_deadline(&self) -> Option<Instant> {
        let state = self.state();
        state.deadline.filter(|_| state.signalled)
    }

    /// How long a core waits for its connections at shutdown, given the grace period: the
    /// whole grace period, or after a signal's drain what is left of it (at least
    /// [`LAST_WORDS`], at most the grace period), so that a SIGTERM is answered within the grace
    /// period plus at most that.
    pub fn final_wait(&self, grace: Duration) -> Duration {
        match self.signal_deadline() {
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .max(LAST_WORDS)
                .min(grace),
            None => grace,
        }
    }

    /// Waits until a drain begins (true) or the node stops (false).
    fn wait_begun(&self) -> bool {
        let mut state = self.state();
        loop {
            if state.closed {
                return false;
            }
            if state.deadline.is_some() {
                return true;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits up to `step` (less if the deadline comes sooner or changes); true once the
    /// deadline has passed or the node stops.
    fn wait_step(&self, step: Duration) -> bool {
        let state = self.state();
        if state.closed {
            return true;
        }
        let Some(deadline) = state.deadline else {
            return false;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        let (state, _) = self
            .changed
            .wait_timeout(state, step.min(left))
            .unwrap_or_else(PoisonError::into_inner);
        state.closed || state.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Marks the drain finished and wakes [`Drain::wait_finished`].
    fn finish(&self) {
        self.state().finished = true;
        self.changed.notify_all();
    }

    /// Marks the node stopping: every waiter gives up.
    fn close(&self) {
        self.state().closed = true;
        self.changed.notify_all();
    }

    /// Blocks until a drain has begun and finished, or the node stops.
    pub fn wait_finished(&self) {
        let mut state = self.state();
        while !state.finished && !state.closed {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

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
            if !node.drain.state().closed {
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
    fn a_second_drain_keeps_the_first_deadline_and_a_signal_brings_it_forward() {
        let drain = Drain::default();
        assert!(!drain.is_draining());
        let first = drain.begin(Duration::from_secs(600), Trigger::Request);
        assert!(drain.is_draining());
        assert_eq!(
            first,
            Begun {
                already: false,
                exit_within: Duration::from_secs(600)
            }
        );
        let again = drain.begin(Duration::from_secs(900), Trigger::Request);
        assert!(again.already);
        assert!(again.exit_within <= Duration::from_secs(600));
        assert!(again.exit_within > Duration::from_secs(590));
        // Not signalled yet: the shutdown gets its whole grace period.
        assert_eq!(
            drain.final_wait(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        let signal = drain.begin(Duration::from_secs(3), Trigger::Signal);
        assert!(signal.already);
        assert!(signal.exit_within <= Duration::from_secs(3));
        let wait = drain.final_wait(Duration::from_secs(5));
        assert!(
            wait <= Duration::from_secs(3) && wait >= LAST_WORDS,
            "{wait:?}"
        );
    }

    #[test]
    fn a_signal_drain_that_took_its_time_leaves_the_last_words_their_second() {
        let drain = Drain::default();
        drain.begin(Duration::ZERO, Trigger::Signal);
        assert_eq!(drain.final_wait(Duration::from_secs(5)), LAST_WORDS);
        assert_eq!(
            drain.final_wait(Duration::from_millis(300)),
            Duration::from_millis(300),
            "never more than the grace period"
        );
    }

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
