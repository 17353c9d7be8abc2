//! Unit tests of frame rendering: the seed's session as golden bytes, timestamps, escaping.

use super::*;
use crate::model::{Card, EventData, MatchId, Period};
use crate::testdata::{player, seed_events, seed_started, team, SEED_V1, SEED_V2};

fn session(version: Version) -> String {
    let mut out = Vec::new();
    render_status(&seed_started(), version, &mut out);
    for e in seed_events() {
        render_event(&e, version, &mut out);
    }
    String::from_utf8(out).expect("frames are UTF-8")
}

#[test]
fn seed_session_v1_is_byte_exact() {
    assert_eq!(session(Version::V1), SEED_V1);
}

#[test]
fn seed_session_v2_adds_seq_lines() {
    assert_eq!(session(Version::V2), SEED_V2);
}

fn event(kind: EventKind, data: EventData) -> Event {
    Event {
        match_id: MatchId::parse("elp-tig-2011-09-10").expect("id"),
        seq: 12,
        timestamp_ms: 1_315_921_731_000,
        kind,
        data,
    }
}

fn render(e: &Event, version: Version) -> String {
    let mut out = Vec::new();
    render_event(e, version, &mut out);
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn empty_data_frames() {
    let e = event(EventKind::HalftimeStart, EventData::default());
    assert_eq!(
        render(&e, Version::V1),
        "2011-09-13 13:48:51: halftime_start:\n\r\n"
    );
    assert_eq!(
        render(&e, Version::V2),
        "2011-09-13 13:48:51: halftime_start:\n\tseq: 12\n\r\n"
    );
}

#[test]
fn own_goal_renders_team_then_player_team() {
    let e = event(
        EventKind::Goal,
        EventData {
            player: Some(player(7, "Luna")),
            team: Some(team("elp")),
            player_team: Some(team("tig")),
            ..EventData::default()
        },
    );
    assert_eq!(
        render(&e, Version::V1),
        concat!(
            "2011-09-13 13:48:51: goal:\n",
            "\tplayer: Luna (7) \n",
            "\tteam: <<\"elp\">>\n",
            "\tplayer_team: <<\"tig\">>\n",
            "\r\n"
        )
    );
}

#[test]
fn every_key_in_the_fixed_order() {
    let e = event(
        EventKind::Start,
        EventData {
            home_players: Some(vec![player(1, "A")]),
            visit_players: Some(vec![player(2, "B"), player(3, "C")]),
            player: Some(player(4, "D")),
            player_out: Some(player(5, "E")),
            card: Some(Card::Yellow),
            team: Some(team("elp")),
            player_team: Some(team("tig")),
            player_in: Some(player(6, "F")),
            comment: Some("hi".into()),
        },
    );
    assert_eq!(
        render(&e, Version::V1),
        concat!(
            "2011-09-13 13:48:51: start:\n",
            "\thome_players:\n",
            "\t\t A (1) \n",
            "\tvisit_players:\n",
            "\t\t B (2) \n",
            "\t\t C (3) \n",
            "\tplayer: D (4) \n",
            "\tplayer_out: E (5) \n",
            "\tcard: yellow\n",
            "\tteam: <<\"elp\">>\n",
            "\tplayer_team: <<\"tig\">>\n",
            "\tplayer_in: F (6) \n",
            "\tcomment: <<\"hi\">>\n",
            "\r\n"
        )
    );
}

#[test]
fn comment_escapes_quotes_and_backslashes() {
    let e = event(
        EventKind::Comment,
        EventData {
            comment: Some(r#"he said "a\b" ¡olé!"#.into()),
            ..EventData::default()
        },
    );
    assert_eq!(
        render(&e, Version::V1),
        "2011-09-13 13:48:51: comment:\n\tcomment: <<\"he said \\\"a\\\\b\\\" ¡olé!\">>\n\r\n"
    );
}

#[test]
fn status_of_an_ended_match_with_empty_roster() {
    let mut m = seed_started();
    m.home_players.clear();
    m.home_score = 2;
    m.visit_score = 10;
    m.period = Period::Ended;
    m.last_seq = 40;
    let mut out = Vec::new();
    render_status(&m, Version::V2, &mut out);
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(text.starts_with(concat!(
        "2011-09-13 13:48:48: status:\n\tseq: 40\n",
        "\tincarnation: 3f9a0c1d2b4e5f60\n\thome: <<\"elp\">>\n"
    )));
    assert!(text.contains("\thome_players:\n\thome_score: 2\n\tvisit: <<\"tig\">>\n"));
    assert!(text.ends_with("\tvisit_score: 10\n\tperiod: ended\n\r\n"));
}

#[test]
fn the_incarnation_line_is_version_2_and_status_only() {
    let mut m = seed_started();
    let status = |m: &Match, version| {
        let mut out = Vec::new();
        render_status(m, version, &mut out);
        String::from_utf8(out).expect("UTF-8")
    };
    assert!(!status(&m, Version::V1).contains("incarnation"));
    assert!(status(&m, Version::V2).contains("\tseq: 1\n\tincarnation: 3f9a0c1d2b4e5f60\n\thome:"));
    // A match read from an old store, before it has one: no line rather than a false one.
    m.incarnation = crate::Incarnation::UNSET;
    assert!(status(&m, Version::V2).contains("\tseq: 1\n\thome:"));
    for e in seed_events() {
        assert!(!render(&e, Version::V2).contains("incarnation"));
    }
}

#[test]
fn render_appends() {
    let mut out = b"kept".to_vec();
    render_event(
        &event(EventKind::Stop, EventData::default()),
        Version::V1,
        &mut out,
    );
    assert_eq!(out, b"kept2011-09-13 13:48:51: stop:\n\r\n");
}

#[test]
fn timestamps() {
    #[rustfmt::skip]
    let cases: &[(&str, u64, &str)] = &[
        ("epoch", 0, "1970-01-01 00:00:00"),
        ("milliseconds are truncated", 999, "1970-01-01 00:00:00"),
        ("seed goal", 1_315_921_731_000, "2011-09-13 13:48:51"),
        ("leap day", 1_330_473_600_000, "2012-02-29 00:00:00"),
        ("day after leap day", 1_330_560_000_000, "2012-03-01 00:00:00"),
        ("end of 2000-02-29", 951_868_799_000, "2000-02-29 23:59:59"),
        ("new year", 1_704_067_200_000, "2024-01-01 00:00:00"),
        ("last second of 9999", 253_402_300_799_000, "9999-12-31 23:59:59"),
        ("five-digit year", 253_402_300_800_000, "10000-01-01 00:00:00"),
        ("last second of 19999", 568_971_820_799_000, "19999-12-31 23:59:59"),
        ("year 20000", 568_971_820_800_000, "20000-01-01 00:00:00"),
        ("u64::MAX, no overflow", u64::MAX, "584556019-04-03 14:25:51"),
    ];
    for (name, ms, want) in cases {
        let mut out = Vec::new();
        format_timestamp(*ms, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), *want, "{name}");
    }
}

#[test]
fn every_day_from_1970_to_2800() {
    // The calendar walked a day at a time, the plain way, against the closed formula: two
    // whole 400-year cycles of leap rules (2000 and 2400 leap, 2100, 2200, 2300 not) and
    // every March 1 the formula's eras and centuries turn on.
    let (mut year, mut month, mut day) = (1970u64, 1u64, 1u64);
    let mut days = 0u64;
    while year < 2800 {
        let mut out = Vec::new();
        format_timestamp(days * 86_400_000 + 86_399_999, &mut out);
        let want = format!("{year:04}-{month:02}-{day:02} 23:59:59");
        assert_eq!(String::from_utf8_lossy(&out), want, "day {days}");
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let length = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        day += 1;
        if day > length {
            (day, month) = (1, month + 1);
        }
        if month > 12 {
            (month, year) = (1, year + 1);
        }
        days += 1;
    }
}

#[test]
fn error_lines() {
    let mut out = Vec::new();
    render_error("too slow", &mut out);
    assert_eq!(out, b"ERROR: too slow\r\n");
}

#[test]
fn version_numbers() {
    assert_eq!(Version::ALL.map(Version::number), [1, 2]);
}
