//! The match as a person reads it: what `matchstream watch` prints by default. A score line,
//! and each event in words with its minute of play, e.g.
//! `67' GOAL tig — Luna (7) · elp 0-2 tig`.
//!
//! Minutes are counted from the server's timestamps of the events that start a period of play
//! (`start`, `halftime_stop`, `extratime`), as football counts them: the first minute of the
//! first half is `1'`, of the second `46'`, of extra time `91'` and `106'`; time played past a
//! period's length shows as stoppage time (`45+2'`). The stream itself does not carry those
//! start times to a watcher that joins mid-match, so the watcher reads them from the match's
//! history first ([`Clock::from_history`]). Where no start is known (before kick-off, or the
//! history could not be read) the event shows its time of day instead, `HH:MM:SS` UTC; during
//! half-time `HT`.
//!
//! The types here hold only what the wording needs, decoded from either encoding (TCP frames
//! in `frames.rs`, SSE events in `sse.rs`), so this file knows nothing of the wire.

use matchstream_protocol::frame::format_timestamp;
use matchstream_protocol::state::next_period;
use matchstream_protocol::{Card, EventKind, Period};

/// A player as the stream names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The name.
    pub name: String,
    /// The shirt number.
    pub number: u8,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.number)
    }
}

/// A match's status, as far as the view needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The seq of the last event it includes (v2, SSE).
    pub seq: Option<u64>,
    /// The home team.
    pub home: String,
    /// The visiting team.
    pub visit: String,
    /// Home goals.
    pub home_score: u32,
    /// Visiting goals.
    pub visit_score: u32,
    /// The period.
    pub period: Period,
}

/// An event, as far as the view needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Happening {
    /// Its seq (v2, SSE).
    pub seq: Option<u64>,
    /// When the server stored it (ms since the epoch).
    pub timestamp_ms: u64,
    /// Its kind.
    pub kind: EventKind,
    /// `team`.
    pub team: Option<String>,
    /// `player_team` (an own goal's scorer's team).
    pub player_team: Option<String>,
    /// `player`.
    pub player: Option<Who>,
    /// `player_out`.
    pub player_out: Option<Who>,
    /// `player_in`.
    pub player_in: Option<Who>,
    /// `card`.
    pub card: Option<Card>,
    /// `comment`.
    pub comment: Option<String>,
}

impl Happening {
    /// An event of `kind` at `timestamp_ms` with no details.
    pub fn new(kind: EventKind, timestamp_ms: u64) -> Happening {
        Happening {
            seq: None,
            timestamp_ms,
            kind,
            team: None,
            player_team: None,
            player: None,
            player_out: None,
            player_in: None,
            card: None,
            comment: None,
        }
    }
}

/// The period after `kind` in `period` (the state machine of the protocol's `state::apply`).
fn advance(period: Period, kind: EventKind) -> Period {
    match kind {
        EventKind::Start => Period::First,
        _ => next_period(kind, period).unwrap_or(period),
    }
}

/// The minute a period of play starts at and its length in minutes.
fn span(period: Period) -> Option<(u64, u64)> {
    match period {
        Period::First => Some((0, 45)),
        Period::Last => Some((45, 45)),
        Period::FirstExtra => Some((90, 15)),
        Period::LastExtra => Some((105, 15)),
        _ => None,
    }
}

/// When each period of play started, for minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clock {
    /// Start (ms) of first half, second half, extra time's first and second half.
    starts: [Option<u64>; 4],
}

fn slot(period: Period) -> Option<usize> {
    match period {
        Period::First => Some(0),
        Period::Last => Some(1),
        Period::FirstExtra => Some(2),
        Period::LastExtra => Some(3),
        _ => None,
    }
}

impl Clock {
    /// The clock of a match whose history so far is `events` (kind, timestamp), in seq order.
    pub fn from_history(events: impl IntoIterator<Item = (EventKind, u64)>) -> Clock {
        let mut clock = Clock::default();
        let mut period = Period::NotStarted;
        for (kind, ms) in events {
            let next = advance(period, kind);
            if next != period {
                clock.started(next, ms);
            }
            period = next;
        }
        clock
    }

