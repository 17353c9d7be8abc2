//! The node's feed: one Redis subscription to the event channel, delivered into the node's
//! own cores' bus in seq order per match.
//!
//! Every committed change reaches every node through `ms:events`, this node's own writes
//! included, so each subscriber gets each event exactly once. The feed keeps the state it
//! delivered per match and a fingerprint of every event; an event past a gap (a message lost
//! while the subscription was down, or a Redis restart) makes it read the missing events from
//! the match's history first, and after every (re)subscription it compares its view with
//! Redis and catches up, so no subscriber misses or reorders an event.
//!
//! Policies, written down in docs/protocol.md:
//! - nothing is rendered unchecked ([`super::trust`]): a feed message that fails is dropped;
//!   an event the node needs and cannot read whole and valid (a gap it cannot fill), or a
//!   match that fails, withdraws the match from the node ([`BusMsg::Withdrawn`]) until Redis
//!   holds valid data for it again (tried at its next message, at most every
//!   [`RETRY_WITHDRAWN`], and at every resync);
//! - a message alone never destroys or replaces what the node has (anyone can publish one):
//!   a creation, a cancellation, a new incarnation, a gap or an event other than the one
//!   delivered at its seq make the node read the match's keys (`Follower::recheck`) and
//!   act on what Redis holds;
//! - a stored history that is not the one the node delivered — a stored seq behind its own,
//!   or another event at the node's last seq, under the same incarnation — means Redis lost
//!   writes: the match gets a new incarnation ([`super::rewind`]) and its subscribers
//!   `match history changed` ([`BusMsg::Replaced`]); so does a match found under another
//!   incarnation than the node's (cancelled and created again while the node was away).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use matchstream_protocol::codec::{decode_event, decode_match};
use matchstream_protocol::state::{apply, verify};
use matchstream_protocol::{Event, Incarnation, Match, MatchId};

use super::rewind::reincarnate;
use super::trust::{fingerprint, Rejection, Rejects};
use super::{
    connect, history_key, incarnation_key, load_record, seq_key, Backoff, Delivered, Loaded,
    Worker, CHANNEL, MATCHES,
};
use crate::bus::{BusHandle, BusMsg, MatchRecord};
use crate::config::RedisUrl;
use crate::health::StoreHealth;
use crate::stats::feed::FeedStats;

/// The feed thread's name.
pub const THREAD_NAME: &str = "matchstream-feed";

/// The feed's log target.
const LOG_TARGET: &str = "matchstream::feed";

/// How often a blocked read wakes to check for shutdown.
const POLL: Duration = Duration::from_millis(200);

/// Shortest time between two attempts to take back a withdrawn match on its messages: each
/// attempt reads the match whole.
pub const RETRY_WITHDRAWN: Duration = Duration::from_secs(1);

/// The running feed thread.
pub struct Feed {
    worker: Worker,
    stats: Arc<FeedStats>,
}

/// What the feed delivered of one match.
struct Known {
    /// The state after the last event delivered.
    state: Arc<Match>,
    /// The fingerprint of event `i + 1` at index `i`.
    prints: Vec<u64>,
}

impl Known {
    fn of(record: &MatchRecord) -> Known {
        Known {
            state: record.state.clone(),
            prints: record.history.iter().map(|e| fingerprint(e)).collect(),
        }
    }

    /// True when `event` is not the one delivered at its seq (one not delivered differs).
    fn differs(&self, event: &Event) -> bool {
        let index = usize::try_from(event.seq)
            .ok()
            .and_then(|s| s.checked_sub(1));
        index.and_then(|i| self.prints.get(i)) != Some(&fingerprint(event))
    }
}

struct Follower {
    /// Shown in logs without its password.
    url: RedisUrl,
    client: redis::Client,
    view: HashMap<MatchId, Known>,
    /// Withdrawn matches, with the time of the last attempt to take them back.
    withdrawn: HashMap<MatchId, Instant>,
    bus: BusHandle,
    delivered: Arc<Delivered>,
    rejects: Rejects,
    down: bool,
    /// Where the subscription's state is recorded for `GET /readyz`.
    health: Arc<StoreHealth>,
    /// Events delivered, their lag, gaps filled (`/1/stats`).
    stats: Arc<FeedStats>,
}

