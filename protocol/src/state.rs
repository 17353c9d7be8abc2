//! Validation of posted events against a match's state, and the transitions they cause (SPEC §2).
//!
//! The store calls [`validate`] on the current state: it refuses an invalid event whole, or
//! returns the event's data with every player resolved to `(number, name)` from the rosters.
//! The store then numbers and timestamps the event and calls [`apply`], which is infallible and
//! deterministic, so every node that applies the same events reaches the same state.
//!
//! Rules beyond SPEC §2, written down here where they are enforced:
//! - before `start` only `start` and `comment` are accepted; nothing is accepted after `stop`;
//! - a `player` or `player_out` needs a team to be resolved from (`player_team`, else `team`);
//! - a `player_in` must be given in full and its number must not be on the team's roster;
//! - data keys that mean nothing to the kind are kept when valid (they are stored and rendered).

use std::fmt;

use crate::model::{
    is_printable_line, Card, Event, EventData, EventKind, Match, Period, Player, PlayerRef,
    PostedEvent, TeamCode, MAX_COMMENT,
};

/// Why a posted event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// `status` frames are made by the server, never posted.
    StatusNotPostable,
    /// The kind needs a `team` (or a player was given without a team to resolve it from).
    MissingTeam,
    /// A team that is neither home nor visit of this match.
    UnknownTeam(String),
    /// The kind needs this player key (`player`, `player_out` or `player_in`).
    MissingPlayer(&'static str),
    /// The player given under `key` is not on `team`'s roster.
    PlayerNotOnRoster {
        /// The data key (`player` or `player_out`).
        key: &'static str,
        /// The team whose roster was searched.
        team: String,
        /// The shirt number given.
        number: u8,
    },
    /// `player_in` was given by number only; a new player needs a name.
    PlayerInNeedsName,
    /// `player_in`'s number is already on the team's roster.
    PlayerAlreadyOnRoster(u8),
    /// A `card` event without a `card` colour.
    MissingCard,
    /// A `comment` event without a `comment`.
    MissingComment,
    /// A comment that is not one printable line of at most 1024 bytes.
    BadComment,
    /// A roster names this shirt number twice.
    DuplicateNumber(u8),
    /// The match has ended: nothing more is accepted.
    MatchEnded,
    /// The match has not started: only `start` and `comment` are accepted.
    NotStarted(EventKind),
    /// The kind cannot happen in the current period (e.g. `halftime_stop` in `first`).
    BadTransition {
        /// The refused kind.
        kind: EventKind,
        /// The period the match is in.
        period: Period,
    },
}

impl EventError {
    /// The HTTP status to answer with: 409 for conflicts with the match's state, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            EventError::MatchEnded
            | EventError::NotStarted(_)
            | EventError::BadTransition { .. }
            | EventError::PlayerAlreadyOnRoster(_) => 409,
            _ => 400,
        }
    }

    /// A human reason, e.g. `player 44 is not on the roster of tig`.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::StatusNotPostable => f.write_str("status events are made by the server"),
            EventError::MissingTeam => f.write_str("team is required"),
            EventError::UnknownTeam(t) => write!(f, "team {t} does not play this match"),
            EventError::MissingPlayer(key) => write!(f, "{key} is required"),
            EventError::PlayerNotOnRoster { key, team, number } => {
                if *key == "player" {
                    write!(f, "player {number} is not on the roster of {team}")
                } else {
                    write!(f, "{key} {number} is not on the roster of {team}")
                }
            }
            EventError::PlayerInNeedsName => {
                f.write_str("player_in needs a number and a name (not on the roster yet)")
            }
            EventError::PlayerAlreadyOnRoster(n) => {
                write!(f, "player_in {n} is already on the roster")
            }
            EventError::MissingCard => f.write_str("card (red or yellow) is required"),
            EventError::MissingComment => f.write_str("comment is required"),
            EventError::BadComment => {
                f.write_str("comments are one line of 1 to 1024 bytes of printable text")
            }
            EventError::DuplicateNumber(n) => write!(f, "number {n} appears twice in a roster"),
            EventError::MatchEnded => f.write_str("the match has ended"),
            EventError::NotStarted(kind) => {
                write!(
                    f,
                    "the match has not started: {} not accepted",
                    kind.as_str()
                )
            }
            EventError::BadTransition { kind, period } => write!(
                f,
                "{} not accepted in period {}",
                kind.as_str(),
                period.as_str()
            ),
        }
    }
}

