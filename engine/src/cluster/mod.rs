//! Many nodes on one Redis: the key layout and connection helpers that the Redis store backend
//! ([`crate::store::redis`]) shares with the node's event feed ([`feed`]) and the node registry
//! ([`registry`]); what a node accepts from Redis ([`trust`]) and how a match gets a new
//! incarnation there ([`rewind`]).
//!
//! Key layout (one Redis database, prefix `ms:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `ms:matches` | set | every match id |
//! | `ms:match:<id>` | string | the match state (JSON, `codec::encode_match`) |
//! | `ms:seq:<id>` | string | the seq of the match's last event (0 after creation) |
//! | `ms:history:<id>` | list | the match's events in seq order (JSON, `codec::encode_event`) |
//! | `ms:incarnation:<id>` | string | the match's incarnation, 16 hex digits (also in its state; this key is the one scripts compare) |
//! | `ms:visits` | hash | user id → number of connects |
//! | `ms:nodes` | set | ids of nodes that heartbeat |
//! | `ms:node:<id>` | string with TTL | a node's host, stream ports and per-core load |
//! | `ms:events` | pub/sub channel | `C<match>` created, `E<event>` committed, `X<id>` cancelled, `R<id>` new incarnation |
//!
//! Writes are Lua scripts, so each is atomic on the Redis server: an event is validated by the
//! node against the stored state at seq n and the script commits it (append to history, new
//! state, seq n+1, publish) only if the stored seq is still n and the incarnation still the
//! one it validated against — two watchers on two nodes can never both take seq n+1, and no
//! write lands on a history that was replaced meanwhile. Every node keeps one subscription to `ms:events` ([`feed`]) and
//! feeds what it receives into its own cores' bus, fetching missed events from the history when
//! it sees a gap, so every subscriber of every node gets every event once and in order.

pub mod feed;
pub mod registry;
pub mod rewind;
pub mod trust;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use matchstream_protocol::codec::{decode_event, decode_match};
use matchstream_protocol::{Incarnation, MatchId};

use crate::bus::MatchRecord;
use trust::{check_record, Rejection};

/// The set of all match ids.
pub const MATCHES: &str = "ms:matches";
/// The hash of visit counts.
pub const VISITS: &str = "ms:visits";
/// The pub/sub channel of committed changes.
pub const CHANNEL: &str = "ms:events";
/// The set of node ids.
pub const NODES: &str = "ms:nodes";

/// `ms:match:<id>`.
pub fn match_key(id: &str) -> String {
    format!("ms:match:{id}")
}
/// `ms:seq:<id>`.
pub fn seq_key(id: &str) -> String {
    format!("ms:seq:{id}")
}
/// `ms:history:<id>`.
pub fn history_key(id: &str) -> String {
    format!("ms:history:{id}")
}
/// `ms:incarnation:<id>`.
pub fn incarnation_key(id: &str) -> String {
    format!("ms:incarnation:{id}")
}
/// `ms:node:<id>`.
pub fn node_key(id: &str) -> String {
    format!("ms:node:{id}")
}

/// Connect and command timeouts towards Redis.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens a connection with timeouts set.
pub fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(REDIS_TIMEOUT)?;
    con.set_read_timeout(Some(REDIS_TIMEOUT))?;
    con.set_write_timeout(Some(REDIS_TIMEOUT))?;
    Ok(con)
}

/// A background thread of a node (feed, registry) that runs until asked to stop.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts `run` on a thread named `name`; `run` returns once the flag it is given is set.
    pub fn spawn(
        name: &str,
        run: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<Worker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(&flag))?;
        Ok(Worker {
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the thread to stop and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Exponential backoff between reconnection attempts (100 ms doubling to 2 s).
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    until: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            next: Duration::from_millis(100),
            until: None,
        }
    }
}

impl Backoff {
    /// Records a failure: the next attempt waits longer.
    pub fn failed(&mut self) {
        self.until = Some(Instant::now() + self.next);
        self.next = (self.next * 2).min(Duration::from_secs(2));
    }
    /// Records a success.
    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }
    /// True when an attempt may be made now.
    pub fn ready(&self) -> bool {
        self.until.is_none_or(|t| Instant::now() >= t)
    }
    /// How long until an attempt may be made.
    pub fn wait(&self) -> Duration {
        self.until.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        })
    }
}

/// What this node's feed has delivered to its cores, so the store can answer a watcher only
/// once its write is visible on this node (read-your-writes, as with the local stores).
#[derive(Debug, Default)]
pub struct Delivered {
    seen: Mutex<HashMap<MatchId, u64>>,
    changed: Condvar,
}

impl Delivered {
    /// Records that `id` is known up to `seq` (0 right after creation).
    pub fn set(&self, id: &MatchId, seq: u64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(id.clone(), seq);
            self.changed.notify_all();
        }
    }
    /// Records that `id` is gone.
    pub fn remove(&self, id: &MatchId) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(id);
            self.changed.notify_all();
        }
    }
    /// Waits up to `limit` until `done` holds for the delivered seq of `id` (None = unknown).
    pub fn wait(&self, id: &MatchId, limit: Duration, done: impl Fn(Option<u64>) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        loop {
            if done(seen.get(id).copied()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.changed.wait_timeout(seen, left) {
                Ok((guard, _)) => seen = guard,
                Err(_) => return false,
            }
        }
    }
}

