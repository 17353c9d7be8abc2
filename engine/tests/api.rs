//! End-to-end tests of the HTTP API (SPEC §4): answers byte for byte, bad input refused
//! whole, stored data unchanged by anything malformed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// The exact bytes of a JSON error answer.
fn error_answer(status: &str, reason: &str, keep_alive: bool, extra: &str) -> String {
    let body = format!("{{\"error\":\"{reason}\"}}");
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n{extra}Connection: {}\r\n\r\n{body}",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    )
}

#[test]
fn malformed_oversized_and_unknown_requests_get_their_status_and_change_nothing() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let big_headers = format!(
        "GET /1/matches HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let big_body = "POST /1/matches HTTP/1.1\r\nAuthorization: Bearer test-token\r\nContent-Length: 1000000\r\n\r\n";
    let cases: Vec<(&str, String, String)> = vec![
        ("garbage", "GARBAGE\r\n\r\n".into(), error_answer("400 Bad Request", "malformed request", false, "")),
        ("too large headers", big_headers, error_answer("431 Request Header Fields Too Large", "headers too large", false, "")),
        ("too large body", big_body.into(), error_answer("413 Content Too Large", "body too large", false, "")),
        (
            "no length",
            "POST /1/matches HTTP/1.1\r\nAuthorization: Bearer test-token\r\nConnection: close\r\n\r\n".into(),
            error_answer("411 Length Required", "length required", false, ""),
        ),
        (
            "unknown path",
            "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n".into(),
            error_answer("404 Not Found", "no such path", false, ""),
        ),
        (
            "wrong method",
            "PUT /1/matches HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            error_answer("405 Method Not Allowed", "method not allowed", false, "Allow: GET, HEAD, POST\r\n"),
        ),
        (
            "missing token",
            "POST /1/matches HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into(),
            error_answer("401 Unauthorized", "missing bearer token", false, "WWW-Authenticate: Bearer\r\n"),
        ),
        (
            "wrong token",
            "POST /1/matches HTTP/1.1\r\nAuthorization: Bearer nope\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into(),
            error_answer("401 Unauthorized", "wrong bearer token", false, "WWW-Authenticate: Bearer\r\n"),
        ),
        (
            "unknown match",
            "GET /1/match/aaa-bbb-2011-01-01 HTTP/1.1\r\nConnection: close\r\n\r\n".into(),
            error_answer("404 Not Found", "unknown match", false, "Access-Control-Allow-Origin: *\r\n"),
        ),
    ];
    for (name, request, answer) in cases {
        let got = raw_http(server.api, request.as_bytes());
        assert_eq!(got, answer, "case {name}");
    }
    let list = server
        .reader()
        .get("/1/matches")
        .expect("list")
        .json()
        .expect("json");
    assert_eq!(list, serde_json::json!([id.as_str()]));
    assert_eq!(server.history(&id).len(), 0);
}

