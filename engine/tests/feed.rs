//! The node's Redis feed (engine/src/cluster/feed.rs), on nodes sharing a real `redis-server`:
//! an event a node never heard published is read from the match's history when a later
//! event's publish shows the gap, so every subscriber still gets every event once, in order;
//! a message Redis does not back is dropped and counted; a cancellation reaches every node; a
//! withdrawn match is taken back once Redis holds valid data again; the subscription is kept
//! while idle, retried with growing pauses while Redis is unreachable (its loss and return
//! logged once each), and closed when the node stops.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

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

/// The node's count of what it read from Redis and refused (`store_rejected`).
fn rejected(node: &TestServer) -> u64 {
    let v = node
        .reader()
        .get("/1/stats")
        .expect("stats")
        .json()
        .expect("json");
    v["store_rejected"].as_u64().expect("store_rejected")
}

/// The status of `GET /1/match/<id>` on `node`.
fn match_status(node: &TestServer, id: &MatchId) -> u16 {
    node.reader()
        .get(&format!("/1/match/{id}"))
        .expect("get")
        .status
}

/// Publishes `payload` on the event channel, as any Redis client can.
/// How many LINDEX commands the Redis server has run (its `INFO commandstats`).
fn lindex_calls(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(con)
        .expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_lindex:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

fn publish(con: &mut redis::Connection, payload: &[u8]) {
    let _: i64 = redis::cmd("PUBLISH")
        .arg("ms:events")
        .arg(payload)
        .query(con)
        .expect("publish");
}

/// An `E` message carrying `event`.
fn event_message(event: &Event) -> Vec<u8> {
    [b"E", &encode_event(event)[..]].concat()
}

/// The ids of Redis's pub/sub clients (a node's feed is one).
fn pubsub_clients(con: &mut redis::Connection) -> Vec<u64> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query(con)
        .expect("client list");
    list.lines()
        .filter_map(|l| l.strip_prefix("id="))
        .map(|l| {
            l.split(' ')
                .next()
                .unwrap_or_default()
                .parse()
                .expect("an id")
        })
        .collect()
}

