//! The watcher token read from a file: `--token-file` / `MATCHSTREAM_TOKEN_FILE`, or the
//! systemd credential `token` (`$CREDENTIALS_DIRECTORY/token`, as the unit's
//! `LoadCredential=token:...` passes it). The real binary takes the file's token for writes,
//! never prints it, and refuses to start on a missing file or with `MATCHSTREAM_TOKEN` set
//! as well as a token file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matchstream_client::HttpClient;

/// The token in the file (with a newline after it, as `echo` writes it).
const FILE_TOKEN: &str = "cred-7f3a9c";

/// `matchstream serve` on ephemeral ports with a memory store, `env` set and neither token
/// variable inherited from the caller.
fn command(env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_matchstream"));
    c.args([
        "serve",
        "--api",
        "127.0.0.1:0",
        "--stream-port",
        "0",
        "--cores",
        "1",
        "--no-pin",
        "--store",
        "memory",
    ])
    .env_remove("MATCHSTREAM_TOKEN")
    .env_remove("MATCHSTREAM_TOKEN_FILE")
    .env_remove("CREDENTIALS_DIRECTORY")
    .env("RUST_LOG", "info")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Starts the server and waits for its `listening` line: the child, the API address and
/// every line it logged so far.
fn start(env: &[(&str, &str)]) -> (Child, String, Arc<Mutex<Vec<String>>>) {
    let mut child = command(env).spawn().expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let keep = lines.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening api=").nth(1) {
                let api = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(api);
            }
            keep.lock().map(|mut l| l.push(line)).ok();
        }
    });
    let api = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "no listening line; stderr: {:?}",
                lines.lock().map(|l| l.clone())
            )
        });
    (child, api, lines)
}

/// Runs a server that must refuse to start: its exit code and everything it printed.
fn refused(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = command(env)
        .stderr(Stdio::piped())
        .output()
        .expect("binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes the token file (mode 0600, as the unit's credential source is).
fn token_file(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("token");
    std::fs::write(&path, format!("{FILE_TOKEN}\n")).expect("write token");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path.display().to_string()
}

#[test]
fn the_token_file_gives_the_watcher_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = token_file(dir.path());
    let (mut child, api, lines) = start(&[("MATCHSTREAM_TOKEN_FILE", &path)]);
    let base = format!("http://{api}");
    let body = br#"{"home":"elp","visit":"tig","start_date":"2011-09-10"}"#;

    let wrong = HttpClient::new(&base)
        .expect("client")
        .with_token("not-it")
        .post_json("/1/matches", body)
        .expect("post");
    assert_eq!(wrong.status, 401, "{}", wrong.error_text());
    let right = HttpClient::new(&base)
        .expect("client")
        .with_token(FILE_TOKEN)
        .post_json("/1/matches", body)
        .expect("post");
    assert_eq!(right.status, 201, "{}", right.error_text());

    // SAFETY: kill on the pid of a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let log = lines.lock().expect("lines").join("\n");
    assert!(!log.contains(FILE_TOKEN), "the token was logged: {log}");
    assert!(
        !log.contains("generated token"),
        "a token was generated although the file gave one: {log}"
    );
}

#[test]
fn a_missing_token_file_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-token").display().to_string();
    let (code, stderr) = refused(&[("MATCHSTREAM_TOKEN_FILE", &missing)]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains(&missing), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn a_token_and_a_token_file_together_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = token_file(dir.path());
    let (code, stderr) = refused(&[
        ("MATCHSTREAM_TOKEN_FILE", &path),
        ("MATCHSTREAM_TOKEN", "from-env"),
    ]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("token"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
    assert!(!stderr.contains(FILE_TOKEN), "{stderr}");
}

#[test]
fn a_systemd_credential_named_token_gives_the_watcher_token() {
    let creds = tempfile::tempdir().expect("tempdir");
    token_file(creds.path());
    let dir = creds.path().display().to_string();
    let (mut child, api, lines) = start(&[("CREDENTIALS_DIRECTORY", &dir)]);
    let right = HttpClient::new(&format!("http://{api}"))
        .expect("client")
        .with_token(FILE_TOKEN)
        .post_json(
            "/1/matches",
            br#"{"home":"elp","visit":"tig","start_date":"2011-09-10"}"#,
        )
        .expect("post");
    assert_eq!(right.status, 201, "{}", right.error_text());
    // SAFETY: kill on the pid of a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    let log = lines.lock().expect("lines").join("\n");
    assert!(!log.contains(FILE_TOKEN), "the token was logged: {log}");
    assert!(!log.contains("generated token"), "{log}");
}
