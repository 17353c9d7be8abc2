//! `fanout` against the real server (zero loss, sane percentiles, server figures) and its
//! Redis baseline against a private redis-server.

mod common;

use common::{bench_json, float, num, Redis, Server, TOKEN};

#[test]
fn five_hundred_subscribers_lose_nothing() {
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
        "--rate",
        "100",
        "--server-pid",
        &pid,
    ]);
    let m = ["matchstream"];
    let at = |k: &str| num(&doc, &[m[0], k]);
    assert_eq!(at("connected"), 500, "{}", run.stdout);
    assert_eq!(at("expected"), 10_000);
    assert_eq!(at("delivered"), 10_000);
    assert_eq!(at("lost"), 0);
    assert_eq!(at("duplicated"), 0);
    assert_eq!(at("out_of_order"), 0);
    let p = |k: &str| float(&doc, &["matchstream", "latency", k]);
    assert!(p("p50_ms") > 0.0, "{}", run.stdout);
    assert!(p("p50_ms") <= p("p90_ms") && p("p90_ms") <= p("p99_ms"));
    assert!(p("p99_ms") <= p("p99_9_ms") && p("p99_9_ms") <= p("max_ms"));
    assert!(p("max_ms") < 10_000.0, "{}", run.stdout);
    assert!(float(&doc, &["matchstream", "deliveries_per_second"]) > 0.0);
    assert!(num(&doc, &["matchstream", "server", "rss_connected"]) > 0);
    assert!(
        doc["report"]["matchstream"]["server"]["cpu_seconds_per_million_deliveries"].is_number()
    );
    assert!(float(&doc, &["matchstream", "bench", "cpu_seconds"]) > 0.0);
    assert!(run.stdout.contains("deliveries/s"), "{}", run.stdout);
}

#[test]
fn the_redis_baseline_runs_the_same_shape_side_by_side() {
    let server = Server::start();
    let redis = Redis::start();
    let url = server.url();
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let redis_pid = redis.pid().to_string();
    let (run, doc) = bench_json(&[
        "fanout",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--subscribers",
        "200",
        "--matches",
        "4",
        "--events",
        "10",
        "--rate",
        "max",
        "--payload",
        "64",
        "--baseline",
        &redis_url,
        "--baseline-pid",
        &redis_pid,
    ]);
    for system in ["matchstream", "baseline"] {
        assert_eq!(
            num(&doc, &[system, "delivered"]),
            2000,
            "{system}: {}",
            run.stdout
        );
        assert_eq!(num(&doc, &[system, "lost"]), 0, "{system}");
    }
    assert_eq!(doc["report"]["baseline"]["system"], "redis");
    assert!(num(&doc, &["frame_bytes"]) > 64);
    assert!(run.stdout.contains("ratio"), "{}", run.stdout);
}
