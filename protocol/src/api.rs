//! The JSON shapes of the HTTP API (SPEC §4): request bodies the watcher posts, and the read
//! shapes (match, history entry, stored event) with their decoders.
//!
//! Bodies written here keep a fixed key order (event data in the frame order of SPEC §3), so
//! they are written from borrowed structs rather than built as [`serde_json::Value`]s, whose
//! maps sort their keys. Parsers refuse unknown keys and name the wrong field in their error;
//! the read decoders ([`parse_match_json`], [`parse_event_json`]) ignore unknown keys so that
//! older clients can read newer servers. Everywhere a key set to `null` counts as absent.

use std::fmt;

use serde::ser::{Serialize, Serializer};
use serde_json::Value;

use crate::incarnation::Incarnation;
use crate::model::{Date, Event, EventData, Match, NewMatch, Player, PlayerRef, PostedEvent};

mod parse;

pub use parse::{parse_event_json, parse_match_json, parse_new_match, parse_posted_event};

/// Why a request body or a JSON document was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub String);

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApiError {}

/// `{"error":"<reason>"}` bytes.
///
/// ```
/// let body = matchstream_protocol::api::error_body("unknown \"match\"");
/// assert_eq!(body, br#"{"error":"unknown \"match\""}"#);
/// ```
pub fn error_body(reason: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct ErrorJson<'a> {
        error: &'a str,
    }
    to_vec(&ErrorJson { error: reason })
}

/// The body of `POST /1/matches`, the inverse of [`parse_new_match`].
pub fn new_match_body(m: &NewMatch) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct NewMatchJson<'a> {
        home: &'a str,
        visit: &'a str,
        start_date: DateJson,
        #[serde(skip_serializing_if = "Option::is_none")]
        stadium: Option<&'a str>,
        home_players: RosterJson<'a>,
        visit_players: RosterJson<'a>,
    }
    to_vec(&NewMatchJson {
        home: m.home.as_str(),
        visit: m.visit.as_str(),
        start_date: DateJson(m.start_date),
        stadium: m.stadium.as_deref(),
        home_players: RosterJson(&m.home_players),
        visit_players: RosterJson(&m.visit_players),
    })
}

/// The body of `POST /1/match/<id>/events`, the inverse of [`parse_posted_event`]: data keys in
/// the frame order, players as a number or `{"number":..,"name":..}` as they were given.
pub fn posted_event_body(e: &PostedEvent) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct PostedJson<'a> {
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        home_players: Option<RosterJson<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        visit_players: Option<RosterJson<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        player: Option<RefJson<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        player_out: Option<RefJson<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        card: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        team: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        player_team: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        player_in: Option<RefJson<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        comment: Option<&'a str>,
    }
    to_vec(&PostedJson {
        kind: e.kind.as_str(),
        home_players: e.home_players.as_deref().map(RosterJson),
        visit_players: e.visit_players.as_deref().map(RosterJson),
        player: e.player.as_ref().map(RefJson),
        player_out: e.player_out.as_ref().map(RefJson),
        card: e.card.map(|c| c.as_str()),
        team: e.team.as_ref().map(|t| t.as_str()),
        player_team: e.player_team.as_ref().map(|t| t.as_str()),
        player_in: e.player_in.as_ref().map(RefJson),
        comment: e.comment.as_deref(),
    })
}

/// `GET /1/match/<id>`: `{"id","home","visit","start_date","stadium"(null if none),
/// "home_players":[{"number":25,"name":"Albil"}],"visit_players","home_score","visit_score",
/// "period","last_seq","updated","incarnation"}`. `updated` (ms of the last change) is there
/// so that [`parse_match_json`] gives the match back whole; `incarnation` is left out while it
/// is unset (a match read from an old store, before the store gives it one).
pub fn match_json(m: &Match) -> Value {
    to_value(&MatchJson::of(m))
}

/// The same document as [`match_json`], as bytes in that key order.
pub fn match_body(m: &Match) -> Vec<u8> {
    to_vec(&MatchJson::of(m))
}

/// One history entry: `{"seq":1,"timestamp":<ms>,"kind":"goal","data":{...}}`, data holding
/// only the keys present, players as `{"number","name"}`, teams as strings, card as
/// `"red"`/`"yellow"`. (A [`Value`] sorts its keys; [`write_history`] and
/// [`stored_event_body`] write the data keys in the frame order.)
pub fn event_json(e: &Event) -> Value {
    to_value(&EventJson::of(e, false))
}

/// Appends the JSON array of `events` to `out` (`GET /1/match/<id>/history`).
pub fn write_history(events: &[&Event], out: &mut Vec<u8>) {
    write_history_iter(events.iter().copied(), out);
}

