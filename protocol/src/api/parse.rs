//! Decoders of the API's JSON: the watcher's request bodies (strict: unknown keys refused,
//! every value validated) and the read shapes (lenient about unknown keys).
//!
//! The read shapes are also what the stores decode (`codec`), and a store may hold what a
//! foreign or compromised writer put there. So their values pass the same checks as a
//! watcher's (one function per check, `Fields::comment`, `Fields::stadium`,
//! `Fields::posted_kind`, unique roster numbers): whatever decodes renders as well-formed
//! frames — no CR or LF in a comment can forge a frame.

use serde_json::{Map, Value};

use super::ApiError;
use crate::incarnation::Incarnation;
use crate::model::{
    is_printable_line, Card, Date, Event, EventData, EventKind, Match, MatchId, ModelError,
    NewMatch, Period, Player, PlayerRef, PostedEvent, TeamCode, MAX_COMMENT, MAX_STADIUM,
};

/// `kind` and the data keys of SPEC §2, in the frame order.
const EVENT_KEYS: [&str; 10] = [
    "kind",
    "home_players",
    "visit_players",
    "player",
    "player_out",
    "card",
    "team",
    "player_team",
    "player_in",
    "comment",
];

const NEW_MATCH_KEYS: [&str; 6] = [
    "home",
    "visit",
    "start_date",
    "stadium",
    "home_players",
    "visit_players",
];

/// Parses the body of `POST /1/matches`: `home`, `visit`, `start_date` (`YYYY-MM-DD`),
/// optional `stadium` (printable, at most 128 bytes), optional `home_players` /
/// `visit_players` (`[{"number":25,"name":"Albil"}]`, no number twice). Unknown keys are
/// refused; the error names the wrong field.
///
/// ```
/// use matchstream_protocol::api::parse_new_match;
/// let m = parse_new_match(br#"{"home":"elp","visit":"tig","start_date":"2011-09-10",
///     "home_players":[{"number":25,"name":"Albil"}]}"#).expect("valid");
/// assert_eq!(m.home_players[0].name, "Albil");
/// let e = parse_new_match(br#"{"home":"elp","visit":"tig"}"#);
/// assert_eq!(e.map(|_| ()).map_err(|e| e.0), Err("start_date is required".to_owned()));
/// ```
pub fn parse_new_match(body: &[u8]) -> Result<NewMatch, ApiError> {
    let v = body_object(body)?;
    let f = Fields::strict(&v, &NEW_MATCH_KEYS)?;
    let home = f.team("home")?.ok_or_else(|| required("home"))?;
    let visit = f.team("visit")?.ok_or_else(|| required("visit"))?;
    if home == visit {
        return Err(ApiError("visit: must differ from home".into()));
    }
    let start_date = f.date("start_date")?;
    let stadium = f.stadium()?;
    Ok(NewMatch {
        home,
        visit,
        start_date,
        stadium,
        home_players: f.roster("home_players", true)?.unwrap_or_default(),
        visit_players: f.roster("visit_players", true)?.unwrap_or_default(),
    })
}

/// Parses the body of `POST /1/match/<id>/events`: `{"kind":"goal","team":"tig","player":7}`,
/// players as a number or `{"number":..,"name":..}`; the keys of SPEC §2 only. An unknown
/// kind, `status` and unknown keys are refused.
///
/// ```
/// use matchstream_protocol::{api::parse_posted_event, EventKind, PlayerRef};
/// let e = parse_posted_event(br#"{"kind":"goal","team":"tig","player":7}"#).expect("valid");
/// assert_eq!((e.kind, e.player), (EventKind::Goal, Some(PlayerRef::Number(7))));
/// ```
pub fn parse_posted_event(body: &[u8]) -> Result<PostedEvent, ApiError> {
    let v = body_object(body)?;
    let f = Fields::strict(&v, &EVENT_KEYS)?;
    let kind = f.posted_kind()?;
    let comment = f.comment()?;
    Ok(PostedEvent {
        kind,
        team: f.team("team")?,
        player: f.player_ref("player")?,
        player_team: f.team("player_team")?,
        player_in: f.player_ref("player_in")?,
        player_out: f.player_ref("player_out")?,
        card: f.card()?,
        comment,
        home_players: f.roster("home_players", true)?,
        visit_players: f.roster("visit_players", true)?,
    })
}

