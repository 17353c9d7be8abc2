//! Runs the tuning kit's own tests (`tuning/tests/run.sh`: shellcheck, apply/check/revert in
//! a fresh network namespace, dry runs only on the host) as part of
//! `cargo nextest run --workspace`, streaming their output line by line.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;

#[test]
fn tuning_scripts_pass() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tuning/tests/run.sh");
    assert!(script.is_file(), "missing {}", script.display());
    let mut child = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start bash {}: {e}", script.display()));

    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_lines = thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    let mut failures = Vec::new();
    let mut summary = String::from("(no summary line)");
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        if line.starts_with("FAIL ") {
            failures.push(line);
        } else if line.ends_with(" failed") && line.contains(" passed, ") {
            summary = line;
        }
    }
    stderr_lines.join().expect("stderr reader");
    let status = child.wait().expect("wait for run.sh");

    assert!(
        status.success(),
        "tuning/tests/run.sh failed ({status}): {summary}\n{}",
        failures.join("\n")
    );
}