impl Feed {
    /// Starts following the Redis at `url` through `client`, from the state of `records` (what
    /// the cores were seeded with); counts what it refuses into `rejected`, and records in
    /// `health` whether its subscription is up.
    pub fn start(
        client: redis::Client,
        url: &RedisUrl,
        records: &[MatchRecord],
        bus: BusHandle,
        delivered: Arc<Delivered>,
        rejected: Arc<AtomicU64>,
        health: Arc<StoreHealth>,
    ) -> std::io::Result<Feed> {
        let view: HashMap<MatchId, Known> = records
            .iter()
            .map(|r| (r.state.id.clone(), Known::of(r)))
            .collect();
        for (id, known) in &view {
            delivered.set(id, known.state.last_seq);
        }
        let stats = Arc::new(FeedStats::default());
        let mut follower = Follower {
            url: url.clone(),
            client,
            view,
            withdrawn: HashMap::new(),
            bus,
            delivered,
            rejects: Rejects::new(rejected, LOG_TARGET),
            down: false,
            health,
            stats: stats.clone(),
        };
        let worker = Worker::spawn(THREAD_NAME, move |stop| follower.run(stop))?;
        Ok(Feed { worker, stats })
    }

    /// The feed's figures.
    pub fn stats(&self) -> Arc<FeedStats> {
        self.stats.clone()
    }

    /// Stops the feed and waits for its thread.
    pub fn stop(self) {
        self.worker.stop();
    }
}

impl Follower {
    fn run(&mut self, stop: &AtomicBool) {
        let mut backoff = Backoff::default();
        while !stop.load(Ordering::Relaxed) {
            match self.follow(stop) {
                Ok(()) => break,
                Err(e) => {
                    self.health.feed(false);
                    if !self.down {
                        log::warn!(target: LOG_TARGET,
                            "redis subscription to {} lost: {e}; catching up when it is back", self.url);
                        self.down = true;
                    }
                    backoff.failed();
                    while !stop.load(Ordering::Relaxed) && !backoff.ready() {
                        std::thread::sleep(backoff.wait().min(POLL));
                    }
                }
            }
        }
        log::debug!(target: LOG_TARGET, "feed stopped");
    }

