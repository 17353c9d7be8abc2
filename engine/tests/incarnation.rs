//! Incarnations end to end (docs/protocol.md, "Incarnations"), on nodes sharing a real
//! `redis-server`: when the stored history of a match goes back under its incarnation — as a
//! failover to a replica that missed the last writes leaves the keys — the nodes agree on one
//! new incarnation, end the old history's subscribers with `ERROR: match history changed`,
//! refuse a resume against the old incarnation, and go on from the stored seq under the new
//! one. A match found under another incarnation (created again while a node was away) ends
//! its subscribers the same way.

mod common;

use std::io::Read;
use std::net::TcpStream;

use common::*;
use matchstream_protocol::frame::{render_event, Version};
use matchstream_protocol::{Incarnation, MatchId};

/// The incarnation of a v2 status frame.
fn incarnation_of(status: &[u8]) -> Incarnation {
    let text = String::from_utf8_lossy(status);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("\tincarnation: "))
        .unwrap_or_else(|| panic!("no incarnation line in {text:?}"));
    Incarnation::parse(line.as_bytes()).expect("16 hex digits")
}

/// The match's `last_seq` and incarnation as a node's API shows them.
fn seen_by(node: &TestServer, id: &MatchId) -> (u64, Incarnation) {
    let m = node.state(id);
    (m.last_seq, m.incarnation)
}

/// Posts the sample's events `range` (0-based) through `node`; returns the seqs given.
fn post(node: &TestServer, id: &MatchId, range: std::ops::Range<usize>) -> Vec<u64> {
    let bodies = sample_bodies();
    bodies[range]
        .iter()
        .map(|body| {
            let (status, answer) = node.post_event(id, std::str::from_utf8(body).expect("UTF-8"));
            assert_eq!(status, 201, "{answer}");
            let v: serde_json::Value = serde_json::from_str(&answer).expect("json");
            v["seq"].as_u64().expect("seq")
        })
        .collect()
}

/// A v2 subscriber past its status frame: the stream and the incarnation it showed.
fn watch_v2(port: u16, user: &str, id: &MatchId) -> (TcpStream, Incarnation) {
    let mut s = subscribe(port, &format!("VERSION:2:CONNECT:{user}:MATCH:{id}"));
    let status = read_until(&mut s, b"\n\r\n");
    (s, incarnation_of(&status))
}

/// What the keys of match `id` hold at this moment: its state, seq and history.
struct Keys {
    state: Vec<u8>,
    seq: u64,
    history: Vec<Vec<u8>>,
}

fn read_keys(con: &mut redis::Connection, id: &MatchId) -> Keys {
    let (state, seq, history) = redis::pipe()
        .atomic()
        .cmd("GET")
        .arg(format!("ms:match:{id}"))
        .cmd("GET")
        .arg(format!("ms:seq:{id}"))
        .cmd("LRANGE")
        .arg(format!("ms:history:{id}"))
        .arg(0)
        .arg(-1)
        .query(con)
        .expect("read the keys");
    Keys {
        state,
        seq,
        history,
    }
}

/// Puts the keys of match `id` back as `keys` held them, in one transaction: what a replica
/// that missed the later writes holds after a failover (Redis replicates each script whole,
/// so the three keys always agree with one another).
fn rewind(con: &mut redis::Connection, id: &MatchId, keys: &Keys) {
    let history = format!("ms:history:{id}");
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("SET")
        .arg(format!("ms:match:{id}"))
        .arg(&keys.state)
        .ignore()
        .cmd("SET")
        .arg(format!("ms:seq:{id}"))
        .arg(keys.seq)
        .ignore()
        .cmd("LTRIM")
        .arg(&history)
        .arg(0)
        .arg(keys.history.len() as i64 - 1)
        .ignore();
    let () = pipe.query(con).expect("rewind the keys");
    let stored: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(&history)
        .arg(0)
        .arg(-1)
        .query(con)
        .expect("lrange");
    assert_eq!(stored, keys.history, "LTRIM left the earlier history");
}

/// Breaks every node's subscription, as a failover does: each resubscribes and compares.
fn kill_subscriptions(con: &mut redis::Connection) {
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(con)
        .expect("client kill");
    assert!(killed >= 2, "{killed} subscriptions killed");
}

