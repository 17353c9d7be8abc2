//! The operations figures of `GET /1/stats` and `GET /metrics` (issue 13, item 2) against
//! real servers under real traffic: publish→flush latency counted once per event delivered
//! on each core, queued outbox bytes while a subscriber does not read, the store thread's
//! batches, the bus depth's peak, API requests by route and status, the busiest matches, and
//! on Redis the feed's events, lag and the gaps it fills.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use matchstream_engine::Config;
use matchstream_protocol::codec::{decode_match, encode_event, encode_match};
use matchstream_protocol::frame::Version;
use matchstream_protocol::state::apply;
use matchstream_protocol::{Event, EventData, EventKind, MatchId};
use serde_json::Value;

/// `GET /1/stats` as JSON.
fn stats(server: &TestServer) -> Value {
    server
        .reader()
        .get("/1/stats")
        .expect("stats")
        .json()
        .expect("json")
}

/// `GET /metrics`.
fn metrics(server: &TestServer) -> String {
    let r = server.reader().get("/metrics").expect("metrics");
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).expect("utf-8")
}

/// The value of the sample `series` (name and labels, exactly) in a `/metrics` text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The `node` label of a server's series.
fn node_id(server: &TestServer) -> String {
    stats(server)["node_id"]
        .as_str()
        .expect("node id")
        .to_owned()
}

/// The publish→flush count of each core.
fn flush_counts(server: &TestServer) -> Vec<u64> {
    stats(server)["cores"]
        .as_array()
        .expect("cores")
        .iter()
        .map(|c| c["publish_to_flush_us"]["count"].as_u64().expect("count"))
        .collect()
}

/// Posts `body` to the match and expects 201.
fn post(server: &TestServer, id: &MatchId, body: &[u8]) {
    let r = server
        .watcher()
        .post_json(&format!("/1/match/{id}/events"), body)
        .expect("post");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// Reads from `s` until it has `want`'s length, and compares.
fn read_exactly(s: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).expect("the stream");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "a subscriber's stream"
    );
}

