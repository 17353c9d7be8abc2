//! The Redis feed's gap filling (engine/src/cluster/feed.rs), on in-process nodes sharing a real
//! `redis-server`: an event a node never heard published is read from the match's history when
//! a later event's publish shows the gap, so every subscriber still gets every event once, in
//! order.

mod common;

use std::net::TcpStream;

use common::*;
use matchstream_protocol::codec::{decode_match, encode_event, encode_match};
use matchstream_protocol::frame::Version;
use matchstream_protocol::state::apply;
use matchstream_protocol::{Event, EventData, EventKind, MatchId};

/// Posts `body` on `node`, which must number it `seq`.
fn post_as(node: &TestServer, id: &MatchId, body: &[u8], seq: u64) {
    let (status, answer) = node.post_event(id, std::str::from_utf8(body).expect("UTF-8"));
    assert_eq!(status, 201, "{answer}");
    assert!(answer.contains(&format!(r#""seq":{seq}"#)), "{answer}");
}

/// Waits until `node` shows the match at `seq`; fails at once if the node withdrew it (what
/// a feed does with a gap it cannot fill).
fn wait_seq(node: &TestServer, id: &MatchId, seq: u64) {
    wait_until(&format!("seq {seq} on {}", node.api), || {
        let r = node.reader().get(&format!("/1/match/{id}")).expect("get");
        assert_eq!(r.status, 200, "node {} no longer serves {id}", node.api);
        node.state(id).last_seq >= seq
    });
}

/// Commits an event to the match's keys the way the store's script does — history, state,
/// seq in one transaction — but publishes nothing: what a writer that died between its
/// write and its publish leaves (or a publish lost on the way). Returns the event.
fn write_without_publish(con: &mut redis::Connection, id: &MatchId, comment: &str) -> Event {
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(format!("ms:match:{id}"))
        .query(con)
        .expect("the stored state");
    let mut state = decode_match(&stored).expect("a valid stored state");
    let event = Event {
        match_id: id.clone(),
        seq: state.last_seq + 1,
        timestamp_ms: state.updated_ms + 1000,
        kind: EventKind::Comment,
        data: EventData {
            comment: Some(comment.to_owned()),
            ..EventData::default()
        },
    };
    apply(&mut state, &event);
    let () = redis::pipe()
        .atomic()
        .cmd("RPUSH")
        .arg(format!("ms:history:{id}"))
        .arg(encode_event(&event))
        .ignore()
        .cmd("SET")
        .arg(format!("ms:match:{id}"))
        .arg(encode_match(&state))
        .ignore()
        .cmd("SET")
        .arg(format!("ms:seq:{id}"))
        .arg(event.seq)
        .ignore()
        .query(con)
        .expect("the silent write");
    event
}

#[test]
fn a_seq_written_without_its_publish_is_read_from_redis_when_the_next_one_is_published() {
    let redis = RedisServer::start();
    // Node a takes the writes; node b only watches (its feed hears a's events on the channel).
    let (a, b) = (redis.node(), redis.node());
    let mut con = redis.connection();
    let (id, _) = a.create_sample();
    let bodies = sample_bodies();
    post_as(&a, &id, &bodies[0], 1);
    post_as(&a, &id, &bodies[1], 2);
    for node in [&a, &b] {
        wait_seq(node, &id, 2);
    }
    let at_subscribe = b.state(&id);
    let watchers: Vec<(Version, TcpStream)> = [
        (&a, 0, Version::V2),
        (&b, 0, Version::V2),
        (&b, 1, Version::V1),
    ]
    .into_iter()
    .map(|(node, port, version)| {
        let line = format!("VERSION:{}:CONNECT:gap:MATCH:{id}", version.number());
        (version, subscribe(node.ports[port], &line))
    })
    .collect();
    wait_for_subscribers(&a, 1);
    wait_for_subscribers(&b, 2);

    // Seq 3 is in Redis, but no node heard of it.
    let silent = write_without_publish(&mut con, &id, "written, never published");
    assert_eq!(silent.seq, 3);

    // The next write (validated again against the stored seq 3) is 4, and its publish shows
    // every feed the gap: they read 3 from the history and deliver 3, then 4.
    post_as(&a, &id, &bodies[2], 4);
    for node in [&a, &b] {
        wait_seq(node, &id, 4);
    }
    let history = b.history(&id);
    assert_eq!(history[2], silent, "the silent event, as Redis holds it");
    assert_eq!(a.history(&id), history);

    // The rest of the match, to its stop: every stream ends, whole.
    for (seq, body) in (5..).zip(&bodies[3..]) {
        post_as(&a, &id, body, seq);
    }
    let history = b.history(&id);
    assert_eq!(history.len(), bodies.len() + 1);
    for (version, s) in watchers {
        let got = read_to_close(s);
        let want = expected_stream(&at_subscribe, &history[2..], version);
        assert!(
            got == want,
            "a {version:?} subscriber's stream differs: got {:?}, want {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }
}
