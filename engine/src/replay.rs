//! `matchstream replay`: the watcher simulator (the original's fake_watcher). It reads a match
//! script ([`matchstream_protocol::script`]), creates the match through the HTTP API and posts
//! its events at the script's pace, scaled by `--speed`, printing one line per stored event.
//! `demo` plays the sample match with the same functions.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use matchstream_protocol::api::{new_match_body, parse_event_json, posted_event_body};
use matchstream_protocol::script::{parse_script, Script, Step, SAMPLE};
use matchstream_protocol::{Date, Event, EventKind, MatchId, NewMatch, Player};

use crate::client::HttpClient;
use crate::config::ReplayArgs;

/// Longest comment shown in a progress line, in characters.
const COMMENT_SHOWN: usize = 60;

/// Runs `matchstream replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    check_speed(args.speed)?;
    let mut script = load_script(&args.script)?;
    if let Some(date) = &args.date {
        script.new_match.start_date =
            Date::parse(date).map_err(|e| anyhow!("--date {date:?}: {e}"))?;
    }
    let mut client = HttpClient::new(&args.url)?.with_token(&args.token);
    let id = match_id(&script.new_match);
    if args.replace && cancel_match(&mut client, &id)? {
        say(&format!("cancelled the existing match {id}"));
    }
    let events = script
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Event(_)))
        .count();
    say(&format!(
        "playing {id} on {}: {events} events, {}",
        client.base_url(),
        duration_text(script.total_sleep_ms(), args.speed)
    ));
    let id = play(&mut client, &script, args.speed, say)?;
    say(&format!("{id} played"));
    Ok(())
}

/// Prints a line on standard output. Write errors are ignored: a closed output (`replay ...
/// | head`) must not stop a play, whose effect is on the server.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

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

/// The id the server gives the match `new`.
pub fn match_id(new: &NewMatch) -> MatchId {
    MatchId::new(&new.home, &new.visit, new.start_date)
}

/// Creates the match: `Ok(None)` if a match of that id exists already.
pub fn create_match(client: &mut HttpClient, new: &NewMatch) -> anyhow::Result<Option<MatchId>> {
    let id = match_id(new);
    let response = client.post_json("/1/matches", &new_match_body(new))?;
    match response.status {
        201 => {
            let created = response.json()?;
            let given = created
                .get("id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| anyhow!("the server created {id} but answered no id"))?;
            Ok(Some(MatchId::parse(given).map_err(|e| {
                anyhow!("the server created {id} under a bad id {given:?}: {e}")
            })?))
        }
        409 => Ok(None),
        _ => bail!(
            "cannot create the match {id} on {}: {}",
            client.base_url(),
            response.error_text()
        ),
    }
}

/// Cancels a match (`DELETE /1/match/<id>`): `Ok(false)` if there was none.
pub fn cancel_match(client: &mut HttpClient, id: &MatchId) -> anyhow::Result<bool> {
    let response = client.delete(&format!("/1/match/{id}"))?;
    match response.status {
        200..=299 => Ok(true),
        404 => Ok(false),
        _ => bail!(
            "cannot cancel the match {id} on {}: {}",
            client.base_url(),
            response.error_text()
        ),
    }
}

/// Creates the script's match and plays its steps, sleeping the script's pauses scaled by
/// `1 / speed` (0 = no pauses); `progress` gets one line per stored event. Fails if the
/// match exists already, or on the first event the server refuses (with its reason).
pub fn play(
    client: &mut HttpClient,
    script: &Script,
    speed: f64,
    progress: impl FnMut(&str),
) -> anyhow::Result<MatchId> {
    check_speed(speed)?;
    let Some(id) = create_match(client, &script.new_match)? else {
        bail!(
            "match {} exists; use --replace or --date",
            match_id(&script.new_match)
        );
    };
    let sleep = |pause| {
        std::thread::sleep(pause);
        true
    };
    play_steps(client, &id, script, speed, sleep, progress)?;
    Ok(id)
}

/// Plays the script's steps into the existing match `id`. `sleep` does each (scaled) pause
/// and returns `false` to stop the play early; the result says whether every step was played.
pub fn play_steps(
    client: &mut HttpClient,
    id: &MatchId,
    script: &Script,
    speed: f64,
    mut sleep: impl FnMut(Duration) -> bool,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<bool> {
    check_speed(speed)?;
    let path = format!("/1/match/{id}/events");
    let total = script
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Event(_)))
        .count();
    let mut score = Score::new(&script.new_match);
    let mut posted = 0;
    for step in &script.steps {
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
        let response = client.post_json(&path, &posted_event_body(event))?;
        if !response.is_success() {
            bail!(
                "event {posted} of {total} ({}) refused by {}: {}",
                event.kind.as_str(),
                client.base_url(),
                response.error_text()
            );
        }
        let stored = parse_event_json(&response.json()?, id)
            .map_err(|e| anyhow!("event {posted} of {total}: unexpected answer: {e}"))?;
        progress(&score.describe(&stored));
    }
    Ok(true)
}

