//! The one command line a subscriber sends after connecting (SPEC §3).
//!
//! ```text
//! VERSION:1:CONNECT:<user_id>:MATCH:<match_id>\r\n
//! VERSION:2:CONNECT:<user_id>:MATCH:<match_id>[:SINCE:<seq>[:INCARNATION:<incarnation>]]\r\n
//! ```
//!
//! A session buffers what it reads and calls [`find_line`] until a whole line is there (a line
//! that cannot fit in [`MAX_COMMAND_LINE`] bytes is an error, so a client cannot make the
//! server buffer without bound), then [`parse_command`] on it. Both work on bytes and never
//! allocate on failure; the match id is returned as given and looked up by the engine.

use std::fmt;

use crate::frame::Version;
use crate::incarnation::Incarnation;
use crate::model::is_valid_user_id;

/// Longest command line accepted, in bytes, including its line end.
pub const MAX_COMMAND_LINE: usize = 1024;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The protocol version the subscriber speaks.
    pub version: Version,
    /// The user id (`[A-Za-z0-9._-]{1,64}`).
    pub user_id: String,
    /// The match id as given (printable ASCII, no `:`); the engine looks it up.
    pub match_id: String,
    /// Version 2 only: resume after this seq instead of getting a fresh status.
    pub since: Option<u64>,
    /// With `since` only: the incarnation that seq belongs to; the engine refuses the resume
    /// when the match's history is another one now.
    pub incarnation: Option<Incarnation>,
}

/// Why a command line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// Not of the expected shape (missing parts, bad match id, bad seq ...).
    Malformed,
    /// Not a `VERSION:<n>:CONNECT:...` command.
    UnknownCommand,
    /// A version number other than 1 or 2.
    UnsupportedVersion,
    /// A user id outside `[A-Za-z0-9._-]{1,64}`.
    BadUserId,
    /// `SINCE` given with `VERSION:1`.
    SinceNeedsV2,
    /// No line end within [`MAX_COMMAND_LINE`] bytes.
    TooLong,
}

