//! End-to-end test of the outbox's slow path: a subscriber that pauses reading long enough
//! for its socket to fill, then reads again, gets a byte-exact v2 stream and is not cut off
//! (its queue stayed under `--max-queue`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use matchstream_protocol::frame::Version;

#[test]
fn a_subscriber_that_pauses_then_reads_gets_every_frame_exactly_once() {
    let mut config = test_config();
    config.max_queue = 16 * 1024 * 1024;
    let server = TestServer::start_with(config);
    let (id, _) = server.create_sample();
    assert_eq!(server.post_event(&id, r#"{"kind":"start"}"#).0, 201);
    let after_start = server.state(&id);
    // A 4 KiB receive buffer, and no reading yet.
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], server.ports[1]).into();
    sock.connect(&addr.into()).expect("connect");
    let mut s: TcpStream = sock.into();
    s.write_all(format!("VERSION:2:CONNECT:pauser:MATCH:{id}\r\n").as_bytes())
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(20);
    while core_sum(&mut server.reader(), "subscribers") < 1 {
        assert!(Instant::now() < deadline, "never subscribed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Numbered comments until the server holds back what the socket does not take: the
    // subscriber's outbox is then blocked and its tend task waits for writability.
    let mut watcher = server.watcher();
    let mut posted = 0usize;
    let mut posted_bytes = 0u64;
    loop {
        for _ in 0..100 {
            let body = format!(
                r#"{{"kind":"comment","comment":"{posted:06}{}"}}"#,
                "p".repeat(994)
            );
            let r = watcher
                .post_json(&format!("/1/match/{id}/events"), body.as_bytes())
                .expect("post");
            assert_eq!(r.status, 201);
            posted += 1;
            posted_bytes += 1000 + 63; // a v2 comment frame with a 6-digit seq at most
        }
        let sent = core_sum(&mut server.reader(), "bytes_sent");
        if sent + 64 * 1024 < posted_bytes {
            break;
        }
        assert!(
            posted < 20_000,
            "the socket never filled: {sent} bytes sent of ~{posted_bytes}"
        );
    }
    assert_eq!(server.post_event(&id, r#"{"kind":"stop"}"#).0, 201);
    // Now it reads everything, to the close after `stop`.
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to the close");
    let want = expected_stream(&after_start, &server.history(&id)[1..], Version::V2);
    if got != want {
        let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
        panic!(
            "the stream differs at byte {at} (got {} bytes, want {}): {:?}",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[at.saturating_sub(100)..(at + 100).min(got.len())])
        );
    }
    assert_eq!(core_sum(&mut server.reader(), "slow_disconnects"), 0);
}
