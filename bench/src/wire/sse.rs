//! The event-stream checker: a streaming validator of `GET /1/match/<id>/stream` (docs/api.md)
//! as one SSE subscriber of `fanout --transport sse` receives it — the HTTP answer's head, then
//! the server-sent events — fed whatever each `read` returned; and the request that opens
//! such a stream.
//!
//! It yields the same [`Item`]s as the stream ports' [`FrameChecker`](crate::wire::framing),
//! so an SSE subscriber is accounted for exactly as a TCP one (seq order, stamps, the status
//! that makes it live, the stop). Each event is a few `<field>: <value>` lines ending in `\n`
//! (a `\r` before it is dropped) and a blank line:
//!
//! - `id: <seq>`, `event: <kind>`, `data: <JSON object>`, in that order, each at most once; the
//!   first event is `event: status` (its `data` the match JSON, whose `period` says whether
//!   the match is live; its `id` the last seq) unless the stream was resumed with
//!   `Last-Event-ID`; every other event needs its `id`. The send stamp `fanout` puts in a
//!   comment (`t=<ns>`) is found in the data as `"comment":"t=<ns>`;
//! - `event: error` (no `id`) with `data: {"error":"<reason>"}` is the server's last words,
//!   after which it must close: an [`Item::Error`], as an `ERROR:` line on a stream port;
//! - a line starting with `:` is a comment (the keep-alive `:`), skipped; a blank line that
//!   ends no event (after a comment) dispatches nothing; `retry:` is allowed and ignored.
//!
//! Stricter than the HTML standard, which ignores unknown fields and lines without a colon and
//! joins several `data` lines: the bench checks what our server sends, so any other line is an
//! [`SseError`] that names it. An answer other than 200 is an [`Item::Error`] (`HTTP 404
//! unknown match`), and the rest of it is ignored.
//!
//! Memory: complete lines are checked where they lie in the read buffer; only a line cut by
//! the end of a read (and the head, until it is whole) is copied into the checker's own
//! buffer, which is let go once it grew past [`KEEP`] bytes (a status's match JSON).

use std::fmt;

use matchstream_http::{parse_response_head, Framing, ParsedHead, ResponseLimits};
use matchstream_protocol::{EventKind, Period};

use crate::wire::framing::{Frame, Item, Violation, MAX_LINE};

/// Limits of the answer's head (its body is the stream, unbounded).
const HEAD_LIMITS: ResponseLimits = ResponseLimits {
    max_head_bytes: 16 * 1024,
    max_body: usize::MAX,
};

/// Bytes of a line that an error shows.
pub const SHOWN: usize = 96;

/// Capacity of the partial-line buffer kept between reads (more is freed after use).
pub const KEEP: usize = 1024;

/// Where an event's data carries the bench's send stamp: the comment `t=<ns> ...` as JSON
/// (see [`crate::publisher::publish::comment`] and [`crate::wire::framing::STAMP_PREFIX`]).
const STAMP_NEEDLE: &[u8] = b"\"comment\":\"t=";

/// How an event stream breaks the format: what is wrong and, for a line, the line (its first
/// [`SHOWN`] bytes, lossily UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseError {
    /// What is wrong.
    pub what: &'static str,
    /// The offending line, if a line is at fault.
    pub line: Option<String>,
}

impl SseError {
    fn line(what: &'static str, line: &[u8]) -> SseError {
        SseError {
            what,
            line: Some(String::from_utf8_lossy(&line[..line.len().min(SHOWN)]).into_owned()),
        }
    }

    fn event(what: &'static str) -> SseError {
        SseError { what, line: None }
    }
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.line {
            Some(line) => write!(f, "sse: {}: {line:?}", self.what),
            None => write!(f, "sse: {}", self.what),
        }
    }
}

impl std::error::Error for SseError {}

