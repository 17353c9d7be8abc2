//! Unit tests of the script format, and of the sample script against the match rules and the
//! seed's session.

use super::*;
use crate::frame::{render_event, render_status, Version};
use crate::model::{Event, Match, Period};
use crate::state::{apply, validate};
use crate::testdata::{
    player, seed_incarnation, seed_new_match, team, SEED_START_MS, SEED_V1, SEED_V2,
};

const HEAD: &str = "home elp\nvisit tig\ndate 2011-09-10\n";

/// The sample match played from a match created at `t0`: every event stamped with `t0` plus
/// the sleeps before it. Returns the stored events and the state after each.
fn replay(t0: u64) -> Vec<(Event, Match)> {
    let script = parse_script(SAMPLE).expect("SAMPLE parses");
    let mut m = Match::create(script.new_match, t0, seed_incarnation());
    let mut now = t0;
    let mut out = Vec::new();
    for (i, s) in script.steps.iter().enumerate() {
        match s {
            Step::Sleep(ms) => now += ms,
            Step::Event(p) => {
                let data = validate(&m, p)
                    .unwrap_or_else(|e| panic!("step {i} ({:?}) refused: {e}", p.kind));
                let e = Event {
                    match_id: m.id.clone(),
                    seq: m.last_seq + 1,
                    timestamp_ms: now,
                    kind: p.kind,
                    data,
                };
                apply(&mut m, &e);
                out.push((e, m.clone()));
            }
        }
    }
    out
}

#[test]
fn sample_creates_the_seed_match() {
    let script = parse_script(SAMPLE).expect("SAMPLE parses");
    assert_eq!(script.new_match, seed_new_match());
    let total = script.total_sleep_ms();
    assert!(
        (25_000..=35_000).contains(&total),
        "about 30 s, got {total} ms"
    );
}

#[test]
fn sample_plays_a_whole_valid_match() {
    let played = replay(0);
    let (last, m) = played.last().expect("events");
    assert_eq!(last.kind, EventKind::Stop);
    assert_eq!(m.period, Period::Ended);
    assert_eq!((m.home_score, m.visit_score), (1, 2));
    assert_eq!(m.last_seq, played.len() as u64);
    let kinds: Vec<EventKind> = played.iter().map(|(e, _)| e.kind).collect();
    for k in [
        EventKind::HalftimeStart,
        EventKind::HalftimeStop,
        EventKind::Comment,
    ] {
        assert!(kinds.contains(&k), "{k:?}");
    }
    let own_goal = played
        .iter()
        .find(|(e, _)| e.data.player_team.is_some())
        .expect("an own goal");
    assert_eq!(own_goal.0.data.team, Some(team("elp")));
}

#[test]
fn sample_opening_renders_as_the_seed_session() {
    let start_at = 1000; // the sleep before `start`
    let played = replay(SEED_START_MS - start_at);
    let (start, after_start) = &played[0];
    assert_eq!(start.kind, EventKind::Start);
    for (version, golden) in [(Version::V1, SEED_V1), (Version::V2, SEED_V2)] {
        let mut out = Vec::new();
        render_status(after_start, version, &mut out);
        for (e, _) in &played[1..7] {
            render_event(e, version, &mut out);
        }
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            golden,
            "{version:?}"
        );
    }
}

