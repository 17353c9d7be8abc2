//! End-to-end tests of resuming with `SINCE` when the backlog is larger than the
//! slow-consumer bound (`--max-queue`): it is streamed in pieces as the client reads, then the
//! subscriber joins the live stream with no gap and no duplicate (docs/protocol.md, "Resuming
//! with SINCE").

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use matchstream_protocol::frame::{render_event, Version};
use matchstream_protocol::{Event, MatchId};

/// A started sample match with `count` comments of `len` bytes after `start`.
fn match_with_comments(server: &TestServer, count: usize, len: usize) -> MatchId {
    let (id, _script) = server.create_sample();
    assert_eq!(server.post_event(&id, r#"{"kind":"start"}"#).0, 201);
    // Four watchers at once: the order of comments does not matter here.
    std::thread::scope(|scope| {
        for part in 0..4 {
            let mut watcher = server.watcher();
            let id = &id;
            scope.spawn(move || {
                for i in (part..count).step_by(4) {
                    post_comment(&mut watcher, id, i, len);
                }
            });
        }
    });
    id
}

/// A backlog larger than the kernel's socket buffers can take on loopback (`tcp_wmem`'s
/// maximum is 4 MiB by default): 6,000 comments of 1,000 bytes.
const HUGE: usize = 6_000;

fn post_comment(watcher: &mut matchstream_client::HttpClient, id: &MatchId, i: usize, len: usize) {
    let text = format!("{i:06}{}", "c".repeat(len.saturating_sub(6)));
    let body = format!(r#"{{"kind":"comment","comment":"{text}"}}"#);
    let r = watcher
        .post_json(&format!("/1/match/{id}/events"), body.as_bytes())
        .expect("post");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// The v2 frames of `events`.
fn frames(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        render_event(e, Version::V2, &mut out);
    }
    out
}

/// Fails naming the first differing byte.
fn assert_same_stream(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
        panic!(
            "streams differ at byte {at} (got {} bytes, want {}): got {:?}, want {:?}",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[at.saturating_sub(100)..(at + 100).min(got.len())]),
            String::from_utf8_lossy(&want[at.saturating_sub(100)..(at + 100).min(want.len())])
        );
    }
}

/// A subscriber with a 4 KiB receive buffer, so that a backlog does not fit in the sockets'
/// buffers while it does not read.
fn subscribe_small_window(port: u16, line: &str) -> TcpStream {
    use std::io::Write;
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    sock.connect(&addr.into()).expect("connect");
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(format!("{line}\r\n").as_bytes())
        .expect("send command");
    s
}

/// Reads until `want` bytes arrived (or the server closes: then returns what came).
fn read_bytes(s: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(want);
    let mut buf = [0u8; 65536];
    while out.len() < want {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed after {} bytes: {e}", out.len()),
        }
    }
    out
}

#[test]
fn a_resume_whose_backlog_is_larger_than_the_queue_bound_gets_every_event() {
    // The issue's case: 300 comments of 1,000 bytes (≈320 KB of frames) against the default
    // 256 KiB bound, which answered `ERROR: too slow` every time while the whole backlog was
    // queued at once.
    let server = TestServer::start();
    let id = match_with_comments(&server, 300, 1000);
    let history = server.history(&id);
    let backlog = frames(&history);
    assert!(
        backlog.len() > test_config().max_queue,
        "the backlog exceeds the bound"
    );
    for (core, since) in [(0, 0u64), (1, 0), (0, 150), (1, 299)] {
        let mut s = subscribe(
            server.ports[core],
            &format!("VERSION:2:CONNECT:resumer:MATCH:{id}:SINCE:{since}"),
        );
        let want = frames(&history[since as usize..]);
        let got = read_bytes(&mut s, want.len());
        assert_same_stream(&got, &want);
    }
    assert_eq!(
        core_sum(&mut server.reader(), "slow_disconnects"),
        0,
        "no resumer was cut off as too slow"
    );
}

