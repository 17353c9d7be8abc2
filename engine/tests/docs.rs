//! The docs against a running server: every whole HTTP exchange `docs/api.md` shows, and
//! every `ERROR:` line `docs/protocol.md` lists, byte for byte as a client receives them.
//!
//! A fenced block is checked when the line before its fence is `<!-- check: <name> -->`; here
//! the `http <exchange> request` / `http <exchange> response` blocks of `docs/api.md`. In those
//! blocks the lines of the head stand for lines ending in `\r\n`, a blank line ends the head,
//! and what follows it is the body, without a final line end. (The frame and JSON examples
//! are checked by `protocol/tests/docs.rs`.)

mod common;
#[path = "../../protocol/tests/support/doc_blocks.rs"]
mod doc_blocks;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{read_to_close, read_until, test_config, TestServer};
use doc_blocks::checked_blocks;
use matchstream_engine::Config;

const API: &str = include_str!("../../docs/api.md");
const PROTOCOL: &str = include_str!("../../docs/protocol.md");

/// The token the examples of docs/api.md use.
const TOKEN: &str = "s3cret";

/// How the test sends an exchange's request.
enum Send {
    /// The doc's own request block.
    Doc,
    /// These bytes and nothing more (a request that never completes).
    Partial(&'static [u8]),
}

/// docs/api.md's exchanges, in the order they run against one fresh server (memory store).
const EXCHANGES: [(&str, Send); 9] = [
    ("create", Send::Doc),
    ("goal-before-start", Send::Doc),
    ("missing-token", Send::Doc),
    ("unknown-match", Send::Doc),
    ("wrong-method", Send::Doc),
    ("unknown-kind", Send::Doc),
    ("no-length", Send::Doc),
    (
        "timeout",
        Send::Partial(b"GET /1/matches HTTP/1.1\r\nHost: x\r\n"),
    ),
    ("cancel", Send::Doc),
];

/// docs/api.md's answer past the connection cap, checked by its own test on a server of its
/// own (whose cap one open connection reaches).
const FULL: &str = "http too-many response";

/// docs/api.md's event stream blocks, checked by their own test: the head of a stream (the
/// body that follows depends on the server's clock), and the 204 of a resume after the end.
const STREAM: [&str; 4] = [
    "http stream request",
    "http stream response-head",
    "http stream-ended request",
    "http stream-ended response",
];

#[test]
fn api_doc_exchanges_are_answered_as_shown() {
    let blocks = checked_blocks(API, "http ");
    let mut named: Vec<String> = Vec::new();
    for (name, send) in &EXCHANGES {
        if matches!(send, Send::Doc) {
            named.push(format!("http {name} request"));
        }
        named.push(format!("http {name} response"));
    }
    named.push(FULL.to_owned());
    named.extend(STREAM.map(str::to_owned));
    named.sort();
    let found: Vec<&String> = blocks.keys().collect();
    assert_eq!(
        found,
        named.iter().collect::<Vec<_>>(),
        "docs/api.md: blocks vs. table"
    );

    let server = TestServer::start_with(Config {
        token: Some(TOKEN.into()),
        http_timeout_ms: 300,
        ..test_config()
    });
    for (name, send) in &EXCHANGES {
        let request = match send {
            Send::Doc => http_bytes(&blocks[&format!("http {name} request")]),
            Send::Partial(bytes) => bytes.to_vec(),
        };
        let want = http_bytes(&blocks[&format!("http {name} response")]);
        let (got, closed) = exchange(server.api, &request);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "docs/api.md exchange {name:?}"
        );
        let says_close = got.windows(19).any(|w| w == b"Connection: close\r\n");
        assert_eq!(
            closed, says_close,
            "{name}: closed after `Connection: close` only"
        );
    }
}

#[test]
fn api_doc_answer_past_the_connection_cap_is_as_shown() {
    let blocks = checked_blocks(API, "http ");
    let server = TestServer::start_with(Config {
        token: Some(TOKEN.into()),
        max_api_connections: 1,
        ..test_config()
    });
    // The one connection the cap allows, counted once it has been answered.
    let mut held = TcpStream::connect(server.api).expect("connect");
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    held.write_all(b"GET /1/matches HTTP/1.1\r\n\r\n")
        .expect("send");
    read_until(&mut held, b"\r\n\r\n[]");
    let (got, closed) = exchange(server.api, b"GET /1/matches HTTP/1.1\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&http_bytes(&blocks[FULL])),
        "docs/api.md answer past the connection cap"
    );
    assert!(closed, "the refused connection is closed");
    drop(held);
}

