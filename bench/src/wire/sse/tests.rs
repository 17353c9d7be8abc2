//! Tests of the event-stream checker: real events rendered by the protocol crate (the bytes
//! the server sends), in every split; and one named case per way a stream can break the
//! format.

use matchstream_protocol::sse::{render_error, render_event, render_status};
use matchstream_protocol::{
    Date, Event, EventData, EventKind, Incarnation, Match, MatchId, NewMatch, Period, Player,
    TeamCode,
};

use super::{request, SseChecker, SseError};
use crate::wire::framing::{Frame, Item, Violation};

/// The head of a stream's answer, as docs/api.md shows it.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Access-Control-Allow-Origin: *\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";

/// The send stamp of the measured comment.
const SENT: u64 = 1_700_000_000_123_456_789;

fn sample_match(period: Period, last_seq: u64) -> Match {
    let team = |s: &str| TeamCode::parse(s).expect("team");
    let new = NewMatch {
        home: team("elp"),
        visit: team("tig"),
        start_date: Date::parse("2011-09-10").expect("date"),
        stadium: None,
        home_players: vec![Player::new(25, "Albil").expect("player")],
        visit_players: vec![Player::new(7, "Luna").expect("player")],
    };
    let incarnation = Incarnation::from_bits(0x3f9a_0c1d_2b4e_5f60).expect("not zero");
    let mut m = Match::create(new, 1_315_921_728_000, incarnation);
    m.period = period;
    m.last_seq = last_seq;
    m
}

fn event(seq: u64, kind: EventKind, comment: Option<String>) -> Event {
    Event {
        match_id: MatchId::parse("elp-tig-2011-09-10").expect("id"),
        seq,
        timestamp_ms: 1_315_921_731_000,
        kind,
        data: EventData {
            team: (kind == EventKind::Goal).then(|| TeamCode::parse("tig").expect("team")),
            player: (kind == EventKind::Goal).then(|| Player::new(7, "Luna").expect("player")),
            comment,
            ..EventData::default()
        },
    }
}

/// The events of a whole stream, as the server renders them: status (live, last seq 1), a
/// goal, the bench's stamped comment (as fanout posts it), a warm-up comment, stop.
fn events() -> Vec<u8> {
    let mut out = Vec::new();
    render_status(&sample_match(Period::First, 1), &mut out);
    render_event(&event(2, EventKind::Goal, None), &mut out);
    let stamped = crate::publisher::publish::comment(SENT, 60);
    render_event(&event(3, EventKind::Comment, Some(stamped)), &mut out);
    let warmup = crate::publisher::publish::warmup_comment(SENT, 0);
    render_event(&event(4, EventKind::Comment, Some(warmup)), &mut out);
    render_event(&event(5, EventKind::Stop, None), &mut out);
    out
}

/// A whole answer: the head, then `body`.
fn answer(body: &[u8]) -> Vec<u8> {
    [HEAD, body].concat()
}

/// What the whole stream is: status, goal, the stamped comment, the warm-up one, stop.
fn expected() -> Vec<Item> {
    let frame = |kind, seq, sent_ns, period| {
        Item::Frame(Frame {
            kind,
            seq: Some(seq),
            sent_ns,
            period,
        })
    };
    vec![
        frame(EventKind::Status, 1, None, Some(Period::First)),
        frame(EventKind::Goal, 2, None, None),
        frame(EventKind::Comment, 3, Some(SENT), None),
        frame(EventKind::Comment, 4, None, None),
        frame(EventKind::Stop, 5, None, None),
    ]
}

/// Feeds `chunks` to a fresh checker, then the close.
fn check(chunks: &[&[u8]]) -> (Vec<Item>, Result<(), Violation>) {
    let mut c = SseChecker::new();
    let mut items = Vec::new();
    for chunk in chunks {
        if let Err(e) = c.feed(chunk, &mut items) {
            return (items, Err(e.into()));
        }
    }
    (items, c.finish())
}

/// The error that feeding `body` after the head ends in.
fn error_of(body: &[u8]) -> SseError {
    let mut c = SseChecker::new();
    let mut items = Vec::new();
    c.feed(&answer(body), &mut items).expect_err("malformed")
}

#[test]
fn a_whole_stream_gives_every_event_byte_exact() {
    let bytes = answer(&events());
    let (items, r) = check(&[&bytes]);
    assert_eq!(r, Ok(()));
    assert_eq!(items, expected());
    // The bytes are the server's: the first event as docs/api.md describes it.
    assert!(events().starts_with(b"id: 1\nevent: status\ndata: {\"id\":\"elp-tig-2011-09-10\""));
}

