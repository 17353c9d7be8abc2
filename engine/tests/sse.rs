//! End-to-end tests of the browser stream, `GET /1/match/<id>/stream` (SPEC §8), against a
//! real 2-core server: what a client of the API port receives, byte for byte, without a
//! browser (the head, the status, every event, resumes, the keep-alive, last words), and that
//! SSE subscribers are subscribers like the stream ports' (shared fanout, the same bound, the
//! same counts).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use matchstream_engine::Config;
use matchstream_protocol::frame::Version;
use matchstream_protocol::{sse, Event, Match, MatchId};

/// The head of every stream.
const HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                    Access-Control-Allow-Origin: *\r\nCache-Control: no-cache\r\n\
                    Connection: close\r\n\r\n";

/// Opens a stream: `GET <target>` with `headers` (each ending in `\r\n`) added.
fn open_stream(api: SocketAddr, target: &str, headers: &str) -> TcpStream {
    let mut s = TcpStream::connect(api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(
        format!(
            "GET {target} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{headers}\r\n"
        )
        .as_bytes(),
    )
    .expect("send the request");
    s
}

/// What a stream must carry: the head, the status (unless it resumes), every event.
fn expected(status: Option<&Match>, events: &[Event]) -> Vec<u8> {
    let mut out = HEAD.as_bytes().to_vec();
    if let Some(m) = status {
        sse::render_status(m, &mut out);
    }
    for e in events {
        sse::render_event(e, &mut out);
    }
    out
}

/// Fails naming the first differing byte.
fn assert_same(got: &[u8], want: &[u8], who: &str) {
    if got != want {
        let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
        panic!(
            "{who}: streams differ at byte {at} (got {} bytes, want {}): got {:?}, want {:?}",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[at.saturating_sub(100)..(at + 100).min(got.len())]),
            String::from_utf8_lossy(&want[at.saturating_sub(100)..(at + 100).min(want.len())])
        );
    }
}

/// Reads exactly `n` bytes.
fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    s.read_exact(&mut out).expect("read");
    out
}

/// Reads `n` bytes that follow any keep-alive comments (one may come before a slow post's
/// event).
fn read_past_keepalives(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if out.starts_with(b":\n\n") {
            out.drain(..3);
        }
        if out.len() == n {
            return out;
        }
        s.read_exact(&mut byte).expect("read");
        out.push(byte[0]);
    }
}

/// The per-core values of one counter of `GET /1/stats`.
fn per_core(server: &TestServer, key: &str) -> Vec<u64> {
    let v = server
        .reader()
        .get("/1/stats")
        .expect("stats")
        .json()
        .expect("json");
    v["cores"]
        .as_array()
        .expect("cores")
        .iter()
        .map(|c| c[key].as_u64().unwrap_or(0))
        .collect()
}

