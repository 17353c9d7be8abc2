//! Server-sent events (SPEC §8): a match's stream for browsers, on the API port, as
//! `text/event-stream`; and the incremental parser that clients read such a stream with.
//!
//! A subscriber first receives the match's status, `id: <last_seq>\nevent: status\ndata:
//! <match JSON>\n\n` (the body of `GET /1/match/<id>`; the `id` is the seq of the last event the
//! status includes, as the `seq` line of a version 2 status frame, so a browser that reconnects
//! after it resumes from there), then one event per match event, `id: <seq>\nevent:
//! <kind>\ndata: <the event as one entry of GET /1/match/<id>/history>\n\n`. The JSON this
//! crate writes never holds a line break (serde escapes control characters, and the model
//! admits none in names and comments), so every event has exactly one `data` line. A stream's
//! last words are an event `error` whose data is the API's error body
//! (`{"error":"too slow"}`); a comment line `:` keeps an idle stream open through proxies.
//!
//! Rendering appends to a caller's buffer, like [`crate::frame`], so a core renders an event
//! once and shares the bytes with every SSE subscriber.

use std::fmt;

use crate::api::{error_body, match_body, write_event};
use crate::model::{Event, Match};

/// The `Content-Type` of a stream.
pub const CONTENT_TYPE: &str = "text/event-stream";

/// The keep-alive: a comment line and the blank line that ends its block. Clients ignore it.
pub const KEEPALIVE: &[u8] = b":\n\n";

/// The event type of a stream's last words.
pub const ERROR_EVENT: &str = "error";

/// The event type of the match's status.
pub const STATUS_EVENT: &str = "status";

/// Appends the status event of `m`: `id` = `m.last_seq`, data = the match JSON.
///
/// ```
/// use matchstream_protocol::{sse, Date, Incarnation, Match, NewMatch, TeamCode};
/// let m = Match::create(NewMatch {
///     home: TeamCode::parse("elp")?, visit: TeamCode::parse("tig")?,
///     start_date: Date::parse("2011-09-10")?, stadium: None,
///     home_players: vec![], visit_players: vec![],
/// }, 1_315_921_727_000, Incarnation::UNSET);
/// let mut out = Vec::new();
/// sse::render_status(&m, &mut out);
/// assert!(out.starts_with(b"id: 0\nevent: status\ndata: {\"id\":\"elp-tig-2011-09-10\","));
/// assert!(out.ends_with(b"\"last_seq\":0,\"updated\":1315921727000}\n\n"));
/// # Ok::<(), matchstream_protocol::ModelError>(())
/// ```
pub fn render_status(m: &Match, out: &mut Vec<u8>) {
    id_line(m.last_seq, out);
    event_line(STATUS_EVENT, out);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&match_body(m));
    out.extend_from_slice(b"\n\n");
}

/// Appends the event of a stored match event.
///
/// ```
/// use matchstream_protocol::{sse, Event, EventData, EventKind, MatchId};
/// let event = Event {
///     match_id: MatchId::parse("elp-tig-2011-09-10")?,
///     seq: 17,
///     timestamp_ms: 1_315_921_751_000,
///     kind: EventKind::HalftimeStart,
///     data: EventData::default(),
/// };
/// let mut out = Vec::new();
/// sse::render_event(&event, &mut out);
/// assert_eq!(
///     out,
///     b"id: 17\nevent: halftime_start\n\
///       data: {\"seq\":17,\"timestamp\":1315921751000,\"kind\":\"halftime_start\",\"data\":{}}\n\n"
/// );
/// # Ok::<(), matchstream_protocol::ModelError>(())
/// ```
pub fn render_event(e: &Event, out: &mut Vec<u8>) {
    id_line(e.seq, out);
    event_line(e.kind.as_str(), out);
    out.extend_from_slice(b"data: ");
    write_event(e, out);
    out.extend_from_slice(b"\n\n");
}

/// Appends a stream's last words, the SSE twin of [`crate::frame::render_error`]: an event
/// `error` whose data is `{"error":"<reason>"}`. It carries no `id`, so a browser that
/// reconnects resumes after the last match event it received.
///
/// ```
/// let mut out = Vec::new();
/// matchstream_protocol::sse::render_error("too slow", &mut out);
/// assert_eq!(out, b"event: error\ndata: {\"error\":\"too slow\"}\n\n");
/// ```
pub fn render_error(reason: &str, out: &mut Vec<u8>) {
    event_line(ERROR_EVENT, out);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&error_body(reason));
    out.extend_from_slice(b"\n\n");
}

fn id_line(seq: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.push(b'\n');
}

fn event_line(kind: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
}

/// One block of a stream, up to and including the blank line that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A block with data: an event to dispatch.
    Event(SseEvent),
    /// A block that dispatches nothing: comments (the keep-alive) or fields without data.
    Idle,
}

/// An event as a browser's `EventSource` dispatches it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The block's `id` field, if it had one (the browser's `lastEventId` from then on).
    pub id: Option<String>,
    /// The event type: the `event` field, `message` without one.
    pub event: String,
    /// The `data` lines joined by `\n`.
    pub data: String,
}

/// Why bytes are not a stream this parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    /// A block is not UTF-8.
    NotUtf8,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::NotUtf8 => f.write_str("an event stream block is not UTF-8"),
        }
    }
}

impl std::error::Error for SseError {}

/// Parses the block at the start of `buf`: the block and the bytes it takes, or `None` until
/// its blank line has arrived. Follows the HTML standard's interpretation of a stream for
/// lines ending in `\n` or `\r\n` (a bare `\r` does not end a line here): `:` starts a
/// comment, `field: value` loses one space after the colon, a line without a colon is a field
/// with an empty value, unknown fields (`retry` among them) are ignored, an `id` holding NUL
/// is ignored. Bounding how much a caller buffers while waiting is the caller's job.
///
/// ```
/// use matchstream_protocol::sse::{parse_block, Block, SseEvent};
/// let buf = b":\n\nid: 2\nevent: goal\ndata: {}\n\nid: 3";
/// assert_eq!(parse_block(buf), Ok(Some((Block::Idle, 3))));
/// let event = SseEvent { id: Some("2".into()), event: "goal".into(), data: "{}".into() };
/// assert_eq!(parse_block(&buf[3..]), Ok(Some((Block::Event(event), 28))));
/// assert_eq!(parse_block(&buf[31..]), Ok(None));
/// ```
pub fn parse_block(buf: &[u8]) -> Result<Option<(Block, usize)>, SseError> {
    let mut id = None;
    let mut event = None;
    let mut data: Option<String> = None;
    let mut pos = 0;
    loop {
        let Some(nl) = buf[pos..].iter().position(|b| *b == b'\n') else {
            return Ok(None);
        };
        let end = pos + nl;
        let line = &buf[pos..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos = end + 1;
        if line.is_empty() {
            let block = match data {
                Some(data) => Block::Event(SseEvent {
                    id,
                    event: event
                        .filter(|e: &String| !e.is_empty())
                        .unwrap_or_else(|| "message".to_owned()),
                    data,
                }),
                None => Block::Idle,
            };
            return Ok(Some((block, pos)));
        }
        if line.starts_with(b":") {
            continue;
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => id = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
