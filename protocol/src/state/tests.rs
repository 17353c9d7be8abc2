//! Unit tests of [`super::validate`] and [`super::apply`]: every rule and every error.

use super::*;
use crate::model::{Match, MatchId};
use crate::testdata::{player, posted, seed_incarnation, seed_new_match, seed_started, team};

fn not_started() -> Match {
    Match::create(seed_new_match(), 1000, seed_incarnation())
}

fn in_period(period: Period) -> Match {
    let mut m = seed_started();
    m.period = period;
    m
}

fn stored(m: &Match, seq: u64, kind: EventKind, data: EventData) -> Event {
    Event {
        match_id: m.id.clone(),
        seq,
        timestamp_ms: 5000 + seq,
        kind,
        data,
    }
}

/// Validates `p` on `m` and applies it as the next event.
fn post(m: &mut Match, p: &PostedEvent) -> Result<(), EventError> {
    let data = validate(m, p)?;
    let e = stored(m, m.last_seq + 1, p.kind, data);
    apply(m, &e);
    Ok(())
}

fn by_number(n: u8) -> Option<PlayerRef> {
    Some(PlayerRef::Number(n))
}

#[test]
fn status_is_never_postable() {
    let e = validate(&seed_started(), &PostedEvent::new(EventKind::Status));
    assert_eq!(e, Err(EventError::StatusNotPostable));
    assert_eq!(EventError::StatusNotPostable.status(), 400);
}

#[test]
fn start_sets_first_period_scores_and_rosters() {
    let mut m = not_started();
    m.home_score = 3;
    let mut p = PostedEvent::new(EventKind::Start);
    p.home_players = Some(vec![player(1, "Uno")]);
    post(&mut m, &p).expect("start accepted");
    assert_eq!(m.period, Period::First);
    assert_eq!((m.home_score, m.visit_score), (0, 0));
    assert_eq!(m.home_players, vec![player(1, "Uno")]);
    assert_eq!(
        m.visit_players.len(),
        11,
        "visit roster kept when not given"
    );
    assert_eq!((m.last_seq, m.updated_ms), (1, 5001));
}

#[test]
fn start_with_duplicate_numbers_is_refused() {
    let mut p = PostedEvent::new(EventKind::Start);
    p.visit_players = Some(vec![player(7, "Luna"), player(7, "Otro")]);
    let e = validate(&not_started(), &p);
    assert_eq!(e, Err(EventError::DuplicateNumber(7)));
    assert_eq!(EventError::DuplicateNumber(7).status(), 400);
}

#[test]
fn start_twice_is_a_bad_transition() {
    let e = validate(&seed_started(), &PostedEvent::new(EventKind::Start));
    let want = EventError::BadTransition {
        kind: EventKind::Start,
        period: Period::First,
    };
    assert_eq!(e, Err(want.clone()));
    assert_eq!(want.status(), 409);
}

#[test]
fn before_start_only_start_and_comment() {
    let m = not_started();
    let mut c = PostedEvent::new(EventKind::Comment);
    c.comment = Some("warming up".into());
    assert!(validate(&m, &c).is_ok());
    for kind in EventKind::ALL {
        if matches!(
            kind,
            EventKind::Start | EventKind::Comment | EventKind::Status
        ) {
            continue;
        }
        let e = validate(&m, &posted(kind, "elp"));
        assert_eq!(e, Err(EventError::NotStarted(kind)), "{kind:?}");
    }
    assert_eq!(EventError::NotStarted(EventKind::Goal).status(), 409);
}

#[test]
fn nothing_after_the_end() {
    let m = in_period(Period::Ended);
    for kind in EventKind::ALL {
        if kind == EventKind::Status {
            continue;
        }
        assert_eq!(
            validate(&m, &posted(kind, "elp")),
            Err(EventError::MatchEnded)
        );
    }
    assert_eq!(EventError::MatchEnded.status(), 409);
}

