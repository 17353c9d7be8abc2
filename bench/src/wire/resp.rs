//! Just enough RESP (the Redis protocol) for the `fanout --baseline` run: commands, a
//! streaming decoder of a subscriber's pushes that yields the same [`Item`]s as the framing
//! checker, and a parser of one-line replies for the publisher.
//!
//! Messages carry the baselines' payload ([`crate::wire::payload`]), so a Redis subscriber is
//! accounted for exactly like a matchstream one (the `subscribe` confirmation stands for the
//! status frame, with seq 1 like a started match).

use matchstream_protocol::{EventKind, Period};

use crate::wire::framing::{Frame, Item, Violation};
use crate::wire::payload::{self, Capture};

/// Bytes kept of each bulk string (enough for `message` and the payload's prefix).
const CAPTURE: usize = 64;
/// Longest type line (`*3`, `$12345`, `:1`, `-ERR ...`) kept.
const LINE: usize = 64;

/// Appends a RESP command (an array of bulk strings).
pub fn command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a type line.
    Line,
    /// Reading a bulk string: bytes left including its `\r\n`.
    Bulk { left: usize },
}

/// Streaming decoder of the pushes one `SUBSCRIBE`d connection receives.
#[derive(Debug, Clone)]
pub struct PushDecoder {
    state: State,
    line: [u8; LINE],
    line_len: usize,
    cap: Capture<CAPTURE>,
    /// Elements left in the current array, and the index of the next.
    left: u32,
    index: u32,
    /// What the first element said: `message` or `subscribe`.
    message: bool,
    subscribe: bool,
}

impl Default for PushDecoder {
    fn default() -> PushDecoder {
        PushDecoder {
            state: State::Line,
            line: [0; LINE],
            line_len: 0,
            cap: Capture::new(),
            left: 0,
            index: 0,
            message: false,
            subscribe: false,
        }
    }
}

impl PushDecoder {
    /// Decodes `data`, appending completed pushes to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Item>) -> Result<(), Violation> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Line => match data[i..].iter().position(|&b| b == b'\n') {
                    Some(n) => {
                        self.push_line(&data[i..i + n])?;
                        i += n + 1;
                        self.line_done(out)?;
                    }
                    None => {
                        self.push_line(&data[i..])?;
                        i = data.len();
                    }
                },
                State::Bulk { left } => {
                    let take = left.min(data.len() - i);
                    // Keep the first bytes of the string itself, not its "\r\n".
                    let data_here = take.min(left.saturating_sub(2));
                    self.cap.keep(&data[i..i + data_here]);
                    i += take;
                    if take == left {
                        self.state = State::Line;
                        self.element_done(out)?;
                    } else {
                        self.state = State::Bulk { left: left - take };
                    }
                }
            }
        }
        Ok(())
    }

    /// True between pushes (closing here loses nothing).
    pub fn idle(&self) -> bool {
        self.left == 0 && self.line_len == 0 && self.state == State::Line
    }

    fn push_line(&mut self, bytes: &[u8]) -> Result<(), Violation> {
        let room = LINE - self.line_len;
        if bytes.len() > room {
            // An error line is kept cut (its head names the error); anything else that long
            // is not RESP.
            let error = self.line[..self.line_len].first().or(bytes.first()) == Some(&b'-');
            if !error {
                return Err(Violation::BadFraming("RESP type line too long"));
            }
            self.line[self.line_len..].copy_from_slice(&bytes[..room]);
            self.line_len = LINE;
            return Ok(());
        }
        self.line[self.line_len..self.line_len + bytes.len()].copy_from_slice(bytes);
        self.line_len += bytes.len();
        Ok(())
    }

    fn line_done(&mut self, out: &mut Vec<Item>) -> Result<(), Violation> {
        let raw = self.line;
        let n = self.line_len;
        self.line_len = 0;
        let line = match raw[..n].strip_suffix(b"\r") {
            Some(l) => l,
            None if raw.first() == Some(&b'-') && n == LINE => &raw[..n],
            None => return Err(Violation::BadFraming("RESP line without \\r\\n")),
        };
        let (&tag, rest) = line
            .split_first()
            .ok_or(Violation::BadFraming("empty RESP line"))?;
        let number = || -> Result<i64, Violation> {
            std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(Violation::BadFraming("bad RESP length"))
        };
        match tag {
            b'*' if self.left == 0 => {
                self.left = u32::try_from(number()?.max(0)).unwrap_or(0);
                self.index = 0;
                self.message = false;
                self.subscribe = false;
            }
            b'$' if self.left > 0 => {
                let len = number()?;
                self.cap.clear();
                if len < 0 {
                    self.element_done(out)?;
                } else {
                    self.state = State::Bulk {
                        left: len as usize + 2,
                    };
                }
            }
            b':' | b'+' if self.left > 0 => {
                self.cap.clear();
                self.element_done(out)?;
            }
            b'-' => out.push(Item::Error(String::from_utf8_lossy(rest).into_owned())),
            _ => return Err(Violation::BadFraming("unexpected RESP type")),
        }
        Ok(())
    }

    fn element_done(&mut self, out: &mut Vec<Item>) -> Result<(), Violation> {
        let text = self.cap.as_slice();
        match self.index {
            0 => {
                self.message = text == b"message";
                self.subscribe = text == b"subscribe";
            }
            2 if self.message => out.push(Item::Frame(payload::parse(text)?)),
            2 if self.subscribe => out.push(Item::Frame(Frame {
                kind: EventKind::Status,
                seq: Some(1),
                sent_ns: None,
                period: Some(Period::First),
            })),
            _ => {}
        }
        self.index += 1;
        self.left = self.left.saturating_sub(1);
        Ok(())
    }
}

