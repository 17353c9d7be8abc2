//! Many nodes on one Redis (SPEC §6): real node processes sharing a real `redis-server`.

mod common;

use std::collections::HashSet;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use matchstream_client::HttpClient;
use matchstream_protocol::api::posted_event_body;
use matchstream_protocol::frame::{render_event, Version};
use matchstream_protocol::script::{parse_script, Step, SAMPLE};
use matchstream_protocol::MatchId;

fn nodes(redis: &RedisServer, n: usize) -> Vec<Node> {
    let store = redis.url();
    (0..n).map(|_| serve(&["--store", &store])).collect()
}

fn sample_events() -> Vec<Vec<u8>> {
    parse_script(SAMPLE)
        .expect("sample")
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Event(e) => Some(posted_event_body(e)),
            Step::Sleep(_) => None,
        })
        .collect()
}

fn create_sample(client: &mut HttpClient) -> MatchId {
    let script = parse_script(SAMPLE).expect("sample");
    let r = client
        .post_json(
            "/1/matches",
            &matchstream_protocol::api::new_match_body(&script.new_match),
        )
        .expect("create");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    MatchId::parse("elp-tig-2011-09-10").expect("id")
}

/// Waits (bounded) until a node knows the match (its feed delivered the creation).
fn wait_known(node: &Node, id: &MatchId) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while node
        .client()
        .get(&format!("/1/match/{id}"))
        .expect("get")
        .status
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "node {} never learnt of {id}",
            node.api
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One v2 subscriber of `id` on stream port `port` of every node, registered, each read to
/// its close on its own thread.
fn watch_on_each(
    nodes: &[Node],
    port: usize,
    user: &str,
    id: &MatchId,
) -> Vec<std::thread::JoinHandle<Vec<u8>>> {
    let readers = nodes
        .iter()
        .map(|n| {
            let s = subscribe(
                n.ports[port],
                &format!("VERSION:2:CONNECT:{user}:MATCH:{id}"),
            );
            std::thread::spawn(move || read_to_close(s))
        })
        .collect();
    for n in nodes {
        wait_subscribers(n, 1);
    }
    readers
}