#[test]
fn a_slow_resumer_joins_the_live_stream_with_no_gap_and_no_duplicate() {
    // A small bound (8 KiB pieces of 4 KiB) and a reader that takes the backlog slowly while
    // the watcher keeps posting: the replay chases a growing history, then hands over to the
    // fanout. Every seq must arrive exactly once, in order, up to `stop`.
    let mut config = test_config();
    config.max_queue = 8 * 1024;
    let server = TestServer::start_with(config);
    let id = match_with_comments(&server, 200, 1000);
    let readers: Vec<_> = [0, 1]
        .into_iter()
        .map(|core| {
            let s = subscribe(
                server.ports[core],
                &format!("VERSION:2:CONNECT:resumer{core}:MATCH:{id}:SINCE:3"),
            );
            std::thread::spawn(move || read_slowly_at_first(s, 150 * 1024))
        })
        .collect();
    // 120 short comments, 3 ms apart, while they take the backlog (≈ 200 KB at 4 KiB per
    // 2 ms: ≈ 100 ms), and after they joined.
    let mut watcher = server.watcher();
    for i in 0..120 {
        post_comment(&mut watcher, &id, 1000 + i, 200);
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_eq!(server.post_event(&id, r#"{"kind":"stop"}"#).0, 201);
    let history = server.history(&id);
    let want = frames(&history[3..]);
    for reader in readers {
        let got = reader.join().expect("reader");
        assert_same_stream(&got, &want);
    }
    assert_eq!(core_sum(&mut server.reader(), "slow_disconnects"), 0);
}

#[test]
fn a_match_cancelled_during_a_replay_ends_it_after_whole_frames() {
    let server = TestServer::start();
    let id = match_with_comments(&server, HUGE, 1000);
    let history = server.history(&id);
    // Connects and does not read: the replay waits on the full socket.
    let s = subscribe_small_window(
        server.ports[1],
        &format!("VERSION:2:CONNECT:resumer:MATCH:{id}:SINCE:0"),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        core_sum(&mut server.reader(), "subscribers"),
        0,
        "still replaying, not yet in the fanout"
    );
    let r = server
        .watcher()
        .delete(&format!("/1/match/{id}"))
        .expect("delete");
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let got = read_to_close(s);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.ends_with("\n\r\nERROR: match cancelled\r\n"),
        "ends with the reason after a whole frame: {:?}",
        &text[text.len().saturating_sub(200)..]
    );
    let frames_part = &got[..got.len() - b"ERROR: match cancelled\r\n".len()];
    let all = frames(&history);
    assert!(
        frames_part.len() < all.len(),
        "the socket held the whole backlog: the test proves nothing"
    );
    assert_same_stream(frames_part, &all[..frames_part.len()]);
}

#[test]
fn shutdown_during_a_replay_says_so_after_whole_frames() {
    let mut server = TestServer::start();
    let id = match_with_comments(&server, HUGE, 1000);
    let history = server.history(&id);
    let s = subscribe_small_window(
        server.ports[0],
        &format!("VERSION:2:CONNECT:resumer:MATCH:{id}:SINCE:0"),
    );
    std::thread::sleep(Duration::from_millis(200));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            // Starts reading once the node is stopping.
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(5));
            }
            read_to_close(s)
        })
    };
    let stopper = std::thread::spawn(move || {
        server.stop();
    });
    std::thread::sleep(Duration::from_millis(100));
    done.store(true, Ordering::Release);
    let got = reader.join().expect("reader");
    stopper.join().expect("stop");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.ends_with("\n\r\nERROR: server shutting down\r\n"),
        "ends with the reason after a whole frame: {:?}",
        &text[text.len().saturating_sub(200)..]
    );
    let frames_part = &got[..got.len() - b"ERROR: server shutting down\r\n".len()];
    let all = frames(&history);
    assert!(
        frames_part.len() < all.len(),
        "the socket held the whole backlog: the test proves nothing"
    );
    assert_same_stream(frames_part, &all[..frames_part.len()]);
}
