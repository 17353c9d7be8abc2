//! The match-script player (the original's fake_watcher): load a script
//! ([`matchstream_protocol::script`]), create its match through the API and post its events
//! at the script's pace, every pause scaled by `1 / speed`. `matchstream replay` and `demo`
//! play with it, and so does the bench when it is a match's watcher.

use std::io::Read;
use std::time::Duration;

use anyhow::{bail, Context};
use matchstream_protocol::script::{parse_script, Script, Step, SAMPLE};
use matchstream_protocol::{Event, MatchId};

use crate::api::match_id;
use crate::http_client::HttpClient;

/// Reads and parses a script: `-` is standard input, `sample` the built-in sample match
/// (`./sample` names a file of that name), anything else a file.
pub fn load_script(source: &str) -> anyhow::Result<Script> {
    let text = match source {
        "sample" => SAMPLE.to_owned(),
        "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the script from standard input")?;
            text
        }
        path => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the script {path}"))?,
    };
    let name = if source == "-" { "<stdin>" } else { source };
    parse_script(&text).with_context(|| format!("script {name}"))
}

/// Refuses a speed that is negative or not a number.
pub fn check_speed(speed: f64) -> anyhow::Result<()> {
    if speed.is_finite() && speed >= 0.0 {
        Ok(())
    } else {
        bail!("--speed must be a number ≥ 0 (0 = no pauses), got {speed}")
    }
}

/// A script pause of `ms` at `speed`; `None` for no pause (speed 0 or below, or a 0 ms
/// pause).
pub fn scaled(ms: u64, speed: f64) -> Option<Duration> {
    if ms == 0 || speed <= 0.0 || !speed.is_finite() {
        return None;
    }
    let secs = ms as f64 / 1000.0 / speed;
    Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// Creates the script's match and plays every step, sleeping the script's pauses scaled by
/// `1 / speed` (0 = no pauses); `stored` sees each event as the server stored it. Fails if the
/// match exists already, or on the first event the server refuses (with its reason).
pub fn play(
    client: &mut HttpClient,
    script: &Script,
    speed: f64,
    stored: impl FnMut(&Event),
) -> anyhow::Result<MatchId> {
    let Some(id) = client.create_match(&script.new_match)? else {
        bail!(
            "match {} exists; use --replace or --date",
            match_id(&script.new_match)
        );
    };
    let sleep = |pause| {
        std::thread::sleep(pause);
        true
    };
    play_steps(client, &id, &script.steps, speed, sleep, stored)?;
    Ok(id)
}

/// Plays `steps` into the existing match `id`. `sleep` does each (scaled) pause and returns
/// `false` to stop the play early; `stored` sees each event as the server stored it. The
/// result says whether every step was played.
pub fn play_steps(
    client: &mut HttpClient,
    id: &MatchId,
    steps: &[Step],
    speed: f64,
    mut sleep: impl FnMut(Duration) -> bool,
    mut stored: impl FnMut(&Event),
) -> anyhow::Result<bool> {
    let total = steps.iter().filter(|s| matches!(s, Step::Event(_))).count();
    let mut posted = 0;
    for step in steps {
        let event = match step {
            Step::Sleep(ms) => {
                if let Some(pause) = scaled(*ms, speed) {
                    if !sleep(pause) {
                        return Ok(false);
                    }
                }
                continue;
            }
            Step::Event(event) => event,
        };
        posted += 1;
        let event = client
            .post_event(id, event)
            .with_context(|| format!("event {posted} of {total} ({})", event.kind.as_str()))?;
        stored(&event);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Answer, TestServer};
    use matchstream_protocol::{EventKind, PostedEvent};

    fn stored(seq: u64, kind: &str) -> Answer {
        let body = format!(
            r#"{{"match":"elp-tig-2011-09-10","seq":{seq},"timestamp":1,"kind":"{kind}"}}"#
        );
        Answer::Keep(format!(
            "HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    #[test]
    fn steps_post_in_order_and_a_refused_sleep_stops_the_play() {
        let steps = [
            Step::Event(PostedEvent::new(EventKind::Start)),
            Step::Sleep(1000),
            Step::Event(PostedEvent::new(EventKind::Stop)),
        ];
        let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
        let server = TestServer::start(vec![stored(2, "start"), stored(3, "stop")]);
        let mut client = HttpClient::new(&server.url).expect("client");
        let (mut pauses, mut seqs) = (Vec::new(), Vec::new());
        let sleep = |d| {
            pauses.push(d);
            true
        };
        let all = play_steps(&mut client, &id, &steps, 4.0, sleep, |e| seqs.push(e.seq));
        assert!(all.expect("played"));
        assert_eq!(pauses, [Duration::from_millis(250)]);
        assert_eq!(seqs, [2, 3]);
        let (requests, _) = server.finish();
        assert!(
            requests[1].ends_with(r#"{"kind":"stop"}"#),
            "{}",
            requests[1]
        );

        let server = TestServer::start(vec![stored(2, "start")]);
        let mut client = HttpClient::new(&server.url).expect("client");
        let all = play_steps(&mut client, &id, &steps, 1.0, |_| false, |_| {});
        assert!(!all.expect("stopped"), "stopped at the pause");
        assert_eq!(server.finish().0.len(), 1);
    }

    #[test]
    fn a_refused_event_names_its_place() {
        let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
        let steps = [Step::Event(PostedEvent::new(EventKind::Goal))];
        let refusal = r#"{"error":"match not started"}"#;
        let server = TestServer::start(vec![Answer::Keep(format!(
            "HTTP/1.1 409 Conflict\r\nContent-Length: {}\r\n\r\n{refusal}",
            refusal.len()
        ))]);
        let mut client = HttpClient::new(&server.url).expect("client");
        let err = play_steps(&mut client, &id, &steps, 0.0, |_| true, |_| {}).expect_err("refused");
        let text = format!("{err:#}");
        assert!(
            text.starts_with("event 1 of 1 (goal): refused by http://"),
            "{text}"
        );
        assert!(text.ends_with("409 match not started"), "{text}");
        server.finish();
    }

    #[test]
    fn pauses_scale_with_speed() {
        let cases = [
            ("real time", 1000, 1.0, Some(Duration::from_secs(1))),
            ("faster", 1000, 4.0, Some(Duration::from_millis(250))),
            ("slower", 300, 0.5, Some(Duration::from_millis(600))),
            ("speed 0: no pauses", 1000, 0.0, None),
            ("negative: no pauses", 1000, -1.0, None),
            ("no pause", 0, 2.0, None),
            ("no panic", u64::MAX, 1e-300, Some(Duration::MAX)),
        ];
        for (name, ms, speed, want) in cases {
            assert_eq!(scaled(ms, speed), want, "{name}");
        }
        assert!(check_speed(0.0).is_ok());
        assert!(check_speed(50.0).is_ok());
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(check_speed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scripts_load() {
        let sample = load_script("sample").expect("sample");
        assert_eq!(match_id(&sample.new_match).as_str(), "elp-tig-2011-09-10");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.match");
        std::fs::write(&path, "home elp\nvisit tig\n").expect("write");
        let err = format!(
            "{:#}",
            load_script(path.to_str().expect("utf8")).expect_err("bad")
        );
        assert!(
            err.contains("bad.match: line 2: missing `date` line"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            load_script("/nonexistent/x.match").expect_err("missing")
        );
        assert!(
            err.starts_with("cannot read the script /nonexistent/x.match"),
            "{err}"
        );
    }
}
