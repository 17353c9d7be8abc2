//! `fanout` against the real server: zero loss under both flow controls (paced, and the
//! window across worker processes), repeated runs with their matches deleted, exit statuses
//! (a missed rate, a broken --fail-on criterion, pre-flight refusals), --hgrm and compare.

mod common;

use common::{bench, bench_json, bench_json_status, bench_status, Server, TOKEN};
use matchstream_client::HttpClient;

fn run0(doc: &serde_json::Value, system: usize) -> &serde_json::Value {
    &doc["report"]["systems"][system]["runs"][0]
}

#[test]
fn five_hundred_paced_subscribers_lose_nothing() {
    let server = Server::start();
    let url = server.url();
    let pid = server.pid().to_string();
    let (run, doc) = bench_json(&[
        "fanout",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--subscribers",
        "500",
        "--matches",
        "5",
        "--events",
        "20",
        "--warmup",
        "3",
        "--rate",
        "20",
        "--server-pid",
        &pid,
    ]);
    let f = run0(&doc, 0);
    let n = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{k}: {f}"));
    assert_eq!(n("connected"), 500, "{}", run.stdout);
    assert_eq!(n("expected"), 10_000, "warm-up events are not expected");
    assert_eq!(n("delivered"), 10_000, "warm-up events are not measured");
    assert_eq!(n("lost"), 0);
    assert_eq!(n("duplicated"), 0);
    assert_eq!(n("out_of_order"), 0);
    let p = |k: &str| f["latency"][k].as_f64().expect("latency");
    assert!(p("p50_ms") > 0.0, "{}", run.stdout);
    assert!(p("p50_ms") <= p("p95_ms") && p("p95_ms") <= p("p99_ms"));
    assert!(p("p99_ms") <= p("max_ms") && p("max_ms") < 10_000.0);
    let fc = &doc["report"]["flow_control"];
    assert_eq!(fc["mode"], "paced");
    assert_eq!(fc["rate_per_match"], 20.0);
    let publish = &f["publish"];
    assert_eq!(publish["events_sent"], 5 * 23);
    assert_eq!(publish["target_events_per_second"], 100.0);
    assert!(publish["achieved_percent"].as_f64().expect("pct") >= 95.0);
    assert!(f["server"]["rss_connected"].as_u64().expect("rss") > 0);
    assert!(f["cpu"]["server_share"].as_f64().is_some(), "{f}");
    assert!(f["cpu"]["bench_share"].as_f64().expect("share") > 0.0);
    assert_eq!(f["idle_but_slow"], false);
    assert!(f["histogram"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(
        run.stdout.contains("latency from the scheduled send time"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("result: PASS"), "{}", run.stdout);
}

#[test]
fn the_window_holds_across_worker_processes() {
    // W = 1: every event waits for every subscriber, in either worker process, to have the
    // one before; if the workers' frontiers did not reach the publisher, it would stall.
    let server = Server::start();
    let url = server.url();
    let (run, doc) = bench_json(&[
        "fanout",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--subscribers",
        "200",
        "--matches",
        "2",
        "--events",
        "30",
        "--rate",
        "max",
        "--window",
        "1",
        "--workers",
        "2",
        "--stall-timeout",
        "20",
    ]);
    let f = run0(&doc, 0);
    assert_eq!(f["delivered"], 6000, "{}", run.stdout);
    assert_eq!(f["lost"], 0);
    assert_eq!(f["bench"]["worker_processes"], true);
    assert_eq!(doc["report"]["flow_control"]["window"], 1);
    assert_eq!(doc["report"]["flow_control"]["mode"], "window");
    assert!(
        f["publish"]["achieved_events_per_second"]
            .as_f64()
            .expect("rate")
            > 0.0
    );
    assert!(run.stdout.contains("window W=1"), "{}", run.stdout);
}

#[test]
fn runs_repeat_on_fresh_matches_that_are_deleted_after() {
    let server = Server::start();
    let url = server.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let hgrm = dir.path().join("lat.hgrm");
    let hgrm_arg = hgrm.to_str().expect("utf-8").to_owned();
    let csv = dir.path().join("runs.csv");
    let csv_arg = csv.to_str().expect("utf-8").to_owned();
    let args = [
        "fanout",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--subscribers",
        "60",
        "--matches",
        "3",
        "--events",
        "10",
        "--rate",
        "40",
        "--runs",
        "3",
        "--hgrm",
        &hgrm_arg,
        "--csv",
        &csv_arg,
    ];
    let (run, doc) = bench_json(&args);
    let runs = doc["report"]["systems"][0]["runs"]
        .as_array()
        .expect("runs");
    assert_eq!(runs.len(), 3);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r["run"], i as u64 + 1);
        assert_eq!(r["delivered"], 600, "{}", run.stdout);
        assert!(r["over_100ms"].is_u64() && r["over_1s"].is_u64());
    }
    let median = &doc["report"]["systems"][0]["median"];
    assert!(median["p99_ms"].as_f64().expect("median") > 0.0);
    for line in ["1 ", "2 ", "3 ", "median "] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(line) && l.contains("matchstream")),
            "{line}: {}",
            run.stdout
        );
    }
    // Every match the bench created is gone.
    let mut api = HttpClient::new(&url).expect("url");
    let matches = api.get("/1/matches").expect("matches");
    let (status, body) = (matches.status, matches.body);
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body).trim(),
        "[]",
        "matches left behind"
    );
    let text = std::fs::read_to_string(&hgrm).expect("hgrm written");
    assert!(
        text.starts_with("       Value     Percentile TotalCount"),
        "{text}"
    );
    assert!(text.contains("Total count    =         1800"), "{text}");
    let table = std::fs::read_to_string(&csv).expect("csv written");
    assert_eq!(
        table.lines().count(),
        4,
        "a header and one line per run: {table}"
    );
    assert!(table
        .lines()
        .nth(3)
        .is_some_and(|l| l.starts_with("matchstream,3,")));
    // compare: the same report against itself differs in nothing.
    let json = dir.path().join("a.json");
    std::fs::write(&json, doc.to_string()).expect("write");
    let j = json.to_str().expect("utf-8");
    let cmp = bench(&["compare", j, j]);
    assert!(
        cmp.stdout.contains("compare: \"fanout\" reports"),
        "{}",
        cmp.stdout
    );
    assert!(!cmp.stdout.contains("warning"), "{}", cmp.stdout);
}

