//! The match model of SPEC §2: ids, teams, players, periods, event kinds, events, match state.
//!
//! These types are shared by every part of matchstream: the store validates and persists them,
//! the cores render them into frames, the API serializes them to JSON.

use std::fmt;

pub use crate::error::ModelError;
use crate::incarnation::Incarnation;

/// Longest team code accepted (`[a-z0-9_]{1,32}`).
pub const MAX_TEAM_LEN: usize = 32;
/// Longest player name in bytes.
pub const MAX_PLAYER_NAME: usize = 64;
/// Longest comment in bytes.
pub const MAX_COMMENT: usize = 1024;
/// Longest stadium name in bytes.
pub const MAX_STADIUM: usize = 128;
/// Longest user id in bytes (`[A-Za-z0-9._-]{1,64}`).
pub const MAX_USER_ID: usize = 64;

/// True when `s` is non-empty, at most `max` bytes, one line, and holds no control characters.
pub fn is_printable_line(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// A team code: `[a-z0-9_]{1,32}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TeamCode(String);

impl TeamCode {
    /// Validates a team code.
    pub fn parse(s: &str) -> Result<TeamCode, ModelError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_TEAM_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(TeamCode(s.to_owned()))
        } else {
            Err(ModelError::BadTeam)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calendar day, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    /// Year, 1000..=9999.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31 (checked against the month).
    pub day: u8,
}

impl Date {
    /// Parses exactly `YYYY-MM-DD` and checks the day exists.
    pub fn parse(s: &str) -> Result<Date, ModelError> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(ModelError::BadDate);
        }
        let num = |r: std::ops::Range<usize>| -> Result<u16, ModelError> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(ModelError::BadDate);
            }
            part.parse().map_err(|_| ModelError::BadDate)
        };
        let year = num(0..4)?;
        let month = num(5..7)?;
        let day = num(8..10)?;
        if year < 1000 || !(1..=12).contains(&month) || day == 0 {
            return Err(ModelError::BadDate);
        }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if day > days {
            return Err(ModelError::BadDate);
        }
        Ok(Date {
            year,
            month: month as u8,
            day: day as u8,
        })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A match id: `<home>-<visit>-<YYYY>-<MM>-<DD>`, e.g. `elp-tig-2011-09-10`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchId(String);

impl MatchId {
    /// The id of the match between `home` and `visit` on `date`.
    pub fn new(home: &TeamCode, visit: &TeamCode, date: Date) -> MatchId {
        MatchId(format!("{home}-{visit}-{date}"))
    }

    /// Validates a match id (team codes hold no `-`, so the split is unambiguous).
    pub fn parse(s: &str) -> Result<MatchId, ModelError> {
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() != 5 {
            return Err(ModelError::BadMatchId);
        }
        TeamCode::parse(parts[0]).map_err(|_| ModelError::BadMatchId)?;
        TeamCode::parse(parts[1]).map_err(|_| ModelError::BadMatchId)?;
        Date::parse(&s[parts[0].len() + parts[1].len() + 2..])
            .map_err(|_| ModelError::BadMatchId)?;
        Ok(MatchId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for MatchId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A player: shirt number 1..=99 and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Player {
    /// Shirt number, 1..=99.
    pub number: u8,
    /// Name, 1..=64 bytes of printable text.
    pub name: String,
}

impl Player {
    /// Validates a player.
    pub fn new(number: u8, name: &str) -> Result<Player, ModelError> {
        if !(1..=99).contains(&number) {
            return Err(ModelError::BadPlayerNumber);
        }
        if !is_printable_line(name, MAX_PLAYER_NAME) {
            return Err(ModelError::BadPlayerName);
        }
        Ok(Player {
            number,
            name: name.to_owned(),
        })
    }
}

/// A player as a watcher names one: by number (resolved from the roster) or in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayerRef {
    /// Only the shirt number; the server looks the name up in the team's roster.
    Number(u8),
    /// Number and name (required for a player coming in).
    Full(Player),
}

impl PlayerRef {
    /// The shirt number.
    pub fn number(&self) -> u8 {
        match self {
            PlayerRef::Number(n) => *n,
            PlayerRef::Full(p) => p.number,
        }
    }
}

/// The period of a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// Created, no `start` yet.
    NotStarted,
    /// First half.
    First,
    /// Half time.
    Halftime,
    /// Second half.
    Last,
    /// First half of extra time.
    FirstExtra,
    /// Half time of extra time.
    HalftimeExtra,
    /// Second half of extra time.
    LastExtra,
    /// After `stop`.
    Ended,
}

impl Period {
    /// Every period, in match order.
    pub const ALL: [Period; 8] = [
        Period::NotStarted,
        Period::First,
        Period::Halftime,
        Period::Last,
        Period::FirstExtra,
        Period::HalftimeExtra,
        Period::LastExtra,
        Period::Ended,
    ];

