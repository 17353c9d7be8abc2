//! Shared helpers of the end-to-end tests: a real server on ephemeral ports (2 cores, so
//! cross-core fanout always runs) that shuts down on drop, and raw-socket clients.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matchstream_client::HttpClient;
use matchstream_engine::config::StoreSpec;
use matchstream_engine::{Config, ServerHandle};
use matchstream_protocol::frame::{render_event, render_status, Version};
use matchstream_protocol::{Event, Match, MatchId};

/// The watcher token every test server uses.
pub const TOKEN: &str = "test-token";

/// A server for one test.
pub struct TestServer {
    /// The running node (shut down on drop).
    pub handle: Option<ServerHandle>,
    /// The API address.
    pub api: SocketAddr,
    /// Stream ports, one per core.
    pub ports: Vec<u16>,
}

/// The configuration tests start from: memory store, port 0, 2 cores, short timeouts.
pub fn test_config() -> Config {
    Config {
        cores: 2,
        api: "127.0.0.1:0".parse().expect("addr"),
        stream_port: 0,
        store: StoreSpec::Memory,
        token: Some(TOKEN.into()),
        command_timeout_ms: 2_000,
        http_timeout_ms: 2_000,
        http_idle_ms: 5_000,
        shutdown_grace_ms: 2_000,
        no_pin: true,
        ..Config::default()
    }
}

impl TestServer {
    /// A server with [`test_config`].
    pub fn start() -> TestServer {
        TestServer::start_with(test_config())
    }

    /// A server with `config`.
    pub fn start_with(config: Config) -> TestServer {
        let _ = env_logger::builder().is_test(true).try_init();
        let handle = matchstream_engine::start(config).expect("server starts");
        TestServer {
            api: handle.api_addr,
            ports: handle.stream_ports.clone(),
            handle: Some(handle),
        }
    }

    /// An authenticated API client.
    pub fn watcher(&self) -> HttpClient {
        HttpClient::new(&format!("http://{}", self.api))
            .expect("client")
            .with_token(TOKEN)
    }

    /// An anonymous API client.
    pub fn reader(&self) -> HttpClient {
        HttpClient::new(&format!("http://{}", self.api)).expect("client")
    }

    /// Creates the seed's match (elp-tig-2011-09-10) from the sample script; returns its id
    /// and the script.
    pub fn create_sample(&self) -> (MatchId, matchstream_protocol::script::Script) {
        let script =
            matchstream_protocol::script::parse_script(matchstream_protocol::script::SAMPLE)
                .expect("sample parses");
        let body = matchstream_protocol::api::new_match_body(&script.new_match);
        let r = self
            .watcher()
            .post_json("/1/matches", &body)
            .expect("create");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let id = MatchId::new(
            &script.new_match.home,
            &script.new_match.visit,
            script.new_match.start_date,
        );
        (id, script)
    }

    /// Posts an event; returns the status and body.
    pub fn post_event(&self, id: &MatchId, body: &str) -> (u16, String) {
        let r = self
            .watcher()
            .post_json(&format!("/1/match/{id}/events"), body.as_bytes())
            .expect("post");
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    }

    /// The match state as the API shows it.
    pub fn state(&self, id: &MatchId) -> Match {
        state(&mut self.reader(), id)
    }

    /// The match history as the API shows it.
    pub fn history(&self, id: &MatchId) -> Vec<Event> {
        history(&mut self.reader(), id)
    }

    /// Shuts the server down now.
    pub fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A match's state as `client`'s node answers `GET /1/match/<id>`.
pub fn state(client: &mut HttpClient, id: &MatchId) -> Match {
    let v = client
        .get(&format!("/1/match/{id}"))
        .expect("get")
        .json()
        .expect("json");
    matchstream_protocol::api::parse_match_json(&v).expect("match json")
}

/// A match's history as `client`'s node answers `GET /1/match/<id>/history`.
pub fn history(client: &mut HttpClient, id: &MatchId) -> Vec<Event> {
    let v = client
        .get(&format!("/1/match/{id}/history"))
        .expect("get")
        .json()
        .expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|e| matchstream_protocol::api::parse_event_json(e, id).expect("event json"))
        .collect()
}

/// Connects a subscriber to `port` and sends `line` + CRLF.
pub fn subscribe(port: u16, line: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(format!("{line}\r\n").as_bytes())
        .expect("send command");
    s
}

