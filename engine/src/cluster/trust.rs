//! What a node accepts from Redis, which others write too (issue 11, item 7).
//!
//! Policy, written down in docs/protocol.md ("What the store holds is checked"): every match
//! and event read from Redis passes the API's own checks before it is rendered. The value
//! checks are the decoders' (`matchstream_protocol::codec`, which uses the API's parsers: no
//! CR or LF in a comment or a name, no `status` event); the match's rules and the numbering
//! are `matchstream_protocol::state::verify` for an event that follows on from the node's
//! view, and [`check_record`] for a match taken whole. What fails is counted
//! (`store_rejected` in `/1/stats`), logged without its payload, and never rendered: a feed
//! message is dropped; a match the node needs and cannot get whole and valid is withdrawn
//! (the feed's policy, [`super::feed`]).

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use matchstream_protocol::{Event, Match, MatchId};

/// Longest text of a refusal that is logged: a reason may quote what it refused (an unknown
/// kind, say), and a foreign writer's value can be megabytes.
const MAX_REASON: usize = 160;

/// Shortest time between two warnings about refused data: a writer flooding the channel with
/// garbage costs a counter increment per message, and one warning per period.
pub const WARN_PERIOD: Duration = Duration::from_secs(10);

/// Why something read from Redis was refused: where it was read and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Where it was read: a key (`ms:history:<id>`) or the channel.
    pub place: String,
    /// What is wrong (the decoder's or the checker's reason), cut to `MAX_REASON` bytes.
    pub reason: String,
}

impl Rejection {
    /// A refusal of what was read at `place`, because of `reason`.
    pub fn new(place: impl Into<String>, reason: impl fmt::Display) -> Rejection {
        let mut reason = reason.to_string();
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push('…');
        }
        Rejection {
            place: place.into(),
            reason,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.reason)
    }
}

/// Counts refusals into the node's `store_rejected` and logs them: a warning at most every
/// [`WARN_PERIOD`] (saying how many were only counted since), the others at debug — except a
/// refusal that changes what the node serves, always a warning ([`Rejects::record_change`]).
#[derive(Debug)]
pub struct Rejects {
    count: Arc<AtomicU64>,
    /// The log target of the module that reads (feed, store).
    target: &'static str,
    last_warning: Option<Instant>,
    quiet: u64,
}

impl Rejects {
    /// Counts into `count`, logs with `target`.
    pub fn new(count: Arc<AtomicU64>, target: &'static str) -> Rejects {
        Rejects {
            count,
            target,
            last_warning: None,
            quiet: 0,
        }
    }

    /// Counts one refusal that changes what the node serves (a match withdrawn) and warns.
    pub fn record_change(&mut self, rejection: &Rejection, outcome: &str) {
        self.count.fetch_add(1, Ordering::Relaxed);
        log::warn!(target: self.target, "refused what redis holds at {rejection}: {outcome}");
    }

    /// Counts one refusal and logs it, saying what the node does about it (`outcome`).
    pub fn record(&mut self, rejection: &Rejection, outcome: &str) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let due = self.last_warning.is_none_or(|t| t.elapsed() >= WARN_PERIOD);
        if due {
            let quiet = std::mem::take(&mut self.quiet);
            let since = match quiet {
                0 => String::new(),
                n => format!(" ({n} more refused since the last warning)"),
            };
            log::warn!(target: self.target, "refused what redis holds at {rejection}: {outcome}{since}");
            self.last_warning = Some(Instant::now());
        } else {
            self.quiet += 1;
            log::debug!(target: self.target, "refused what redis holds at {rejection}: {outcome}");
        }
    }
}

/// Checks a match read whole (its state and history, `history` already cut to the
/// `state.last_seq` events the state covers): it is the match `id`, its history is exactly
/// events 1..=last_seq of that match in order, never going back in time, and the state's last
/// change is its last event. The values themselves were checked by the decoders.
pub fn check_record(id: &MatchId, state: &Match, history: &[Event]) -> Result<(), String> {
    if state.id != *id {
        return Err(format!("holds the state of {}", state.id));
    }
    if history.len() as u64 != state.last_seq {
        return Err(format!(
            "{} events stored where the state counts {}",
            history.len(),
            state.last_seq
        ));
    }
    let mut time = 0;
    for (i, e) in history.iter().enumerate() {
        let seq = i as u64 + 1;
        if e.match_id != *id || e.seq != seq {
            return Err(format!("entry {seq} is event {} of {}", e.seq, e.match_id));
        }
        if e.timestamp_ms < time {
            return Err(format!("event {seq} goes back in time"));
        }
        time = e.timestamp_ms;
    }
    if history
        .last()
        .is_some_and(|e| e.timestamp_ms != state.updated_ms)
    {
        return Err("the state's last change is not its last event".into());
    }
    Ok(())
}