impl From<SseError> for Violation {
    fn from(e: SseError) -> Violation {
        Violation::BadLine(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the answer's head.
    Head,
    /// Reading events.
    Events,
    /// After the error event: the server must hang up.
    AfterError,
    /// The answer was not a stream (reported as an error): the rest is ignored.
    Refused,
}

/// The type of the event under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    /// A match event, or the status.
    Match(EventKind),
    /// The server's last words.
    Error,
}

/// The fields of the event under way.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    id: Option<u64>,
    kind: Option<Type>,
    data: bool,
    sent_ns: Option<u64>,
    period: Option<Period>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.id.is_none() && self.kind.is_none() && !self.data
    }
}

/// Streaming checker of one subscriber's event stream.
#[derive(Debug, Clone)]
pub struct SseChecker {
    state: State,
    /// The head until it is whole, then the current line when a read cut it.
    buf: Vec<u8>,
    cur: Pending,
    /// The reason of an error event under way.
    reason: Option<Box<str>>,
    /// Events completed so far.
    events: u64,
    /// The first event must be the status (not in a stream resumed with `Last-Event-ID`).
    status_first: bool,
}

impl Default for SseChecker {
    fn default() -> SseChecker {
        SseChecker::new()
    }
}

impl SseChecker {
    /// A checker for a fresh stream: the head, then the status first.
    pub fn new() -> SseChecker {
        SseChecker {
            state: State::Head,
            buf: Vec::new(),
            cur: Pending::default(),
            reason: None,
            events: 0,
            status_first: true,
        }
    }

    /// A checker for a stream resumed with `Last-Event-ID: <seq>`: the stored events after
    /// that seq come instead of the status, so the first event may be of any kind.
    pub fn resumed() -> SseChecker {
        SseChecker {
            status_first: false,
            ..SseChecker::new()
        }
    }

    /// Events completed so far (the status and the error event included).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Nothing of an event (or of the head) is under way.
    pub fn idle(&self) -> bool {
        self.buf.is_empty() && self.cur.is_empty()
    }

