//! End-to-end tests of the stream protocol (SPEC §3) against a real 2-core server: what a
//! subscriber receives, byte for byte.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use matchstream_protocol::frame::Version;

fn many_subscribers_receive_the_whole_match(version: Version, n: usize) {
    let server = TestServer::start();
    let (id, script, after_start) = started_sample(&server);
    let line = match version {
        Version::V1 => format!("VERSION:1:CONNECT:fan:MATCH:{id}"),
        Version::V2 => format!("VERSION:2:CONNECT:fan:MATCH:{id}"),
    };
    let readers: Vec<_> = (0..n)
        .map(|i| {
            let s = subscribe(server.ports[i % server.ports.len()], &line);
            std::thread::spawn(move || read_to_close(s))
        })
        .collect();
    wait_for_subscribers(&server, n as u64);
    // The script's first event is the start already posted.
    let posted = post_all(&server, &id, &script, 1);
    let history = server.history(&id);
    assert_eq!(history.len(), posted);
    let expected = expected_stream(&after_start, &history[1..], version);
    for (i, r) in readers.into_iter().enumerate() {
        let got = r.join().expect("reader");
        assert!(
            got == expected,
            "subscriber {i} got {} bytes, expected {}; first difference at byte {}",
            got.len(),
            expected.len(),
            got.iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(expected.len()))
        );
    }
    let sessions = core_sum(&mut server.reader(), "sessions_total");
    assert_eq!(sessions, n as u64);
    let v = server
        .reader()
        .get("/1/stats")
        .expect("stats")
        .json()
        .expect("json");
    for c in v["cores"].as_array().expect("cores") {
        assert!(
            c["sessions_total"].as_u64().unwrap_or(0) > 0,
            "every core served subscribers"
        );
    }
}

#[test]
fn two_hundred_v1_subscribers_over_both_cores_receive_the_sample_match_byte_for_byte() {
    many_subscribers_receive_the_whole_match(Version::V1, 200);
}

#[test]
fn two_hundred_v2_subscribers_receive_the_sample_match_with_seq_lines() {
    many_subscribers_receive_the_whole_match(Version::V2, 200);
}

/// Replaces each header's timestamp (the server's clock) with a fixed one.
fn mask_timestamps(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.split_inclusive('\n')
        .map(|line| {
            let is_header =
                line.len() > 21 && line.as_bytes()[4] == b'-' && line.as_bytes()[19] == b':';
            if is_header {
                format!("YYYY-MM-DD HH:MM:SS{}", &line[19..])
            } else {
                line.to_owned()
            }
        })
        .collect()
}