#[test]
fn period_transitions() {
    use EventKind::*;
    use Period::*;
    let ok = [
        (HalftimeStart, First, Halftime),
        (HalftimeStart, FirstExtra, HalftimeExtra),
        (HalftimeStop, Halftime, Last),
        (HalftimeStop, HalftimeExtra, LastExtra),
        (Extratime, Last, FirstExtra),
        (Stop, First, Ended),
        (Stop, Halftime, Ended),
        (Stop, Last, Ended),
        (Stop, FirstExtra, Ended),
        (Stop, HalftimeExtra, Ended),
        (Stop, LastExtra, Ended),
    ];
    for (kind, from, to) in ok {
        let mut m = in_period(from);
        post(&mut m, &PostedEvent::new(kind)).expect("transition accepted");
        assert_eq!(m.period, to, "{kind:?} from {from:?}");
    }
    for kind in [HalftimeStart, HalftimeStop, Extratime] {
        for from in [First, Halftime, Last, FirstExtra, HalftimeExtra, LastExtra] {
            if ok.iter().any(|&(k, f, _)| k == kind && f == from) {
                continue;
            }
            let e = validate(&in_period(from), &PostedEvent::new(kind));
            let want = EventError::BadTransition { kind, period: from };
            assert_eq!(e, Err(want), "{kind:?} from {from:?}");
        }
    }
    // next_period itself (public): exactly the transitions above, none from a match not
    // started or ended (validate refuses those before asking it).
    for kind in [Stop, HalftimeStart, HalftimeStop, Extratime] {
        for from in Period::ALL {
            let want = ok
                .iter()
                .find(|&&(k, f, _)| k == kind && f == from)
                .map(|&(_, _, to)| to);
            assert_eq!(next_period(kind, from), want, "{kind:?} from {from:?}");
        }
    }
}

#[test]
fn period_kinds_accept_a_team() {
    let p = posted(EventKind::HalftimeStart, "tig");
    let data = validate(&seed_started(), &p).expect("accepted");
    assert_eq!(data.team, Some(team("tig")));
}

#[test]
fn goal_adds_one_to_its_team() {
    let mut m = seed_started();
    post(&mut m, &posted(EventKind::Goal, "tig")).expect("goal");
    post(&mut m, &posted(EventKind::Goal, "elp")).expect("goal");
    post(&mut m, &posted(EventKind::Goal, "tig")).expect("goal");
    assert_eq!((m.home_score, m.visit_score), (1, 2));
}

#[test]
fn goal_needs_a_team() {
    let e = validate(&seed_started(), &PostedEvent::new(EventKind::Goal));
    assert_eq!(e, Err(EventError::MissingTeam));
    assert_eq!(EventError::MissingTeam.status(), 400);
}

#[test]
fn unknown_team_is_refused() {
    let e = validate(&seed_started(), &posted(EventKind::Goal, "boc"));
    assert_eq!(e, Err(EventError::UnknownTeam("boc".into())));
    let mut p = posted(EventKind::Goal, "elp");
    p.player_team = Some(team("riv"));
    p.player = by_number(7);
    let e = validate(&seed_started(), &p);
    assert_eq!(e, Err(EventError::UnknownTeam("riv".into())));
    assert_eq!(EventError::UnknownTeam("x".into()).status(), 400);
}

#[test]
fn player_by_number_is_resolved_from_the_roster() {
    let mut p = posted(EventKind::Goal, "tig");
    p.player = by_number(7);
    let data = validate(&seed_started(), &p).expect("valid");
    assert_eq!(data.player, Some(player(7, "Luna")));
}

#[test]
fn full_player_takes_the_roster_name() {
    let mut p = posted(EventKind::Shot, "tig");
    p.player = Some(PlayerRef::Full(player(7, "Lunita")));
    let data = validate(&seed_started(), &p).expect("valid");
    assert_eq!(data.player, Some(player(7, "Luna")));
}

#[test]
fn player_not_on_roster_is_refused() {
    let mut p = posted(EventKind::Goal, "tig");
    p.player = by_number(44);
    let want = EventError::PlayerNotOnRoster {
        key: "player",
        team: "tig".into(),
        number: 44,
    };
    assert_eq!(validate(&seed_started(), &p), Err(want.clone()));
    assert_eq!(want.reason(), "player 44 is not on the roster of tig");
    assert_eq!(want.status(), 400);
}

#[test]
fn own_goal_resolves_from_player_team_and_scores_for_team() {
    let mut m = seed_started();
    let mut p = posted(EventKind::Goal, "elp");
    p.player = by_number(7);
    p.player_team = Some(team("tig"));
    let data = validate(&m, &p).expect("own goal");
    assert_eq!(data.player, Some(player(7, "Luna")));
    assert_eq!(data.player_team, Some(team("tig")));
    post(&mut m, &p).expect("own goal");
    assert_eq!((m.home_score, m.visit_score), (1, 0));
}

#[test]
fn player_without_team_is_refused() {
    let mut p = PostedEvent::new(EventKind::Comment);
    p.comment = Some("who?".into());
    p.player = by_number(7);
    assert_eq!(validate(&seed_started(), &p), Err(EventError::MissingTeam));
}

