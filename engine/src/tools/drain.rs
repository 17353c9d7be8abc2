//! `matchstream drain`: asks a node to drain (`POST /1/admin/drain`, SPEC §9, what the node then
//! does is [`crate::drain`]) and prints its answer; with `--wait`, returns only once the node
//! has stopped, so that a script can take it down next.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use matchstream_client::HttpClient;

use crate::config::DrainArgs;

/// How often `--wait` asks whether the node is still there.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// What `--wait` allows beyond the time the node says its drain may take: its stop (a grace
/// period) and the process's exit.
const WAIT_SLACK: Duration = Duration::from_secs(30);

/// What the node answered to a drain request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Answer {
    /// The node's id.
    pub node: String,
    /// A drain was under way already.
    pub already_draining: bool,
    /// The longest, in milliseconds, until the node stops.
    pub exit_within_ms: u64,
}

/// Runs `matchstream drain`.
pub fn run(args: DrainArgs) -> anyhow::Result<()> {
    let mut client = HttpClient::new(&args.url)?;
    if let Some(token) = args.token.as_deref().filter(|t| !t.is_empty()) {
        client = client.with_token(token);
    }
    let answer = request(&mut client)?;
    println!("{}", describe(&answer, client.base_url()));
    if args.wait {
        let limit = Duration::from_millis(answer.exit_within_ms) + WAIT_SLACK;
        wait_stopped(&args.url, limit)?;
        println!("node {} has stopped", answer.node);
    }
    Ok(())
}

/// Sends the drain request; the node's answer, or an error naming what it said.
pub fn request(client: &mut HttpClient) -> anyhow::Result<Answer> {
    let response = client.post_json("/1/admin/drain", b"")?;
    if response.status != 202 {
        let hint = match response.status {
            401 => " (wrong or missing --token?)",
            _ => "",
        };
        bail!(
            "drain refused by {}: {}{hint}",
            client.base_url(),
            response.error_text()
        );
    }
    serde_json::from_slice(&response.body)
        .with_context(|| format!("unexpected answer from {}", client.base_url()))
}

/// The line printed for an answer.
fn describe(answer: &Answer, url: &str) -> String {
    let what = if answer.already_draining {
        "was draining already"
    } else {
        "is draining"
    };
    format!(
        "node {} at {url} {what}: out of checkin, v2 and SSE subscribers sent to other nodes; \
         it stops once its v1 subscribers are gone, within {}",
        answer.node,
        seconds(answer.exit_within_ms)
    )
}

/// `12 s`, `1.5 s`, `600 s`.
fn seconds(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Waits until the node at `url` no longer answers (`GET /healthz` fails), at most `limit`.
fn wait_stopped(url: &str, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        // A new connection each time: a kept-alive one would outlive nothing.
        let mut probe = HttpClient::new(url)?;
        if probe.get("/healthz").is_err() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{url} still answers {} s after the drain request",
                limit.as_secs()
            );
        }
        std::thread::sleep(WAIT_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_described_for_people() {
        let answer = Answer {
            node: "n1".into(),
            already_draining: false,
            exit_within_ms: 600_000,
        };
        assert_eq!(
            describe(&answer, "http://h:8888"),
            "node n1 at http://h:8888 is draining: out of checkin, v2 and SSE subscribers sent \
             to other nodes; it stops once its v1 subscribers are gone, within 600 s"
        );
        let again = Answer {
            already_draining: true,
            exit_within_ms: 1_500,
            ..answer
        };
        assert!(describe(&again, "u").contains("was draining already"));
        assert!(describe(&again, "u").ends_with("within 1.5 s"));
    }
}
