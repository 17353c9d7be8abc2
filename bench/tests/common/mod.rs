//! Helpers of the bench's integration tests: the real `matchstream` server as a process (built
//! by the workspace build), the bench binary (with its exit status), its JSON reports, small
//! misbehaving stream servers written with std::net, and a private redis-server and
//! nats-server (each on a free port in a temporary directory, stopped by its pid).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The watcher token every test server uses.
pub const TOKEN: &str = "T0k3n";

/// A folder in `dir` holding links to this build's `matchstream` and `matchstream-bench`: the
/// `--bin` of the bench's scripts.
pub fn bin_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("bin");
    std::os::unix::fs::symlink(engine_binary(), bin.join("matchstream")).expect("link");
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_matchstream-bench"),
        bin.join("matchstream-bench"),
    )
    .expect("link");
    bin
}

/// `<target dir>/debug/matchstream`, built by the workspace build.
pub fn engine_binary() -> PathBuf {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/debug/deps/<test> -> target/debug/matchstream
        if let Some(dir) = exe.parent().and_then(|d| d.parent()) {
            candidates.push(dir.join("matchstream"));
        }
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug").join("matchstream"));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the matchstream server binary is missing (looked at {candidates:?}): \
                 build the engine first: cargo build -p matchstream-engine"
            )
        })
}

/// A `matchstream serve` process (memory store, 2 cores, ports from the kernel).
pub struct Server {
    child: Child,
    /// The API address.
    pub api: SocketAddr,
    /// The stream ports, one per core.
    pub stream_ports: Vec<u16>,
}

impl Server {
    /// Starts a server and waits for its `listening` line.
    pub fn start() -> Server {
        let mut child = Command::new(engine_binary())
            .args([
                "serve",
                "--store",
                "memory",
                "--api",
                "127.0.0.1:0",
                "--stream-port",
                "0",
                "--token",
                TOKEN,
                "--cores",
                "2",
                "--no-pin",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening api=").nth(1) {
                    let _ = tx.send(Ok(rest.to_owned()));
                }
                seen.push(line);
                if seen.len() == 50 {
                    let _ = tx.send(Err(seen.join("\n")));
                }
            }
            let _ = tx.send(Err(seen.join("\n")));
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(line)) => line,
            other => panic!("no listening line from the server: {other:?}"),
        };
        // "127.0.0.1:PORT stream=P1,P2 cores=2 ..."
        let mut words = line.split_whitespace();
        let api = words.next().expect("api").parse().expect("api address");
        let stream_ports = words
            .find_map(|w| w.strip_prefix("stream="))
            .expect("stream ports")
            .split(',')
            .map(|p| p.parse().expect("port"))
            .collect();
        Server {
            child,
            api,
            stream_ports,
        }
    }

    /// `http://<api>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a bench run printed.
pub struct Run {
    /// Exit status was success.
    pub success: bool,
    /// The exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// Standard output (environment and table).
    pub stdout: String,
    /// Standard error (progress, errors).
    pub stderr: String,
}

/// Runs the bench binary with `args`, whatever its exit status.
pub fn bench_any(args: &[&str]) -> Run {
    bench_in(Path::new("."), args)
}