#[test]
fn bad_json_and_every_kind_of_invalid_event_are_refused_whole() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let mut w = server.watcher();
    let bad_matches = [
        ("not json", "{"),
        (
            "missing visit",
            r#"{"home":"elp","start_date":"2011-09-10"}"#,
        ),
        (
            "bad team",
            r#"{"home":"ELP","visit":"tig","start_date":"2011-09-10"}"#,
        ),
        (
            "bad date",
            r#"{"home":"elp","visit":"tig","start_date":"2011-02-30"}"#,
        ),
        (
            "unknown key",
            r#"{"home":"elp","visit":"tig","start_date":"2011-09-11","x":1}"#,
        ),
    ];
    for (name, body) in bad_matches {
        let r = w.post_json("/1/matches", body.as_bytes()).expect("post");
        assert_eq!(
            r.status,
            400,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.json().expect("json")["error"].is_string(), "{name}");
    }
    let dup = w
        .post_json(
            "/1/matches",
            br#"{"home":"elp","visit":"tig","start_date":"2011-09-10"}"#,
        )
        .expect("post");
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.json().expect("json")["error"],
        "match elp-tig-2011-09-10 exists already"
    );

    // Before start only start (and comments) are accepted.
    let (status, body) = server.post_event(&id, r#"{"kind":"goal","team":"tig"}"#);
    assert_eq!(status, 409, "{body}");
    assert_eq!(server.post_event(&id, r#"{"kind":"start"}"#).0, 201);
    let bad_events = [
        ("not json", "{kind", 400),
        ("unknown kind", r#"{"kind":"dance"}"#, 400),
        ("status", r#"{"kind":"status"}"#, 400),
        (
            "unknown key",
            r#"{"kind":"goal","team":"tig","color":"red"}"#,
            400,
        ),
        ("unknown team", r#"{"kind":"goal","team":"boc"}"#, 400),
        ("missing team", r#"{"kind":"goal"}"#, 400),
        (
            "player not on roster",
            r#"{"kind":"goal","team":"tig","player":44}"#,
            400,
        ),
        (
            "player of the other team",
            r#"{"kind":"card","team":"tig","player":25,"card":"red"}"#,
            400,
        ),
        (
            "card without colour",
            r#"{"kind":"card","team":"elp","player":25}"#,
            400,
        ),
        (
            "player_in without name",
            r#"{"kind":"substitution","team":"elp","player_out":18,"player_in":30}"#,
            400,
        ),
        (
            "player_in already playing",
            r#"{"kind":"substitution","team":"elp","player_out":18,"player_in":{"number":25,"name":"X"}}"#,
            409,
        ),
        ("bad transition", r#"{"kind":"halftime_stop"}"#, 409),
        (
            "multi-line comment",
            r#"{"kind":"comment","comment":"a\nb"}"#,
            400,
        ),
    ];
    for (name, body, status) in bad_events {
        let (got, text) = server.post_event(&id, body);
        assert_eq!(got, status, "{name}: {text}");
    }
    let unknown = w
        .post_json("/1/match/aaa-bbb-2011-01-01/events", br#"{"kind":"start"}"#)
        .expect("post");
    assert_eq!(unknown.status, 404);
    assert_eq!(server.post_event(&id, r#"{"kind":"stop"}"#).0, 201);
    let (status, text) = server.post_event(&id, r#"{"kind":"goal","team":"tig","player":7}"#);
    assert_eq!(
        (status, text.as_str()),
        (409, r#"{"error":"the match has ended"}"#)
    );
    // Only start and stop were stored; the state is untouched by the refused events.
    let history = server.history(&id);
    assert_eq!(
        history.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let state = server.state(&id);
    assert_eq!(
        (
            state.home_score,
            state.visit_score,
            state.home_players.len()
        ),
        (0, 0, 11)
    );
}

#[test]
fn reads_checkin_stats_and_metrics() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    assert_eq!(server.post_event(&id, r#"{"kind":"start"}"#).0, 201);
    let (status, body) = server.post_event(&id, r#"{"kind":"goal","team":"tig","player":7}"#);
    assert_eq!(status, 201);
    let stored: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(stored["seq"], 2);
    assert_eq!(
        stored["data"]["player"],
        serde_json::json!({"number": 7, "name": "Luna"})
    );

    let mut r = server.reader();
    let checkin = r.get("/1/checkin").expect("checkin").json().expect("json");
    assert_eq!(checkin["host"], "127.0.0.1");
    assert!(server
        .ports
        .contains(&(checkin["port"].as_u64().expect("port") as u16)));
    let m = r
        .get(&format!("/1/match/{id}"))
        .expect("match")
        .json()
        .expect("json");
    assert_eq!(m["visit_score"], 1);
    assert_eq!(m["period"], "first");
    assert_eq!(
        m["home_players"][0],
        serde_json::json!({"number": 25, "name": "Albil"})
    );
    let since = r
        .get(&format!("/1/match/{id}/history?since=1"))
        .expect("history")
        .json()
        .expect("json");
    assert_eq!(since.as_array().map(Vec::len), Some(1));
    assert_eq!(since[0]["kind"], "goal");
    assert_eq!(
        r.get(&format!("/1/match/{id}/history?since=x"))
            .expect("history")
            .status,
        400
    );
    let stats = r.get("/1/stats").expect("stats").json().expect("json");
    assert_eq!(stats["cores"].as_array().map(Vec::len), Some(2));
    assert!(stats["process"]["open_files"].as_u64().expect("fds") > 0);
    let metrics = r.get("/metrics").expect("metrics");
    assert_eq!(metrics.status, 200);
    assert!(String::from_utf8_lossy(&metrics.body).contains("matchstream_subscribers{"));
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let server = TestServer::start();
    let request = "GET /1/matches HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /1/matches HTTP/1.1\r\nConnection: close\r\n\r\n";
    let got = raw_http(server.api, request.as_bytes());
    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\nAccess-Control-Allow-Origin: *\r\n";
    let expected = format!(
        "{ok}Connection: keep-alive\r\n\r\n[]{}{ok}Connection: close\r\n\r\n[]",
        error_answer("404 Not Found", "no such path", true, "")
    );
    assert_eq!(got, expected);
}

#[test]
fn a_slow_loris_request_is_cut_off_with_408() {
    let server = TestServer::start();
    let mut s = TcpStream::connect(server.api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    s.write_all(b"GET /1/matches HTTP/1.1\r\nX-A: 1\r\n")
        .expect("send");
    // Dribble a header byte now and then, never finishing the request.
    let mut answer = Vec::new();
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        if s.write_all(b"X-B: 2\r\n").is_err() {
            break;
        }
    }
    let _ = s.read_to_end(&mut answer);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "held for {:?}",
        started.elapsed()
    );
    assert_eq!(
        String::from_utf8_lossy(&answer),
        error_answer(
            "408 Request Timeout",
            "request not received in time",
            false,
            ""
        )
    );
    // The server still serves others.
    assert_eq!(server.reader().get("/1/matches").expect("list").status, 200);
}

/// Checkin counts a client it sent to a core there until it connects, but not for ever: the
/// clients of a checkin that never connect stop weighing on the core after `PENDING_TTL`.
#[test]
fn checkins_never_followed_by_a_connect_expire() {
    use matchstream_engine::stats::PENDING_TTL;
    let server = TestServer::start();
    let mut r = server.reader();
    let mut checkin = || {
        let v = r.get("/1/checkin").expect("checkin").json().expect("json");
        let port = v["port"].as_u64().expect("port") as u16;
        server
            .ports
            .iter()
            .position(|p| *p == port)
            .expect("a port of the node")
    };
    // Nobody connects: core 0, core 1, core 0 again; core 0 now counts two, core 1 one.
    assert_eq!([checkin(), checkin(), checkin()], [0, 1, 0]);
    let started = Instant::now();
    std::thread::sleep(PENDING_TTL + Duration::from_millis(100));
    // Core 1 would carry less; but all three expired: the tie goes to core 0 again.
    assert_eq!(checkin(), 0, "after {:?}", started.elapsed());
    assert_eq!(checkin(), 1);
}

/// The live page's files (SPEC §8), byte for byte as the binary holds them: `/`,
/// `/match/<id>` and `/ops` are HTML with a policy that lets the browser load nothing from
/// elsewhere, `/web/<file>` the stylesheet and scripts; an unknown file is a JSON 404.
#[test]
fn the_live_page_is_served_from_the_binary() {
    let server = TestServer::start();
    let html_head = |len: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len}\r\n\
             Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
             Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; \
             connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n"
        )
    };
    let pages: [(&str, &str); 3] = [
        ("/", include_str!("../web/index.html")),
        (
            "/match/elp-tig-2011-09-10",
            include_str!("../web/match.html"),
        ),
        ("/ops", include_str!("../web/ops.html")),
    ];
    for (path, body) in pages {
        let got = raw_http(
            server.api,
            format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(got, format!("{}{body}", html_head(body.len())), "{path}");
    }
    let assets: [(&str, &str, &str); 2] = [
        ("live.css", "text/css", include_str!("../web/live.css")),
        (
            "match.js",
            "text/javascript",
            include_str!("../web/match.js"),
        ),
    ];
    for (name, kind, body) in assets {
        let got = raw_http(
            server.api,
            format!("GET /web/{name} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let want = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\n\
             Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(got, want, "{name}");
    }
    let got = raw_http(
        server.api,
        b"GET /web/../Cargo.toml HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        got,
        error_answer("404 Not Found", "no such path", false, "")
    );
    let got = raw_http(
        server.api,
        b"GET /web/nope.js HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        got,
        error_answer("404 Not Found", "no such file", false, "")
    );
}