fn post_comment(watcher: &mut matchstream_client::HttpClient, id: &MatchId, i: usize, len: usize) {
    let text = format!("{i:06}{}", "c".repeat(len.saturating_sub(6)));
    let body = format!(r#"{{"kind":"comment","comment":"{text}"}}"#);
    let r = watcher
        .post_json(&format!("/1/match/{id}/events"), body.as_bytes())
        .expect("post");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn sse_subscribers_on_both_cores_receive_the_whole_match_byte_for_byte() {
    let server = TestServer::start();
    let (id, script, after_start) = started_sample(&server);
    let n = 40;
    let readers: Vec<_> = (0..n)
        .map(|_| {
            let s = open_stream(server.api, &format!("/1/match/{id}/stream"), "");
            std::thread::spawn(move || read_to_close(s))
        })
        .collect();
    wait_for_subscribers(&server, n);
    let cores = per_core(&server, "subscribers");
    assert!(
        cores.iter().all(|&c| c > 0),
        "the API port's connections landed on every core: {cores:?}"
    );
    let posted = post_all(&server, &id, &script, 1);
    let history = server.history(&id);
    assert_eq!(history.len(), posted);
    let want = expected(Some(&after_start), &history[1..]);
    for (i, r) in readers.into_iter().enumerate() {
        assert_same(
            &r.join().expect("reader"),
            &want,
            &format!("subscriber {i}"),
        );
    }
    wait_for_subscribers_to_leave(&server);
}

/// Waits (bounded) until no subscriber is left on the node.
fn wait_for_subscribers_to_leave(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while core_sum(&mut server.reader(), "subscribers") > 0 {
        assert!(Instant::now() < deadline, "subscribers left behind");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sse_and_tcp_subscribers_of_one_match_get_their_exact_streams() {
    let server = TestServer::start();
    let (id, script, after_start) = started_sample(&server);
    let mut readers = Vec::new();
    for core in 0..2 {
        for version in [1, 2] {
            let s = subscribe(
                server.ports[core],
                &format!("VERSION:{version}:CONNECT:tcp:MATCH:{id}"),
            );
            readers.push((
                format!("v{version} on core {core}"),
                Some(version),
                std::thread::spawn(move || read_to_close(s)),
            ));
        }
    }
    for i in 0..4 {
        let s = open_stream(server.api, &format!("/1/match/{id}/stream"), "");
        readers.push((
            format!("sse {i}"),
            None,
            std::thread::spawn(move || read_to_close(s)),
        ));
    }
    wait_for_subscribers(&server, 8);
    post_all(&server, &id, &script, 1);
    let history = server.history(&id);
    for (who, version, reader) in readers {
        let want = match version {
            Some(1) => expected_stream(&after_start, &history[1..], Version::V1),
            Some(_) => expected_stream(&after_start, &history[1..], Version::V2),
            None => expected(Some(&after_start), &history[1..]),
        };
        assert_same(&reader.join().expect("reader"), &want, &who);
    }
}

#[test]
fn resuming_with_last_event_id_or_since_sends_every_later_event_then_the_live_ones() {
    let server = TestServer::start();
    let (id, script, _) = started_sample(&server);
    let events: Vec<_> = script
        .steps
        .iter()
        .filter_map(|s| match s {
            matchstream_protocol::script::Step::Event(e) => {
                Some(matchstream_protocol::api::posted_event_body(e))
            }
            matchstream_protocol::script::Step::Sleep(_) => None,
        })
        .collect();
    let mut watcher = server.watcher();
    let post = |w: &mut matchstream_client::HttpClient, body: &[u8]| {
        let r = w
            .post_json(&format!("/1/match/{id}/events"), body)
            .expect("post");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    };
    for body in &events[1..6] {
        post(&mut watcher, body);
    }
    let path = format!("/1/match/{id}/stream");
    let cases = [
        ("Last-Event-ID", path.clone(), "Last-Event-ID: 3\r\n"),
        ("?since=", format!("{path}?since=3"), ""),
        (
            "Last-Event-ID wins over ?since=",
            format!("{path}?since=1"),
            "Last-Event-ID: 3\r\n",
        ),
    ];
    let readers: Vec<_> = cases
        .into_iter()
        .map(|(name, target, headers)| {
            let s = open_stream(server.api, &target, headers);
            (name, std::thread::spawn(move || read_to_close(s)))
        })
        .collect();
    wait_for_subscribers(&server, 3);
    for body in &events[6..] {
        post(&mut watcher, body);
    }
    let history = server.history(&id);
    let want = expected(None, &history[3..]);
    for (name, reader) in readers {
        assert_same(&reader.join().expect("reader"), &want, name);
    }
}

#[test]
fn a_resume_backlog_larger_than_the_queue_bound_is_streamed_as_the_client_reads() {
    // 8 KiB bound (pieces of 4 KiB) against ≈ 230 KB of stored events: queued at once, the
    // backlog would cut every resumer off as too slow.
    let mut config = test_config();
    config.max_queue = 8 * 1024;
    let server = TestServer::start_with(config);
    let (id, _script, _) = started_sample(&server);
    let mut watcher = server.watcher();
    for i in 0..200 {
        post_comment(&mut watcher, &id, i, 1000);
    }
    let path = format!("/1/match/{id}/stream");
    let readers: Vec<_> = [
        (path.clone(), "Last-Event-ID: 3\r\n"),
        (format!("{path}?since=3"), ""),
    ]
    .into_iter()
    .map(|(target, headers)| {
        let s = open_stream(server.api, &target, headers);
        std::thread::spawn(move || read_slowly_at_first(s, 150 * 1024))
    })
    .collect();
    // More while they take the backlog, and after they joined the live stream.
    for i in 0..120 {
        post_comment(&mut watcher, &id, 1000 + i, 200);
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_eq!(server.post_event(&id, r#"{"kind":"stop"}"#).0, 201);
    let history = server.history(&id);
    let want = expected(None, &history[3..]);
    assert!(want.len() > 200 * 1000, "the backlog exceeds the bound");
    for (i, reader) in readers.into_iter().enumerate() {
        assert_same(
            &reader.join().expect("reader"),
            &want,
            &format!("resumer {i}"),
        );
    }
    assert_eq!(core_sum(&mut server.reader(), "slow_disconnects"), 0);
}

#[test]
fn unknown_matches_bad_resume_points_and_ended_matches_are_answered_before_any_stream() {
    let server = TestServer::start();
    let answer = |status: &str, reason: &str| {
        let body = format!("{{\"error\":\"{reason}\"}}");
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n\
             Content-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let get = |target: &str, headers: &str| {
        raw_http(
            server.api,
            format!("GET {target} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
        )
    };
    assert_eq!(
        get("/1/match/aaa-bbb-2011-01-01/stream", ""),
        answer("404 Not Found", "unknown match")
    );
    let (id, _) = server.create_sample();
    let path = format!("/1/match/{id}/stream");
    assert_eq!(
        get(&format!("{path}?since=x"), ""),
        answer("400 Bad Request", "since must be a non-negative integer")
    );
    assert_eq!(
        get(&path, "Last-Event-ID: -1\r\n"),
        answer(
            "400 Bad Request",
            "Last-Event-ID must be a non-negative integer"
        )
    );
    for body in [r#"{"kind":"start"}"#, r#"{"kind":"stop"}"#] {
        assert_eq!(server.post_event(&id, body).0, 201);
    }
    // Ended, nothing after the id: 204, so that an EventSource stops reconnecting.
    let no_content =
        "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n";
    assert_eq!(get(&path, "Last-Event-ID: 2\r\n"), no_content);
    assert_eq!(get(&format!("{path}?since=7"), ""), no_content);
    // Something after it: those events, then the close; without a resume point: the status.
    let history = server.history(&id);
    assert_eq!(
        get(&path, "Last-Event-ID: 1\r\n").into_bytes(),
        expected(None, &history[1..])
    );
    assert_eq!(
        get(&path, "").into_bytes(),
        expected(Some(&server.state(&id)), &[])
    );
    // HEAD: the head alone.
    assert_eq!(
        raw_http(
            server.api,
            format!("HEAD {path} HTTP/1.1\r\n\r\n").as_bytes()
        ),
        HEAD
    );
    // A 204 keeps a keep-alive connection: the next request is answered.
    let got = raw_http(
        server.api,
        format!(
            "GET {path} HTTP/1.1\r\nLast-Event-ID: 2\r\n\r\nGET /1/matches HTTP/1.1\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let list = format!("[\"{id}\"]");
    assert_eq!(
        got,
        format!(
            "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\nConnection: keep-alive\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
             Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n{list}",
            list.len()
        )
    );
}

#[test]
fn requests_before_a_stream_request_are_answered_and_those_after_it_ignored() {
    let server = TestServer::start();
    let (id, _, after_start) = started_sample(&server);
    let mut s = TcpStream::connect(server.api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(
        format!(
            "GET /1/matches HTTP/1.1\r\n\r\nGET /1/match/{id}/stream HTTP/1.1\r\n\r\n\
             POST /1/match/{id}/events HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: 15\r\n\r\n{{\"kind\":\"stop\"}}"
        )
        .as_bytes(),
    )
    .expect("send");
    let reader = std::thread::spawn(move || read_to_close(s));
    wait_for_subscribers(&server, 1);
    // The pipelined stop was not read: the match is live until a watcher stops it.
    assert_eq!(server.state(&id).last_seq, 1);
    assert_eq!(server.post_event(&id, r#"{"kind":"stop"}"#).0, 201);
    let list = format!("[\"{id}\"]");
    let mut want = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
         Access-Control-Allow-Origin: *\r\nConnection: keep-alive\r\n\r\n{list}",
        list.len()
    )
    .into_bytes();
    want.extend_from_slice(&expected(Some(&after_start), &server.history(&id)[1..]));
    assert_same(&reader.join().expect("reader"), &want, "the pipeliner");
}

#[test]
fn a_quiet_stream_gets_a_comment_line_and_tcp_streams_do_not() {
    let server = TestServer::start_with(Config {
        sse_keepalive_ms: 600,
        ..test_config()
    });
    let (id, _, after_start) = started_sample(&server);
    // Measured from before the request: the status is written after it, and the comment may
    // come no sooner than the keep-alive interval after the status, however late this thread
    // gets to read.
    let quiet = Instant::now();
    let mut stream = open_stream(server.api, &format!("/1/match/{id}/stream"), "");
    let tcp = subscribe(
        server.ports[0],
        &format!("VERSION:2:CONNECT:tcp:MATCH:{id}"),
    );
    let tcp_reader = std::thread::spawn(move || read_to_close(tcp));
    let start = expected(Some(&after_start), &[]);
    assert_same(
        &read_exactly(&mut stream, start.len()),
        &start,
        "head and status",
    );
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(read_exactly(&mut stream, 3), b":\n\n", "the keep-alive");
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(600),
        "only after a quiet keep-alive interval: {waited:?}"
    );
    // An event, then quiet again: another comment.
    let quiet = Instant::now();
    assert_eq!(
        server
            .post_event(&id, r#"{"kind":"goal","team":"tig","player":7}"#)
            .0,
        201
    );
    let goal = expected(None, &server.history(&id)[1..2]);
    let goal = &goal[HEAD.len()..];
    assert_same(
        &read_past_keepalives(&mut stream, goal.len()),
        goal,
        "the goal",
    );
    assert_eq!(
        read_exactly(&mut stream, 3),
        b":\n\n",
        "the next keep-alive"
    );
    assert!(quiet.elapsed() >= Duration::from_millis(600));
    assert_eq!(server.post_event(&id, r#"{"kind":"stop"}"#).0, 201);
    let history = server.history(&id);
    assert_same(
        &tcp_reader.join().expect("tcp reader"),
        &expected_stream(&after_start, &history[1..], Version::V2),
        "the TCP subscriber",
    );
    let stop = expected(None, &history[2..]);
    let mut rest = read_to_close(stream);
    // A comment may have come before the stop; nothing else may.
    while rest.starts_with(b":\n\n") {
        rest.drain(..3);
    }
    assert_same(&rest, &stop[HEAD.len()..], "the stop");
}

#[test]
fn a_slow_sse_consumer_is_cut_off_after_whole_events_with_an_error_event() {
    let mut config = test_config();
    config.max_queue = 8 * 1024;
    let server = TestServer::start_with(config);
    let (id, _script, after_start) = started_sample(&server);
    // The slow one: a tiny receive window, and it never reads.
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    sock.connect(&server.api.into()).expect("connect");
    let mut slow: TcpStream = sock.into();
    slow.write_all(format!("GET /1/match/{id}/stream HTTP/1.1\r\n\r\n").as_bytes())
        .expect("send");
    let good = open_stream(server.api, &format!("/1/match/{id}/stream"), "");
    let read_so_far = Arc::new(AtomicUsize::new(0));
    let progress = read_so_far.clone();
    let reader = std::thread::spawn(move || {
        let mut good = good;
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match good.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    progress.store(out.len(), Ordering::Release);
                }
                Err(e) => panic!("good subscriber: read failed: {e}"),
            }
        }
    });
    wait_for_subscribers(&server, 2);
    let slow_cuts = |server: &TestServer| core_sum(&mut server.reader(), "slow_disconnects");
    let mut watcher = server.watcher();
    let start = expected(Some(&after_start), &[]).len();
    let (mut posted, mut posted_bytes) = (0, start);
    // An event's bytes: its id and event lines, and as data the 201's body without its match.
    let match_key = format!("\"match\":\"{id}\",").len();
    while slow_cuts(&server) == 0 {
        assert!(posted < 20_000, "the slow subscriber was never cut off");
        for i in 0..4 {
            let text = format!("{:06}{}", posted + i, "c".repeat(994));
            let body = format!(r#"{{"kind":"comment","comment":"{text}"}}"#);
            let r = watcher
                .post_json(&format!("/1/match/{id}/events"), body.as_bytes())
                .expect("post");
            assert_eq!(r.status, 201);
            let seq = r.json().expect("json")["seq"].as_u64().expect("seq");
            posted_bytes +=
                format!("id: {seq}\nevent: comment\ndata: \n\n").len() + r.body.len() - match_key;
        }
        posted += 4;
        // Four events of ≈ 1.1 KB, under the bound: wait until the good one has them, so
        // that only the one that never reads is cut off.
        let started = Instant::now();
        while read_so_far.load(Ordering::Acquire) + 4 * 200 < posted_bytes {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the good subscriber stopped reading"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let slow_reader = std::thread::spawn(move || {
        let mut tail = Vec::new();
        let _ = slow.read_to_end(&mut tail);
        tail
    });
    assert_eq!(server.post_event(&id, r#"{"kind":"stop"}"#).0, 201);
    let history = server.history(&id);
    let want = expected(Some(&after_start), &history[1..]);
    assert_same(&reader.join().expect("good reader"), &want, "the good one");
    assert_eq!(slow_cuts(&server), 1);
    let tail = slow_reader.join().expect("slow reader");
    let words = b"event: error\ndata: {\"error\":\"too slow\"}\n\n";
    let text = String::from_utf8_lossy(&tail);
    assert!(
        tail.ends_with(words),
        "ends with the error event: {:?}",
        &text[text.len().saturating_sub(120)..]
    );
    let events = &tail[..tail.len() - words.len()];
    assert!(
        events.ends_with(b"}\n\n"),
        "cut after a whole event: {:?}",
        String::from_utf8_lossy(&events[events.len().saturating_sub(80)..])
    );
    assert!(events.len() < want.len(), "it cannot have reached the end");
    assert_same(events, &want[..events.len()], "the slow one's events");
}

#[test]
fn cancelling_or_stopping_ends_sse_streams_with_an_error_event() {
    let mut server = TestServer::start();
    let (id, _, after_start) = started_sample(&server);
    let status = expected(Some(&after_start), &[]);
    let mut cancelled = open_stream(server.api, &format!("/1/match/{id}/stream"), "");
    assert_same(
        &read_exactly(&mut cancelled, status.len()),
        &status,
        "before the cancel",
    );
    let r = server
        .watcher()
        .delete(&format!("/1/match/{id}"))
        .expect("delete");
    assert_eq!(r.status, 204);
    assert_eq!(
        String::from_utf8_lossy(&read_to_close(cancelled)),
        "event: error\ndata: {\"error\":\"match cancelled\"}\n\n"
    );
    let (id, _, after_start) = started_sample(&server);
    let status = expected(Some(&after_start), &[]);
    let mut stopped = open_stream(server.api, &format!("/1/match/{id}/stream"), "");
    assert_same(
        &read_exactly(&mut stopped, status.len()),
        &status,
        "before the stop",
    );
    server.stop();
    assert_eq!(
        String::from_utf8_lossy(&read_to_close(stopped)),
        "event: error\ndata: {\"error\":\"server shutting down\"}\n\n"
    );
}

#[test]
fn stats_count_sse_subscribers_as_subscribers_not_as_api_connections() {
    let server = TestServer::start();
    let (id, _, _) = started_sample(&server);
    let streams: Vec<_> = (0..3)
        .map(|_| open_stream(server.api, &format!("/1/match/{id}/stream"), ""))
        .collect();
    let tcp = subscribe(
        server.ports[1],
        &format!("VERSION:2:CONNECT:tcp:MATCH:{id}"),
    );
    wait_for_subscribers(&server, 4);
    assert_eq!(core_sum(&mut server.reader(), "subscribers"), 4);
    // The API connections open: only the one asking (earlier readers' may still be closing).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = server
            .reader()
            .get("/1/stats")
            .expect("stats")
            .json()
            .expect("json");
        if v["http"]["connections"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "http: {}", v["http"]);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.post_event(&id, r#"{"kind":"stop"}"#).0, 201);
    for s in streams {
        read_to_close(s);
    }
    read_to_close(tcp);
    wait_for_subscribers_to_leave(&server);
    assert!(core_sum(&mut server.reader(), "frames_sent") >= 4 * 2);
}