fn event(line: &str) -> Result<PostedEvent, ScriptError> {
    let s = parse_script(&format!("{HEAD}{line}\n"))?;
    match s.steps.into_iter().next() {
        Some(Step::Event(e)) => Ok(e),
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn event_lines() {
    let e = event("substitution team=elp player_out=18 player_in=\"21 Silva\"").expect("ok");
    assert_eq!(e.team, Some(team("elp")));
    assert_eq!(e.player_out, Some(PlayerRef::Number(18)));
    assert_eq!(e.player_in, Some(PlayerRef::Full(player(21, "Silva"))));
    let e = event("goal   team=elp\tplayer=7 player_team=tig").expect("ok");
    assert_eq!(e.player_team, Some(team("tig")));
    let e = event(r#"comment comment="say \"hi\" \\ o/""#).expect("ok");
    assert_eq!(e.comment.as_deref(), Some(r#"say "hi" \ o/"#));
    let e = event("comment comment=\"# not a comment\"").expect("ok");
    assert_eq!(e.comment.as_deref(), Some("# not a comment"));
    let e = event("card team=tig player=\"7 Luna\" card=yellow").expect("ok");
    assert_eq!(e.player, Some(PlayerRef::Full(player(7, "Luna"))));
    assert_eq!(e.card, Some(Card::Yellow));
    let e = event("start home_players=\"1 Uno, 2 Juan Dos\"").expect("ok");
    assert_eq!(
        e.home_players,
        Some(vec![player(1, "Uno"), player(2, "Juan Dos")])
    );
    let e = event("start visit_players=\"3 Tres\"").expect("ok");
    assert_eq!(e.visit_players, Some(vec![player(3, "Tres")]));
    assert_eq!(
        event("halftime_start"),
        Ok(PostedEvent::new(EventKind::HalftimeStart))
    );
}

#[test]
fn headers_comments_and_blank_lines() {
    let text = "# a match\n\n  home elp  \nvisit tig\n   # indented comment\ndate 2011-09-10\n\
                stadium La Plata # 1\nhome_players\nvisit_players 7 Luna\nsleep 0\n";
    let s = parse_script(text).expect("ok");
    assert_eq!(s.new_match.stadium.as_deref(), Some("La Plata # 1"));
    assert_eq!(s.new_match.home_players, vec![]);
    assert_eq!(s.new_match.visit_players, vec![player(7, "Luna")]);
    assert_eq!(s.steps, vec![Step::Sleep(0)]);
}

#[test]
fn refusals() {
    let long_stadium = format!("stadium {}\n", "x".repeat(MAX_STADIUM + 1));
    #[rustfmt::skip]
    let cases: &[(&str, &str, usize, &str)] = &[
        ("missing home", "visit tig\ndate 2011-09-10\n", 2, "missing `home` line"),
        ("missing visit", "home elp\ndate 2011-09-10\n", 2, "missing `visit` line"),
        ("missing date", "home elp\nvisit tig\n\n", 3, "missing `date` line"),
        ("same teams", "home elp\nvisit elp\ndate 2011-09-10\n", 3, "home and visit must differ"),
        ("header twice", "home elp\nhome tig\n", 2, "home given twice"),
        ("bad team", "home E\n", 1, "home: team codes are 1 to 32 characters of [a-z0-9_]"),
        ("bad date", "date 2011-02-30\n", 1, "date: dates are YYYY-MM-DD"),
        ("stadium too long", &long_stadium, 1, "stadium: stadium names are 1 to 128 bytes of printable text"),
        ("header after steps", "home elp\nsleep 1\nvisit tig\n", 3, "visit must come before the first step"),
        ("roster name missing", "home_players 7\n", 1, "home_players: player 7 needs a name"),
        ("roster duplicate", "home_players 7 A, 7 B\n", 1, "home_players: number 7 appears twice"),
        ("roster number 100", "home_players 100 A\n", 1, "home_players: player numbers are 1 to 99"),
        ("sleep without number", "sleep\n", 1, "sleep needs a number of milliseconds, got \"\""),
        ("sleep negative", "sleep -5\n", 1, "sleep needs a number of milliseconds, got \"-5\""),
        ("unknown kind", "dance team=elp\n", 1, "unknown kind \"dance\""),
        ("status", "status\n", 1, "status events are made by the server"),
        ("unknown key", "goal minute=3\n", 1, "unknown key \"minute\""),
        ("key twice", "goal team=elp team=tig\n", 1, "team given twice"),
        ("no equals", "goal team\n", 1, "expected key=value, got \"team\""),
        ("empty key", "goal =elp\n", 1, "expected key=value, got \"\""),
        ("unterminated quote", "comment comment=\"oops\n", 1, "comment: unterminated quote"),
        ("bad escape", "comment comment=\"a\\nb\"\n", 1, "comment: only \\\" and \\\\ escapes"),
        ("text after quote", "comment comment=\"a\"b\n", 1, "comment: text after the closing quote"),
        ("stray quote", "comment comment=a\"b\n", 1, "comment: a quote inside an unquoted value"),
        ("empty comment", "comment comment=\"\"\n", 1, "comment: comments are one line of 1 to 1024 bytes of printable text"),
        ("bad card", "card card=blue\n", 1, "card: red or yellow"),
        ("bad player", "goal player=x\n", 1, "player: player numbers are 1 to 99"),
        ("player zero", "goal player=0\n", 1, "player: player numbers are 1 to 99"),
        ("player_in empty name", "substitution player_in=\"7 \"\n", 1, "player_in: player names are 1 to 64 bytes of printable text"),
    ];
    for (name, text, line, reason) in cases {
        let want = ScriptError {
            line: *line,
            reason: (*reason).to_owned(),
        };
        assert_eq!(parse_script(text).map(|_| ()), Err(want), "{name}");
    }
}

#[test]
fn error_display() {
    let e = ScriptError {
        line: 7,
        reason: "unknown kind \"dance\"".into(),
    };
    assert_eq!(e.to_string(), "line 7: unknown kind \"dance\"");
}
