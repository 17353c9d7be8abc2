//! Whether the node's store is reachable, for `GET /readyz` (SPEC §9), known without a store
//! round trip: a probe every second from every load balancer must not cost the store anything.
//!
//! The threads that talk to the store anyway record how it went, in relaxed atomics, and a
//! probe reads them:
//! - every store: the store thread is running (set before it starts, cleared when it ends,
//!   a panic included). The memory and embedded stores live in that thread, so that is all
//!   they need: a failed commit answers its writes with 503 but says nothing about the next.
//! - Redis: the registry's heartbeat ([`crate::cluster::registry`]), a round trip every
//!   second, draining or not: its last one succeeded and is less than [`REDIS_STALE`] old
//!   (Redis unreachable: refused, reset or timed out connections fail the next heartbeat,
//!   within a second and the 2 s command timeout); and the feed's subscription to the event
//!   channel is up ([`crate::cluster::feed`]): without it the node would not see events.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The reason `GET /readyz` gives when the store thread has stopped.
pub const STORE_STOPPED: &str = "store unavailable: store thread stopped";
/// The reason when the last heartbeat to Redis failed or is too old.
pub const REDIS_UNREACHABLE: &str = "store unavailable: redis unreachable";
/// The reason when the feed's subscription to Redis is down.
pub const FEED_LOST: &str = "store unavailable: redis subscription lost";

/// How old the last successful heartbeat may be for Redis to count as reachable: the
/// registry's time-to-live (`cluster::registry::TTL` is this), after which the other nodes
/// forget this one too.
pub const REDIS_STALE: Duration = Duration::from_secs(4);

/// What the store's threads last saw of it.
#[derive(Debug, Default)]
pub struct StoreHealth {
    store_thread: AtomicBool,
    redis: AtomicBool,
    /// When the last heartbeat succeeded, in ms of [`clock`] plus one (0: never).
    beat_ok: AtomicU64,
    beat_failed: AtomicBool,
    feed_down: AtomicBool,
}

/// Milliseconds since the first use: a monotonic clock that fits an atomic.
fn clock() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl StoreHealth {
    /// Records whether the store thread runs.
    pub fn set_store_thread(&self, running: bool) {
        self.store_thread.store(running, Relaxed);
    }

    /// A guard the store thread holds: when it drops (the thread ends, or unwinds), the store
    /// counts as stopped.
    pub fn store_thread_guard(&self) -> StoreThreadGuard<'_> {
        StoreThreadGuard { health: self }
    }

    /// The store is Redis: from now on readiness follows the heartbeat and the feed. Counts
    /// as one successful heartbeat (the store was just opened and loaded from it).
    pub fn watch_redis(&self) {
        self.beat_ok.store(clock() + 1, Relaxed);
        self.redis.store(true, Relaxed);
    }

    /// Records a heartbeat's outcome.
    pub fn heartbeat(&self, ok: bool) {
        if ok {
            self.beat_ok.store(clock() + 1, Relaxed);
        }
        self.beat_failed.store(!ok, Relaxed);
    }

    /// Records whether the feed's subscription is up.
    pub fn feed(&self, up: bool) {
        self.feed_down.store(!up, Relaxed);
    }

    /// Why the store is not reachable, if it is not.
    pub fn problem(&self) -> Option<&'static str> {
        self.problem_at(clock())
    }

    /// [`StoreHealth::problem`] at `now` on [`clock`].
    fn problem_at(&self, now: u64) -> Option<&'static str> {
        if !self.store_thread.load(Relaxed) {
            return Some(STORE_STOPPED);
        }
        if !self.redis.load(Relaxed) {
            return None;
        }
        let ok_at = self.beat_ok.load(Relaxed);
        let stale = ok_at == 0 || (now + 1).saturating_sub(ok_at) > REDIS_STALE.as_millis() as u64;
        if self.beat_failed.load(Relaxed) || stale {
            return Some(REDIS_UNREACHABLE);
        }
        if self.feed_down.load(Relaxed) {
            return Some(FEED_LOST);
        }
        None
    }
}

/// Held by the store thread ([`StoreHealth::store_thread_guard`]).
#[derive(Debug)]
pub struct StoreThreadGuard<'a> {
    health: &'a StoreHealth,
}

impl Drop for StoreThreadGuard<'_> {
    fn drop(&mut self) {
        self.health.set_store_thread(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_store_is_reachable_while_its_thread_runs() {
        let h = StoreHealth::default();
        assert_eq!(h.problem(), Some(STORE_STOPPED), "not started yet");
        h.set_store_thread(true);
        assert_eq!(h.problem(), None);
        {
            let _guard = h.store_thread_guard();
        }
        assert_eq!(h.problem(), Some(STORE_STOPPED));
    }

    #[test]
    fn a_guard_clears_the_flag_when_its_thread_panics() {
        let h = std::sync::Arc::new(StoreHealth::default());
        h.set_store_thread(true);
        let h2 = h.clone();
        let t = std::thread::spawn(move || {
            let _guard = h2.store_thread_guard();
            panic!("store thread fails");
        });
        assert!(t.join().is_err());
        assert_eq!(h.problem(), Some(STORE_STOPPED));
    }

    #[test]
    fn redis_follows_the_heartbeat_and_the_feed() {
        let h = StoreHealth::default();
        h.set_store_thread(true);
        h.watch_redis();
        assert_eq!(h.problem(), None);
        h.heartbeat(false);
        assert_eq!(h.problem(), Some(REDIS_UNREACHABLE));
        h.heartbeat(true);
        assert_eq!(h.problem(), None);
        h.feed(false);
        assert_eq!(h.problem(), Some(FEED_LOST));
        h.feed(true);
        assert_eq!(h.problem(), None);
    }

    #[test]
    fn an_old_heartbeat_counts_as_unreachable() {
        let h = StoreHealth::default();
        h.set_store_thread(true);
        h.watch_redis();
        // A heartbeat stuck (no answer, no error yet): fine until its success is too old.
        let at = h.beat_ok.load(Relaxed) - 1;
        let stale = REDIS_STALE.as_millis() as u64;
        assert_eq!(h.problem_at(at + stale - 10), None);
        assert_eq!(h.problem_at(at + stale + 10), Some(REDIS_UNREACHABLE));
    }
}
