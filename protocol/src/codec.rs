//! Lossless encoding of matches and events for stores (the embedded store and Redis).
//!
//! The encoding is the API's own JSON ([`crate::api::match_body`] and
//! [`crate::api::stored_event_body`], which carries the match id), so what a store holds is
//! readable with `redis-cli`, and the API's decoders serve both. Decoding the bytes of
//! an encode gives back an equal value; anything else is refused with an [`ApiError`].

use serde_json::Value;

use crate::api::{self, ApiError};
use crate::model::{Event, Match, MatchId};

/// Encodes a match with its whole state.
pub fn encode_match(m: &Match) -> Vec<u8> {
    api::match_body(m)
}

/// Decodes the bytes of [`encode_match`].
pub fn decode_match(b: &[u8]) -> Result<Match, ApiError> {
    api::parse_match_json(&json(b)?)
}

/// Encodes an event, its match id included.
///
/// ```
/// use matchstream_protocol::codec::{decode_event, encode_event};
/// use matchstream_protocol::{Event, EventData, EventKind, MatchId};
/// let e = Event {
///     match_id: MatchId::parse("elp-tig-2011-09-10")?,
///     seq: 1,
///     timestamp_ms: 1_315_921_728_000,
///     kind: EventKind::Start,
///     data: EventData::default(),
/// };
/// assert_eq!(decode_event(&encode_event(&e)), Ok(e));
/// # Ok::<(), matchstream_protocol::ModelError>(())
/// ```
pub fn encode_event(e: &Event) -> Vec<u8> {
    api::stored_event_body(e)
}

/// Decodes the bytes of [`encode_event`].
pub fn decode_event(b: &[u8]) -> Result<Event, ApiError> {
    let v = json(b)?;
    let id = v
        .get("match")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError("match is required".into()))?;
    let id = MatchId::parse(id).map_err(|e| ApiError(format!("match: {e}")))?;
    api::parse_event_json(&v, &id)
}

