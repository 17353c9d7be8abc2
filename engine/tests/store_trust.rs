//! What nodes read from Redis is checked before it is rendered (docs/protocol.md, "What the
//! store holds is checked"): a foreign or compromised writer that puts an event with a
//! CR/LF in its comment into a match's history and publishes it never gets a frame of its own
//! to a subscriber; the node counts it, goes on with the genuine events, and withdraws the
//! match (`ERROR: match unavailable`) rather than serve a history it cannot follow. Messages
//! alone (a cancellation, a new incarnation, a creation) do not end a match that Redis still
//! holds.

mod common;

use std::net::TcpStream;

use common::*;
use matchstream_protocol::codec::{encode_event, encode_match};
use matchstream_protocol::frame::{render_event, Version};
use matchstream_protocol::{Event, EventData, EventKind, Incarnation, TeamCode};

/// The comment a forger hopes ends the frame and starts one of its own.
const FORGED: &str = "x\r\n\r\n2011-01-01 00:00:00: goal:\n";

fn rejected(node: &TestServer) -> u64 {
    let v = node
        .reader()
        .get("/1/stats")
        .expect("stats")
        .json()
        .expect("json");
    v["store_rejected"].as_u64().expect("store_rejected")
}

/// Splits a stream into frames (each ending with the `\r\n` terminator line) and an error
/// line at its end, and checks each frame has the shape a subscriber parses: a header line,
/// detail lines that start with a tab, and no other CR than the terminator's.
fn frames_and_end(stream: &[u8]) -> (Vec<String>, String) {
    let text = String::from_utf8_lossy(stream).into_owned();
    let mut frames: Vec<String> = text.split_inclusive("\n\r\n").map(str::to_owned).collect();
    let end = match frames.last() {
        Some(last) if !last.ends_with("\n\r\n") => frames.pop().unwrap_or_default(),
        _ => String::new(),
    };
    for frame in &frames {
        let body = &frame[..frame.len() - 2];
        assert!(!body.contains('\r'), "a CR inside a frame: {frame:?}");
        let mut lines = body[..body.len() - 1].split('\n');
        assert!(lines.next().is_some_and(|h| h.ends_with(':')), "{frame:?}");
        assert!(lines.all(|l| l.starts_with('\t')), "{frame:?}");
    }
    (frames, end)
}

/// Posts `body` on node `node`, which must number it `seq`.
fn post_genuine(node: &TestServer, id: &matchstream_protocol::MatchId, body: &str, seq: u64) {
    let (status, answer) = node.post_event(id, body);
    assert_eq!(status, 201, "{answer}");
    assert!(answer.contains(&format!(r#""seq":{seq}"#)), "{answer}");
}

fn send(con: &mut redis::Connection, cmd: &str, key: &str, value: &[u8]) {
    let _: i64 = redis::cmd(cmd).arg(key).arg(value).query(con).expect(cmd);
}

#[test]
fn a_forged_event_in_redis_never_reaches_a_subscriber() {
    let redis = RedisServer::start();
    let a = redis.node();
    let mut con = redis.connection();
    let (id, _) = a.create_sample();
    for body in &sample_bodies()[..3] {
        assert_eq!(
            a.post_event(&id, std::str::from_utf8(body).expect("UTF-8"))
                .0,
            201
        );
    }
    let watchers: Vec<TcpStream> = [("VERSION:1", 0), ("VERSION:2", 1), ("VERSION:2", 0)]
        .iter()
        .map(|(v, port)| subscribe(a.ports[*port], &format!("{v}:CONNECT:w:MATCH:{id}")))
        .collect();
    wait_until("three subscribers", || {
        core_sum(&mut a.reader(), "subscribers") == 3
    });

    // Messages alone, forged or stale, do not end or replace a match Redis holds.
    let incarnation = a.state(&id).incarnation;
    let mut other = a.state(&id);
    other.incarnation = Incarnation::from_bits(0xaa).expect("not zero");
    send(
        &mut con,
        "PUBLISH",
        "ms:events",
        format!("X{id}").as_bytes(),
    );
    send(
        &mut con,
        "PUBLISH",
        "ms:events",
        format!("R{id}").as_bytes(),
    );
    send(
        &mut con,
        "PUBLISH",
        "ms:events",
        &[b"C", &encode_match(&other)[..]].concat(),
    );
    // Answered once node a delivered it, so after the messages before it on the channel.
    post_genuine(&a, &id, r#"{"kind":"comment","comment":"genuine"}"#, 4);
    assert_eq!(
        a.state(&id).incarnation,
        incarnation,
        "the messages changed nothing"
    );

    // A well-formed event 5 that the match's rules refuse (a goal of a team that does not
    // play it), published only: dropped too.
    let forged = Event {
        match_id: id.clone(),
        seq: 5,
        timestamp_ms: a.state(&id).updated_ms + 1000,
        kind: EventKind::Goal,
        data: EventData {
            team: Some(TeamCode::parse("boc").expect("team")),
            ..EventData::default()
        },
    };
    let message = [b"E", &encode_event(&forged)[..]].concat();
    send(&mut con, "PUBLISH", "ms:events", &message);
    wait_until("the rule-breaking message counted", || rejected(&a) >= 1);

    // The forger writes event 5, in the store's own encoding, where the nodes read events:
    // the match's history and the channel.
    let forged = Event {
        kind: EventKind::Comment,
        data: EventData {
            comment: Some(FORGED.to_owned()),
            ..EventData::default()
        },
        ..forged
    };
    let bytes = encode_event(&forged);
    send(&mut con, "RPUSH", &format!("ms:history:{id}"), &bytes);
    let message = [b"E", &bytes[..]].concat();
    send(&mut con, "PUBLISH", "ms:events", &message);
    wait_until("the forged message counted", || rejected(&a) >= 2);

    // The genuine event 5, as the watcher's node numbers it, goes on.
    post_genuine(&a, &id, r#"{"kind":"corner","team":"tig"}"#, 5);
    let history = a.history(&id);
    assert_eq!(history.len(), 5);

    // A node starting now reads the match whole: its history holds the forged entry, so it
    // does not serve the match at all.
    let b = redis.node();
    assert!(rejected(&b) >= 1);
    let r = b.reader().get(&format!("/1/match/{id}")).expect("get");
    assert_eq!(r.status, 404);
    let refused = subscribe(b.ports[0], &format!("VERSION:2:CONNECT:n:MATCH:{id}"));
    assert_eq!(read_to_close(refused), b"ERROR: unknown match\r\n");

    // Node a, resubscribing, compares its view with the history: it cannot follow it, and
    // withdraws the match rather than render it.
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut con)
        .expect("client kill");
    for (s, version) in watchers
        .into_iter()
        .zip([Version::V1, Version::V2, Version::V2])
    {
        let got = read_to_close(s);
        let text = String::from_utf8_lossy(&got);
        assert!(
            !text.contains("2011-01-01") && !text.contains("boc"),
            "a forged frame reached a subscriber: {text:?}"
        );
        let (frames, end) = frames_and_end(&got);
        assert_eq!(end, "ERROR: match unavailable\r\n");
        // The status, then the genuine events 4 and 5, and nothing else.
        let mut genuine = Vec::new();
        for e in &history[3..] {
            render_event(e, version, &mut genuine);
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1..].concat(), String::from_utf8_lossy(&genuine));
    }
    assert_eq!(
        a.reader()
            .get(&format!("/1/match/{id}"))
            .expect("get")
            .status,
        404,
        "withdrawn"
    );
}
