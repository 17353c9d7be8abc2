//! `matchstream replay`: the watcher simulator (the original's fake_watcher). It reads a match
//! script ([`matchstream_protocol::script`]), creates the match through the HTTP API and posts
//! its events at the script's pace, scaled by `--speed`, printing one line per stored event;
//! the playing is [`matchstream_client::player`]'s. `demo` prints its rounds with the same
//! lines.

use std::io::Write;

use anyhow::anyhow;
use matchstream_client::player::{check_speed, load_script, play, scaled};
use matchstream_client::{match_id, HttpClient};
use matchstream_protocol::script::Step;
use matchstream_protocol::{Date, Event, EventKind, NewMatch, Player};

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
    if args.replace && client.cancel_match(&id)? {
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
    let mut score = Score::new(&script.new_match);
    let id = play(
        &mut client,
        &script,
        args.speed,
        |e| say(&score.describe(e)),
    )?;
    say(&format!("{id} played"));
    Ok(())
}

/// Prints a line on standard output. Write errors are ignored: a closed output (`replay ...
/// | head`) must not stop a play, whose effect is on the server.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// `about 31 s at 4×`-like text for a script's total pause.
fn duration_text(total_ms: u64, speed: f64) -> String {
    match scaled(total_ms, speed) {
        None => "no pauses".into(),
        Some(d) => format!("about {:.1} s at {speed}×", d.as_secs_f64()),
    }
}

/// The score as a replay sees it, for progress lines after goals.
pub(crate) struct Score {
    home: String,
    visit: String,
    home_goals: u32,
    visit_goals: u32,
}

impl Score {
    /// The score before kick-off.
    pub(crate) fn new(m: &NewMatch) -> Score {
        Score {
            home: m.home.as_str().to_owned(),
            visit: m.visit.as_str().to_owned(),
            home_goals: 0,
            visit_goals: 0,
        }
    }

    /// Counts a stored event and describes it in one short line: `seq 3 goal tig Luna (7)
    /// · elp 0-1 tig`.
    pub(crate) fn describe(&mut self, e: &Event) -> String {
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
    use matchstream_protocol::script::{parse_script, SAMPLE};
    use matchstream_protocol::{Card, EventData, MatchId, TeamCode};

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
    fn durations_at_a_speed() {
        assert_eq!(duration_text(30_000, 4.0), "about 7.5 s at 4×");
        assert_eq!(duration_text(30_000, 0.0), "no pauses");
    }
}
