//! Runs `deploy/tests/deb.sh` as part of `cargo nextest run --workspace`: builds the Debian
//! package around the `matchstream` binary these tests built (no release build), installs it
//! into a temporary root with `dpkg --root`, checks it and purges it (deploy/README.md).
//! Needs cargo-deb (`cargo install --locked cargo-deb`, as scripts/test does) and dpkg.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;

#[test]
fn the_debian_package_builds_installs_and_purges() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/tests/deb.sh");
    assert!(script.is_file(), "missing {}", script.display());
    let mut child = Command::new("bash")
        .arg(&script)
        .args(["--binary", env!("CARGO_BIN_EXE_matchstream")])
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
    let status = child.wait().expect("wait for deb.sh");
    assert!(
        status.success(),
        "deploy/tests/deb.sh failed ({status}): {summary}\n{}",
        failures.join("\n")
    );
}
