//! Rendering of status and event frames, byte for byte as SPEC §3 describes them.
//!
//! A frame is a header line `<YYYY-MM-DD HH:MM:SS>: <kind>:\n`, in version 2 a `\tseq: <n>\n`
//! line, detail lines `\t<key>: <value>\n` in a fixed key order, and the terminator line `\r\n`.
//! Version 1 matches the original Erlang server: teams and text render as Erlang binaries
//! (`<<"tig">>`, with `"` and `\` escaped by a backslash), atoms and numbers bare, a player as
//! `<name> (<number>) ` (the trailing space is the original's) and a roster as one
//! `\t\t <name> (<number>) \n` line per player. Player names render as they are: the model
//! already keeps control characters out of them, so they cannot break the framing.
//!
//! Rendering appends to a caller's buffer and never allocates on its own, so a core renders an
//! event once and shares the bytes with every subscriber of the same version.

use crate::model::{Event, EventKind, Match, Player, TeamCode};

/// Stream protocol version, chosen by the subscriber's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The original's protocol.
    V1,
    /// Version 1 plus a `seq` detail line in every frame and `SINCE` resumption.
    V2,
}

impl Version {
    /// Both versions.
    pub const ALL: [Version; 2] = [Version::V1, Version::V2];

    /// The version number as it appears in the command line (1 or 2).
    pub fn number(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }
}

/// The line that ends every frame.
pub const TERMINATOR: &[u8] = b"\r\n";

/// Appends the frame of a stored event.
///
/// ```
/// use matchstream_protocol::frame::{render_event, Version};
/// use matchstream_protocol::{Event, EventData, EventKind, MatchId};
/// let event = Event {
///     match_id: MatchId::parse("elp-tig-2011-09-10")?,
///     seq: 9,
///     timestamp_ms: 1_315_921_731_000,
///     kind: EventKind::HalftimeStart,
///     data: EventData::default(),
/// };
/// let mut out = Vec::new();
/// render_event(&event, Version::V2, &mut out);
/// assert_eq!(out, b"2011-09-13 13:48:51: halftime_start:\n\tseq: 9\n\r\n");
/// # Ok::<(), matchstream_protocol::ModelError>(())
/// ```
pub fn render_event(event: &Event, version: Version, out: &mut Vec<u8>) {
    header(event.timestamp_ms, event.kind, event.seq, version, out);
    let d = &event.data;
    if let Some(r) = &d.home_players {
        roster(b"home_players", r, out);
    }
    if let Some(r) = &d.visit_players {
        roster(b"visit_players", r, out);
    }
    if let Some(p) = &d.player {
        player_line(b"player", p, out);
    }
    if let Some(p) = &d.player_out {
        player_line(b"player_out", p, out);
    }
    if let Some(c) = d.card {
        detail(b"card", out);
        out.extend_from_slice(c.as_str().as_bytes());
        out.push(b'\n');
    }
    if let Some(t) = &d.team {
        team_line(b"team", t, out);
    }
    if let Some(t) = &d.player_team {
        team_line(b"player_team", t, out);
    }
    if let Some(p) = &d.player_in {
        player_line(b"player_in", p, out);
    }
    if let Some(c) = &d.comment {
        detail(b"comment", out);
        binary(c, out);
        out.push(b'\n');
    }
    out.extend_from_slice(TERMINATOR);
}