#[test]
fn kinds_with_team_and_optional_player() {
    use EventKind::*;
    for kind in [
        Shot, Save, Corner, Goalkick, Offside, Foul, Penalty, Freekick, Throwin,
    ] {
        let m = seed_started();
        assert_eq!(
            validate(&m, &PostedEvent::new(kind)),
            Err(EventError::MissingTeam),
            "{kind:?}"
        );
        let mut p = posted(kind, "elp");
        assert!(validate(&m, &p).is_ok(), "{kind:?} without player");
        p.player = by_number(9);
        let data = validate(&m, &p).expect("with player");
        assert_eq!(data.player, Some(player(9, "Boselli")));
        let mut after = m.clone();
        post(&mut after, &p).expect("applies");
        assert_eq!(
            after.home_players, m.home_players,
            "{kind:?} changes no state"
        );
        assert_eq!((after.home_score, after.visit_score), (0, 0));
        assert_eq!(after.period, Period::First);
    }
}

#[test]
fn card_needs_team_player_and_colour() {
    let m = seed_started();
    let mut p = PostedEvent::new(EventKind::Card);
    assert_eq!(validate(&m, &p), Err(EventError::MissingTeam));
    p.team = Some(team("elp"));
    assert_eq!(validate(&m, &p), Err(EventError::MissingPlayer("player")));
    p.player = by_number(25);
    assert_eq!(validate(&m, &p), Err(EventError::MissingCard));
    p.card = Some(Card::Yellow);
    assert!(validate(&m, &p).is_ok());
    assert_eq!(EventError::MissingPlayer("player").status(), 400);
    assert_eq!(EventError::MissingCard.status(), 400);
}

#[test]
fn red_card_removes_the_player_yellow_does_not() {
    let mut m = seed_started();
    let mut p = posted(EventKind::Card, "elp");
    p.player = by_number(2);
    p.card = Some(Card::Yellow);
    post(&mut m, &p).expect("yellow");
    assert_eq!(m.home_players.len(), 11);
    p.player = by_number(25);
    p.card = Some(Card::Red);
    post(&mut m, &p).expect("red");
    assert_eq!(m.home_players.len(), 10);
    assert!(!m.home_players.iter().any(|q| q.number == 25));
    assert_eq!(
        validate(&m, &p).map(|_| ()),
        Err(not_on("player", "elp", 25))
    );
}

fn not_on(key: &'static str, t: &str, number: u8) -> EventError {
    EventError::PlayerNotOnRoster {
        key,
        team: t.into(),
        number,
    }
}

fn substitution(out: u8, inn: Option<PlayerRef>) -> PostedEvent {
    let mut p = posted(EventKind::Substitution, "elp");
    p.player_out = by_number(out);
    p.player_in = inn;
    p
}

#[test]
fn substitution_replaces_player_out_by_player_in() {
    let mut m = seed_started();
    let p = substitution(18, Some(PlayerRef::Full(player(21, "Silva"))));
    let data = validate(&m, &p).expect("valid");
    assert_eq!(data.player_out, Some(player(18, "Fernandez")));
    assert_eq!(data.player_in, Some(player(21, "Silva")));
    post(&mut m, &p).expect("applies");
    assert!(!m.home_players.iter().any(|q| q.number == 18));
    assert_eq!(m.home_players.last(), Some(&player(21, "Silva")));
    assert_eq!(m.home_players.len(), 11);
}

#[test]
fn substitution_errors() {
    let m = seed_started();
    let silva = Some(PlayerRef::Full(player(21, "Silva")));
    let mut p = substitution(18, silva.clone());
    p.player_out = None;
    assert_eq!(
        validate(&m, &p),
        Err(EventError::MissingPlayer("player_out"))
    );
    let p = substitution(18, None);
    assert_eq!(
        validate(&m, &p),
        Err(EventError::MissingPlayer("player_in"))
    );
    let p = substitution(44, silva);
    assert_eq!(validate(&m, &p), Err(not_on("player_out", "elp", 44)));
    assert_eq!(
        not_on("player_out", "elp", 44).reason(),
        "player_out 44 is not on the roster of elp"
    );
    let p = substitution(18, by_number(21));
    assert_eq!(validate(&m, &p), Err(EventError::PlayerInNeedsName));
    assert_eq!(EventError::PlayerInNeedsName.status(), 400);
    let p = substitution(18, Some(PlayerRef::Full(player(9, "Otro"))));
    assert_eq!(validate(&m, &p), Err(EventError::PlayerAlreadyOnRoster(9)));
    assert_eq!(EventError::PlayerAlreadyOnRoster(9).status(), 409);
}