    /// Subscribes, catches up, then delivers messages until stopped or the connection fails.
    fn follow(&mut self, stop: &AtomicBool) -> redis::RedisResult<()> {
        let mut sub = connect(&self.client)?;
        let mut cmd = connect(&self.client)?;
        let mut pubsub = sub.as_pubsub();
        pubsub.subscribe(CHANNEL)?;
        pubsub.set_read_timeout(Some(POLL))?;
        // Subscribed first, then compared: nothing can fall between the two.
        self.resync(&mut cmd)?;
        self.health.feed(true);
        if self.down {
            log::info!(target: LOG_TARGET, "redis subscription to {} restored", self.url);
            self.down = false;
        }
        while !stop.load(Ordering::Relaxed) {
            match pubsub.get_message() {
                Ok(msg) => self.handle(msg.get_payload_bytes(), &mut cmd)?,
                Err(e) if e.is_timeout() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn handle(&mut self, payload: &[u8], cmd: &mut redis::Connection) -> redis::RedisResult<()> {
        let Some((&tag, body)) = payload.split_first() else {
            return Ok(());
        };
        // For a match the node has, a creation, a cancellation or a new incarnation is only
        // a hint: Redis says whether and how the match changed.
        match tag {
            b'C' => match decode_match(body) {
                Ok(m) if self.view.contains_key(&m.id) => self.recheck(&m.id, cmd)?,
                Ok(m) => self.adopt(&m.id, cmd)?,
                Err(e) => self.drop_message("a created message", &e),
            },
            b'X' => match MatchId::parse(&String::from_utf8_lossy(body)) {
                Ok(id) if self.view.contains_key(&id) => self.recheck(&id, cmd)?,
                Ok(id) => self.cancelled(&id),
                Err(e) => self.drop_message("a cancelled message", &e),
            },
            b'R' => match MatchId::parse(&String::from_utf8_lossy(body)) {
                Ok(id) if self.view.contains_key(&id) => self.recheck(&id, cmd)?,
                Ok(id) => self.adopt(&id, cmd)?,
                Err(e) => self.drop_message("a new-incarnation message", &e),
            },
            b'E' => match decode_event(body) {
                Ok(event) => self.event(event, cmd)?,
                Err(e) => self.drop_message("an event message", &e),
            },
            _ => self.drop_message("a message", &"unknown tag"),
        }
        Ok(())
    }

    /// Counts and logs a feed message that failed the checks; nothing else happens.
    fn drop_message(&mut self, what: &str, why: &dyn std::fmt::Display) {
        let rejection = Rejection::new(format!("{what} on {CHANNEL}"), why);
        self.rejects.record(&rejection, "dropped");
    }

    fn cancelled(&mut self, id: &MatchId) {
        if self.view.remove(id).is_some() {
            self.bus.broadcast(BusMsg::Cancelled(id.clone()));
        }
        self.withdrawn.remove(id);
        self.delivered.remove(id);
    }

    /// Delivers one event if it follows on from the view, checked. An event past a gap, or
    /// another than the one delivered at its seq, makes the node read what Redis holds
    /// ([`Follower::recheck`]): a message alone is not trusted to skip, rewind or replace.
    fn event(&mut self, event: Event, cmd: &mut redis::Connection) -> redis::RedisResult<()> {
        let id = event.match_id.clone();
        let Some(known) = self.view.get(&id) else {
            // A match this node has not seen created (or withdrew): take it whole from Redis.
            return self.adopt(&id, cmd);
        };
        let last = known.state.last_seq;
        if event.seq == last.wrapping_add(1) {
            match verify(&known.state, &event) {
                Ok(()) => self.deliver(Arc::new(event)),
                Err(why) => self.drop_message("an event message", &format!("match {id}: {why}")),
            }
            return Ok(());
        }
        if event.seq <= last && !known.differs(&event) {
            return Ok(()); // delivered already
        }
        if event.seq > last {
            log::info!(target: LOG_TARGET,
                "match {id}: event {} after {last}; reading the missing ones", event.seq);
        }
        self.recheck(&id, cmd)?;
        // What Redis holds is delivered now; the message counts only if it is part of it.
        let (held, other) = self.view.get(&id).map_or((true, false), |k| {
            (event.seq <= k.state.last_seq, k.differs(&event))
        });
        if !held || other {
            let why = format!("match {id}: event {} is not what redis holds", event.seq);
            self.drop_message("an event message", &why);
        }
        Ok(())
    }

    /// Reads the match's seq, its incarnation and its stored event at the node's last seq, and
    /// brings the view up to them ([`Follower::compare`]).
    fn recheck(&mut self, id: &MatchId, cmd: &mut redis::Connection) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        self.queue_probe(&mut pipe, id);
        let (seq, incarnation, at_last): Probe = pipe.query(cmd)?;
        match seq {
            Some(seq) => self.compare(id, seq, incarnation, at_last, cmd),
            None => {
                self.cancelled(id);
                Ok(())
            }
        }
    }

    /// Delivers an event already checked against the view.
    fn deliver(&mut self, event: Arc<Event>) {
        let Some(known) = self.view.get_mut(&event.match_id) else {
            return;
        };
        let mut next = (*known.state).clone();
        apply(&mut next, &event);
        let next = Arc::new(next);
        known.state = next.clone();
        known.prints.push(fingerprint(&event));
        let (id, seq) = (event.match_id.clone(), event.seq);
        let lag_ms = crate::api::handlers::now_ms().saturating_sub(event.timestamp_ms);
        // On the bus first: a watcher answered once it is delivered reads it on any core.
        self.bus.broadcast(BusMsg::Event { event, state: next });
        self.stats.delivered(lag_ms);
        self.delivered.set(&id, seq);
    }

    /// Reads the history from this node's last seq up to `upto` and delivers what follows on
    /// from the view, checked; an invalid entry is skipped (the seq after it then does not
    /// follow on, so nothing past it is delivered). The entry at the node's last seq is read
    /// too: if it is not the event the node delivered, the history was rewound.
    fn catch_up(
        &mut self,
        id: &MatchId,
        upto: u64,
        cmd: &mut redis::Connection,
    ) -> redis::RedisResult<()> {
        let Some(last) = self.view.get(id).map(|k| k.state.last_seq) else {
            return Ok(());
        };
        if upto <= last {
            return Ok(());
        }
        let from = last.saturating_sub(1);
        let raw: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(history_key(id.as_str()))
            .arg(from)
            .arg(upto - 1)
            .query(cmd)?;
        let mut entries = raw.iter().enumerate();
        if last > 0 {
            let same = entries.next().is_some_and(|(_, bytes)| {
                decode_event(bytes).is_ok_and(|e| {
                    e.seq == last && self.view.get(id).is_some_and(|k| !k.differs(&e))
                })
            });
            if !same {
                let why = format!("the stored event {last} is not the one delivered");
                return self.rewound(id, &why, cmd);
            }
        }
        self.fill(id, entries, from);
        let now = self.view.get(id).map_or(last, |k| k.state.last_seq);
        self.stats.gap_filled(now.saturating_sub(last));
        Ok(())
    }

    /// Delivers the history entries read by [`Follower::catch_up`] (the `i`-th one at
    /// history index `from + i`) that follow on from the view, checked.
    fn fill<'a>(
        &mut self,
        id: &MatchId,
        entries: impl Iterator<Item = (usize, &'a Vec<u8>)>,
        from: u64,
    ) {
        for (i, bytes) in entries {
            let place = || format!("{} entry {}", history_key(id.as_str()), from + i as u64 + 1);
            let event = match decode_event(bytes) {
                Ok(e) => e,
                Err(e) => {
                    self.rejects.record(&Rejection::new(place(), e), "skipped");
                    continue;
                }
            };
            let Some(known) = self.view.get(id) else {
                return;
            };
            match verify(&known.state, &event) {
                Ok(()) => self.deliver(Arc::new(event)),
                Err(why) => self
                    .rejects
                    .record(&Rejection::new(place(), why), "skipped"),
            }
        }
    }

    /// Takes a match whole from Redis (created while this node was not listening, or
    /// withdrawn and perhaps valid again).
    fn adopt(&mut self, id: &MatchId, cmd: &mut redis::Connection) -> redis::RedisResult<()> {
        if self
            .withdrawn
            .get(id)
            .is_some_and(|at| at.elapsed() < RETRY_WITHDRAWN)
        {
            return Ok(());
        }
        self.take(id, cmd)
    }

    /// Reads a match whole and takes it: as a new match, or in place of the node's view of it
    /// (another history: its subscribers are told).
    fn take(&mut self, id: &MatchId, cmd: &mut redis::Connection) -> redis::RedisResult<()> {
        match load_record(cmd, id)? {
            Loaded::Gone => self.cancelled(id),
            Loaded::Invalid(rejection) => self.withdraw(id, &rejection),
            Loaded::Valid(record) => {
                if self.withdrawn.remove(id).is_some() {
                    log::info!(target: LOG_TARGET, "match {id}: its stored data is valid again; serving it");
                }
                let seq = record.state.last_seq;
                let known = self.view.insert(id.clone(), Known::of(&record));
                if known.is_some() {
                    log::info!(target: LOG_TARGET,
                        "match {id}: history replaced (incarnation {} at seq {seq}); ending its subscribers",
                        record.state.incarnation);
                    self.bus.broadcast(BusMsg::Replaced(record));
                } else {
                    self.bus.broadcast(BusMsg::Snapshot(record));
                }
                self.delivered.set(id, seq);
            }
        }
        Ok(())
    }

    /// The stored history of `id` is not the one the node delivered, under the same
    /// incarnation: Redis lost writes. Gives the match a new incarnation (or takes the one
    /// another node gave it first) and replaces the node's view with the stored history.
    fn rewound(
        &mut self,
        id: &MatchId,
        why: &str,
        cmd: &mut redis::Connection,
    ) -> redis::RedisResult<()> {
        let Some(seen) = self.view.get(id).map(|k| k.state.incarnation) else {
            return Ok(());
        };
        log::warn!(target: LOG_TARGET,
            "match {id}: redis holds another history than this node delivered under incarnation {seen} ({why}); \
             giving it a new incarnation");
        match reincarnate(cmd, id, seen)? {
            Loaded::Gone => self.cancelled(id),
            Loaded::Invalid(rejection) => self.withdraw(id, &rejection),
            Loaded::Valid(record) => {
                self.withdrawn.remove(id);
                let seq = record.state.last_seq;
                self.view.insert(id.clone(), Known::of(&record));
                self.bus.broadcast(BusMsg::Replaced(record));
                self.delivered.set(id, seq);
            }
        }
        Ok(())
    }

    /// Withdraws a match whose stored data fails the checks where the node needs it (a
    /// warning when it was served; a match not served yet is only counted).
    fn withdraw(&mut self, id: &MatchId, rejection: &Rejection) {
        let outcome = format!("match {id} withdrawn from this node until its data is valid");
        if self.view.remove(id).is_some() {
            self.rejects.record_change(rejection, &outcome);
            self.bus.broadcast(BusMsg::Withdrawn(id.clone()));
        } else {
            self.rejects.record(rejection, &outcome);
        }
        self.delivered.remove(id);
        self.withdrawn.insert(id.clone(), Instant::now());
    }

    /// Queues the reads of [`Follower::recheck`] for `id`: its seq, its incarnation, and its
    /// stored event at the node's last seq (LINDEX -1, never compared, when it has none).
    fn queue_probe(&self, pipe: &mut redis::Pipeline, id: &MatchId) {
        let last = self.view.get(id).map_or(0, |k| k.state.last_seq);
        pipe.cmd("GET").arg(seq_key(id.as_str()));
        pipe.cmd("GET").arg(incarnation_key(id.as_str()));
        pipe.cmd("LINDEX")
            .arg(history_key(id.as_str()))
            .arg(i64::try_from(last).unwrap_or(i64::MAX) - 1);
    }

    /// Brings the view of `id` up to what Redis holds, given its stored `seq`, `incarnation`
    /// and event at the node's last seq: a match the node lacks is taken whole; another
    /// incarnation replaces the view; another event at the node's last seq, or none (the
    /// stored seq is behind), is a rewound history; a longer one is caught up on, and
    /// withdrawn if what it holds cannot be followed.
    fn compare(
        &mut self,
        id: &MatchId,
        seq: u64,
        incarnation: Option<Vec<u8>>,
        at_last: Option<Vec<u8>>,
        cmd: &mut redis::Connection,
    ) -> redis::RedisResult<()> {
        let Some(known) = self.view.get(id) else {
            self.withdrawn.remove(id);
            return self.take(id, cmd);
        };
        let last = known.state.last_seq;
        let stored = incarnation.and_then(|t| Incarnation::parse(&t).ok());
        if stored != Some(known.state.incarnation) {
            // Cancelled and created again while the node was not told (or damaged): whole.
            return self.take(id, cmd);
        }
        let at_last = match at_last.filter(|_| last > 0).map(|b| decode_event(&b)) {
            None => None,
            Some(Ok(e)) => Some(e),
            Some(Err(e)) => {
                let place = format!("{} entry {last}", history_key(id.as_str()));
                self.withdraw(id, &Rejection::new(place, e));
                return Ok(());
            }
        };
        let same = last == 0 || at_last.is_some_and(|e| e.seq == last && !known.differs(&e));
        if !same {
            let why = format!("stored seq {seq}, its event {last} not the one delivered");
            return self.rewound(id, &why, cmd);
        }
        if seq > last {
            self.catch_up(id, seq, cmd)?;
            if self.view.get(id).is_some_and(|k| k.state.last_seq < seq) {
                let rejection = Rejection::new(
                    history_key(id.as_str()),
                    format!("events after {last} up to {seq} missing or invalid"),
                );
                self.withdraw(id, &rejection);
            }
        }
        Ok(())
    }

    /// Brings the view up to Redis after a (re)subscription, in one round trip for every
    /// match ([`Follower::compare`]): new matches, missed events, matches cancelled, created
    /// again or rewound meanwhile, withdrawn ones valid again.
    fn resync(&mut self, cmd: &mut redis::Connection) -> redis::RedisResult<()> {
        let raw_ids: Vec<String> = redis::cmd("SMEMBERS").arg(MATCHES).query(cmd)?;
        let ids: Vec<MatchId> = raw_ids
            .iter()
            .filter_map(|raw| MatchId::parse(raw).ok())
            .collect();
        let mut pipe = redis::pipe();
        for id in &ids {
            self.queue_probe(&mut pipe, id);
        }
        let found: Vec<Probe> = if ids.is_empty() {
            Vec::new()
        } else {
            let flat: Vec<redis::Value> = pipe.query(cmd)?;
            flat.chunks(3)
                .map(|c| {
                    let seq = c
                        .first()
                        .and_then(|v| redis::from_redis_value(v).ok().flatten());
                    let bytes = |v: Option<&redis::Value>| {
                        v.and_then(|v| redis::from_redis_value(v).ok().flatten())
                    };
                    (seq, bytes(c.get(1)), bytes(c.get(2)))
                })
                .collect()
        };
        let mut present = HashSet::new();
        for (id, (seq, incarnation, at_last)) in ids.into_iter().zip(found) {
            let Some(seq) = seq else { continue };
            present.insert(id.clone());
            self.compare(&id, seq, incarnation, at_last, cmd)?;
        }
        let gone: Vec<MatchId> = self
            .view
            .keys()
            .filter(|id| !present.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.cancelled(&id);
        }
        self.withdrawn.retain(|id, _| present.contains(id));
        Ok(())
    }
}

/// What [`Follower::queue_probe`] reads: the stored seq, incarnation and event at the node's
/// last seq.
type Probe = (Option<u64>, Option<Vec<u8>>, Option<Vec<u8>>);