/// One reply to a command, as the publisher reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `:n`, `+...` or a bulk/array header: the command worked.
    Ok,
    /// `-ERR ...`.
    Error(String),
}

/// Parses the one-line reply at the start of `buf`: `Some((reply, bytes used))` once a whole
/// line is there. (PUBLISH answers with an integer, so one line is the whole reply.)
pub fn parse_reply(buf: &[u8]) -> Option<(Reply, usize)> {
    let n = buf.iter().position(|&b| b == b'\n')?;
    let line = buf[..n].strip_suffix(b"\r").unwrap_or(&buf[..n]);
    let reply = match line.split_first() {
        Some((b'-', rest)) => Reply::Error(String::from_utf8_lossy(rest).into_owned()),
        _ => Reply::Ok,
    };
    Some((reply, n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::payload::{encode, Kind};

    fn push(kind: &[u8], channel: &[u8], last: Result<&[u8], i64>) -> Vec<u8> {
        let mut out = b"*3\r\n".to_vec();
        for part in [kind, channel] {
            out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        match last {
            Ok(p) => {
                out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
                out.extend_from_slice(p);
                out.extend_from_slice(b"\r\n");
            }
            Err(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        }
        out
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&[b"SUBSCRIBE", b"ch1"], &mut out);
        assert_eq!(out, b"*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\nch1\r\n");
    }

    #[test]
    fn pushes_decode_in_any_split() {
        let mut stream = push(b"subscribe", b"m1", Err(1));
        stream.extend(push(
            b"message",
            b"m1",
            Ok(&encode(2, Kind::Measured, 77, 300)),
        ));
        stream.extend(push(b"message", b"m1", Ok(&encode(3, Kind::Stop, 0, 10))));
        for cut in [1, 5, 64, 1000] {
            let mut d = PushDecoder::default();
            let mut items = Vec::new();
            for chunk in stream.chunks(cut) {
                d.feed(chunk, &mut items).expect("valid");
            }
            assert!(d.idle());
            let frames: Vec<Frame> = items
                .iter()
                .map(|i| match i {
                    Item::Frame(f) => *f,
                    Item::Error(e) => panic!("{e}"),
                })
                .collect();
            assert_eq!(frames.len(), 3, "cut {cut}");
            assert_eq!(frames[0].kind, EventKind::Status);
            assert_eq!(
                (frames[1].kind, frames[1].seq, frames[1].sent_ns),
                (EventKind::Comment, Some(2), Some(77))
            );
            assert_eq!((frames[2].kind, frames[2].seq), (EventKind::Stop, Some(3)));
        }
    }

    #[test]
    fn errors_and_garbage_are_reported() {
        let mut d = PushDecoder::default();
        let mut items = Vec::new();
        d.feed(b"-ERR max clients\r\n", &mut items)
            .expect("error line");
        assert_eq!(items, [Item::Error("ERR max clients".into())]);
        let long = format!("-DENIED {}\r\n", "x".repeat(300));
        let mut d = PushDecoder::default();
        items.clear();
        d.feed(long.as_bytes(), &mut items)
            .expect("long error line");
        assert!(matches!(&items[..], [Item::Error(e)] if e.starts_with("DENIED xx")));
        let mut d = PushDecoder::default();
        assert!(d.feed(b"hello\r\n", &mut items).is_err());
    }

    #[test]
    fn replies_are_one_line() {
        assert_eq!(parse_reply(b":12\r\n"), Some((Reply::Ok, 5)));
        assert_eq!(
            parse_reply(b"-ERR x\r\n"),
            Some((Reply::Error("ERR x".into()), 8))
        );
        assert_eq!(parse_reply(b":1"), None);
    }
}
