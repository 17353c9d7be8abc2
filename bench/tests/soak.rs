//! `soak` against the real server, shrunk to seconds: subscribers resuming with SINCE in
//! rounds lose nothing and get nothing twice, the samples reach the CSV and the chart, and a
//! server whose open-files limit cannot hold the subscribers is refused before any load.

mod common;

use common::{bench_json, bench_status, Server, TOKEN};

#[test]
fn resumed_subscribers_lose_nothing_and_the_server_is_sampled() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("soak.csv");
    let (url, pid) = (server.url(), server.pid().to_string());
    // 15 s at 2 events/s on 2 matches; 5 % of 200 subscribers resume every 4 s.
    let (run, doc) = bench_json(&[
        "soak",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--server-pid",
        &pid,
        "--subscribers",
        "200",
        "--matches",
        "2",
        "--rate",
        "2",
        "--minutes",
        "0.25",
        "--resume-every",
        "4",
        "--sample-every",
        "1.5",
        "--workers",
        "2",
        "--csv",
        csv.to_str().expect("utf-8 path"),
    ]);
    let r = &doc["report"];
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k}: {r}"));
    assert_eq!(n("connected"), 200, "{}", run.stdout);
    assert_eq!(n("events_per_match"), 30);
    assert_eq!(n("expected"), 6_000);
    assert_eq!(n("delivered"), 6_000, "{}", run.stdout);
    assert_eq!((n("lost"), n("duplicated"), n("out_of_order")), (0, 0, 0));
    assert_eq!(n("failed"), 0, "{}", run.stdout);
    // Rounds at 4, 8 and 12 s (and perhaps one as the stops go out), 10 subscribers each.
    assert!((30..=40).contains(&n("resumes")), "{}", run.stdout);
    assert_eq!(r["bench"]["shards"], 2, "two worker processes");
    assert_eq!(r["bench"]["worker_processes"], true);
    let samples = r["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 10, "0 to 13.5 s every 1.5 s");
    for s in samples {
        assert!(s["rss_kib"].as_u64() > Some(1000), "{s}");
        assert!(s["open_files"].as_u64() >= Some(200), "{s}");
    }
    let rss = &r["rss"];
    assert_eq!(rss["short_run"], true, "{rss}");
    assert_eq!(rss["within"], true, "{rss}");
    assert!(r["problems"].as_array().is_some_and(Vec::is_empty));
    assert!(run.stdout.contains("result: PASS"), "{}", run.stdout);
    assert!(
        run.stderr.contains("soak 0:12/0:15: server rss"),
        "{}",
        run.stderr
    );
    let text = std::fs::read_to_string(&csv).expect("the CSV");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("time_s,rss_kib,open_files,subscribers_connected,events_published,resumes_so_far")
    );
    assert_eq!(lines.count(), 10);
    let svg = std::fs::read_to_string(csv.with_extension("svg")).expect("the chart");
    assert!(
        svg.starts_with("<svg") && svg.contains("server RSS"),
        "{svg}"
    );
}

#[test]
fn a_server_that_cannot_hold_the_subscribers_is_refused() {
    let server = Server::start();
    let (url, pid) = (server.url(), server.pid().to_string());
    let run = bench_status(
        &[
            "soak",
            "--api",
            &url,
            "--token",
            TOKEN,
            "--server-pid",
            &pid,
            "--subscribers",
            "100000000",
        ],
        2,
    );
    assert!(run.stderr.contains("open-files limit"), "{}", run.stderr);
}
