//! Why a value of the match model was refused: one error type for every parser of ids, team
//! codes, dates, players, texts and incarnations ([`crate::model`], [`crate::incarnation`]).

use std::fmt;

/// Why an id, team code, date, player or text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelError {
    /// A team code outside `[a-z0-9_]{1,32}`.
    BadTeam,
    /// A date that is not a real `YYYY-MM-DD` day.
    BadDate,
    /// A match id not of the form `<home>-<visit>-<YYYY>-<MM>-<DD>`.
    BadMatchId,
    /// A player number outside 1..=99.
    BadPlayerNumber,
    /// A player name that is empty, too long or not printable.
    BadPlayerName,
    /// A comment that is empty, too long, multi-line or not printable.
    BadComment,
    /// A user id outside `[A-Za-z0-9._-]{1,64}`.
    BadUserId,
    /// A stadium name that is too long or not printable.
    BadStadium,
    /// An incarnation that is not 16 lowercase hex digits (or is all zeros).
    BadIncarnation,
}

impl ModelError {
    /// A short human reason, used in API errors.
    pub fn reason(self) -> &'static str {
        match self {
            ModelError::BadTeam => "team codes are 1 to 32 characters of [a-z0-9_]",
            ModelError::BadDate => "dates are YYYY-MM-DD",
            ModelError::BadMatchId => "match ids are <home>-<visit>-<YYYY>-<MM>-<DD>",
            ModelError::BadPlayerNumber => "player numbers are 1 to 99",
            ModelError::BadPlayerName => "player names are 1 to 64 bytes of printable text",
            ModelError::BadComment => "comments are one line of 1 to 1024 bytes of printable text",
            ModelError::BadUserId => "user ids are 1 to 64 characters of [A-Za-z0-9._-]",
            ModelError::BadStadium => "stadium names are 1 to 128 bytes of printable text",
            ModelError::BadIncarnation => "incarnations are 16 lowercase hex digits, not all 0",
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ModelError {}
