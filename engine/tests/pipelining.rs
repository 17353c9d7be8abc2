//! End-to-end tests of HTTP/1.1 pipelining on the API port: answers come in request order, a
//! request that breaks the rules or says `Connection: close` ends the connection before the
//! requests behind it run, and a request split over many reads is served like a whole one.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// One parsed answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Reads answers until the server closes; fails on bytes that are not whole answers.
fn answers_to_close(s: TcpStream) -> Vec<Answer> {
    parse_answers(&read_to_close(s))
}

fn parse_answers(mut bytes: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("a partial head: {:?}", String::from_utf8_lossy(bytes)));
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let status: u16 = head[9..12].parse().expect("status code");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length")
            .parse()
            .expect("length");
        let body_start = end + 4;
        assert!(bytes.len() >= body_start + length, "a partial body");
        let body = String::from_utf8_lossy(&bytes[body_start..body_start + length]).into_owned();
        out.push(Answer { status, head, body });
        bytes = &bytes[body_start + length..];
    }
    out
}

fn connect(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

fn create_request(home: &str, close: bool) -> String {
    let body = format!(r#"{{"home":"{home}","visit":"zzz","start_date":"2011-09-10"}}"#);
    format!(
        "POST /1/matches HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
}

fn listing(server: &TestServer) -> String {
    let r = server.reader().get("/1/matches").expect("list");
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn pipelined_posts_are_answered_in_order_each_once() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let mut pipeline = String::new();
    let start = r#"{"kind":"start"}"#;
    pipeline.push_str(&format!(
        "POST /1/match/{id}/events HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{start}",
        start.len()
    ));
    for i in 0..50 {
        let body = format!(r#"{{"kind":"comment","comment":"pipelined {i:02}"}}"#);
        pipeline.push_str(&format!(
            "POST /1/match/{id}/events HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    }
    pipeline.push_str(&format!(
        "GET /1/match/{id} HTTP/1.1\r\nConnection: close\r\n\r\n"
    ));
    let mut s = connect(&server);
    s.write_all(pipeline.as_bytes()).expect("send");
    let answers = answers_to_close(s);
    assert_eq!(answers.len(), 52, "{answers:?}");
    for (i, a) in answers[..51].iter().enumerate() {
        assert_eq!(a.status, 201, "{a:?}");
        assert!(
            a.body.contains(&format!(r#""seq":{}"#, i + 1)),
            "answer {i} in order: {}",
            a.body
        );
    }
    assert_eq!(answers[51].status, 200);
    assert!(
        answers[51].body.contains(r#""last_seq":51"#),
        "the GET behind the POSTs sees all of them: {}",
        answers[51].body
    );
    let history = server.history(&id);
    assert_eq!(history.len(), 51, "each POST ran exactly once");
    for (i, e) in history[1..].iter().enumerate() {
        assert_eq!(
            e.data.comment.as_deref(),
            Some(format!("pipelined {i:02}").as_str())
        );
    }
}

#[test]
fn a_malformed_request_mid_pipeline_ends_the_connection_before_the_post_behind_it() {
    let server = TestServer::start();
    let pipeline = format!(
        "GET /1/matches HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n{}",
        create_request("aaa", false)
    );
    let mut s = connect(&server);
    s.write_all(pipeline.as_bytes()).expect("send");
    let answers = answers_to_close(s);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].status, 200);
    assert_eq!(answers[1].status, 400, "{answers:?}");
    assert!(answers[1].head.contains("Connection: close"), "{answers:?}");
    assert_eq!(listing(&server), "[]", "the POST behind never ran");
}

#[test]
fn connection_close_mid_pipeline_ends_it_after_that_answer() {
    let server = TestServer::start();
    let pipeline = format!(
        "{}{}",
        create_request("bbb", true),
        create_request("ccc", false)
    );
    let mut s = connect(&server);
    s.write_all(pipeline.as_bytes()).expect("send");
    let answers = answers_to_close(s);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].status, 201);
    assert!(answers[0].head.contains("Connection: close"));
    assert_eq!(listing(&server), r#"["bbb-zzz-2011-09-10"]"#);
}

#[test]
fn requests_straddling_reads_are_served_like_whole_ones() {
    let server = TestServer::start();
    let pipeline = format!(
        "{}{}GET /1/matches HTTP/1.1\r\nConnection: close\r\n\r\n",
        create_request("ddd", false),
        create_request("eee", false)
    );
    let mut s = connect(&server);
    s.set_nodelay(true).expect("nodelay");
    // A few bytes per write, paused: the server sees every request in many reads, the
    // second one starting in the read that ends the first.
    for piece in pipeline.as_bytes().chunks(7) {
        s.write_all(piece).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("read");
    let answers = parse_answers(&rest);
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![201, 201, 200], "{answers:?}");
    assert_eq!(
        answers[2].body,
        r#"["ddd-zzz-2011-09-10","eee-zzz-2011-09-10"]"#
    );
}