/// Appends the status frame of `m`: header timestamp = `m.updated_ms`, v2 `seq` =
/// `m.last_seq` and then (v2 only) `\tincarnation: <16 hex digits>\n` (none for an unset
/// incarnation, which no served match has); details home, home_players, home_score, visit,
/// visit_players, visit_score, period. Version 1 is the original's frame, byte for byte.
pub fn render_status(m: &Match, version: Version, out: &mut Vec<u8>) {
    header(m.updated_ms, EventKind::Status, m.last_seq, version, out);
    if version == Version::V2 && m.incarnation.is_set() {
        detail(b"incarnation", out);
        m.incarnation.write_hex(out);
        out.push(b'\n');
    }
    team_line(b"home", &m.home, out);
    roster(b"home_players", &m.home_players, out);
    number_line(b"home_score", u64::from(m.home_score), out);
    team_line(b"visit", &m.visit, out);
    roster(b"visit_players", &m.visit_players, out);
    number_line(b"visit_score", u64::from(m.visit_score), out);
    detail(b"period", out);
    out.extend_from_slice(m.period.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(TERMINATOR);
}

/// Appends the error line `ERROR: <reason>\r\n` a subscriber gets before the server hangs up.
///
/// ```
/// let mut out = Vec::new();
/// matchstream_protocol::frame::render_error("unknown match", &mut out);
/// assert_eq!(out, b"ERROR: unknown match\r\n");
/// ```
pub fn render_error(reason: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"ERROR: ");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `YYYY-MM-DD HH:MM:SS` (UTC) for `ms` milliseconds since the Unix epoch.
///
/// ```
/// let mut out = Vec::new();
/// matchstream_protocol::frame::format_timestamp(1_315_921_731_000, &mut out);
/// assert_eq!(out, b"2011-09-13 13:48:51");
/// ```
pub fn format_timestamp(ms: u64, out: &mut Vec<u8>) {
    let secs = ms / 1000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    if year < 10_000 {
        digits(year, 4, out);
    } else {
        decimal(year, out);
    }
    out.push(b'-');
    digits(month, 2, out);
    out.push(b'-');
    digits(day, 2, out);
    out.push(b' ');
    digits(rem / 3600, 2, out);
    out.push(b':');
    digits(rem / 60 % 60, 2, out);
    out.push(b':');
    digits(rem % 60, 2, out);
}

/// Year, month (1..=12) and day (1..=31) of the `days`th day after 1970-01-01: Howard
/// Hinnant's `civil_from_days`, for non-negative days only.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn header(ms: u64, kind: EventKind, seq: u64, version: Version, out: &mut Vec<u8>) {
    format_timestamp(ms, out);
    out.extend_from_slice(b": ");
    out.extend_from_slice(kind.as_str().as_bytes());
    out.extend_from_slice(b":\n");
    if version == Version::V2 {
        number_line(b"seq", seq, out);
    }
}

/// Appends `\t<key>: `.
fn detail(key: &[u8], out: &mut Vec<u8>) {
    out.push(b'\t');
    out.extend_from_slice(key);
    out.extend_from_slice(b": ");
}

fn number_line(key: &[u8], n: u64, out: &mut Vec<u8>) {
    detail(key, out);
    decimal(n, out);
    out.push(b'\n');
}

fn team_line(key: &[u8], team: &TeamCode, out: &mut Vec<u8>) {
    detail(key, out);
    binary(team.as_str(), out);
    out.push(b'\n');
}

fn player_line(key: &[u8], p: &Player, out: &mut Vec<u8>) {
    detail(key, out);
    player(p, out);
    out.push(b'\n');
}

fn roster(key: &[u8], players: &[Player], out: &mut Vec<u8>) {
    out.push(b'\t');
    out.extend_from_slice(key);
    out.extend_from_slice(b":\n");
    for p in players {
        out.extend_from_slice(b"\t\t ");
        player(p, out);
        out.push(b'\n');
    }
}

/// Appends `<name> (<number>) `.
fn player(p: &Player, out: &mut Vec<u8>) {
    out.extend_from_slice(p.name.as_bytes());
    out.extend_from_slice(b" (");
    decimal(u64::from(p.number), out);
    out.extend_from_slice(b") ");
}

/// Appends `text` as an Erlang binary: `<<"text">>`, with `"` and `\` escaped.
fn binary(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<<\"");
    for &b in text.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.extend_from_slice(b"\">>");
}

/// Appends `n` in decimal.
fn decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn digits(n: u64, width: u32, out: &mut Vec<u8>) {
    for k in (0..width).rev() {
        out.push(b'0' + (n / 10u64.pow(k) % 10) as u8);
    }
}

#[cfg(test)]
mod tests;
