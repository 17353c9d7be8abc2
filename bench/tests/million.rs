//! `bench/scripts/million.sh` with a tiny N (2,000 subscribers over 2 nodes, 5 events, no
//! sysctl changed) against this build's binaries: it starts Redis and the nodes, connects every
//! subscriber through checkin, plays the match, prints its report (every delivery made, none
//! lost, the cluster's subscribers sampled), draws the chart, and stops everything it started.
//! redis-server, curl and jq must be installed (scripts/test installs them).

mod common;

use std::path::Path;
use std::process::Command;

use common::bin_dir;

#[test]
fn a_small_run_reports_every_delivery_and_stops_what_it_started() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bin = bin_dir(dir.path());
    let out_dir = dir.path().join("out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/million.sh");
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").expect("somaxconn");
    let out = Command::new(script)
        .args(["2000", "--per-node", "1000", "--events", "5", "--rate", "5"])
        .args(["--c", "200", "--sample", "0.2", "--no-tuning", "--bin"])
        .arg(&bin)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("the script runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    for line in [
        "nodes: 2 (1 core each",
        "connected: 2000 of 2000 (failed 0: {})",
        "deliveries: 10000 of 10000 expected; lost 0, duplicated 0, out of order 0",
    ] {
        assert!(stdout.contains(line), "{line:?} not in:\n{stdout}");
    }
    assert_eq!(
        stdout.matches("  node ").count(),
        2,
        "one line per node:\n{stdout}"
    );
    // Every subscriber accepted by one of the nodes (the nodes' own counts, after the run).
    let sessions: u64 = stdout
        .lines()
        .filter(|l| l.starts_with("  node "))
        .filter_map(|l| l.rsplit("sessions ").next()?.trim().parse::<u64>().ok())
        .sum();
    assert_eq!(sessions, 2000, "{stdout}");
    // The sampled peak comes from one node's cluster_totals, whose other nodes' figures are up
    // to a heartbeat old: in a run this short it may miss some, never count more.
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak subscribers (cluster_totals): "))
        .and_then(|n| n.parse().ok())
        .expect("the peak line");
    assert!((1..=2000).contains(&peak), "{stdout}");
    let report = std::fs::read_to_string(out_dir.join("report.txt")).expect("report.txt");
    assert_eq!(report, stdout);
    let csv = std::fs::read_to_string(out_dir.join("subscribers.csv")).expect("the CSV");
    assert!(csv.starts_with("time_s,subscribers,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.split(',').nth(1) == Some(peak.to_string().as_str())),
        "{csv}"
    );
    let svg = std::fs::read_to_string(out_dir.join("subscribers.svg")).expect("the chart");
    assert!(
        svg.starts_with("<svg") && svg.contains(&format!("peak {peak}")),
        "{svg}"
    );

    // Everything it started is gone (by the PIDs its second line names), nothing changed.
    let up = stderr
        .lines()
        .find(|l| l.contains("nodes up (pids "))
        .expect("the line naming the processes");
    let redis: u32 = up
        .split("(pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .expect("redis pid");
    let nodes: Vec<u32> = up
        .split("(pids ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .expect("node pids");
    assert_eq!(nodes.len(), 2, "{up}");
    for pid in nodes.into_iter().chain([redis]) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !cmdline.contains("matchstream") && !cmdline.contains("redis"),
            "pid {pid} still runs: {cmdline}"
        );
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").expect("somaxconn"),
        somaxconn
    );
}
