//! The client against a one-thread server of canned answers: keep-alive, reconnects, framing,
//! what is sent, and how failures name the URL.

use super::*;
use crate::testing::{Answer, TestServer, OK};
use std::net::TcpListener;

#[test]
fn keep_alive_reuses_one_connection() {
    let server = TestServer::start(vec![Answer::Keep(OK.into()), Answer::Keep(OK.into())]);
    let host = server.url.trim_start_matches("http://").to_owned();
    let mut client = HttpClient::new(&server.url).expect("client");
    for _ in 0..2 {
        let r = client.get("/1/checkin").expect("get");
        assert_eq!(r.status, 200);
        assert_eq!(r.json().expect("json")["ok"], true);
    }
    let (requests, connections) = server.finish();
    assert_eq!(connections, 1);
    assert!(requests[0].starts_with("GET /1/checkin HTTP/1.1\r\n"));
    assert!(requests[0].contains(&format!("\r\nHost: {host}\r\n")));
}

#[test]
fn reconnects_once_when_the_server_closed_a_kept_connection() {
    // The first answer claims keep-alive, but the server closes right after it.
    let server = TestServer::start(vec![Answer::Close(OK.into()), Answer::Keep(OK.into())]);
    let mut client = HttpClient::new(&server.url).expect("client");
    assert_eq!(client.get("/a").expect("first").status, 200);
    // Whether the close or the second request comes first, the client sees the
    // connection end before any answer and sends again on a new one.
    assert_eq!(client.get("/b").expect("second").status, 200);
    let (requests, connections) = server.finish();
    assert_eq!(connections, 2);
    assert!(requests[1].starts_with("GET /b "));
}

#[test]
fn connection_close_is_honoured() {
    let close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
    let server = TestServer::start(vec![Answer::Keep(close.into()), Answer::Keep(OK.into())]);
    let mut client = HttpClient::new(&server.url).expect("client");
    assert_eq!(client.get("/a").expect("first").body, b"hi");
    assert!(client.conn.is_none());
    assert_eq!(client.get("/b").expect("second").status, 200);
    assert_eq!(server.finish().1, 2);
}

#[test]
fn a_fresh_connection_closed_unanswered_is_an_error_naming_the_url() {
    let server = TestServer::start(vec![Answer::Hangup]);
    let url = server.url.clone();
    let mut client = HttpClient::new(&url).expect("client");
    let err = client
        .post_json("/1/matches", b"{}")
        .expect_err("no answer");
    let text = format!("{err:#}");
    assert!(
        text.starts_with(&format!("POST {url}/1/matches: ")),
        "{text}"
    );
    assert!(text.contains("closed the connection"), "{text}");
    assert_eq!(server.finish().1, 1, "no retry on a fresh connection");
}

#[test]
fn post_sends_token_type_length_and_body() {
    let created = "HTTP/1.1 201 Created\r\nContent-Length: 8\r\n\r\n{\"id\":1}";
    let server = TestServer::start(vec![Answer::Keep(created.into())]);
    let mut client = HttpClient::new(&format!("{}/", server.url))
        .expect("client")
        .with_token("s3cret");
    let r = client.post_json("/1/matches", b"{\"a\":1}").expect("post");
    assert_eq!(r.status, 201);
    assert!(r.is_success());
    let (requests, _) = server.finish();
    let req = &requests[0];
    assert!(req.starts_with("POST /1/matches HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("Authorization: Bearer s3cret\r\n"), "{req}");
    assert!(req.contains("Content-Type: application/json"), "{req}");
    assert!(req.contains("Content-Length: 7\r\n"), "{req}");
    assert!(req.ends_with("\r\n\r\n{\"a\":1}"), "{req}");
}

#[test]
fn error_statuses_are_responses_with_their_reason() {
    let conflict = "HTTP/1.1 409 Conflict\r\nContent-Length: 25\r\n\r\n\
                    {\"error\":\"match exists\"}\n";
    let plain = "HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\n\r\nbad request\n";
    let server = TestServer::start(vec![
        Answer::Keep(conflict.into()),
        Answer::Keep(plain.into()),
    ]);
    let mut client = HttpClient::new(&server.url).expect("client");
    let r = client.post_json("/1/matches", b"{}").expect("post");
    assert_eq!(r.status, 409);
    assert!(!r.is_success());
    assert_eq!(r.error_text(), "409 match exists");
    let r = client.get("/x").expect("get");
    assert_eq!(r.error_text(), "400 bad request");
    assert!(r.json().is_err());
    server.finish();
}

#[test]
fn no_content_then_keep_alive() {
    let no_content = "HTTP/1.1 204 No Content\r\n\r\n";
    let server = TestServer::start(vec![
        Answer::Keep(no_content.into()),
        Answer::Keep(OK.into()),
    ]);
    let mut client = HttpClient::new(&server.url).expect("client");
    let r = client.delete("/1/match/x").expect("delete");
    assert_eq!((r.status, r.body.len()), (204, 0));
    assert_eq!(r.error_text(), "status 204");
    assert_eq!(client.get("/y").expect("get").status, 200);
    let (requests, connections) = server.finish();
    assert_eq!(connections, 1);
    assert!(requests[0].starts_with("DELETE /1/match/x HTTP/1.1\r\n"));
}

#[test]
fn a_body_without_length_runs_until_close() {
    let old = "HTTP/1.0 200 OK\r\n\r\nall of it";
    let server = TestServer::start(vec![Answer::Close(old.into())]);
    let mut client = HttpClient::new(&server.url).expect("client");
    assert_eq!(client.get("/").expect("get").body, b"all of it");
    assert!(client.conn.is_none());
    server.finish();
}

#[test]
fn a_refused_connection_names_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let mut client = HttpClient::new(&url).expect("client");
    let text = format!("{:#}", client.get("/1/checkin").expect_err("refused"));
    assert!(
        text.starts_with(&format!("GET {url}/1/checkin: ")),
        "{text}"
    );
    assert!(text.contains("cannot connect"), "{text}");
}

#[test]
fn a_prefix_goes_before_every_path() {
    let server = TestServer::start(vec![Answer::Keep(OK.into())]);
    let mut client = HttpClient::new(&format!("{}/api/", server.url)).expect("client");
    assert_eq!(client.base_url(), format!("{}/api", server.url));
    assert_eq!(client.get("/1/matches").expect("get").status, 200);
    let (requests, _) = server.finish();
    assert!(
        requests[0].starts_with("GET /api/1/matches HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
}

#[test]
fn an_interim_answer_is_skipped() {
    let answer = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
    let server = TestServer::start(vec![Answer::Keep(answer.into())]);
    let mut client = HttpClient::new(&server.url).expect("client");
    let r = client.post_json("/1/matches", b"{}").expect("post");
    assert_eq!((r.status, r.body.as_slice()), (201, &b"{}"[..]));
    server.finish();
}

#[test]
fn unreadable_responses_are_errors_naming_why() {
    let cases = [
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "chunked",
        ),
        ("SMTP ready\r\n\r\n", "malformed response"),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            "after 2 of 5 body bytes",
        ),
    ];
    for (answer, why) in cases {
        let server = TestServer::start(vec![Answer::Close(answer.into())]);
        let mut client = HttpClient::new(&server.url).expect("client");
        let text = format!("{:#}", client.get("/x").expect_err(answer));
        assert!(text.contains(why), "{answer:?}: {text}");
        server.finish();
    }
}
