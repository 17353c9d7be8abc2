//! Unit tests of SSE rendering and parsing: the seed's session as golden bytes, written by hand
//! from SPEC §8 and the API's JSON shapes, and the parser on what the renderer writes and on
//! the stream format's corners.

use super::*;
use crate::model::{EventData, EventKind, MatchId};
use crate::testdata::{seed_events, seed_started};

/// The seed's sample session (status after `start`, then seq 2..=7) as SSE events.
const SEED_SSE: &str = concat!(
    "id: 1\n",
    "event: status\n",
    "data: {\"id\":\"elp-tig-2011-09-10\",\"home\":\"elp\",\"visit\":\"tig\",",
    "\"start_date\":\"2011-09-10\",\"stadium\":\"Estadio Ciudad de La Plata\",",
    "\"home_players\":[{\"number\":25,\"name\":\"Albil\"},{\"number\":14,\"name\":\"Mercado\"},",
    "{\"number\":2,\"name\":\"Desabato\"},{\"number\":3,\"name\":\"Cellay\"},",
    "{\"number\":27,\"name\":\"Dominguez\"},{\"number\":11,\"name\":\"Veron\"},",
    "{\"number\":10,\"name\":\"Fernandez\"},{\"number\":5,\"name\":\"Sanchez\"},",
    "{\"number\":19,\"name\":\"Gonzalez\"},{\"number\":18,\"name\":\"Fernandez\"},",
    "{\"number\":9,\"name\":\"Boselli\"}],",
    "\"visit_players\":[{\"number\":12,\"name\":\"Garcia\"},{\"number\":13,\"name\":\"Casteglione\"},",
    "{\"number\":21,\"name\":\"Echeverria\"},{\"number\":3,\"name\":\"Blengio\"},",
    "{\"number\":15,\"name\":\"Diaz\"},{\"number\":5,\"name\":\"Castano\"},",
    "{\"number\":6,\"name\":\"Martinez\"},{\"number\":11,\"name\":\"Leone\"},",
    "{\"number\":10,\"name\":\"Morales\"},{\"number\":7,\"name\":\"Luna\"},",
    "{\"number\":9,\"name\":\"Maggiolo\"}],",
    "\"home_score\":0,\"visit_score\":0,\"period\":\"first\",\"last_seq\":1,",
    "\"updated\":1315921728000,\"incarnation\":\"3f9a0c1d2b4e5f60\"}\n",
    "\n",
    "id: 2\n",
    "event: goal\n",
    "data: {\"seq\":2,\"timestamp\":1315921731000,\"kind\":\"goal\",",
    "\"data\":{\"player\":{\"number\":7,\"name\":\"Luna\"},\"team\":\"tig\"}}\n",
    "\n",
    "id: 3\n",
    "event: penalty\n",
    "data: {\"seq\":3,\"timestamp\":1315921743000,\"kind\":\"penalty\",",
    "\"data\":{\"player\":{\"number\":6,\"name\":\"Martinez\"},\"team\":\"tig\"}}\n",
    "\n",
    "id: 4\n",
    "event: card\n",
    "data: {\"seq\":4,\"timestamp\":1315921744000,\"kind\":\"card\",",
    "\"data\":{\"player\":{\"number\":25,\"name\":\"Albil\"},\"card\":\"red\",\"team\":\"elp\"}}\n",
    "\n",
    "id: 5\n",
    "event: substitution\n",
    "data: {\"seq\":5,\"timestamp\":1315921745000,\"kind\":\"substitution\",",
    "\"data\":{\"player_out\":{\"number\":18,\"name\":\"Fernandez\"},\"team\":\"elp\",",
    "\"player_in\":{\"number\":21,\"name\":\"Silva\"}}}\n",
    "\n",
    "id: 6\n",
    "event: card\n",
    "data: {\"seq\":6,\"timestamp\":1315921747000,\"kind\":\"card\",",
    "\"data\":{\"player\":{\"number\":2,\"name\":\"Desabato\"},\"card\":\"yellow\",\"team\":\"elp\"}}\n",
    "\n",
    "id: 7\n",
    "event: goal\n",
    "data: {\"seq\":7,\"timestamp\":1315921748000,\"kind\":\"goal\",",
    "\"data\":{\"player\":{\"number\":10,\"name\":\"Morales\"},\"team\":\"tig\"}}\n",
    "\n",
);

fn seed_session() -> Vec<u8> {
    let mut out = Vec::new();
    render_status(&seed_started(), &mut out);
    for e in seed_events() {
        render_event(&e, &mut out);
    }
    out
}

#[test]
fn seed_session_is_byte_exact() {
    assert_eq!(String::from_utf8(seed_session()).expect("UTF-8"), SEED_SSE);
}