    /// The wire name (`not_started`, `first`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Period::NotStarted => "not_started",
            Period::First => "first",
            Period::Halftime => "halftime",
            Period::Last => "last",
            Period::FirstExtra => "first_extra",
            Period::HalftimeExtra => "halftime_extra",
            Period::LastExtra => "last_extra",
            Period::Ended => "ended",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// True while events are being played (started and not ended).
    pub fn is_live(self) -> bool {
        !matches!(self, Period::NotStarted | Period::Ended)
    }
}

/// The kind of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Server-made snapshot of the match; never posted.
    Status,
    /// Kick-off: sets rosters (if given), scores 0, period `first`.
    Start,
    /// Final whistle: period `ended`.
    Stop,
    /// Half time begins.
    HalftimeStart,
    /// Half time ends.
    HalftimeStop,
    /// Extra time begins.
    Extratime,
    /// A shot.
    Shot,
    /// A save.
    Save,
    /// A goal (for `team`; `player_team` marks an own goal).
    Goal,
    /// A corner kick.
    Corner,
    /// A goal kick.
    Goalkick,
    /// An offside.
    Offside,
    /// A foul.
    Foul,
    /// A penalty.
    Penalty,
    /// A free kick.
    Freekick,
    /// A card (red removes the player).
    Card,
    /// A substitution.
    Substitution,
    /// A throw-in.
    Throwin,
    /// A free-text comment.
    Comment,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 19] = [
        EventKind::Status,
        EventKind::Start,
        EventKind::Stop,
        EventKind::HalftimeStart,
        EventKind::HalftimeStop,
        EventKind::Extratime,
        EventKind::Shot,
        EventKind::Save,
        EventKind::Goal,
        EventKind::Corner,
        EventKind::Goalkick,
        EventKind::Offside,
        EventKind::Foul,
        EventKind::Penalty,
        EventKind::Freekick,
        EventKind::Card,
        EventKind::Substitution,
        EventKind::Throwin,
        EventKind::Comment,
    ];

    /// The wire name (`goal`, `halftime_start`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "status",
            EventKind::Start => "start",
            EventKind::Stop => "stop",
            EventKind::HalftimeStart => "halftime_start",
            EventKind::HalftimeStop => "halftime_stop",
            EventKind::Extratime => "extratime",
            EventKind::Shot => "shot",
            EventKind::Save => "save",
            EventKind::Goal => "goal",
            EventKind::Corner => "corner",
            EventKind::Goalkick => "goalkick",
            EventKind::Offside => "offside",
            EventKind::Foul => "foul",
            EventKind::Penalty => "penalty",
            EventKind::Freekick => "freekick",
            EventKind::Card => "card",
            EventKind::Substitution => "substitution",
            EventKind::Throwin => "throwin",
            EventKind::Comment => "comment",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Card colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Card {
    /// Red: the player leaves the roster.
    Red,
    /// Yellow.
    Yellow,
}

impl Card {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Card::Red => "red",
            Card::Yellow => "yellow",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Card> {
        match s {
            "red" => Some(Card::Red),
            "yellow" => Some(Card::Yellow),
            _ => None,
        }
    }
}

/// The data of a stored event: every key is optional; frames render them in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EventData {
    /// `home_players` (on `start`).
    pub home_players: Option<Vec<Player>>,
    /// `visit_players` (on `start`).
    pub visit_players: Option<Vec<Player>>,
    /// `player`, resolved to number and name.
    pub player: Option<Player>,
    /// `player_out` of a substitution.
    pub player_out: Option<Player>,
    /// `card` colour.
    pub card: Option<Card>,
    /// `team` the event belongs to (the scoring team for a goal).
    pub team: Option<TeamCode>,
    /// `player_team`: the team of `player` when it differs from `team` (own goal).
    pub player_team: Option<TeamCode>,
    /// `player_in` of a substitution.
    pub player_in: Option<Player>,
    /// `comment` text.
    pub comment: Option<String>,
}