    /// Checks `data`, the next bytes of the answer, appending what completes to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Item>) -> Result<(), SseError> {
        if self.state == State::Head {
            self.buf.extend_from_slice(data);
            let Some(body) = self.head(out)? else {
                return Ok(());
            };
            return self.lines(&body, out);
        }
        self.lines(data, out)
    }

    /// Called when the server closed the connection: fine between events (or after the error
    /// event, or a refused answer), [`Violation::Incomplete`] inside the head, a line or an
    /// event.
    pub fn finish(&self) -> Result<(), Violation> {
        match self.state {
            State::AfterError | State::Refused => Ok(()),
            State::Head | State::Events if self.idle() => Ok(()),
            State::Head | State::Events => Err(Violation::Incomplete),
        }
    }

    /// Parses the head once it is whole: the bytes after it, or `None` until it is (or when
    /// the answer is not a stream, which has been reported).
    fn head(&mut self, out: &mut Vec<Item>) -> Result<Option<Vec<u8>>, SseError> {
        let head = match parse_response_head(&self.buf, &HEAD_LIMITS) {
            Ok(ParsedHead::Partial) => return Ok(None),
            Ok(ParsedHead::Complete(head)) => head,
            Err(_) => {
                let first = self.buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
                return Err(SseError::line("a malformed HTTP answer head", first));
            }
        };
        if head.status != 200 {
            out.push(Item::Error(refusal(
                head.status,
                head.framing,
                &self.buf[head.len..],
            )));
            self.state = State::Refused;
            self.buf = Vec::new();
            return Ok(None);
        }
        if let Some(line) = content_type(&self.buf[..head.len]) {
            if !is_event_stream(line) {
                return Err(SseError::line(
                    "a 200 answer that is not an event stream",
                    line,
                ));
            }
        } else {
            return Err(SseError::event("a 200 answer without a Content-Type"));
        }
        if head.framing != Framing::UntilClose {
            return Err(SseError::event(
                "a 200 answer with a length: an event stream runs until the close",
            ));
        }
        let body = self.buf[head.len..].to_vec();
        self.buf = Vec::new();
        self.state = State::Events;
        Ok(Some(body))
    }

    /// Checks the lines of `data`, carrying a cut line over to the next read.
    fn lines(&mut self, data: &[u8], out: &mut Vec<Item>) -> Result<(), SseError> {
        let mut rest = data;
        while !rest.is_empty() && self.state != State::Refused {
            let Some(i) = rest.iter().position(|&b| b == b'\n') else {
                if self.buf.len() + rest.len() > MAX_LINE {
                    return Err(SseError::line("a line too long", &self.buf));
                }
                self.buf.extend_from_slice(rest);
                break;
            };
            if self.buf.is_empty() {
                self.line(&rest[..i], out)?;
            } else {
                let mut line = std::mem::take(&mut self.buf);
                line.extend_from_slice(&rest[..i]);
                let r = self.line(&line, out);
                if line.capacity() <= KEEP {
                    line.clear();
                    self.buf = line;
                }
                r?;
            }
            rest = &rest[i + 1..];
        }
        Ok(())
    }

    /// Checks one line (without its `\n`).
    fn line(&mut self, line: &[u8], out: &mut Vec<Item>) -> Result<(), SseError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.state == State::AfterError {
            return Err(SseError::line("data after the error event", line));
        }
        if line.is_empty() {
            return self.dispatch(out);
        }
        if line[0] == b':' {
            return Ok(()); // a comment: the keep-alive
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(SseError::line("a line that is no field: no colon", line));
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        match &line[..colon] {
            b"id" => self.id(line, value),
            b"event" => self.event(line, value),
            b"data" => self.data(line, value),
            b"retry" => Ok(()),
            _ => Err(SseError::line("an unknown field", line)),
        }
    }

    fn id(&mut self, line: &[u8], value: &[u8]) -> Result<(), SseError> {
        if self.cur.id.is_some() {
            return Err(SseError::line("a second id line in one event", line));
        }
        if self.cur.kind.is_some() || self.cur.data {
            return Err(SseError::line(
                "an id line after the event or data line",
                line,
            ));
        }
        let seq =
            parse_u64(value).ok_or_else(|| SseError::line("an id that is not a seq", line))?;
        self.cur.id = Some(seq);
        Ok(())
    }

    fn event(&mut self, line: &[u8], value: &[u8]) -> Result<(), SseError> {
        if self.cur.kind.is_some() {
            return Err(SseError::line("a second event line in one event", line));
        }
        if self.cur.data {
            return Err(SseError::line("an event line after the data line", line));
        }
        let kind = if value == b"error" {
            Type::Error
        } else {
            std::str::from_utf8(value)
                .ok()
                .and_then(EventKind::parse)
                .map(Type::Match)
                .ok_or_else(|| SseError::line("an unknown event type", line))?
        };
        self.cur.kind = Some(kind);
        Ok(())
    }

    fn data(&mut self, line: &[u8], json: &[u8]) -> Result<(), SseError> {
        if self.cur.data {
            return Err(SseError::line("a second data line in one event", line));
        }
        let Some(kind) = self.cur.kind else {
            return Err(SseError::line("a data line before the event line", line));
        };
        if json.first() != Some(&b'{') || json.last() != Some(&b'}') {
            return Err(SseError::line(
                "a data line that is not a JSON object",
                line,
            ));
        }
        match kind {
            Type::Match(EventKind::Status) => {
                let period = serde_json::from_slice::<StatusBody>(json)
                    .ok()
                    .and_then(|b| Period::parse(&b.period))
                    .ok_or_else(|| SseError::line("a status without the match's period", line))?;
                self.cur.period = Some(period);
            }
            Type::Match(_) => self.cur.sent_ns = stamp(json),
            Type::Error => {
                let body = serde_json::from_slice::<ErrorBody>(json)
                    .map_err(|_| SseError::line("an error event without its reason", line))?;
                self.reason = Some(body.error.into_boxed_str());
            }
        }
        self.cur.data = true;
        Ok(())
    }

    /// A blank line: the event under way is complete (a blank line after nothing, or after a
    /// comment, dispatches nothing).
    fn dispatch(&mut self, out: &mut Vec<Item>) -> Result<(), SseError> {
        let cur = std::mem::take(&mut self.cur);
        if cur.is_empty() {
            return Ok(());
        }
        let kind = cur
            .kind
            .ok_or(SseError::event("an event without an event line"))?;
        if !cur.data {
            return Err(SseError::event("an event without a data line"));
        }
        let kind = match kind {
            Type::Error => {
                let reason = self.reason.take().unwrap_or_default();
                out.push(Item::Error(reason.into_string()));
                self.events += 1;
                self.state = State::AfterError;
                return Ok(());
            }
            Type::Match(kind) => kind,
        };
        if cur.id.is_none() {
            return Err(SseError::event("a match event without an id line"));
        }
        if self.status_first && self.events == 0 && kind != EventKind::Status {
            return Err(SseError::event("the first event is not the status"));
        }
        out.push(Item::Frame(Frame {
            kind,
            seq: cur.id,
            sent_ns: cur.sent_ns,
            period: cur.period,
        }));
        self.events += 1;
        Ok(())
    }
}