    /// Records that `period` started at `ms` (no effect for a period that is not played).
    pub fn started(&mut self, period: Period, ms: u64) {
        if let Some(i) = slot(period) {
            self.starts[i] = Some(ms);
        }
    }

    /// The time of an event at `ms` in `period`: `67'`, `45+2'`, `HT`, or `HH:MM:SS` where
    /// the period's start is unknown.
    pub fn label(&self, period: Period, ms: u64) -> String {
        if matches!(period, Period::Halftime | Period::HalftimeExtra) {
            return "HT".to_owned();
        }
        let start = slot(period).and_then(|i| self.starts[i]);
        match (span(period), start) {
            (Some((base, length)), Some(start)) => {
                let minute = ms.saturating_sub(start) / 60_000 + 1;
                if minute > length {
                    format!("{}+{}'", base + length, minute - length)
                } else {
                    format!("{}'", base + minute)
                }
            }
            _ => time_of_day(ms),
        }
    }
}

/// `HH:MM:SS` (UTC) of `ms`.
fn time_of_day(ms: u64) -> String {
    let mut out = Vec::with_capacity(19);
    format_timestamp(ms, &mut out);
    String::from_utf8_lossy(&out[11..]).into_owned()
}

/// The score and period as the stream told them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Board {
    home: String,
    visit: String,
    home_score: u32,
    visit_score: u32,
    period: Period,
}

/// What the watcher has seen: the board (once a status arrived) and the clock.
#[derive(Debug, Clone, Default)]
pub struct View {
    board: Option<Board>,
    /// Period starts, from the history and the events seen since.
    pub clock: Clock,
}

impl View {
    /// A view whose clock knows the periods the history told.
    pub fn new(clock: Clock) -> View {
        View { board: None, clock }
    }

    /// Takes a status in.
    pub fn status(&mut self, s: &Status) {
        self.board = Some(Board {
            home: s.home.clone(),
            visit: s.visit.clone(),
            home_score: s.home_score,
            visit_score: s.visit_score,
            period: s.period,
        });
    }

    /// The score line: `elp 0-2 tig · second half`, or `None` before any status.
    pub fn score_line(&self) -> Option<String> {
        let b = self.board.as_ref()?;
        Some(format!("{} · {}", score(b), period_name(b.period)))
    }

    /// Takes an event in; returns its line.
    pub fn event(&mut self, h: &Happening) -> String {
        let before = self.board.as_ref().map_or(Period::NotStarted, |b| b.period);
        let after = advance(before, h.kind);
        if after != before {
            self.clock.started(after, h.timestamp_ms);
        }
        // A period's opening event belongs to the new period (`46'`), its closing one to the
        // period it closes (`45+1'`).
        let when = match h.kind {
            EventKind::Start | EventKind::HalftimeStop | EventKind::Extratime => after,
            _ => before,
        };
        let label = self.clock.label(when, h.timestamp_ms);
        let text = words(h, before);
        if let Some(b) = &mut self.board {
            b.period = after;
            match h.kind {
                EventKind::Start => (b.home_score, b.visit_score) = (0, 0),
                EventKind::Goal if h.team.as_deref() == Some(&b.home) => b.home_score += 1,
                EventKind::Goal if h.team.as_deref() == Some(&b.visit) => b.visit_score += 1,
                _ => {}
            }
        }
        match &self.board {
            Some(b) => format!("{label} {text} · {}", score(b)),
            None => format!("{label} {text}"),
        }
    }
}

fn score(b: &Board) -> String {
    format!("{} {}-{} {}", b.home, b.home_score, b.visit_score, b.visit)
}

fn period_name(p: Period) -> &'static str {
    match p {
        Period::NotStarted => "not started",
        Period::First => "first half",
        Period::Halftime => "half-time",
        Period::Last => "second half",
        Period::FirstExtra => "extra time, first half",
        Period::HalftimeExtra => "extra time, half-time",
        Period::LastExtra => "extra time, second half",
        Period::Ended => "full time",
    }
}

