//! The Redis store backend: matches, history and visits in Redis, writes as atomic scripts.
//!
//! The node validates an event against the stored state at seq n (protocol's `validate`,
//! the same rules as the local stores) and a Lua script commits it only if the stored seq is
//! still n and the stored incarnation still the state's: append to the history, store the new
//! state, set seq n+1, publish — one atomic step on the server. What the node reads back is
//! checked like everything read from Redis ([`crate::cluster::trust`]): a match that fails is
//! not loaded, a state that fails refuses writes to its match (503). A batch of operations goes out as one pipeline (one round trip); an event
//! that lost a race with another node is validated again against the fresh state and retried.
//! This backend does not publish on the bus itself: the node's feed delivers every change,
//! its own included, in seq order; the store answers a watcher once the feed has delivered
//! the write on this node (read-your-writes), or after [`DELIVERY_WAIT`].

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use matchstream_protocol::codec::{decode_match, encode_event, encode_match};
use matchstream_protocol::state::{apply, validate};
use matchstream_protocol::{Event, Incarnation, Match, MatchId};

use super::{Op, Outcome, Store, StoreError};
use crate::bus::MatchRecord;
use crate::cluster::trust::{Rejection, Rejects};
use crate::cluster::{
    connect, history_key, incarnation_key, load_record, match_key, seq_key, Backoff, Delivered,
    Loaded, CHANNEL, MATCHES, VISITS,
};
use crate::config::RedisUrl;

/// The log target of the Redis store.
const LOG_TARGET: &str = "matchstream::redis";

/// Longest a batch waits for the feed to deliver its writes on this node.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(1);

/// Attempts at an event that keeps losing races with other nodes (with a growing, jittered
/// pause between them, so two busy watchers of one match on two nodes do not livelock).
const MAX_ATTEMPTS: u32 = 40;

/// KEYS: seq, state, history, the set of matches, incarnation. ARGV: state, id, channel,
/// message, incarnation.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[5], ARGV[5])
redis.call('SET', KEYS[1], 0)
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1";

/// KEYS: seq, state, history, incarnation. ARGV: the seq validated against, event, new state,
/// channel, message, the incarnation validated against ('' for none). -1: the seq moved, -3:
/// the incarnation changed (both: validate again), -2: no such match.
const APPLY: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then return -2 end
if tonumber(cur) ~= tonumber(ARGV[1]) then return -1 end
if (redis.call('GET', KEYS[4]) or '') ~= ARGV[6] then return -3 end
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], tonumber(ARGV[1]) + 1)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return tonumber(ARGV[1]) + 1";

/// KEYS: seq, state, history, the set of matches, incarnation. ARGV: id, channel, message.
const CANCEL: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1";

/// The Redis backend.
pub struct RedisStore {
    /// Shown in errors and logs without its password.
    url: RedisUrl,
    client: redis::Client,
    con: Option<redis::Connection>,
    backoff: Backoff,
    down: bool,
    create: redis::Script,
    apply: redis::Script,
    cancel: redis::Script,
    cache: HashMap<MatchId, Arc<Match>>,
    delivered: Arc<Delivered>,
    /// What it read and refused (counted into the node's `store_rejected`).
    rejects: Rejects,
}

/// What a queued pipeline command will tell.
enum Pending {
    Create(Arc<Match>),
    Apply {
        event: Arc<Event>,
        state: Arc<Match>,
        posted: Box<Op>,
    },
    Cancel(MatchId),
    Visit,
    GetVisits,
}