#[test]
fn publish_to_flush_counts_every_event_delivered_on_each_core() {
    // Sweeps every 500 ms: the busiest matches are published at each.
    let server = TestServer::start_with(Config {
        sse_keepalive_ms: 500,
        ..test_config()
    });
    let (id, _) = server.create_sample();
    let created = server.state(&id);
    // Another match, with no subscriber anywhere: its events are not counted.
    let quiet = server
        .watcher()
        .post_json(
            "/1/matches",
            br#"{"home":"abc","visit":"xyz","start_date":"2011-09-11"}"#,
        )
        .expect("create");
    assert_eq!(quiet.status, 201);
    let quiet_id = MatchId::parse("abc-xyz-2011-09-11").expect("id");
    // Three v2 subscribers on core 0, two on core 1, waiting for the kick-off.
    let mut subs: Vec<TcpStream> = [0, 0, 0, 1, 1]
        .iter()
        .enumerate()
        .map(|(n, &core)| {
            subscribe(
                server.ports[core],
                &format!("VERSION:2:CONNECT:u{n}:MATCH:{id}"),
            )
        })
        .collect();
    wait_for_subscribers(&server, 5);
    assert_eq!(flush_counts(&server), [0, 0], "no event yet");

    let bodies = sample_bodies();
    let events = 6;
    for body in &bodies[..events] {
        post(&server, &id, body);
    }
    post(&server, &quiet_id, br#"{"kind":"start"}"#);
    let want = expected_stream(&created, &server.history(&id), Version::V2);
    for s in &mut subs {
        read_exactly(s, &want);
    }
    wait_until("every event counted on both cores", || {
        flush_counts(&server) == [events as u64; 2]
    });
    let v = stats(&server);
    for core in v["cores"].as_array().expect("cores") {
        let h = &core["publish_to_flush_us"];
        assert_eq!(
            h["buckets"].as_array().map(Vec::len),
            h["le"].as_array().map(Vec::len)
        );
        assert!(
            h["sum"].as_u64().expect("sum") > 0,
            "latencies take time: {h}"
        );
    }
    let text = metrics(&server);
    let node = node_id(&server);
    for (core, port) in server.ports.iter().enumerate() {
        let labels = format!("node=\"{node}\",core=\"{core}\",port=\"{port}\"");
        for series in [
            format!("matchstream_publish_to_flush_seconds_count{{{labels}}}"),
            format!("matchstream_publish_to_flush_seconds_bucket{{{labels},le=\"+Inf\"}}"),
        ] {
            assert_eq!(sample(&text, &series), Some(events as f64), "{series}");
        }
        let le = format!("matchstream_publish_to_flush_seconds_bucket{{{labels},le=\"10\"}}");
        assert_eq!(sample(&text, &le), Some(events as f64), "{le}: under 10 s");
    }
    assert!(text.contains("# TYPE matchstream_publish_to_flush_seconds histogram\n"));

    // The busiest matches: the one with the five subscribers; the quiet one has none.
    wait_until("the busiest matches published", || {
        stats(&server)["busiest_matches"]
            == serde_json::json!([{"match": id.as_str(), "subscribers": 5}])
    });
    let text = metrics(&server);
    let series = format!("matchstream_match_subscribers{{node=\"{node}\",match=\"{id}\"}}");
    assert_eq!(sample(&text, &series), Some(5.0));
}

#[test]
fn queued_bytes_show_what_a_subscriber_has_not_taken_yet() {
    let server = TestServer::start_with(Config {
        max_queue: 16 << 20,
        ..test_config()
    });
    let (id, _, _) = started_sample(&server);
    // A subscriber that reads nothing for now, with a small receive buffer and a small
    // segment size: the server's send buffer, which the kernel sizes by segments (64 KiB on
    // loopback), stays small too, and the rest waits in the outbox.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket.set_mss(536).expect("mss");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], server.ports[1]).into();
    socket.connect(&addr.into()).expect("connect");
    let mut slow: TcpStream = socket.into();
    slow.write_all(format!("VERSION:2:CONNECT:slow:MATCH:{id}\r\n").as_bytes())
        .expect("command");
    wait_for_subscribers(&server, 1);
    let comment = format!(r#"{{"kind":"comment","comment":"{}"}}"#, "x".repeat(1000));
    let queued = |server: &TestServer| -> Vec<u64> {
        stats(server)["cores"]
            .as_array()
            .expect("cores")
            .iter()
            .map(|c| c["queued_bytes"].as_u64().expect("queued_bytes"))
            .collect()
    };
    for _ in 0..400 {
        post(&server, &id, comment.as_bytes());
    }
    let held = queued(&server);
    assert_eq!(held[0], 0, "no subscriber on core 0");
    assert!(
        held[1] > 100_000,
        "400 KB sent to a reader that takes none: {held:?}"
    );
    let node = node_id(&server);
    let series = format!(
        "matchstream_queued_bytes{{node=\"{node}\",core=\"1\",port=\"{}\"}}",
        server.ports[1]
    );
    assert!(sample(&metrics(&server), &series).is_some_and(|v| v > 0.0));

    // The subscriber reads: the queue empties, and the figure with it.
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        while total < 400 * 1000 {
            match slow.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        (slow, total)
    });
    wait_until("the queue emptied", || queued(&server) == [0, 0]);
    let (_slow, total) = reader.join().expect("reader");
    assert!(total >= 400 * 1000, "{total}");
}

#[test]
fn requests_are_counted_by_route_and_status() {
    let server = TestServer::start();
    let mut reader = server.reader();
    assert_eq!(reader.get("/no/such/path").expect("get").status, 404);
    assert_eq!(
        reader
            .get("/1/match/aaa-bbb-2011-01-01")
            .expect("get")
            .status,
        404
    );
    assert_eq!(reader.delete("/1/stats").expect("delete").status, 405);
    assert_eq!(
        reader.post_json("/1/matches", b"{}").expect("post").status,
        401
    );
    server.create_sample();
    let again = server
        .watcher()
        .post_json(
            "/1/matches",
            br#"{"home":"elp","visit":"tig","start_date":"2011-09-10"}"#,
        )
        .expect("post");
    assert_eq!(again.status, 409);

    let v = stats(&server);
    let count = |route: &str, status: u64| {
        v["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .find(|r| r["route"] == route && r["status"] == status)
            .map_or(0, |r| r["count"].as_u64().expect("count"))
    };
    assert_eq!(count("other", 404), 1, "{}", v["requests"]);
    assert_eq!(count("match", 404), 1);
    assert_eq!(count("other", 405), 1);
    assert_eq!(count("create_match", 401), 1);
    assert_eq!(count("create_match", 201), 1);
    assert_eq!(count("create_match", 409), 1);
    assert_eq!(count("match", 200), 0);
    let node = node_id(&server);
    let text = metrics(&server);
    for (route, status, n) in [("create_match", 201, 1.0), ("other", 404, 1.0)] {
        let series = format!(
            "matchstream_api_requests_total{{node=\"{node}\",route=\"{route}\",status=\"{status}\"}}"
        );
        assert_eq!(sample(&text, &series), Some(n), "{series}");
    }
    // The stats requests themselves, once answered.
    let series =
        format!("matchstream_api_requests_total{{node=\"{node}\",route=\"stats\",status=\"200\"}}");
    assert!(sample(&text, &series).is_some_and(|n| n >= 2.0), "{series}");
}

#[test]
fn the_store_thread_and_the_bus_show_their_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(Config {
        store: matchstream_engine::config::StoreSpec::Embedded(dir.path().to_owned()),
        ..test_config()
    });
    let before = stats(&server)["store"].clone();
    let (id, _, _) = started_sample(&server);
    for body in &sample_bodies()[1..6] {
        post(&server, &id, body);
    }
    let v = stats(&server);
    let store = &v["store"];
    let n = |v: &Value, key: &str| v[key].as_u64().unwrap_or_else(|| panic!("{key}: {v}"));
    // One create and six events, each waited for: at least one batch each.
    assert!(n(store, "batches") >= n(&before, "batches") + 7, "{store}");
    assert!(n(store, "ops") >= n(&before, "ops") + 7, "{store}");
    assert_eq!(n(&store["commit_us"], "count"), n(store, "batches"));
    assert_eq!(n(&store["batch_size"], "count"), n(store, "batches"));
    assert!(
        n(&store["commit_us"], "sum") > 0,
        "an embedded commit syncs to disk"
    );
    assert!(n(store, "queue_depth_peak_60s") >= 1, "{store}");
    assert_eq!(n(store, "queue_depth"), 0, "nothing waits now");
    for core in v["cores"].as_array().expect("cores") {
        assert!(
            n(core, "bus_depth_peak_60s") >= 1,
            "every event came over the bus: {core}"
        );
        assert!(core["cpu_seconds"].as_f64().is_some(), "{core}");
    }
    assert!(v["process"]["cpu_seconds"].as_f64().expect("cpu") > 0.0);
    assert!(v["feed"].is_null(), "no Redis, no feed");
    let text = metrics(&server);
    let node = node_id(&server);
    for series in [
        format!("matchstream_store_batches_total{{node=\"{node}\"}}"),
        format!("matchstream_store_commit_seconds_count{{node=\"{node}\"}}"),
        format!("matchstream_store_batch_size_bucket{{node=\"{node}\",le=\"+Inf\"}}"),
        format!("matchstream_process_cpu_seconds_total{{node=\"{node}\"}}"),
    ] {
        assert!(sample(&text, &series).is_some_and(|v| v > 0.0), "{series}");
    }
    assert!(!text.contains("matchstream_feed_"), "no feed series");
}

/// Commits the next event (a comment) to the match's keys as the store's script does, but
/// publishes nothing: a publish lost on the way.
fn write_without_publish(con: &mut redis::Connection, id: &MatchId) -> Event {
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(format!("ms:match:{id}"))
        .query(con)
        .expect("the stored state");
    let mut state = decode_match(&stored).expect("a valid stored state");
    let event = Event {
        match_id: id.clone(),
        seq: state.last_seq + 1,
        timestamp_ms: state.updated_ms + 1,
        kind: EventKind::Comment,
        data: EventData {
            comment: Some("written, never published".into()),
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
fn the_feed_counts_its_events_their_lag_and_the_gaps_it_fills() {
    let redis = RedisServer::start();
    let (a, b) = (redis.node(), redis.node());
    let (id, _, _) = started_sample(&a);
    for body in &sample_bodies()[1..3] {
        post(&a, &id, body);
    }
    let feed = |node: &TestServer| stats(node)["feed"].clone();
    let n = |v: &Value, key: &str| v[key].as_u64().unwrap_or_else(|| panic!("{key}: {v}"));
    // Every node hears every event on the channel, its own writes included.
    for node in [&a, &b] {
        wait_until("three events fed", || n(&feed(node), "events") == 3);
        let f = feed(node);
        assert_eq!(n(&f["lag_ms"], "count"), 3, "{f}");
        assert_eq!((n(&f, "gap_fills"), n(&f, "gap_filled_events")), (0, 0));
    }

    // Seq 4 lands in Redis unannounced; seq 5's publish shows the gap, filled from history.
    let mut con = redis.connection();
    assert_eq!(write_without_publish(&mut con, &id).seq, 4);
    post(&a, &id, &sample_bodies()[3]);
    for node in [&a, &b] {
        wait_until("the gap filled", || {
            let f = feed(node);
            n(&f, "events") == 5 && n(&f, "gap_fills") == 1
        });
        let f = feed(node);
        // One read of the history: seq 4, and 5 (whose message showed the gap) with it.
        assert_eq!(
            (n(&f, "gap_fills"), n(&f, "gap_filled_events")),
            (1, 2),
            "{f}"
        );
        assert_eq!(n(&f["lag_ms"], "count"), 5);
        let node_id = node_id(node);
        let text = metrics(node);
        let series = format!("matchstream_feed_gap_fills_total{{node=\"{node_id}\"}}");
        assert_eq!(sample(&text, &series), Some(1.0), "{series}");
        let series = format!("matchstream_feed_lag_seconds_count{{node=\"{node_id}\"}}");
        assert_eq!(sample(&text, &series), Some(5.0), "{series}");
    }

    // Each node lists the other's API address, for tools that poll the cluster.
    wait_until("b lists a's API", || {
        stats(&b)["cluster"]
            .as_array()
            .is_some_and(|c| !c.is_empty() && c.iter().all(|p| p["api"] == a.api.to_string()))
    });
}