/// An event as a watcher posts it, before validation and player resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedEvent {
    /// The kind (never `Status`).
    pub kind: EventKind,
    /// `team`.
    pub team: Option<TeamCode>,
    /// `player`.
    pub player: Option<PlayerRef>,
    /// `player_team`.
    pub player_team: Option<TeamCode>,
    /// `player_in`.
    pub player_in: Option<PlayerRef>,
    /// `player_out`.
    pub player_out: Option<PlayerRef>,
    /// `card`.
    pub card: Option<Card>,
    /// `comment`.
    pub comment: Option<String>,
    /// `home_players` (with `start`).
    pub home_players: Option<Vec<Player>>,
    /// `visit_players` (with `start`).
    pub visit_players: Option<Vec<Player>>,
}

impl PostedEvent {
    /// An event of `kind` with no data.
    pub fn new(kind: EventKind) -> PostedEvent {
        PostedEvent {
            kind,
            team: None,
            player: None,
            player_team: None,
            player_in: None,
            player_out: None,
            card: None,
            comment: None,
            home_players: None,
            visit_players: None,
        }
    }
}

/// A stored event: numbered and timestamped by the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// The match it belongs to.
    pub match_id: MatchId,
    /// 1, 2, 3 ... per match, no gaps.
    pub seq: u64,
    /// Milliseconds since the Unix epoch (UTC), assigned by the server.
    pub timestamp_ms: u64,
    /// The kind.
    pub kind: EventKind,
    /// The resolved data.
    pub data: EventData,
}

/// A match and its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// `<home>-<visit>-<date>`.
    pub id: MatchId,
    /// Home team.
    pub home: TeamCode,
    /// Visiting team.
    pub visit: TeamCode,
    /// The day of the match.
    pub start_date: Date,
    /// Stadium, if known.
    pub stadium: Option<String>,
    /// Current home roster, in order.
    pub home_players: Vec<Player>,
    /// Current visiting roster, in order.
    pub visit_players: Vec<Player>,
    /// Home goals.
    pub home_score: u32,
    /// Visiting goals.
    pub visit_score: u32,
    /// Current period.
    pub period: Period,
    /// Seq of the last event applied (0 for none).
    pub last_seq: u64,
    /// Timestamp of the last event applied, or of creation when none (ms since the epoch).
    pub updated_ms: u64,
    /// Which history of the match `last_seq` counts in ([`Incarnation`]).
    pub incarnation: Incarnation,
}

/// What a watcher sends to create a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMatch {
    /// Home team.
    pub home: TeamCode,
    /// Visiting team.
    pub visit: TeamCode,
    /// The day.
    pub start_date: Date,
    /// Stadium, optional.
    pub stadium: Option<String>,
    /// Home roster, may be empty (then set by `start`).
    pub home_players: Vec<Player>,
    /// Visiting roster, may be empty.
    pub visit_players: Vec<Player>,
}

impl Match {
    /// A match freshly created from `new` at `now_ms`, its history's incarnation
    /// `incarnation`: scores 0, not started.
    pub fn create(new: NewMatch, now_ms: u64, incarnation: Incarnation) -> Match {
        Match {
            id: MatchId::new(&new.home, &new.visit, new.start_date),
            home: new.home,
            visit: new.visit,
            start_date: new.start_date,
            stadium: new.stadium,
            home_players: new.home_players,
            visit_players: new.visit_players,
            home_score: 0,
            visit_score: 0,
            period: Period::NotStarted,
            last_seq: 0,
            updated_ms: now_ms,
            incarnation,
        }
    }
}