impl std::error::Error for EventError {}

impl Match {
    /// The current roster of `team`, if it plays this match.
    pub fn roster(&self, team: &TeamCode) -> Option<&[Player]> {
        if *team == self.home {
            Some(&self.home_players)
        } else if *team == self.visit {
            Some(&self.visit_players)
        } else {
            None
        }
    }

    fn roster_mut(&mut self, team: &TeamCode) -> Option<&mut Vec<Player>> {
        if *team == self.home {
            Some(&mut self.home_players)
        } else if *team == self.visit {
            Some(&mut self.visit_players)
        } else {
            None
        }
    }
}

/// The period a period-changing kind leads to from `period`; `None` when it cannot happen
/// there, or when `kind` does not change the period (`start` is handled apart).
pub fn next_period(kind: EventKind, period: Period) -> Option<Period> {
    match (kind, period) {
        (EventKind::HalftimeStart, Period::First) => Some(Period::Halftime),
        (EventKind::HalftimeStart, Period::FirstExtra) => Some(Period::HalftimeExtra),
        (EventKind::HalftimeStop, Period::Halftime) => Some(Period::Last),
        (EventKind::HalftimeStop, Period::HalftimeExtra) => Some(Period::LastExtra),
        (EventKind::Extratime, Period::Last) => Some(Period::FirstExtra),
        (EventKind::Stop, p) if p.is_live() => Some(Period::Ended),
        _ => None,
    }
}

/// True for the kinds that must name a `team`.
fn needs_team(kind: EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Status
            | EventKind::Start
            | EventKind::Stop
            | EventKind::HalftimeStart
            | EventKind::HalftimeStop
            | EventKind::Extratime
            | EventKind::Comment
    )
}

/// Checks `posted` against the current state `m` and resolves players given by number into
/// (number, name) from the roster. Does not change `m`.
///
/// ```
/// use matchstream_protocol::{state, Date, EventKind, Incarnation, Match, NewMatch, Player,
///     PlayerRef, PostedEvent, TeamCode};
/// let tig = TeamCode::parse("tig")?;
/// let mut m = Match::create(NewMatch {
///     home: TeamCode::parse("elp")?, visit: tig.clone(), start_date: Date::parse("2011-09-10")?,
///     stadium: None, home_players: vec![], visit_players: vec![Player::new(7, "Luna")?],
/// }, 0, Incarnation::parse(b"3f9a0c1d2b4e5f60")?);
/// m.period = matchstream_protocol::Period::First;
/// let mut goal = PostedEvent::new(EventKind::Goal);
/// goal.team = Some(tig);
/// goal.player = Some(PlayerRef::Number(7));
/// let data = state::validate(&m, &goal).expect("valid");
/// assert_eq!(data.player, Some(Player::new(7, "Luna")?));
/// # Ok::<(), matchstream_protocol::ModelError>(())
/// ```
pub fn validate(m: &Match, posted: &PostedEvent) -> Result<EventData, EventError> {
    let kind = posted.kind;
    check_period(m, kind)?;
    for team in [&posted.team, &posted.player_team].into_iter().flatten() {
        if m.roster(team).is_none() {
            return Err(EventError::UnknownTeam(team.as_str().to_owned()));
        }
    }
    for roster in [&posted.home_players, &posted.visit_players]
        .into_iter()
        .flatten()
    {
        check_roster(roster)?;
    }
    if needs_team(kind) && posted.team.is_none() {
        return Err(EventError::MissingTeam);
    }
    match kind {
        EventKind::Card if posted.player.is_none() => {
            return Err(EventError::MissingPlayer("player"))
        }
        EventKind::Card if posted.card.is_none() => return Err(EventError::MissingCard),
        EventKind::Substitution if posted.player_out.is_none() => {
            return Err(EventError::MissingPlayer("player_out"))
        }
        EventKind::Substitution if posted.player_in.is_none() => {
            return Err(EventError::MissingPlayer("player_in"))
        }
        EventKind::Comment if posted.comment.is_none() => return Err(EventError::MissingComment),
        _ => {}
    }
    if let Some(c) = &posted.comment {
        if !is_printable_line(c, MAX_COMMENT) {
            return Err(EventError::BadComment);
        }
    }
    let player_from = posted.player_team.as_ref().or(posted.team.as_ref());
    let player = resolve(m, "player", player_from, posted.player.as_ref())?;
    let player_out = resolve(
        m,
        "player_out",
        posted.team.as_ref(),
        posted.player_out.as_ref(),
    )?;
    let player_in = match &posted.player_in {
        None => None,
        Some(PlayerRef::Number(_)) => return Err(EventError::PlayerInNeedsName),
        Some(PlayerRef::Full(p)) => {
            let team = posted.team.as_ref().ok_or(EventError::MissingTeam)?;
            if m.roster(team).is_some_and(|r| on_roster(r, p.number)) {
                return Err(EventError::PlayerAlreadyOnRoster(p.number));
            }
            Some(p.clone())
        }
    };
    Ok(EventData {
        home_players: posted.home_players.clone(),
        visit_players: posted.visit_players.clone(),
        player,
        player_out,
        card: posted.card,
        team: posted.team.clone(),
        player_team: posted.player_team.clone(),
        player_in,
        comment: posted.comment.clone(),
    })
}

