//! End to end, the real binary: `matchstream watch` (v2 in words, v2 raw, SSE raw) follows a
//! match while its node is killed (or stopped) mid-match and restarted on the same embedded
//! store and API address; each watcher checks in again, resumes after the last event it
//! printed and prints every event exactly once, then exits 0 after `stop`.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use matchstream_client::HttpClient;
use matchstream_protocol::api::posted_event_body;
use matchstream_protocol::frame::{render_event, render_status, Version};
use matchstream_protocol::script::{parse_script, Step, SAMPLE};
use matchstream_protocol::{sse, Event, EventKind, Match, MatchId};

/// A running `matchstream watch` and what it printed so far.
struct Watcher {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

impl Watcher {
    fn start(url: &str, id: &MatchId, args: &[&str]) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_matchstream"))
            .args(["watch", id.as_str(), "--url", url])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("watch starts");
        let collect = |mut from: Box<dyn Read + Send>| {
            let to = Arc::new(Mutex::new(Vec::new()));
            let keep = to.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    keep.lock().expect("lock").extend_from_slice(&buf[..n]);
                }
            });
            to
        };
        let out = collect(Box::new(child.stdout.take().expect("stdout")));
        let err = collect(Box::new(child.stderr.take().expect("stderr")));
        Watcher { child, out, err }
    }

    fn out(&self) -> Vec<u8> {
        self.out.lock().expect("lock").clone()
    }

    fn err(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().expect("lock")).into_owned()
    }

    /// Waits until stdout holds `needle` `count` times.
    fn wait_for(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = String::from_utf8_lossy(&self.out()).into_owned();
            if out.matches(needle).count() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "watch printed {:?} times {needle:?}, not {count}: {out}\nstderr: {}",
                out.matches(needle).count(),
                self.err()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for the exit; its code.
    fn exit_code(mut self) -> (Option<i32>, Vec<u8>, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The readers see the pipes' ends right after the exit.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.out(), self.err());
            }
            assert!(
                Instant::now() < deadline,
                "watch did not exit; stdout: {}\nstderr: {}",
                String::from_utf8_lossy(&self.out()),
                self.err()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The words a watcher's line opens with for an event of `kind`.
fn title(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Start => "KICK-OFF",
        EventKind::Stop => "FULL TIME",
        EventKind::HalftimeStart => "HALF-TIME",
        EventKind::HalftimeStop => "SECOND HALF",
        EventKind::Extratime => "EXTRA TIME",
        EventKind::Card => "CARD",
        EventKind::Goalkick => "GOAL KICK",
        EventKind::Freekick => "FREE KICK",
        EventKind::Throwin => "THROW-IN",
        EventKind::Substitution => "SUBSTITUTION",
        EventKind::Comment => "COMMENT",
        EventKind::Goal => "GOAL",
        EventKind::Penalty => "PENALTY",
        EventKind::Shot => "SHOT",
        EventKind::Save => "SAVE",
        EventKind::Corner => "CORNER",
        EventKind::Offside => "OFFSIDE",
        EventKind::Foul => "FOUL",
        EventKind::Status => "STATUS",
    }
}

/// Frames as `watch --raw` prints them: each without its `\r\n` line, then a blank line.
fn printed_frames(status: &Match, events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut frame = Vec::new();
    render_status(status, Version::V2, &mut frame);
    for e in events {
        frame.truncate(frame.len() - 2);
        frame.push(b'\n');
        out.append(&mut frame);
        render_event(e, Version::V2, &mut frame);
    }
    frame.truncate(frame.len() - 2);
    frame.push(b'\n');
    out.append(&mut frame);
    out
}

/// The node's kill (SIGKILL) or stop (SIGTERM) in the middle of the sample match, with three
/// watchers following it.
fn watchers_resume_across_a_restart(kill: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("embedded:{}", dir.path().display());
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let mut node = serve_at(&api, &["--store", &store]);
    let url = format!("http://{api}");
    let mut client = node.client();
    let script = parse_script(SAMPLE).expect("sample");
    let id = client
        .create_match(&script.new_match)
        .expect("create")
        .expect("new");
    let bodies: Vec<Vec<u8>> = script
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Event(e) => Some(posted_event_body(e)),
            Step::Sleep(_) => None,
        })
        .collect();
    let post = |client: &mut HttpClient, body: &[u8]| {
        let r = client
            .post_json(&format!("/1/match/{id}/events"), body)
            .expect("post");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    };
    for body in &bodies[..10] {
        post(&mut client, body);
    }
    let joined = state(&mut client, &id);
    let words = Watcher::start(&url, &id, &[]);
    let raw = Watcher::start(&url, &id, &["--raw"]);
    let sse_raw = Watcher::start(&url, &id, &["--sse", "--raw"]);
    words.wait_for(" · first half\n", 1);
    raw.wait_for("\tseq: 10\n", 1);
    sse_raw.wait_for("id: 10\n", 1);
    for body in &bodies[10..15] {
        post(&mut client, body);
    }
    words.wait_for(" · elp ", 5);
    raw.wait_for("\tseq: 15\n", 1);
    sse_raw.wait_for("id: 15\n", 1);
    if kill {
        let _ = node.child.kill();
        let _ = node.child.wait();
    } else {
        assert_eq!(node.terminate(), Some(0));
    }
    let node = serve_at(&api, &["--store", &store]);
    let mut client = node.client();
    for body in &bodies[15..] {
        post(&mut client, body);
    }
    let history = history(&mut client, &id);
    assert_eq!(history.len(), bodies.len());
    let end = state(&mut client, &id);

    let (code, out, err) = raw.exit_code();
    assert_eq!(code, Some(0), "raw: {err}");
    assert!(err.contains("resuming after seq 15"), "raw resumed: {err}");
    let want = printed_frames(&joined, &history[10..]);
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want),
        "raw v2: every frame once"
    );

    let (code, out, err) = sse_raw.exit_code();
    assert_eq!(code, Some(0), "sse: {err}");
    assert!(err.contains("resuming after seq 15"), "sse resumed: {err}");
    let mut want = Vec::new();
    sse::render_status(&joined, &mut want);
    for e in &history[10..] {
        sse::render_event(e, &mut want);
    }
    let out = String::from_utf8_lossy(&out).replace(":\n\n", "");
    assert_eq!(
        out,
        String::from_utf8_lossy(&want),
        "raw SSE: every event once"
    );

    let (code, out, err) = words.exit_code();
    assert_eq!(code, Some(0), "words: {err}");
    assert!(
        err.contains("resuming after seq 15"),
        "words resumed: {err}"
    );
    let out = String::from_utf8(out).expect("UTF-8");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "elp {}-{} tig · first half",
            joined.home_score, joined.visit_score
        )
    );
    assert_eq!(
        lines.len(),
        1 + history.len() - 10,
        "one line per event: {out}"
    );
    for (line, e) in lines[1..].iter().zip(&history[10..]) {
        let (_, rest) = line.split_once(' ').expect("a time, then words");
        assert!(
            rest.starts_with(title(e.kind)) || rest.contains(&format!(" {}", title(e.kind))),
            "seq {} ({}) reads {line:?}",
            e.seq,
            e.kind.as_str()
        );
    }
    assert!(
        lines[lines.len() - 1].ends_with(&format!(
            "FULL TIME · elp {}-{} tig",
            end.home_score, end.visit_score
        )),
        "{out}"
    );
}