#[test]
fn comment_needs_one_printable_line() {
    let m = seed_started();
    let p = PostedEvent::new(EventKind::Comment);
    assert_eq!(validate(&m, &p), Err(EventError::MissingComment));
    let mut p = PostedEvent::new(EventKind::Comment);
    for bad in ["", "two\nlines", "bell\u{7}"] {
        p.comment = Some(bad.into());
        assert_eq!(validate(&m, &p), Err(EventError::BadComment), "{bad:?}");
    }
    p.comment = Some("x".repeat(1025));
    assert_eq!(validate(&m, &p), Err(EventError::BadComment));
    p.comment = Some("é".repeat(512));
    assert!(validate(&m, &p).is_ok(), "1024 bytes of UTF-8");
    p.team = Some(team("tig"));
    assert_eq!(validate(&m, &p).map(|d| d.team), Ok(Some(team("tig"))));
    assert_eq!(EventError::MissingComment.status(), 400);
    assert_eq!(EventError::BadComment.status(), 400);
}

#[test]
fn irrelevant_keys_are_kept_when_valid() {
    let m = seed_started();
    let mut p = posted(EventKind::Corner, "tig");
    p.card = Some(Card::Yellow);
    p.comment = Some("close one".into());
    p.visit_players = Some(vec![player(1, "Uno")]);
    let data = validate(&m, &p).expect("valid");
    assert_eq!(data.card, Some(Card::Yellow));
    assert_eq!(data.comment.as_deref(), Some("close one"));
    assert_eq!(data.visit_players, Some(vec![player(1, "Uno")]));
    let mut after = m.clone();
    post(&mut after, &p).expect("applies");
    assert_eq!(
        after.visit_players, m.visit_players,
        "rosters only on start"
    );
    p.visit_players = Some(vec![player(1, "Uno"), player(1, "Dos")]);
    assert_eq!(validate(&m, &p), Err(EventError::DuplicateNumber(1)));
}

#[test]
fn validate_does_not_change_the_match() {
    let m = seed_started();
    let copy = m.clone();
    let _ = validate(&m, &posted(EventKind::Goal, "tig"));
    assert_eq!(m, copy);
}

#[test]
fn apply_records_seq_and_time() {
    let mut m = seed_started();
    let e = Event {
        match_id: MatchId::parse("elp-tig-2011-09-10").expect("id"),
        seq: 42,
        timestamp_ms: 99,
        kind: EventKind::Comment,
        data: EventData::default(),
    };
    apply(&mut m, &e);
    assert_eq!((m.last_seq, m.updated_ms), (42, 99));
}

#[test]
fn reasons_are_human() {
    let cases = [
        (EventError::MatchEnded, "the match has ended"),
        (
            EventError::NotStarted(EventKind::Goal),
            "the match has not started: goal not accepted",
        ),
        (
            EventError::BadTransition {
                kind: EventKind::HalftimeStop,
                period: Period::First,
            },
            "halftime_stop not accepted in period first",
        ),
        (
            EventError::UnknownTeam("boc".into()),
            "team boc does not play this match",
        ),
        (
            EventError::DuplicateNumber(7),
            "number 7 appears twice in a roster",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.reason(), want);
    }
}

#[test]
fn verify_follows_the_seed_session_event_by_event() {
    let mut m = seed_started();
    for e in crate::testdata::seed_events() {
        assert_eq!(verify(&m, &e), Ok(()), "event {}", e.seq);
        apply(&mut m, &e);
    }
}

#[test]
fn verify_refuses_what_a_store_would_not_have_stored() {
    let m = seed_started();
    let next = crate::testdata::seed_events()[0].clone(); // seq 2: a goal by Luna (7) of tig
    let forged = |edit: fn(&mut Event)| {
        let mut e = next.clone();
        edit(&mut e);
        e
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Event, StoredError)> = vec![
        ("other match", forged(|e| e.match_id = MatchId::parse("elp-boc-2011-09-10").expect("id")), StoredError::OtherMatch),
        ("seq again", forged(|e| e.seq = 1), StoredError::NotNext { expected: 2, found: 1 }),
        ("seq past a gap", forged(|e| e.seq = 3), StoredError::NotNext { expected: 2, found: 3 }),
        ("back in time", forged(|e| e.timestamp_ms = 0), StoredError::Earlier),
        ("forged frame in a comment", forged(|e| e.data.comment = Some("x\r\n\r\n2011-01-01 00:00:00: goal:\n".into())), StoredError::Refused(EventError::BadComment)),
        ("status event", forged(|e| e.kind = EventKind::Status), StoredError::Refused(EventError::StatusNotPostable)),
        ("team not playing", forged(|e| e.data.team = Some(team("boc"))), StoredError::Refused(EventError::UnknownTeam("boc".into()))),
        ("player renamed", forged(|e| e.data.player = Some(player(7, "Impostor"))), StoredError::Altered),
    ];
    for (name, event, want) in cases {
        assert_eq!(verify(&m, &event), Err(want), "{name}");
    }
}