#[test]
fn api_doc_stream_answers_are_as_shown() {
    let blocks = checked_blocks(API, "http stream");
    let server = TestServer::start_with(Config {
        token: Some(TOKEN.into()),
        ..test_config()
    });
    let (created, _) = exchange(server.api, CREATE);
    assert!(created.starts_with(b"HTTP/1.1 201 "), "{created:?}");
    let mut s = TcpStream::connect(server.api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(&http_bytes(&blocks["http stream request"]))
        .expect("send");
    // The head, and whatever of the status came with it.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = s.read(&mut buf).expect("read the head");
        assert!(n > 0, "closed inside the head: {head:?}");
        head.extend_from_slice(&buf[..n]);
    };
    assert_eq!(
        String::from_utf8_lossy(&head[..end]),
        String::from_utf8_lossy(&http_bytes(&blocks["http stream response-head"])),
        "docs/api.md stream head"
    );
    for body in [r#"{"kind":"start"}"#, r#"{"kind":"stop"}"#] {
        let post = format!(
            "POST /1/match/elp-tig-2011-09-10/events HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (answer, _) = exchange(server.api, post.as_bytes());
        assert!(answer.starts_with(b"HTTP/1.1 201 "), "{answer:?}");
    }
    let (got, closed) = exchange(
        server.api,
        &http_bytes(&blocks["http stream-ended request"]),
    );
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&http_bytes(&blocks["http stream-ended response"])),
        "docs/api.md stream-ended exchange"
    );
    assert!(!closed, "a 204 keeps the connection");
}