/// True for a valid stream user id `[A-Za-z0-9._-]{1,64}`.
pub fn is_valid_user_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_USER_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_codes() {
        assert!(TeamCode::parse("elp").is_ok());
        assert!(TeamCode::parse("a_1").is_ok());
        assert!(TeamCode::parse(&"a".repeat(32)).is_ok());
        assert_eq!(TeamCode::parse(""), Err(ModelError::BadTeam));
        assert_eq!(TeamCode::parse("Elp"), Err(ModelError::BadTeam));
        assert_eq!(TeamCode::parse("el-p"), Err(ModelError::BadTeam));
        assert_eq!(TeamCode::parse(&"a".repeat(33)), Err(ModelError::BadTeam));
    }

    #[test]
    fn dates() {
        #[rustfmt::skip]
        let cases: [(&str, &str, bool); 21] = [
            ("a plain day", "2011-09-10", true),
            ("the first year", "1000-01-01", true),
            ("a year before 1000", "0999-12-31", false),
            ("the last year", "9999-12-31", true),
            ("month 13", "2011-13-01", false),
            ("month 0", "2011-00-10", false),
            ("day 0", "2011-09-00", false),
            ("day 31 of a 31-day month", "2011-01-31", true),
            ("day 32", "2011-01-32", false),
            ("day 31 of April", "2011-04-31", false),
            ("day 31 of June", "2011-06-31", false),
            ("day 30 of September", "2011-09-30", true),
            ("day 31 of November", "2011-11-31", false),
            ("February 29 of a year divisible by 4", "2012-02-29", true),
            ("February 29 of another year", "2011-02-29", false),
            ("February 29 of a century", "1900-02-29", false),
            ("February 29 of a year divisible by 400", "2000-02-29", true),
            ("a one-digit month", "2011-9-10", false),
            ("a sign", "2011-09-+1", false),
            ("another character for the first dash", "2011x09-10", false),
            ("another character for the second dash", "2011-09x10", false),
        ];
        for (name, text, valid) in cases {
            let got = Date::parse(text);
            if valid {
                assert_eq!(got.map(|d| d.to_string()), Ok(text.to_owned()), "{name}");
            } else {
                assert_eq!(got, Err(ModelError::BadDate), "{name}");
            }
        }
    }

    #[test]
    fn match_ids() {
        let id = MatchId::parse("elp-tig-2011-09-10").map(|i| i.to_string());
        assert_eq!(id, Ok("elp-tig-2011-09-10".to_owned()));
        assert_eq!(
            MatchId::parse("elp-tig-2011-09"),
            Err(ModelError::BadMatchId)
        );
        assert_eq!(
            MatchId::parse("ELP-tig-2011-09-10"),
            Err(ModelError::BadMatchId)
        );
        assert_eq!(
            MatchId::parse("elp-tig-2011-09-32"),
            Err(ModelError::BadMatchId)
        );
        assert_eq!(MatchId::parse("nope-match"), Err(ModelError::BadMatchId));
    }

    #[test]
    fn match_ids_are_found_by_their_text() {
        // Tables keyed by MatchId are looked up with a &str (Borrow<str>).
        let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
        let table = std::collections::HashMap::from([(id, 7)]);
        assert_eq!(table.get("elp-tig-2011-09-10"), Some(&7));
        assert_eq!(table.get("elp-tig-2011-09-11"), None);
    }

    #[test]
    fn players_and_users() {
        assert!(Player::new(7, "Luna").is_ok());
        assert_eq!(Player::new(0, "Luna"), Err(ModelError::BadPlayerNumber));
        assert_eq!(Player::new(100, "Luna"), Err(ModelError::BadPlayerNumber));
        assert_eq!(Player::new(7, ""), Err(ModelError::BadPlayerName));
        assert_eq!(Player::new(7, "a\nb"), Err(ModelError::BadPlayerName));
        assert!(is_valid_user_id("user.1_x-Y"));
        assert!(!is_valid_user_id("user:1"));
        assert!(!is_valid_user_id(""));
    }

    #[test]
    fn live_periods() {
        // Live: a session stays for the events to come (docs/protocol.md, "A session").
        let live: Vec<&str> = Period::ALL
            .into_iter()
            .filter(|p| p.is_live())
            .map(Period::as_str)
            .collect();
        let want = [
            "first",
            "halftime",
            "last",
            "first_extra",
            "halftime_extra",
            "last_extra",
        ];
        assert_eq!(live, want);
    }

    #[test]
    fn wire_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        for p in Period::ALL {
            assert_eq!(Period::parse(p.as_str()), Some(p));
        }
    }
}