/// A comment event that follows on from `state` (the next seq, a later time).
fn comment_after(state: &matchstream_protocol::Match, comment: &str) -> Event {
    Event {
        match_id: state.id.clone(),
        seq: state.last_seq + 1,
        timestamp_ms: state.updated_ms + 1000,
        kind: EventKind::Comment,
        data: EventData {
            comment: Some(comment.to_owned()),
            ..EventData::default()
        },
    }
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
    let event = comment_after(&state, comment);
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

/// Waits until `node` serves the match (its feed took it).
fn wait_served(node: &TestServer, id: &MatchId) {
    wait_until(&format!("{id} served by {}", node.api), || {
        match_status(node, id) == 200
    });
}

#[test]
fn a_seq_written_without_its_publish_is_read_from_redis_when_the_next_one_is_published() {
    let redis = RedisServer::start();
    // Node a takes the writes; node b only watches (its feed hears a's events on the channel).
    let (a, b) = (redis.node(), redis.node());
    let mut con = redis.connection();
    let (id, _) = a.create_sample();
    let bodies = sample_bodies();
    wait_served(&b, &id);
    let created = b.state(&id);
    // v2 subscribers of the match not started yet stay for its events.
    let early: Vec<TcpStream> = [(&a, 0), (&b, 0)]
        .into_iter()
        .map(|(node, port)| {
            subscribe(
                node.ports[port],
                &format!("VERSION:2:CONNECT:gap:MATCH:{id}"),
            )
        })
        .collect();
    wait_for_subscribers(&a, 1);
    wait_for_subscribers(&b, 1);

    // Seq 1 is in Redis, but no node heard of it: a gap from the very first event. The next
    // write (validated again against the stored seq) is 2, and its publish shows every feed
    // the gap: they read 1 from the history and deliver 1, then 2.
    let first = write_without_publish(&mut con, &id, "before the kick-off, never published");
    assert_eq!(first.seq, 1);
    post_as(&a, &id, &bodies[0], 2);
    post_as(&a, &id, &bodies[1], 3);
    for node in [&a, &b] {
        wait_seq(node, &id, 3);
    }
    let at_v1 = b.state(&id);
    let late = subscribe(b.ports[1], &format!("VERSION:1:CONNECT:gap:MATCH:{id}"));
    wait_for_subscribers(&b, 2);

    // The same in the middle of the match: seq 4 written, never published; 5 shows the gap.
    let fourth = write_without_publish(&mut con, &id, "written, never published");
    assert_eq!(fourth.seq, 4);
    post_as(&a, &id, &bodies[2], 5);
    for node in [&a, &b] {
        wait_seq(node, &id, 5);
    }
    let history = b.history(&id);
    assert_eq!(
        history[0], first,
        "the first silent event, as Redis holds it"
    );
    assert_eq!(
        history[3], fourth,
        "the second silent event, as Redis holds it"
    );
    assert_eq!(a.history(&id), history);

    // The rest of the match, to its stop: every stream ends, whole.
    for (seq, body) in (6..).zip(&bodies[3..]) {
        post_as(&a, &id, body, seq);
    }
    let history = b.history(&id);
    assert_eq!(history.len(), bodies.len() + 2);
    let streams = early
        .into_iter()
        .map(|s| (s, expected_stream(&created, &history, Version::V2)))
        .chain([(late, expected_stream(&at_v1, &history[3..], Version::V1))]);
    for (s, want) in streams {
        let got = read_to_close(s);
        assert!(
            got == want,
            "a subscriber's stream differs: got {:?}, want {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }
    // A gap filled from Redis is the normal path, not a refusal.
    assert_eq!((rejected(&a), rejected(&b)), (0, 0));
}

#[test]
fn messages_redis_does_not_hold_are_dropped_and_counted_and_a_repeated_one_is_ignored() {
    let redis = RedisServer::start();
    let node = redis.node();
    let mut con = redis.connection();
    let (id, _) = node.create_sample();
    let bodies = sample_bodies();
    for (seq, body) in (1..).zip(&bodies[..3]) {
        post_as(&node, &id, body, seq);
    }
    let at_subscribe = node.state(&id);
    let watcher = subscribe(node.ports[0], &format!("VERSION:2:CONNECT:w:MATCH:{id}"));
    wait_for_subscribers(&node, 1);

    // Event 6, published only: the feed reads Redis for 4 and 5, finds the match at 3, and
    // drops the message.
    let mut ahead = comment_after(&at_subscribe, "published, never written");
    ahead.seq = 6;
    publish(&mut con, &event_message(&ahead));
    wait_until("the message past the end counted", || rejected(&node) == 1);
    // Another event 2 than the one delivered, published only: Redis holds the delivered one.
    let history = node.history(&id);
    let other = Event {
        data: EventData {
            comment: Some("another event 2".into()),
            ..EventData::default()
        },
        kind: EventKind::Comment,
        ..history[1].clone()
    };
    publish(&mut con, &event_message(&other));
    wait_until("the other event 2 counted", || rejected(&node) == 2);
    // Event 3 again, as stored: delivered already, neither sent again nor counted, and not
    // a reason to read Redis (the feed's probe is the only LINDEX anyone sends; the events
    // posted next follow on, so they need none either).
    let probes = lindex_calls(&mut con);
    publish(&mut con, &event_message(&history[2]));
    // Answered once delivered, so after the messages before it on the channel.
    for (seq, body) in (4..).zip(&bodies[3..]) {
        post_as(&node, &id, body, seq);
    }
    assert_eq!(rejected(&node), 2);
    assert_eq!(
        lindex_calls(&mut con),
        probes,
        "a message at a seq delivered already made the node read redis"
    );
    let history = node.history(&id);
    assert_eq!(history.len(), bodies.len());
    let want = expected_stream(&at_subscribe, &history[3..], Version::V2);
    let got = read_to_close(watcher);
    assert!(
        got == want,
        "got {:?}, want {:?}",
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn a_match_cancelled_on_one_node_ends_its_subscribers_on_every_node() {
    let redis = RedisServer::start();
    let (a, b) = (redis.node(), redis.node());
    let (id, _) = a.create_sample();
    post_as(&a, &id, &sample_bodies()[0], 1);
    wait_seq(&b, &id, 1);
    let watchers: Vec<TcpStream> = [(&a, 0), (&b, 0), (&b, 1)]
        .into_iter()
        .map(|(node, port)| {
            let mut s = subscribe(node.ports[port], &format!("VERSION:2:CONNECT:c:MATCH:{id}"));
            read_until(&mut s, b"\n\r\n");
            s
        })
        .collect();
    wait_for_subscribers(&b, 2);
    let r = a
        .watcher()
        .delete(&format!("/1/match/{id}"))
        .expect("delete");
    assert_eq!(r.status, 204);
    for s in watchers {
        assert_eq!(
            String::from_utf8_lossy(&read_to_close(s)),
            "ERROR: match cancelled\r\n"
        );
    }
    for node in [&a, &b] {
        assert_eq!(match_status(node, &id), 404);
    }
}

#[test]
fn a_withdrawn_match_is_taken_back_at_a_later_message_once_redis_holds_valid_data() {
    let redis = RedisServer::start();
    let node = redis.node();
    let mut con = redis.connection();
    let (id, _) = node.create_sample();
    let bodies = sample_bodies();
    post_as(&node, &id, &bodies[0], 1);
    post_as(&node, &id, &bodies[1], 2);
    // Event 2 damaged in the history; the feed, resubscribing, compares and cannot follow it.
    let genuine = withdraw_by_damage(&mut con, &node, &id);
    let withdrawn = Instant::now();
    // Repaired; the next event of the match, well after the retry interval, brings it back.
    let () = redis::cmd("LSET")
        .arg(format!("ms:history:{id}"))
        .arg(1)
        .arg(genuine)
        .query(&mut con)
        .expect("lset");
    let retry = matchstream_engine::cluster::feed::RETRY_WITHDRAWN;
    std::thread::sleep((retry + Duration::from_millis(300)).saturating_sub(withdrawn.elapsed()));
    let (status, answer) = node.post_event(&id, std::str::from_utf8(&bodies[2]).expect("UTF-8"));
    assert_eq!(status, 201, "{answer}");
    wait_until("the match served again", || match_status(&node, &id) == 200);
    assert_eq!(node.state(&id).last_seq, 3);
    assert_eq!(node.history(&id).len(), 3);
}

#[test]
fn an_idle_node_keeps_one_subscription_and_a_stopped_node_leaves_none() {
    let redis = RedisServer::start();
    let mut con = redis.connection();
    let mut node = redis.node();
    wait_until("the feed subscribed", || {
        pubsub_clients(&mut con).len() == 1
    });
    let first = pubsub_clients(&mut con);
    // Idle for five of the feed's read timeouts: the same connection all along.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        pubsub_clients(&mut con),
        first,
        "no resubscription while idle"
    );
    node.stop();
    wait_until("the subscription closed", || {
        pubsub_clients(&mut con).is_empty()
    });
}

#[test]
fn an_unreachable_redis_is_tried_again_after_growing_pauses() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    // A stand-in that accepts connections and closes them at once: every attempt of the feed
    // fails after at most two connections (its subscription's and its commands').
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("redis://{}", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let server = std::thread::spawn({
        let (accepted, done) = (accepted.clone(), done.clone());
        move || {
            while !done.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((connection, _)) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        drop(connection);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }
    });
    let (bus, _inboxes) = matchstream_engine::bus::bus(1);
    let feed = matchstream_engine::cluster::feed::Feed::start(
        redis::Client::open(url.as_str()).expect("client"),
        &matchstream_engine::config::RedisUrl::new(url.as_str()),
        &[],
        bus,
        Arc::default(),
        Arc::default(),
        Arc::default(),
    )
    .expect("the feed starts");
    std::thread::sleep(Duration::from_millis(1500));
    feed.stop();
    done.store(true, Ordering::Relaxed);
    server.join().expect("stand-in");
    // Pauses of 100 ms doubling: attempts at 0, 0.1, 0.3, 0.7 and 1.5 s at most.
    let n = accepted.load(Ordering::Relaxed);
    assert!(n >= 1, "the feed tried");
    assert!(
        n <= 12,
        "{n} connections in 1.5 s: no pause between attempts"
    );
}

#[test]
fn a_lost_subscription_is_logged_once_lost_and_once_restored() {
    let redis = RedisServer::start();
    let mut con = redis.connection();
    let node = serve(&["--store", &redis.url()]);
    wait_until("the feed subscribed", || {
        pubsub_clients(&mut con).len() == 1
    });
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut con)
        .expect("client kill");
    assert_eq!(killed, 1);
    let count = |word: &str| {
        node.stderr
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| l.contains("redis subscription to") && l.contains(word))
            .count()
    };
    wait_until("the restored line", || count("restored") == 1);
    wait_until("subscribed again", || pubsub_clients(&mut con).len() == 1);
    // A while longer, for a repeat to show.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!((count(" lost"), count("restored")), (1, 1));
}

/// Damages event 2 of `id` in Redis and has the node's feed resubscribe: comparing, it cannot
/// follow the history and withdraws the match. Returns the genuine entry.
fn withdraw_by_damage(con: &mut redis::Connection, node: &TestServer, id: &MatchId) -> Vec<u8> {
    let history_key = format!("ms:history:{id}");
    let genuine: Vec<u8> = redis::cmd("LINDEX")
        .arg(&history_key)
        .arg(1)
        .query(con)
        .expect("lindex");
    let () = redis::cmd("LSET")
        .arg(&history_key)
        .arg(1)
        .arg("{")
        .query(con)
        .expect("lset");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(con)
        .expect("client kill");
    wait_until("the match withdrawn", || match_status(node, id) == 404);
    genuine
}

#[test]
fn a_withdrawn_match_is_read_again_at_most_once_per_interval_however_many_messages_name_it() {
    let redis = RedisServer::start();
    let node = redis.node();
    let mut con = redis.connection();
    let (id, _) = node.create_sample();
    let bodies = sample_bodies();
    post_as(&node, &id, &bodies[0], 1);
    post_as(&node, &id, &bodies[1], 2);
    // Another match, whose events (answered once delivered) mark how far the feed has read.
    let mut watcher = node.watcher();
    let other_new = matchstream_protocol::NewMatch {
        home: matchstream_protocol::TeamCode::parse("abc").expect("team"),
        visit: matchstream_protocol::TeamCode::parse("zed").expect("team"),
        ..matchstream_protocol::script::parse_script(matchstream_protocol::script::SAMPLE)
            .expect("sample")
            .new_match
    };
    let r = watcher
        .post_json(
            "/1/matches",
            &matchstream_protocol::api::new_match_body(&other_new),
        )
        .expect("create");
    assert_eq!(r.status, 201);
    let other = MatchId::new(&other_new.home, &other_new.visit, other_new.start_date);
    let mut marks = (1..).map(|seq| {
        let body = format!(r#"{{"kind":"comment","comment":"mark {seq}"}}"#);
        (seq, body)
    });
    let mut mark = |node: &TestServer| {
        let (seq, body) = marks.next().expect("a mark");
        post_as(node, &other, body.as_bytes(), seq);
    };
    mark(&node);

    withdraw_by_damage(&mut con, &node, &id);
    let before = rejected(&node);
    let state_bytes: Vec<u8> = redis::cmd("GET")
        .arg(format!("ms:match:{id}"))
        .query(&mut con)
        .expect("get");
    let state = decode_match(&state_bytes).expect("the state is intact");
    // A creation, a new incarnation and an event of the match, twice each, within the
    // retry interval: the node reads the match at most once more (once, if the interval
    // passed meanwhile on a slow machine).
    for _ in 0..2 {
        publish(&mut con, &[b"C", &state_bytes[..]].concat());
        publish(&mut con, format!("R{id}").as_bytes());
        publish(
            &mut con,
            &event_message(&comment_after(&state, "after the damage")),
        );
    }
    mark(&node);
    let read = rejected(&node) - before;
    assert!(read <= 1, "the damaged match was read {read} times");
    assert_eq!(match_status(&node, &id), 404);
    // A cancellation of a match the node does not serve is taken as said: no read at all.
    let before = rejected(&node);
    publish(&mut con, format!("X{id}").as_bytes());
    publish(&mut con, format!("X{id}").as_bytes());
    mark(&node);
    assert_eq!(rejected(&node), before);
}

#[test]
fn a_gap_the_node_cannot_fill_withdraws_the_match() {
    let redis = RedisServer::start();
    let node = redis.node();
    let mut con = redis.connection();
    let (id, _) = node.create_sample();
    let bodies = sample_bodies();
    post_as(&node, &id, &bodies[0], 1);
    post_as(&node, &id, &bodies[1], 2);
    let watcher = subscribe(node.ports[0], &format!("VERSION:2:CONNECT:g:MATCH:{id}"));
    wait_for_subscribers(&node, 1);
    // Seq 3 written without its publish, its history entry damaged (the state and seq keys
    // say 3, so the next write is 4).
    write_without_publish(&mut con, &id, "lost to damage");
    let () = redis::cmd("LSET")
        .arg(format!("ms:history:{id}"))
        .arg(2)
        .arg("{")
        .query(&mut con)
        .expect("lset");
    let before = rejected(&node);
    // Event 4's publish shows the gap; 3 cannot be read, so nothing past 2 can be delivered:
    // the node withdraws the match rather than serve a history with a hole.
    let (status, answer) = node.post_event(&id, std::str::from_utf8(&bodies[2]).expect("UTF-8"));
    assert_eq!(status, 201, "{answer}");
    let got = String::from_utf8_lossy(&read_to_close(watcher)).into_owned();
    assert!(got.ends_with("ERROR: match unavailable\r\n"), "{got:?}");
    assert!(!got.contains("lost to damage"), "{got:?}");
    assert_eq!(match_status(&node, &id), 404);
    assert!(rejected(&node) > before);
}

#[test]
fn a_gap_is_logged_once_and_a_message_at_a_delivered_seq_not_at_all() {
    let redis = RedisServer::start();
    let mut con = redis.connection();
    let mut node = serve(&["--store", &redis.url()]);
    let mut client = node.client();
    let id = {
        let script =
            matchstream_protocol::script::parse_script(matchstream_protocol::script::SAMPLE)
                .expect("sample");
        let body = matchstream_protocol::api::new_match_body(&script.new_match);
        let r = client.post_json("/1/matches", &body).expect("create");
        assert_eq!(r.status, 201);
        MatchId::new(
            &script.new_match.home,
            &script.new_match.visit,
            script.new_match.start_date,
        )
    };
    let bodies = sample_bodies();
    let mut post = |body: &[u8], seq: u64| {
        let r = client
            .post_json(&format!("/1/match/{id}/events"), body)
            .expect("post");
        assert_eq!(r.status, 201);
        assert_eq!(r.json().expect("json")["seq"].as_u64(), Some(seq));
    };
    post(&bodies[0], 1);
    write_without_publish(&mut con, &id, "never published");
    post(&bodies[1], 3);
    // Event 3 again, as stored, and another event 3: no gap either; then one more event to
    // know the feed has read past them.
    let last: Vec<u8> = redis::cmd("LINDEX")
        .arg(format!("ms:history:{id}"))
        .arg(-1)
        .query(&mut con)
        .expect("lindex");
    publish(&mut con, &[b"E", &last[..]].concat());
    let mut other = matchstream_protocol::codec::decode_event(&last).expect("event 3");
    other.kind = EventKind::Comment;
    other.data = EventData {
        comment: Some("another event 3".into()),
        ..EventData::default()
    };
    publish(&mut con, &event_message(&other));
    post(&bodies[2], 4);
    assert_eq!(node.terminate(), Some(0));
    wait_until("the log's last line", || {
        node.stderr
            .lock()
            .is_ok_and(|l| l.last().is_some_and(|l| l.ends_with("] stopped")))
    });
    let lines = node.stderr.lock().expect("log").clone();
    let gaps: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("reading the missing ones"))
        .collect();
    assert_eq!(gaps.len(), 1, "{lines:?}");
    assert!(gaps[0].contains("event 3 after 1"), "{gaps:?}");
}