/// Refuses a speed that is negative or not a number.
pub fn check_speed(speed: f64) -> anyhow::Result<()> {
    if speed.is_finite() && speed >= 0.0 {
        Ok(())
    } else {
        bail!("--speed must be a number ≥ 0 (0 = no pauses), got {speed}")
    }
}

/// A script pause of `ms` at `speed`; `None` for no pause (speed 0, or a 0 ms pause).
pub fn scaled(ms: u64, speed: f64) -> Option<Duration> {
    if ms == 0 || speed <= 0.0 || !speed.is_finite() {
        return None;
    }
    let secs = ms as f64 / 1000.0 / speed;
    Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// `about 31 s at 4×`-like text for a script's total pause.
fn duration_text(total_ms: u64, speed: f64) -> String {
    match scaled(total_ms, speed) {
        None => "no pauses".into(),
        Some(d) => format!("about {:.1} s at {speed}×", d.as_secs_f64()),
    }
}

/// The score as a replay sees it, for progress lines after goals.
struct Score {
    home: String,
    visit: String,
    home_goals: u32,
    visit_goals: u32,
}

impl Score {
    fn new(m: &NewMatch) -> Score {
        Score {
            home: m.home.as_str().to_owned(),
            visit: m.visit.as_str().to_owned(),
            home_goals: 0,
            visit_goals: 0,
        }
    }

    /// Counts a stored event and describes it in one short line: `seq 3 goal tig Luna (7)
    /// · elp 0-1 tig`.
    fn describe(&mut self, e: &Event) -> String {
        let mut line = describe(e);
        match e.kind {
            EventKind::Start => (self.home_goals, self.visit_goals) = (0, 0),
            EventKind::Goal => {
                match e.data.team.as_ref().map(|t| t.as_str()) {
                    Some(t) if t == self.home => self.home_goals += 1,
                    Some(t) if t == self.visit => self.visit_goals += 1,
                    _ => return line,
                }
                line.push_str(&format!(
                    " · {} {}-{} {}",
                    self.home, self.home_goals, self.visit_goals, self.visit
                ));
            }
            _ => {}
        }
        line
    }
}

/// One short line for a stored event: `seq 3 goal tig Luna (7)`, `seq 5 card elp Albil (25)
/// red`, `seq 6 substitution elp out Fernandez (18) in Silva (21)`.
pub fn describe(e: &Event) -> String {
    let d = &e.data;
    let mut line = format!("seq {} {}", e.seq, e.kind.as_str());
    let mut add = |text: &str| {
        line.push(' ');
        line.push_str(text);
    };
    if let Some(team) = &d.team {
        add(team.as_str());
    }
    if let Some(p) = &d.player {
        add(&player(p));
    }
    if let Some(team) = &d.player_team {
        add(&format!("(own goal, {team} player)"));
    }
    if let Some(card) = d.card {
        add(card.as_str());
    }
    if let Some(p) = &d.player_out {
        add(&format!("out {}", player(p)));
    }
    if let Some(p) = &d.player_in {
        add(&format!("in {}", player(p)));
    }
    if let Some(text) = &d.comment {
        let mut shown: String = text.chars().take(COMMENT_SHOWN).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        add(&format!("{shown:?}"));
    }
    for (side, roster) in [("home", &d.home_players), ("visit", &d.visit_players)] {
        if let Some(roster) = roster {
            add(&format!("({side} {} players)", roster.len()));
        }
    }
    line
}

/// `Luna (7)`.
fn player(p: &Player) -> String {
    format!("{} ({})", p.name, p.number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchstream_protocol::{Card, EventData, TeamCode};

    fn team(code: &str) -> TeamCode {
        TeamCode::parse(code).expect("team")
    }

    fn p(number: u8, name: &str) -> Player {
        Player::new(number, name).expect("player")
    }

    fn event(seq: u64, kind: EventKind, data: EventData) -> Event {
        Event {
            match_id: MatchId::parse("elp-tig-2011-09-10").expect("id"),
            seq,
            timestamp_ms: 1_315_921_731_000,
            kind,
            data,
        }
    }

    #[test]
    fn progress_lines() {
        let cases = [
            (
                "bare",
                event(9, EventKind::HalftimeStart, EventData::default()),
                "seq 9 halftime_start",
            ),
            (
                "goal",
                event(
                    3,
                    EventKind::Goal,
                    EventData {
                        team: Some(team("tig")),
                        player: Some(p(7, "Luna")),
                        ..EventData::default()
                    },
                ),
                "seq 3 goal tig Luna (7)",
            ),
            (
                "own goal",
                event(
                    19,
                    EventKind::Goal,
                    EventData {
                        team: Some(team("elp")),
                        player: Some(p(9, "Maggiolo")),
                        player_team: Some(team("tig")),
                        ..EventData::default()
                    },
                ),
                "seq 19 goal elp Maggiolo (9) (own goal, tig player)",
            ),
            (
                "card",
                event(
                    5,
                    EventKind::Card,
                    EventData {
                        team: Some(team("elp")),
                        player: Some(p(25, "Albil")),
                        card: Some(Card::Red),
                        ..EventData::default()
                    },
                ),
                "seq 5 card elp Albil (25) red",
            ),
            (
                "substitution",
                event(
                    6,
                    EventKind::Substitution,
                    EventData {
                        team: Some(team("elp")),
                        player_out: Some(p(18, "Fernandez")),
                        player_in: Some(p(21, "Silva")),
                        ..EventData::default()
                    },
                ),
                "seq 6 substitution elp out Fernandez (18) in Silva (21)",
            ),
            (
                "long comment",
                event(
                    7,
                    EventKind::Comment,
                    EventData {
                        comment: Some("é".repeat(70)),
                        ..EventData::default()
                    },
                ),
                &format!("seq 7 comment \"{}…\"", "é".repeat(60)),
            ),
            (
                "quoted comment",
                event(
                    8,
                    EventKind::Comment,
                    EventData {
                        comment: Some("say \"hi\"".into()),
                        ..EventData::default()
                    },
                ),
                "seq 8 comment \"say \\\"hi\\\"\"",
            ),
            (
                "start with rosters",
                event(
                    1,
                    EventKind::Start,
                    EventData {
                        home_players: Some(vec![p(1, "A"), p(2, "B")]),
                        visit_players: Some(vec![p(3, "C")]),
                        ..EventData::default()
                    },
                ),
                "seq 1 start (home 2 players) (visit 1 players)",
            ),
        ];
        for (name, e, want) in cases {
            assert_eq!(describe(&e), want, "{name}");
        }
    }

    #[test]
    fn goals_show_the_score() {
        let script = parse_script(SAMPLE).expect("sample");
        let mut score = Score::new(&script.new_match);
        let goal = |seq, t: &str| {
            event(
                seq,
                EventKind::Goal,
                EventData {
                    team: Some(team(t)),
                    ..EventData::default()
                },
            )
        };
        assert_eq!(
            score.describe(&goal(2, "tig")),
            "seq 2 goal tig · elp 0-1 tig"
        );
        assert_eq!(
            score.describe(&goal(3, "elp")),
            "seq 3 goal elp · elp 1-1 tig"
        );
        assert_eq!(score.describe(&goal(4, "xyz")), "seq 4 goal xyz");
        let start = event(1, EventKind::Start, EventData::default());
        assert_eq!(score.describe(&start), "seq 1 start");
        assert_eq!(
            score.describe(&goal(2, "tig")),
            "seq 2 goal tig · elp 0-1 tig"
        );
    }

    #[test]
    fn pauses_scale_with_speed() {
        assert_eq!(scaled(1000, 1.0), Some(Duration::from_secs(1)));
        assert_eq!(scaled(1000, 4.0), Some(Duration::from_millis(250)));
        assert_eq!(scaled(300, 0.5), Some(Duration::from_millis(600)));
        assert_eq!(scaled(1000, 0.0), None, "speed 0: no pauses");
        assert_eq!(scaled(0, 2.0), None);
        assert_eq!(scaled(u64::MAX, 1e-300), Some(Duration::MAX), "no panic");
        assert!(check_speed(0.0).is_ok());
        assert!(check_speed(50.0).is_ok());
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(check_speed(bad).is_err(), "{bad}");
        }
        assert_eq!(duration_text(30_000, 4.0), "about 7.5 s at 4×");
        assert_eq!(duration_text(30_000, 0.0), "no pauses");
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
