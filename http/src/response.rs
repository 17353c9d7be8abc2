//! Building responses and serializing them as HTTP/1.1 bytes.

use std::ops::Deref;
use std::rc::Rc;

use crate::error::ParseError;

/// A response's body: bytes of its own, or bytes shared with a cache or built into the binary,
/// which [`Response::write_to`] copies once, straight into the output (no copy of their own
/// per request: a match's 3 KB history answered 100,000 times a second, issue 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Bytes of its own.
    Owned(Vec<u8>),
    /// Bytes shared with a cache (a core's rendered JSON of a match).
    Shared(Rc<[u8]>),
    /// Bytes built into the binary.
    Static(&'static [u8]),
}

impl Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Body::Owned(v) => v,
            Body::Shared(r) => r,
            Body::Static(s) => s,
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Owned(bytes)
    }
}

impl From<Rc<[u8]>> for Body {
    fn from(bytes: Rc<[u8]>) -> Self {
        Body::Shared(bytes)
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Body::Static(bytes)
    }
}

/// Content type set by [`Response::json`].
pub const JSON: &str = "application/json; charset=utf-8";
/// Content type set by [`Response::text`].
pub const TEXT: &str = "text/plain; charset=utf-8";

/// A response to serialize with [`Response::write_to`].
///
/// ```
/// use matchstream_http::Response;
///
/// let mut out = Vec::new();
/// Response::json(201, b"{\"id\":7}".to_vec())
///     .with_header("Location", "/1/match/7")
///     .write_to(&mut out, true, false);
/// assert_eq!(
///     out,
///     b"HTTP/1.1 201 Created\r\n\
///       Content-Type: application/json; charset=utf-8\r\n\
///       Content-Length: 8\r\n\
///       Location: /1/match/7\r\n\
///       Connection: keep-alive\r\n\
///       \r\n\
///       {\"id\":7}"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'static str>,
    /// Extra headers, written in order after `Content-Length`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Body,
}

impl Response {
    /// A response with an empty body and no content type.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Body::Static(b""),
        }
    }

    /// A JSON response (`application/json; charset=utf-8`); `body` must already be JSON.
    pub fn json(status: u16, body: impl Into<Body>) -> Self {
        Response {
            content_type: Some(JSON),
            body: body.into(),
            ..Response::new(status)
        }
    }

    /// A plain text response (`text/plain; charset=utf-8`).
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            content_type: Some(TEXT),
            body: Body::Owned(body.into()),
            ..Response::new(status)
        }
    }

    /// Adds a header. CR and LF in `value` are written as spaces, so no header can be injected.
    /// Do not add `Content-Type`, `Content-Length` or `Connection`: `write_to` writes those.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Appends the serialized response to `out`: status line `HTTP/1.1 <code> <reason phrase>`,
    /// `Content-Type` if any, `Content-Length` (always, also 0; for 1xx, 204 and 304 no body and
    /// no `Content-Length`), the extra headers, `Connection: close` when `!keep_alive` (else
    /// `Connection: keep-alive`), blank line, body. If `head_only` the body is omitted but
    /// `Content-Length` still states its length.
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool, head_only: bool) {
        let bodyless = matches!(self.status, 100..=199 | 204 | 304);
        out.reserve(128 + self.body.len());
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, usize::from(self.status));
        out.push(b' ');
        out.extend_from_slice(reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(content_type) = self.content_type {
            push_header(out, "Content-Type", content_type);
        }
        if !bodyless {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, self.body.len());
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in &self.headers {
            push_header(out, name, value);
        }
        let connection = if keep_alive { "keep-alive" } else { "close" };
        push_header(out, "Connection", connection);
        out.extend_from_slice(b"\r\n");
        if !bodyless && !head_only {
            out.extend_from_slice(&self.body);
        }
    }

    /// Appends the head of a response whose body runs until the server closes the connection
    /// (an event stream): status line, `Content-Type` if any, the extra headers,
    /// `Connection: close`, blank line — no `Content-Length`, and never the body, which the
    /// caller writes as it comes.
    ///
    /// ```
    /// use matchstream_http::Response;
    ///
    /// let mut out = Vec::new();
    /// let mut stream = Response::new(200).with_header("Cache-Control", "no-cache");
    /// stream.content_type = Some("text/event-stream");
    /// stream.write_head_until_close(&mut out);
    /// assert_eq!(
    ///     out,
    ///     b"HTTP/1.1 200 OK\r\n\
    ///       Content-Type: text/event-stream\r\n\
    ///       Cache-Control: no-cache\r\n\
    ///       Connection: close\r\n\
    ///       \r\n"
    /// );
    /// ```
    pub fn write_head_until_close(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, usize::from(self.status));
        out.push(b' ');
        out.extend_from_slice(reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(content_type) = self.content_type {
            push_header(out, "Content-Type", content_type);
        }
        for (name, value) in &self.headers {
            push_header(out, name, value);
        }
        push_header(out, "Connection", "close");
        out.extend_from_slice(b"\r\n");
    }
}

