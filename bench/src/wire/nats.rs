//! Just enough of the NATS client protocol (core pub/sub over plain TCP) for the `fanout
//! --baseline nats://..` run, on raw sockets like [`crate::wire::resp`]:
//!
//! - a subscriber sends `CONNECT {"verbose":false,..}`, `SUB <subject> 1` and `PING`; the
//!   server's `PONG` proves the subscription is in place and stands for the status frame
//!   (seq 1, like a started match); each `MSG <subject> <sid> [reply-to] <#bytes>` carries a
//!   baseline payload (`<seq> <kind> <t_ns> <padding>`, see [`crate::wire::payload`]); a
//!   server `PING` is answered with `PONG`; `-ERR '<reason>'` is an error line;
//! - the publisher sends `CONNECT {"verbose":true,..}` and `PUB <subject> <#bytes>`: in verbose
//!   mode the server answers every command with `+OK` (or `-ERR`), one reply per request in
//!   order, like Redis's integer reply to PUBLISH and matchstream's 201.
//!
//! [`MsgDecoder`] keeps only the head of the current control line and of the current payload,
//! so a NATS subscriber costs the bench no more than a Redis one.

use anyhow::{bail, Context};
use matchstream_protocol::{EventKind, Period};

use crate::wire::framing::{Frame, Item, Violation};
use crate::wire::payload::{self, Capture};

/// Bytes kept of a control line (`MSG <subject> <sid> <#bytes>` fits; `INFO {..}` is skipped).
const LINE: usize = 96;
/// Bytes kept of a payload (its `<seq> <kind> <t_ns> ` prefix).
const CAPTURE: usize = 48;
/// Longest control line accepted (an `INFO` may list cluster URLs).
const MAX_LINE: usize = 64 * 1024;

/// Parses `nats://host[:port]` (port 4222 by default; no credentials).
pub fn parse_url(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    let rest = url
        .strip_prefix("nats://")
        .with_context(|| format!("{url}: expected nats://host:port"))?;
    let rest = rest.split('/').next().unwrap_or(rest);
    if rest.contains('@') {
        bail!("{url}: the baseline does not authenticate");
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().with_context(|| format!("{url}: bad port"))?),
        None => (rest, 4222),
    };
    crate::net::resolve(host, port).with_context(|| format!("resolving {url}"))
}

