//! The framing checker: a streaming validator of the stream protocol (SPEC §3) as one
//! subscriber receives it, fed whatever each `read` returned.
//!
//! It checks what fake_client checked, a little more strictly: every frame opens with a header
//! line `YYYY-MM-DD HH:MM:SS: <kind>:\n` naming a known event kind, holds only tab detail lines
//! (`\t<key>: <value>`, a roster `\t<key>:` followed by `\t\t <player>` lines, and in version 2
//! a `\tseq: <n>` line first) and ends with the terminator line `\r\n`; the first frame is a
//! status (except in a session resumed with `SINCE`, which opens with the events after that
//! seq: [`FrameChecker::resumed`]); nothing appears outside a frame except one `ERROR: <reason>\r\n` line, after which
//! the server must hang up; and the connection does not end inside a frame.
//!
//! It keeps no buffer beyond the first [`CAPTURE`] bytes of the current line (enough for any
//! header, key, seq, period and the bench's send timestamp), so a subscriber costs about
//! 150 bytes of checker state however long its frames are. Facts the bench needs are pulled
//! out as frames complete: the kind, the v2 seq, the status's period, and the send time that
//! `fanout` puts in the comment of each event it posts (`t=<ns since the Unix epoch>`).

use matchstream_protocol::frame::Version;
use matchstream_protocol::{EventKind, Period};

/// Bytes of each line kept for inspection.
pub const CAPTURE: usize = 96;

/// Longest line accepted (a comment is at most 1024 bytes, 2048 escaped).
pub const MAX_LINE: usize = 64 * 1024;

/// Prefix of the comment text in which `fanout` sends its POST time (ns since the epoch).
pub const STAMP_PREFIX: &str = "t=";

/// The facts of one complete frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The event kind of the header.
    pub kind: EventKind,
    /// The `seq` detail (version 2 only).
    pub seq: Option<u64>,
    /// The send time carried in a `comment` of `t=<ns>`, if any.
    pub sent_ns: Option<u64>,
    /// The `period` detail (status frames).
    pub period: Option<Period>,
}

impl Frame {
    fn new(kind: EventKind) -> Frame {
        Frame {
            kind,
            seq: None,
            sent_ns: None,
            period: None,
        }
    }
}

/// What the checker finds in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete frame.
    Frame(Frame),
    /// An `ERROR: <reason>` line (the reason, possibly cut to [`CAPTURE`] bytes).
    Error(String),
}

/// How the stream breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Bytes that are not a well-formed frame; the text says what was wrong.
    BadFraming(&'static str),
    /// A line that breaks the format, named: what was wrong and the line's first bytes (the
    /// event stream's checker, [`crate::wire::sse`]).
    BadLine(String),
    /// The connection ended inside a frame or a line.
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames (also before the first).
    Between,
    /// Inside a frame: detail lines seen so far, and whether a roster is open.
    InFrame { details: u16, roster: bool },
    /// After an error line: the server must hang up.
    AfterError,
}

/// Streaming checker of one subscriber's stream.
#[derive(Debug, Clone)]
pub struct FrameChecker {
    version: Version,
    cap: [u8; CAPTURE],
    /// Length of the current (partial) line, all of it.
    len: u32,
    /// Last byte of the current line.
    last: u8,
    state: State,
    frames: u64,
    /// The first frame must be a status (not in a session resumed with `SINCE`).
    status_first: bool,
    cur: Frame,
}

impl FrameChecker {
    /// A checker for a subscriber speaking `version`.
    pub fn new(version: Version) -> FrameChecker {
        FrameChecker {
            version,
            cap: [0; CAPTURE],
            len: 0,
            last: 0,
            state: State::Between,
            frames: 0,
            status_first: true,
            cur: Frame::new(EventKind::Status),
        }
    }

    /// A checker for a version 2 session resumed with `SINCE:<seq>`: the server sends the
    /// stored events after that seq instead of a status (docs/protocol.md), so the first frame
    /// may be of any kind.
    pub fn resumed(version: Version) -> FrameChecker {
        FrameChecker {
            status_first: false,
            ..FrameChecker::new(version)
        }
    }