fn json(b: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(b).map_err(|e| ApiError(format!("not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Card, Date, EventData, EventKind, NewMatch, Period};
    use crate::testdata::{player, seed_events, seed_started, team};
    use crate::Incarnation;

    #[test]
    fn matches_round_trip() {
        let mut m = seed_started();
        assert_eq!(decode_match(&encode_match(&m)), Ok(m.clone()));
        m.stadium = None;
        m.home_players.clear();
        m.period = Period::HalftimeExtra;
        m.home_score = u32::MAX;
        m.last_seq = u64::MAX;
        m.updated_ms = u64::MAX;
        assert_eq!(decode_match(&encode_match(&m)), Ok(m));
    }

    #[test]
    fn events_round_trip() {
        let mut events = seed_events();
        let mut every = events[0].clone();
        every.kind = EventKind::Start;
        every.data = EventData {
            home_players: Some(vec![player(1, "Ñandú \"el\" \\ rápido")]),
            visit_players: Some(vec![]),
            player: Some(player(4, "D")),
            player_out: Some(player(5, "E")),
            card: Some(Card::Yellow),
            team: Some(team("elp")),
            player_team: Some(team("tig")),
            player_in: Some(player(6, "F")),
            comment: Some("¡golazo! \"10\" \\o/".into()),
        };
        events.push(every);
        for e in events {
            assert_eq!(decode_event(&encode_event(&e)), Ok(e));
        }
    }

    /// A match as the stores hold it, written out by hand from the API's match shape
    /// (docs/api.md) rather than taken from the encoder: what Redis and the embedded store
    /// already hold must stay readable, so the format may not drift.
    const STORED_MATCH: &str = concat!(
        r#"{"id":"elp-tig-2011-09-10","home":"elp","visit":"tig","start_date":"2011-09-10","#,
        r#""stadium":null,"home_players":[{"number":25,"name":"Albil"},"#,
        r#"{"number":2,"name":"Desabato"}],"#,
        r#""visit_players":[{"number":7,"name":"Ñandú \"el\" \\ rápido"}],"#,
        r#""home_score":1,"visit_score":2,"period":"halftime_extra","last_seq":40,"#,
        r#""updated":1315921748000}"#,
    );

    fn stored_match() -> Match {
        let new = NewMatch {
            home: team("elp"),
            visit: team("tig"),
            start_date: Date::parse("2011-09-10").expect("date"),
            stadium: None,
            home_players: vec![player(25, "Albil"), player(2, "Desabato")],
            visit_players: vec![player(7, "Ñandú \"el\" \\ rápido")],
        };
        let mut m = Match::create(new, 1_315_921_727_000, Incarnation::UNSET);
        m.home_score = 1;
        m.visit_score = 2;
        m.period = Period::HalftimeExtra;
        m.last_seq = 40;
        m.updated_ms = 1_315_921_748_000;
        m
    }

    /// Stored events, by hand likewise: every detail key (in the frame order), and none.
    const STORED_EVENTS: [&str; 2] = [
        concat!(
            r#"{"match":"elp-tig-2011-09-10","seq":12,"timestamp":1315921731000,"#,
            r#""kind":"start","data":{"home_players":[{"number":1,"name":"A"}],"#,
            r#""visit_players":[],"player":{"number":4,"name":"D"},"#,
            r#""player_out":{"number":5,"name":"E"},"card":"yellow","team":"elp","#,
            r#""player_team":"tig","player_in":{"number":6,"name":"F"},"#,
            r#""comment":"¡golazo! \"10\" \\o/"}}"#,
        ),
        r#"{"match":"elp-tig-2011-09-10","seq":30,"timestamp":1315921757000,"kind":"stop","data":{}}"#,
    ];

    fn stored_events() -> [Event; 2] {
        let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
        let every = EventData {
            home_players: Some(vec![player(1, "A")]),
            visit_players: Some(vec![]),
            player: Some(player(4, "D")),
            player_out: Some(player(5, "E")),
            card: Some(Card::Yellow),
            team: Some(team("elp")),
            player_team: Some(team("tig")),
            player_in: Some(player(6, "F")),
            comment: Some("¡golazo! \"10\" \\o/".into()),
        };
        [
            Event {
                match_id: id.clone(),
                seq: 12,
                timestamp_ms: 1_315_921_731_000,
                kind: EventKind::Start,
                data: every,
            },
            Event {
                match_id: id,
                seq: 30,
                timestamp_ms: 1_315_921_757_000,
                kind: EventKind::Stop,
                data: EventData::default(),
            },
        ]
    }

    #[test]
    fn a_match_encodes_to_the_stored_bytes_and_back() {
        let m = stored_match();
        assert_eq!(
            String::from_utf8(encode_match(&m)).expect("UTF-8"),
            STORED_MATCH
        );
        assert_eq!(decode_match(STORED_MATCH.as_bytes()), Ok(m));
    }

    #[test]
    fn events_encode_to_the_stored_bytes_and_back() {
        for (e, bytes) in stored_events().into_iter().zip(STORED_EVENTS) {
            assert_eq!(
                String::from_utf8(encode_event(&e)).expect("UTF-8"),
                bytes,
                "{:?}",
                e.kind
            );
            assert_eq!(decode_event(bytes.as_bytes()), Ok(e));
        }
    }

    #[test]
    fn refusals() {
        #[rustfmt::skip]
        let cases: [(&str, &[u8], &str); 4] = [
            ("not JSON", b"nope", "not valid JSON"),
            ("no match id", br#"{"seq":1,"timestamp":1,"kind":"stop"}"#, "match is required"),
            ("bad match id", br#"{"match":"x","seq":1,"timestamp":1,"kind":"stop"}"#, "match: match ids are"),
            ("no seq", br#"{"match":"elp-tig-2011-09-10","kind":"stop"}"#, "seq is required"),
        ];
        for (name, bytes, want) in cases {
            let got = decode_event(bytes).map(|_| ()).expect_err(name);
            assert!(got.0.starts_with(want), "{name}: {got}");
        }
        assert!(decode_match(b"{}").is_err());
        assert!(decode_match(b"").is_err());
    }
}
