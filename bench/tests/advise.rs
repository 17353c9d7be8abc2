//! `advise` as a user runs it: the built binary on the recorded reports of tests/fixtures/
//! (the numbers exact), without reports (the runs to make), on bad input (exit 2 with the
//! reason), and on a report a real `clients` run just wrote.

mod common;

use std::path::Path;

use common::{bench, bench_in, bench_json, bench_status, Run, Server, TOKEN};
use matchstream_bench::modes::advise::words::int;

/// Runs the bench in the crate's folder, so the fixtures' paths print as in the README.
fn advise(args: &[&str]) -> Run {
    let mut all = vec!["advise"];
    all.extend_from_slice(args);
    bench_in(Path::new(env!("CARGO_MANIFEST_DIR")), &all)
}

const MILLION: [&str; 7] = [
    "--subscribers",
    "1000000",
    "--events-per-s",
    "20",
    "--report",
    "tests/fixtures/fanout-15000.json",
    "tests/fixtures/clients-15000.json",
];

fn has(run: &Run, line: &str) {
    assert!(
        run.stdout.lines().any(|l| l == line),
        "no line {line:?} in:\n{}",
        run.stdout
    );
}

#[test]
fn a_million_subscribers_from_the_recorded_reports() {
    let run = advise(&MILLION);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    for line in [
        "deliveries/s: 20,000,000 = 1,000,000 subscribers × 20 events/s",
        "nodes: 52 (19,231 subscribers each) = ceil(1,000,000 subscribers / 19,500 per node)",
        "  19,500 per node = open-files limit 20,000 − reserve 500",
        "    from tests/fixtures/fanout-15000.json: environment.open_files.hard = 20,000",
        "  1.86 per node",
        "  on hosts like the measuring one (2 cores): 49 nodes by CPU = ceil(96.6 / 2)",
        "memory: 5.23 GiB = user space 527.3 MiB + kernel slab 4.69 GiB + kernel socket buffers \
         33.3 MiB;",
        "  103.1 MiB per node",
        "  user space 552,960,000 B = 553 B per subscriber × 1,000,000",
        "  1,040 messages/s delivered by pub/sub = 20 events/s × 52 nodes (every node's feed \
         receives every",
    ] {
        has(&run, line);
    }
    let text = run.stdout.replace("\n      ", " ").replace("\n    ", " ");
    for part in [
        "cores: 96.6 = 20,000,000 deliveries/s × 3.38 CPU s per million / 1e6 / 0.70 (run at ≤ \
         70 % CPU; 67.6",
        "systems[0].runs[].server.cpu_seconds_per_million_deliveries = 3.38 (median of 5 runs",
        "kernel slab 5,031,591,936 B = 5,032 B per connection end × 1 end (the server's) × \
         1,000,000",
        "clients-15000.json: kernel_slab_bytes_per_connection = 10,063 (15,000",
        "kernel socket buffers 34,952,533 B = 35.0 B per connection end × 1 end (the server's)",
        "kernel_socket_bytes_per_connection = 69.9 (15,000",
        "tcp_mem is sized from these alone, the slab is outside it",
        "redis: 20 script calls/s (EVALSHA) = 20 events/s × 1 match",
    ] {
        assert!(text.contains(part), "no {part:?} in:\n{}", run.stdout);
    }
    for row in [
        ("net.ipv4.tcp_max_orphans", "1048576", "≥ 19,231 ok"),
        ("fs.nr_open", "1048576", "≥ 19,731 ok"),
        ("net.ipv4.tcp_mem", "786432 1048576 1572864", "≥ 165 ok"),
        (
            "LimitNOFILE (matchstream.service)",
            "1048576",
            "≥ 19,731 ok",
        ),
        ("net.ipv4.tcp_syncookies", "1", "as is"),
    ] {
        let found = run.stdout.lines().any(|l| {
            let cells: Vec<&str> = l.split("  ").filter(|c| !c.is_empty()).collect();
            cells.len() >= 3
                && cells[0].trim() == row.0
                && cells[1].trim() == row.1
                && cells[2].trim() == row.2
        });
        assert!(found, "no row {row:?} in:\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("not measured"), "{}", run.stdout);
}

#[test]
fn clients_on_this_host_and_more_matches() {
    let mut args = MILLION.to_vec();
    args.extend(["--clients-on-this-host", "--matches", "10"]);
    let run = advise(&args);
    assert!(run.success, "{}", run.stderr);
    let text = run.stdout.replace("\n    ", " ");
    for part in [
        "kernel slab 10,063,183,872 B = 5,032 B per connection end × 2 ends",
        "kernel socket buffers 69,905,067 B = 35.0 B per connection end × 2 ends",
    ] {
        assert!(text.contains(part), "no {part:?} in:\n{}", run.stdout);
    }
    assert!(text.contains("10,400 messages/s delivered by pub/sub = 200 events/s × 52 nodes"));
    assert!(run.stdout.contains("≥ 38,962 ok"), "{}", run.stdout); // file-max: 2 × 19,231 + 500
}

#[test]
fn the_advice_is_written_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("advice.json");
    let mut args = MILLION.to_vec();
    let path = out.to_str().expect("utf-8").to_owned();
    args.extend(["--json", &path]);
    let run = advise(&args);
    assert!(run.success, "{}", run.stderr);
    let text = std::fs::read_to_string(&out).expect("written");
    assert!(text.starts_with("{\n  \"environment\""));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(doc["schema"], 2);
    assert_eq!(doc["command"], "advise");
    let r = &doc["report"];
    assert_eq!(r["nodes"]["nodes"], 52);
    assert_eq!(r["cores"]["per_million"]["value"], 3.38);
    assert_eq!(r["memory"]["user"]["bytes"], 552_960_000.0);
    let kernel = &r["memory"]["kernel"];
    let slab = kernel["slab"]["bytes"].as_f64().expect("a number");
    assert!((slab - 5_031_591_936.0).abs() < 1.0, "{slab}");
    assert_eq!(
        kernel["slab"]["per"]["measured"]["field"],
        "kernel_slab_bytes_per_connection"
    );
    assert_eq!(kernel["pages_per_node"], 165); // the buffers alone
    assert_eq!(r["redis"]["messages_per_second"], 1040.0);
    assert_eq!(r["missing"].as_array().map(Vec::len), Some(0));
}

#[test]
fn without_reports_it_names_the_runs_to_make() {
    let run = advise(&["--subscribers", "1000000", "--events-per-s", "20"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    has(&run, "reports: none");
    has(&run, "cores: unknown (see \"not measured\")");
    has(
        &run,
        "    matchstream-bench fanout --api URL --token T --subscribers 15000 --events 200 \
         --rate 20 --runs 5 --server-pid PID --json fanout.json",
    );
    has(
        &run,
        "    matchstream-bench clients --api URL --token T --play sample --speed 0 --n 15000 \
         --json clients.json",
    );
}

#[test]
fn bad_input_stops_it_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("utf-8").to_owned()
    };
    let env = r#""environment":{"cores":2,"open_files":{"soft_initial":1,"soft":1,"hard":1}}"#;
    let cases = [
        (
            dir.path()
                .join("gone.json")
                .to_str()
                .expect("present")
                .to_owned(),
            "gone.json: No such file",
        ),
        (write("text.json", "cores: 2\n"), "text.json is not JSON"),
        (
            write(
                "old.json",
                &format!(r#"{{{env},"schema":1,"command":"fanout","report":{{}}}}"#),
            ),
            "old.json has schema 1; advise reads schema 2",
        ),
        (
            write(
                "http.json",
                &format!(r#"{{{env},"schema":2,"command":"http","report":{{}}}}"#),
            ),
            "http.json is a \"http\" report; advise reads the reports of clients, fanout, ramp, \
             soak",
        ),
    ];
    for (path, want) in cases {
        let run = bench_status(
            &[
                "advise",
                "--subscribers",
                "10",
                "--events-per-s",
                "1",
                "--report",
                &path,
            ],
            2,
        );
        assert!(run.stderr.contains(want), "{want}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    let run = bench_status(&["advise", "--subscribers", "0", "--events-per-s", "1"], 2);
    assert!(
        run.stderr.contains("--subscribers must be at least 1"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_real_clients_report_gives_kernel_memory() {
    let server = Server::start();
    let url = server.url();
    let (_, doc) = bench_json(&[
        "clients", "--api", &url, "--token", TOKEN, "--play", "sample", "--speed", "0", "--n",
        "200",
    ]);
    let figure = &doc["report"]["kernel_socket_bytes_per_connection"];
    assert!(figure.is_number(), "{figure}");
    // Null when the host's slab shrank meanwhile; never below zero.
    let slab = &doc["report"]["kernel_slab_bytes_per_connection"];
    assert!(slab.is_null() || slab.as_f64() >= Some(0.0), "{slab}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clients.json");
    std::fs::write(&path, doc.to_string()).expect("write");
    let run = bench(&[
        "advise",
        "--subscribers",
        "1000",
        "--events-per-s",
        "5",
        "--report",
        path.to_str().expect("utf-8"),
    ]);
    let text = run.stdout.replace("\n      ", " ").replace("\n    ", " ");
    let hard = doc["environment"]["open_files"]["hard"]
        .as_u64()
        .expect("hard");
    assert!(
        text.contains(&format!("environment.open_files.hard = {}", int(hard))),
        "{}",
        run.stdout
    );
    if figure.as_f64() >= Some(0.0) {
        assert!(
            text.contains("kernel_socket_bytes_per_connection = "),
            "{}",
            run.stdout
        );
    } else {
        // Other sockets of this host freed memory meanwhile: said, not used.
        assert!(
            text.contains("other sockets of the host freed memory"),
            "{}",
            run.stdout
        );
    }
    if slab.is_number() {
        assert!(
            text.contains("kernel_slab_bytes_per_connection = "),
            "{}",
            run.stdout
        );
    } else {
        // Said, and named with the run that measures it; no constant stands in.
        assert!(
            text.contains("kernel_slab_bytes_per_connection is null")
                && text.contains("kernel slab bytes per connection"),
            "{}",
            run.stdout
        );
    }
}