/// What reading a match whole from Redis found.
#[derive(Debug)]
pub enum Loaded {
    /// No such match (cancelled meanwhile, or never created).
    Gone,
    /// The match with its history, checked ([`trust`]).
    Valid(MatchRecord),
    /// What Redis holds for it fails the checks: not to be rendered.
    Invalid(Rejection),
}

/// Reads one match and its history and checks them ([`read_record`]); a match stored before
/// incarnations existed is given its first one on the way ([`rewind::reincarnate`]), so a
/// loaded match always has one.
pub fn load_record(con: &mut redis::Connection, id: &MatchId) -> redis::RedisResult<Loaded> {
    match read_record(con, id)? {
        Loaded::Valid(r) if !r.state.incarnation.is_set() => {
            rewind::reincarnate(con, id, Incarnation::UNSET)
        }
        found => Ok(found),
    }
}

/// A match's keys as read: its state, its incarnation, its history's entries.
type StoredMatch = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<Vec<u8>>);

/// Reads one match, its incarnation and its history in one transaction (so they agree: every
/// write is one script) and checks them: every value decodes (the decoders check them as the
/// API does), and the history is exactly the events the state counts ([`check_record`]).
/// The incarnation key wins over the copy in the state.
pub fn read_record(con: &mut redis::Connection, id: &MatchId) -> redis::RedisResult<Loaded> {
    let key = id.as_str();
    let (state, incarnation, history): StoredMatch = redis::pipe()
        .atomic()
        .cmd("GET")
        .arg(match_key(key))
        .cmd("GET")
        .arg(incarnation_key(key))
        .cmd("LRANGE")
        .arg(history_key(key))
        .arg(0)
        .arg(-1)
        .query(con)?;
    let Some(state) = state else {
        return Ok(Loaded::Gone);
    };
    let invalid = |place: String, why: &dyn std::fmt::Display| {
        Ok(Loaded::Invalid(Rejection::new(place, why)))
    };
    let mut state = match decode_match(&state) {
        Ok(state) => state,
        Err(e) => return invalid(match_key(key), &e),
    };
    if let Some(text) = incarnation {
        match Incarnation::parse(&text) {
            Ok(i) => state.incarnation = i,
            Err(e) => return invalid(incarnation_key(key), &e),
        }
    }
    let mut events = Vec::with_capacity(history.len());
    for (i, raw) in history.iter().enumerate() {
        match decode_event(raw) {
            Ok(e) => events.push(e),
            Err(e) => return invalid(format!("{} entry {}", history_key(key), i + 1), &e),
        }
    }
    if let Err(why) = check_record(id, &state, &events) {
        return invalid(history_key(key), &why);
    }
    Ok(Loaded::Valid(MatchRecord {
        state: Arc::new(state),
        history: events.into_iter().map(Arc::new).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_two_seconds_and_resets() {
        let mut b = Backoff::default();
        assert!(b.ready());
        assert_eq!(b.wait(), Duration::ZERO);
        // Each failure waits the next step: 100, 200, 400, 800, 1600 ms, then 2 s for good.
        let steps = [100, 200, 400, 800, 1600, 2000, 2000];
        for want in steps {
            b.failed();
            let wait = b.wait();
            let want = Duration::from_millis(want);
            assert!(
                wait <= want && wait + Duration::from_millis(50) > want,
                "waits {wait:?}, want {want:?}"
            );
            assert!(!b.ready());
        }
        b.succeeded();
        assert!(b.ready());
        b.failed();
        assert!(
            b.wait() <= Duration::from_millis(100),
            "back to the first step"
        );
    }

    #[test]
    fn delivered_wakes_a_waiter() {
        let d = std::sync::Arc::new(Delivered::default());
        let id = MatchId::parse("a-b-2011-01-01").expect("id");
        let (d2, id2) = (d.clone(), id.clone());
        // A minute's limit: only the notify can end the wait in time.
        let t = std::thread::spawn(move || {
            let started = Instant::now();
            let done = d2.wait(&id2, Duration::from_secs(60), |s| s >= Some(3));
            (done, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(20));
        d.set(&id, 2);
        d.set(&id, 3);
        let (done, waited) = t.join().expect("join");
        assert!(done);
        assert!(waited < Duration::from_secs(5), "woken after {waited:?}");
        assert!(!d.wait(&id, Duration::from_millis(10), |s| s >= Some(4)));
        // A removal wakes a waiter for the end of a match too.
        let (d2, id2) = (d.clone(), id.clone());
        let t = std::thread::spawn(move || {
            let started = Instant::now();
            let done = d2.wait(&id2, Duration::from_secs(60), |s| s.is_none());
            (done, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(20));
        d.remove(&id);
        let (done, waited) = t.join().expect("join");
        assert!(done);
        assert!(waited < Duration::from_secs(5), "woken after {waited:?}");
    }
}