/// Reads until the server closes (or 20 s pass: a failure).
pub fn read_to_close(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!(
                "no close after {:?}: {e}; got {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Reads to the close, 4 KiB at a time with a 2 ms pause after each read for the first
/// `slow_bytes`, then as fast as it can.
pub fn read_slowly_at_first(mut s: TcpStream, slow_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed after {} bytes: {e}", out.len()),
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no close");
        if out.len() < slow_bytes {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Reads until `out` ends with `suffix`.
pub fn read_until(s: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(suffix) {
        let n = s.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "closed early; got {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Sends raw bytes to the API and reads the whole answer until the server closes.
pub fn raw_http(api: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request).expect("send");
    String::from_utf8_lossy(&read_to_close(s)).into_owned()
}

/// The bytes a subscriber must receive: `status` then every event's frame.
pub fn expected_stream(status: &Match, events: &[Event], version: Version) -> Vec<u8> {
    let mut out = Vec::new();
    render_status(status, version, &mut out);
    for e in events {
        render_event(e, version, &mut out);
    }
    out
}

/// Posts every event of the script (no sleeps); returns how many were posted.
pub fn post_all(
    server: &TestServer,
    id: &MatchId,
    script: &matchstream_protocol::script::Script,
    skip: usize,
) -> usize {
    let mut client = server.watcher();
    let mut n = 0;
    for step in &script.steps {
        if let matchstream_protocol::script::Step::Event(e) = step {
            n += 1;
            if n <= skip {
                continue;
            }
            let body = matchstream_protocol::api::posted_event_body(e);
            let r = client
                .post_json(&format!("/1/match/{id}/events"), &body)
                .expect("post");
            assert_eq!(
                r.status,
                201,
                "event {n}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    n
}

/// The token of node processes.
pub const NODE_TOKEN: &str = "t0k3n";

/// A `matchstream serve` process and the addresses from its `listening` line.
pub struct Node {
    /// The process.
    pub child: Child,
    /// The API address.
    pub api: SocketAddr,
    /// Stream ports.
    pub ports: Vec<u16>,
    /// Every line it logged so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

/// Starts the real binary: `serve` on ephemeral ports, 2 cores, with `args` added.
pub fn serve(args: &[&str]) -> Node {
    serve_at("127.0.0.1:0", args)
}

/// [`serve`] with its API on `api` (a node restarted where its clients expect it).
pub fn serve_at(api: &str, args: &[&str]) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_matchstream"))
        .arg("serve")
        .args([
            "--api",
            api,
            "--stream-port",
            "0",
            "--cores",
            "2",
            "--no-pin",
        ])
        .args(["--token", NODE_TOKEN])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let keep = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening api=").nth(1) {
                let mut words = rest.split_whitespace();
                let api = words.next().unwrap_or_default().to_owned();
                let ports = words
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("stream=")
                    .to_owned();
                let _ = tx.send((api, ports));
            }
            keep.lock().map(|mut l| l.push(line)).ok();
        }
    });
    let (api, ports) = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "no listening line; stderr: {:?}",
                lines.lock().map(|l| l.clone())
            )
        });
    Node {
        child,
        api: api.parse().expect("api address"),
        ports: ports.split(',').map(|p| p.parse().expect("port")).collect(),
        stderr: lines,
    }
}

impl Node {
    /// An authenticated client of this node's API.
    pub fn client(&self) -> HttpClient {
        HttpClient::new(&format!("http://{}", self.api))
            .expect("client")
            .with_token(NODE_TOKEN)
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        // SAFETY: kill on the pid of a child we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` of our own: free port, temp dir, append-only persistence.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one; fails the test with a clear message if `redis-server` is not installed.
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut redis = RedisServer {
            child: None,
            port,
            dir,
        };
        redis.launch();
        redis
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test: apt-get install redis-server (scripts/test does)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 64];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A test server (2 cores, in this process) whose store is this Redis.
    pub fn node(&self) -> TestServer {
        TestServer::start_with(Config {
            store: StoreSpec::Redis(matchstream_engine::config::RedisUrl::new(self.url())),
            ..test_config()
        })
    }

    /// A client connection, to read and rewrite the keys as a failover or a foreign writer
    /// would leave them.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("a connection to the test redis")
    }

    /// Kills it (SIGKILL: what persistence has is what survives).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits (bounded: 10 s) until `done` holds, re-checking every 20 ms; `what` names it.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The bodies of the sample script's events, in order.
pub fn sample_bodies() -> Vec<Vec<u8>> {
    let script = matchstream_protocol::script::parse_script(matchstream_protocol::script::SAMPLE)
        .expect("sample parses");
    script
        .steps
        .iter()
        .filter_map(|s| match s {
            matchstream_protocol::script::Step::Event(e) => {
                Some(matchstream_protocol::api::posted_event_body(e))
            }
            matchstream_protocol::script::Step::Sleep(_) => None,
        })
        .collect()
}

/// The sum over every core of one counter of `GET /1/stats` (e.g. `subscribers`).
pub fn core_sum(client: &mut HttpClient, key: &str) -> u64 {
    let v = client.get("/1/stats").expect("stats").json().expect("json");
    v["cores"]
        .as_array()
        .expect("cores")
        .iter()
        .map(|c| c[key].as_u64().unwrap_or(0))
        .sum()
}

/// Waits (bounded) until the node reports `n` subscribers in total.
pub fn wait_for_subscribers(server: &TestServer, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let total = core_sum(&mut server.reader(), "subscribers");
        if total >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {total} of {n} subscribers registered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the sample match (posts `start`) and returns its id, script and state after start.
pub fn started_sample(
    server: &TestServer,
) -> (MatchId, matchstream_protocol::script::Script, Match) {
    let (id, script) = server.create_sample();
    let (status, body) = server.post_event(&id, r#"{"kind":"start"}"#);
    assert_eq!(status, 201, "{body}");
    let state = server.state(&id);
    (id, script, state)
}