/// A fingerprint of an event, to tell an event the node delivered from another one stored
/// later at the same seq (a rewound history) without keeping every event twice.
pub fn fingerprint(event: &Event) -> u64 {
    let mut hasher = DefaultHasher::new();
    event.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchstream_protocol::{Date, EventData, EventKind, Incarnation, NewMatch, TeamCode};

    fn record(events: u64) -> (Match, Vec<Event>) {
        let team = |s| TeamCode::parse(s).expect("team");
        let mut m = Match::create(
            NewMatch {
                home: team("elp"),
                visit: team("tig"),
                start_date: Date::parse("2011-09-10").expect("date"),
                stadium: None,
                home_players: vec![],
                visit_players: vec![],
            },
            1000,
            Incarnation::from_bits(7).expect("not zero"),
        );
        let history: Vec<Event> = (1..=events)
            .map(|seq| Event {
                match_id: m.id.clone(),
                seq,
                timestamp_ms: 1000 + seq,
                kind: EventKind::Comment,
                data: EventData {
                    comment: Some(format!("minute {seq}")),
                    ..EventData::default()
                },
            })
            .collect();
        m.last_seq = events;
        m.updated_ms = 1000 + events;
        (m, history)
    }

    #[test]
    fn a_consistent_record_passes() {
        for n in [0, 1, 5] {
            let (m, history) = record(n);
            assert_eq!(check_record(&m.id.clone(), &m, &history), Ok(()));
        }
    }

    #[test]
    fn inconsistent_records_are_refused() {
        let (m, history) = record(3);
        let id = m.id.clone();
        let other = MatchId::parse("abc-zed-2011-09-10").expect("id");
        let mut cases: Vec<(&str, MatchId, Match, Vec<Event>)> = Vec::new();
        cases.push((
            "another match's state",
            other.clone(),
            m.clone(),
            history.clone(),
        ));
        cases.push((
            "an event missing",
            id.clone(),
            m.clone(),
            history[..2].to_vec(),
        ));
        let mut swapped = history.clone();
        swapped.swap(0, 1);
        cases.push(("events out of order", id.clone(), m.clone(), swapped));
        let mut foreign = history.clone();
        foreign[1].match_id = other;
        cases.push(("another match's event", id.clone(), m.clone(), foreign));
        let mut late = history.clone();
        late[1].timestamp_ms = 5000;
        cases.push(("back in time", id.clone(), m.clone(), late));
        let mut stale = m.clone();
        stale.updated_ms = 1;
        cases.push(("state not at its last event", id, stale, history));
        for (name, id, m, history) in cases {
            assert!(check_record(&id, &m, &history).is_err(), "{name}");
        }
    }

    #[test]
    fn rejections_are_cut_and_counted() {
        let long = "x".repeat(10_000);
        let r = Rejection::new("ms:events", format!("kind: unknown kind {long:?}"));
        assert!(r.reason.len() <= MAX_REASON + '…'.len_utf8());
        assert_eq!(r.to_string(), format!("ms:events: {}", r.reason));
        let count = Arc::new(AtomicU64::new(0));
        let mut rejects = Rejects::new(count.clone(), "matchstream::feed");
        for _ in 0..5 {
            rejects.record(&r, "dropped");
        }
        assert_eq!(count.load(Ordering::Relaxed), 5);
        assert_eq!(rejects.quiet, 4, "one warning, four at debug");
    }

    #[test]
    fn fingerprints_tell_events_apart() {
        let (_, history) = record(2);
        assert_eq!(fingerprint(&history[0]), fingerprint(&history[0].clone()));
        let mut other = history[0].clone();
        other.timestamp_ms += 1;
        assert_ne!(fingerprint(&history[0]), fingerprint(&other));
        assert_ne!(fingerprint(&history[0]), fingerprint(&history[1]));
    }
}
