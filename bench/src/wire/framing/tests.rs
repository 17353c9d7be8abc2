//! Table-driven tests of the framing checker: real frames rendered by the protocol crate, and
//! one named case per way a stream can break the protocol.

use matchstream_protocol::frame::{render_event, render_status, Version};
use matchstream_protocol::{
    Date, Event, EventData, EventKind, Incarnation, Match, MatchId, NewMatch, Period, Player,
    TeamCode,
};

use super::{FrameChecker, Item, Violation};

fn sample_match(period: Period, last_seq: u64) -> Match {
    let team = |s: &str| TeamCode::parse(s).expect("team");
    let new = NewMatch {
        home: team("elp"),
        visit: team("tig"),
        start_date: Date::parse("2011-09-10").expect("date"),
        stadium: None,
        home_players: vec![Player::new(25, "Albil").expect("player")],
        visit_players: vec![Player::new(7, "Luna").expect("player")],
    };
    let incarnation = Incarnation::from_bits(0x3f9a_0c1d_2b4e_5f60).expect("not zero");
    let mut m = Match::create(new, 1_315_921_728_000, incarnation);
    m.period = period;
    m.last_seq = last_seq;
    m
}

fn event(seq: u64, kind: EventKind, comment: Option<&str>) -> Event {
    Event {
        match_id: MatchId::parse("elp-tig-2011-09-10").expect("id"),
        seq,
        timestamp_ms: 1_315_921_731_000,
        kind,
        data: EventData {
            team: Some(TeamCode::parse("tig").expect("team")),
            player: (kind == EventKind::Goal).then(|| Player::new(7, "Luna").expect("player")),
            comment: comment.map(str::to_owned),
            ..EventData::default()
        },
    }
}

/// A whole session: status (live), a goal, a comment with a send stamp, stop.
fn session(version: Version) -> Vec<u8> {
    let mut out = Vec::new();
    render_status(&sample_match(Period::First, 1), version, &mut out);
    render_event(&event(2, EventKind::Goal, None), version, &mut out);
    render_event(
        &event(3, EventKind::Comment, Some("t=1700000000123456789 pad")),
        version,
        &mut out,
    );
    render_event(&event(4, EventKind::Stop, None), version, &mut out);
    out
}

fn check(version: Version, bytes: &[u8]) -> (Vec<Item>, Result<(), Violation>) {
    let mut c = FrameChecker::new(version);
    let mut items = Vec::new();
    let r = c.feed(bytes, &mut items).and_then(|()| c.finish());
    (items, r)
}