#[test]
fn the_seed_session_reads_exactly_as_the_spec_writes_it() {
    let server = TestServer::start();
    let (id, _script, _) = started_sample(&server);
    let s = subscribe(
        server.ports[1],
        &format!("VERSION:1:CONNECT:seed:MATCH:{id}"),
    );
    let reader = std::thread::spawn(move || read_to_close(s));
    wait_for_subscribers(&server, 1);
    for body in [
        r#"{"kind":"goal","team":"tig","player":7}"#,
        r#"{"kind":"penalty","team":"tig","player":6}"#,
        r#"{"kind":"card","team":"elp","player":25,"card":"red"}"#,
        r#"{"kind":"substitution","team":"elp","player_out":18,"player_in":{"number":21,"name":"Silva"}}"#,
        r#"{"kind":"card","team":"elp","player":2,"card":"yellow"}"#,
        r#"{"kind":"goal","team":"tig","player":10}"#,
        r#"{"kind":"goal","team":"elp","player":7,"player_team":"tig"}"#,
        r#"{"kind":"comment","comment":"Veron: \"5\\5\""}"#,
        r#"{"kind":"stop"}"#,
    ] {
        let (status, text) = server.post_event(&id, body);
        assert_eq!(status, 201, "{body}: {text}");
    }
    let got = mask_timestamps(&reader.join().expect("reader"));
    let roster = |names: &[(&str, u8)]| -> String {
        names
            .iter()
            .map(|(n, k)| format!("\t\t {n} ({k}) \n"))
            .collect()
    };
    let elp = roster(&[
        ("Albil", 25),
        ("Mercado", 14),
        ("Desabato", 2),
        ("Cellay", 3),
        ("Dominguez", 27),
        ("Veron", 11),
        ("Fernandez", 10),
        ("Sanchez", 5),
        ("Gonzalez", 19),
        ("Fernandez", 18),
        ("Boselli", 9),
    ]);
    let tig = roster(&[
        ("Garcia", 12),
        ("Casteglione", 13),
        ("Echeverria", 21),
        ("Blengio", 3),
        ("Diaz", 15),
        ("Castano", 5),
        ("Martinez", 6),
        ("Leone", 11),
        ("Morales", 10),
        ("Luna", 7),
        ("Maggiolo", 9),
    ]);
    let t = "YYYY-MM-DD HH:MM:SS";
    let expected = format!(
        "{t}: status:\n\thome: <<\"elp\">>\n\thome_players:\n{elp}\thome_score: 0\n\
         \tvisit: <<\"tig\">>\n\tvisit_players:\n{tig}\tvisit_score: 0\n\tperiod: first\n\r\n\
         {t}: goal:\n\tplayer: Luna (7) \n\tteam: <<\"tig\">>\n\r\n\
         {t}: penalty:\n\tplayer: Martinez (6) \n\tteam: <<\"tig\">>\n\r\n\
         {t}: card:\n\tplayer: Albil (25) \n\tcard: red\n\tteam: <<\"elp\">>\n\r\n\
         {t}: substitution:\n\tplayer_out: Fernandez (18) \n\tteam: <<\"elp\">>\n\tplayer_in: Silva (21) \n\r\n\
         {t}: card:\n\tplayer: Desabato (2) \n\tcard: yellow\n\tteam: <<\"elp\">>\n\r\n\
         {t}: goal:\n\tplayer: Morales (10) \n\tteam: <<\"tig\">>\n\r\n\
         {t}: goal:\n\tplayer: Luna (7) \n\tteam: <<\"elp\">>\n\tplayer_team: <<\"tig\">>\n\r\n\
         {t}: comment:\n\tcomment: <<\"Veron: \\\"5\\\\5\\\"\">>\n\r\n\
         {t}: stop:\n\r\n"
    );
    assert_eq!(got, expected);
    let state = server.state(&id);
    assert_eq!((state.home_score, state.visit_score), (1, 2));
}

/// Reads whole frames until `count` terminators were seen.
fn read_frames(s: &mut TcpStream, count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    let mut seen = 0;
    while seen < count {
        let n = s.read(&mut byte).expect("read");
        assert_eq!(
            n,
            1,
            "closed early after {:?}",
            String::from_utf8_lossy(&out)
        );
        out.push(byte[0]);
        if out.ends_with(b"\n\r\n") {
            seen += 1;
        }
    }
    out
}