/// Waits (bounded) until a node's view of the match reaches `seq`.
fn wait_seq(client: &mut HttpClient, id: &MatchId, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(client, id).last_seq < seq {
        assert!(
            Instant::now() < deadline,
            "a node never caught up to seq {seq}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn subscribers_on(node: &Node) -> u64 {
    core_sum(&mut node.client(), "subscribers")
}

fn wait_subscribers(node: &Node, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscribers_on(node) < n {
        assert!(
            Instant::now() < deadline,
            "node {} has {} of {n} subscribers",
            node.api,
            subscribers_on(node)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_nodes_deliver_the_identical_complete_stream_to_every_subscriber() {
    let redis = RedisServer::start();
    let nodes = nodes(&redis, 3);
    let id = create_sample(&mut nodes[0].client());
    let events = sample_events();
    let r = nodes[1]
        .client()
        .post_json(&format!("/1/match/{id}/events"), &events[0])
        .expect("start");
    assert_eq!(r.status, 201);
    for n in &nodes {
        wait_known(n, &id);
    }
    let after_start = state(&mut nodes[2].client(), &id);
    assert_eq!(after_start.last_seq, 1);
    let mut readers = Vec::new();
    for (k, node) in nodes.iter().enumerate() {
        for (j, port) in node.ports.iter().enumerate() {
            for (version, line) in [(Version::V1, "VERSION:1"), (Version::V2, "VERSION:2")] {
                let s = subscribe(*port, &format!("{line}:CONNECT:n{k}c{j}:MATCH:{id}"));
                readers.push((version, k, std::thread::spawn(move || read_to_close(s))));
            }
        }
    }
    for node in &nodes {
        wait_subscribers(node, 4);
    }
    let mut clients: Vec<HttpClient> = nodes.iter().map(Node::client).collect();
    for (i, body) in events[1..].iter().enumerate() {
        let r = clients[i % 3]
            .post_json(&format!("/1/match/{id}/events"), body)
            .expect("post");
        assert_eq!(
            r.status,
            201,
            "event {}: {}",
            i + 2,
            String::from_utf8_lossy(&r.body)
        );
    }
    // Writes are visible at once on the node that took them, on the others as soon as their
    // feed delivers them.
    for c in &mut clients {
        wait_seq(c, &id, events.len() as u64);
    }
    let history = history(&mut clients[0], &id);
    assert_eq!(history.len(), events.len());
    for (version, node, reader) in readers {
        let got = reader.join().expect("reader");
        let expected = expected_stream(&after_start, &history[1..], version);
        assert!(
            got == expected,
            "a {version:?} subscriber on node {node} got a different stream ({} vs {} bytes)",
            got.len(),
            expected.len()
        );
    }
    // Every node serves the same history.
    for c in &mut clients {
        assert_eq!(self::history(c, &id), history);
    }
}

#[test]
fn concurrent_watchers_on_different_nodes_get_strictly_increasing_seqs_and_one_order() {
    let redis = RedisServer::start();
    let nodes = nodes(&redis, 2);
    let id = create_sample(&mut nodes[0].client());
    assert_eq!(
        nodes[0]
            .client()
            .post_json(&format!("/1/match/{id}/events"), br#"{"kind":"start"}"#)
            .expect("start")
            .status,
        201
    );
    wait_known(&nodes[1], &id);
    let after_start = state(&mut nodes[1].client(), &id);
    let subs = watch_on_each(&nodes, 0, "w", &id);
    let per_watcher = 150;
    let watchers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(w, n)| {
            let mut client = n.client();
            let path = format!("/1/match/{id}/events");
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..per_watcher {
                    let body = format!(r#"{{"kind":"comment","comment":"watcher {w} note {i}"}}"#);
                    let r = client.post_json(&path, body.as_bytes()).expect("post");
                    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
                    seqs.push(r.json().expect("json")["seq"].as_u64().expect("seq"));
                }
                seqs
            })
        })
        .collect();
    let mut all = HashSet::new();
    for w in watchers {
        let seqs = w.join().expect("watcher");
        assert!(
            seqs.windows(2).all(|p| p[0] < p[1]),
            "a watcher's seqs went backwards"
        );
        all.extend(seqs);
    }
    assert_eq!(all.len(), 2 * per_watcher);
    assert_eq!(
        nodes[1]
            .client()
            .post_json(&format!("/1/match/{id}/events"), br#"{"kind":"stop"}"#)
            .expect("stop")
            .status,
        201
    );
    // The stop was acknowledged by node 1; node 0 has it once its feed has delivered it.
    let last = 2 * per_watcher as u64 + 2;
    wait_seq(&mut nodes[0].client(), &id, last);
    let history = history(&mut nodes[0].client(), &id);
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=last).collect::<Vec<_>>(),
        "gap or repeat in the history"
    );
    let expected = expected_stream(&after_start, &history[1..], Version::V2);
    for s in subs {
        let got = s.join().expect("sub");
        if got != expected {
            let (g, e) = (
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
            );
            let at = g
                .bytes()
                .zip(e.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(g.len().min(e.len()));
            panic!(
                "a subscriber saw another stream ({} vs {} bytes); from byte {at}: got {:?} expected {:?}",
                got.len(),
                expected.len(),
                &g[at.saturating_sub(100)..(at + 200).min(g.len())],
                &e[at.saturating_sub(100)..(at + 200).min(e.len())]
            );
        }
    }
}

/// Reads whole v2 frames from `s` until the connection ends; returns the frames and whether
/// the stream ended after `stop`.
fn read_v2_frames(s: TcpStream) -> (Vec<String>, String) {
    let bytes = read_to_close(s);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let frames = text
        .split_inclusive("\n\r\n")
        .filter(|f| f.ends_with("\n\r\n"))
        .map(str::to_owned)
        .collect();
    (frames, text)
}

/// [`read_v2_frames`], publishing how many whole frames arrived so far.
fn read_v2_frames_counting(mut s: TcpStream, count: &AtomicUsize) -> (Vec<String>, String) {
    use std::io::Read;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
        let whole = bytes.windows(3).filter(|w| w == b"\n\r\n").count();
        count.store(whole, Ordering::Release);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let frames = text
        .split_inclusive("\n\r\n")
        .filter(|f| f.ends_with("\n\r\n"))
        .map(str::to_owned)
        .collect();
    (frames, text)
}

fn seq_of(frame: &str) -> u64 {
    frame
        .lines()
        .nth(1)
        .and_then(|l| l.trim().strip_prefix("seq: "))
        .and_then(|s| s.parse().ok())
        .expect("v2 frame")
}

#[test]
fn subscribers_of_a_killed_node_resume_on_another_and_miss_nothing() {
    let redis = RedisServer::start();
    let mut nodes = nodes(&redis, 2);
    let id = create_sample(&mut nodes[1].client());
    let events = sample_events();
    let mut watcher = nodes[1].client();
    let post = |w: &mut HttpClient, body: &[u8]| {
        let r = w
            .post_json(&format!("/1/match/{id}/events"), body)
            .expect("post");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    };
    post(&mut watcher, &events[0]);
    wait_known(&nodes[0], &id);
    // Known is not enough: the start must have reached node 0 too, or a status frame counts 0.
    wait_seq(&mut nodes[0].client(), &id, 1);
    let victims: Vec<TcpStream> = (0..10)
        .map(|i| {
            subscribe(
                nodes[0].ports[i % 2],
                &format!("VERSION:2:CONNECT:v{i}:MATCH:{id}"),
            )
        })
        .collect();
    wait_subscribers(&nodes[0], 10);
    let frames_read: Vec<Arc<AtomicUsize>> = (0..10).map(|_| Arc::default()).collect();
    let readers: Vec<_> = victims
        .into_iter()
        .zip(&frames_read)
        .map(|(s, count)| {
            let count = count.clone();
            std::thread::spawn(move || read_v2_frames_counting(s, &count))
        })
        .collect();
    for body in &events[1..8] {
        post(&mut watcher, body);
    }
    // Every client has its status and the 7 events, then the node dies under them.
    let deadline = Instant::now() + Duration::from_secs(20);
    while frames_read.iter().any(|c| c.load(Ordering::Acquire) < 8) {
        assert!(
            Instant::now() < deadline,
            "the frames did not arrive: {frames_read:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    nodes[0].child.kill().expect("kill -9");
    nodes[0].child.wait().expect("wait");
    let first_parts: Vec<Vec<String>> = readers
        .into_iter()
        .map(|r| r.join().expect("reader").0)
        .collect();
    // The dead node drops out of the registry within its heartbeat's lifetime (4 s).
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let v = nodes[1]
            .client()
            .get("/1/stats")
            .expect("stats")
            .json()
            .expect("json");
        let ports: Vec<u64> = v["cluster"]
            .as_array()
            .expect("cluster")
            .iter()
            .map(|p| p["port"].as_u64().unwrap_or(0))
            .collect();
        if !nodes[0]
            .ports
            .iter()
            .any(|p| ports.contains(&u64::from(*p)))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed node is still registered: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The rest of the match goes on while they reconnect.
    let rest = std::thread::spawn({
        let mut watcher = nodes[1].client();
        let events = events.clone();
        let id = id.clone();
        move || {
            for body in &events[8..] {
                let r = watcher
                    .post_json(&format!("/1/match/{id}/events"), body)
                    .expect("post");
                assert_eq!(r.status, 201);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let mut resumed = Vec::new();
    for (i, frames) in first_parts.iter().enumerate() {
        let last = frames.last().map_or(0, |f| seq_of(f));
        // Check in again (the dead node drops out of checkin within its heartbeat TTL; until
        // then a client retries, as a v2 client does on a refused connection).
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            let v = nodes[1]
                .client()
                .get("/1/checkin")
                .expect("checkin")
                .json()
                .expect("json");
            let port = v["port"].as_u64().expect("port") as u16;
            // Until its heartbeat expires, checkin may still name the dead node. Its ports
            // are then refused — or, on a busy test machine, already reused by some other
            // process; either way the client checks in again.
            let refused = nodes[0].ports.contains(&port);
            let connected = if refused {
                Err(std::io::ErrorKind::ConnectionRefused.into())
            } else {
                TcpStream::connect(("127.0.0.1", port))
            };
            match connected {
                Ok(mut s) => {
                    use std::io::Write;
                    s.set_read_timeout(Some(Duration::from_secs(20)))
                        .expect("timeout");
                    s.write_all(
                        format!("VERSION:2:CONNECT:v{i}:MATCH:{id}:SINCE:{last}\r\n").as_bytes(),
                    )
                    .expect("send");
                    break s;
                }
                Err(_) => {
                    assert!(
                        Instant::now() < deadline,
                        "checkin kept naming the dead node"
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        };
        resumed.push(std::thread::spawn(move || read_v2_frames(stream)));
    }
    rest.join().expect("watcher");
    let history = history(&mut nodes[1].client(), &id);
    for (first, second) in first_parts.into_iter().zip(resumed) {
        let (second, raw) = second.join().expect("resumed");
        // The status frame names the last event it includes (start, seq 1); then 7 events.
        assert_eq!(first.len(), 8, "status and 7 events before the kill");
        assert_eq!(seq_of(&first[0]), 1);
        let from = 2;
        let seqs: Vec<u64> = first
            .iter()
            .skip(1)
            .chain(second.iter())
            .map(|f| seq_of(f))
            .collect();
        assert_eq!(
            seqs,
            (from..=history.len() as u64).collect::<Vec<_>>(),
            "lost or repeated events; resumed read {raw:?}"
        );
        let mut expected = Vec::new();
        for e in &history[seqs[0] as usize - 1..] {
            render_event(e, Version::V2, &mut expected);
        }
        let got: String = first.iter().skip(1).chain(second.iter()).cloned().collect();
        assert_eq!(got, String::from_utf8_lossy(&expected));
    }
}

#[test]
fn writes_fail_cleanly_while_redis_is_down_and_nothing_is_missed_after_it_returns() {
    let mut redis = RedisServer::start();
    let nodes = nodes(&redis, 2);
    let id = create_sample(&mut nodes[0].client());
    let events = sample_events();
    let mut watcher = nodes[0].client();
    assert_eq!(
        watcher
            .post_json(&format!("/1/match/{id}/events"), &events[0])
            .expect("start")
            .status,
        201
    );
    wait_known(&nodes[1], &id);
    let after_start = state(&mut nodes[1].client(), &id);
    let subs = watch_on_each(&nodes, 1, "r", &id);
    for body in &events[1..5] {
        assert_eq!(
            watcher
                .post_json(&format!("/1/match/{id}/events"), body)
                .expect("post")
                .status,
            201
        );
    }
    redis.kill();
    let r = watcher
        .post_json(&format!("/1/match/{id}/events"), &events[5])
        .expect("post while down");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json().expect("json")["error"]
        .as_str()
        .expect("error")
        .contains("redis"));
    // Reads of the local view keep working.
    assert_eq!(
        nodes[1]
            .client()
            .get(&format!("/1/match/{id}/history"))
            .expect("history")
            .status,
        200
    );
    redis.restart();
    // Writes come back by themselves (reconnection with backoff).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut next = 5;
    while next < events.len() {
        let r = watcher
            .post_json(&format!("/1/match/{id}/events"), &events[next])
            .expect("post");
        if r.status == 201 {
            next += 1;
        } else {
            assert_eq!(r.status, 503);
            assert!(Instant::now() < deadline, "writes never came back");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    wait_seq(&mut nodes[1].client(), &id, events.len() as u64);
    let history = history(&mut nodes[1].client(), &id);
    assert_eq!(history.len(), events.len());
    let expected = expected_stream(&after_start, &history[1..], Version::V2);
    for s in subs {
        let got = s.join().expect("sub");
        assert!(
            got == expected,
            "a subscriber missed events across the Redis restart: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    let log = nodes[0].stderr.lock().expect("log").join("\n");
    assert_eq!(
        log.matches("unavailable").count(),
        1,
        "one warning per state change, not a storm:\n{log}"
    );
}

#[test]
fn a_restarted_node_serves_the_same_matches_and_history_and_checkin_spans_the_cluster() {
    let redis = RedisServer::start();
    let mut nodes = nodes(&redis, 2);
    let id = create_sample(&mut nodes[0].client());
    let events = sample_events();
    for body in &events[..6] {
        assert_eq!(
            nodes[0]
                .client()
                .post_json(&format!("/1/match/{id}/events"), body)
                .expect("post")
                .status,
            201
        );
    }
    let before = history(&mut nodes[0].client(), &id);
    // Each node sees the other in the registry.
    let deadline = Instant::now() + Duration::from_secs(5);
    while nodes[0]
        .client()
        .get("/1/stats")
        .expect("stats")
        .json()
        .expect("json")["cluster"]
        .as_array()
        .map_or(0, Vec::len)
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "node 0 never saw node 1's two ports"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(nodes[1].terminate(), Some(0));
    let again = serve(&["--store", &redis.url()]);
    assert_eq!(
        again
            .client()
            .get("/1/matches")
            .expect("list")
            .json()
            .expect("json"),
        serde_json::json!([id.as_str()])
    );
    assert_eq!(history(&mut again.client(), &id), before);

    // Checkin on node 0 sends clients to the other node's ports once node 0 is busier.
    let _busy: Vec<TcpStream> = nodes[0]
        .ports
        .iter()
        .map(|p| subscribe(*p, &format!("VERSION:2:CONNECT:b:MATCH:{id}")))
        .collect();
    wait_subscribers(&nodes[0], 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = nodes[0]
            .client()
            .get("/1/checkin")
            .expect("checkin")
            .json()
            .expect("json");
        if again
            .ports
            .contains(&(v["port"].as_u64().expect("port") as u16))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "checkin never named the idle node: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends one inline command to Redis and returns its reply line.
fn redis_command(redis: &RedisServer, command: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut s = TcpStream::connect(("127.0.0.1", redis.port)).expect("connect to redis");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(format!("{command}\r\n").as_bytes())
        .expect("send");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("reply");
    line.trim_end().to_owned()
}

#[test]
fn feeds_cut_off_while_a_node_writes_catch_up_and_every_subscriber_gets_one_exact_stream() {
    let redis = RedisServer::start();
    let nodes = nodes(&redis, 2);
    let id = create_sample(&mut nodes[1].client());
    let events = sample_events();
    let mut watcher = nodes[1].client();
    let r = watcher
        .post_json(&format!("/1/match/{id}/events"), &events[0])
        .expect("start");
    assert_eq!(r.status, 201);
    for n in &nodes {
        wait_seq(&mut n.client(), &id, 1);
    }
    let after_start = state(&mut nodes[0].client(), &id);
    assert_eq!(after_start.last_seq, 1);
    let mut readers = Vec::new();
    for (k, node) in nodes.iter().enumerate() {
        for port in &node.ports {
            let s = subscribe(*port, &format!("VERSION:2:CONNECT:f{k}:MATCH:{id}"));
            readers.push((k, std::thread::spawn(move || read_to_close(s))));
        }
    }
    for node in &nodes {
        wait_subscribers(node, 2);
    }
    // The watcher writes on node 1 while every feed's subscription is killed, three times:
    // events published meanwhile are lost to the feeds, which must fetch them from the
    // history after resubscribing (or on the next event's gap).
    let writer = std::thread::spawn({
        let id = id.clone();
        let events = events.clone();
        move || {
            for body in &events[1..] {
                let r = watcher
                    .post_json(&format!("/1/match/{id}/events"), body)
                    .expect("post");
                assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    let mut killed = 0;
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(40));
        let reply = redis_command(&redis, "CLIENT KILL TYPE pubsub");
        killed += reply
            .strip_prefix(':')
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("CLIENT KILL answered {reply:?}"));
    }
    assert!(killed >= 2, "both nodes' feeds were cut at least once");
    writer.join().expect("writer");
    let mut clients: Vec<HttpClient> = nodes.iter().map(Node::client).collect();
    for c in &mut clients {
        wait_seq(c, &id, events.len() as u64);
    }
    let history = history(&mut clients[1], &id);
    assert_eq!(history.len(), events.len());
    let expected = expected_stream(&after_start, &history[1..], Version::V2);
    for (node, reader) in readers {
        let got = reader.join().expect("reader");
        if got != expected {
            let at = got
                .iter()
                .zip(&expected)
                .take_while(|(a, b)| a == b)
                .count();
            panic!(
                "a subscriber on node {node} got a different stream ({} vs {} bytes) from byte {at}: got {:?}, want {:?}",
                got.len(),
                expected.len(),
                String::from_utf8_lossy(&got[at.saturating_sub(150)..(at + 150).min(got.len())]),
                String::from_utf8_lossy(&expected[at.saturating_sub(150)..(at + 150).min(expected.len())])
            );
        }
    }
    assert_eq!(self::history(&mut clients[0], &id), history);
}
