//! The node's feed: one Redis subscription to the event channel, delivered into the node's
//! own cores' bus in seq order per match.
//!
//! Every committed change reaches every node through `ms:events`, this node's own writes
//! included, so each subscriber gets each event exactly once. The feed keeps the last seq it
//! delivered per match; an event past a gap (a message lost while the subscription was down,
//! or a Redis restart) makes it read the missing events from the match's history first, and
//! after every (re)subscription it compares its view with Redis and catches up, so no
//! subscriber misses or reorders an event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use matchstream_protocol::codec::{decode_event, decode_match};
use matchstream_protocol::state::apply;
use matchstream_protocol::{Event, Match, MatchId};

use super::{
    connect, history_key, load_record, seq_key, Backoff, Delivered, Worker, CHANNEL, MATCHES,
};
use crate::bus::{BusHandle, BusMsg, MatchRecord};
use crate::config::RedisUrl;

/// The feed thread's name.
pub const THREAD_NAME: &str = "matchstream-feed";

/// How often a blocked read wakes to check for shutdown.
const POLL: Duration = Duration::from_millis(200);

/// The running feed thread.
pub struct Feed(Worker);

struct Follower {
    /// Shown in logs without its password.
    url: RedisUrl,
    client: redis::Client,
    view: HashMap<MatchId, Arc<Match>>,
    bus: BusHandle,
    delivered: Arc<Delivered>,
    down: bool,
}

impl Feed {
    /// Starts following the Redis at `url` through `client`, from the state of `records` (what
    /// the cores were seeded with).
    pub fn start(
        client: redis::Client,
        url: &RedisUrl,
        records: &[MatchRecord],
        bus: BusHandle,
        delivered: Arc<Delivered>,
    ) -> std::io::Result<Feed> {
        let view: HashMap<MatchId, Arc<Match>> = records
            .iter()
            .map(|r| (r.state.id.clone(), r.state.clone()))
            .collect();
        for (id, state) in &view {
            delivered.set(id, state.last_seq);
        }
        let mut follower = Follower {
            url: url.clone(),
            client,
            view,
            bus,
            delivered,
            down: false,
        };
        Worker::spawn(THREAD_NAME, move |stop| follower.run(stop)).map(Feed)
    }

    /// Stops the feed and waits for its thread.
    pub fn stop(self) {
        self.0.stop();
    }
}