/// Why a stored event does not follow on from a match's state ([`verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredError {
    /// The event belongs to another match.
    OtherMatch,
    /// The event is not the state's next seq.
    NotNext {
        /// The seq that comes next.
        expected: u64,
        /// The event's seq.
        found: u64,
    },
    /// Its timestamp is before the state's last change (a store never goes back in time).
    Earlier,
    /// The API's rules refuse it against the state ([`validate`]).
    Refused(EventError),
    /// The rules accept it but give other data back (a player's name that is not the
    /// roster's): not what a store taking it would have stored.
    Altered,
}

impl fmt::Display for StoredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredError::OtherMatch => f.write_str("event of another match"),
            StoredError::NotNext { expected, found } => {
                write!(f, "seq {found} where {expected} comes next")
            }
            StoredError::Earlier => f.write_str("timestamp before the match's last change"),
            StoredError::Refused(e) => write!(f, "refused by the match rules: {e}"),
            StoredError::Altered => f.write_str("data the match rules would have stored otherwise"),
        }
    }
}

impl std::error::Error for StoredError {}

/// Checks an event read from a store against the state `m` before it, as a node does with what
/// other writers left in a shared store: it must be what a store taking it would have stored —
/// the next seq of this match, not before the match's last change, and data that [`validate`]
/// (the API's own check) gives back unchanged when the event is posted again with its players
/// in full. The value checks (printable one-line comments and names, no `status`) are the
/// decoders' (`api::parse_event_json`); this adds the match's rules and the numbering.
///
/// ```
/// use matchstream_protocol::state::{verify, StoredError};
/// use matchstream_protocol::{Date, Event, EventData, EventKind, Incarnation, Match, NewMatch,
///     TeamCode};
/// let m = Match::create(NewMatch {
///     home: TeamCode::parse("elp")?, visit: TeamCode::parse("tig")?,
///     start_date: Date::parse("2011-09-10")?, stadium: None,
///     home_players: vec![], visit_players: vec![],
/// }, 1000, Incarnation::parse(b"3f9a0c1d2b4e5f60")?);
/// let mut start = Event { match_id: m.id.clone(), seq: 1, timestamp_ms: 2000,
///     kind: EventKind::Start, data: EventData::default() };
/// assert_eq!(verify(&m, &start), Ok(()));
/// start.seq = 2;
/// assert_eq!(verify(&m, &start), Err(StoredError::NotNext { expected: 1, found: 2 }));
/// # Ok::<(), matchstream_protocol::ModelError>(())
/// ```
pub fn verify(m: &Match, event: &Event) -> Result<(), StoredError> {
    if event.match_id != m.id {
        return Err(StoredError::OtherMatch);
    }
    let expected = m.last_seq.wrapping_add(1);
    if event.seq != expected {
        return Err(StoredError::NotNext {
            expected,
            found: event.seq,
        });
    }
    if event.timestamp_ms < m.updated_ms {
        return Err(StoredError::Earlier);
    }
    let d = &event.data;
    let full = |p: &Option<Player>| p.clone().map(PlayerRef::Full);
    let posted = PostedEvent {
        kind: event.kind,
        team: d.team.clone(),
        player: full(&d.player),
        player_team: d.player_team.clone(),
        player_in: full(&d.player_in),
        player_out: full(&d.player_out),
        card: d.card,
        comment: d.comment.clone(),
        home_players: d.home_players.clone(),
        visit_players: d.visit_players.clone(),
    };
    match validate(m, &posted) {
        Ok(data) if data == *d => Ok(()),
        Ok(_) => Err(StoredError::Altered),
        Err(e) => Err(StoredError::Refused(e)),
    }
}

