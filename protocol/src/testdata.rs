//! Test fixtures: the seed's sample match (rosters, events) and the frames its sample client
//! session shows, written by hand from SPEC §3 and the seed's session.

use crate::incarnation::Incarnation;
use crate::model::{
    Card, Date, Event, EventData, EventKind, Match, NewMatch, Period, Player, PostedEvent, TeamCode,
};

/// 2011-09-13 13:48:48 UTC, the status frame of the seed's session.
pub const SEED_START_MS: u64 = 1_315_921_728_000;

pub fn team(s: &str) -> TeamCode {
    TeamCode::parse(s).expect("valid team")
}

pub fn player(number: u8, name: &str) -> Player {
    Player::new(number, name).expect("valid player")
}

fn roster(list: &[(u8, &str)]) -> Vec<Player> {
    list.iter().map(|&(n, name)| player(n, name)).collect()
}

/// elp's roster as the seed's status frame lists it.
pub fn elp_roster() -> Vec<Player> {
    roster(&[
        (25, "Albil"),
        (14, "Mercado"),
        (2, "Desabato"),
        (3, "Cellay"),
        (27, "Dominguez"),
        (11, "Veron"),
        (10, "Fernandez"),
        (5, "Sanchez"),
        (19, "Gonzalez"),
        (18, "Fernandez"),
        (9, "Boselli"),
    ])
}

/// tig's roster as the seed's status frame lists it.
pub fn tig_roster() -> Vec<Player> {
    roster(&[
        (12, "Garcia"),
        (13, "Casteglione"),
        (21, "Echeverria"),
        (3, "Blengio"),
        (15, "Diaz"),
        (5, "Castano"),
        (6, "Martinez"),
        (11, "Leone"),
        (10, "Morales"),
        (7, "Luna"),
        (9, "Maggiolo"),
    ])
}

/// The seed match's incarnation, `3f9a0c1d2b4e5f60`.
pub fn seed_incarnation() -> Incarnation {
    Incarnation::from_bits(0x3f9a_0c1d_2b4e_5f60).expect("not zero")
}

/// The sample match as created, with the seed's rosters.
pub fn seed_new_match() -> NewMatch {
    NewMatch {
        home: team("elp"),
        visit: team("tig"),
        start_date: Date::parse("2011-09-10").expect("valid date"),
        stadium: Some("Estadio Ciudad de La Plata".to_owned()),
        home_players: elp_roster(),
        visit_players: tig_roster(),
    }
}

/// The sample match right after `start` (seq 1) at [`SEED_START_MS`].
pub fn seed_started() -> Match {
    let mut m = Match::create(seed_new_match(), SEED_START_MS - 60_000, seed_incarnation());
    m.period = Period::First;
    m.last_seq = 1;
    m.updated_ms = SEED_START_MS;
    m
}

/// A posted event of `kind` for `team`.
pub fn posted(kind: EventKind, t: &str) -> PostedEvent {
    let mut p = PostedEvent::new(kind);
    p.team = Some(team(t));
    p
}

fn event(seq: u64, secs: u64, kind: EventKind, data: EventData) -> Event {
    Event {
        match_id: crate::model::MatchId::parse("elp-tig-2011-09-10").expect("valid id"),
        seq,
        timestamp_ms: SEED_START_MS + secs * 1000,
        kind,
        data,
    }
}

fn with_player(t: &str, number: u8, name: &str) -> EventData {
    EventData {
        team: Some(team(t)),
        player: Some(player(number, name)),
        ..EventData::default()
    }
}

/// The events of the seed's session after the status frame (seq 2..=7).
pub fn seed_events() -> Vec<Event> {
    let card = |number, name, colour| EventData {
        card: Some(colour),
        ..with_player("elp", number, name)
    };
    vec![
        event(2, 3, EventKind::Goal, with_player("tig", 7, "Luna")),
        event(3, 15, EventKind::Penalty, with_player("tig", 6, "Martinez")),
        event(4, 16, EventKind::Card, card(25, "Albil", Card::Red)),
        event(
            5,
            17,
            EventKind::Substitution,
            EventData {
                team: Some(team("elp")),
                player_out: Some(player(18, "Fernandez")),
                player_in: Some(player(21, "Silva")),
                ..EventData::default()
            },
        ),
        event(6, 19, EventKind::Card, card(2, "Desabato", Card::Yellow)),
        event(7, 20, EventKind::Goal, with_player("tig", 10, "Morales")),
    ]
}