/// The event in words: `GOAL tig — Luna (7)`. `before` is the period it happened in.
pub fn words(h: &Happening, before: Period) -> String {
    let title = match h.kind {
        EventKind::Start => "KICK-OFF",
        EventKind::Stop => "FULL TIME",
        EventKind::HalftimeStart => "HALF-TIME",
        EventKind::HalftimeStop if before == Period::HalftimeExtra => "EXTRA TIME, SECOND HALF",
        EventKind::HalftimeStop => "SECOND HALF",
        EventKind::Extratime => "EXTRA TIME",
        EventKind::Card if h.card == Some(Card::Red) => "RED CARD",
        EventKind::Card if h.card == Some(Card::Yellow) => "YELLOW CARD",
        EventKind::Card => "CARD",
        EventKind::Goalkick => "GOAL KICK",
        EventKind::Freekick => "FREE KICK",
        EventKind::Throwin => "THROW-IN",
        EventKind::Status => "STATUS",
        EventKind::Shot => "SHOT",
        EventKind::Save => "SAVE",
        EventKind::Goal => "GOAL",
        EventKind::Corner => "CORNER",
        EventKind::Offside => "OFFSIDE",
        EventKind::Foul => "FOUL",
        EventKind::Penalty => "PENALTY",
        EventKind::Substitution => "SUBSTITUTION",
        EventKind::Comment => "COMMENT",
    };
    let mut out = title.to_owned();
    if let Some(team) = &h.team {
        out.push(' ');
        out.push_str(team);
    }
    let who = match (h.kind, &h.player_in, &h.player_out) {
        (EventKind::Substitution, Some(p_in), Some(p_out)) => Some(format!("{p_in} for {p_out}")),
        _ => {
            let mut who = h.player.as_ref().map(ToString::to_string);
            let own = h.player_team.is_some() && h.player_team != h.team;
            if let (Some(w), true) = (&mut who, own && h.kind == EventKind::Goal) {
                w.push_str(" own goal");
            }
            who
        }
    };
    if let Some(who) = who {
        out.push_str(" — ");
        out.push_str(&who);
    }
    if let Some(comment) = &h.comment {
        out.push_str(" — ");
        out.push_str(comment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_315_921_728_000;

    fn who(name: &str, number: u8) -> Option<Who> {
        Some(Who {
            name: name.into(),
            number,
        })
    }

    fn at(kind: EventKind, secs: u64) -> Happening {
        Happening::new(kind, START + secs * 1000)
    }

    fn goal(team: &str, secs: u64, name: &str, number: u8) -> Happening {
        Happening {
            team: Some(team.into()),
            player: who(name, number),
            ..at(EventKind::Goal, secs)
        }
    }

    fn view_before_kickoff() -> View {
        let mut view = View::default();
        view.status(&Status {
            seq: Some(0),
            home: "elp".into(),
            visit: "tig".into(),
            home_score: 0,
            visit_score: 0,
            period: Period::NotStarted,
        });
        view
    }

    #[test]
    fn a_match_reads_minute_by_minute() {
        let mut view = view_before_kickoff();
        assert_eq!(
            view.score_line().as_deref(),
            Some("elp 0-0 tig · not started")
        );
        let comment = Happening {
            comment: Some("teams are out".into()),
            ..at(EventKind::Comment, 0)
        };
        let halftime_stop = 45 * 60 + 120 + 15 * 60;
        #[rustfmt::skip]
        let lines = [
            (comment, "13:48:48 COMMENT — teams are out · elp 0-0 tig"),
            (at(EventKind::Start, 60), "1' KICK-OFF · elp 0-0 tig"),
            (goal("tig", 60 + 66 * 30, "Luna", 7), "34' GOAL tig — Luna (7) · elp 0-1 tig"),
            (at(EventKind::HalftimeStart, 60 + 46 * 60 + 5), "45+2' HALF-TIME · elp 0-1 tig"),
            (Happening { comment: Some("tea".into()), ..at(EventKind::Comment, 60 + 50 * 60) },
                "HT COMMENT — tea · elp 0-1 tig"),
            (at(EventKind::HalftimeStop, halftime_stop), "46' SECOND HALF · elp 0-1 tig"),
            (goal("tig", halftime_stop + 21 * 60 + 59, "Luna", 7), "67' GOAL tig — Luna (7) · elp 0-2 tig"),
            (Happening { player_team: Some("tig".into()), ..goal("elp", halftime_stop + 30 * 60, "Maggiolo", 9) },
                "76' GOAL elp — Maggiolo (9) own goal · elp 1-2 tig"),
            (at(EventKind::Stop, halftime_stop + 45 * 60 + 200), "90+4' FULL TIME · elp 1-2 tig"),
        ];
        for (event, line) in lines {
            assert_eq!(view.event(&event), line);
        }
        assert_eq!(
            view.score_line().as_deref(),
            Some("elp 1-2 tig · full time")
        );
    }

    #[test]
    fn every_kind_in_words() {
        let mut card = at(EventKind::Card, 0);
        card.team = Some("elp".into());
        card.player = who("Albil", 25);
        card.card = Some(Card::Red);
        let mut yellow = card.clone();
        yellow.card = Some(Card::Yellow);
        let sub = Happening {
            team: Some("elp".into()),
            player_out: who("Fernandez", 18),
            player_in: who("Silva", 21),
            ..at(EventKind::Substitution, 0)
        };
        let corner = Happening {
            team: Some("tig".into()),
            ..at(EventKind::Corner, 0)
        };
        let first = Period::First;
        let cases = [
            (card, first, "RED CARD elp — Albil (25)"),
            (yellow, first, "YELLOW CARD elp — Albil (25)"),
            (
                sub,
                first,
                "SUBSTITUTION elp — Silva (21) for Fernandez (18)",
            ),
            (corner, first, "CORNER tig"),
            (at(EventKind::Extratime, 0), Period::Last, "EXTRA TIME"),
            (
                at(EventKind::HalftimeStop, 0),
                Period::HalftimeExtra,
                "EXTRA TIME, SECOND HALF",
            ),
            (at(EventKind::Throwin, 0), first, "THROW-IN"),
            (at(EventKind::Goalkick, 0), first, "GOAL KICK"),
            (at(EventKind::Freekick, 0), first, "FREE KICK"),
        ];
        for (event, period, want) in cases {
            assert_eq!(words(&event, period), want);
        }
    }

    #[test]
    fn the_history_sets_the_clock_of_a_watcher_that_joins_late() {
        let halftime_stop = START + 50 * 60_000;
        let clock = Clock::from_history([
            (EventKind::Start, START),
            (EventKind::Goal, START + 60_000),
            (EventKind::HalftimeStart, START + 46 * 60_000),
            (EventKind::HalftimeStop, halftime_stop),
            (EventKind::Extratime, halftime_stop + 47 * 60_000),
        ]);
        assert_eq!(clock.label(Period::First, START + 10 * 60_000), "11'");
        assert_eq!(clock.label(Period::Last, halftime_stop), "46'");
        assert_eq!(
            clock.label(
                Period::FirstExtra,
                halftime_stop + 47 * 60_000 + 16 * 60_000
            ),
            "105+2'"
        );
        assert_eq!(
            clock.label(Period::LastExtra, START),
            "13:48:48",
            "unknown start: time of day"
        );
        assert_eq!(Clock::default().label(Period::Last, START), "13:48:48");
        assert_eq!(clock.label(Period::HalftimeExtra, START), "HT");
        // Joining in the second half: the events print with minutes from the history.
        let mut view = View::new(clock);
        view.status(&Status {
            seq: Some(5),
            home: "elp".into(),
            visit: "tig".into(),
            home_score: 0,
            visit_score: 1,
            period: Period::FirstExtra,
        });
        assert_eq!(
            view.event(&goal("elp", 100 * 60, "Boselli", 9)),
            "94' GOAL elp — Boselli (9) · elp 1-1 tig"
        );
    }

    #[test]
    fn events_before_any_status_have_no_score() {
        let mut view = View::default();
        assert_eq!(view.score_line(), None);
        assert_eq!(
            view.event(&goal("tig", 0, "Luna", 7)),
            "13:48:48 GOAL tig — Luna (7)"
        );
    }
}
