//! Match scripts: what `matchstream replay` (the original's fake_watcher) and `demo` play.
//!
//! A script is line-oriented text. Blank lines and lines whose first non-blank character is
//! `#` are ignored. It opens with header lines naming the match, then lists timed steps:
//!
//! ```text
//! home elp                          # home team code (required)
//! visit tig                         # visiting team code (required)
//! date 2011-09-10                   # start date, YYYY-MM-DD (required)
//! stadium Estadio Ciudad de La Plata  # optional, the rest of the line
//! home_players 25 Albil, 14 Mercado # optional rosters: "<number> <name>" separated by commas
//! visit_players 12 Garcia, 7 Luna
//! sleep 1000                        # wait 1000 ms (replay scales it with --speed)
//! start                             # an event: its kind, then key=value data
//! goal team=tig player=7
//! substitution team=elp player_out=18 player_in="21 Silva"
//! comment comment="Veron: \"we will be back\""
//! stop
//! ```
//!
//! (The `#` notes above are for this page only: a comment must be a line of its own, since
//! text such as a stadium name may hold `#`.) Each header line appears at most once, before
//! the first step. Event data keys are those of SPEC §2: `team` and `player_team` take a team
//! code, `player`, `player_out` and `player_in` a shirt number (`7`) or a number and a name
//! (`"21 Silva"`), `card` is `red` or `yellow`, `comment` text, `home_players` and
//! `visit_players` a roster as in the header. A value holding spaces is quoted; inside quotes
//! `\"` and `\\` stand for `"` and `\`. The parser checks the syntax and every value; whether
//! an event fits the match's state is checked when it is posted.

use std::fmt;

use crate::model::{
    is_printable_line, Card, Date, EventKind, ModelError, NewMatch, Player, PlayerRef, PostedEvent,
    TeamCode, MAX_COMMENT, MAX_STADIUM,
};

/// The sample match of the seed's session (`protocol/scripts/elp-tig.match`).
pub const SAMPLE: &str = include_str!("../scripts/elp-tig.match");

/// A parsed script: the match to create and the steps to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The match to create first.
    pub new_match: NewMatch,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Script {
    /// The sum of the script's sleeps, in milliseconds.
    pub fn total_sleep_ms(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Sleep(ms) => *ms,
                Step::Event(_) => 0,
            })
            .sum()
    }
}

/// One step of a script.
// An event step is large next to a sleep, but scripts hold a few hundred steps read once:
// boxing would only make every match on a step noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Wait this many milliseconds.
    Sleep(u64),
    /// Post this event.
    Event(PostedEvent),
}

/// Why a script was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// 1-based line number (the last line for something missing at the end).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ScriptError {}

/// Parses a script (see the module documentation for the format).
///
/// ```
/// use matchstream_protocol::script::{parse_script, Step};
/// let s = parse_script("home elp\nvisit tig\ndate 2011-09-10\nsleep 5\ngoal team=tig\n")?;
/// assert_eq!(s.steps.len(), 2);
/// assert_eq!(s.steps[0], Step::Sleep(5));
/// let e = parse_script("home elp\nvisit tig\ndate 2011-09-10\ngoal team=Tig\n")
///     .expect_err("bad team");
/// assert_eq!(e.to_string(), "line 4: team: team codes are 1 to 32 characters of [a-z0-9_]");
/// # Ok::<(), matchstream_protocol::script::ScriptError>(())
/// ```
pub fn parse_script(text: &str) -> Result<Script, ScriptError> {
    let mut header = Header::default();
    let mut steps = Vec::new();
    let mut last = 1;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        last = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |reason: String| ScriptError {
            line: i + 1,
            reason,
        };
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        if header.set(word, rest).map_err(at)? {
            if !steps.is_empty() {
                return Err(at(format!("{word} must come before the first step")));
            }
        } else {
            steps.push(step(word, rest).map_err(at)?);
        }
    }
    let missing = |what: &str| ScriptError {
        line: last,
        reason: format!("missing `{what}` line"),
    };
    let home = header.home.ok_or_else(|| missing("home"))?;
    let visit = header.visit.ok_or_else(|| missing("visit"))?;
    if home == visit {
        return Err(ScriptError {
            line: last,
            reason: "home and visit must differ".into(),
        });
    }
    Ok(Script {
        new_match: NewMatch {
            home,
            visit,
            start_date: header.date.ok_or_else(|| missing("date"))?,
            stadium: header.stadium,
            home_players: header.home_players.unwrap_or_default(),
            visit_players: header.visit_players.unwrap_or_default(),
        },
        steps,
    })
}

/// The header lines seen so far.
#[derive(Default)]
struct Header {
    home: Option<TeamCode>,
    visit: Option<TeamCode>,
    date: Option<Date>,
    stadium: Option<String>,
    home_players: Option<Vec<Player>>,
    visit_players: Option<Vec<Player>>,
}

