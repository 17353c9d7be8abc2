//! A node's drain as every thread sees it ([`Drain`], held in the node's
//! [`crate::stats::NodeStats`]): the flag, who began it and the deadline; the drain thread
//! of [`super`] waits on it and marks it finished.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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

    /// True once the node stops ([`Drain::close`]).
    pub(super) fn is_closed(&self) -> bool {
        self.state().closed
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
    pub(super) fn wait_begun(&self) -> bool {
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
    pub(super) fn wait_step(&self, step: Duration) -> bool {
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
    pub(super) fn finish(&self) {
        self.state().finished = true;
        self.changed.notify_all();
    }

    /// Marks the node stopping: every waiter gives up.
    pub(super) fn close(&self) {
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
}