/// [`write_history`] for any iterator of events.
pub fn write_history_iter<'a>(events: impl IntoIterator<Item = &'a Event>, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, e) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&EventJson::of(e, false), out);
    }
    out.push(b']');
}

/// Appends one history entry (an element of [`write_history`]'s array): the `data` of an SSE
/// event ([`crate::sse`]).
pub fn write_event(e: &Event, out: &mut Vec<u8>) {
    write_json(&EventJson::of(e, false), out);
}

/// The body of the 201 answering `POST /1/match/<id>/events`:
/// `{"match":"<id>","seq":n,"timestamp":ms,"kind":..,"data":{..}}`.
pub fn stored_event_body(e: &Event) -> Vec<u8> {
    to_vec(&EventJson::of(e, true))
}

/// Serializes `v`; the shapes of this module only hold string keys, so this cannot fail.
fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(v, &mut out);
    out
}

fn write_json<T: Serialize>(v: &T, out: &mut Vec<u8>) {
    // Cannot fail: writing to a Vec never fails and every map key here is a string.
    let _ = serde_json::to_writer(out, v);
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A roster as `[{"number":25,"name":"Albil"}, ...]`.
struct RosterJson<'a>(&'a [Player]);

impl Serialize for RosterJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(PlayerJson))
    }
}

/// A player as `{"number":25,"name":"Albil"}`.
struct PlayerJson<'a>(&'a Player);

impl Serialize for PlayerJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Player", 2)?;
        st.serialize_field("number", &self.0.number)?;
        st.serialize_field("name", &self.0.name)?;
        st.end()
    }
}

/// A posted player: a bare number or a full player object.
struct RefJson<'a>(&'a PlayerRef);

impl Serialize for RefJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            PlayerRef::Number(n) => s.serialize_u8(*n),
            PlayerRef::Full(p) => PlayerJson(p).serialize(s),
        }
    }
}

/// An incarnation as `"3f9a0c1d2b4e5f60"`.
struct IncarnationJson(Incarnation);

impl Serialize for IncarnationJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A date as `"YYYY-MM-DD"`.
struct DateJson(Date);

impl Serialize for DateJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[derive(serde::Serialize)]
struct MatchJson<'a> {
    id: &'a str,
    home: &'a str,
    visit: &'a str,
    start_date: DateJson,
    stadium: Option<&'a str>,
    home_players: RosterJson<'a>,
    visit_players: RosterJson<'a>,
    home_score: u32,
    visit_score: u32,
    period: &'static str,
    last_seq: u64,
    updated: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    incarnation: Option<IncarnationJson>,
}

impl<'a> MatchJson<'a> {
    fn of(m: &'a Match) -> Self {
        MatchJson {
            id: m.id.as_str(),
            home: m.home.as_str(),
            visit: m.visit.as_str(),
            start_date: DateJson(m.start_date),
            stadium: m.stadium.as_deref(),
            home_players: RosterJson(&m.home_players),
            visit_players: RosterJson(&m.visit_players),
            home_score: m.home_score,
            visit_score: m.visit_score,
            period: m.period.as_str(),
            last_seq: m.last_seq,
            updated: m.updated_ms,
            incarnation: m
                .incarnation
                .is_set()
                .then_some(IncarnationJson(m.incarnation)),
        }
    }
}

#[derive(serde::Serialize)]
struct EventJson<'a> {
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    match_id: Option<&'a str>,
    seq: u64,
    timestamp: u64,
    kind: &'static str,
    data: DataJson<'a>,
}

impl<'a> EventJson<'a> {
    fn of(e: &'a Event, with_match: bool) -> Self {
        EventJson {
            match_id: with_match.then(|| e.match_id.as_str()),
            seq: e.seq,
            timestamp: e.timestamp_ms,
            kind: e.kind.as_str(),
            data: DataJson::of(&e.data),
        }
    }
}

/// Event data, keys in the frame order of SPEC §3.
#[derive(serde::Serialize)]
struct DataJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    home_players: Option<RosterJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    visit_players: Option<RosterJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    player: Option<PlayerJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    player_out: Option<PlayerJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    player_team: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    player_in: Option<PlayerJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
}

impl<'a> DataJson<'a> {
    fn of(d: &'a EventData) -> Self {
        DataJson {
            home_players: d.home_players.as_deref().map(RosterJson),
            visit_players: d.visit_players.as_deref().map(RosterJson),
            player: d.player.as_ref().map(PlayerJson),
            player_out: d.player_out.as_ref().map(PlayerJson),
            card: d.card.map(|c| c.as_str()),
            team: d.team.as_ref().map(|t| t.as_str()),
            player_team: d.player_team.as_ref().map(|t| t.as_str()),
            player_in: d.player_in.as_ref().map(PlayerJson),
            comment: d.comment.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests;
