//! `fanout --transport sse` against the real server: subscribers that watch over server-sent
//! events (`GET /1/match/<id>/stream` on the API port) lose, repeat and reorder nothing,
//! across worker processes; both transports in one invocation, named in the table and the
//! JSON with their SSE/TCP ratios; an SSE run with a TCP-only baseline is refused.

mod common;

use common::{bench_json, bench_status, Server, TOKEN};

#[test]
fn sse_subscribers_over_worker_processes_lose_nothing() {
    let server = Server::start();
    let url = server.url();
    let (run, doc) = bench_json(&[
        "fanout",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--transport",
        "sse",
        "--subscribers",
        "300",
        "--matches",
        "3",
        "--events",
        "20",
        "--warmup",
        "2",
        "--rate",
        "20",
        "--workers",
        "2",
    ]);
    let report = &doc["report"];
    assert_eq!(report["transports"], serde_json::json!(["sse"]));
    let system = &report["systems"][0];
    assert_eq!(system["system"], "matchstream-sse", "{}", run.stdout);
    assert_eq!(system["transport"], "sse");
    let f = &system["runs"][0];
    let n = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{k}: {f}"));
    assert_eq!(n("connected"), 300, "{}", run.stdout);
    assert_eq!(n("failed"), 0, "{}", run.stdout);
    assert_eq!(n("expected"), 6000, "warm-up events are not expected");
    assert_eq!(n("delivered"), 6000, "{}", run.stdout);
    assert_eq!(n("lost"), 0);
    assert_eq!(n("duplicated"), 0);
    assert_eq!(n("out_of_order"), 0);
    assert_eq!(f["bench"]["worker_processes"], true);
    // Every delivery was read whole: at least its SSE event's bytes each.
    let sse_frame = report["sse_frame_bytes"].as_u64().expect("sse frame bytes");
    assert!(sse_frame > report["frame_bytes"].as_u64().expect("frame bytes"));
    assert!(n("bytes_received") >= 6000 * sse_frame, "{f}");
    let p = |k: &str| f["latency"][k].as_f64().expect("latency");
    assert!(
        p("p50_ms") > 0.0 && p("p50_ms") <= p("p99_ms"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("transport: sse (GET /1/match/<id>/stream"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("result: PASS"), "{}", run.stdout);
}

#[test]
fn both_transports_in_one_run_are_named_and_compared() {
    let server = Server::start();
    let url = server.url();
    let pid = server.pid().to_string();
    let (run, doc) = bench_json(&[
        "fanout",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--transport",
        "sse,tcp",
        "--subscribers",
        "100",
        "--matches",
        "2",
        "--events",
        "15",
        "--rate",
        "30",
        "--server-pid",
        &pid,
    ]);
    let report = &doc["report"];
    assert_eq!(
        report["transports"],
        serde_json::json!(["tcp", "sse"]),
        "TCP runs first, whatever the order asked"
    );
    for (i, (system, transport)) in [("matchstream", "tcp"), ("matchstream-sse", "sse")]
        .into_iter()
        .enumerate()
    {
        let s = &report["systems"][i];
        assert_eq!(s["system"], system);
        assert_eq!(s["transport"], transport);
        let f = &s["runs"][0];
        assert_eq!(f["delivered"], 1500, "{system}: {}", run.stdout);
        for k in ["lost", "duplicated", "out_of_order", "failed"] {
            assert_eq!(f[k], 0, "{system} {k}");
        }
        assert!(f["server"]["cpu_seconds_per_million_deliveries"].is_number());
    }
    let cmp = &report["sse_vs_tcp"];
    assert_eq!(cmp["goal"], 1.2);
    assert_eq!(cmp["runs"][0]["run"], 1);
    assert!(
        cmp["bytes_ratio"].as_f64().expect("bytes ratio") > 1.0,
        "{cmp}"
    );
    // The table names each system's transport, and gives SSE over TCP.
    for text in [
        "transport: tcp (stream protocol v2",
        "then sse (GET /1/match/<id>/stream",
        "matchstream-sse",
        "sse/tcp",
        "sse/tcp: server CPU per delivery",
        "matchstream over tcp (",
        "matchstream-sse over sse (sse via ",
    ] {
        assert!(run.stdout.contains(text), "{text}: {}", run.stdout);
    }
}

#[test]
fn an_sse_run_with_a_tcp_only_baseline_is_refused() {
    let server = Server::start();
    let url = server.url();
    let run = bench_status(
        &[
            "fanout",
            "--api",
            &url,
            "--token",
            TOKEN,
            "--transport",
            "sse",
            "--baseline",
            "redis://127.0.0.1:6379",
            "--subscribers",
            "5",
        ],
        2,
    );
    assert!(
        run.stderr.contains("baselines are TCP pub/sub") && run.stderr.contains("tcp,sse"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("fanout: N="),
        "no load ran: {}",
        run.stdout
    );
}