/// Runs the bench binary with `args` in the folder `dir`, whatever its exit status.
pub fn bench_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_matchstream-bench"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the bench runs");
    Run {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the bench binary with `args` and asserts it exits with `code` (0: passed, 1: the
/// run failed, 2: it could not run).
pub fn bench_status(args: &[&str], code: i32) -> Run {
    let run = bench_any(args);
    assert_eq!(
        run.code,
        Some(code),
        "bench {args:?} should exit {code}:\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// Runs the bench binary with `args` and asserts it passed.
pub fn bench(args: &[&str]) -> Run {
    bench_status(args, 0)
}

/// Runs the bench with `--json <tmp>` appended and returns the parsed report document.
pub fn bench_json(args: &[&str]) -> (Run, serde_json::Value) {
    bench_json_status(args, 0)
}

/// As [`bench_json`], asserting the exit status is `code`.
pub fn bench_json_status(args: &[&str], code: i32) -> (Run, serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("report.json");
    let mut all: Vec<&str> = args.to_vec();
    let p = path.to_str().expect("utf-8 path").to_owned();
    all.extend(["--json", &p]);
    let run = bench_status(&all, code);
    let text = std::fs::read_to_string(&path).expect("the report was written");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    let first = text
        .trim_start()
        .trim_start_matches('{')
        .trim_start()
        .to_owned();
    assert!(
        first.starts_with("\"environment\""),
        "the environment comes first"
    );
    (run, doc)
}

/// `doc["report"][key]` as u64.
pub fn num(doc: &serde_json::Value, path: &[&str]) -> u64 {
    let mut v = &doc["report"];
    for k in path {
        v = &v[*k];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a count: {v}"))
}

/// `doc["report"][path..]` as f64.
pub fn float(doc: &serde_json::Value, path: &[&str]) -> f64 {
    let mut v = &doc["report"];
    for k in path {
        v = &v[*k];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number: {v}"))
}

/// How a fake stream server treats each connection after reading its command line.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// A live status, then half an event, then close.
    ClosesMidEvent,
    /// A live status, then a detail line outside any event.
    DetailOutsideEvent,
    /// A live status, then nothing, never closing (until the client does).
    NeverCloses,
    /// A live status, then close (no stop).
    ClosesEarly,
    /// `ERROR: unknown match`.
    ErrorLine,
    /// Nothing at all: accepts, reads the command, stays silent until the client closes.
    Silent,
    /// A whole session: status, one event, stop, close.
    Behaves,
}

/// A live status frame (version 1).
pub const STATUS: &[u8] = b"2011-09-13 13:48:48: status:\n\thome: <<\"elp\">>\n\thome_players:\n\t\t Albil (25) \n\thome_score: 0\n\tvisit: <<\"tig\">>\n\tvisit_players:\n\t\t Luna (7) \n\tvisit_score: 0\n\tperiod: first\n\r\n";

/// A fake stream server on a free port, serving `how` to every connection; stops with the
/// test process (threads end when their client closes).
pub fn fake_server(how: Misbehaviour) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let h = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || serve_one(stream, how));
        }
    });
    (addr, h)
}

fn serve_one(mut s: TcpStream, how: Misbehaviour) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while s.read(&mut byte).map(|n| n == 1).unwrap_or(false) {
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    let reply: Vec<u8> = match how {
        Misbehaviour::ClosesMidEvent => {
            [STATUS, b"2011-09-13 13:48:51: goal:\n\tteam: <<\"tig\">>\n"].concat()
        }
        Misbehaviour::DetailOutsideEvent => [STATUS, b"\tteam: <<\"tig\">>\n"].concat(),
        Misbehaviour::NeverCloses | Misbehaviour::ClosesEarly => STATUS.to_vec(),
        Misbehaviour::ErrorLine => b"ERROR: unknown match\r\n".to_vec(),
        Misbehaviour::Silent => Vec::new(),
        Misbehaviour::Behaves => [
            STATUS,
            b"2011-09-13 13:48:51: goal:\n\tplayer: Luna (7) \n\tteam: <<\"tig\">>\n\r\n",
            b"2011-09-13 13:49:51: stop:\n\r\n",
        ]
        .concat(),
    };
    let _ = s.write_all(&reply);
    if let Misbehaviour::NeverCloses | Misbehaviour::Silent = how {
        // Hold the connection until the client gives up and closes it.
        let mut sink = [0u8; 64];
        while s.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
    }
}

/// A port where nothing listens.
pub fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A private redis-server on a free port in a temporary directory.
pub struct Redis {
    child: Child,
    /// Its port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts redis-server; panics with a clear message if it is not installed.
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = refused_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "redis-server is needed for the baseline test and could not start ({e}): \
                     apt-get install redis-server"
                )
            });
        // Built before waiting so that Drop stops it if it never answers.
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..200 {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"PING\r\n");
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return redis;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not answer on port {port}");
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private nats-server on a free port in a temporary directory.
pub struct Nats {
    child: Child,
    /// Its port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Nats {
    /// Starts nats-server; panics with a clear message if it is not installed.
    pub fn start() -> Nats {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = refused_port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--pid"])
            .arg(dir.path().join("nats.pid"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "nats-server is needed for the NATS baseline test and could not start \
                     ({e}): apt-get install nats-server (scripts/test installs it)"
                )
            });
        // Built before waiting so that Drop stops it if it never answers.
        let nats = Nats {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..200 {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(6).any(|w| w == b"PONG\r\n") {
                        return nats;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nats-server did not answer on port {port}");
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