/// Decodes a history entry or a stored event (the shapes of [`super::event_json`] and
/// [`super::stored_event_body`]) of the match `match_id`; unknown keys are ignored. Values are
/// checked as in [`parse_posted_event`] (no `status`, one-line printable comments, no roster
/// number twice), so a decoded event renders as exactly one frame.
pub fn parse_event_json(v: &Value, match_id: &MatchId) -> Result<Event, ApiError> {
    let f = Fields::lenient(v)?;
    let data = match f.get("data") {
        None => EventData::default(),
        Some(d) => {
            let d = Fields::lenient(d).map_err(|_| ApiError("data must be an object".into()))?;
            EventData {
                home_players: d.roster("home_players", true)?,
                visit_players: d.roster("visit_players", true)?,
                player: d.player("player")?,
                player_out: d.player("player_out")?,
                card: d.card()?,
                team: d.team("team")?,
                player_team: d.team("player_team")?,
                player_in: d.player("player_in")?,
                comment: d.comment()?,
            }
        }
    };
    Ok(Event {
        match_id: match_id.clone(),
        seq: f.u64("seq")?,
        timestamp_ms: f.u64("timestamp")?,
        kind: f.posted_kind()?,
        data,
    })
}

/// Decodes the shape of [`super::match_json`]; unknown keys are ignored. Values are checked as
/// in [`parse_new_match`] (printable stadium, no roster number twice); a match without an
/// `incarnation` (stored before incarnations existed) gets [`Incarnation::UNSET`].
pub fn parse_match_json(v: &Value) -> Result<Match, ApiError> {
    let f = Fields::lenient(v)?;
    let home = f.team("home")?.ok_or_else(|| required("home"))?;
    let visit = f.team("visit")?.ok_or_else(|| required("visit"))?;
    let start_date = f.date("start_date")?;
    let id =
        MatchId::parse(f.str("id")?.ok_or_else(|| required("id"))?).map_err(|e| field("id", e))?;
    if id != MatchId::new(&home, &visit, start_date) {
        return Err(ApiError(
            "id: does not match home, visit and start_date".into(),
        ));
    }
    let period = f.str("period")?.ok_or_else(|| required("period"))?;
    let period = Period::parse(period)
        .ok_or_else(|| ApiError(format!("period: unknown period {period:?}")))?;
    let score = |key| u32::try_from(f.u64(key)?).map_err(|_| ApiError(format!("{key}: too big")));
    Ok(Match {
        id,
        home,
        visit,
        start_date,
        stadium: f.stadium()?,
        home_players: f
            .roster("home_players", true)?
            .ok_or_else(|| required("home_players"))?,
        visit_players: f
            .roster("visit_players", true)?
            .ok_or_else(|| required("visit_players"))?,
        home_score: score("home_score")?,
        visit_score: score("visit_score")?,
        period,
        last_seq: f.u64("last_seq")?,
        updated_ms: f.u64("updated")?,
        incarnation: f.incarnation()?,
    })
}

fn body_object(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError(format!("body is not valid JSON: {e}")))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(ApiError("body must be a JSON object".into()))
    }
}

fn required(key: &str) -> ApiError {
    ApiError(format!("{key} is required"))
}

fn field(key: &str, e: ModelError) -> ApiError {
    ApiError(format!("{key}: {}", e.reason()))
}

