//! Unit tests of the API's JSON shapes: exact bodies, round trips, one case per refusal.

use serde_json::json;

use super::*;
use crate::model::{Card, EventKind, MatchId};
use crate::testdata::{player, seed_events, seed_new_match, seed_started, team};
use crate::Incarnation;

fn err(reason: &str) -> ApiError {
    ApiError(reason.to_owned())
}

#[test]
fn error_body_escapes() {
    assert_eq!(error_body("bad"), br#"{"error":"bad"}"#);
    assert_eq!(error_body("a\"b\\c"), br#"{"error":"a\"b\\c"}"#);
}

#[test]
fn an_error_displays_its_reason() {
    // The engine answers with this text (400 {"error": ...}) and logs it.
    assert_eq!(err("home is required").to_string(), "home is required");
}

#[test]
fn new_match_minimal_and_full() {
    let m = parse_new_match(br#"{"home":"elp","visit":"tig","start_date":"2011-09-10"}"#)
        .expect("minimal");
    assert_eq!((m.home_players.len(), m.visit_players.len()), (0, 0));
    assert_eq!(m.stadium, None);
    let full = seed_new_match();
    let body = new_match_body(&full);
    assert_eq!(parse_new_match(&body), Ok(full));
    let null_stadium = br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","stadium":null}"#;
    assert_eq!(parse_new_match(null_stadium).map(|m| m.stadium), Ok(None));
}

#[test]
fn new_match_body_shape() {
    let mut m = seed_new_match();
    m.home_players.truncate(1);
    m.visit_players.clear();
    let body = String::from_utf8(new_match_body(&m)).expect("UTF-8");
    assert_eq!(
        body,
        concat!(
            r#"{"home":"elp","visit":"tig","start_date":"2011-09-10","#,
            r#""stadium":"Estadio Ciudad de La Plata","#,
            r#""home_players":[{"number":25,"name":"Albil"}],"visit_players":[]}"#
        )
    );
}

#[test]
fn new_match_refusals() {
    let long_stadium = format!(
        r#"{{"home":"elp","visit":"tig","start_date":"2011-09-10","stadium":"{}"}}"#,
        "x".repeat(129)
    );
    #[rustfmt::skip]
    let cases: Vec<(&str, &[u8], &str)> = vec![
        ("not JSON", b"{", "body is not valid JSON"),
        ("not an object", b"[1]", "body must be a JSON object"),
        ("unknown key", br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","x":1}"#, "unknown key \"x\""),
        ("missing home", br#"{"visit":"tig","start_date":"2011-09-10"}"#, "home is required"),
        ("missing visit", br#"{"home":"elp","start_date":"2011-09-10"}"#, "visit is required"),
        ("missing date", br#"{"home":"elp","visit":"tig"}"#, "start_date is required"),
        ("bad team", br#"{"home":"ELP","visit":"tig","start_date":"2011-09-10"}"#, "home: team codes are"),
        ("team not a string", br#"{"home":1,"visit":"tig","start_date":"2011-09-10"}"#, "home must be a string"),
        ("same teams", br#"{"home":"elp","visit":"elp","start_date":"2011-09-10"}"#, "visit: must differ from home"),
        ("bad date", br#"{"home":"elp","visit":"tig","start_date":"2011-02-30"}"#, "start_date: dates are YYYY-MM-DD"),
        ("long stadium", long_stadium.as_bytes(), "stadium: stadium names are"),
        ("roster not an array", br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","home_players":{}}"#, "home_players must be an array of players"),
        ("player not an object", br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","home_players":[7]}"#, "home_players[0] must be {\"number\":..,\"name\":..}"),
        ("player extra key", br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","home_players":[{"number":7,"name":"A","age":3}]}"#, "home_players[0] must be"),
        ("player number 0", br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","visit_players":[{"number":0,"name":"A"}]}"#, "visit_players[0]: player numbers are 1 to 99"),
        ("player number 300", br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","visit_players":[{"number":300,"name":"A"}]}"#, "visit_players[0]: player numbers are 1 to 99"),
        ("player empty name", br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","visit_players":[{"number":1,"name":""}]}"#, "visit_players[0]: player names are"),
        ("duplicate number", br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","home_players":[{"number":7,"name":"A"},{"number":7,"name":"B"}]}"#, "home_players: number 7 appears twice"),
    ];
    for (name, body, want) in cases {
        let got = parse_new_match(body).map(|_| ()).expect_err(name);
        assert!(got.0.starts_with(want), "{name}: {got}");
    }
}

#[test]
fn posted_event_round_trips() {
    let mut e = PostedEvent::new(EventKind::Substitution);
    e.team = Some(team("elp"));
    e.player_out = Some(PlayerRef::Number(18));
    e.player_in = Some(PlayerRef::Full(player(21, "Silva")));
    let body = posted_event_body(&e);
    assert_eq!(
        body,
        br#"{"kind":"substitution","player_out":18,"team":"elp","player_in":{"number":21,"name":"Silva"}}"#
    );
    assert_eq!(parse_posted_event(&body), Ok(e));
    let mut all = PostedEvent::new(EventKind::Start);
    all.team = Some(team("elp"));
    all.player = Some(PlayerRef::Full(player(7, "Luna")));
    all.player_team = Some(team("tig"));
    all.card = Some(Card::Red);
    all.comment = Some("say \"hi\"".into());
    all.home_players = Some(vec![player(1, "A")]);
    all.visit_players = Some(vec![]);
    assert_eq!(parse_posted_event(&posted_event_body(&all)), Ok(all));
}

#[test]
fn posted_event_refusals() {
    let long = format!(r#"{{"kind":"comment","comment":"{}"}}"#, "x".repeat(1025));
    #[rustfmt::skip]
    let cases: Vec<(&str, &[u8], &str)> = vec![
        ("no kind", br#"{"team":"tig"}"#, "kind is required"),
        ("unknown kind", br#"{"kind":"dance"}"#, "kind: unknown kind \"dance\""),
        ("status", br#"{"kind":"status"}"#, "kind: status events are made by the server"),
        ("unknown key", br#"{"kind":"goal","minute":3}"#, "unknown key \"minute\""),
        ("bad team", br#"{"kind":"goal","team":"T"}"#, "team: team codes are"),
        ("bad player_team", br#"{"kind":"goal","player_team":"-"}"#, "player_team: team codes are"),
        ("player zero", br#"{"kind":"goal","player":0}"#, "player: player numbers are 1 to 99"),
        ("player negative", br#"{"kind":"goal","player":-7}"#, "player: player numbers are 1 to 99"),
        ("player float", br#"{"kind":"goal","player":7.5}"#, "player: player numbers are 1 to 99"),
        ("player string", br#"{"kind":"goal","player":"7"}"#, "player must be {\"number\":..,\"name\":..}"),
        ("player_in no name", br#"{"kind":"substitution","player_in":{"number":7}}"#, "player_in must be"),
        ("bad card", br#"{"kind":"card","card":"blue"}"#, "card: cards are red or yellow"),
        ("comment two lines", br#"{"kind":"comment","comment":"a\nb"}"#, "comment: comments are one line"),
        ("comment too long", long.as_bytes(), "comment: comments are one line"),
        ("comment not a string", br#"{"kind":"comment","comment":5}"#, "comment must be a string"),
        ("roster duplicate", br#"{"kind":"start","home_players":[{"number":1,"name":"A"},{"number":1,"name":"B"}]}"#, "home_players: number 1 appears twice"),
    ];
    for (name, body, want) in cases {
        let got = parse_posted_event(body).map(|_| ()).expect_err(name);
        assert!(got.0.starts_with(want), "{name}: {got}");
    }
}

#[test]
fn match_json_shape_and_round_trip() {
    let mut m = seed_started();
    m.home_players.truncate(1);
    m.visit_players.truncate(1);
    m.visit_score = 2;
    let want = json!({
        "id": "elp-tig-2011-09-10", "home": "elp", "visit": "tig", "start_date": "2011-09-10",
        "stadium": "Estadio Ciudad de La Plata",
        "home_players": [{"number": 25, "name": "Albil"}],
        "visit_players": [{"number": 12, "name": "Garcia"}],
        "home_score": 0, "visit_score": 2, "period": "first", "last_seq": 1,
        "updated": 1_315_921_728_000u64, "incarnation": "3f9a0c1d2b4e5f60",
    });
    assert_eq!(match_json(&m), want);
    assert_eq!(parse_match_json(&want), Ok(m.clone()));
    let body = String::from_utf8(match_body(&m)).expect("UTF-8");
    assert!(body.starts_with(r#"{"id":"elp-tig-2011-09-10","home":"elp","visit":"tig","#));
    assert!(
        body.ends_with(r#""last_seq":1,"updated":1315921728000,"incarnation":"3f9a0c1d2b4e5f60"}"#)
    );
    m.stadium = None;
    assert_eq!(match_json(&m)["stadium"], Value::Null);
    assert_eq!(parse_match_json(&match_json(&m)), Ok(m));
}

#[test]
fn a_match_stored_before_incarnations_reads_as_unset_and_writes_without_one() {
    let mut old = match_json(&seed_started());
    old.as_object_mut().expect("object").remove("incarnation");
    let m = parse_match_json(&old).expect("an old match decodes");
    assert_eq!(m.incarnation, Incarnation::UNSET);
    assert_eq!(match_json(&m), old);
    old["incarnation"] = Value::Null;
    assert_eq!(parse_match_json(&old), Ok(m));
}

#[test]
fn match_json_refusals() {
    let good = match_json(&seed_started());
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("id mismatch", "id", json!("elp-riv-2011-09-10"), "id: does not match home, visit and start_date"),
        ("bad period", "period", json!("overtime"), "period: unknown period \"overtime\""),
        ("score too big", "home_score", json!(5_000_000_000u64), "home_score: too big"),
        ("negative seq", "last_seq", json!(-1), "last_seq must be a non-negative integer"),
        ("missing updated", "updated", Value::Null, "updated is required"),
        ("missing roster", "visit_players", Value::Null, "visit_players is required"),
        ("bad incarnation", "incarnation", json!("3F9A0C1D2B4E5F60"), "incarnation: incarnations are 16 lowercase hex digits, not all 0"),
        ("unset incarnation", "incarnation", json!("0000000000000000"), "incarnation: incarnations are 16 lowercase hex digits, not all 0"),
        ("stadium of two lines", "stadium", json!("a\r\nb"), "stadium: stadium names are 1 to 128 bytes of printable text"),
        ("roster name of two lines", "home_players", json!([{"number": 1, "name": "A\nB"}]), "home_players[0]: player names are 1 to 64 bytes of printable text"),
        ("roster number twice", "visit_players", json!([{"number": 1, "name": "A"}, {"number": 1, "name": "B"}]), "visit_players: number 1 appears twice"),
    ];
    for (name, key, value, want) in cases {
        let mut v = good.clone();
        v[key] = value;
        assert_eq!(parse_match_json(&v).map(|_| ()), Err(err(want)), "{name}");
    }
    assert_eq!(
        parse_match_json(&json!([])).map(|_| ()),
        Err(err("expected a JSON object"))
    );
}

#[test]
fn event_json_shape() {
    let e = &seed_events()[2];
    let want = json!({
        "seq": 4, "timestamp": 1_315_921_744_000u64, "kind": "card",
        "data": {"player": {"number": 25, "name": "Albil"}, "card": "red", "team": "elp"},
    });
    assert_eq!(event_json(e), want);
}

#[test]
fn history_and_stored_bodies_keep_the_frame_order() {
    let events = seed_events();
    let sub = &events[3];
    assert_eq!(
        String::from_utf8(stored_event_body(sub)).expect("UTF-8"),
        concat!(
            r#"{"match":"elp-tig-2011-09-10","seq":5,"timestamp":1315921745000,"#,
            r#""kind":"substitution","data":{"player_out":{"number":18,"name":"Fernandez"},"#,
            r#""team":"elp","player_in":{"number":21,"name":"Silva"}}}"#
        )
    );
    let mut out = Vec::new();
    write_history(&[&events[0], sub], &mut out);
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(text.starts_with(r#"[{"seq":2,"timestamp":1315921731000,"kind":"goal","data":{"player":{"number":7,"name":"Luna"},"team":"tig"}},{"seq":5,"#));
    assert!(text.ends_with("}}]"));
    let mut empty = Vec::new();
    write_history(&[], &mut empty);
    assert_eq!(empty, b"[]");
}

#[test]
fn events_round_trip_through_json() {
    let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
    let mut events = seed_events();
    events[0].data.comment = Some("with \"quotes\"".into());
    events[0].data.home_players = Some(vec![player(1, "A")]);
    events[0].data.player_team = Some(team("elp"));
    for e in &events {
        assert_eq!(parse_event_json(&event_json(e), &id).as_ref(), Ok(e));
        let stored: Value = serde_json::from_slice(&stored_event_body(e)).expect("JSON");
        assert_eq!(parse_event_json(&stored, &id).as_ref(), Ok(e));
    }
    let mut history = Vec::new();
    write_history_iter(events.iter(), &mut history);
    let list: Vec<Value> = serde_json::from_slice(&history).expect("JSON array");
    let back: Result<Vec<Event>, ApiError> =
        list.iter().map(|v| parse_event_json(v, &id)).collect();
    assert_eq!(back, Ok(events));
}

#[test]
fn event_json_refusals() {
    let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no seq", json!({"timestamp": 1, "kind": "goal"}), "seq is required"),
        ("bad kind", json!({"seq": 1, "timestamp": 1, "kind": "x"}), "kind: unknown kind \"x\""),
        ("data not object", json!({"seq": 1, "timestamp": 1, "kind": "goal", "data": 3}), "data must be an object"),
        ("player by number", json!({"seq": 1, "timestamp": 1, "kind": "goal", "data": {"player": 7}}), "player must be {\"number\":..,\"name\":..}"),
        ("comment forging a frame", json!({"seq": 1, "timestamp": 1, "kind": "comment", "data": {"comment": "x\r\n\r\n2011-01-01 00:00:00: goal:\n"}}), "comment: comments are one line of 1 to 1024 bytes of printable text"),
        ("comment too long", json!({"seq": 1, "timestamp": 1, "kind": "comment", "data": {"comment": "x".repeat(1025)}}), "comment: comments are one line of 1 to 1024 bytes of printable text"),
        ("status event", json!({"seq": 1, "timestamp": 1, "kind": "status"}), "kind: status events are made by the server"),
        ("player name with a tab", json!({"seq": 1, "timestamp": 1, "kind": "goal", "data": {"player": {"number": 7, "name": "a\tb"}}}), "player: player names are 1 to 64 bytes of printable text"),
        ("roster number twice", json!({"seq": 1, "timestamp": 1, "kind": "start", "data": {"home_players": [{"number": 1, "name": "A"}, {"number": 1, "name": "B"}]}}), "home_players: number 1 appears twice"),
    ];
    for (name, v, want) in cases {
        assert_eq!(
            parse_event_json(&v, &id).map(|_| ()),
            Err(err(want)),
            "{name}"
        );
    }
    let ok = json!({"seq": 3, "timestamp": 9, "kind": "halftime_start", "extra": true});
    let e = parse_event_json(&ok, &id).expect("unknown keys ignored");
    assert_eq!(
        (e.seq, e.kind, e.data),
        (3, EventKind::HalftimeStart, EventData::default())
    );
}
