//! Operations (SPEC §9) against real servers: the health probes and the drain's answers byte
//! for byte as docs/api.md shows them (a node in this process), readiness while Redis goes
//! away and comes back, the drain of the real binary with v1, v2 and SSE subscribers, SIGTERM's
//! drain, and the drain of one of three nodes sharing a real `redis-server` under a live match.

mod common;
#[path = "../../protocol/tests/support/doc_blocks.rs"]
mod doc_blocks;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use doc_blocks::checked_blocks;
use matchstream_client::HttpClient;
use matchstream_engine::Config;
use matchstream_protocol::api::{new_match_body, parse_match_json};
use matchstream_protocol::frame::Version;
use matchstream_protocol::script::{parse_script, SAMPLE};
use matchstream_protocol::{Match, MatchId};

const API: &str = include_str!("../../docs/api.md");

/// The token of docs/api.md's examples.
const DOC_TOKEN: &str = "s3cret";

/// docs/api.md's `ops` exchanges, in the order they run against one fresh node; `None`: the
/// request is another exchange's.
const EXCHANGES: [(&str, Option<&str>); 5] = [
    ("healthz", None),
    ("readyz", None),
    ("drain", None),
    ("readyz-draining", Some("readyz")),
    ("checkin-draining", None),
];

const DRAINING_LINE: &str = "ERROR: node draining\r\n";
const DRAINING_SSE: &str = "event: error\ndata: {\"error\":\"node draining\"}\n\n";
const SHUTDOWN_LINE: &str = "ERROR: server shutting down\r\n";

