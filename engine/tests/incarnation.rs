//! Incarnations end to end (docs/protocol.md, "Incarnations"): the v2 status frame names the
//! match's incarnation, a resume names it, and a resume against another one is refused with
//! `ERROR: match history changed`.

mod common;

use std::net::TcpStream;

use common::*;
use matchstream_protocol::frame::{render_event, Version};
use matchstream_protocol::{Incarnation, MatchId};

/// The incarnation of a v2 status frame.
fn incarnation_of(status: &[u8]) -> Incarnation {
    let text = String::from_utf8_lossy(status);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("\tincarnation: "))
        .unwrap_or_else(|| panic!("no incarnation line in {text:?}"));
    Incarnation::parse(line.as_bytes()).expect("16 hex digits")
}

/// Posts the sample's events `range` (0-based) through `node`; returns the seqs given.
fn post(node: &TestServer, id: &MatchId, range: std::ops::Range<usize>) -> Vec<u64> {
    let bodies = sample_bodies();
    bodies[range]
        .iter()
        .map(|body| {
            let (status, answer) = node.post_event(id, std::str::from_utf8(body).expect("UTF-8"));
            assert_eq!(status, 201, "{answer}");
            let v: serde_json::Value = serde_json::from_str(&answer).expect("json");
            v["seq"].as_u64().expect("seq")
        })
        .collect()
}

/// A v2 subscriber past its status frame: the stream and the incarnation it showed.
fn watch_v2(port: u16, user: &str, id: &MatchId) -> (TcpStream, Incarnation) {
    let mut s = subscribe(port, &format!("VERSION:2:CONNECT:{user}:MATCH:{id}"));
    let status = read_until(&mut s, b"\n\r\n");
    (s, incarnation_of(&status))
}

/// Reads the rest of a stream until the server closes it.
fn rest(s: TcpStream) -> String {
    String::from_utf8_lossy(&read_to_close(s)).into_owned()
}

/// On one node (memory store): a resume naming another incarnation is refused with the
/// lingering close of every handshake error, while the core goes on serving the match; one
/// naming the match's own incarnation resumes.
#[test]
fn a_resume_names_the_incarnation_and_a_wrong_one_is_refused() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    assert_eq!(post(&server, &id, 0..2), [1, 2]);
    let (mut live, current) = watch_v2(server.ports[0], "w", &id);
    assert_eq!(server.state(&id).incarnation, current);

    let other = Incarnation::from_bits(0x1234).expect("not zero");
    assert_ne!(other, current);
    let mut refused = subscribe(
        server.ports[0],
        &format!("VERSION:2:CONNECT:r:MATCH:{id}:SINCE:1:INCARNATION:{other}"),
    );
    assert_eq!(
        read_until(&mut refused, b"\r\n"),
        b"ERROR: match history changed\r\n"
    );
    // The refused connection is still open (the server drains it for up to a second): the
    // core keeps delivering meanwhile.
    assert_eq!(post(&server, &id, 2..3), [3]);
    let frame = read_until(&mut live, b"\n\r\n");
    assert!(String::from_utf8_lossy(&frame).contains("\tseq: 3\n"));
    drop(refused);

    let resumed = subscribe(
        server.ports[1],
        &format!("VERSION:2:CONNECT:r:MATCH:{id}:SINCE:1:INCARNATION:{current}"),
    );
    let bodies = sample_bodies().len();
    post(&server, &id, 3..bodies);
    let history = server.history(&id);
    let mut expected = Vec::new();
    for e in &history[1..] {
        render_event(e, Version::V2, &mut expected);
    }
    assert_eq!(rest(resumed), String::from_utf8_lossy(&expected));
}