impl Follower {
    fn run(&mut self, stop: &AtomicBool) {
        let mut backoff = Backoff::default();
        while !stop.load(Ordering::Relaxed) {
            match self.follow(stop) {
                Ok(()) => break,
                Err(e) => {
                    if !self.down {
                        log::warn!(target: "matchstream::feed",
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
        log::debug!(target: "matchstream::feed", "feed stopped");
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
        if self.down {
            log::info!(target: "matchstream::feed", "redis subscription to {} restored", self.url);
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
        match tag {
            b'C' => match decode_match(body) {
                Ok(m) => {
                    if !self.view.contains_key(&m.id) {
                        self.created(Arc::new(m));
                    }
                }
                Err(e) => log::warn!(target: "matchstream::feed", "bad created message: {}", e.0),
            },
            b'X' => {
                if let Ok(id) = MatchId::parse(&String::from_utf8_lossy(body)) {
                    self.cancelled(&id);
                }
            }
            b'E' => match decode_event(body) {
                Ok(event) => self.event(event, cmd)?,
                Err(e) => log::warn!(target: "matchstream::feed", "bad event message: {}", e.0),
            },
            _ => log::warn!(target: "matchstream::feed", "unknown message on {CHANNEL}"),
        }
        Ok(())
    }

    fn created(&mut self, m: Arc<Match>) {
        self.delivered.set(&m.id, m.last_seq);
        self.view.insert(m.id.clone(), m.clone());
        self.bus.broadcast(BusMsg::Created(m));
    }

    fn cancelled(&mut self, id: &MatchId) {
        if self.view.remove(id).is_some() {
            self.bus.broadcast(BusMsg::Cancelled(id.clone()));
        }
        self.delivered.remove(id);
    }

    /// Delivers one event, after any it missed.
    fn event(&mut self, event: Event, cmd: &mut redis::Connection) -> redis::RedisResult<()> {
        let Some(last) = self.view.get(&event.match_id).map(|m| m.last_seq) else {
            // A match this node has not seen created: take it whole from Redis.
            return self.adopt(&event.match_id, cmd);
        };
        if event.seq <= last {
            return Ok(());
        }
        if event.seq > last + 1 {
            log::info!(target: "matchstream::feed",
                "match {}: event {} after {last}; fetching the missing ones", event.match_id, event.seq);
            self.catch_up(&event.match_id, event.seq - 1, cmd)?;
        }
        self.deliver(Arc::new(event));
        Ok(())
    }

    fn deliver(&mut self, event: Arc<Event>) {
        let Some(state) = self.view.get(&event.match_id) else {
            return;
        };
        let mut next = (**state).clone();
        apply(&mut next, &event);
        let next = Arc::new(next);
        self.view.insert(event.match_id.clone(), next.clone());
        self.delivered.set(&event.match_id, event.seq);
        self.bus.broadcast(BusMsg::Event { event, state: next });
    }

    /// Reads the history from this node's last seq up to `upto` and delivers it.
    fn catch_up(
        &mut self,
        id: &MatchId,
        upto: u64,
        cmd: &mut redis::Connection,
    ) -> redis::RedisResult<()> {
        let Some(last) = self.view.get(id).map(|m| m.last_seq) else {
            return Ok(());
        };
        if upto <= last {
            return Ok(());
        }
        let raw: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(history_key(id.as_str()))
            .arg(last)
            .arg(upto - 1)
            .query(cmd)?;
        for bytes in raw {
            match decode_event(&bytes) {
                Ok(e) if e.seq == self.view.get(id).map_or(0, |m| m.last_seq) + 1 => {
                    self.deliver(Arc::new(e))
                }
                Ok(_) => {}
                Err(e) => {
                    log::warn!(target: "matchstream::feed", "bad history entry of {id}: {}", e.0)
                }
            }
        }
        Ok(())
    }

    /// Takes a match whole from Redis (created while this node was not listening).
    fn adopt(&mut self, id: &MatchId, cmd: &mut redis::Connection) -> redis::RedisResult<()> {
        if let Some(record) = load_record(cmd, id.as_str())? {
            self.delivered.set(id, record.state.last_seq);
            self.view.insert(id.clone(), record.state.clone());
            self.bus.broadcast(BusMsg::Snapshot(record));
        }
        Ok(())
    }

    /// Brings the view up to Redis after a (re)subscription: new matches, missed events,
    /// matches cancelled (or cancelled and created again) meanwhile.
    fn resync(&mut self, cmd: &mut redis::Connection) -> redis::RedisResult<()> {
        let ids: Vec<String> = redis::cmd("SMEMBERS").arg(MATCHES).query(cmd)?;
        let mut present = std::collections::HashSet::new();
        for raw in ids {
            let Ok(id) = MatchId::parse(&raw) else {
                continue;
            };
            let seq: Option<u64> = redis::cmd("GET").arg(seq_key(&raw)).query(cmd)?;
            let Some(seq) = seq else { continue };
            present.insert(id.clone());
            match self.view.get(&id).map(|m| m.last_seq) {
                None => self.adopt(&id, cmd)?,
                Some(last) if seq < last => {
                    // Cancelled and created again while we were away.
                    self.cancelled(&id);
                    self.adopt(&id, cmd)?;
                }
                Some(last) if seq > last => self.catch_up(&id, seq, cmd)?,
                Some(_) => {}
            }
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
        Ok(())
    }
}