/// Appends `CONNECT {..}`: `verbose` makes the server acknowledge every command with `+OK`.
pub fn connect(verbose: bool, name: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(
        format!(
            "CONNECT {{\"verbose\":{verbose},\"pedantic\":false,\"name\":\"{name}\",\
             \"lang\":\"rust\",\"version\":\"{}\",\"protocol\":0}}\r\n",
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
    );
}

/// Appends a subscriber's opening: CONNECT (quiet), `SUB <subject> 1`, `PING`.
pub fn subscribe(subject: &str, out: &mut Vec<u8>) {
    connect(false, "matchstream-bench-sub", out);
    out.extend_from_slice(format!("SUB {subject} 1\r\nPING\r\n").as_bytes());
}

/// Appends `PUB <subject> <#bytes>\r\n<payload>\r\n`.
pub fn publish(subject: &str, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("PUB {subject} {}\r\n", payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a control line.
    Line,
    /// Reading a payload: bytes left including its `\r\n`.
    Payload { left: u32 },
}

/// Streaming decoder of what one subscriber connection receives.
#[derive(Debug, Clone)]
pub struct MsgDecoder {
    state: State,
    line: [u8; LINE],
    /// Length of the current control line, all of it.
    line_len: u32,
    cap: Capture<CAPTURE>,
    /// The subscription is confirmed (first PONG seen).
    subscribed: bool,
    /// Server PINGs not answered yet.
    pings: u16,
}

impl Default for MsgDecoder {
    fn default() -> MsgDecoder {
        MsgDecoder {
            state: State::Line,
            line: [0; LINE],
            line_len: 0,
            cap: Capture::new(),
            subscribed: false,
            pings: 0,
        }
    }
}

impl MsgDecoder {
    /// Decodes `data`, appending completed items to `out`.
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
                State::Payload { left } => {
                    let take = (left as usize).min(data.len() - i);
                    let body_here = take.min((left as usize).saturating_sub(2));
                    self.cap.keep(&data[i..i + body_here]);
                    // The payload's own "\r\n": the bytes `left` 2 and 1 from its end.
                    for (j, &b) in data[i + body_here..i + take].iter().enumerate() {
                        let from_end = left as usize - body_here - j;
                        let want = if from_end == 2 { b'\r' } else { b'\n' };
                        if b != want {
                            return Err(Violation::BadFraming("a NATS payload longer than said"));
                        }
                    }
                    i += take;
                    if take == left as usize {
                        self.state = State::Line;
                        out.push(Item::Frame(payload::parse(self.cap.as_slice())?));
                    } else {
                        self.state = State::Payload {
                            left: left - take as u32,
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// Server PINGs received since the last call (each needs a `PONG`).
    pub fn take_pings(&mut self) -> u16 {
        std::mem::take(&mut self.pings)
    }

    /// True between messages (closing here loses nothing).
    pub fn idle(&self) -> bool {
        self.state == State::Line && self.line_len == 0
    }

    fn push_line(&mut self, bytes: &[u8]) -> Result<(), Violation> {
        let at = self.line_len as usize;
        if at < LINE {
            let n = bytes.len().min(LINE - at);
            self.line[at..at + n].copy_from_slice(&bytes[..n]);
        }
        let len = at + bytes.len();
        if len > MAX_LINE {
            return Err(Violation::BadFraming("NATS control line too long"));
        }
        self.line_len = len as u32;
        Ok(())
    }

    fn line_done(&mut self, out: &mut Vec<Item>) -> Result<(), Violation> {
        let full = self.line_len as usize;
        self.line_len = 0;
        let kept = self.line;
        let line = &kept[..full.min(LINE)];
        let whole = full <= LINE;
        let line = match line.strip_suffix(b"\r") {
            Some(l) => l,
            None if !whole => line,
            None => return Err(Violation::BadFraming("NATS line without \\r\\n")),
        };
        let (verb, rest) = match line.iter().position(|&b| b == b' ') {
            Some(n) => (&line[..n], &line[n + 1..]),
            None => (line, &b""[..]),
        };
        match verb {
            b"MSG" => {
                if !whole {
                    return Err(Violation::BadFraming("NATS MSG line too long"));
                }
                let args: Vec<&[u8]> = rest
                    .split(|&b| b == b' ')
                    .filter(|a| !a.is_empty())
                    .collect();
                if !(3..=4).contains(&args.len()) {
                    return Err(Violation::BadFraming("a NATS MSG line of the wrong shape"));
                }
                let bytes: u32 = std::str::from_utf8(args[args.len() - 1])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n < 64 << 20)
                    .ok_or(Violation::BadFraming("a bad NATS payload length"))?;
                self.cap.clear();
                self.state = State::Payload { left: bytes + 2 };
            }
            b"PONG" if !self.subscribed => {
                self.subscribed = true;
                out.push(Item::Frame(Frame {
                    kind: EventKind::Status,
                    seq: Some(1),
                    sent_ns: None,
                    period: Some(Period::First),
                }));
            }
            b"PING" => self.pings = self.pings.saturating_add(1),
            b"PONG" | b"INFO" | b"+OK" => {}
            b"-ERR" => out.push(Item::Error(error_reason(rest))),
            _ => return Err(Violation::BadFraming("an unknown NATS operation")),
        }
        Ok(())
    }
}

fn error_reason(rest: &[u8]) -> String {
    let text = String::from_utf8_lossy(rest);
    text.trim().trim_matches('\'').to_owned()
}

/// One server line as the publisher reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: the command before it was accepted.
    Ok,
    /// `-ERR '<reason>'`: refused (most errors also close the connection).
    Err(String),
    /// `PING`: answer `PONG`.
    Ping,
    /// `PONG`, `INFO {..}`: nothing to match.
    Other,
}

/// Parses the line at the start of `buf`: `Some((reply, bytes used))` once it is whole,
/// `Err` for something that is not NATS.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, &'static str> {
    let Some(n) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_LINE {
            Err("NATS line too long")
        } else {
            Ok(None)
        };
    };
    let line = buf[..n]
        .strip_suffix(b"\r")
        .ok_or("NATS line without \\r\\n")?;
    let reply = if line == b"+OK" {
        Reply::Ok
    } else if let Some(rest) = line.strip_prefix(b"-ERR") {
        Reply::Err(error_reason(rest))
    } else if line == b"PING" {
        Reply::Ping
    } else if line == b"PONG" || line.starts_with(b"INFO ") {
        Reply::Other
    } else {
        return Err("an unexpected NATS line");
    };
    Ok(Some((reply, n + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::payload::{encode, Kind};

    const INFO: &[u8] = b"INFO {\"server_id\":\"NAB\",\"version\":\"2.9.10\",\"proto\":1,\"max_payload\":1048576,\"headers\":true}\r\n";

    fn msg(subject: &str, reply: Option<&str>, body: &[u8]) -> Vec<u8> {
        let mut out = match reply {
            Some(r) => format!("MSG {subject} 1 {r} {}\r\n", body.len()),
            None => format!("MSG {subject} 1 {}\r\n", body.len()),
        }
        .into_bytes();
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
        out
    }

    fn frames(items: &[Item]) -> Vec<Frame> {
        items
            .iter()
            .map(|i| match i {
                Item::Frame(f) => *f,
                Item::Error(e) => panic!("{e}"),
            })
            .collect()
    }

    #[test]
    fn commands_are_byte_exact() {
        let mut out = Vec::new();
        publish("msb.1.m0", b"2 c 5 ", &mut out);
        assert_eq!(out, b"PUB msb.1.m0 6\r\n2 c 5 \r\n");
        out.clear();
        subscribe("msb.1.m0", &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("CONNECT {\"verbose\":false,\"pedantic\":false,"));
        assert!(text.ends_with("}\r\nSUB msb.1.m0 1\r\nPING\r\n"), "{text}");
        let mut out = Vec::new();
        connect(true, "p", &mut out);
        assert!(out.starts_with(b"CONNECT {\"verbose\":true,"));
    }

    #[test]
    fn a_session_decodes_in_any_split() {
        let mut stream = INFO.to_vec();
        stream.extend_from_slice(b"PONG\r\n");
        stream.extend(msg("msb.1.m0", None, &encode(2, Kind::Measured, 77, 300)));
        stream.extend_from_slice(b"PING\r\n");
        stream.extend(msg(
            "msb.1.m0",
            Some("_INBOX.x"),
            &encode(3, Kind::Warmup, 9, 0),
        ));
        stream.extend_from_slice(b"+OK\r\nPONG\r\n");
        stream.extend(msg("msb.1.m0", None, &encode(4, Kind::Stop, 0, 10)));
        for cut in [1, 2, 7, 64, 100_000] {
            let mut d = MsgDecoder::default();
            let mut items = Vec::new();
            for chunk in stream.chunks(cut) {
                d.feed(chunk, &mut items).expect("valid");
            }
            assert!(d.idle(), "cut {cut}");
            assert_eq!(d.take_pings(), 1);
            assert_eq!(d.take_pings(), 0);
            let f = frames(&items);
            let got: Vec<(EventKind, Option<u64>, Option<u64>)> =
                f.iter().map(|f| (f.kind, f.seq, f.sent_ns)).collect();
            assert_eq!(
                got,
                [
                    (EventKind::Status, Some(1), None), // the first PONG only
                    (EventKind::Comment, Some(2), Some(77)),
                    (EventKind::Comment, Some(3), None),
                    (EventKind::Stop, Some(4), None),
                ],
                "cut {cut}"
            );
        }
    }

    #[test]
    fn a_partial_message_is_not_idle() {
        let m = msg("s", None, &encode(2, Kind::Measured, 1, 20));
        let mut d = MsgDecoder::default();
        let mut items = Vec::new();
        d.feed(&m[..m.len() - 1], &mut items).expect("valid");
        assert!(items.is_empty() && !d.idle());
        d.feed(&m[m.len() - 1..], &mut items).expect("valid");
        assert_eq!(items.len(), 1);
        assert!(d.idle());
    }

    #[test]
    fn errors_and_garbage_are_reported() {
        let mut d = MsgDecoder::default();
        let mut items = Vec::new();
        d.feed(b"-ERR 'Slow Consumer'\r\n", &mut items)
            .expect("an error line");
        assert_eq!(items, [Item::Error("Slow Consumer".into())]);
        let bad: [&[u8]; 5] = [
            b"HELLO\r\n",
            b"MSG s 1\r\n",
            b"MSG s 1 x\r\n",
            b"PONG\n",
            b"MSG s 1 6\r\n2 c 5 xx\r\n",
        ];
        for b in bad {
            let mut d = MsgDecoder::default();
            assert!(
                d.feed(b, &mut Vec::new()).is_err(),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        let long = format!("MSG {} 1 3\r\n", "s".repeat(200));
        assert!(MsgDecoder::default()
            .feed(long.as_bytes(), &mut Vec::new())
            .is_err());
        let mut big_info = b"INFO ".to_vec();
        big_info.extend(std::iter::repeat_n(b'x', 5000));
        big_info.extend_from_slice(b"\r\nPONG\r\n");
        let mut items = Vec::new();
        MsgDecoder::default()
            .feed(&big_info, &mut items)
            .expect("a long INFO is skipped");
        assert_eq!(frames(&items)[0].kind, EventKind::Status);
    }

    #[test]
    fn publisher_replies_are_lines() {
        assert_eq!(parse_reply(b"+OK\r\n"), Ok(Some((Reply::Ok, 5))));
        assert_eq!(parse_reply(b"+OK\r"), Ok(None));
        assert_eq!(
            parse_reply(b"-ERR 'Maximum Payload Violation'\r\n+OK\r\n"),
            Ok(Some((Reply::Err("Maximum Payload Violation".into()), 34)))
        );
        assert_eq!(parse_reply(b"PING\r\n"), Ok(Some((Reply::Ping, 6))));
        assert_eq!(
            parse_reply(INFO).map(|r| r.map(|x| x.0)),
            Ok(Some(Reply::Other))
        );
        assert!(parse_reply(b"what\r\n").is_err());
        assert!(parse_reply(b"+OK\n").is_err());
    }

    #[test]
    fn nats_urls_parse() {
        assert_eq!(
            parse_url("nats://127.0.0.1:4333").expect("url").port(),
            4333
        );
        assert_eq!(parse_url("nats://127.0.0.1").expect("url").port(), 4222);
        assert!(parse_url("redis://127.0.0.1").is_err());
        assert!(parse_url("nats://u:p@127.0.0.1").is_err());
    }
}