/// The seed's sample session as version 1 frames.
pub const SEED_V1: &str = concat!(
    "2011-09-13 13:48:48: status:\n",
    "\thome: <<\"elp\">>\n",
    "\thome_players:\n",
    "\t\t Albil (25) \n",
    "\t\t Mercado (14) \n",
    "\t\t Desabato (2) \n",
    "\t\t Cellay (3) \n",
    "\t\t Dominguez (27) \n",
    "\t\t Veron (11) \n",
    "\t\t Fernandez (10) \n",
    "\t\t Sanchez (5) \n",
    "\t\t Gonzalez (19) \n",
    "\t\t Fernandez (18) \n",
    "\t\t Boselli (9) \n",
    "\thome_score: 0\n",
    "\tvisit: <<\"tig\">>\n",
    "\tvisit_players:\n",
    "\t\t Garcia (12) \n",
    "\t\t Casteglione (13) \n",
    "\t\t Echeverria (21) \n",
    "\t\t Blengio (3) \n",
    "\t\t Diaz (15) \n",
    "\t\t Castano (5) \n",
    "\t\t Martinez (6) \n",
    "\t\t Leone (11) \n",
    "\t\t Morales (10) \n",
    "\t\t Luna (7) \n",
    "\t\t Maggiolo (9) \n",
    "\tvisit_score: 0\n",
    "\tperiod: first\n",
    "\r\n",
    "2011-09-13 13:48:51: goal:\n",
    "\tplayer: Luna (7) \n",
    "\tteam: <<\"tig\">>\n",
    "\r\n",
    "2011-09-13 13:49:03: penalty:\n",
    "\tplayer: Martinez (6) \n",
    "\tteam: <<\"tig\">>\n",
    "\r\n",
    "2011-09-13 13:49:04: card:\n",
    "\tplayer: Albil (25) \n",
    "\tcard: red\n",
    "\tteam: <<\"elp\">>\n",
    "\r\n",
    "2011-09-13 13:49:05: substitution:\n",
    "\tplayer_out: Fernandez (18) \n",
    "\tteam: <<\"elp\">>\n",
    "\tplayer_in: Silva (21) \n",
    "\r\n",
    "2011-09-13 13:49:07: card:\n",
    "\tplayer: Desabato (2) \n",
    "\tcard: yellow\n",
    "\tteam: <<\"elp\">>\n",
    "\r\n",
    "2011-09-13 13:49:08: goal:\n",
    "\tplayer: Morales (10) \n",
    "\tteam: <<\"tig\">>\n",
    "\r\n",
);

/// The same session as version 2 frames (a `seq` line after every header, the status's
/// incarnation after its seq).
pub const SEED_V2: &str = concat!(
    "2011-09-13 13:48:48: status:\n",
    "\tseq: 1\n",
    "\tincarnation: 3f9a0c1d2b4e5f60\n",
    "\thome: <<\"elp\">>\n",
    "\thome_players:\n",
    "\t\t Albil (25) \n",
    "\t\t Mercado (14) \n",
    "\t\t Desabato (2) \n",
    "\t\t Cellay (3) \n",
    "\t\t Dominguez (27) \n",
    "\t\t Veron (11) \n",
    "\t\t Fernandez (10) \n",
    "\t\t Sanchez (5) \n",
    "\t\t Gonzalez (19) \n",
    "\t\t Fernandez (18) \n",
    "\t\t Boselli (9) \n",
    "\thome_score: 0\n",
    "\tvisit: <<\"tig\">>\n",
    "\tvisit_players:\n",
    "\t\t Garcia (12) \n",
    "\t\t Casteglione (13) \n",
    "\t\t Echeverria (21) \n",
    "\t\t Blengio (3) \n",
    "\t\t Diaz (15) \n",
    "\t\t Castano (5) \n",
    "\t\t Martinez (6) \n",
    "\t\t Leone (11) \n",
    "\t\t Morales (10) \n",
    "\t\t Luna (7) \n",
    "\t\t Maggiolo (9) \n",
    "\tvisit_score: 0\n",
    "\tperiod: first\n",
    "\r\n",
    "2011-09-13 13:48:51: goal:\n",
    "\tseq: 2\n",
    "\tplayer: Luna (7) \n",
    "\tteam: <<\"tig\">>\n",
    "\r\n",
    "2011-09-13 13:49:03: penalty:\n",
    "\tseq: 3\n",
    "\tplayer: Martinez (6) \n",
    "\tteam: <<\"tig\">>\n",
    "\r\n",
    "2011-09-13 13:49:04: card:\n",
    "\tseq: 4\n",
    "\tplayer: Albil (25) \n",
    "\tcard: red\n",
    "\tteam: <<\"elp\">>\n",
    "\r\n",
    "2011-09-13 13:49:05: substitution:\n",
    "\tseq: 5\n",
    "\tplayer_out: Fernandez (18) \n",
    "\tteam: <<\"elp\">>\n",
    "\tplayer_in: Silva (21) \n",
    "\r\n",
    "2011-09-13 13:49:07: card:\n",
    "\tseq: 6\n",
    "\tplayer: Desabato (2) \n",
    "\tcard: yellow\n",
    "\tteam: <<\"elp\">>\n",
    "\r\n",
    "2011-09-13 13:49:08: goal:\n",
    "\tseq: 7\n",
    "\tplayer: Morales (10) \n",
    "\tteam: <<\"tig\">>\n",
    "\r\n",
);
