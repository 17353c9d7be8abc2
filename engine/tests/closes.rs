//! End-to-end tests of how stream connections end (docs/protocol.md): a close behind input
//! sent after the command line is seen, and an error line is followed by a clean end of
//! stream, not a reset.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use matchstream_engine::shard::PEER_SWEEP;

/// Subscribers that send one byte after their command line, then close.
const CHATTY: usize = 500;

/// Waits (bounded by `within`) until the node reports `n` subscribers in total; returns the
/// last count seen.
fn wait_for_count(server: &TestServer, n: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let total = core_sum(&mut server.reader(), "subscribers");
        if total == n || Instant::now() >= deadline {
            return total;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn closes_behind_input_after_the_command_are_seen_within_the_sweep_period() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let mut subscribers = Vec::with_capacity(CHATTY);
    for i in 0..CHATTY {
        let mut s = subscribe(
            server.ports[i % 2],
            &format!("VERSION:2:CONNECT:u{i}:MATCH:{id}"),
        );
        // The status frame: the command line has been read, the extra byte comes later.
        read_until(&mut s, b"\n\r\n");
        subscribers.push(s);
    }
    assert_eq!(
        wait_for_count(&server, CHATTY as u64, Duration::from_secs(20)),
        CHATTY as u64
    );
    for mut s in subscribers {
        s.write_all(b"x").expect("extra byte");
    }
    let margin = Duration::from_secs(3);
    let left = wait_for_count(&server, 0, PEER_SWEEP + margin);
    assert_eq!(
        left,
        0,
        "subscribers still counted after {:?}",
        PEER_SWEEP + margin
    );
}

#[test]
fn a_too_long_line_gets_its_error_then_a_clean_end_of_stream() {
    let server = TestServer::start();
    let mut s = TcpStream::connect(("127.0.0.1", server.ports[0])).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(&[b'a'; 5_000]).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "{e} after {:?} instead of an end of stream",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    assert_eq!(String::from_utf8_lossy(&got), "ERROR: line too long\r\n");
}
