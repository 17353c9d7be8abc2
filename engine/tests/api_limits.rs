//! End-to-end tests of what an API client cannot make the server hold (issue 11, item 2;
//! `engine/src/api/mod.rs`): a connection that pipelines and never reads costs a bounded
//! amount of memory and is closed after the write timeout, a slow reader still gets every
//! answer in order, and the node refuses connections past its cap with a 503.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use matchstream_client::HttpClient;
use matchstream_engine::Config;

/// Connections that pipeline large reads and never read an answer (the issue had 200).
const ATTACKERS: usize = 100;

/// Requests each of them pipelines (as in the issue).
const PIPELINED: usize = 1_500;

/// The server's write timeout in the tests that need one.
const WRITE_TIMEOUT_MS: u64 = 1_000;

/// Most the server's peak RSS may grow while the attackers are connected. Before the fix
/// each held about 4 MiB of answers (68 rendered per 4 KiB read), for good: ~400 MiB here.
/// (Measured after the fix: ~14 MiB.)
const RSS_GROWTH_BOUND: u64 = 64 << 20;

/// Events of the big match's history: with 1 KB comments its history is ~59 KB, the size of
/// the issue's answers.
const COMMENTS: usize = 54;

/// Creates a started match whose history holds [`COMMENTS`] comments of about 1 KB; returns
/// its id.
fn big_match(client: &mut HttpClient) -> String {
    let r = client
        .post_json(
            "/1/matches",
            br#"{"home":"elp","visit":"tig","start_date":"2011-09-10"}"#,
        )
        .expect("create");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = "elp-tig-2011-09-10";
    let path = format!("/1/match/{id}/events");
    let r = client
        .post_json(&path, br#"{"kind":"start"}"#)
        .expect("start");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    for i in 0..COMMENTS {
        let text = format!("comment {i} {}", "x".repeat(1_000));
        let body = format!(r#"{{"kind":"comment","comment":"{text}"}}"#);
        let r = client.post_json(&path, body.as_bytes()).expect("comment");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    id.to_owned()
}

/// A field of `/1/stats`'s `http` object.
fn http_stat(client: &mut HttpClient, key: &str) -> u64 {
    let v = client.get("/1/stats").expect("stats").json().expect("json");
    v["http"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no http.{key} in {v}"))
}

/// A `kB` figure of this process's `/proc/self/status` (`VmRSS`, `VmHWM`), in bytes.
fn rss(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
        * 1024
}

/// Connects to the API with generous timeouts (they only catch hangs).
fn connect(api: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// Reads one answer (head and `Content-Length` body) from `s`.
fn read_answer(s: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read the head");
        assert!(n > 0, "closed inside the head: {answer:?}");
        answer.push(byte[0]);
    }
    let length = String::from_utf8_lossy(&answer)
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: ")?.trim().parse().ok())
        .unwrap_or(0usize);
    let head = answer.len();
    answer.resize(head + length, 0);
    s.read_exact(&mut answer[head..]).expect("read the body");
    answer
}

/// Sends `request` on a new connection and returns its one answer.
fn one_answer(api: SocketAddr, request: &str) -> Vec<u8> {
    let mut s = connect(api);
    s.write_all(request.as_bytes()).expect("send");
    read_answer(&mut s)
}

/// Reads until the server closes; a reset instead of an end of stream fails.
fn read_to_clean_close(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{e} after {:?}", String::from_utf8_lossy(&out)),
        }
    }
}

#[test]
fn clients_that_pipeline_and_never_read_hold_bounded_memory_and_are_closed() {
    // In this process: nextest runs each test in a process of its own, so the RSS measured is
    // the server's plus this test's clients (small: one shared pipeline, idle threads).
    let server = TestServer::start_with(Config {
        http_write_timeout_ms: WRITE_TIMEOUT_MS,
        ..test_config()
    });
    let id = big_match(&mut server.watcher());
    let mut good = server.reader();
    // The whole history: the same size as the issue's `?since=1` answers, but copied from the
    // match's cached rendering, so the server's CPU (a debug build, 2 cores) is no limit.
    let history = format!("/1/match/{id}/history");
    let answer = good.get(&history).expect("history");
    assert_eq!(answer.status, 200);
    assert!(answer.body.len() > 50_000, "{} bytes", answer.body.len());
    let pipeline = format!("GET {history} HTTP/1.1\r\nHost: x\r\n\r\n")
        .repeat(PIPELINED)
        .into_bytes();

    // Resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
    let before = rss("VmRSS");
    let attackers: Vec<TcpStream> = (0..ATTACKERS).map(|_| connect(server.api)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    std::thread::scope(|scope| {
        for s in &attackers {
            let pipeline = &pipeline;
            // Until the server has taken every byte, or closes after its write timeout.
            scope.spawn(move || {
                let mut s = s;
                let _ = s.write_all(pipeline);
            });
        }
        // Meanwhile a client that reads is answered, while every attacker is still open.
        loop {
            let open = http_stat(&mut good, "connections");
            assert_eq!(http_stat(&mut good, "write_timeouts"), 0, "closed too soon");
            if open == ATTACKERS as u64 + 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{open} connections after 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        let r = good.get(&history).expect("history meanwhile");
        assert_eq!((r.status, &r.body), (200, &answer.body));
    });

    // The attackers are closed by the write timeout, and nothing else.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let closed = loop {
        let (open, timeouts) = (
            http_stat(&mut good, "connections"),
            http_stat(&mut good, "write_timeouts"),
        );
        if open == 1 && timeouts == ATTACKERS as u64 {
            break Some(started.elapsed());
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let growth = rss("VmHWM").saturating_sub(before);
    eprintln!(
        "{ATTACKERS} attackers: peak RSS +{} KiB, RSS now +{} KiB, all closed after {closed:?}",
        growth >> 10,
        rss("VmRSS").saturating_sub(before) >> 10
    );
    assert!(
        growth < RSS_GROWTH_BOUND,
        "peak RSS grew by {} MiB (bound {} MiB)",
        growth >> 20,
        RSS_GROWTH_BOUND >> 20
    );
    assert!(
        closed.is_some(),
        "still {} connections and {} write timeouts after 30 s",
        http_stat(&mut good, "connections"),
        http_stat(&mut good, "write_timeouts")
    );
    // Each attacker sees its end: what the kernel had buffered, then an end or a reset.
    for s in attackers {
        read_to_close(s);
    }
}

#[test]
fn pipelined_answers_to_a_slow_reader_all_arrive_whole_and_in_order() {
    let server = TestServer::start_with(Config {
        http_write_timeout_ms: 300,
        ..test_config()
    });
    let id = big_match(&mut server.watcher());
    let kinds = [
        format!("GET /1/match/{id}/history?since=1 HTTP/1.1\r\n\r\n"),
        format!("GET /1/match/{id} HTTP/1.1\r\n\r\n"),
        format!("GET /1/match/{id}/history?since=50 HTTP/1.1\r\n\r\n"),
        "GET /1/matches HTTP/1.1\r\n\r\n".to_owned(),
        "GET /nope HTTP/1.1\r\n\r\n".to_owned(),
        format!("GET /1/match/{id}/history?since=x HTTP/1.1\r\n\r\n"),
    ];
    let answers: Vec<Vec<u8>> = kinds.iter().map(|k| one_answer(server.api, k)).collect();
    let (mut requests, mut expected) = (Vec::new(), Vec::new());
    for i in 0..400 {
        requests.extend_from_slice(kinds[i % kinds.len()].as_bytes());
        expected.extend_from_slice(&answers[i % kinds.len()]);
    }
    let last = "GET /1/matches HTTP/1.1\r\nConnection: close\r\n\r\n";
    requests.extend_from_slice(last.as_bytes());
    expected.extend_from_slice(raw_http(server.api, last.as_bytes()).as_bytes());

    let mut s = connect(server.api);
    let mut writer = s.try_clone().expect("clone");
    let started = Instant::now();
    let got = std::thread::scope(|scope| {
        scope.spawn(move || writer.write_all(&requests).expect("send"));
        // 16 KiB every 2 ms: ~3.5 MB take well over the 300 ms write timeout in all, while
        // every write of the server's makes progress within it.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{e} after {} of {} bytes", got.len(), expected.len()),
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let took = started.elapsed();
    assert!(took > Duration::from_millis(300), "read in {took:?}");
    if got != expected {
        let at = got
            .iter()
            .zip(&expected)
            .take_while(|(a, b)| a == b)
            .count();
        panic!(
            "{} bytes instead of {}; first difference at byte {at}: {:?}",
            got.len(),
            expected.len(),
            String::from_utf8_lossy(&got[at..(at + 200).min(got.len())])
        );
    }
}

#[test]
fn past_the_connection_cap_a_connection_gets_503_and_a_clean_close() {
    let server = TestServer::start_with(Config {
        max_api_connections: 3,
        ..test_config()
    });
    let request = "GET /1/matches HTTP/1.1\r\n\r\n";
    let mut open: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = connect(server.api);
            s.write_all(request.as_bytes()).expect("send");
            let answer = read_answer(&mut s);
            assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"), "{answer:?}");
            s
        })
        .collect();

    let mut fourth = connect(server.api);
    fourth.write_all(request.as_bytes()).expect("send");
    let body = r#"{"error":"too many connections"}"#;
    let want = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(String::from_utf8_lossy(&read_to_clean_close(fourth)), want);
    // The three admitted connections are still served.
    for s in &mut open {
        s.write_all(request.as_bytes()).expect("send");
        assert!(read_answer(s).starts_with(b"HTTP/1.1 200 OK\r\n"));
    }

    // Once one closes, a new connection is served again (as soon as its core has seen the
    // close: until then it may still be refused).
    drop(open.remove(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let answer = one_answer(server.api, "GET /1/stats HTTP/1.1\r\n\r\n");
        if answer.starts_with(b"HTTP/1.1 200 OK\r\n") {
            break answer;
        }
        assert!(answer.starts_with(b"HTTP/1.1 503 "), "{answer:?}");
        assert!(Instant::now() < deadline, "still refused after 10 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    let body = &stats[stats.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4..];
    let v: serde_json::Value = serde_json::from_slice(body).expect("json");
    assert_eq!(v["http"]["connections"], 3, "{v}");
    assert!(v["http"]["refused"].as_u64().unwrap_or(0) >= 1, "{v}");
}

/// A refused connection that never sends anything gets the same answer, once the kernel hands
/// it to the server (at the latest after the API port's `TCP_DEFER_ACCEPT` of a second).
#[test]
fn a_silent_connection_past_the_cap_gets_503() {
    let server = TestServer::start_with(Config {
        max_api_connections: 1,
        ..test_config()
    });
    let mut first = connect(server.api);
    first
        .write_all(b"GET /1/matches HTTP/1.1\r\n\r\n")
        .expect("send");
    assert!(read_answer(&mut first).starts_with(b"HTTP/1.1 200 OK\r\n"));
    let second = connect(server.api);
    let got = read_to_clean_close(second);
    assert!(
        got.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

/// The API port takes a connection when its first bytes arrive (`TCP_DEFER_ACCEPT`, issue 14):
/// one that has connected and said nothing yet holds no place under the cap, so a client that
/// asks meanwhile is served; and the silent one is served too once it asks.
#[test]
fn a_connection_that_has_sent_nothing_yet_holds_no_place_under_the_cap() {
    let server = TestServer::start_with(Config {
        max_api_connections: 1,
        ..test_config()
    });
    let request = "GET /1/matches HTTP/1.1\r\n\r\n";
    let mut silent = connect(server.api);
    std::thread::sleep(Duration::from_millis(100));
    // Accepted at the handshake, the silent connection would take the one place: 503 here.
    let mut asking = connect(server.api);
    asking.write_all(request.as_bytes()).expect("send");
    let answer = read_answer(&mut asking);
    assert!(
        answer.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    drop(asking);
    // Once the asking one's close is seen, the silent one asks and is answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = one_answer(server.api, "GET /1/stats HTTP/1.1\r\n\r\n");
        if stats.starts_with(b"HTTP/1.1 200 OK\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "still refused after 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    silent.write_all(request.as_bytes()).expect("send");
    let answer = read_answer(&mut silent);
    assert!(
        answer.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}
