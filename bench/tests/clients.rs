//! `clients` against the real server (a match created and played while the clients watch,
//! in this process and over worker processes) and against misbehaving servers, one per
//! failure reason.

mod common;

use common::{
    bench_json, bench_json_status, fake_server, num, refused_port, Misbehaviour, Server, TOKEN,
};

#[test]
fn three_hundred_clients_over_two_cores_all_succeed() {
    let server = Server::start();
    let url = server.url();
    let (run, doc) = bench_json(&[
        "clients", "--api", &url, "--token", TOKEN, "--play", "sample", "--speed", "200", "--n",
        "300", "--c", "100",
    ]);
    assert_eq!(num(&doc, &["ok"]), 300, "{}", run.stdout);
    assert_eq!(num(&doc, &["failed"]), 0);
    assert_eq!(num(&doc, &["connected"]), 300);
    assert_eq!(num(&doc, &["connect", "count"]), 300);
    assert_eq!(num(&doc, &["checkin", "count"]), 300);
    assert!(num(&doc, &["played", "events"]) > 20);
    assert!(run.stdout.contains("300 (100.00%)"), "{}", run.stdout);
    // Measured from /proc/net/sockstat; its sign depends on the host's other sockets.
    assert!(doc["report"]["kernel_socket_bytes_per_connection"].is_number());
    // From /proc/meminfo's Slab: null when the host's slab shrank meanwhile, never negative.
    let slab = &doc["report"]["kernel_slab_bytes_per_connection"];
    assert!(slab.is_null() || slab.as_f64() >= Some(0.0), "{slab}");
    let env = &doc["environment"];
    assert!(env["sysctls"]["net.core.somaxconn"].is_string());
    assert!(env["open_files"]["hard"].as_u64().is_some());
    assert!(env["args"].as_array().is_some_and(|a| a.len() > 5));
}

#[test]
fn version_2_clients_over_worker_processes_succeed() {
    let server = Server::start();
    let url = server.url();
    let (_, doc) = bench_json(&[
        "clients",
        "--api",
        &url,
        "--token",
        TOKEN,
        "--play",
        "sample",
        "--speed",
        "200",
        "--n",
        "120",
        "--version",
        "2",
        "--workers",
        "2",
        "--source-ips",
        "127.0.0.2-127.0.0.9",
    ]);
    assert_eq!(num(&doc, &["ok"]), 120);
    assert_eq!(doc["report"]["bench"]["worker_processes"], true);
    assert_eq!(num(&doc, &["bench", "shards"]), 2);
    assert_eq!(num(&doc, &["time_to_status", "count"]), 120);
}

#[test]
fn every_failure_reason_is_detected() {
    // (server, failure kind, run time limit, connect timeout): only the cases that must wait
    // for a bound get short ones, so a loaded machine cannot turn the others into timeouts.
    let cases = [
        (Misbehaviour::ClosesMidEvent, "incomplete_event", "20", "10"),
        (Misbehaviour::DetailOutsideEvent, "bad_framing", "20", "10"),
        (Misbehaviour::NeverCloses, "timeout", "2", "10"),
        (Misbehaviour::ClosesEarly, "closed_early", "20", "10"),
        (Misbehaviour::ErrorLine, "error_line", "20", "10"),
        (Misbehaviour::Silent, "status_timeout", "20", "0.5"),
    ];
    for (how, kind, limit, connect) in cases {
        let (addr, _server) = fake_server(how);
        let target = addr.to_string();
        // Failed clients fail the run: exit status 1, the report written all the same.
        let (run, doc) = bench_json_status(
            &[
                "clients",
                "--targets",
                &target,
                "--match",
                "elp-tig-2011-09-13",
                "--n",
                "4",
                "--timeout",
                limit,
                "--connect-timeout",
                connect,
            ],
            1,
        );
        assert!(
            run.stderr.contains("4 of 4 clients failed"),
            "{}",
            run.stderr
        );
        assert_eq!(num(&doc, &["failed"]), 4, "{how:?}: {}", run.stdout);
        assert_eq!(num(&doc, &["failures", kind]), 4, "{how:?}: {}", run.stdout);
    }
    let (addr, _server) = fake_server(Misbehaviour::Behaves);
    let target = addr.to_string();
    let (_, doc) = bench_json(&["clients", "--targets", &target, "--match", "x", "--n", "4"]);
    assert_eq!(num(&doc, &["ok"]), 4);

    let refused = format!("127.0.0.1:{}", refused_port());
    let (_, doc) = bench_json_status(
        &["clients", "--targets", &refused, "--match", "x", "--n", "3"],
        1,
    );
    assert_eq!(num(&doc, &["failures", "connect_refused"]), 3);
}

#[test]
fn a_detail_outside_an_event_is_named() {
    let (addr, _server) = fake_server(Misbehaviour::DetailOutsideEvent);
    let target = addr.to_string();
    let (_, doc) = bench_json_status(
        &["clients", "--targets", &target, "--match", "x", "--n", "1"],
        1,
    );
    assert_eq!(
        doc["report"]["framing"]["a detail line outside an event"], 1,
        "{doc}"
    );
    let (addr, _server) = fake_server(Misbehaviour::ErrorLine);
    let target = addr.to_string();
    let (_, doc) = bench_json_status(
        &["clients", "--targets", &target, "--match", "x", "--n", "2"],
        1,
    );
    assert_eq!(doc["report"]["error_lines"]["unknown match"], 2, "{doc}");
}

#[test]
fn an_unknown_match_on_the_real_server_is_an_error_line() {
    let server = Server::start();
    let url = server.url();
    let (_, doc) = bench_json_status(
        &[
            "clients",
            "--api",
            &url,
            "--match",
            "no-such-2011-01-01",
            "--n",
            "5",
        ],
        1,
    );
    assert_eq!(num(&doc, &["failures", "error_line"]), 5, "{doc}");
}