impl CommandError {
    /// The short text sent in `ERROR: <reason>\r\n`.
    pub fn reason(self) -> &'static str {
        match self {
            CommandError::Malformed => "malformed command",
            CommandError::UnknownCommand => "unknown command",
            CommandError::UnsupportedVersion => "unsupported version",
            CommandError::BadUserId => "bad user id",
            CommandError::SinceNeedsV2 => "SINCE needs VERSION:2",
            CommandError::TooLong => "line too long",
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for CommandError {}

/// Finds the end of the first line in `buf`: `Ok(Some(n))` where `n` counts the line and its
/// terminator (`"\r\n"` or a bare `"\n"`); `Ok(None)` if there is no terminator yet and
/// `buf.len() < MAX_COMMAND_LINE`; `Err(TooLong)` otherwise.
///
/// ```
/// use matchstream_protocol::command::find_line;
/// assert_eq!(find_line(b"VERSION:1:CONNECT:u:MATCH:m\r\nrest"), Ok(Some(29)));
/// assert_eq!(find_line(b"VERSION:1:CONN"), Ok(None));
/// ```
pub fn find_line(buf: &[u8]) -> Result<Option<usize>, CommandError> {
    let window = &buf[..buf.len().min(MAX_COMMAND_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => Ok(Some(i + 1)),
        None if buf.len() < MAX_COMMAND_LINE => Ok(None),
        None => Err(CommandError::TooLong),
    }
}

/// Parses one line (with or without its terminator): `VERSION:1:CONNECT:<user>:MATCH:<match>`
/// or `VERSION:2:CONNECT:<user>:MATCH:<match>[:SINCE:<seq>[:INCARNATION:<incarnation>]]`.
///
/// ```
/// use matchstream_protocol::command::{parse_command, Command};
/// use matchstream_protocol::frame::Version;
/// use matchstream_protocol::Incarnation;
/// let c = parse_command(
///     b"VERSION:2:CONNECT:ana:MATCH:elp-tig-2011-09-10:SINCE:7:INCARNATION:3f9a0c1d2b4e5f60\r\n",
/// );
/// assert_eq!(c, Ok(Command {
///     version: Version::V2,
///     user_id: "ana".into(),
///     match_id: "elp-tig-2011-09-10".into(),
///     since: Some(7),
///     incarnation: Incarnation::parse(b"3f9a0c1d2b4e5f60").ok(),
/// }));
/// ```
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    let line = strip_line_end(line);
    let Some(rest) = line.strip_prefix(b"VERSION:") else {
        return Err(CommandError::UnknownCommand);
    };
    let mut parts = rest.split(|&b| b == b':');
    let version = match parts.next() {
        Some(b"1") => Version::V1,
        Some(b"2") => Version::V2,
        Some(v) if !v.is_empty() && v.iter().all(u8::is_ascii_digit) => {
            return Err(CommandError::UnsupportedVersion)
        }
        _ => return Err(CommandError::Malformed),
    };
    match parts.next() {
        Some(b"CONNECT") => {}
        Some(_) => return Err(CommandError::UnknownCommand),
        None => return Err(CommandError::Malformed),
    }
    let user = parts.next().ok_or(CommandError::Malformed)?;
    let user_id = std::str::from_utf8(user)
        .ok()
        .filter(|u| is_valid_user_id(u))
        .ok_or(CommandError::BadUserId)?;
    if parts.next() != Some(b"MATCH") {
        return Err(CommandError::Malformed);
    }
    let id = parts.next().ok_or(CommandError::Malformed)?;
    if id.is_empty() || !id.iter().all(u8::is_ascii_graphic) {
        return Err(CommandError::Malformed);
    }
    let (since, incarnation) = match (parts.next(), parts.next()) {
        (None, _) => (None, None),
        (Some(b"SINCE"), Some(seq)) => {
            let seq = parse_seq(seq).ok_or(CommandError::Malformed)?;
            let incarnation = match (parts.next(), parts.next(), parts.next()) {
                (None, _, _) => None,
                (Some(b"INCARNATION"), Some(text), None) => {
                    Some(Incarnation::parse(text).map_err(|_| CommandError::Malformed)?)
                }
                _ => return Err(CommandError::Malformed),
            };
            if version != Version::V2 {
                return Err(CommandError::SinceNeedsV2);
            }
            (Some(seq), incarnation)
        }
        _ => return Err(CommandError::Malformed),
    };
    Ok(Command {
        version,
        user_id: user_id.to_owned(),
        // The id is graphic ASCII, so this conversion is lossless.
        match_id: String::from_utf8_lossy(id).into_owned(),
        since,
        incarnation,
    })
}

/// `line` without its `\r\n` or `\n`.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A decimal seq: digits only, fits in a u64.
fn parse_seq(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(version: Version, user: &str, id: &str, since: Option<u64>) -> Command {
        Command {
            version,
            user_id: user.into(),
            match_id: id.into(),
            since,
            incarnation: None,
        }
    }

    fn resume(seq: u64, incarnation: &str) -> Command {
        Command {
            incarnation: Incarnation::parse(incarnation.as_bytes()).ok(),
            ..cmd(Version::V2, "ana", "m", Some(seq))
        }
    }

    #[test]
    fn parse_table() {
        use CommandError::*;
        use Version::*;
        let long_user = format!("VERSION:1:CONNECT:{}:MATCH:m", "u".repeat(65));
        let max_user = format!("VERSION:1:CONNECT:{}:MATCH:m", "u".repeat(64));
        #[rustfmt::skip]
        let cases: Vec<(&str, &[u8], Result<Command, CommandError>)> = vec![
            ("v1 with crlf", b"VERSION:1:CONNECT:ana:MATCH:elp-tig-2011-09-10\r\n", Ok(cmd(V1, "ana", "elp-tig-2011-09-10", None))),
            ("v1 with bare lf", b"VERSION:1:CONNECT:ana:MATCH:m\n", Ok(cmd(V1, "ana", "m", None))),
            ("v1 without line end", b"VERSION:1:CONNECT:ana:MATCH:m", Ok(cmd(V1, "ana", "m", None))),
            ("v2 without since", b"VERSION:2:CONNECT:ana:MATCH:m\r\n", Ok(cmd(V2, "ana", "m", None))),
            ("v2 with since", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:42\r\n", Ok(cmd(V2, "ana", "m", Some(42)))),
            ("v2 since zero", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:0", Ok(cmd(V2, "ana", "m", Some(0)))),
            ("v2 since max u64", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:18446744073709551615", Ok(cmd(V2, "ana", "m", Some(u64::MAX)))),
            ("user id charset", b"VERSION:1:CONNECT:A.b_c-9:MATCH:m", Ok(cmd(V1, "A.b_c-9", "m", None))),
            ("unknown match ids pass through", b"VERSION:1:CONNECT:ana:MATCH:nope-match", Ok(cmd(V1, "ana", "nope-match", None))),
            ("user id of 64 bytes", max_user.as_bytes(), Ok(cmd(V1, &"u".repeat(64), "m", None))),
            ("v1 with since", b"VERSION:1:CONNECT:ana:MATCH:m:SINCE:3", Err(SinceNeedsV2)),
            ("empty line", b"\r\n", Err(UnknownCommand)),
            ("not a command", b"HELLO\r\n", Err(UnknownCommand)),
            ("lowercase", b"version:1:CONNECT:ana:MATCH:m", Err(UnknownCommand)),
            ("other verb", b"VERSION:1:DISCONNECT:ana:MATCH:m", Err(UnknownCommand)),
            ("version 3", b"VERSION:3:CONNECT:ana:MATCH:m", Err(UnsupportedVersion)),
            ("version 10", b"VERSION:10:CONNECT:ana:MATCH:m", Err(UnsupportedVersion)),
            ("version not a number", b"VERSION:x:CONNECT:ana:MATCH:m", Err(Malformed)),
            ("version empty", b"VERSION::CONNECT:ana:MATCH:m", Err(Malformed)),
            ("version only", b"VERSION:1", Err(Malformed)),
            ("no user", b"VERSION:1:CONNECT", Err(Malformed)),
            ("empty user", b"VERSION:1:CONNECT::MATCH:m", Err(BadUserId)),
            ("user with space", b"VERSION:1:CONNECT:a b:MATCH:m", Err(BadUserId)),
            ("user not UTF-8", b"VERSION:1:CONNECT:\xff:MATCH:m", Err(BadUserId)),
            ("user too long", long_user.as_bytes(), Err(BadUserId)),
            ("no MATCH", b"VERSION:1:CONNECT:ana", Err(Malformed)),
            ("MATCH misspelt", b"VERSION:1:CONNECT:ana:MATC:m", Err(Malformed)),
            ("no match id", b"VERSION:1:CONNECT:ana:MATCH", Err(Malformed)),
            ("empty match id", b"VERSION:1:CONNECT:ana:MATCH:\r\n", Err(Malformed)),
            ("match id with space", b"VERSION:1:CONNECT:ana:MATCH:a b", Err(Malformed)),
            ("match id not ASCII", b"VERSION:1:CONNECT:ana:MATCH:\xc3\xa9", Err(Malformed)),
            ("trailing colon", b"VERSION:1:CONNECT:ana:MATCH:m:", Err(Malformed)),
            ("extra part", b"VERSION:2:CONNECT:ana:MATCH:m:FOO:1", Err(Malformed)),
            ("since without seq", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE", Err(Malformed)),
            ("since empty", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:", Err(Malformed)),
            ("since negative", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:-1", Err(Malformed)),
            // u64's FromStr takes a leading `+`: only the digit check refuses it.
            ("since with a plus sign", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:+1", Err(Malformed)),
            ("since overflow", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:18446744073709551616", Err(Malformed)),
            ("since then more", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:1:2", Err(Malformed)),
            ("stray cr inside", b"VERSION:1:CONNECT:ana:MATCH:m\r\r\n", Err(Malformed)),
            ("since with incarnation", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:7:INCARNATION:3f9a0c1d2b4e5f60\r\n", Ok(resume(7, "3f9a0c1d2b4e5f60"))),
            ("incarnation of leading zeros", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:0:INCARNATION:0000000000000001", Ok(resume(0, "0000000000000001"))),
            ("v1 with incarnation", b"VERSION:1:CONNECT:ana:MATCH:m:SINCE:7:INCARNATION:3f9a0c1d2b4e5f60", Err(SinceNeedsV2)),
            ("incarnation without since", b"VERSION:2:CONNECT:ana:MATCH:m:INCARNATION:3f9a0c1d2b4e5f60", Err(Malformed)),
            ("incarnation before since", b"VERSION:2:CONNECT:ana:MATCH:m:INCARNATION:3f9a0c1d2b4e5f60:SINCE:7", Err(Malformed)),
            ("incarnation without value", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:7:INCARNATION", Err(Malformed)),
            ("incarnation empty", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:7:INCARNATION:", Err(Malformed)),
            ("incarnation uppercase", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:7:INCARNATION:3F9A0C1D2B4E5F60", Err(Malformed)),
            ("incarnation too short", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:7:INCARNATION:3f9a", Err(Malformed)),
            ("incarnation all zeros", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:7:INCARNATION:0000000000000000", Err(Malformed)),
            ("incarnation misspelt", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:7:INCARNATON:3f9a0c1d2b4e5f60", Err(Malformed)),
            ("incarnation then more", b"VERSION:2:CONNECT:ana:MATCH:m:SINCE:7:INCARNATION:3f9a0c1d2b4e5f60:x", Err(Malformed)),
        ];
        for (name, line, want) in cases {
            assert_eq!(parse_command(line), want, "{name}");
        }
    }

    type Found = Result<Option<usize>, CommandError>;

    #[test]
    fn find_line_table() {
        let full = vec![b'a'; MAX_COMMAND_LINE];
        let mut fits = vec![b'a'; MAX_COMMAND_LINE - 1];
        fits.push(b'\n');
        let mut over = vec![b'a'; MAX_COMMAND_LINE];
        over.push(b'\n');
        #[rustfmt::skip]
        let cases: Vec<(&str, &[u8], Found)> = vec![
            ("empty", b"", Ok(None)),
            ("partial", b"VERSION:1", Ok(None)),
            ("crlf", b"ab\r\n", Ok(Some(4))),
            ("bare lf", b"ab\n", Ok(Some(3))),
            ("first of two lines", b"a\nb\n", Ok(Some(2))),
            ("empty line", b"\n", Ok(Some(1))),
            ("cr alone is no end", b"ab\r", Ok(None)),
            ("exactly the limit", &fits, Ok(Some(MAX_COMMAND_LINE))),
            ("limit without end", &full, Err(CommandError::TooLong)),
            ("end past the limit", &over, Err(CommandError::TooLong)),
        ];
        for (name, buf, want) in cases {
            assert_eq!(find_line(buf), want, "{name}");
        }
    }

    #[test]
    fn reasons() {
        use CommandError::*;
        let cases = [
            (Malformed, "malformed command"),
            (UnknownCommand, "unknown command"),
            (UnsupportedVersion, "unsupported version"),
            (BadUserId, "bad user id"),
            (SinceNeedsV2, "SINCE needs VERSION:2"),
            (TooLong, "line too long"),
        ];
        for (e, want) in cases {
            assert_eq!(e.reason(), want);
            assert_eq!(e.to_string(), want);
        }
    }
}
