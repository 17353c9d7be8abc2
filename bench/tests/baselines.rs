//! The Redis and NATS baselines of `fanout` against a real redis-server and a real
//! nats-server that each test starts on a free port (and stops by its pid): the same shape as
//! matchstream under both flow controls, every run of every system in the report, ratios per
//! baseline. A missing binary fails the test with the package to install.

mod common;

use common::{bench_json, Nats, Redis, Server, TOKEN};

#[test]
fn redis_and_nats_run_the_paced_shape_beside_matchstream() {
    let server = Server::start();
    let redis = Redis::start();
    let nats = Nats::start();
    let url = server.url();
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);
    let (redis_pid, nats_pid) = (redis.pid().to_string(), nats.pid().to_string());
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
        "--warmup",
        "2",
        "--rate",
        "50",
        "--payload",
        "64",
        "--runs",
        "2",
        "--baseline",
        &redis_url,
        "--baseline-pid",
        &redis_pid,
        "--baseline",
        &nats_url,
        "--baseline-pid",
        &nats_pid,
    ]);
    let systems = doc["report"]["systems"].as_array().expect("systems");
    let names: Vec<&str> = systems
        .iter()
        .filter_map(|s| s["system"].as_str())
        .collect();
    assert_eq!(names, ["matchstream", "redis", "nats"]);
    for s in systems {
        let runs = s["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2, "{}", s["system"]);
        for r in runs {
            let who = format!("{} run {}", s["system"], r["run"]);
            assert_eq!(r["connected"], 200, "{who}: {}", run.stdout);
            assert_eq!(r["delivered"], 2000, "{who}: {}", run.stdout);
            assert_eq!(r["lost"], 0, "{who}");
            assert_eq!(r["duplicated"], 0, "{who}");
            assert_eq!(r["out_of_order"], 0, "{who}");
            // Warm-up events and stops were published and accepted like any other.
            assert_eq!(r["publish"]["events_ok"], 4 * 12, "{who}");
            assert_eq!(r["publish"]["stops_ok"], 4, "{who}");
            assert!(r["publish"]["achieved_percent"].as_f64().expect("pct") >= 95.0);
            assert!(r["latency"]["p99_ms"].as_f64().expect("p99") > 0.0, "{who}");
        }
    }
    assert_eq!(systems[1]["target"], redis_url.as_str());
    assert!(systems[2]["runs"][0]["server"]["pids"][0] == nats.pid());
    assert!(doc["report"]["frame_bytes"].as_u64().expect("bytes") > 64);
    for header in ["matchstream/redis", "matchstream/nats"] {
        assert!(run.stdout.contains(header), "{}", run.stdout);
    }
}

#[test]
fn redis_and_nats_run_under_the_window() {
    let server = Server::start();
    let redis = Redis::start();
    let nats = Nats::start();
    let url = server.url();
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);
    let (run, doc) = bench_json(&[
        "fanout",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--subscribers",
        "150",
        "--matches",
        "1",
        "--events",
        "60",
        "--rate",
        "max",
        "--window",
        "8",
        "--stall-timeout",
        "20",
        "--baseline",
        &nats_url,
        "--baseline",
        &redis_url,
    ]);
    assert_eq!(doc["report"]["flow_control"]["window"], 8);
    let systems = doc["report"]["systems"].as_array().expect("systems");
    assert_eq!(systems.len(), 3);
    for s in systems {
        let r = &s["runs"][0];
        assert_eq!(r["delivered"], 150 * 60, "{}: {}", s["system"], run.stdout);
        assert_eq!(r["lost"], 0, "{}", s["system"]);
        assert_eq!(
            r["publish"]["target_events_per_second"],
            serde_json::Value::Null
        );
        assert!(
            r["publish"]["achieved_events_per_second"]
                .as_f64()
                .expect("rate")
                > 0.0
        );
    }
    assert_eq!(systems[1]["system"], "nats");
    assert!(run.stdout.contains("window W=8"), "{}", run.stdout);
}