    /// Frames completed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Checks `data`, the next bytes of the stream, appending what completes to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Item>) -> Result<(), Violation> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.state == State::AfterError {
                return Err(Violation::BadFraming("data after an error line"));
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.push(&rest[..i])?;
                    self.line_done(out)?;
                    rest = &rest[i + 1..];
                }
                None => {
                    self.push(rest)?;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Called when the server closed the connection: fine between frames (or after an error
    /// line), [`Violation::Incomplete`] inside a frame or a line.
    pub fn finish(&self) -> Result<(), Violation> {
        if self.len > 0 || matches!(self.state, State::InFrame { .. }) {
            Err(Violation::Incomplete)
        } else {
            Ok(())
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), Violation> {
        let at = self.len as usize;
        if at < CAPTURE {
            let n = bytes.len().min(CAPTURE - at);
            self.cap[at..at + n].copy_from_slice(&bytes[..n]);
        }
        if let Some(&b) = bytes.last() {
            self.last = b;
        }
        let len = at + bytes.len();
        if len > MAX_LINE {
            return Err(Violation::BadFraming("line too long"));
        }
        self.len = len as u32;
        Ok(())
    }

    fn line_done(&mut self, out: &mut Vec<Item>) -> Result<(), Violation> {
        let full = self.len as usize;
        let cap = self.cap;
        let line = &cap[..full.min(CAPTURE)];
        let cr = full > 0 && self.last == b'\r';
        self.len = 0;
        self.last = 0;
        match self.state {
            State::Between => self.between(line, full, cr, out),
            State::InFrame { details, roster } => self.in_frame(line, full, details, roster, out),
            State::AfterError => Err(Violation::BadFraming("data after an error line")),
        }
    }

    fn between(
        &mut self,
        line: &[u8],
        full: usize,
        cr: bool,
        out: &mut Vec<Item>,
    ) -> Result<(), Violation> {
        if let Some(reason) = line.strip_prefix(b"ERROR: ") {
            if !cr {
                return Err(Violation::BadFraming("an error line must end with \\r\\n"));
            }
            let reason = match reason.strip_suffix(b"\r") {
                Some(r) if full <= CAPTURE => r,
                _ => reason,
            };
            out.push(Item::Error(String::from_utf8_lossy(reason).into_owned()));
            self.state = State::AfterError;
            return Ok(());
        }
        if line == b"\r" {
            return Err(Violation::BadFraming("a terminator outside an event"));
        }
        if line.starts_with(b"\t") {
            return Err(Violation::BadFraming("a detail line outside an event"));
        }
        if full > CAPTURE || cr {
            return Err(Violation::BadFraming("a bad header line"));
        }
        let kind = parse_header(line).ok_or(Violation::BadFraming("a bad header line"))?;
        if self.status_first && self.frames == 0 && kind != EventKind::Status {
            return Err(Violation::BadFraming("the first frame is not a status"));
        }
        self.cur = Frame::new(kind);
        self.state = State::InFrame {
            details: 0,
            roster: false,
        };
        Ok(())
    }

    fn in_frame(
        &mut self,
        line: &[u8],
        full: usize,
        details: u16,
        roster: bool,
        out: &mut Vec<Item>,
    ) -> Result<(), Violation> {
        if line == b"\r" {
            if self.version == Version::V2 && self.cur.seq.is_none() {
                return Err(Violation::BadFraming(
                    "a version 2 frame without a seq line",
                ));
            }
            out.push(Item::Frame(self.cur));
            self.frames += 1;
            self.state = State::Between;
            return Ok(());
        }
        if line.starts_with(b"\t\t ") {
            if !roster {
                return Err(Violation::BadFraming("a roster line outside a roster"));
            }
            self.state = State::InFrame {
                details: details.saturating_add(1),
                roster,
            };
            return Ok(());
        }
        let Some(detail) = line.strip_prefix(b"\t") else {
            return Err(Violation::BadFraming(
                "expected a detail line or the terminator",
            ));
        };
        let colon = detail
            .iter()
            .position(|&b| b == b':')
            .ok_or(Violation::BadFraming("a detail line without a key"))?;
        let key = &detail[..colon];
        if key.is_empty() || !key.iter().all(|&b| b.is_ascii_lowercase() || b == b'_') {
            return Err(Violation::BadFraming("a detail line with a bad key"));
        }
        if self.version == Version::V2 && details == 0 && key != b"seq" {
            return Err(Violation::BadFraming(
                "a version 2 frame must open with its seq line",
            ));
        }
        let after = &detail[colon + 1..];
        let mut roster_open = false;
        if after.is_empty() && full == colon + 2 {
            roster_open = true; // `\t<key>:` then `\t\t <player>` lines
        } else if let Some(value) = after.strip_prefix(b" ") {
            self.detail(key, value, full <= CAPTURE)?;
        } else {
            return Err(Violation::BadFraming("a detail line without \": \""));
        }
        self.state = State::InFrame {
            details: details.saturating_add(1),
            roster: roster_open,
        };
        Ok(())
    }

    /// Pulls the facts the bench needs out of one `key: value` detail.
    fn detail(&mut self, key: &[u8], value: &[u8], whole: bool) -> Result<(), Violation> {
        match key {
            b"seq" => {
                let seq = whole
                    .then(|| parse_u64(value))
                    .flatten()
                    .ok_or(Violation::BadFraming("a bad seq value"))?;
                self.cur.seq = Some(seq);
            }
            b"period" => {
                self.cur.period = std::str::from_utf8(value).ok().and_then(Period::parse);
            }
            b"comment" => {
                let stamp = value
                    .strip_prefix(b"<<\"")
                    .and_then(|v| v.strip_prefix(STAMP_PREFIX.as_bytes()));
                if let Some(v) = stamp {
                    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
                    self.cur.sent_ns = parse_u64(&v[..digits]);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The kind of a header line `YYYY-MM-DD HH:MM:SS: <kind>:` (without its `\n`).
fn parse_header(line: &[u8]) -> Option<EventKind> {
    const SHAPE: &[u8; 21] = b"dddd-dd-dd dd:dd:dd: ";
    if line.len() < SHAPE.len() + 2 {
        return None;
    }
    let shape_ok = SHAPE.iter().zip(line).all(|(&s, &b)| match s {
        b'd' => b.is_ascii_digit(),
        other => b == other,
    });
    let kind = line[SHAPE.len()..].strip_suffix(b":")?;
    if !shape_ok {
        return None;
    }
    EventKind::parse(std::str::from_utf8(kind).ok()?)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
