//! Reading HTTP responses in the bench's non-blocking load loops: a streaming parser of one
//! response at a time that keeps at most a bounded prefix of each body (the request loop of
//! `http`, the subscribers' checkins), and the parser of pipelined responses (fanout's
//! publisher). Heads are read by [`matchstream_http::parse_response_head`]; bodies go by
//! `Content-Length` or until the close. (The blocking client of the control work is
//! [`matchstream_client::HttpClient`].)

use matchstream_http::{parse_response_head, Framing, ParsedHead, ResponseError, ResponseLimits};

/// Largest response head accepted; bodies are not bounded (only a prefix is kept).
const LIMITS: ResponseLimits = ResponseLimits {
    max_head_bytes: 16 * 1024,
    max_body: usize::MAX,
};

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The server will close the connection after it.
    pub close: bool,
    /// The body's first bytes (up to the parser's limit).
    pub body: Vec<u8>,
    /// Bytes of the whole response (head and body).
    pub bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// Body of known length: bytes left.
    Body {
        left: usize,
    },
    /// Body delimited by the connection's close.
    ToClose,
}

/// Incremental parser of one response at a time (no pipelining: one request in flight).
#[derive(Debug, Clone)]
pub struct ResponseParser {
    head: Vec<u8>,
    state: State,
    keep: usize,
    status: u16,
    close: bool,
    body: Vec<u8>,
    bytes: usize,
}

impl ResponseParser {
    /// A parser that keeps at most `keep` bytes of each body.
    pub fn new(keep: usize) -> ResponseParser {
        ResponseParser {
            head: Vec::new(),
            state: State::Head,
            keep,
            status: 0,
            close: false,
            body: Vec::new(),
            bytes: 0,
        }
    }

    /// True when nothing of a response has arrived yet.
    pub fn idle(&self) -> bool {
        self.state == State::Head && self.head.is_empty()
    }

    /// Feeds received bytes: `Ok(Some(response))` once it is complete (bytes past its end,
    /// which a server may not send before the next request, are ignored).
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Response>, ResponseError> {
        let mut data = data;
        self.bytes += data.len();
        if self.state == State::Head {
            self.head.extend_from_slice(data);
            let head = match parse_response_head(&self.head, &LIMITS)? {
                ParsedHead::Partial => return Ok(None),
                ParsedHead::Complete(head) => head,
            };
            let buf = std::mem::take(&mut self.head);
            self.status = head.status;
            self.close = !head.keep_alive;
            self.state = match head.framing {
                Framing::Empty => State::Body { left: 0 },
                Framing::Length(n) => State::Body { left: n },
                Framing::UntilClose => State::ToClose,
            };
            self.take_body(&buf[head.len..]);
            return Ok(self.complete());
        }
        if let State::Body { left } = self.state {
            data = &data[..data.len().min(left)];
        }
        self.take_body(data);
        Ok(self.complete())
    }

    /// The connection closed: the response if it was delimited by the close.
    pub fn eof(&mut self) -> Option<Response> {
        if self.state == State::ToClose {
            self.close = true;
            Some(self.finish())
        } else {
            None
        }
    }

    fn take_body(&mut self, data: &[u8]) {
        let data = match self.state {
            State::Body { left } => {
                let n = data.len().min(left);
                self.state = State::Body { left: left - n };
                &data[..n]
            }
            _ => data,
        };
        let room = self.keep.saturating_sub(self.body.len());
        self.body.extend_from_slice(&data[..data.len().min(room)]);
    }

    fn complete(&mut self) -> Option<Response> {
        (self.state == State::Body { left: 0 }).then(|| self.finish())
    }

    fn finish(&mut self) -> Response {
        let r = Response {
            status: self.status,
            close: self.close,
            body: std::mem::take(&mut self.body),
            bytes: self.bytes,
        };
        *self = ResponseParser::new(self.keep);
        r
    }
}

/// One whole response at the start of `buf`, as a pipelining client reads them: its status,
/// the bytes it used (head and body) and whether the server will close after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pipelined {
    /// Status code.
    pub status: u16,
    /// Bytes of the whole response.
    pub used: usize,
    /// `Connection: close` (or HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// Parses the response at the start of `buf` (responses to pipelined requests follow one
/// another): `Ok(None)` until it is whole. Bodies must have a `Content-Length` (or none by
/// status): a body delimited by the close cannot be told from the next response.
pub fn parse_pipelined(buf: &[u8]) -> Result<Option<Pipelined>, ResponseError> {
    let head = match parse_response_head(buf, &LIMITS)? {
        ParsedHead::Partial => return Ok(None),
        ParsedHead::Complete(head) => head,
    };
    let body = match head.framing {
        Framing::Empty => 0,
        Framing::Length(n) => n,
        // No way to tell where it ends: as unreadable as a malformed head.
        Framing::UntilClose => return Err(ResponseError::Malformed),
    };
    if buf.len() < head.len + body {
        return Ok(None);
    }
    Ok(Some(Pipelined {
        status: head.status,
        used: head.len + body,
        close: !head.keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_in_any_split() {
        let raw = b"HTTP/1.1 201 Created\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n{\"seq\":42}\n";
        for cut in [1, 3, 10, raw.len()] {
            let mut p = ResponseParser::new(4);
            let mut got = None;
            for chunk in raw.chunks(cut) {
                if let Some(r) = p.feed(chunk).expect("valid") {
                    got = Some(r);
                }
            }
            let r = got.expect("complete");
            assert_eq!(
                (r.status, r.close, r.body.as_slice()),
                (201, false, &b"{\"se"[..])
            );
            assert_eq!(r.bytes, raw.len());
            assert!(p.idle());
        }
    }

    #[test]
    fn pipelined_responses_parse_one_after_another() {
        let one = b"HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{\"seq\":42}\n";
        let two = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let stream = [&one[..], &two[..]].concat();
        for cut in 0..stream.len() {
            let got = parse_pipelined(&stream[..cut]).expect("valid so far");
            if cut < one.len() {
                assert_eq!(got, None, "cut {cut}");
            } else {
                let first = got.expect("the first is whole");
                assert_eq!(
                    (first.status, first.used, first.close),
                    (201, one.len(), false)
                );
            }
        }
        let second = parse_pipelined(&stream[one.len()..])
            .expect("valid")
            .expect("whole");
        assert_eq!(
            (second.status, second.used, second.close),
            (404, two.len(), true)
        );
        let empty = parse_pipelined(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1")
            .expect("valid")
            .expect("whole");
        assert_eq!(empty.used, 27);
        assert!(parse_pipelined(b"HTTP/1.1 200 OK\r\n\r\nabc").is_err());
        assert!(parse_pipelined(b"junk\r\n\r\n").is_err());
    }

    #[test]
    fn close_delimited_and_bodiless_responses() {
        let mut p = ResponseParser::new(100);
        assert_eq!(p.feed(b"HTTP/1.0 200 OK\r\n\r\nabc"), Ok(None));
        let r = p.eof().expect("ends at close");
        assert_eq!(
            (r.status, r.close, r.body.as_slice()),
            (200, true, &b"abc"[..])
        );
        let mut p = ResponseParser::new(100);
        let r = p
            .feed(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!((r.status, r.close), (204, true));
        let mut p = ResponseParser::new(100);
        assert!(p.feed(b"garbage\r\n\r\n").is_err());
        let mut p = ResponseParser::new(100);
        assert!(p
            .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .is_err());
    }
}
