//! End-to-end tests of visit counts (docs/api.md, `GET /1/users/<id>`): only accepted
//! subscriptions count, and only watchers read the counts.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Connects to an unknown match, each with its own user id.
const STRANGERS: usize = 50;

/// A user's visit count, read with the watcher token.
fn visits(server: &TestServer, user: &str) -> u64 {
    let r = server
        .watcher()
        .get(&format!("/1/users/{user}"))
        .expect("get");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json().expect("json")["visits"].as_u64().expect("visits")
}

#[test]
fn connects_to_an_unknown_match_count_no_visits() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    for i in 0..STRANGERS {
        let got = read_to_close(subscribe(
            server.ports[i % 2],
            &format!("VERSION:2:CONNECT:stranger{i}:MATCH:no-such-match"),
        ));
        assert_eq!(String::from_utf8_lossy(&got), "ERROR: unknown match\r\n");
    }
    // An accepted subscription after them: once its visit is stored, theirs would be too.
    read_to_close(subscribe(
        server.ports[0],
        &format!("VERSION:1:CONNECT:known:MATCH:{id}"),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while visits(&server, "known") < 1 {
        assert!(
            Instant::now() < deadline,
            "the accepted visit never counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..STRANGERS {
        assert_eq!(visits(&server, &format!("stranger{i}")), 0, "stranger{i}");
    }
}

#[test]
fn only_watchers_read_visit_counts() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let r = server.reader().get("/1/users/ana").expect("get");
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    read_to_close(subscribe(
        server.ports[1],
        &format!("VERSION:1:CONNECT:ana:MATCH:{id}"),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while visits(&server, "ana") < 1 {
        assert!(Instant::now() < deadline, "the visit never counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(visits(&server, "ana"), 1);
}
