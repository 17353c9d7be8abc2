//! Black-box tests that secrets stay secret (issue 11, item 6): the real binary, with a Redis
//! password in its store URL and a watcher token, must show neither in anything it prints
//! (stdout, stderr) or answers; a generated token goes to a 0600 file the log names.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{raw_http, RedisServer};

/// The Redis password of these tests.
const PASSWORD: &str = "s3cretpw";

/// The watcher token of these tests.
const SECRET_TOKEN: &str = "tok-9f8e7d6c5b4a3921";

/// A `matchstream serve` process whose every output line (stdout and stderr) is kept.
struct Process {
    child: Child,
    /// Every line printed so far, from both streams.
    output: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Process {
    /// Starts `serve` on ephemeral ports with 2 cores and `args` added.
    fn serve(args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_matchstream"))
            .args(["serve", "--api", "127.0.0.1:0", "--stream-port", "0"])
            .args(["--cores", "2", "--no-pin"])
            .args(args)
            .env("RUST_LOG", "debug")
            .env_remove("MATCHSTREAM_TOKEN")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        readers.push(keep_lines(stdout, output.clone()));
        readers.push(keep_lines(stderr, output.clone()));
        Process {
            child,
            output,
            readers,
        }
    }

    /// Waits until a printed line contains `needle`; returns that line.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?}; output: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The API address from the `listening` line.
    fn api(&self) -> SocketAddr {
        let line = self.wait_for("listening api=");
        let rest = line.split("listening api=").nth(1).expect("api");
        rest.split_whitespace()
            .next()
            .expect("address")
            .parse()
            .expect("api address")
    }

    fn lines(&self) -> Vec<String> {
        self.output.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM, waits for the exit and for every line; returns all it printed.
    fn stop(self) -> String {
        // SAFETY: kill on the pid of a child we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.finish()
    }

    /// Waits for the exit and for every line; returns all it printed.
    fn finish(mut self) -> String {
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.lines().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keep_lines(from: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            into.lock().map(|mut l| l.push(line)).ok();
        }
    })
}

/// Sets a password on a running Redis (`CONFIG SET requirepass`).
fn require_password(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("redis");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(format!("CONFIG SET requirepass {PASSWORD}\r\n").as_bytes())
        .expect("send");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("answer");
    assert!(buf[..n].starts_with(b"+OK"), "{:?}", &buf[..n]);
}

/// A raw request with `Connection: close`, optionally with the token and a JSON body.
fn request(api: SocketAddr, method: &str, path: &str, token: bool, body: &str) -> String {
    let auth = match token {
        true => format!("Authorization: Bearer {SECRET_TOKEN}\r\n"),
        false => String::new(),
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw_http(api, req.as_bytes())
}

const NEW_MATCH: &str = r#"{"home":"elp","visit":"tig","start_date":"2011-09-10","home_players":[{"number":9,"name":"Boselli"}]}"#;

/// Asserts that `text` holds neither the password nor the token.
fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, SECRET_TOKEN] {
        let found: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(found.is_empty(), "{what} shows {secret:?}: {found:#?}");
    }
}

/// A node on a password-protected Redis that then dies: the failed writes' 503s, the reads
/// (stats, metrics, lists), and every line logged about the loss show the URL as
/// `redis://:***@…`, never the password nor the token.
#[test]
fn a_redis_password_and_the_token_show_in_no_answer_and_no_log_line() {
    let printed = secrets_stay_out(&[]);
    assert!(printed.contains("redis://:***@127.0.0.1"), "{printed}");
}