#[test]
fn missed_rates_and_broken_criteria_fail_the_run() {
    let server = Server::start();
    let url = server.url();
    let base = [
        "fanout",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--subscribers",
        "20",
        "--matches",
        "1",
    ];
    // 3000 POSTs due within 60 ms: no server answers them in time. The latencies, from the
    // scheduled times, show it; the accepted rate fails it on demand.
    let mut fast = base.to_vec();
    fast.extend([
        "--events",
        "3000",
        "--rate",
        "50000",
        "--fail-on",
        "accepted>=95",
    ]);
    let (run, doc) = bench_json_status(&fast, 1);
    assert!(
        run.stderr.contains("--fail-on accepted>=95 broken"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("warning: matchstream run 1: the server accepted"),
        "{}",
        run.stdout
    );
    let f = run0(&doc, 0);
    let accepted = f["publish"]["accepted_percent"].as_f64().expect("pct");
    assert!(accepted < 95.0, "{f}");
    assert!(f["latency"]["max_ms"].as_f64().expect("max") > 60.0, "{f}");
    // --fail-on, k6 style.
    let mut strict = base.to_vec();
    strict.extend([
        "--events",
        "5",
        "--rate",
        "50",
        "--fail-on",
        "lost=0,p99<1us",
    ]);
    let run = bench_status(&strict, 1);
    assert!(
        run.stderr.contains("--fail-on p99<1us broken"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("lost=0"), "{}", run.stderr);
    let mut loose = base.to_vec();
    loose.extend([
        "--events",
        "5",
        "--rate",
        "50",
        "--fail-on",
        "lost=0,p99<60s,errors<0.1%",
    ]);
    bench(&loose);
}

#[test]
fn what_would_make_a_run_meaningless_is_refused_before_the_load() {
    let server = Server::start();
    let url = server.url();
    let base = [
        "fanout",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--subscribers",
        "5",
        "--events",
        "2",
    ];
    // (extra arguments, what stderr names)
    let down = format!("redis://127.0.0.1:{}", common::refused_port());
    let nats_down = format!("nats://127.0.0.1:{}", common::refused_port());
    let api_down = format!("http://127.0.0.1:{}", common::refused_port());
    let cases: [(Vec<&str>, &str); 6] = [
        (vec!["--baseline", &down], "does not answer"),
        (vec!["--baseline", &nats_down], "does not answer"),
        (vec!["--server-pid", "4000000000"], "no such process"),
        (
            vec!["--json", "/nonexistent/dir/r.json"],
            "cannot be written",
        ),
        (
            vec!["--source-ips", "203.0.113.1-203.0.113.2"],
            "not on this host",
        ),
        (vec!["--rate", "max", "--window", "0"], "--window"),
    ];
    for (extra, says) in cases {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        let run = bench_status(&args, 2);
        assert!(run.stderr.contains(says), "{extra:?}: {}", run.stderr);
        assert!(
            !run.stdout.contains("fanout: N="),
            "no load ran: {}",
            run.stdout
        );
    }
    let mut args = base.to_vec();
    args[2] = &api_down;
    let run = bench_status(&args, 2);
    assert!(run.stderr.contains("does not answer"), "{}", run.stderr);
}

#[test]
fn ctrl_c_leaves_a_partial_report() {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};
    let server = Server::start();
    let url = server.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("partial.json");
    // 20 s of publishing over two worker processes; Ctrl-C (to the whole process group, as a
    // terminal sends it) after 2.5 s.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_matchstream-bench"))
        .args([
            "fanout",
            "--api",
            &url,
            "--token",
            TOKEN,
            "--subscribers",
            "40",
            "--matches",
            "1",
            "--events",
            "400",
            "--rate",
            "20",
            "--runs",
            "2",
            "--workers",
            "2",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the bench starts");
    std::thread::sleep(Duration::from_millis(2500));
    let group = i32::try_from(child.id()).expect("pid");
    // SAFETY: signals our own child's process group (the bench and its workers).
    unsafe { libc::kill(-group, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the bench did not stop within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("a report")).expect("json");
    let problems = doc["report"]["problems"].as_array().expect("problems");
    assert!(
        problems[0].as_str().is_some_and(|p| p.contains("partial")),
        "{problems:?}"
    );
    let runs = doc["report"]["systems"][0]["runs"]
        .as_array()
        .expect("runs");
    assert_eq!(runs.len(), 1, "the second run never started");
    assert!(runs[0]["delivered"].as_u64().expect("delivered") > 0);
}