#[test]
fn watchers_resume_after_their_node_is_killed_and_print_every_event_once() {
    watchers_resume_across_a_restart(true);
}

#[test]
fn watchers_resume_after_their_node_stops_and_print_every_event_once() {
    watchers_resume_across_a_restart(false);
}

#[test]
fn an_ended_match_prints_its_end_and_exits_0() {
    let node = serve(&["--store", "memory"]);
    let mut client = node.client();
    let script = parse_script(SAMPLE).expect("sample");
    let id = client
        .create_match(&script.new_match)
        .expect("create")
        .expect("new");
    for body in [r#"{"kind":"start"}"#, r#"{"kind":"stop"}"#] {
        let r = client
            .post_json(&format!("/1/match/{id}/events"), body.as_bytes())
            .expect("post");
        assert_eq!(r.status, 201);
    }
    let url = format!("http://{}", node.api);
    for args in [&[][..], &["--sse"][..], &["--version", "1"][..]] {
        let (code, out, err) = Watcher::start(&url, &id, args).exit_code();
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "elp 0-0 tig · full time\n",
            "{args:?}"
        );
    }
    let (code, _, err) = Watcher::start(
        &url,
        &MatchId::parse("aaa-bbb-2011-01-01").expect("id"),
        &["--sse"],
    )
    .exit_code();
    assert_ne!(code, Some(0));
    assert!(
        err.contains("404") && err.contains("unknown match"),
        "{err}"
    );
}
