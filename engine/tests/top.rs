//! End to end, the real binary: `matchstream top --once` against a node under load (its
//! subscribers, events posted while it samples) prints the node's numbers; and the live
//! view under tmux (a detached session of a fixed size): it draws the node's subscribers,
//! quits on `q` and on Ctrl-C, and gives the terminal back as it was.

mod common;

use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use matchstream_engine::Config;
use matchstream_protocol::MatchId;

/// A node whose cores recount their busiest matches every 500 ms (the sweep follows the SSE
/// keep-alive when it is shorter than 5 s).
fn node() -> TestServer {
    TestServer::start_with(Config {
        sse_keepalive_ms: 500,
        ..test_config()
    })
}

/// `per_core[i]` v2 subscribers of `id` on core i, registered and counted in the busiest
/// matches.
fn subscribers(server: &TestServer, id: &MatchId, per_core: &[usize]) -> Vec<TcpStream> {
    let mut subs = Vec::new();
    for (core, &n) in per_core.iter().enumerate() {
        for i in 0..n {
            let line = format!("VERSION:2:CONNECT:c{core}u{i}:MATCH:{id}");
            subs.push(subscribe(server.ports[core], &line));
        }
    }
    let total: usize = per_core.iter().sum();
    wait_for_subscribers(server, total as u64);
    wait_until("the busiest matches counted", || {
        let v = server
            .reader()
            .get("/1/stats")
            .expect("stats")
            .json()
            .expect("json");
        v["busiest_matches"][0]["subscribers"] == total
    });
    subs
}

/// Posts a comment every 20 ms until stopped (at most 1,000, 60 s): the load while top
/// samples.
fn post_comments(server: &TestServer, id: &MatchId, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    let mut watcher = server.watcher();
    let path = format!("/1/match/{id}/events");
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut posted = 0;
        while !stop.load(Ordering::Relaxed)
            && posted < 1_000
            && started.elapsed() < Duration::from_secs(60)
        {
            let body = format!(r#"{{"kind":"comment","comment":"load {posted}"}}"#);
            let r = watcher.post_json(&path, body.as_bytes()).expect("post");
            assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
            posted += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        posted
    })
}

/// Runs `matchstream top --once` against `server`.
fn top_once(server: &TestServer) -> Output {
    Command::new(env!("CARGO_BIN_EXE_matchstream"))
        .args(["top", "--once", "--url", &format!("http://{}", server.api)])
        .stdin(Stdio::null())
        .output()
        .expect("top runs")
}

/// The words of the first line of `text` that starts with `start`.
fn words<'a>(text: &'a str, start: &str) -> Vec<&'a str> {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line {start:?} in:\n{text}"))
        .split_whitespace()
        .collect()
}

fn number(word: &str) -> f64 {
    word.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{word:?} is not a number"))
}

#[test]
fn top_once_prints_the_numbers_of_a_node_under_load() {
    let server = node();
    let (id, _, _) = started_sample(&server);
    let _subs = subscribers(&server, &id, &[3, 2]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = post_comments(&server, &id, stop.clone());
    let out = top_once(&server);
    stop.store(true, Ordering::Relaxed);
    let posted = load.join().expect("load");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(posted > 0);
    println!("{text}");
    assert!(!text.contains('\u{1b}'), "no escape codes: {text:?}");
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.contains("1 node · 2 cores · 5 subscribers")),
        "{text}"
    );
    let node_id = server
        .reader()
        .get("/1/stats")
        .expect("stats")
        .json()
        .expect("json")["node_id"]
        .as_str()
        .expect("id")
        .to_owned();
    // NODE / CORE, PORT, SUBS, DELIV/S, BUS PEAK, QUEUED, SLOW, CPU%, FLUSH p99.
    let total = words(&text, &node_id);
    assert_eq!(total[1], "5", "{text}");
    assert!(number(total[2]) > 0.0, "deliveries/s under load: {text}");
    assert_eq!(total[6], "0", "no slow cut-off");
    assert!(number(total[7]) >= 0.0, "CPU %: {text}");
    assert!(total[8].starts_with("<="), "publish->flush p99: {text}");
    for (core, subs) in [(0, 3.0), (1, 2.0)] {
        let row = words(&text, &format!("  core {core}"));
        assert_eq!(row[2], server.ports[core].to_string(), "{text}");
        assert_eq!(number(row[3]), subs, "{text}");
        assert!(number(row[4]) > 0.0, "core {core} delivers: {text}");
    }
    // The node's store thread took the posts: batches every second.
    let store = text
        .lines()
        .skip_while(|l| !l.starts_with("NODE  "))
        .nth(1)
        .expect("the nodes' table")
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(store[0], node_id);
    assert!(number(store[6]) > 0.0, "batches/s: {text}");
    assert_eq!(
        words(&text, id.as_str())[1],
        "5",
        "the busiest match: {text}"
    );
}