fn unavailable(url: &RedisUrl, e: &redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis {url}: {e}"))
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port[/db]`); fails when Redis cannot be reached.
    /// Counts what it reads and refuses into `rejected`.
    pub fn open(
        url: &RedisUrl,
        delivered: Arc<Delivered>,
        rejected: Arc<AtomicU64>,
    ) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url.expose())
            .map_err(|e| StoreError::Unavailable(format!("bad redis url {url}: {e}")))?;
        let mut store = RedisStore {
            url: url.clone(),
            client,
            con: None,
            backoff: Backoff::default(),
            down: false,
            create: redis::Script::new(CREATE),
            apply: redis::Script::new(APPLY),
            cancel: redis::Script::new(CANCEL),
            cache: HashMap::new(),
            delivered,
            rejects: Rejects::new(rejected, LOG_TARGET),
        };
        store.connection()?;
        Ok(store)
    }

    /// The open connection, (re)connecting with backoff and loading the scripts.
    fn connection(&mut self) -> Result<&mut redis::Connection, StoreError> {
        if self.con.is_none() {
            if !self.backoff.ready() {
                return Err(StoreError::Unavailable(format!(
                    "redis {} unreachable; retrying in {:?}",
                    self.url,
                    self.backoff.wait()
                )));
            }
            let opened = connect(&self.client).and_then(|mut con| {
                for script in [CREATE, APPLY, CANCEL] {
                    redis::cmd("SCRIPT")
                        .arg("LOAD")
                        .arg(script)
                        .query::<String>(&mut con)?;
                }
                Ok(con)
            });
            match opened {
                Ok(con) => {
                    if self.down {
                        log::info!(target: "matchstream::redis", "redis {} reachable again", self.url);
                    }
                    self.down = false;
                    self.backoff.succeeded();
                    self.con = Some(con);
                }
                Err(e) => return Err(self.lost(&e)),
            }
        }
        self.con
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable(format!("redis {} not connected", self.url)))
    }

    /// Drops the connection after an error; logs the change once.
    fn lost(&mut self, e: &redis::RedisError) -> StoreError {
        if !self.down {
            log::warn!(target: "matchstream::redis", "redis {} unavailable: {e}; writes fail with 503 until it is back", self.url);
        }
        self.down = true;
        self.con = None;
        self.cache.clear();
        self.backoff.failed();
        unavailable(&self.url, e)
    }

    /// The stored state of `id` (cached; `fresh` reads Redis), with the stored incarnation
    /// (the key the scripts compare wins over the state's copy). A state that fails the
    /// checks refuses writes to its match (503) rather than build on it.
    fn state_of(&mut self, id: &MatchId, fresh: bool) -> Result<Option<Arc<Match>>, StoreError> {
        if !fresh {
            if let Some(m) = self.cache.get(id) {
                return Ok(Some(m.clone()));
            }
        }
        let key = match_key(id.as_str());
        let read = redis::pipe()
            .cmd("GET")
            .arg(&key)
            .cmd("GET")
            .arg(incarnation_key(id.as_str()))
            .query(self.connection()?);
        let (bytes, incarnation): (Option<Vec<u8>>, Option<Vec<u8>>) = match read {
            Ok(found) => found,
            Err(e) => return Err(self.lost(&e)),
        };
        let Some(bytes) = bytes else {
            self.cache.remove(id);
            return Ok(None);
        };
        let decoded = decode_match(&bytes)
            .map_err(|e| Rejection::new(key, e))
            .and_then(|mut m| match incarnation {
                None => Ok(m),
                Some(text) => Incarnation::parse(&text)
                    .map(|i| {
                        m.incarnation = i;
                        m
                    })
                    .map_err(|e| Rejection::new(incarnation_key(id.as_str()), e)),
            });
        match decoded {
            Ok(m) => {
                let m = Arc::new(m);
                self.cache.insert(id.clone(), m.clone());
                Ok(Some(m))
            }
            Err(rejection) => {
                self.rejects
                    .record(&rejection, "writes to the match refused");
                Err(StoreError::Unavailable(format!(
                    "redis {}: bad data in {rejection}",
                    self.url
                )))
            }
        }
    }

    /// Validates an event against the stored state (refreshing before a refusal, since the
    /// cache may be behind another node's writes) and builds the event and the state after it.
    fn prepare_event(&mut self, op: &Op) -> Result<(Arc<Event>, Arc<Match>), StoreError> {
        let Op::Apply { id, event, now_ms } = op else {
            return Err(StoreError::Unavailable("not an event".into()));
        };
        let mut fresh = false;
        loop {
            let Some(state) = self.state_of(id, fresh)? else {
                return Err(StoreError::NotFound(id.clone()));
            };
            match validate(&state, event) {
                Ok(data) => {
                    let e = Event {
                        match_id: id.clone(),
                        seq: state.last_seq + 1,
                        timestamp_ms: (*now_ms).max(state.updated_ms),
                        kind: event.kind,
                        data,
                    };
                    let mut next = (*state).clone();
                    apply(&mut next, &e);
                    return Ok((Arc::new(e), Arc::new(next)));
                }
                Err(e) if fresh => return Err(StoreError::Invalid(e)),
                Err(_) => fresh = true,
            }
        }
    }

    fn queue_apply(&self, pipe: &mut redis::Pipeline, event: &Event, state: &Match) {
        let id = event.match_id.as_str();
        let mut message = b"E".to_vec();
        message.extend_from_slice(&encode_event(event));
        let incarnation = match state.incarnation.is_set() {
            true => state.incarnation.to_string(),
            false => String::new(),
        };
        pipe.cmd("EVALSHA")
            .arg(self.apply.get_hash())
            .arg(4)
            .arg(seq_key(id))
            .arg(match_key(id))
            .arg(history_key(id))
            .arg(incarnation_key(id))
            .arg(event.seq - 1)
            .arg(encode_event(event))
            .arg(encode_match(state))
            .arg(CHANNEL)
            .arg(message)
            .arg(incarnation);
    }

    /// One event on its own, retried against fresh state while it loses races.
    fn apply_alone(&mut self, op: &Op) -> Result<Outcome, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(contention_pause(attempt));
            }
            let (event, state) = self.prepare_event(op)?;
            let mut pipe = redis::pipe();
            self.queue_apply(&mut pipe, &event, &state);
            let answer: Vec<i64> = match pipe.query(self.connection()?) {
                Ok(a) => a,
                Err(e) => return Err(self.lost(&e)),
            };
            match answer.first().copied() {
                Some(n) if n > 0 => {
                    self.cache.insert(event.match_id.clone(), state.clone());
                    return Ok(Outcome::Applied { event, state });
                }
                Some(-2) => {
                    self.cache.remove(&event.match_id);
                    return Err(StoreError::NotFound(event.match_id.clone()));
                }
                _ => {
                    self.cache.remove(&event.match_id);
                }
            }
        }
        Err(StoreError::Unavailable(
            "too much contention on this match; try again".into(),
        ))
    }

    /// Builds the pipeline for a batch; ops that fail before Redis is asked get their result.
    fn plan(
        &mut self,
        ops: Vec<Op>,
        results: &mut [Option<Result<Outcome, StoreError>>],
    ) -> Result<(redis::Pipeline, Vec<(usize, Pending)>), StoreError> {
        let mut pipe = redis::pipe();
        let mut pending = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Create {
                    new,
                    now_ms,
                    incarnation,
                } => {
                    let m = Arc::new(Match::create(new, now_ms, incarnation));
                    let id = m.id.as_str();
                    let mut message = b"C".to_vec();
                    message.extend_from_slice(&encode_match(&m));
                    queue_on_match(&mut pipe, &self.create, id)
                        .arg(encode_match(&m))
                        .arg(id)
                        .arg(CHANNEL)
                        .arg(message)
                        .arg(m.incarnation.to_string());
                    self.cache.remove(&m.id);
                    pending.push((i, Pending::Create(m)));
                }
                Op::Apply { .. } => match self.prepare_event(&op) {
                    Ok((event, state)) => {
                        self.queue_apply(&mut pipe, &event, &state);
                        // Later ops of this batch on the same match build on this one.
                        self.cache.insert(event.match_id.clone(), state.clone());
                        pending.push((
                            i,
                            Pending::Apply {
                                event,
                                state,
                                posted: Box::new(op),
                            },
                        ));
                    }
                    Err(e @ StoreError::Unavailable(_)) => return Err(e),
                    Err(e) => results[i] = Some(Err(e)),
                },
                Op::Cancel { id } => {
                    let s = id.as_str();
                    queue_on_match(&mut pipe, &self.cancel, s)
                        .arg(s)
                        .arg(CHANNEL)
                        .arg(format!("X{s}"));
                    self.cache.remove(&id);
                    pending.push((i, Pending::Cancel(id)));
                }
                Op::Visit { user, count } => {
                    pipe.cmd("HINCRBY").arg(VISITS).arg(user).arg(count);
                    pending.push((i, Pending::Visit));
                }
                Op::GetVisits { user } => {
                    pipe.cmd("HGET").arg(VISITS).arg(user);
                    pending.push((i, Pending::GetVisits));
                }
            }
        }
        Ok((pipe, pending))
    }

    /// Waits (bounded for the whole batch) until the feed delivered the batch's writes here.
    fn await_delivery(&self, results: &[Option<Result<Outcome, StoreError>>]) {
        let deadline = Instant::now() + DELIVERY_WAIT;
        for result in results.iter().flatten().flatten() {
            let left = deadline.saturating_duration_since(Instant::now());
            let delivered = match result {
                Outcome::Created(m) => self.delivered.wait(&m.id, left, |s| s.is_some()),
                Outcome::Applied { event, .. } => self
                    .delivered
                    .wait(&event.match_id, left, |s| s >= Some(event.seq)),
                Outcome::Cancelled(id) => self.delivered.wait(id, left, |s| s.is_none()),
                Outcome::Visited | Outcome::Visits(_) => true,
            };
            if !delivered {
                log::debug!(target: "matchstream::redis", "a write was not delivered here within {DELIVERY_WAIT:?}");
                return;
            }
        }
    }
}

impl Store for RedisStore {
    fn load(&mut self) -> Result<Vec<MatchRecord>, StoreError> {
        let ids: Vec<String> = match redis::cmd("SMEMBERS")
            .arg(MATCHES)
            .query(self.connection()?)
        {
            Ok(ids) => ids,
            Err(e) => return Err(self.lost(&e)),
        };
        let mut records = Vec::with_capacity(ids.len());
        for raw in ids {
            let Ok(id) = MatchId::parse(&raw) else {
                let rejection = Rejection::new(MATCHES, "a member that is no match id");
                self.rejects.record(&rejection, "ignored");
                continue;
            };
            match load_record(self.connection()?, &id).map_err(|e| self.lost(&e))? {
                Loaded::Valid(record) => {
                    self.cache
                        .insert(record.state.id.clone(), record.state.clone());
                    records.push(record);
                }
                Loaded::Invalid(rejection) => self.rejects.record(
                    &rejection,
                    &format!("match {id} not served until its data is valid"),
                ),
                Loaded::Gone => {}
            }
        }
        records.sort_by(|a, b| a.state.id.cmp(&b.state.id));
        Ok(records)
    }

    fn execute(&mut self, ops: Vec<Op>) -> Vec<Result<Outcome, StoreError>> {
        let n = ops.len();
        let mut results: Vec<Option<Result<Outcome, StoreError>>> = (0..n).map(|_| None).collect();
        let planned = self
            .connection()
            .map(|_| ())
            .and_then(|()| self.plan(ops, &mut results));
        let (pipe, pending) = match planned {
            Ok(p) => p,
            Err(e) => {
                return (0..n)
                    .map(|i| results[i].take().unwrap_or_else(|| Err(e.clone())))
                    .collect()
            }
        };
        let answers = match self.connection() {
            Ok(con) => pipe.query::<Vec<redis::Value>>(con).map_err(Some),
            Err(_) => Err(None),
        };
        let answers = match answers {
            Ok(a) => a,
            Err(cause) => {
                let e = match cause {
                    Some(e) => self.lost(&e),
                    None => StoreError::Unavailable(format!("redis {} not connected", self.url)),
                };
                return (0..n)
                    .map(|i| results[i].take().unwrap_or_else(|| Err(e.clone())))
                    .collect();
            }
        };
        let mut retry = Vec::new();
        for ((i, p), answer) in pending.into_iter().zip(answers) {
            let number = redis::from_redis_value::<i64>(&answer).ok();
            results[i] = match p {
                Pending::Create(m) => Some(match number {
                    Some(1) => Ok(Outcome::Created(m)),
                    _ => Err(StoreError::Exists(m.id.clone())),
                }),
                Pending::Apply {
                    event,
                    state,
                    posted,
                } => match number {
                    Some(k) if k > 0 => Some(Ok(Outcome::Applied { event, state })),
                    Some(-2) => Some(Err(StoreError::NotFound(event.match_id.clone()))),
                    _ => {
                        self.cache.remove(&event.match_id);
                        retry.push((i, posted));
                        None
                    }
                },
                Pending::Cancel(id) => Some(match number {
                    Some(1) => Ok(Outcome::Cancelled(id)),
                    _ => Err(StoreError::NotFound(id)),
                }),
                Pending::Visit => Some(Ok(Outcome::Visited)),
                Pending::GetVisits => Some(Ok(Outcome::Visits(
                    redis::from_redis_value::<Option<u64>>(&answer)
                        .ok()
                        .flatten()
                        .unwrap_or(0),
                ))),
            };
        }
        // Events that lost a race (or followed one on the same match), in their order.
        for (i, op) in retry {
            results[i] = Some(self.apply_alone(&op));
        }
        self.await_delivery(&results);
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Unavailable("no answer".into()))))
            .collect()
    }

    fn describe(&self) -> String {
        self.url.to_string()
    }

    fn publishes_on_bus(&self) -> bool {
        false
    }
}

/// Queues `script` on the five keys that creating and cancelling match `id` touch (its seq,
/// state, history and incarnation, and the set of all matches); the caller adds the
/// arguments.
fn queue_on_match<'p>(
    pipe: &'p mut redis::Pipeline,
    script: &redis::Script,
    id: &str,
) -> &'p mut redis::Pipeline {
    pipe.cmd("EVALSHA")
        .arg(script.get_hash())
        .arg(5)
        .arg(seq_key(id))
        .arg(match_key(id))
        .arg(history_key(id))
        .arg(MATCHES)
        .arg(incarnation_key(id))
}

/// A pause of up to `attempt` × 200 µs (capped at 5 ms), jittered from the clock.
fn contention_pause(attempt: u32) -> Duration {
    let max = (u64::from(attempt) * 200).min(5_000);
    let nanos = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    );
    Duration::from_micros(nanos % max.max(1))
}