impl From<ParseError> for Response {
    /// A plain text error response: the error's status, its reason plus a newline as body.
    fn from(err: ParseError) -> Self {
        let mut body = Vec::with_capacity(err.reason().len() + 1);
        body.extend_from_slice(err.reason().as_bytes());
        body.push(b'\n');
        Response::text(err.status(), body)
    }
}

/// The standard reason phrase for `status`, or `"Unknown"` for codes not listed in RFC 9110
/// (plus 429).
///
/// ```
/// assert_eq!(matchstream_http::reason_phrase(404), "Not Found");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend(
        value
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Writes `n` in decimal without allocating.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(response: &Response, keep_alive: bool, head_only: bool) -> String {
        let mut out = b"previous".to_vec();
        response.write_to(&mut out, keep_alive, head_only);
        assert!(out.starts_with(b"previous"), "write_to must append");
        String::from_utf8_lossy(&out[b"previous".len()..]).into_owned()
    }

    #[test]
    fn a_stream_head_has_no_length_and_says_close_after_what_was_written() {
        let mut head = Response::new(200).with_header("Cache-Control", "no-cache");
        head.content_type = Some("text/event-stream");
        let mut out = b"previous".to_vec();
        head.write_head_until_close(&mut out);
        assert_eq!(
            String::from_utf8(out).expect("ASCII"),
            "previousHTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
             Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn shared_and_static_bodies_are_written_as_owned_ones() {
        let bytes = b"[\"a-b-2011-09-10\"]";
        let owned = written(&Response::json(200, bytes.to_vec()), true, false);
        let shared: std::rc::Rc<[u8]> = std::rc::Rc::from(&bytes[..]);
        assert_eq!(written(&Response::json(200, shared), true, false), owned);
        let fixed: &'static [u8] = bytes;
        assert_eq!(written(&Response::json(200, fixed), true, false), owned);
        assert!(owned
            .ends_with("Content-Length: 18\r\nConnection: keep-alive\r\n\r\n[\"a-b-2011-09-10\"]"));
    }

    #[test]
    fn serialization_byte_for_byte() {
        let cases: Vec<(&str, Response, bool, bool, &str)> = vec![
            (
                "200 json",
                Response::json(200, b"{\"ok\":true}".to_vec()),
                true,
                false,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\
                 Content-Length: 11\r\nConnection: keep-alive\r\n\r\n{\"ok\":true}",
            ),
            (
                "204 has no length and no body",
                Response::new(204).with_header("X-Id", "1"),
                true,
                false,
                "HTTP/1.1 204 No Content\r\nX-Id: 1\r\nConnection: keep-alive\r\n\r\n",
            ),
            (
                "304 has no length",
                Response::new(304),
                true,
                false,
                "HTTP/1.1 304 Not Modified\r\nConnection: keep-alive\r\n\r\n",
            ),
            (
                "404 text with close",
                Response::text(404, "not found"),
                false,
                false,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 9\r\nConnection: close\r\n\r\nnot found",
            ),
            (
                "head only keeps the length, drops the body",
                Response::json(200, b"[1,2,3]".to_vec()),
                true,
                true,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\
                 Content-Length: 7\r\nConnection: keep-alive\r\n\r\n",
            ),
            (
                "empty body still has length 0",
                Response::new(200),
                true,
                false,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
            ),
            (
                "405 with allow header",
                Response::new(405).with_header("Allow", "GET, HEAD"),
                false,
                false,
                "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n\
                 Connection: close\r\n\r\n",
            ),
            (
                "crlf in header value cannot inject",
                Response::new(200).with_header("X-A", "a\r\nSet-Cookie: x"),
                true,
                false,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: a  Set-Cookie: x\r\n\
                 Connection: keep-alive\r\n\r\n",
            ),
            (
                "unknown status",
                Response::new(599),
                true,
                false,
                "HTTP/1.1 599 Unknown\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
            ),
            (
                "from parse error",
                Response::from(ParseError::BodyTooLarge),
                false,
                false,
                "HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 15\r\nConnection: close\r\n\r\nbody too large\n",
            ),
        ];
        for (name, response, keep_alive, head_only, expected) in cases {
            assert_eq!(
                written(&response, keep_alive, head_only),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn reason_phrases() {
        // RFC 9110 §15, every code it defines (but 418, "unused"), plus RFC 6585's 429.
        #[rustfmt::skip]
        let cases = [
            (100, "Continue"), (101, "Switching Protocols"),
            (200, "OK"), (201, "Created"), (202, "Accepted"),
            (203, "Non-Authoritative Information"), (204, "No Content"),
            (205, "Reset Content"), (206, "Partial Content"),
            (300, "Multiple Choices"), (301, "Moved Permanently"), (302, "Found"),
            (303, "See Other"), (304, "Not Modified"), (307, "Temporary Redirect"),
            (308, "Permanent Redirect"),
            (400, "Bad Request"), (401, "Unauthorized"), (402, "Payment Required"),
            (403, "Forbidden"), (404, "Not Found"), (405, "Method Not Allowed"),
            (406, "Not Acceptable"), (407, "Proxy Authentication Required"),
            (408, "Request Timeout"), (409, "Conflict"), (410, "Gone"),
            (411, "Length Required"), (412, "Precondition Failed"),
            (413, "Content Too Large"), (414, "URI Too Long"),
            (415, "Unsupported Media Type"), (416, "Range Not Satisfiable"),
            (417, "Expectation Failed"), (421, "Misdirected Request"),
            (422, "Unprocessable Content"), (426, "Upgrade Required"),
            (428, "Precondition Required"), (429, "Too Many Requests"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"), (501, "Not Implemented"), (502, "Bad Gateway"),
            (503, "Service Unavailable"), (504, "Gateway Timeout"),
            (505, "HTTP Version Not Supported"),
            // Not listed: unknown.
            (0, "Unknown"), (102, "Unknown"), (305, "Unknown"), (418, "Unknown"),
            (599, "Unknown"),
        ];
        for (status, phrase) in cases {
            assert_eq!(reason_phrase(status), phrase, "{status}");
        }
    }

    #[test]
    fn a_body_longer_than_the_head_reserve() {
        let body = vec![b'x'; 300];
        let got = written(&Response::json(200, body.clone()), true, false);
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\
                    Content-Length: 300\r\nConnection: keep-alive\r\n\r\n";
        assert_eq!(got, head.to_owned() + &String::from_utf8_lossy(&body));
    }

    #[test]
    fn decimal_formatting() {
        let cases = [
            ("zero", 0, "0"),
            ("one digit", 7, "7"),
            ("round", 1000, "1000"),
            ("max", usize::MAX, "18446744073709551615"),
        ];
        for (name, n, expected) in cases {
            if n == usize::MAX && usize::BITS != 64 {
                continue;
            }
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, expected.as_bytes(), "{name}");
        }
    }
}
