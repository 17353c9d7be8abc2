//! Giving a match a new incarnation in Redis: once, whichever node notices first.
//!
//! Two cases need one (docs/protocol.md, "Incarnations"): the stored history of a match is
//! behind what a node delivered under the same incarnation (Redis lost acknowledged writes: a
//! failover to a replica that missed them, a restore), or the match was stored before
//! incarnations existed. Several nodes may notice at the same moment, so the change is a
//! compare-and-set in one script: it sets the new incarnation only if the stored one is still
//! the one the node saw and the stored seq the one it read; a node that loses reads the
//! match again and takes what the winner stored. Every node learns of it from the `R<id>`
//! message the script publishes (or its next resync) and ends the old history's subscribers.

use std::sync::Arc;

use matchstream_protocol::codec::encode_match;
use matchstream_protocol::{Incarnation, Match, MatchId};

use super::{incarnation_key, match_key, read_record, seq_key, Loaded, CHANNEL};
use crate::bus::MatchRecord;

/// KEYS: incarnation, seq, state. ARGV: the incarnation seen ('' for none), the seq seen, the
/// new incarnation, the state with it, the channel, the message. Returns `{1, new}` when set;
/// `{0, current}` when the incarnation is another already; `{-1, current}` when the seq moved
/// (read again); `{-2, current}` when the match is gone.
const REINCARNATE: &str = r"
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return {0, cur} end
local seq = redis.call('GET', KEYS[2])
if not seq then return {-2, cur} end
if tonumber(seq) ~= tonumber(ARGV[2]) then return {-1, cur} end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {1, ARGV[3]}";

/// Attempts before giving up while the match keeps changing under the node (writes go on
/// between its read and its compare-and-set); the caller tries again at its next resync.
const MAX_ATTEMPTS: u32 = 10;

/// Gives match `id` a new incarnation in place of `seen` ([`Incarnation::UNSET`]: a match
/// stored before incarnations existed), unless it has another one already; returns the match
/// as stored afterwards, with whichever new incarnation won.
pub fn reincarnate(
    con: &mut redis::Connection,
    id: &MatchId,
    seen: Incarnation,
) -> redis::RedisResult<Loaded> {
    let script = redis::Script::new(REINCARNATE);
    for _ in 0..MAX_ATTEMPTS {
        let record = match read_record(con, id)? {
            Loaded::Valid(record) if record.state.incarnation == seen => record,
            found => return Ok(found),
        };
        let mut state = Match::clone(&record.state);
        state.incarnation = crate::incarnation::draw();
        let key = id.as_str();
        let (code, _current): (i64, String) = script
            .key(incarnation_key(key))
            .key(seq_key(key))
            .key(match_key(key))
            .arg(text(seen))
            .arg(state.last_seq)
            .arg(state.incarnation.to_string())
            .arg(encode_match(&state))
            .arg(CHANNEL)
            .arg(format!("R{key}"))
            .invoke(con)?;
        if code == 1 {
            log::info!(target: "matchstream::rewind",
                "match {id}: new incarnation {} in place of {} at seq {}",
                state.incarnation, text(seen), state.last_seq);
            return Ok(Loaded::Valid(MatchRecord {
                state: Arc::new(state),
                history: record.history,
            }));
        }
    }
    Err(redis::RedisError::from((
        redis::ErrorKind::TryAgain,
        "match kept changing while it was given a new incarnation",
        id.to_string(),
    )))
}

/// An incarnation as stored; none is the empty string.
fn text(i: Incarnation) -> String {
    if i.is_set() {
        i.to_string()
    } else {
        String::new()
    }
}
