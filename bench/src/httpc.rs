//! The client side of HTTP/1.1, as small as the bench needs: `http://host:port` URLs,
//! request writing, and an incremental response parser (httparse for the head, bodies by
//! `Content-Length` or until close) that keeps at most a bounded prefix of each body.

use std::net::SocketAddr;

use anyhow::{bail, Context};

/// Largest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;

/// A parsed `http://host[:port][/prefix]` URL (no TLS: the API is plain HTTP).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Url {
    /// Host as written (for the `Host` header).
    pub host: String,
    /// Port (80 when not given).
    pub port: u16,
    /// The resolved address.
    pub addr: SocketAddr,
    /// Path prefix without a trailing `/` (usually empty).
    pub prefix: String,
}

impl Url {
    /// Parses and resolves `http://host:port[/prefix]`; a bare `host:port` is accepted too.
    pub fn parse(url: &str) -> anyhow::Result<Url> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => bail!("{url}: only http:// is supported, not {scheme}://"),
            None => url,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .with_context(|| format!("{url}: bad port {p:?}"))?,
            ),
            _ => (authority, 80),
        };
        if host.is_empty() {
            bail!("{url}: no host");
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addr = crate::net::resolve(bare, port).with_context(|| format!("resolving {url}"))?;
        Ok(Url {
            host: if port == 80 {
                host.to_owned()
            } else {
                format!("{host}:{port}")
            },
            port,
            addr,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> &str {
        &self.host
    }
}

/// Appends a request. `body` is sent with `Content-Type: application/json`; `token` as a
/// bearer `Authorization`; `keep_alive = false` adds `Connection: close`.
pub fn write_request(
    method: &str,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    keep_alive: bool,
    out: &mut Vec<u8>,
) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: matchstream-bench\r\n"
    );
    if let Some(t) = token {
        let _ = write!(out, "Authorization: Bearer {t}\r\n");
    }
    if let Some(b) = body {
        let _ = write!(
            out,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        );
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if let Some(b) = body {
        out.extend_from_slice(b);
    }
}

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
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Response>, &'static str> {
        let mut data = data;
        self.bytes += data.len();
        if self.state == State::Head {
            let from = self.head.len().saturating_sub(3);
            self.head.extend_from_slice(data);
            let Some(end) = find(&self.head[from..], b"\r\n\r\n").map(|i| from + i + 4) else {
                if self.head.len() > MAX_HEAD {
                    return Err("response head too large");
                }
                return Ok(None);
            };
            let head = std::mem::take(&mut self.head);
            self.parse_head(&head[..end])?;
            let rest = &head[end..];
            self.take_body(rest);
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

    fn parse_head(&mut self, head: &[u8]) -> Result<(), &'static str> {
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut r = httparse::Response::new(&mut headers);
        match r.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) | Err(_) => return Err("malformed response head"),
        }
        let status = r.code.ok_or("response without status")?;
        let mut length = None;
        let mut close = r.version == Some(0);
        for h in r.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = std::str::from_utf8(h.value).map_err(|_| "bad content-length")?;
                length = Some(
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| "bad content-length")?,
                );
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err("chunked bodies are not supported");
            } else if h.name.eq_ignore_ascii_case("connection") {
                let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                close = v.contains("close") || (close && !v.contains("keep-alive"));
            }
        }
        self.status = status;
        self.close = close;
        self.state = match length {
            _ if status == 204 || status == 304 || (100..200).contains(&status) => {
                State::Body { left: 0 }
            }
            Some(n) => State::Body { left: n },
            None => State::ToClose,
        };
        Ok(())
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
pub fn parse_pipelined(buf: &[u8]) -> Result<Option<Pipelined>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err("response head too large")
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("malformed response head"),
    };
    let status = r.code.ok_or("response without status")?;
    let mut length = None;
    let mut close = r.version == Some(0);
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| "bad content-length")?;
            length = Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| "bad content-length")?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked bodies are not supported");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            close = v.contains("close") || (close && !v.contains("keep-alive"));
        }
    }
    let body = match length {
        _ if status == 204 || status == 304 || (100..200).contains(&status) => 0,
        Some(n) => n,
        None => return Err("a pipelined response without Content-Length"),
    };
    if buf.len() < head + body {
        return Ok(None);
    }
    Ok(Some(Pipelined {
        status,
        used: head + body,
        close,
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = Url::parse("http://127.0.0.1:8888").expect("url");
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1:8888", 8888));
        assert_eq!(u.prefix, "");
        let u = Url::parse("127.0.0.1:9/api/").expect("bare");
        assert_eq!((u.port, u.prefix.as_str()), (9, "/api"));
        assert!(Url::parse("https://127.0.0.1").is_err());
        assert!(Url::parse("http://127.0.0.1:x").is_err());
    }

    #[test]
    fn requests_carry_token_body_and_close() {
        let mut out = Vec::new();
        write_request(
            "POST",
            "h:1",
            "/1/matches",
            Some("T"),
            Some(b"{}"),
            false,
            &mut out,
        );
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("POST /1/matches HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("Authorization: Bearer T\r\n"));
        assert!(text.contains("Content-Length: 2\r\nConnection: close\r\n\r\n{}"));
    }

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