#[test]
fn whole_sessions_pass_in_both_versions() {
    for version in Version::ALL {
        let (items, r) = check(version, &session(version));
        assert_eq!(r, Ok(()), "{version:?}");
        let kinds: Vec<_> = items
            .iter()
            .map(|i| match i {
                Item::Frame(f) => f.kind,
                Item::Error(e) => panic!("error {e}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                EventKind::Status,
                EventKind::Goal,
                EventKind::Comment,
                EventKind::Stop
            ]
        );
    }
}

#[test]
fn any_split_of_the_stream_gives_the_same_frames() {
    let bytes = session(Version::V2);
    let (whole, _) = check(Version::V2, &bytes);
    for cut in [1, 2, 3, 7, 13, 64, 97] {
        let mut c = FrameChecker::new(Version::V2);
        let mut items = Vec::new();
        for chunk in bytes.chunks(cut) {
            c.feed(chunk, &mut items).expect("valid");
        }
        c.finish().expect("complete");
        assert_eq!(items, whole, "chunks of {cut}");
    }
}

#[test]
fn facts_are_pulled_out_of_frames() {
    let (items, r) = check(Version::V2, &session(Version::V2));
    assert_eq!(r, Ok(()));
    let frames: Vec<_> = items
        .into_iter()
        .filter_map(|i| match i {
            Item::Frame(f) => Some(f),
            Item::Error(_) => None,
        })
        .collect();
    assert_eq!(frames[0].period, Some(Period::First));
    assert_eq!(frames[0].seq, Some(1));
    assert_eq!(frames[1].seq, Some(2));
    assert_eq!(frames[2].sent_ns, Some(1_700_000_000_123_456_789));
    assert_eq!(frames[3].seq, Some(4));
    let (v1, _) = check(Version::V1, &session(Version::V1));
    assert!(matches!(v1[1], Item::Frame(f) if f.seq.is_none()));
}

#[test]
fn a_resumed_session_opens_with_events() {
    // SINCE:1 replaces the status with the events after seq 1.
    let mut bytes = Vec::new();
    render_event(&event(2, EventKind::Goal, None), Version::V2, &mut bytes);
    render_event(&event(3, EventKind::Stop, None), Version::V2, &mut bytes);
    let mut c = FrameChecker::resumed(Version::V2);
    let mut items = Vec::new();
    assert_eq!(c.feed(&bytes, &mut items).and_then(|()| c.finish()), Ok(()));
    let seqs: Vec<_> = items
        .iter()
        .map(|i| match i {
            Item::Frame(f) => f.seq,
            Item::Error(e) => panic!("error {e}"),
        })
        .collect();
    assert_eq!(seqs, [Some(2), Some(3)]);
    // A fresh session still has to open with its status.
    let (_, r) = check(Version::V2, &bytes);
    assert_eq!(
        r,
        Err(Violation::BadFraming("the first frame is not a status"))
    );
}

#[test]
fn error_lines_are_reported() {
    let (items, r) = check(Version::V1, b"ERROR: unknown match\r\n");
    assert_eq!(r, Ok(()));
    assert_eq!(items, [Item::Error("unknown match".into())]);
}

#[test]
fn each_violation_is_named() {
    let status_v1 = {
        let mut out = Vec::new();
        render_status(&sample_match(Period::First, 1), Version::V1, &mut out);
        out
    };
    let with = |tail: &[u8]| [status_v1.as_slice(), tail].concat();
    let bad = |s: &'static str| Err(Violation::BadFraming(s));
    type Case = (&'static str, Version, Vec<u8>, Result<(), Violation>);
    let cases: Vec<Case> = vec![
        (
            "closed in the middle of an event",
            Version::V1,
            with(b"2011-09-13 13:48:51: goal:\n\tteam: <<\"tig\">>\n"),
            Err(Violation::Incomplete),
        ),
        (
            "closed in the middle of a line",
            Version::V1,
            with(b"2011-09-13 13:48:51: go"),
            Err(Violation::Incomplete),
        ),
        (
            "detail line outside an event",
            Version::V1,
            with(b"\tteam: <<\"tig\">>\n"),
            bad("a detail line outside an event"),
        ),
        (
            "terminator outside an event",
            Version::V1,
            with(b"\r\n"),
            bad("a terminator outside an event"),
        ),
        (
            "header of a bad shape",
            Version::V1,
            with(b"2011-09-13T13:48:51: goal:\n\r\n"),
            bad("a bad header line"),
        ),
        (
            "header of an unknown kind",
            Version::V1,
            with(b"2011-09-13 13:48:51: dance:\n\r\n"),
            bad("a bad header line"),
        ),
        (
            "first frame not a status",
            Version::V1,
            b"2011-09-13 13:48:51: goal:\n\r\n".to_vec(),
            bad("the first frame is not a status"),
        ),
        (
            "text that is not a detail line",
            Version::V1,
            with(b"2011-09-13 13:48:51: goal:\nteam: tig\n\r\n"),
            bad("expected a detail line or the terminator"),
        ),
        (
            "roster line outside a roster",
            Version::V1,
            with(b"2011-09-13 13:48:51: goal:\n\t\t Luna (7) \n\r\n"),
            bad("a roster line outside a roster"),
        ),
        (
            "detail with a bad key",
            Version::V1,
            with(b"2011-09-13 13:48:51: goal:\n\tTeam: x\n\r\n"),
            bad("a detail line with a bad key"),
        ),
        (
            "v2 frame not opening with seq",
            Version::V2,
            b"2011-09-13 13:48:51: status:\n\tperiod: first\n\r\n".to_vec(),
            bad("a version 2 frame must open with its seq line"),
        ),
        (
            "v2 frame without seq",
            Version::V2,
            b"2011-09-13 13:48:51: status:\n\r\n".to_vec(),
            bad("a version 2 frame without a seq line"),
        ),
        (
            "v2 bad seq",
            Version::V2,
            b"2011-09-13 13:48:51: status:\n\tseq: x1\n\r\n".to_vec(),
            bad("a bad seq value"),
        ),
        (
            "data after an error line",
            Version::V1,
            b"ERROR: too slow\r\nmore".to_vec(),
            bad("data after an error line"),
        ),
        (
            "error line without \\r",
            Version::V1,
            b"ERROR: too slow\n".to_vec(),
            bad("an error line must end with \\r\\n"),
        ),
        (
            "endless line",
            Version::V1,
            vec![b'x'; super::MAX_LINE + 1],
            bad("line too long"),
        ),
    ];
    for (name, version, bytes, want) in cases {
        let (_, got) = check(version, &bytes);
        assert_eq!(got, want, "{name}");
    }
}