/// Refuses a kind the match's period does not allow.
fn check_period(m: &Match, kind: EventKind) -> Result<(), EventError> {
    match (kind, m.period) {
        (EventKind::Status, _) => Err(EventError::StatusNotPostable),
        (_, Period::Ended) => Err(EventError::MatchEnded),
        (EventKind::Start | EventKind::Comment, Period::NotStarted) => Ok(()),
        (_, Period::NotStarted) => Err(EventError::NotStarted(kind)),
        (EventKind::Start, period) => Err(EventError::BadTransition { kind, period }),
        (
            EventKind::Stop
            | EventKind::HalftimeStart
            | EventKind::HalftimeStop
            | EventKind::Extratime,
            period,
        ) if next_period(kind, period).is_none() => Err(EventError::BadTransition { kind, period }),
        _ => Ok(()),
    }
}

/// Refuses a roster that names a number twice.
fn check_roster(roster: &[Player]) -> Result<(), EventError> {
    let mut seen = [false; 256];
    for p in roster {
        let slot = &mut seen[usize::from(p.number)];
        if *slot {
            return Err(EventError::DuplicateNumber(p.number));
        }
        *slot = true;
    }
    Ok(())
}

fn on_roster(roster: &[Player], number: u8) -> bool {
    roster.iter().any(|p| p.number == number)
}

/// Resolves the player given under `key` from `team`'s roster (the roster's name wins).
fn resolve(
    m: &Match,
    key: &'static str,
    team: Option<&TeamCode>,
    given: Option<&PlayerRef>,
) -> Result<Option<Player>, EventError> {
    let Some(given) = given else {
        return Ok(None);
    };
    let team = team.ok_or(EventError::MissingTeam)?;
    let number = given.number();
    m.roster(team)
        .and_then(|r| r.iter().find(|p| p.number == number))
        .cloned()
        .map(Some)
        .ok_or_else(|| EventError::PlayerNotOnRoster {
            key,
            team: team.as_str().to_owned(),
            number,
        })
}

/// Applies an already validated event to `m` (infallible, deterministic): period changes,
/// scores, rosters, `last_seq = event.seq`, `updated_ms = event.timestamp_ms`.
pub fn apply(m: &mut Match, event: &Event) {
    let d = &event.data;
    match event.kind {
        EventKind::Start => {
            if let Some(r) = &d.home_players {
                m.home_players = r.clone();
            }
            if let Some(r) = &d.visit_players {
                m.visit_players = r.clone();
            }
            m.home_score = 0;
            m.visit_score = 0;
            m.period = Period::First;
        }
        EventKind::Goal => {
            if let Some(team) = &d.team {
                if *team == m.home {
                    m.home_score += 1;
                } else if *team == m.visit {
                    m.visit_score += 1;
                }
            }
        }
        EventKind::Card if d.card == Some(Card::Red) => {
            if let (Some(team), Some(p)) = (&d.team, &d.player) {
                if let Some(r) = m.roster_mut(team) {
                    r.retain(|q| q.number != p.number);
                }
            }
        }
        EventKind::Substitution => {
            if let Some(r) = d.team.as_ref().and_then(|t| m.roster_mut(t)) {
                if let Some(out) = &d.player_out {
                    r.retain(|q| q.number != out.number);
                }
                if let Some(p) = &d.player_in {
                    r.push(p.clone());
                }
            }
        }
        kind => {
            if let Some(p) = next_period(kind, m.period) {
                m.period = p;
            }
        }
    }
    m.last_seq = event.seq;
    m.updated_ms = event.timestamp_ms;
}

#[cfg(test)]
mod tests;