/// The part of the match JSON the checker reads.
#[derive(serde::Deserialize)]
struct StatusBody {
    period: String,
}

/// The error body of the API (`{"error":"<reason>"}`).
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
}

/// The error an answer other than 200 stands for: `HTTP <status>`, with the API's reason when
/// its body is already here.
fn refusal(status: u16, framing: Framing, body: &[u8]) -> String {
    let reason = match framing {
        Framing::Length(n) if body.len() >= n => serde_json::from_slice::<ErrorBody>(&body[..n])
            .ok()
            .map(|b| b.error),
        _ => None,
    };
    match reason {
        Some(r) => format!("HTTP {status} {r}"),
        None => format!("HTTP {status}"),
    }
}

/// The `Content-Type` line of a head, if any.
fn content_type(head: &[u8]) -> Option<&[u8]> {
    const NAME: &[u8] = b"content-type:";
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| l.len() >= NAME.len() && l[..NAME.len()].eq_ignore_ascii_case(NAME))
}

/// A `Content-Type` line says `text/event-stream` (parameters allowed).
fn is_event_stream(line: &[u8]) -> bool {
    const TYPE: &[u8] = b"text/event-stream";
    let value = line["content-type:".len()..].trim_ascii_start();
    value.len() >= TYPE.len()
        && value[..TYPE.len()].eq_ignore_ascii_case(TYPE)
        && matches!(value.get(TYPE.len()), None | Some(b';' | b' '))
}

/// The send stamp in an event's JSON: the digits after `"comment":"t=`.
fn stamp(json: &[u8]) -> Option<u64> {
    let at = json
        .windows(STAMP_NEEDLE.len())
        .position(|w| w == STAMP_NEEDLE)?;
    let after = &json[at + STAMP_NEEDLE.len()..];
    let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
    parse_u64(&after[..digits])
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Appends the request that opens match `match_id`'s event stream: `GET
/// <prefix>/1/match/<id>/stream` with `Host: <host>` and `Accept: text/event-stream`, and
/// `Last-Event-ID: <seq>` to resume after that seq.
pub fn request(
    host: &str,
    prefix: &str,
    match_id: &str,
    last_event_id: Option<u64>,
    out: &mut Vec<u8>,
) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "GET {prefix}/1/match/{match_id}/stream HTTP/1.1\r\nHost: {host}\r\n\
         Accept: text/event-stream\r\n"
    );
    if let Some(seq) = last_event_id {
        let _ = write!(out, "Last-Event-ID: {seq}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