#[test]
fn a_comment_with_quotes_and_backslashes_stays_on_one_data_line() {
    let e = Event {
        match_id: MatchId::parse("elp-tig-2011-09-10").expect("id"),
        seq: 16,
        timestamp_ms: 1_315_921_751_000,
        kind: EventKind::Comment,
        data: EventData {
            comment: Some("Garcia keeps \"el Matador\" \\ two up".into()),
            ..EventData::default()
        },
    };
    let mut out = Vec::new();
    render_event(&e, &mut out);
    assert_eq!(
        String::from_utf8(out).expect("UTF-8"),
        "id: 16\nevent: comment\ndata: {\"seq\":16,\"timestamp\":1315921751000,\
         \"kind\":\"comment\",\"data\":{\"comment\":\"Garcia keeps \\\"el Matador\\\" \\\\ two up\"}}\n\n"
    );
}

#[test]
fn last_words_and_keepalive() {
    for (reason, want) in [
        (
            "too slow",
            "event: error\ndata: {\"error\":\"too slow\"}\n\n",
        ),
        (
            "match cancelled",
            "event: error\ndata: {\"error\":\"match cancelled\"}\n\n",
        ),
        (
            "server shutting down",
            "event: error\ndata: {\"error\":\"server shutting down\"}\n\n",
        ),
    ] {
        let mut out = Vec::new();
        render_error(reason, &mut out);
        assert_eq!(String::from_utf8(out).expect("UTF-8"), want, "{reason}");
    }
    assert_eq!(parse_block(KEEPALIVE), Ok(Some((Block::Idle, 3))));
}

/// Every block of `bytes`, which must end with a whole block.
fn blocks(bytes: &[u8]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (block, used) = parse_block(&bytes[at..])
            .expect("parses")
            .unwrap_or_else(|| panic!("a whole block at {at}"));
        out.push(block);
        at += used;
    }
    out
}

#[test]
fn the_parser_reads_back_what_the_renderer_wrote() {
    let session = seed_session();
    let got = blocks(&session);
    assert_eq!(got.len(), 7);
    let Block::Event(status) = &got[0] else {
        panic!("status is an event")
    };
    assert_eq!(status.id.as_deref(), Some("1"));
    assert_eq!(status.event, "status");
    assert_eq!(status.data.as_bytes(), match_body(&seed_started()));
    for (block, e) in got[1..].iter().zip(seed_events()) {
        let Block::Event(got) = block else {
            panic!("an event")
        };
        let mut data = Vec::new();
        write_event(&e, &mut data);
        assert_eq!(got.id, Some(e.seq.to_string()));
        assert_eq!(got.event, e.kind.as_str());
        assert_eq!(got.data.as_bytes(), data);
    }
    // Whatever the pieces it arrives in: nothing until the blank line.
    for cut in 0..60 {
        assert_eq!(parse_block(&session[..cut]), Ok(None), "cut at {cut}");
    }
}

#[test]
fn parser_corners() {
    let event = |id: Option<&str>, event: &str, data: &str| {
        Block::Event(SseEvent {
            id: id.map(str::to_owned),
            event: event.to_owned(),
            data: data.to_owned(),
        })
    };
    /// A case's name, its input, and the block and length expected.
    type Case<'a> = (&'a str, &'a [u8], Option<(Block, usize)>);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("empty", b"", None),
        ("no blank line yet", b"data: x\n", None),
        ("crlf lines", b"data: x\r\n\r\n", Some((event(None, "message", "x"), 11))),
        ("no space after the colon", b"event:goal\ndata:{}\n\n", Some((event(None, "goal", "{}"), 20))),
        ("only one space is dropped", b"data:  x\n\n", Some((event(None, "message", " x"), 10))),
        ("data lines join", b"data: a\ndata: b\n\n", Some((event(None, "message", "a\nb"), 17))),
        ("a field without colon", b"data\n\n", Some((event(None, "message", ""), 6))),
        ("comments inside", b": hi\nid: 4\n:\ndata: d\n\n", Some((event(Some("4"), "message", "d"), 22))),
        ("an empty event type is message", b"event:\ndata: d\n\n", Some((event(None, "message", "d"), 16))),
        ("retry and unknown fields", b"retry: 10\nfoo: bar\n\n", Some((Block::Idle, 20))),
        ("id with NUL ignored", b"id: 1\0\ndata: d\n\n", Some((event(None, "message", "d"), 16))),
        ("a lone blank line", b"\nrest", Some((Block::Idle, 1))),
    ];
    for (name, input, want) in cases {
        assert_eq!(parse_block(input), Ok(want), "{name}");
    }
    assert_eq!(parse_block(b"data: \xff\n\n"), Err(SseError::NotUtf8));
}