#[test]
fn a_stream_split_at_every_byte_boundary_gives_the_same_events() {
    let bytes = answer(&events());
    for cut in 0..=bytes.len() {
        let (items, r) = check(&[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(r, Ok(()), "cut at {cut}");
        assert_eq!(items, expected(), "cut at {cut}");
    }
    let bytes_one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
    let (items, r) = check(&bytes_one_by_one);
    assert_eq!((items, r), (expected(), Ok(())));
}

#[test]
fn comments_and_keepalives_are_skipped() {
    let stream = events();
    // The keep-alive between events, a comment inside one, CRLF line ends, a retry field.
    let mut body = Vec::new();
    let mut first = true;
    for block in stream.split_inclusive(|&b| b == b'\n') {
        if block == b"\n" && first {
            first = false;
            body.extend_from_slice(b"\n:\n\n: a comment with text\n\n");
            continue;
        }
        if block.starts_with(b"event: goal") {
            body.extend_from_slice(b": inside an event\r\nretry: 3000\r\n");
        }
        body.extend_from_slice(block);
    }
    let (items, r) = check(&[&answer(&body)]);
    assert_eq!((items, r), (expected(), Ok(())));
    // Nothing but keep-alives: no event, and the close between them is fine.
    let (items, r) = check(&[&answer(b":\n\n:\n\n")]);
    assert_eq!((items, r), (vec![], Ok(())));
}

#[test]
fn the_status_comes_first_with_its_period_and_last_seq() {
    // (period of the match, last seq) -> the status frame
    for (period, last_seq) in [
        (Period::NotStarted, 0),
        (Period::First, 7),
        (Period::Ended, 30),
    ] {
        let mut body = Vec::new();
        render_status(&sample_match(period, last_seq), &mut body);
        let (items, r) = check(&[&answer(&body)]);
        assert_eq!(r, Ok(()), "{period:?}");
        assert_eq!(
            items,
            [Item::Frame(Frame {
                kind: EventKind::Status,
                seq: Some(last_seq),
                sent_ns: None,
                period: Some(period),
            })]
        );
    }
    // An event first is refused, unless the stream was resumed with Last-Event-ID.
    let mut body = Vec::new();
    render_event(&event(2, EventKind::Goal, None), &mut body);
    let e = error_of(&body);
    assert_eq!(e.what, "the first event is not the status");
    let mut c = SseChecker::resumed();
    let mut items = Vec::new();
    c.feed(&answer(&body), &mut items)
        .expect("a resumed stream");
    assert_eq!(items.len(), 1);
}

#[test]
fn a_malformed_line_is_an_error_that_names_it() {
    let status = {
        let mut s = Vec::new();
        render_status(&sample_match(Period::First, 1), &mut s);
        s
    };
    // (name, bytes after the status, what is wrong, the line named)
    let cases: [(&str, &[u8], &str, Option<&str>); 14] = [
        (
            "no colon",
            b"garbage\n",
            "a line that is no field: no colon",
            Some("garbage"),
        ),
        (
            "unknown field",
            b"name: x\n",
            "an unknown field",
            Some("name: x"),
        ),
        (
            "id not a seq",
            b"id: two\n",
            "an id that is not a seq",
            Some("id: two"),
        ),
        (
            "negative id",
            b"id: -1\n",
            "an id that is not a seq",
            Some("id: -1"),
        ),
        (
            "second id",
            b"id: 2\nid: 3\n",
            "a second id line in one event",
            Some("id: 3"),
        ),
        (
            "id after event",
            b"event: goal\nid: 2\n",
            "an id line after the event or data line",
            Some("id: 2"),
        ),
        (
            "unknown type",
            b"id: 2\nevent: ghost\n",
            "an unknown event type",
            Some("event: ghost"),
        ),
        (
            "data before event",
            b"id: 2\ndata: {}\n",
            "a data line before the event line",
            Some("data: {}"),
        ),
        (
            "data not JSON",
            b"id: 2\nevent: goal\ndata: goal!\n",
            "a data line that is not a JSON object",
            Some("data: goal!"),
        ),
        (
            "two data lines",
            b"id: 2\nevent: goal\ndata: {}\ndata: {}\n",
            "a second data line in one event",
            Some("data: {}"),
        ),
        (
            "no event line",
            b"id: 2\n\n",
            "an event without an event line",
            None,
        ),
        (
            "no data line",
            b"id: 2\nevent: goal\n\n",
            "an event without a data line",
            None,
        ),
        (
            "no id",
            b"event: goal\ndata: {}\n\n",
            "a match event without an id line",
            None,
        ),
        (
            "after the error event",
            b"event: error\ndata: {\"error\":\"too slow\"}\n\nid: 9\n",
            "data after the error event",
            Some("id: 9"),
        ),
    ];
    for (name, bad, what, line) in cases {
        let e = error_of(&[&status[..], bad].concat());
        assert_eq!(e.what, what, "{name}");
        assert_eq!(e.line.as_deref(), line, "{name}");
        if let Some(line) = line {
            let text = e.to_string();
            assert!(text.contains(&format!("{line:?}")), "{name}: {text}");
            let Violation::BadLine(v) = Violation::from(e) else {
                panic!("{name}: a named line");
            };
            assert!(v.contains(line), "{name}: {v}");
        }
    }
    // A status whose data is not the match JSON.
    let e = error_of(b"id: 1\nevent: status\ndata: {\"period\":\"lunch\"}\n\n");
    assert_eq!(e.what, "a status without the match's period");
    // A very long line shows only its first bytes.
    let long = [b"x".repeat(500), b"\n".to_vec()].concat();
    let e = error_of(&long);
    assert_eq!(e.line.as_ref().map(String::len), Some(super::SHOWN));
}

#[test]
fn the_error_event_is_the_servers_last_words() {
    let mut body = Vec::new();
    render_status(&sample_match(Period::First, 1), &mut body);
    render_error("too slow", &mut body);
    let (items, r) = check(&[&answer(&body)]);
    assert_eq!(r, Ok(()));
    assert_eq!(items.last(), Some(&Item::Error("too slow".into())));
}

#[test]
fn answers_that_are_not_a_stream() {
    // A refusal: the API's reason when its body is there.
    let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json; charset=utf-8\r\n\
Content-Length: 25\r\nAccess-Control-Allow-Origin: *\r\n\r\n{\"error\":\"unknown match\"}";
    let (items, r) = check(&[not_found]);
    assert_eq!(r, Ok(()));
    assert_eq!(items, [Item::Error("HTTP 404 unknown match".into())]);
    let head_end = not_found
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    let (items, _) = check(&[&not_found[..head_end + 5]]);
    assert_eq!(items, [Item::Error("HTTP 404".into())]);
    // A 200 that is not an event stream.
    let json = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let (_, r) = check(&[json]);
    assert!(
        matches!(&r, Err(Violation::BadLine(l)) if l.contains("Content-Type: application/json")),
        "{r:?}"
    );
    let (_, r) = check(&[b"SSH-2.0-OpenSSH\r\n\r\n"]);
    assert!(
        matches!(&r, Err(Violation::BadLine(l)) if l.contains("malformed HTTP answer head")),
        "{r:?}"
    );
}

#[test]
fn a_close_inside_the_head_a_line_or_an_event_is_incomplete() {
    let bytes = answer(&events());
    let status_end = HEAD.len() + events().windows(2).position(|w| w == b"\n\n").expect("end") + 2;
    // (where the connection ends, its verdict)
    let cases = [
        (0, Ok(())), // nothing at all: closed early, not incomplete
        (10, Err(Violation::Incomplete)),
        (HEAD.len(), Ok(())),
        (HEAD.len() + 3, Err(Violation::Incomplete)),
        (HEAD.len() + 6, Err(Violation::Incomplete)), // after "id: 1\n"
        (status_end, Ok(())),
        (bytes.len() - 1, Err(Violation::Incomplete)),
        (bytes.len(), Ok(())),
    ];
    for (at, want) in cases {
        let (_, r) = check(&[&bytes[..at]]);
        assert_eq!(r, want, "closed after {at} bytes");
    }
}

#[test]
fn the_request_opens_the_stream() {
    let mut out = Vec::new();
    request("127.0.0.1:8888", "", "elp-tig-2011-09-10", None, &mut out);
    assert_eq!(
        out,
        b"GET /1/match/elp-tig-2011-09-10/stream HTTP/1.1\r\nHost: 127.0.0.1:8888\r\n\
Accept: text/event-stream\r\n\r\n"
    );
    out.clear();
    request("node", "/ms", "a-b-2011-09-13", Some(41), &mut out);
    assert_eq!(
        out,
        b"GET /ms/1/match/a-b-2011-09-13/stream HTTP/1.1\r\nHost: node\r\n\
Accept: text/event-stream\r\nLast-Event-ID: 41\r\n\r\n"
    );
}