#[test]
fn top_once_fails_with_the_reason_when_the_node_does_not_answer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_matchstream"))
        .args([
            "top",
            "--once",
            "--url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .expect("top runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[test]
fn top_without_a_terminal_says_to_use_once() {
    let server = node();
    let out = Command::new(env!("CARGO_BIN_EXE_matchstream"))
        .args(["top", "--url", &format!("http://{}", server.api)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .expect("top runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--once"), "{err}");
}

/// A tmux server of this test's own (its own socket, no configuration file).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start() -> Tmux {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "tmux is needed for this test: apt-get install tmux (scripts/test does)"
        );
        Tmux {
            socket: format!("matchstream-top-{}-{}", std::process::id(), unique()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible screen of the session's pane.
    fn screen(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", session])
    }

    /// A format of the session's pane, e.g. `#{alternate_on}`.
    fn show(&self, session: &str, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", session, format])
            .trim()
            .to_owned()
    }

    /// Waits (bounded: 30 s) until the pane shows `needle`.
    fn wait_for(&self, session: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen(session);
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {needle:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Nanoseconds of the clock: a name no other run of this test takes.
fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn top_under_tmux_shows_the_node_and_quits_on_q_or_ctrl_c_restoring_the_terminal() {
    let server = node();
    let (id, _, _) = started_sample(&server);
    let _subs = subscribers(&server, &id, &[2, 1]);
    let tmux = Tmux::start();
    let bin = env!("CARGO_BIN_EXE_matchstream");
    for (session, key) in [("q", "q"), ("ctrl-c", "C-c")] {
        // The shell notes the terminal's settings before and after, and top's exit status;
        // then stays, so the pane can be read.
        let script = format!(
            "before=$(stty -g); echo BEFORE-TOP; '{bin}' top --url http://{}; rc=$?; \
             [ \"$(stty -g)\" = \"$before\" ] && echo TTY-RESTORED; echo TOP-EXIT=$rc; sleep 60",
            server.api
        );
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "110",
            "-y",
            "40",
            "sh",
            "-c",
            &script,
        ]);
        let screen = tmux.wait_for(session, "3 subscribers");
        assert!(screen.contains("NODE / CORE"), "{screen}");
        assert!(screen.contains("  core 1"), "{screen}");
        assert!(screen.contains(id.as_str()), "the busiest match: {screen}");
        assert_eq!(
            tmux.show(session, "#{alternate_on}"),
            "1",
            "on the alternate screen"
        );
        tmux.run(&["send-keys", "-t", session, key]);
        let screen = tmux.wait_for(session, "TOP-EXIT=");
        assert!(
            screen.contains("TOP-EXIT=0"),
            "top exits 0 on {key}: {screen}"
        );
        assert!(
            screen.contains("TTY-RESTORED"),
            "raw mode off again: {screen}"
        );
        assert!(
            screen.contains("BEFORE-TOP"),
            "the main screen is back: {screen}"
        );
        assert!(
            !screen.contains("NODE / CORE"),
            "the view is gone: {screen}"
        );
        assert_eq!(
            tmux.show(session, "#{alternate_on}"),
            "0",
            "off the alternate screen"
        );
        assert_eq!(
            tmux.show(session, "#{cursor_flag}"),
            "1",
            "the cursor shows"
        );
    }
}

#[test]
fn top_once_shows_every_node_of_a_redis_cluster() {
    let redis = RedisServer::start();
    let (a, b) = (redis.node(), redis.node());
    let (id, _, _) = started_sample(&a);
    wait_until("b serves the match", || {
        b.reader()
            .get(&format!("/1/match/{id}"))
            .is_ok_and(|r| r.status == 200)
    });
    let _on_a = subscribers_of(&a, &id, 2);
    let _on_b = subscribers_of(&b, &id, 1);
    wait_until("a lists b's API", || {
        let v = a
            .reader()
            .get("/1/stats")
            .expect("stats")
            .json()
            .expect("json");
        v["cluster"]
            .as_array()
            .is_some_and(|c| c.iter().any(|p| p["api"] == b.api.to_string()))
    });
    let out = top_once(&a);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.contains("2 nodes · 4 cores · 3 subscribers")),
        "{text}"
    );
    let id_of = |s: &TestServer| {
        s.reader()
            .get("/1/stats")
            .expect("stats")
            .json()
            .expect("json")["node_id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    assert_eq!(words(&text, &id_of(&a))[1], "2", "{text}");
    assert_eq!(words(&text, &id_of(&b))[1], "1", "{text}");
    assert!(text.contains("REDIS FEED"), "{text}");
    assert_eq!(
        words(&text, id.as_str())[1],
        "3",
        "summed over the nodes: {text}"
    );
}

/// `n` v2 subscribers of `id` on core 0 of `server`, registered.
fn subscribers_of(server: &TestServer, id: &MatchId, n: usize) -> Vec<TcpStream> {
    let subs = (0..n)
        .map(|i| {
            subscribe(
                server.ports[0],
                &format!("VERSION:2:CONNECT:u{i}:MATCH:{id}"),
            )
        })
        .collect();
    wait_for_subscribers(server, n as u64);
    // Counted in the busiest matches at the core's next sweep (every 5 s).
    wait_until("the busiest matches counted", || {
        let v = server
            .reader()
            .get("/1/stats")
            .expect("stats")
            .json()
            .expect("json");
        v["busiest_matches"][0]["subscribers"] == n
    });
    subs
}