#[test]
fn a_v2_subscriber_cut_off_mid_match_resumes_with_since_and_misses_nothing() {
    let server = TestServer::start();
    let (id, script, after_start) = started_sample(&server);
    let mut first = subscribe(
        server.ports[0],
        &format!("VERSION:2:CONNECT:resumer:MATCH:{id}"),
    );
    wait_for_subscribers(&server, 1);
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
    // Status plus 3 events seen, then the connection drops.
    let seen = read_frames(&mut first, 4);
    drop(first);
    for body in &events[6..10] {
        post(&mut watcher, body);
    }
    let since = 4; // start (1) + 3 events
    let resumed = subscribe(
        server.ports[1],
        &format!("VERSION:2:CONNECT:resumer:MATCH:{id}:SINCE:{since}"),
    );
    let reader = std::thread::spawn(move || read_to_close(resumed));
    wait_for_subscribers(&server, 1);
    for body in &events[10..] {
        post(&mut watcher, body);
    }
    let got = reader.join().expect("reader");
    let history = server.history(&id);
    let mut expected_first = Vec::new();
    matchstream_protocol::frame::render_status(&after_start, Version::V2, &mut expected_first);
    for e in &history[1..4] {
        matchstream_protocol::frame::render_event(e, Version::V2, &mut expected_first);
    }
    assert_eq!(
        String::from_utf8_lossy(&seen),
        String::from_utf8_lossy(&expected_first)
    );
    let mut expected = Vec::new();
    for e in &history[since as usize..] {
        matchstream_protocol::frame::render_event(e, Version::V2, &mut expected);
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn before_start_v1_gets_the_status_and_a_close_while_v2_stays_for_the_match() {
    let server = TestServer::start();
    let (id, _script) = server.create_sample();
    let v1 = read_to_close(subscribe(
        server.ports[0],
        &format!("VERSION:1:CONNECT:early:MATCH:{id}"),
    ));
    let state = server.state(&id);
    assert_eq!(v1, expected_stream(&state, &[], Version::V1));
    let v2 = subscribe(
        server.ports[1],
        &format!("VERSION:2:CONNECT:early:MATCH:{id}"),
    );
    let reader = std::thread::spawn(move || read_to_close(v2));
    wait_for_subscribers(&server, 1);
    for body in [
        r#"{"kind":"start"}"#,
        r#"{"kind":"goal","team":"elp","player":9}"#,
        r#"{"kind":"stop"}"#,
    ] {
        assert_eq!(server.post_event(&id, body).0, 201);
    }
    let got = reader.join().expect("reader");
    assert_eq!(
        got,
        expected_stream(&state, &server.history(&id), Version::V2)
    );
    // After the end: a status with period ended, then close, for both versions.
    let ended = server.state(&id);
    for (v, line) in [(Version::V1, "VERSION:1"), (Version::V2, "VERSION:2")] {
        let got = read_to_close(subscribe(
            server.ports[0],
            &format!("{line}:CONNECT:late:MATCH:{id}"),
        ));
        assert_eq!(got, expected_stream(&ended, &[], v));
    }
}

#[test]
fn bad_commands_get_exactly_one_error_line_and_a_close() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let port = server.ports[0];
    let long = "X".repeat(2000);
    let cases: [(&str, String, &str); 7] = [
        (
            "garbage",
            "HELLO THERE".into(),
            "ERROR: unknown command\r\n",
        ),
        (
            "unknown match",
            "VERSION:1:CONNECT:u:MATCH:nope-match".into(),
            "ERROR: unknown match\r\n",
        ),
        (
            "well-formed unknown id",
            "VERSION:1:CONNECT:u:MATCH:aaa-bbb-2011-01-01".into(),
            "ERROR: unknown match\r\n",
        ),
        (
            "malformed",
            "VERSION:1:CONNECT:u".into(),
            "ERROR: malformed command\r\n",
        ),
        (
            "bad user",
            format!("VERSION:1:CONNECT:a b:MATCH:{id}"),
            "ERROR: bad user id\r\n",
        ),
        (
            "version 3",
            format!("VERSION:3:CONNECT:u:MATCH:{id}"),
            "ERROR: unsupported version\r\n",
        ),
        (
            "since on v1",
            format!("VERSION:1:CONNECT:u:MATCH:{id}:SINCE:3"),
            "ERROR: SINCE needs VERSION:2\r\n",
        ),
    ];
    for (name, line, answer) in cases {
        let got = read_to_close(subscribe(port, &line));
        assert_eq!(String::from_utf8_lossy(&got), answer, "case {name}");
    }
    // An overlong line with no end.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(long.as_bytes()).expect("send");
    assert_eq!(
        String::from_utf8_lossy(&read_to_close(s)),
        "ERROR: line too long\r\n"
    );
    // Silence past the (2 s in tests) command timeout.
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    assert_eq!(
        String::from_utf8_lossy(&read_to_close(s)),
        "ERROR: timeout\r\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(1900));
    // Nothing stored changed.
    assert_eq!(server.history(&id).len(), 0);
    let list = server
        .reader()
        .get("/1/matches")
        .expect("list")
        .json()
        .expect("json");
    assert_eq!(list, serde_json::json!([id.as_str()]));
}

#[test]
fn a_subscriber_that_never_reads_is_cut_off_while_the_others_keep_receiving() {
    let mut config = test_config();
    config.max_queue = 8 * 1024;
    let server = TestServer::start_with(config);
    let (id, _script, after_start) = started_sample(&server);
    // The slow one: a tiny receive window, and it never reads.
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], server.ports[0]).into();
    sock.connect(&addr.into()).expect("connect");
    let mut slow: TcpStream = sock.into();
    slow.write_all(format!("VERSION:2:CONNECT:slow:MATCH:{id}\r\n").as_bytes())
        .expect("send");
    let good = subscribe(
        server.ports[0],
        &format!("VERSION:1:CONNECT:good:MATCH:{id}"),
    );
    // The good one reads everything and says how far it got, so that the watcher never
    // posts more than a few frames ahead of it: the 8 KiB bound must cut the slow one only.
    let read_so_far = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
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
                    progress.store(out.len(), std::sync::atomic::Ordering::Release);
                }
                Err(e) => panic!("good subscriber: read failed: {e}"),
            }
        }
    });
    wait_for_subscribers(&server, 2);
    // Post until the server gives up on the slow one: the kernel's socket buffers (up to
    // tcp_wmem's maximum) absorb the first megabytes, then the 8 KiB queue bound trips.
    let comment = "x".repeat(1000);
    let mut watcher = server.watcher();
    let slow_cuts =
        |server: &TestServer| -> u64 { core_sum(&mut server.reader(), "slow_disconnects") };
    let mut posted = 0;
    let mut posted_bytes = 0;
    while slow_cuts(&server) == 0 {
        assert!(posted < 20_000, "the slow subscriber was never cut off");
        for i in 0..4 {
            // Numbered, so a frame skipped, repeated or re-sent shows in the slow one's bytes.
            let body = format!(
                r#"{{"kind":"comment","comment":"{:06}{}"}}"#,
                posted + i,
                &comment[6..]
            );
            let r = watcher
                .post_json(&format!("/1/match/{id}/events"), body.as_bytes())
                .expect("post");
            assert_eq!(r.status, 201);
        }
        posted += 4;
        // Four frames of ≈1 KB each are under the bound; wait until the good one has them
        // (a v1 comment frame: 30 bytes of header, 13 + comment + 4 of detail, 2 of end).
        posted_bytes += 4 * (comment.len() + 49);
        let started = std::time::Instant::now();
        while read_so_far.load(std::sync::atomic::Ordering::Acquire) + 4 * 60 < posted_bytes {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the good subscriber stopped reading: {} bytes read, {posted_bytes} posted",
                read_so_far.load(std::sync::atomic::Ordering::Acquire)
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    // It reads again at once (its last words wait for it up to a second).
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let slow_reader = std::thread::spawn(move || {
        let mut tail = Vec::new();
        let _ = slow.read_to_end(&mut tail);
        tail
    });
    assert_eq!(server.post_event(&id, r#"{"kind":"stop"}"#).0, 201);
    let got = reader.join().expect("good reader");
    let want = expected_stream(&after_start, &server.history(&id)[1..], Version::V1);
    if got != want {
        let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
        panic!(
            "the good subscriber's stream differs at byte {at} (got {} bytes, want {}): got {:?}, want {:?}",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[at.saturating_sub(200)..(at + 200).min(got.len())]),
            String::from_utf8_lossy(&want[at.saturating_sub(200)..(at + 200).min(want.len())])
        );
    }
    assert_eq!(slow_cuts(&server), 1);
    // The slow subscriber finds whole frames, the reason, and the end.
    let tail = slow_reader.join().expect("slow reader");
    let text = String::from_utf8_lossy(&tail);
    assert!(
        text.ends_with("\n\r\nERROR: too slow\r\n"),
        "ends with {:?}",
        &text[text.len().saturating_sub(80)..]
    );
    let frames = &tail[..tail.len() - b"ERROR: too slow\r\n".len()];
    assert!(
        frames.ends_with(b"\n\r\n"),
        "cut mid-frame: {:?}",
        String::from_utf8_lossy(&frames[frames.len().saturating_sub(80)..])
    );
    // Exactly the match's v2 stream up to where it was cut: nothing skipped or repeated.
    let want = expected_stream(&after_start, &server.history(&id)[1..], Version::V2);
    assert!(
        frames.len() < want.len(),
        "the slow subscriber cannot have reached the end"
    );
    if frames != &want[..frames.len()] {
        let at = frames.iter().zip(&want).take_while(|(a, b)| a == b).count();
        panic!(
            "the slow subscriber's frames differ from the match's stream at byte {at} of {}",
            frames.len()
        );
    }
}

#[test]
fn cancelling_a_match_disconnects_its_subscribers_and_removes_its_history() {
    let server = TestServer::start();
    let (id, _, _) = started_sample(&server);
    let mut s = subscribe(server.ports[1], &format!("VERSION:2:CONNECT:c:MATCH:{id}"));
    read_frames(&mut s, 1);
    wait_for_subscribers(&server, 1);
    let r = server
        .watcher()
        .delete(&format!("/1/match/{id}"))
        .expect("delete");
    assert_eq!(r.status, 204);
    assert_eq!(
        String::from_utf8_lossy(&read_to_close(s)),
        "ERROR: match cancelled\r\n"
    );
    assert_eq!(
        server
            .reader()
            .get(&format!("/1/match/{id}/history"))
            .expect("get")
            .status,
        404
    );
    let again = read_to_close(subscribe(
        server.ports[0],
        &format!("VERSION:2:CONNECT:c:MATCH:{id}"),
    ));
    assert_eq!(String::from_utf8_lossy(&again), "ERROR: unknown match\r\n");
}

#[test]
fn every_connect_counts_a_visit_for_its_user() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    for i in 0..3 {
        read_to_close(subscribe(
            server.ports[i % 2],
            &format!("VERSION:1:CONNECT:alice:MATCH:{id}"),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = server
            .watcher()
            .get("/1/users/alice")
            .expect("get")
            .json()
            .expect("json");
        if v["visits"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "visits: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shutdown_tells_live_subscribers_and_closes() {
    let mut server = TestServer::start();
    let (id, _, _) = started_sample(&server);
    let mut subscribers = Vec::new();
    for (i, version) in [1, 2, 1, 2].into_iter().enumerate() {
        let mut s = subscribe(
            server.ports[i % 2],
            &format!("VERSION:{version}:CONNECT:bye:MATCH:{id}"),
        );
        read_frames(&mut s, 1);
        subscribers.push(s);
    }
    wait_for_subscribers(&server, 4);
    let pending = TcpStream::connect(("127.0.0.1", server.ports[1])).expect("connect");
    pending
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Every connection is done at once: a task guard left behind would make the node wait
    // out its grace period (2 s here; a shutdown takes milliseconds).
    let started = Instant::now();
    server.stop();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    for s in subscribers {
        assert_eq!(
            String::from_utf8_lossy(&read_to_close(s)),
            "ERROR: server shutting down\r\n"
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&read_to_close(pending)),
        "ERROR: server shutting down\r\n"
    );
}

#[test]
fn shutdown_with_a_full_socket_waits_its_grace_at_most_and_loses_no_other_subscriber() {
    let mut config = test_config();
    config.shutdown_grace_ms = 1_000;
    let mut server = TestServer::start_with(config);
    let (id, _, _) = started_sample(&server);
    // One v1 subscriber that stops reading with frames queued, one that reads.
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], server.ports[0]).into();
    sock.connect(&addr.into()).expect("connect");
    let mut stuck: TcpStream = sock.into();
    stuck
        .write_all(format!("VERSION:1:CONNECT:stuck:MATCH:{id}\r\n").as_bytes())
        .expect("send");
    let good = subscribe(
        server.ports[0],
        &format!("VERSION:1:CONNECT:good:MATCH:{id}"),
    );
    let reader = std::thread::spawn(move || read_to_close(good));
    wait_for_subscribers(&server, 2);
    // 200 comments of 1,000 bytes: more than the stuck one's socket takes, less than the
    // queue bound, so it is neither drained nor cut off when the node stops.
    let comment = "y".repeat(1000);
    let mut watcher = server.watcher();
    for _ in 0..200 {
        let body = format!(r#"{{"kind":"comment","comment":"{comment}"}}"#);
        let r = watcher
            .post_json(&format!("/1/match/{id}/events"), body.as_bytes())
            .expect("post");
        assert_eq!(r.status, 201);
    }
    let started = Instant::now();
    server.stop();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stop took {took:?} with a 1 s grace period"
    );
    let got = reader.join().expect("good reader");
    assert!(
        got.ends_with(b"\n\r\nERROR: server shutting down\r\n"),
        "the reading subscriber got every frame and the notice"
    );
    drop(stuck);
}

/// The logging policy (STYLE, "Logging"): nothing per event above debug. A whole match
/// played to subscribers on both cores of the real binary, logging at info, adds no line per
/// event to its log (an event that follows on from the last is no gap).
#[test]
fn a_match_played_to_subscribers_logs_nothing_per_event() {
    let mut node = serve(&["--store", "memory"]);
    let mut client = node.client();
    let script = matchstream_protocol::script::parse_script(matchstream_protocol::script::SAMPLE)
        .expect("sample");
    let body = matchstream_protocol::api::new_match_body(&script.new_match);
    assert_eq!(
        client
            .post_json("/1/matches", &body)
            .expect("create")
            .status,
        201
    );
    let id = matchstream_protocol::MatchId::new(
        &script.new_match.home,
        &script.new_match.visit,
        script.new_match.start_date,
    );
    let readers: Vec<_> = node
        .ports
        .iter()
        .map(|port| {
            let mut s = subscribe(*port, &format!("VERSION:2:CONNECT:log:MATCH:{id}"));
            read_until(&mut s, b"\n\r\n");
            std::thread::spawn(move || read_to_close(s))
        })
        .collect();
    let lines = || node.stderr.lock().map(|l| l.len()).expect("log lines");
    let before = lines();
    let bodies = sample_bodies();
    for body in &bodies {
        let r = client
            .post_json(&format!("/1/match/{id}/events"), body)
            .expect("post");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    for r in readers {
        let got = r.join().expect("reader");
        assert!(got.ends_with(b"\n\r\n"), "each stream ends after the stop");
    }
    // Stopped, and its log read to its last line.
    assert_eq!(node.terminate(), Some(0));
    wait_until("the log's last line", || {
        node.stderr
            .lock()
            .is_ok_and(|l| l.last().is_some_and(|l| l.ends_with("] stopped")))
    });
    let added: Vec<String> = node.stderr.lock().expect("log lines")[before..].to_vec();
    // Start-up is over; what is left is the shutdown's few lines.
    assert!(
        added.len() < bodies.len() / 2,
        "{} events logged {} lines: {added:?}",
        bodies.len(),
        added.len()
    );
    assert!(!added.iter().any(|l| l.contains("gap")), "{added:?}");
}