/// The keys of one JSON object; `null` counts as absent.
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// `v` must be an object holding only keys of `allowed`.
    fn strict(v: &'a Value, allowed: &[&str]) -> Result<Self, ApiError> {
        let f = Fields::lenient(v)?;
        if let Some(k) = f.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError(format!("unknown key {k:?}")));
        }
        Ok(f)
    }

    fn lenient(v: &'a Value) -> Result<Self, ApiError> {
        v.as_object()
            .map(Fields)
            .ok_or_else(|| ApiError("expected a JSON object".into()))
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError(format!("{key} must be a string"))),
        }
    }

    fn u64(&self, key: &str) -> Result<u64, ApiError> {
        self.get(key)
            .ok_or_else(|| required(key))?
            .as_u64()
            .ok_or_else(|| ApiError(format!("{key} must be a non-negative integer")))
    }

    fn team(&self, key: &str) -> Result<Option<TeamCode>, ApiError> {
        self.str(key)?
            .map(|s| TeamCode::parse(s).map_err(|e| field(key, e)))
            .transpose()
    }

    fn date(&self, key: &str) -> Result<Date, ApiError> {
        let s = self.str(key)?.ok_or_else(|| required(key))?;
        Date::parse(s).map_err(|e| field(key, e))
    }

    fn kind(&self) -> Result<EventKind, ApiError> {
        let k = self.str("kind")?.ok_or_else(|| required("kind"))?;
        EventKind::parse(k).ok_or_else(|| ApiError(format!("kind: unknown kind {k:?}")))
    }

    /// The kind of an event a watcher posts or a store holds: never `status`, which only the
    /// server makes (a stored one would render as a forged status frame).
    fn posted_kind(&self) -> Result<EventKind, ApiError> {
        match self.kind()? {
            EventKind::Status => Err(ApiError(
                "kind: status events are made by the server".into(),
            )),
            kind => Ok(kind),
        }
    }

    /// `comment`: one line of 1 to 1024 bytes of printable text (a CR or LF would end the
    /// frame's line and let the text forge frames).
    fn comment(&self) -> Result<Option<String>, ApiError> {
        match self.str("comment")? {
            Some(c) if !is_printable_line(c, MAX_COMMENT) => {
                Err(field("comment", ModelError::BadComment))
            }
            c => Ok(c.map(str::to_owned)),
        }
    }

    /// `stadium`: 1 to 128 bytes of printable text, or absent.
    fn stadium(&self) -> Result<Option<String>, ApiError> {
        match self.str("stadium")? {
            Some(s) if !is_printable_line(s, MAX_STADIUM) => {
                Err(field("stadium", ModelError::BadStadium))
            }
            s => Ok(s.map(str::to_owned)),
        }
    }

    /// `incarnation`: 16 lowercase hex digits; absent (or null) is [`Incarnation::UNSET`].
    fn incarnation(&self) -> Result<Incarnation, ApiError> {
        match self.str("incarnation")? {
            None => Ok(Incarnation::UNSET),
            Some(s) => Incarnation::parse(s.as_bytes()).map_err(|e| field("incarnation", e)),
        }
    }

    fn card(&self) -> Result<Option<Card>, ApiError> {
        self.str("card")?
            .map(|c| Card::parse(c).ok_or_else(|| ApiError("card: cards are red or yellow".into())))
            .transpose()
    }

    /// A player given by number or in full.
    fn player_ref(&self, key: &str) -> Result<Option<PlayerRef>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(PlayerRef::Number(number(key, n.as_u64())?))),
            Some(v) => player(key, v).map(|p| Some(PlayerRef::Full(p))),
        }
    }

    /// A player given in full (the read shapes).
    fn player(&self, key: &str) -> Result<Option<Player>, ApiError> {
        self.get(key).map(|v| player(key, v)).transpose()
    }

    /// A roster; `unique` refuses a number given twice.
    fn roster(&self, key: &str, unique: bool) -> Result<Option<Vec<Player>>, ApiError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let list = v
            .as_array()
            .ok_or_else(|| ApiError(format!("{key} must be an array of players")))?;
        let mut players: Vec<Player> = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            let p = player(&format!("{key}[{i}]"), v)?;
            if unique && players.iter().any(|q| q.number == p.number) {
                return Err(ApiError(format!(
                    "{key}: number {} appears twice",
                    p.number
                )));
            }
            players.push(p);
        }
        Ok(Some(players))
    }
}

/// A player object `{"number":25,"name":"Albil"}` (no other key).
fn player(key: &str, v: &Value) -> Result<Player, ApiError> {
    let shape = || ApiError(format!("{key} must be {{\"number\":..,\"name\":..}}"));
    let obj = v.as_object().ok_or_else(shape)?;
    if obj.keys().any(|k| k != "number" && k != "name") {
        return Err(shape());
    }
    let n = number(key, obj.get("number").and_then(Value::as_u64))?;
    let name = obj.get("name").and_then(Value::as_str).ok_or_else(shape)?;
    Player::new(n, name).map_err(|e| field(key, e))
}

fn number(key: &str, n: Option<u64>) -> Result<u8, ApiError> {
    n.and_then(|n| u8::try_from(n).ok())
        .filter(|n| (1..=99).contains(n))
        .ok_or_else(|| field(key, ModelError::BadPlayerNumber))
}