/// Sends `request` on a new connection and reads one answer (its head and `Content-Length`).
fn exchange(api: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request).expect("send");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let head = loop {
        if let Some(i) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("read the head");
        assert!(n > 0, "closed inside the head: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    };
    let length = String::from_utf8_lossy(&answer[..head])
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: ")?.trim().parse().ok())
        .unwrap_or(0usize);
    while answer.len() < head + length {
        let n = s.read(&mut buf).expect("read the body");
        assert!(n > 0, "closed inside the body");
        answer.extend_from_slice(&buf[..n]);
    }
    answer
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn drain_request(token: Option<&str>) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!("POST /1/admin/drain HTTP/1.1\r\n{auth}Content-Length: 0\r\n\r\n").into_bytes()
}

/// The probes and the drain answer as docs/api.md shows, a drain needs the token (and a
/// refused one drains nothing), a second drain is harmless, and while the node drains its
/// liveness stays 200 and checkin, with no other node to send clients to, answers 503.
#[test]
fn health_and_drain_answers_are_as_documented() {
    let blocks = checked_blocks(API, "ops ");
    let mut named: Vec<String> = Vec::new();
    for (name, request) in EXCHANGES {
        if request.is_none() {
            named.push(format!("ops {name} request"));
        }
        named.push(format!("ops {name} response"));
    }
    named.sort();
    assert_eq!(
        blocks.keys().collect::<Vec<_>>(),
        named.iter().collect::<Vec<_>>(),
        "docs/api.md: ops blocks vs. this test"
    );
    let server = TestServer::start_with(Config {
        token: Some(DOC_TOKEN.into()),
        node_id: Some("n1".into()),
        drain_timeout: Duration::from_secs(600),
        ..test_config()
    });
    let doc = |name: &str| http_bytes(&blocks[&format!("ops {name}")]);
    let check = |name: &str, request: &str| {
        let got = exchange(server.api, &doc(&format!("{request} request")));
        assert_eq!(
            text(&got),
            text(&doc(&format!("{name} response"))),
            "docs/api.md exchange {name:?}"
        );
    };
    check("healthz", "healthz");
    check("readyz", "readyz");

    // Refused drains change nothing.
    let unauthorized = |body: &str| {
        format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json; charset=utf-8\r\n\
             Content-Length: {}\r\nWWW-Authenticate: Bearer\r\nConnection: keep-alive\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(
        text(&exchange(server.api, &drain_request(None))),
        unauthorized(r#"{"error":"missing bearer token"}"#)
    );
    assert_eq!(
        text(&exchange(server.api, &drain_request(Some("not-it")))),
        unauthorized(r#"{"error":"wrong bearer token"}"#)
    );
    let wrong_method = exchange(server.api, b"GET /1/admin/drain HTTP/1.1\r\n\r\n");
    assert!(
        text(&wrong_method).starts_with("HTTP/1.1 405 "),
        "{wrong_method:?}"
    );
    check("readyz", "readyz");

    check("drain", "drain");
    let again = exchange(server.api, &drain_request(Some(DOC_TOKEN)));
    let (head, body) = text(&again)
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .expect("an answer");
    assert!(head.starts_with("HTTP/1.1 202 Accepted\r\n"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["node"], "n1");
    assert_eq!(v["already_draining"], true, "{body}");
    let left = v["exit_within_ms"].as_u64().expect("exit_within_ms");
    assert!(
        (590_000..=600_000).contains(&left),
        "the first deadline holds: {body}"
    );
    check("readyz-draining", "readyz");
    check("healthz", "healthz");
    check("checkin-draining", "checkin-draining");
}

/// The body of a readiness answer over a keep-alive client.
fn readyz(client: &mut HttpClient) -> (u16, String) {
    let r = client.get("/readyz").expect("readyz");
    (r.status, text(&r.body))
}

/// The node's `matchstream_store_reachable` gauge in `/metrics` (what the alert rules read).
fn store_reachable(client: &mut HttpClient) -> String {
    let r = client.get("/metrics").expect("metrics");
    let body = text(&r.body);
    body.lines()
        .find(|l| l.starts_with("matchstream_store_reachable{"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no matchstream_store_reachable in {body}"))
        .to_owned()
}

/// Readiness follows Redis: 503 `redis unreachable` once it is killed (the liveness probe
/// stays 200), 200 again once it is back, without any probe going to Redis.
#[test]
fn readyz_follows_redis_going_away_and_coming_back() {
    let mut redis = RedisServer::start();
    let node = redis.node();
    let mut client = node.reader();
    assert_eq!(
        readyz(&mut client),
        (200, r#"{"status":"ready"}"#.to_owned())
    );
    assert_eq!(store_reachable(&mut client), "1");
    redis.kill();
    let unreachable = r#"{"error":"store unavailable: redis unreachable"}"#;
    let lost = r#"{"error":"store unavailable: redis subscription lost"}"#;
    let killed = Instant::now();
    loop {
        let (status, body) = readyz(&mut client);
        if (status, body.as_str()) == (503, unreachable) {
            break;
        }
        assert!(
            (status == 200 && body == r#"{"status":"ready"}"#) || (status == 503 && body == lost),
            "{status} {body}"
        );
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "still {status} {body} 10 s after redis was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("readyz: 503 {:?} after redis was killed", killed.elapsed());
    assert_eq!(
        store_reachable(&mut client),
        "0",
        "/metrics agrees with /readyz"
    );
    let alive = client.get("/healthz").expect("healthz");
    assert_eq!(
        (alive.status, text(&alive.body)),
        (200, r#"{"status":"ok"}"#.into())
    );
    redis.restart();
    let back = Instant::now();
    loop {
        let (status, body) = readyz(&mut client);
        if status == 200 {
            assert_eq!(body, r#"{"status":"ready"}"#);
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "still {status} {body} 20 s after redis came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("readyz: 200 {:?} after redis came back", back.elapsed());
    assert_eq!(
        store_reachable(&mut client),
        "1",
        "/metrics agrees with /readyz"
    );
}

/// Creates and starts the sample match on a node; its id, the state after `start`, and the
/// bodies of its other events.
fn started_sample_on(client: &mut HttpClient) -> (MatchId, Match, Vec<Vec<u8>>) {
    let script = parse_script(SAMPLE).expect("sample");
    let r = client
        .post_json("/1/matches", &new_match_body(&script.new_match))
        .expect("create");
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
    let events = sample_bodies();
    post(client, &id, &events[0]);
    (id.clone(), state(client, &id), events[1..].to_vec())
}

fn post(client: &mut HttpClient, id: &MatchId, body: &[u8]) {
    let r = client
        .post_json(&format!("/1/match/{id}/events"), body)
        .expect("post");
    assert_eq!(r.status, 201, "{}", text(&r.body));
}

/// A subscriber on `port` whose status frame has arrived (it is registered then).
fn subscribed(port: u16, line: &str) -> (TcpStream, Vec<u8>) {
    let mut s = subscribe(port, line);
    let status = read_until(&mut s, b"\n\r\n");
    (s, status)
}

/// An event stream of `id` on `api` whose status event has arrived.
fn sse_subscribed(api: SocketAddr, id: &MatchId) -> TcpStream {
    let mut s = TcpStream::connect(api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(format!("GET /1/match/{id}/stream HTTP/1.1\r\n\r\n").as_bytes())
        .expect("send");
    // The head and the status event may come in one read or several: read until both are in.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let whole = text(&got);
        if let Some((head, events)) = whole.split_once("\r\n\r\n") {
            if events.ends_with("\n\n") {
                assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head:?}");
                assert!(events.starts_with("id: 1\nevent: status\n"), "{events:?}");
                return s;
            }
        }
        let n = s.read(&mut buf).expect("read the head and the status");
        assert!(n > 0, "closed early: {whole:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// `matchstream drain` run against a node; its standard output.
fn drain_cli(node: &Node, token: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_matchstream"))
        .args(["drain", "--url", &format!("http://{}", node.api)])
        .args(["--token", token])
        .env_remove("MATCHSTREAM_TOKEN")
        .output()
        .expect("matchstream drain runs");
    assert!(
        out.status.success(),
        "matchstream drain failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Waits (bounded) for a node process to exit; its exit code and how long it took.
fn exit_of(node: &mut Node, within: Duration) -> (Option<i32>, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = node.child.try_wait().expect("wait") {
            return (status.code(), started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "the node still runs {within:?} on; log: {:?}",
            node.stderr.lock().map(|l| l.clone())
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The drain of a lone node through `matchstream drain`: the v2 subscriber and the event stream
/// are told `node draining` at once, new subscribers of both versions are refused, checkin and
/// readiness answer 503, a second drain is harmless; the v1 subscribers keep their stream to
/// the match's `stop`, byte for byte, and only then does the process exit, with 0.
#[test]
fn a_drain_keeps_v1_subscribers_until_their_match_stops_then_exits_0() {
    let mut node = serve(&[
        "--store",
        "memory",
        "--drain-timeout",
        "60s",
        "--node-id",
        "solo",
    ]);
    let mut client = node.client();
    let (id, after_start, rest) = started_sample_on(&mut client);
    let v1: Vec<_> = node
        .ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let (s, status) = subscribed(*port, &format!("VERSION:1:CONNECT:old{i}:MATCH:{id}"));
            std::thread::spawn(move || [status, read_to_close(s)].concat())
        })
        .collect();
    let (v2, _) = subscribed(node.ports[1], &format!("VERSION:2:CONNECT:new:MATCH:{id}"));
    let sse = sse_subscribed(node.api, &id);

    let said = drain_cli(&node, NODE_TOKEN);
    assert!(said.contains(" is draining"), "{said}");
    assert_eq!(text(&read_to_close(v2)), DRAINING_LINE);
    assert_eq!(text(&read_to_close(sse)), DRAINING_SSE);
    for (version, port) in [(1, node.ports[0]), (2, node.ports[1])] {
        let s = subscribe(port, &format!("VERSION:{version}:CONNECT:late:MATCH:{id}"));
        assert_eq!(text(&read_to_close(s)), DRAINING_LINE, "a new v{version}");
    }
    let late_sse = TcpStream::connect(node.api).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.write_all(format!("GET /1/match/{id}/stream HTTP/1.1\r\n\r\n").as_bytes())?;
        Ok(s)
    });
    let late_sse = text(&read_to_close(late_sse.expect("a new stream")));
    assert!(
        late_sse.starts_with("HTTP/1.1 200 OK\r\n")
            && late_sse.ends_with(&format!("\r\n\r\n{DRAINING_SSE}")),
        "{late_sse:?}"
    );
    assert_eq!(
        readyz(&mut client),
        (503, r#"{"error":"node draining"}"#.into())
    );
    let checkin = client.get("/1/checkin").expect("checkin");
    assert_eq!(checkin.status, 503, "{}", text(&checkin.body));
    assert!(drain_cli(&node, NODE_TOKEN).contains(" was draining already"));

    // The v1 subscribers hold the node.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        node.child.try_wait().expect("wait").is_none(),
        "exited with v1 subscribers"
    );
    for body in &rest {
        post(&mut client, &id, body);
    }
    let stopped = Instant::now();
    let history = history(&mut client, &id);
    let expected = expected_stream(&after_start, &history[1..], Version::V1);
    for reader in v1 {
        let got = reader.join().expect("v1 reader");
        assert!(
            got == expected,
            "a v1 subscriber's stream differs ({} vs {} bytes): {:?}",
            got.len(),
            expected.len(),
            text(&got[got.len().saturating_sub(200)..])
        );
    }
    let (code, _) = exit_of(&mut node, Duration::from_secs(10));
    assert_eq!(code, Some(0));
    eprintln!(
        "drained node exited {:?} after the match's stop",
        stopped.elapsed()
    );
}

/// Past `--drain-timeout` the v1 subscribers left get the shutdown notice, and the process
/// exits 0; `matchstream drain --wait` returns once it has.
#[test]
fn a_drain_timeout_ends_v1_subscribers_with_the_shutdown_notice_and_exits_0() {
    let mut node = serve(&["--store", "memory", "--drain-timeout", "1s"]);
    let (id, _, _) = started_sample_on(&mut node.client());
    let (v1, _) = subscribed(node.ports[0], &format!("VERSION:1:CONNECT:old:MATCH:{id}"));
    let asked = Instant::now();
    let cli = Command::new(env!("CARGO_BIN_EXE_matchstream"))
        .args(["drain", "--wait", "--url", &format!("http://{}", node.api)])
        .env("MATCHSTREAM_TOKEN", NODE_TOKEN)
        .output();
    let waited = asked.elapsed();
    let cli = cli.expect("matchstream drain runs");
    assert!(cli.status.success(), "{}", text(&cli.stderr));
    let said = text(&cli.stdout);
    assert!(
        said.contains(" is draining")
            && said.contains("within 1 s\n")
            && said.ends_with(" has stopped\n"),
        "{said}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "returned after {waited:?}"
    );
    let (code, _) = exit_of(&mut node, Duration::from_secs(1));
    assert_eq!(code, Some(0), "stopped when drain --wait returned");
    assert_eq!(text(&read_to_close(v1)), SHUTDOWN_LINE);
}

fn sigterm(node: &Node) {
    // SAFETY: kill on the pid of a child we own.
    unsafe { libc::kill(node.child.id() as i32, libc::SIGTERM) };
}

/// SIGTERM drains: the v1 subscriber of a match that ends within the grace period sees it end,
/// and the process exits 0 then, well before the grace period is over.
#[test]
fn sigterm_keeps_a_v1_subscriber_whose_match_ends_within_the_grace_period() {
    let mut node = serve(&["--store", "memory", "--shutdown-grace-ms", "20000"]);
    let mut client = node.client();
    let (id, after_start, rest) = started_sample_on(&mut client);
    let (v1, status) = subscribed(node.ports[1], &format!("VERSION:1:CONNECT:old:MATCH:{id}"));
    let (v2, _) = subscribed(node.ports[0], &format!("VERSION:2:CONNECT:new:MATCH:{id}"));
    let reader = std::thread::spawn(move || [status, read_to_close(v1)].concat());
    sigterm(&node);
    assert_eq!(text(&read_to_close(v2)), DRAINING_LINE);
    assert_eq!(
        readyz(&mut client),
        (503, r#"{"error":"node draining"}"#.into())
    );
    for body in &rest {
        post(&mut client, &id, body);
    }
    let history = history(&mut client, &id);
    let got = reader.join().expect("v1 reader");
    assert!(got == expected_stream(&after_start, &history[1..], Version::V1));
    let (code, took) = exit_of(&mut node, Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(5),
        "exit {took:?} after the stop"
    );
}

/// A second SIGTERM cuts the drain short: the v1 subscriber gets the shutdown notice at once.
#[test]
fn a_second_sigterm_stops_at_once() {
    let mut node = serve(&["--store", "memory", "--shutdown-grace-ms", "30000"]);
    let (id, _, _) = started_sample_on(&mut node.client());
    let (v1, _) = subscribed(node.ports[0], &format!("VERSION:1:CONNECT:old:MATCH:{id}"));
    sigterm(&node);
    // The drain has begun (the node answers 503) before the second signal.
    let mut client = node.client();
    wait_until("the drain", || readyz(&mut client).0 == 503);
    let again = Instant::now();
    sigterm(&node);
    assert_eq!(text(&read_to_close(v1)), SHUTDOWN_LINE);
    let (code, _) = exit_of(&mut node, Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(
        again.elapsed() < Duration::from_secs(5),
        "{:?}",
        again.elapsed()
    );
}

/// What one v2 subscriber of the cluster test saw: every whole frame of all its sessions.
struct Followed {
    /// The whole frames, in order, across its sessions.
    bytes: Vec<u8>,
    /// The streams it saw end without `stop`, and what each said last.
    endings: Vec<String>,
    /// The stream ports of its sessions.
    ports: Vec<u16>,
    /// When its last session began (after `endings.len()` reconnections).
    resumed_at: Option<Instant>,
}

/// A v2 client as the protocol asks one to be: it reads whole frames, remembers the last seq
/// and the incarnation, and when its stream ends before `stop` it checks in again (at the API
/// of `apis[0]` first, the next on failure) and resumes with `SINCE`. Bounded: 60 s.
fn follow(
    user: String,
    id: MatchId,
    first: TcpStream,
    port: u16,
    apis: Vec<SocketAddr>,
) -> Followed {
    let mut out = Followed {
        bytes: Vec::new(),
        endings: Vec::new(),
        ports: vec![port],
        resumed_at: None,
    };
    let mut last_seq = 0u64;
    let mut incarnation = String::new();
    let started = Instant::now();
    let mut stream = first;
    loop {
        let raw = read_to_close(stream);
        let mut rest = &raw[..];
        let mut stopped = false;
        while let Some(end) = rest.windows(3).position(|w| w == b"\n\r\n") {
            let frame = &rest[..end + 3];
            let lines: Vec<&str> = std::str::from_utf8(frame).expect("utf-8").lines().collect();
            last_seq = lines[1]
                .trim()
                .strip_prefix("seq: ")
                .and_then(|s| s.parse().ok())
                .expect("a v2 frame's seq");
            if lines[0].ends_with(": status:") {
                incarnation = lines[2]
                    .trim()
                    .trim_start_matches("incarnation: ")
                    .to_owned();
            }
            stopped = lines[0].ends_with(": stop:");
            out.bytes.extend_from_slice(frame);
            rest = &rest[end + 3..];
        }
        if stopped {
            assert!(rest.is_empty(), "{user}: bytes after stop: {rest:?}");
            return out;
        }
        out.endings.push(text(rest));
        // Check in again and resume: the first API that answers a checkin, its port.
        stream = loop {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{user} could not resume: {:?}",
                out.endings
            );
            let target = apis.iter().find_map(|api| {
                let r = HttpClient::new(&format!("http://{api}"))
                    .ok()?
                    .get("/1/checkin")
                    .ok()?;
                let v = r.json().ok().filter(|_| r.status == 200)?;
                v["port"].as_u64().and_then(|p| u16::try_from(p).ok())
            });
            let Some(port) = target else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let line =
                format!("VERSION:2:CONNECT:{user}:MATCH:{id}:SINCE:{last_seq}:INCARNATION:{incarnation}\r\n");
            if s.write_all(line.as_bytes()).is_ok() {
                out.ports.push(port);
                out.resumed_at = Some(Instant::now());
                break s;
            }
        };
    }
}

/// Subscribers per core of each node in the cluster test.
const PER_CORE: usize = 6;
/// Events posted continuously in the cluster test, after `start` and before `stop`.
const TICKS: usize = 400;

/// The issue's main test: three nodes on one Redis, v2 subscribers on every core of each
/// under a live match whose events are posted continuously through two of them. One node is
/// drained; it leaves the registry at once (while a v1 subscriber still holds it), every one of
/// its v2 subscribers checks in again — at that node first, which sends it elsewhere — and
/// resumes on the other two with `SINCE`; every subscriber's whole stream, across its
/// sessions, is the stored history byte for byte: nothing lost, nothing repeated. The
/// subscribers of the other nodes are never disturbed; the v1 subscriber sees the whole
/// match; the drained node exits 0 after it.
#[test]
fn draining_one_of_three_nodes_moves_its_v2_subscribers_and_loses_nothing() {
    let redis = RedisServer::start();
    let store = redis.url();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| {
            serve(&[
                "--store",
                &store,
                "--node-id",
                &format!("n{i}"),
                "--drain-timeout",
                "60s",
            ])
        })
        .collect();
    let (id, after_start, _) = started_sample_on(&mut nodes[0].client());
    for n in &nodes {
        let mut c = n.client();
        wait_until("every node knows the started match", || {
            c.get(&format!("/1/match/{id}"))
                .ok()
                .filter(|r| r.status == 200)
                .and_then(|r| parse_match_json(&r.json().ok()?).ok())
                .is_some_and(|m| m.last_seq == 1)
        });
    }
    let apis: Vec<SocketAddr> = nodes.iter().map(|n| n.api).collect();
    let mut followers = Vec::new();
    for (k, node) in nodes.iter().enumerate() {
        for (c, port) in node.ports.iter().enumerate() {
            for j in 0..PER_CORE {
                let user = format!("n{k}c{c}s{j}");
                let s = subscribe(*port, &format!("VERSION:2:CONNECT:{user}:MATCH:{id}"));
                // Its own node's checkin first, then the others'.
                let order: Vec<SocketAddr> = (0..3).map(|i| apis[(k + i) % 3]).collect();
                let (id, port) = (id.clone(), *port);
                followers.push((
                    k,
                    std::thread::spawn(move || follow(user, id, s, port, order)),
                ));
            }
        }
    }
    // One v1 subscriber holds the drained node until the match ends.
    let (v1, v1_status) = subscribed(
        nodes[0].ports[0],
        &format!("VERSION:1:CONNECT:old:MATCH:{id}"),
    );
    let v1 = std::thread::spawn(move || [v1_status, read_to_close(v1)].concat());
    let per_node = (PER_CORE * 2) as u64;
    for (k, n) in nodes.iter().enumerate() {
        let mut c = n.client();
        let want = per_node + u64::from(k == 0);
        wait_until("every subscriber registered", || {
            core_sum(&mut c, "subscribers") >= want
        });
    }

    // The match goes on through nodes 1 and 2, all along.
    let posted = Arc::new(AtomicUsize::new(0));
    let poster = std::thread::spawn({
        let (posted, id) = (posted.clone(), id.clone());
        let mut writers = [nodes[1].client(), nodes[2].client()];
        move || {
            for i in 0..TICKS {
                let body = format!(r#"{{"kind":"comment","comment":"tick {i}"}}"#);
                post(&mut writers[i % 2], &id, body.as_bytes());
                posted.store(i + 1, Ordering::Release);
                std::thread::sleep(Duration::from_millis(2));
            }
            post(&mut writers[0], &id, br#"{"kind":"stop"}"#);
        }
    });
    wait_until("a quarter of the events posted", || {
        posted.load(Ordering::Acquire) >= TICKS / 4
    });
    let r = nodes[0]
        .client()
        .post_json("/1/admin/drain", b"")
        .expect("drain");
    assert_eq!(r.status, 202, "{}", text(&r.body));
    let drained_at = Instant::now();
    let posted_at_drain = posted.load(Ordering::Acquire);

    // It leaves the registry at once, while its v1 subscriber still holds it...
    let mut con = redis.connection();
    wait_until("n0's registry entry removed", || {
        redis::cmd("EXISTS")
            .arg("ms:node:n0")
            .query::<i64>(&mut con)
            .is_ok_and(|n| n == 0)
    });
    let left_registry = drained_at.elapsed();
    assert!(left_registry < Duration::from_secs(1), "{left_registry:?}");
    // ... and the other nodes' checkins stop naming it within their next heartbeat.
    for n in &nodes[1..] {
        let mut c = n.client();
        wait_until("n0 gone from the others' view", || {
            let v = c.get("/1/stats").expect("stats").json().expect("json");
            v["cluster"]
                .as_array()
                .is_some_and(|ports| ports.iter().all(|p| p["node"] != "n0"))
        });
    }
    let forgotten = drained_at.elapsed();
    assert!(forgotten < Duration::from_secs(3), "{forgotten:?}");
    let mut c0 = nodes[0].client();
    assert_eq!(
        readyz(&mut c0),
        (503, r#"{"error":"node draining"}"#.into())
    );
    assert_eq!(readyz(&mut nodes[1].client()).0, 200);

    poster.join().expect("poster");
    let mut c1 = nodes[1].client();
    let history = history(&mut c1, &id);
    assert_eq!(history.len(), TICKS + 2, "start, the ticks, stop");
    let expected = expected_stream(&after_start, &history[1..], Version::V2);
    let mut moved = 0;
    let mut slowest_move = Duration::ZERO;
    let mut checked = 0;
    for (k, follower) in followers {
        let got = follower.join().expect("follower");
        assert!(
            got.bytes == expected,
            "a subscriber of node {k} got another stream ({} vs {} bytes, endings {:?}, ports {:?})",
            got.bytes.len(),
            expected.len(),
            got.endings,
            got.ports
        );
        checked += history.len();
        if k == 0 {
            assert_eq!(
                got.endings.first().map(String::as_str),
                Some(DRAINING_LINE),
                "a subscriber of the drained node: {:?}",
                got.endings
            );
            let last = *got.ports.last().expect("a port");
            assert!(
                nodes[1..].iter().any(|n| n.ports.contains(&last)),
                "it ended on port {last}, not on nodes 1 or 2: {:?}",
                got.ports
            );
            moved += 1;
            if let Some(at) = got.resumed_at {
                slowest_move = slowest_move.max(at - drained_at);
            }
        } else {
            assert!(
                got.endings.is_empty() && got.ports.len() == 1,
                "a subscriber of node {k} was disturbed: {:?}",
                got.endings
            );
        }
    }
    assert_eq!(moved, PER_CORE * 2);
    let old = v1.join().expect("v1");
    assert!(old == expected_stream(&after_start, &history[1..], Version::V1));
    let (code, exit_after_stop) = exit_of(&mut nodes[0], Duration::from_secs(10));
    assert_eq!(code, Some(0), "the drained node's exit");
    eprintln!(
        "drain figures: {moved} v2 subscribers moved (the last resumed {slowest_move:?} after the \
         drain, {posted_at_drain} of {TICKS} ticks posted then); registry entry gone after \
         {left_registry:?}, other nodes' checkins after {forgotten:?}; {checked} frames checked \
         over {} subscribers; the drained node exited 0, {exit_after_stop:?} after the last \
         stream ended",
        PER_CORE * 2 * 3
    );
}