impl Header {
    /// Records a header line; `Ok(false)` when `word` is no header keyword.
    fn set(&mut self, word: &str, rest: &str) -> Result<bool, String> {
        fn once<T>(slot: &mut Option<T>, word: &str, v: T) -> Result<bool, String> {
            if slot.is_some() {
                return Err(format!("{word} given twice"));
            }
            *slot = Some(v);
            Ok(true)
        }
        let model = |e: ModelError| format!("{word}: {e}");
        match word {
            "home" => once(&mut self.home, word, TeamCode::parse(rest).map_err(model)?),
            "visit" => once(&mut self.visit, word, TeamCode::parse(rest).map_err(model)?),
            "date" => once(&mut self.date, word, Date::parse(rest).map_err(model)?),
            "stadium" if is_printable_line(rest, MAX_STADIUM) => {
                once(&mut self.stadium, word, rest.to_owned())
            }
            "stadium" => Err(model(ModelError::BadStadium)),
            "home_players" => once(&mut self.home_players, word, roster(word, rest)?),
            "visit_players" => once(&mut self.visit_players, word, roster(word, rest)?),
            _ => Ok(false),
        }
    }
}

/// Parses a step line: `sleep <ms>` or `<kind> key=value ...`.
fn step(word: &str, rest: &str) -> Result<Step, String> {
    if word == "sleep" {
        return rest
            .parse()
            .ok()
            .filter(|_| rest.bytes().all(|b| b.is_ascii_digit()))
            .map(Step::Sleep)
            .ok_or_else(|| format!("sleep needs a number of milliseconds, got {rest:?}"));
    }
    let kind = EventKind::parse(word).ok_or_else(|| format!("unknown kind {word:?}"))?;
    if kind == EventKind::Status {
        return Err("status events are made by the server".into());
    }
    let mut e = PostedEvent::new(kind);
    for (key, value) in pairs(rest)? {
        set(&mut e, &key, &value)?;
    }
    Ok(Step::Event(e))
}

/// Sets one data key of `e`, refusing a key given twice.
fn set(e: &mut PostedEvent, key: &str, value: &str) -> Result<(), String> {
    fn once<T>(slot: &mut Option<T>, key: &str, v: T) -> Result<(), String> {
        if slot.is_some() {
            return Err(format!("{key} given twice"));
        }
        *slot = Some(v);
        Ok(())
    }
    let model = |e: ModelError| format!("{key}: {e}");
    match key {
        "team" => once(&mut e.team, key, TeamCode::parse(value).map_err(model)?),
        "player_team" => once(
            &mut e.player_team,
            key,
            TeamCode::parse(value).map_err(model)?,
        ),
        "player" => once(&mut e.player, key, player_ref(key, value)?),
        "player_out" => once(&mut e.player_out, key, player_ref(key, value)?),
        "player_in" => once(&mut e.player_in, key, player_ref(key, value)?),
        "card" => {
            let card = Card::parse(value).ok_or_else(|| format!("{key}: red or yellow"))?;
            once(&mut e.card, key, card)
        }
        "comment" if is_printable_line(value, MAX_COMMENT) => {
            once(&mut e.comment, key, value.to_owned())
        }
        "comment" => Err(model(ModelError::BadComment)),
        "home_players" => once(&mut e.home_players, key, roster(key, value)?),
        "visit_players" => once(&mut e.visit_players, key, roster(key, value)?),
        _ => Err(format!("unknown key {key:?}")),
    }
}

/// `7` (by number) or `21 Silva` (number and name).
fn player_ref(key: &str, value: &str) -> Result<PlayerRef, String> {
    let (number, name) = match value.split_once(' ') {
        Some((n, name)) => (n, Some(name.trim())),
        None => (value, None),
    };
    let bad = |e: ModelError| format!("{key}: {e}");
    let n: u8 = number
        .parse()
        .map_err(|_| bad(ModelError::BadPlayerNumber))?;
    match name {
        None if (1..=99).contains(&n) => Ok(PlayerRef::Number(n)),
        None => Err(bad(ModelError::BadPlayerNumber)),
        Some(name) => Player::new(n, name).map(PlayerRef::Full).map_err(bad),
    }
}

/// `25 Albil, 14 Mercado, ...` (an empty text is an empty roster).
fn roster(key: &str, text: &str) -> Result<Vec<Player>, String> {
    let mut players: Vec<Player> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let p = match player_ref(key, entry)? {
            PlayerRef::Full(p) => p,
            PlayerRef::Number(n) => return Err(format!("{key}: player {n} needs a name")),
        };
        if players.iter().any(|q| q.number == p.number) {
            return Err(format!("{key}: number {} appears twice", p.number));
        }
        players.push(p);
    }
    Ok(players)
}

/// Splits `key=value key="quoted value" ...` into pairs.
fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!("expected key=value, got {key:?}"));
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("{key}: unterminated quote")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\')) => value.push(c),
                        _ => return Err(format!("{key}: only \\\" and \\\\ escapes")),
                    },
                    Some(c) => value.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(format!("{key}: text after the closing quote"));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '"' {
                    return Err(format!("{key}: a quote inside an unquoted value"));
                }
                value.push(c);
            }
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests;