/// Reads the rest of a stream until the server closes it.
fn rest(s: TcpStream) -> String {
    String::from_utf8_lossy(&read_to_close(s)).into_owned()
}

#[test]
fn a_rewound_history_gets_one_new_incarnation_and_its_subscribers_are_told() {
    let redis = RedisServer::start();
    let (a, b) = (redis.node(), redis.node());
    let mut con = redis.connection();
    let (id, _) = a.create_sample();
    assert_eq!(post(&a, &id, 0..5), [1, 2, 3, 4, 5]);
    let at_five = read_keys(&mut con, &id);
    assert_eq!(at_five.seq, 5);
    assert_eq!(post(&a, &id, 5..8), [6, 7, 8]);
    wait_until("node b at seq 8", || seen_by(&b, &id).0 == 8);
    let (_, old) = seen_by(&a, &id);
    assert_eq!(seen_by(&b, &id), (8, old), "one incarnation on every node");

    let mut watchers: Vec<TcpStream> = Vec::new();
    for (node, port) in [(&a, 0), (&a, 1), (&b, 0), (&b, 1)] {
        let (s, shown) = watch_v2(node.ports[port], "w", &id);
        assert_eq!(shown, old, "the v2 status names the match's incarnation");
        watchers.push(s);
    }
    let mut v1 = subscribe(a.ports[0], &format!("VERSION:1:CONNECT:o:MATCH:{id}"));
    let status = read_until(&mut v1, b"\n\r\n");
    assert!(!String::from_utf8_lossy(&status).contains("incarnation"));

    // Redis fails over to a replica that missed events 6 to 8, and the nodes resubscribe.
    rewind(&mut con, &id, &at_five);
    kill_subscriptions(&mut con);
    for s in watchers.into_iter().chain([v1]) {
        assert_eq!(rest(s), "ERROR: match history changed\r\n");
    }

    // Both nodes noticed at once; one compare-and-set won, and both took its incarnation.
    wait_until("node b at the stored seq", || seen_by(&b, &id).0 == 5);
    let (seq, new) = seen_by(&a, &id);
    assert_eq!(seq, 5);
    assert_ne!(new, old);
    assert_eq!(seen_by(&b, &id), (5, new));
    let stored: String = redis::cmd("GET")
        .arg(format!("ms:incarnation:{id}"))
        .query(&mut con)
        .expect("get");
    assert_eq!(stored, new.to_string());
    assert!(String::from_utf8_lossy(&read_keys(&mut con, &id).state)
        .contains(&format!(r#""incarnation":"{new}""#)));

    // A client that held seqs of the old history is told, not given reused seqs.
    for node in [&a, &b] {
        let s = subscribe(
            node.ports[1],
            &format!("VERSION:2:CONNECT:r:MATCH:{id}:SINCE:7:INCARNATION:{old}"),
        );
        assert_eq!(rest(s), "ERROR: match history changed\r\n");
    }
    // One that names the new incarnation resumes; plain SINCE works as before.
    let resumed = subscribe(
        b.ports[0],
        &format!("VERSION:2:CONNECT:r:MATCH:{id}:SINCE:3:INCARNATION:{new}"),
    );
    let plain = subscribe(
        a.ports[1],
        &format!("VERSION:2:CONNECT:p:MATCH:{id}:SINCE:4"),
    );
    wait_until("both resumes subscribed", || {
        core_sum(&mut a.reader(), "subscribers") == 1
            && core_sum(&mut b.reader(), "subscribers") == 1
    });

    // The match goes on from the stored seq, under the new incarnation.
    let bodies = sample_bodies().len();
    let seqs = post(&b, &id, 5..bodies);
    assert_eq!(seqs, (6..=bodies as u64).collect::<Vec<_>>());
    assert_eq!(seen_by(&a, &id).1, new);
    let history = a.history(&id);
    assert_eq!(history.len(), bodies);
    assert_eq!(b.history(&id), history);
    let frames = |after: usize| {
        let mut out = Vec::new();
        for e in &history[after..] {
            render_event(e, Version::V2, &mut out);
        }
        String::from_utf8(out).expect("UTF-8")
    };
    assert_eq!(rest(resumed), frames(3));
    assert_eq!(rest(plain), frames(4));
}

#[test]
fn writes_on_a_silently_rewound_history_are_caught_without_a_resync() {
    let redis = RedisServer::start();
    let (a, b) = (redis.node(), redis.node());
    let mut con = redis.connection();
    let (id, _) = a.create_sample();
    post(&a, &id, 0..3);
    let at_three = read_keys(&mut con, &id);
    post(&a, &id, 3..6);
    wait_until("node b at seq 6", || seen_by(&b, &id).0 == 6);
    let (watcher, old) = watch_v2(b.ports[0], "w", &id);

    // The keys go back, but no subscription breaks: the next write, at seq 4 again, is
    // another event than the 4 every node delivered.
    rewind(&mut con, &id, &at_three);
    assert_eq!(post(&a, &id, 3..4), [4]);
    assert_eq!(rest(watcher), "ERROR: match history changed\r\n");
    wait_until("both nodes on the new incarnation at seq 4", || {
        let (seq_a, inc_a) = seen_by(&a, &id);
        let (seq_b, inc_b) = seen_by(&b, &id);
        seq_a == 4 && seq_b == 4 && inc_a == inc_b && inc_a != old
    });
    // And it goes on.
    assert_eq!(post(&b, &id, 4..5), [5]);
    wait_until("node a at seq 5", || seen_by(&a, &id).0 == 5);
}

#[test]
fn a_match_found_under_another_incarnation_replaces_the_node_s_view() {
    let redis = RedisServer::start();
    let a = redis.node();
    let mut con = redis.connection();
    let (id, _) = a.create_sample();
    post(&a, &id, 0..2);
    let (watcher, old) = watch_v2(a.ports[1], "w", &id);
    // As if the match was cancelled and created again while the node's subscription was
    // down: same id, another history.
    let other = "00000000000000aa";
    let () = redis::cmd("SET")
        .arg(format!("ms:incarnation:{id}"))
        .arg(other)
        .query(&mut con)
        .expect("set");
    kill_subscriptions_of_one(&mut con);
    assert_eq!(rest(watcher), "ERROR: match history changed\r\n");
    wait_until("the node on the stored incarnation", || {
        seen_by(&a, &id).1.to_string() == other
    });
    assert_ne!(old.to_string(), other);
    let mut s = subscribe(a.ports[0], &format!("VERSION:2:CONNECT:n:MATCH:{id}"));
    let status = read_until(&mut s, b"\n\r\n");
    assert_eq!(incarnation_of(&status).to_string(), other);
    let mut nothing = [0u8; 1];
    s.set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .expect("timeout");
    assert!(s.read(&mut nothing).is_err(), "a live subscriber waits");
}

/// [`kill_subscriptions`] for a single node.
fn kill_subscriptions_of_one(con: &mut redis::Connection) {
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(con)
        .expect("client kill");
    assert_eq!(killed, 1);
}

/// On one node (memory store): a resume naming another incarnation is refused with the
/// lingering close of every handshake error, while the core goes on serving the match; one
/// naming the match's own incarnation resumes.
#[test]
fn a_resume_names_the_incarnation_and_a_wrong_one_is_refused() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    assert_eq!(post(&server, &id, 0..2), [1, 2]);
    let (mut live, current) = watch_v2(server.ports[0], "w", &id);
    assert_eq!(server.state(&id).incarnation, current);

    let other = Incarnation::from_bits(0x1234).expect("not zero");
    assert_ne!(other, current);
    let mut refused = subscribe(
        server.ports[0],
        &format!("VERSION:2:CONNECT:r:MATCH:{id}:SINCE:1:INCARNATION:{other}"),
    );
    assert_eq!(
        read_until(&mut refused, b"\r\n"),
        b"ERROR: match history changed\r\n"
    );
    // The refused connection is still open (the server drains it for up to a second): the
    // core keeps delivering meanwhile.
    assert_eq!(post(&server, &id, 2..3), [3]);
    let frame = read_until(&mut live, b"\n\r\n");
    assert!(String::from_utf8_lossy(&frame).contains("\tseq: 3\n"));
    drop(refused);

    let resumed = subscribe(
        server.ports[1],
        &format!("VERSION:2:CONNECT:r:MATCH:{id}:SINCE:1:INCARNATION:{current}"),
    );
    let bodies = sample_bodies().len();
    post(&server, &id, 3..bodies);
    let history = server.history(&id);
    let mut expected = Vec::new();
    for e in &history[1..] {
        render_event(e, Version::V2, &mut expected);
    }
    assert_eq!(rest(resumed), String::from_utf8_lossy(&expected));
}

/// Keys as a version without incarnations wrote them: the state without one, no
/// `ms:incarnation:<id>`. Nodes loading them at once agree on the one they give it.
#[test]
fn a_match_stored_before_incarnations_gets_one_that_every_node_agrees_on() {
    use matchstream_protocol::codec::{encode_event, encode_match};
    let redis = RedisServer::start();
    let mut con = redis.connection();
    // Written by a node of this version, then taken back to what an older one leaves.
    let (id, history) = {
        let a = redis.node();
        let (id, _) = a.create_sample();
        post(&a, &id, 0..3);
        let history = a.history(&id);
        (id, history)
    };
    let mut old = {
        let keys = read_keys(&mut con, &id);
        matchstream_protocol::codec::decode_match(&keys.state).expect("state")
    };
    old.incarnation = Incarnation::UNSET;
    let state = encode_match(&old);
    assert!(!String::from_utf8_lossy(&state).contains("incarnation"));
    let () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(format!("ms:match:{id}"))
        .arg(&state)
        .ignore()
        .cmd("DEL")
        .arg(format!("ms:incarnation:{id}"))
        .ignore()
        .query(&mut con)
        .expect("old keys");
    assert_eq!(
        read_keys(&mut con, &id).history,
        history.iter().map(encode_event).collect::<Vec<_>>()
    );

    let starting: Vec<_> = (0..2)
        .map(|_| {
            let redis_url = redis.url();
            std::thread::spawn(move || {
                TestServer::start_with(matchstream_engine::Config {
                    store: matchstream_engine::config::StoreSpec::Redis(
                        matchstream_engine::config::RedisUrl::new(redis_url),
                    ),
                    ..test_config()
                })
            })
        })
        .collect();
    let nodes: Vec<TestServer> = starting
        .into_iter()
        .map(|t| t.join().expect("node"))
        .collect();
    let given = seen_by(&nodes[0], &id).1;
    assert!(given.is_set());
    assert_eq!(seen_by(&nodes[1], &id), (3, given));
    let stored: String = redis::cmd("GET")
        .arg(format!("ms:incarnation:{id}"))
        .query(&mut con)
        .expect("get");
    assert_eq!(stored, given.to_string());
    assert_eq!(nodes[1].history(&id), history, "the history is kept");
    // And writes go on under it.
    assert_eq!(post(&nodes[1], &id, 3..4), [4]);
    assert_eq!(seen_by(&nodes[1], &id), (4, given));
}

/// A write a node validated against the incarnation it knew is validated again when the
/// stored one changed meanwhile: the state it stores carries the stored incarnation.
#[test]
fn a_write_validated_against_an_old_incarnation_is_validated_again() {
    let redis = RedisServer::start();
    let a = redis.node();
    let mut con = redis.connection();
    let (id, _) = a.create_sample();
    post(&a, &id, 0..2); // node a's store now holds the state at seq 2 under its incarnation
    let (_, old) = seen_by(&a, &id);
    // What another node's new incarnation leaves (rewind.rs's script): the key, the state's
    // copy, and the message.
    let new = Incarnation::from_bits(0xbb).expect("not zero");
    let keys = read_keys(&mut con, &id);
    let state = String::from_utf8(keys.state)
        .expect("UTF-8")
        .replace(&old.to_string(), &new.to_string());
    let () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(format!("ms:incarnation:{id}"))
        .arg(new.to_string())
        .ignore()
        .cmd("SET")
        .arg(format!("ms:match:{id}"))
        .arg(&state)
        .ignore()
        .cmd("PUBLISH")
        .arg("ms:events")
        .arg(format!("R{id}"))
        .ignore()
        .query(&mut con)
        .expect("new incarnation");
    wait_until("node a on the new incarnation", || {
        seen_by(&a, &id) == (2, new)
    });
    assert_eq!(post(&a, &id, 2..3), [3]);
    let stored = String::from_utf8(read_keys(&mut con, &id).state).expect("UTF-8");
    assert!(
        stored.contains(&format!(r#""incarnation":"{new}""#)),
        "the state was written under the old incarnation: {stored}"
    );
    assert_eq!(seen_by(&a, &id), (3, new));
}
