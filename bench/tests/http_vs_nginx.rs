//! `bench/scripts/http-vs-nginx.sh` with tiny runs (1 round of 1 s, the bench only, a few
//! thousand requests a run) against this build's binaries: it starts, fills nginx's root,
//! measures both, prints one table row per path and mode with a ratio, writes the CSV and
//! stops what it started. nginx, curl and jq must be installed (scripts/test installs them);
//! without them the test fails, naming the packages.

mod common;

use std::path::Path;
use std::process::Command;

use common::bin_dir;

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_script_prints_a_row_and_a_ratio_per_path_and_mode() {
    let missing: Vec<_> = ["nginx", "curl", "jq"]
        .into_iter()
        .filter(|t| !installed(t))
        .collect();
    assert!(
        missing.is_empty(),
        "{missing:?} not installed: apt-get install nginx-light curl jq (scripts/test does)"
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bin = bin_dir(dir.path());
    let csv = dir.path().join("runs.csv");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/http-vs-nginx.sh");
    let out = Command::new(script)
        .args(["--seconds", "1", "--rounds", "1", "--tools", "bench"])
        .args(["--bench-n", "2000", "--c", "16", "--cores", "2", "--bin"])
        .arg(&bin)
        .arg("--out")
        .arg(&csv)
        .output()
        .expect("the script runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| bench "))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    let mut seen = Vec::new();
    for row in &rows {
        // "", tool, mode, path, matchstream, nginx, ratio, errors, ""
        assert_eq!(row.len(), 9, "{row:?}");
        for figure in [row[4], row[5]] {
            let n: f64 = figure.parse().expect("req/s");
            assert!(n > 0.0, "{row:?}");
        }
        let ratio: f64 = row[6].trim_end_matches('x').parse().expect("ratio");
        assert!(ratio > 0.0, "{row:?}");
        assert_eq!(row[7], "0", "errors: {row:?}");
        seen.push((row[2].to_owned(), row[3].to_owned()));
    }
    let mut want = Vec::new();
    for mode in ["keep-alive", "new-conn"] {
        for path in ["/1/checkin", "/1/matches", "/1/match/ID/history"] {
            want.push((mode.to_owned(), path.to_owned()));
        }
    }
    assert_eq!(seen, want, "{stdout}");

    // Every run in the CSV: a header and 2 servers x 3 paths x 2 modes.
    let text = std::fs::read_to_string(&csv).expect("the CSV");
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines[0],
        "round,tool,mode,path,server,req_per_s,errors,load1"
    );
    assert_eq!(lines.len(), 1 + 12, "{text}");
    // Everything it started is stopped: the node and nginx it names in its first line are gone.
    // (By PID, not by connecting to the node's port: once freed, the port may be another
    // test's listener, bound to an ephemeral port at the same moment.)
    let first = stderr
        .lines()
        .find(|l| l.starts_with("http-vs-nginx: node pid"))
        .expect("the script's first line names its processes");
    let pid_after = |word: &str| -> u32 {
        first
            .split(word)
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no {word:?} in {first:?}"))
    };
    for (pid, name) in [
        (pid_after("node pid "), "matchstream"),
        (pid_after("nginx pid "), "nginx"),
    ] {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(name),
            "{name} (pid {pid}) still runs after the script: {first}"
        );
    }
}