/// The same with JSON log lines and the access log: every line printed is one JSON object
/// with the four fields, the access log has a line per request with its method, path,
/// status, bytes, time and peer, and no line holds a secret (the token is in a header of
/// most of those requests; no header is logged).
#[test]
fn json_logs_and_the_access_log_show_every_request_and_no_secret() {
    let printed = secrets_stay_out(&["--log-format", "json", "--access-log"]);
    let mut access = Vec::new();
    for line in printed.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        for field in ["ts", "level", "target", "msg"] {
            assert!(v[field].is_string(), "{field} missing: {line}");
        }
        if v["target"] == "matchstream::access" {
            access.push(v);
        }
    }
    let seen: Vec<(String, String, u64)> = access
        .iter()
        .map(|v| {
            assert!(v["bytes"].as_u64().is_some_and(|b| b > 0), "{v}");
            assert!(v["us"].as_u64().is_some(), "{v}");
            assert!(
                v["peer"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("127.0.0.1:")),
                "{v}"
            );
            (
                v["method"].as_str().unwrap_or_default().to_owned(),
                v["path"].as_str().unwrap_or_default().to_owned(),
                v["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let want = |m: &str, p: &str, s: u64| (m.to_owned(), p.to_owned(), s);
    for request in [
        want("POST", "/1/matches", 201),
        want("POST", "/1/matches", 503),
        want("DELETE", "/1/match/elp-tig-2011-09-10", 503),
        want("GET", "/1/stats", 200),
        want("GET", "/metrics", 200),
        want("GET", "/1/checkin", 200),
    ] {
        assert!(
            seen.contains(&request),
            "{request:?} not in the access log: {seen:#?}"
        );
    }
}

/// Runs the scenario of the tests above on a node started with `args` added; returns
/// everything it printed, checked for secrets.
fn secrets_stay_out(args: &[&str]) -> String {
    let mut redis = RedisServer::start();
    require_password(redis.port);
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", redis.port);
    let node = Process::serve(
        &[&["--store", &url, "--token", SECRET_TOKEN], args].concat(),
        &[],
    );
    let api = node.api();
    let created = request(api, "POST", "/1/matches", true, NEW_MATCH);
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    redis.kill();

    let mut answers = Vec::new();
    let failed = request(
        api,
        "POST",
        "/1/matches",
        true,
        &NEW_MATCH.replace("elp", "bar"),
    );
    assert!(failed.starts_with("HTTP/1.1 503"), "{failed}");
    assert!(failed.contains("redis://:***@127.0.0.1"), "{failed}");
    answers.push(failed);
    for (method, path, body) in [
        ("POST", "/1/matches", NEW_MATCH),
        (
            "POST",
            "/1/match/elp-tig-2011-09-10/events",
            r#"{"kind":"start"}"#,
        ),
        ("DELETE", "/1/match/elp-tig-2011-09-10", ""),
        ("GET", "/1/users/a", ""),
        ("GET", "/1/stats", ""),
        ("GET", "/metrics", ""),
        ("GET", "/1/matches", ""),
        ("GET", "/1/checkin", ""),
    ] {
        answers.push(request(api, method, path, true, body));
    }
    // The store, the feed and the registry each log the loss once, with the URL.
    node.wait_for("redis subscription to redis://:***@");
    node.wait_for("registry on redis://:***@");
    let printed = node.stop();
    assert_no_secret("the output", &printed);
    for answer in &answers {
        assert_no_secret("an answer", answer);
    }
    printed
}

/// A node whose Redis is not there at start fails with the URL redacted.
#[test]
fn a_node_that_cannot_reach_redis_at_start_does_not_print_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{port}/0");
    let node = Process::serve(&["--store", &url, "--token", SECRET_TOKEN], &[]);
    let printed = node.finish();
    assert!(printed.contains("redis://:***@127.0.0.1"), "{printed}");
    assert_no_secret("the output", &printed);
}

/// Without `--token`, the generated token is in `<dir>/token` (mode 0600), which the log
/// names; no printed line holds the token; it works; a clean stop removes the file.
#[test]
fn a_generated_token_goes_to_a_0600_file_that_the_log_names_not_to_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("embedded:{}", dir.path().join("data").display());
    let node = Process::serve(&["--store", &store], &[]);
    let api = node.api();
    let path = dir.path().join("data").join("token");
    let line = node.wait_for("generated token in");
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert_token_file(&path, api, node)
}

/// Same with the memory store: the file goes to `$XDG_RUNTIME_DIR`.
#[test]
fn without_a_data_directory_the_generated_token_goes_to_the_runtime_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = dir.path().to_str().expect("utf-8 path");
    let node = Process::serve(&["--store", "memory"], &[("XDG_RUNTIME_DIR", runtime)]);
    let api = node.api();
    let path = dir.path().join(format!("matchstream-{}.token", api.port()));
    let line = node.wait_for("generated token in");
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert_token_file(&path, api, node)
}

/// The token file at `path` is 0600 and its token writes; the output never shows it.
fn assert_token_file(path: &Path, api: SocketAddr, node: Process) {
    let meta = std::fs::metadata(path).expect("token file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(path).expect("read");
    let token = token.trim();
    assert_eq!(token.len(), 32, "{token:?}");
    let req = format!(
        "POST /1/matches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{NEW_MATCH}",
        NEW_MATCH.len()
    );
    let created = raw_http(api, req.as_bytes());
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let printed = node.stop();
    assert!(
        !printed.contains(token),
        "the output shows the token: {printed}"
    );
    assert!(!path.exists(), "a clean stop removes {}", path.display());
}
