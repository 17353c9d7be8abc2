//! The API's request bodies (protocol/src/api.rs, api/parse.rs): every input is tried as the
//! body of `POST /1/matches` (`parse_new_match`) and of `POST /1/match/<id>/events`
//! (`parse_posted_event`), then what is accepted goes where the server takes it.
//!
//! Properties:
//! - a refusal's reason makes an error body that is JSON holding exactly that reason;
//! - an accepted body survives write → parse unchanged (`new_match_body`,
//!   `posted_event_body`), and holds only valid values (teams differ, printable stadium and
//!   comment, no shirt number twice in a roster, never a `status` event);
//! - a new match, once created, renders one well-formed status frame in both versions and
//!   survives the stores' codec and the read shape of `GET /1/match/<id>`;
//! - an event that the match rules accept, in any period of the sample match, renders one
//!   well-formed frame in both versions (no CR, LF or forged terminator from a comment or a
//!   name), survives the stores' codec and the history shape, and applying it keeps the match
//!   renderable and encodable.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use matchstream_fuzz::assert_one_frame;
use matchstream_protocol::api::{
    error_body, event_json, match_json, new_match_body, parse_event_json, parse_match_json,
    parse_new_match, parse_posted_event, posted_event_body,
};
use matchstream_protocol::codec::{decode_event, decode_match, encode_event, encode_match};
use matchstream_protocol::frame::{render_event, render_status, Version};
use matchstream_protocol::script::{parse_script, SAMPLE};
use matchstream_protocol::state::{apply, validate};
use matchstream_protocol::{
    is_printable_line, Event, EventKind, Incarnation, Match, NewMatch, Period, Player, MAX_COMMENT,
    MAX_STADIUM,
};

/// 2011-09-13 13:48:48 UTC.
const NOW_MS: u64 = 1_315_921_728_000;

/// The incarnation every match here is created with (a server draws one at random).
fn incarnation() -> Incarnation {
    Incarnation::from_bits(0x3f9a_0c1d_2b4e_5f60).expect("not zero")
}

fuzz_target!(|data: &[u8]| {
    match parse_new_match(data) {
        Ok(m) => new_match(&m),
        Err(e) => error_round_trip(&e.0),
    }
    match parse_posted_event(data) {
        Ok(e) => posted_event(&e),
        Err(e) => error_round_trip(&e.0),
    }
});

fn error_round_trip(reason: &str) {
    let body: serde_json::Value =
        serde_json::from_slice(&error_body(reason)).expect("error body is JSON");
    assert_eq!(body, serde_json::json!({ "error": reason }));
}

fn new_match(m: &NewMatch) {
    assert_ne!(m.home, m.visit);
    if let Some(s) = &m.stadium {
        assert!(is_printable_line(s, MAX_STADIUM), "stadium {s:?}");
    }
    assert_unique(&m.home_players);
    assert_unique(&m.visit_players);
    assert_eq!(parse_new_match(&new_match_body(m)).as_ref(), Ok(m));
    let created = Match::create(m.clone(), NOW_MS, incarnation());
    check_match(&created);
}

fn posted_event(e: &matchstream_protocol::PostedEvent) {
    assert_ne!(e.kind, EventKind::Status);
    if let Some(c) = &e.comment {
        assert!(is_printable_line(c, MAX_COMMENT), "comment {c:?}");
    }
    for roster in [&e.home_players, &e.visit_players].into_iter().flatten() {
        assert_unique(roster);
    }
    assert_eq!(parse_posted_event(&posted_event_body(e)).as_ref(), Ok(e));

    for period in Period::ALL {
        let mut m = sample().clone();
        m.period = period;
        let data = match validate(&m, e) {
            Ok(data) => data,
            Err(refused) => {
                error_round_trip(&refused.reason());
                continue;
            }
        };
        let event = Event {
            match_id: m.id.clone(),
            seq: m.last_seq + 1,
            timestamp_ms: NOW_MS + 1000,
            kind: e.kind,
            data,
        };
        for version in Version::ALL {
            let mut frame = Vec::new();
            render_event(&event, version, &mut frame);
            assert_one_frame(&frame);
        }
        assert_eq!(decode_event(&encode_event(&event)).as_ref(), Ok(&event));
        assert_eq!(
            parse_event_json(&event_json(&event), &m.id).as_ref(),
            Ok(&event)
        );
        apply(&mut m, &event);
        assert_eq!((m.last_seq, m.updated_ms), (event.seq, event.timestamp_ms));
        check_match(&m);
    }
}

/// A match renders one status frame per version and survives the codec and the read shape.
fn check_match(m: &Match) {
    for version in Version::ALL {
        let mut frame = Vec::new();
        render_status(m, version, &mut frame);
        assert_one_frame(&frame);
    }
    assert_eq!(decode_match(&encode_match(m)).as_ref(), Ok(m));
    assert_eq!(parse_match_json(&match_json(m)).as_ref(), Ok(m));
}

fn assert_unique(roster: &[Player]) {
    for (i, p) in roster.iter().enumerate() {
        assert!(
            roster[..i].iter().all(|q| q.number != p.number),
            "number {} twice",
            p.number
        );
    }
}

/// The sample match (elp-tig with its rosters), 5 events in.
fn sample() -> &'static Match {
    static SAMPLE_MATCH: OnceLock<Match> = OnceLock::new();
    SAMPLE_MATCH.get_or_init(|| {
        let script = parse_script(SAMPLE).expect("the sample script parses");
        let mut m = Match::create(script.new_match, NOW_MS, incarnation());
        m.last_seq = 5;
        m
    })
}
