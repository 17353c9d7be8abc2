//! The life of an API connection on a core's epoll set (`engine/src/api/poller.rs`, issue 14):
//! reads answered at once, a connection that needs a task handed to one in the middle of a
//! pipeline with nothing lost or reordered, requests in pieces, the idle limit, and shutdown
//! with a request half arrived. Real server, real sockets, answers compared byte for byte.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn connect(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// The exact answer the server gives to a JSON read.
fn json_answer(body: &str, keep_alive: bool) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nConnection: {}\r\n\r\n{body}",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    )
}

fn create_request(home: &str) -> String {
    let body = format!(r#"{{"home":"{home}","visit":"zzz","start_date":"2011-09-10"}}"#);
    format!(
        "POST /1/matches HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn created_answer(id: &str) -> String {
    let body = format!(r#"{{"id":"{id}"}}"#);
    format!(
        "HTTP/1.1 201 Created\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nLocation: /1/match/{id}\r\nConnection: keep-alive\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn reads_a_write_and_reads_pipelined_are_answered_in_order_byte_for_byte() {
    let server = TestServer::start();
    let id = "aaa-zzz-2011-09-10";
    // Two reads the core answers at once, a write that takes the connection to a task (it
    // waits for the store), then reads the task answers, the last one closing.
    let pipeline = format!(
        "GET /1/matches HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n{}\
         GET /1/matches HTTP/1.1\r\n\r\nGET /1/matches HTTP/1.1\r\nConnection: close\r\n\r\n",
        create_request("aaa")
    );
    let mut s = connect(&server);
    s.write_all(pipeline.as_bytes()).expect("send");
    let got = String::from_utf8(read_to_close(s)).expect("utf-8");
    let healthz = {
        let mut c = connect(&server);
        c.write_all(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
            .expect("send");
        String::from_utf8(read_to_close(c))
            .expect("utf-8")
            .replace("Connection: close", "Connection: keep-alive")
    };
    let listing = format!(r#"["{id}"]"#);
    let want = [
        json_answer("[]", true),
        healthz,
        created_answer(id),
        json_answer(&listing, true),
        json_answer(&listing, false),
    ]
    .concat();
    assert_eq!(got, want);
}

#[test]
fn reads_arriving_a_few_bytes_at_a_time_are_answered_like_whole_ones() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let pipeline = format!(
        "GET /1/match/{id} HTTP/1.1\r\n\r\nGET /1/matches HTTP/1.1\r\nConnection: close\r\n\r\n"
    );
    let state = server
        .reader()
        .get(&format!("/1/match/{id}"))
        .expect("state");
    let state = String::from_utf8(state.body).expect("utf-8");
    let mut s = connect(&server);
    // A few bytes per write, paused: the core sees each request in many reads, and keeps
    // what it has of one between them.
    for piece in pipeline.as_bytes().chunks(5) {
        s.write_all(piece).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
    let got = String::from_utf8(read_to_close(s)).expect("utf-8");
    let want = json_answer(&state, true) + &json_answer(&format!(r#"["{id}"]"#), false);
    assert_eq!(got, want);
}

#[test]
fn an_idle_connection_is_closed_at_the_idle_limit_not_before() {
    let mut config = test_config();
    config.http_idle_ms = 400;
    let server = TestServer::start_with(config);
    let mut s = connect(&server);
    s.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").expect("send");
    let answer = read_until(&mut s, br#"{"status":"ok"}"#);
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let answered = Instant::now();
    // Still open well before the limit: a read waits, it does not see the end.
    s.set_read_timeout(Some(Duration::from_millis(150)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("closed or answered before the idle limit: {other:?}"),
    }
    // Closed after it, with nothing more said (a margin of 10x for a loaded machine).
    s.set_read_timeout(Some(Duration::from_secs(4)))
        .expect("timeout");
    let n = s
        .read(&mut buf)
        .expect("the server closes the idle connection");
    assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_millis(380), "closed after {idle:?}");
    assert!(idle < Duration::from_secs(4), "closed after {idle:?}");
}

#[test]
fn a_request_half_arrived_at_shutdown_is_still_answered_and_closed() {
    let mut server = TestServer::start();
    let mut s = connect(&server);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t")
        .expect("send");
    // The server sees the first half before it stops.
    std::thread::sleep(Duration::from_millis(200));
    let stopping = std::thread::spawn(move || {
        server.stop();
        server
    });
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(b"\r\n\r\n").expect("send the rest");
    let got = String::from_utf8(read_to_close(s)).expect("utf-8");
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.contains("Connection: close\r\n"),
        "{got:?}"
    );
    drop(stopping.join().expect("the server stops"));
}