/// How the test provokes an error line on a stream port.
#[derive(Clone, Copy)]
enum Provoke {
    /// Send this command line.
    Command(&'static [u8]),
    /// Send nothing and wait.
    Silence,
    /// Subscribe (v2) to a match that has not started, then cancel it.
    Cancel,
    /// Subscribe to a match on a server whose slow-consumer bound is smaller than a status.
    TinyQueue,
    /// Subscribe (v2) to a match that has not started, then stop the server.
    Shutdown,
}

/// Every `ERROR:` reason of docs/protocol.md, and how it is provoked here.
const ERRORS: [(&str, Provoke); 12] = [
    (
        "malformed command",
        Provoke::Command(b"VERSION:1:CONNECT:ana:MATC:elp-tig-2011-09-10\r\n"),
    ),
    ("unknown command", Provoke::Command(b"HELLO\r\n")),
    (
        "unsupported version",
        Provoke::Command(b"VERSION:3:CONNECT:ana:MATCH:elp-tig-2011-09-10\r\n"),
    ),
    (
        "bad user id",
        Provoke::Command(b"VERSION:1:CONNECT:a b:MATCH:elp-tig-2011-09-10\r\n"),
    ),
    (
        "SINCE needs VERSION:2",
        Provoke::Command(b"VERSION:1:CONNECT:ana:MATCH:elp-tig-2011-09-10:SINCE:3\r\n"),
    ),
    ("line too long", Provoke::Command(&[b'x'; 1024])),
    ("timeout", Provoke::Silence),
    (
        "unknown match",
        Provoke::Command(b"VERSION:1:CONNECT:ana:MATCH:aaa-bbb-2011-01-01\r\n"),
    ),
    ("match cancelled", Provoke::Cancel),
    (
        "match history changed",
        Provoke::Command(
            b"VERSION:2:CONNECT:ana:MATCH:elp-tig-2011-09-10:SINCE:0:INCARNATION:0000000000000001\r\n",
        ),
    ),
    ("too slow", Provoke::TinyQueue),
    ("server shutting down", Provoke::Shutdown),
];

/// Documented, and not provoked by this test: a node out of file descriptors; a match
/// withdrawn because what Redis holds for it fails the checks (engine/tests/store_trust.rs);
/// a node being drained (engine/tests/ops.rs).
const NOT_PROVOKED: [&str; 3] = [
    "server out of file descriptors",
    "match unavailable",
    "node draining",
];

const CREATE: &[u8] = b"POST /1/matches HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\
    Content-Length: 54\r\n\r\n{\"home\":\"elp\",\"visit\":\"tig\",\"start_date\":\"2011-09-10\"}";
const CANCEL: &[u8] =
    b"DELETE /1/match/elp-tig-2011-09-10 HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n";
const SUBSCRIBE_V2: &[u8] = b"VERSION:2:CONNECT:ana:MATCH:elp-tig-2011-09-10\r\n";
/// The end of the status frame of the match CREATE makes.
const STATUS_END: &[u8] = b"\tperiod: not_started\n\r\n";

#[test]
fn protocol_doc_error_lines_are_sent_as_shown() {
    let documented = documented_error_reasons(PROTOCOL);
    let mut covered: Vec<&str> = ERRORS.iter().map(|(r, _)| *r).chain(NOT_PROVOKED).collect();
    covered.sort_unstable();
    let mut listed: Vec<&str> = documented.iter().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(
        listed, covered,
        "docs/protocol.md's error table vs. this test's"
    );

    let config = || Config {
        token: Some(TOKEN.into()),
        command_timeout_ms: 300,
        ..test_config()
    };
    let mut server = TestServer::start_with(config());
    let tiny = TestServer::start_with(Config {
        max_queue: 64,
        ..config()
    });
    for s in [&server, &tiny] {
        let (created, _) = exchange(s.api, CREATE);
        assert!(created.starts_with(b"HTTP/1.1 201 "), "{created:?}");
    }
    for (reason, provoke) in ERRORS {
        let line = format!("ERROR: {reason}\r\n");
        let port = server.ports[0];
        let rest = match provoke {
            Provoke::Command(bytes) => {
                let mut s = connect(port);
                s.write_all(bytes).expect("send");
                read_to_close(s)
            }
            Provoke::Silence => read_to_close(connect(port)),
            Provoke::TinyQueue => {
                let mut s = connect(tiny.ports[0]);
                s.write_all(SUBSCRIBE_V2).expect("send");
                read_to_close(s)
            }
            Provoke::Cancel | Provoke::Shutdown => {
                let mut s = connect(port);
                s.write_all(SUBSCRIBE_V2).expect("send");
                read_until(&mut s, STATUS_END);
                if matches!(provoke, Provoke::Cancel) {
                    let (answer, _) = exchange(server.api, CANCEL);
                    assert!(answer.starts_with(b"HTTP/1.1 204 "), "{answer:?}");
                    let rest = read_to_close(s);
                    let (created, _) = exchange(server.api, CREATE);
                    assert!(created.starts_with(b"HTTP/1.1 201 "), "{created:?}");
                    rest
                } else {
                    server.stop();
                    read_to_close(s)
                }
            }
        };
        assert_eq!(
            String::from_utf8_lossy(&rest),
            line,
            "docs/protocol.md error line {reason:?}"
        );
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// Sends `request` on a new connection and reads one answer; also tells whether the server
/// then closed the connection.
fn exchange(api: SocketAddr, request: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request).expect("send");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let head_len = loop {
        if let Some(i) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("read the head");
        assert!(n > 0, "closed inside the head: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    };
    let length = String::from_utf8_lossy(&answer[..head_len])
        .lines()
        .find_map(|l| {
            l.strip_prefix("Content-Length: ")?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    while answer.len() < head_len + length {
        let n = s.read(&mut buf).expect("read the body");
        assert!(n > 0, "closed inside the body: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let closed = match s.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("more than one answer: {:?}", &buf[..n]),
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    (answer, closed)
}

/// The bytes an `http` block stands for: head lines ending in `\r\n`, the blank line, the body.
fn http_bytes(block: &str) -> Vec<u8> {
    let mut lines = block.lines();
    let mut out = Vec::new();
    for line in lines.by_ref().take_while(|l| !l.is_empty()) {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(lines.collect::<Vec<_>>().join("\n").as_bytes());
    out
}

/// The reasons of the `ERROR: <reason>\r\n` lines in the table of `doc`'s Errors section.
fn documented_error_reasons(doc: &str) -> Vec<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `ERROR: "))
        .filter_map(|l| l.split_once("\\r\\n`"))
        .map(|(reason, _)| reason.to_owned())
        .collect()
}
