//! Incremental parsing of one HTTP/1.x request (head + `Content-Length` body) from a byte buffer.

pub use crate::error::ParseError;
pub use crate::method::Method;

use crate::fields::{version_error, Fields};

/// Upper bound on header slots (they live on the stack); `Limits::max_headers` is clamped to it.
pub const MAX_HEADERS_CAP: usize = 64;

/// Limits applied while parsing. Defaults: max_header_bytes 8192, max_headers 32, max_body 65536.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum size of the request line plus header fields plus the blank line, in bytes.
    pub max_header_bytes: usize,
    /// Maximum number of header fields (clamped to [`MAX_HEADERS_CAP`]).
    pub max_headers: usize,
    /// Maximum `Content-Length` accepted, in bytes.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 8192,
            max_headers: 32,
            max_body: 65536,
        }
    }
}

/// One parsed request; owns its data so the caller may drain the input buffer right away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request method.
    pub method: Method,
    /// The target's path part, without the query; percent-decoding is NOT applied.
    pub path: String,
    /// The part of the target after the first `'?'`, if there is one (possibly empty).
    pub query: Option<String>,
    /// Value of the `Authorization` header, if any (lossy UTF-8).
    pub authorization: Option<String>,
    /// Value of the `Content-Type` header, if any (lossy UTF-8).
    pub content_type: Option<String>,
    /// Value of the `Last-Event-ID` header, if any (lossy UTF-8): where a reconnecting
    /// `EventSource` resumes an event stream.
    pub last_event_id: Option<String>,
    /// The body, exactly `Content-Length` bytes (empty without that header).
    pub body: Vec<u8>,
    /// Whether the connection may stay open after the response: HTTP/1.1 defaults to true unless
    /// `Connection: close`; HTTP/1.0 defaults to false unless `Connection: keep-alive`.
    pub keep_alive: bool,
}

/// Outcome of [`parse_request`] that is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request is at the start of the buffer.
    Complete {
        /// The request.
        request: Request,
        /// Header plus body bytes it occupied; drain them before parsing the next request.
        consumed: usize,
    },
    /// More bytes are needed (the head or the body is not all there yet).
    Partial,
}

/// Parses one request from the start of `buf`.
///
/// Returns [`Parsed::Partial`] when more bytes are needed (also when the headers are complete
/// but the body is not yet all there). Errors:
///
/// - [`ParseError::HeadersTooLarge`] as soon as `buf` holds `max_header_bytes` without a
///   complete header block (so a slowloris that keeps sending header bytes is cut off);
/// - [`ParseError::TooManyHeaders`] past `max_headers` fields;
/// - [`ParseError::Malformed`] on syntax errors, a target not starting with `'/'` or holding
///   bytes outside printable ASCII, an invalid or conflicting `Content-Length`, or a repeated
///   `Authorization` / `Content-Type` / `Last-Event-ID`;
/// - [`ParseError::BodyTooLarge`] when `Content-Length` exceeds `max_body` (before the body
///   arrives);
/// - [`ParseError::NotImplemented`] for any `Transfer-Encoding` (chunked bodies are not accepted);
/// - [`ParseError::LengthRequired`] for `POST`/`PUT`/`PATCH` without `Content-Length`;
/// - [`ParseError::UnsupportedVersion`] for versions other than HTTP/1.0 and HTTP/1.1 (told
///   from a malformed version once the request line has ended: until then, `Partial`).
///
/// Other methods without `Content-Length` have an empty body. `consumed` counts header and body
/// bytes so the caller drains them and parses the next pipelined request.
///
/// ```
/// use matchstream_http::{parse_request, Limits, Method, Parsed};
///
/// let buf = b"GET /1/match/7?since=5 HTTP/1.1\r\nHost: x\r\n\r\nGET /";
/// let limits = Limits::default();
/// let Ok(Parsed::Complete { request, consumed }) = parse_request(buf, &limits) else {
///     panic!("expected a complete request");
/// };
/// assert_eq!(request.method, Method::Get);
/// assert_eq!(request.path, "/1/match/7");
/// assert_eq!(request.query.as_deref(), Some("since=5"));
/// assert!(request.keep_alive);
/// // The pipelined second request is not all there yet.
/// assert_eq!(parse_request(&buf[consumed..], &limits), Ok(Parsed::Partial));
/// ```
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    // Only ever look at max_header_bytes for the head: a full window without the blank line
    // means the header block is too large, however the rest of the buffer looks.
    let window = &buf[..buf.len().min(limits.max_header_bytes)];
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS_CAP];
    let slot_count = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut head = httparse::Request::new(&mut slots[..slot_count]);
    let header_len = match head.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if window.len() >= limits.max_header_bytes => {
            return Err(ParseError::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(httparse::Error::Version) => match version_error(window) {
            Some(e) => return Err(e),
            None if window.len() >= limits.max_header_bytes => {
                return Err(ParseError::HeadersTooLarge)
            }
            None => return Ok(Parsed::Partial),
        },
        Err(_) => return Err(ParseError::Malformed),
    };

    let http11 = match head.version {
        Some(1) => true,
        Some(0) => false,
        _ => return Err(ParseError::UnsupportedVersion),
    };
    let method = Method::from_token(head.method.ok_or(ParseError::Malformed)?);
    let target = head.path.ok_or(ParseError::Malformed)?;
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::Malformed);
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };

    let mut fields = Fields::default();
    for header in head.headers.iter() {
        fields.record(header.name, header.value)?;
    }
    if fields.transfer_encoding {
        return Err(ParseError::NotImplemented);
    }
    let body_len = match fields.content_length {
        Some(len) if len > limits.max_body as u64 => return Err(ParseError::BodyTooLarge),
        // Fits: it is at most max_body, a usize.
        Some(len) => len as usize,
        None if method.requires_length() => return Err(ParseError::LengthRequired),
        None => 0,
    };
    let consumed = header_len
        .checked_add(body_len)
        .ok_or(ParseError::BodyTooLarge)?;
    let Some(body) = buf.get(header_len..consumed) else {
        return Ok(Parsed::Partial);
    };

    let keep_alive = !fields.close && (http11 || fields.keep_alive);
    Ok(Parsed::Complete {
        request: Request {
            method,
            path: path.to_owned(),
            query: query.map(str::to_owned),
            authorization: fields.authorization,
            content_type: fields.content_type,
            last_event_id: fields.last_event_id,
            body: body.to_vec(),
            keep_alive,
        },
        consumed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Parsed, ParseError> {
        parse_request(input, &Limits::default())
    }

    /// The request and consumed count, panicking (with the case name) on anything else.
    fn complete(name: &str, input: &[u8], limits: &Limits) -> (Request, usize) {
        match parse_request(input, limits) {
            Ok(Parsed::Complete { request, consumed }) => (request, consumed),
            other => panic!("{name}: expected Complete, got {other:?}"),
        }
    }

    fn request(method: Method, path: &str, query: Option<&str>, body: &[u8]) -> Request {
        Request {
            method,
            path: path.to_owned(),
            query: query.map(str::to_owned),
            authorization: None,
            content_type: None,
            last_event_id: None,
            body: body.to_vec(),
            keep_alive: true,
        }
    }

    #[test]
    fn default_limits() {
        let limits = Limits::default();
        assert_eq!(
            (limits.max_header_bytes, limits.max_headers, limits.max_body),
            (8192, 32, 65536)
        );
    }

    #[test]
    fn complete_requests() {
        let authorized = Request {
            authorization: Some("Bearer abc.def".to_owned()),
            content_type: Some("application/json".to_owned()),
            ..request(Method::Post, "/1/match", None, b"{}")
        };
        let cases: Vec<(&str, &[u8], Request)> = vec![
            (
                "simple get",
                b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n",
                request(Method::Get, "/health", None, b""),
            ),
            (
                "query split",
                b"GET /1/match/7/history?since=5&x=%20 HTTP/1.1\r\n\r\n",
                request(
                    Method::Get,
                    "/1/match/7/history",
                    Some("since=5&x=%20"),
                    b"",
                ),
            ),
            (
                "empty query",
                b"GET /a? HTTP/1.1\r\n\r\n",
                request(Method::Get, "/a", Some(""), b""),
            ),
            (
                "second question mark stays in query",
                b"GET /a?b?c HTTP/1.1\r\n\r\n",
                request(Method::Get, "/a", Some("b?c"), b""),
            ),
            (
                "path is not percent-decoded",
                b"GET /a%2Fb HTTP/1.1\r\n\r\n",
                request(Method::Get, "/a%2Fb", None, b""),
            ),
            (
                "post with body",
                b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                request(Method::Post, "/x", None, b"hello"),
            ),
            (
                "authorization and content type extracted, names case-insensitive",
                b"POST /1/match HTTP/1.1\r\nauthorization: Bearer abc.def\r\n\
                  CONTENT-TYPE: application/json\r\ncontent-length: 2\r\n\r\n{}",
                authorized,
            ),
            (
                "last-event-id extracted",
                b"GET /1/match/m/stream HTTP/1.1\r\nlast-event-ID: 17\r\n\r\n",
                Request {
                    last_event_id: Some("17".to_owned()),
                    ..request(Method::Get, "/1/match/m/stream", None, b"")
                },
            ),
            (
                "get with a body",
                b"GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
                request(Method::Get, "/x", None, b"abc"),
            ),
            (
                "repeated identical content-length",
                b"PUT /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
                request(Method::Put, "/x", None, b"ok"),
            ),
            (
                "post with zero length",
                b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                request(Method::Post, "/x", None, b""),
            ),
            (
                "delete without length has empty body",
                b"DELETE /x/1 HTTP/1.1\r\n\r\n",
                request(Method::Delete, "/x/1", None, b""),
            ),
            (
                "head",
                b"HEAD / HTTP/1.1\r\n\r\n",
                request(Method::Head, "/", None, b""),
            ),
            (
                "unknown method is other",
                b"BREW /pot HTTP/1.1\r\n\r\n",
                request(Method::Other, "/pot", None, b""),
            ),
            (
                "lowercase method is other",
                b"get / HTTP/1.1\r\n\r\n",
                request(Method::Other, "/", None, b""),
            ),
            (
                "bare lf line endings",
                b"GET /lf HTTP/1.1\nHost: a\n\n",
                request(Method::Get, "/lf", None, b""),
            ),
        ];
        for (name, input, expected) in cases {
            let (got, consumed) = complete(name, input, &Limits::default());
            assert_eq!(got, expected, "{name}");
            assert_eq!(consumed, input.len(), "{name}");
        }
    }

    #[test]
    fn errors() {
        use ParseError::*;
        let small = Limits {
            max_header_bytes: 128,
            max_headers: 2,
            max_body: 10,
        };
        let slow = "GET / HTTP/1.1\r\nX-Slow: ".to_owned() + &"a".repeat(200);
        let big = "GET / HTTP/1.1\r\nX-Big: ".to_owned() + &"a".repeat(120) + "\r\n\r\n";
        #[rustfmt::skip]
        let cases: Vec<(&str, &[u8], ParseError)> = vec![
            ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", Malformed),
            ("space in method position", b" GET / HTTP/1.1\r\n\r\n", Malformed),
            ("asterisk target", b"OPTIONS * HTTP/1.1\r\n\r\n", Malformed),
            ("absolute form target", b"GET http://a/b HTTP/1.1\r\n\r\n", Malformed),
            ("non-ascii target", b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", Malformed),
            ("bad header name", b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", Malformed),
            ("invalid length", b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", Malformed),
            ("conflicting lengths",
                b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", Malformed),
            ("duplicate authorization",
                b"GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", Malformed),
            ("duplicate last-event-id",
                b"GET / HTTP/1.1\r\nLast-Event-ID: 1\r\nlast-event-id: 2\r\n\r\n", Malformed),
            ("http 2.0", b"GET / HTTP/2.0\r\n\r\n", UnsupportedVersion),
            ("unknown protocol", b"GET / XTTP/1.1\r\n\r\n", Malformed),
            ("body too large before it arrives",
                b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", BodyTooLarge),
            ("overflowing length",
                b"PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", BodyTooLarge),
            ("post without length", b"POST / HTTP/1.1\r\n\r\n", LengthRequired),
            ("put without length", b"PUT / HTTP/1.1\r\n\r\n", LengthRequired),
            ("patch without length", b"PATCH / HTTP/1.0\r\n\r\n", LengthRequired),
            ("chunked", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", NotImplemented),
            ("chunked wins over length",
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                NotImplemented),
            ("header bytes reach the limit without terminator", slow.as_bytes(), HeadersTooLarge),
            ("complete header block longer than the limit", big.as_bytes(), HeadersTooLarge),
            ("too many headers", b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", TooManyHeaders),
        ];
        for (name, input, expected) in cases {
            assert_eq!(parse_request(input, &small), Err(expected), "{name}");
        }
    }

    #[test]
    fn max_headers_clamped_to_cap() {
        let limits = Limits {
            max_header_bytes: 4096,
            max_headers: 1000,
            max_body: 0,
        };
        let cases = [("at the cap", 64, true), ("one over the cap", 65, false)];
        for (name, count, fits) in cases {
            let input = "GET / HTTP/1.1\r\n".to_owned() + &"A: b\r\n".repeat(count) + "\r\n";
            let got = parse_request(input.as_bytes(), &limits);
            assert_eq!(
                matches!(got, Ok(Parsed::Complete { .. })),
                fits,
                "{name}: {got:?}"
            );
            assert_eq!(
                got == Err(ParseError::TooManyHeaders),
                !fits,
                "{name}: {got:?}"
            );
        }
    }

    #[test]
    fn partial_inputs() {
        let cases: [(&str, &[u8]); 6] = [
            ("empty", b""),
            ("half a method", b"GE"),
            ("request line only", b"GET / HTTP/1.1\r\n"),
            (
                "header without blank line",
                b"GET / HTTP/1.1\r\nHost: a\r\n",
            ),
            (
                "body not all there",
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
            ),
            (
                "body not started",
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n",
            ),
        ];
        for (name, input) in cases {
            assert_eq!(parse(input), Ok(Parsed::Partial), "{name}");
        }
    }

    #[test]
    fn header_limit_boundary() {
        let head = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        let cases = [
            ("block exactly at the limit", head.len(), true),
            ("limit one byte short", head.len() - 1, false),
        ];
        for (name, max_header_bytes, fits) in cases {
            let limits = Limits {
                max_header_bytes,
                ..Limits::default()
            };
            let got = parse_request(head, &limits);
            assert_eq!(
                matches!(got, Ok(Parsed::Complete { .. })),
                fits,
                "{name}: {got:?}"
            );
            assert_eq!(
                got == Err(ParseError::HeadersTooLarge),
                !fits,
                "{name}: {got:?}"
            );
        }
    }

    #[test]
    fn body_limit_boundary() {
        let limits = Limits {
            max_body: 5,
            ..Limits::default()
        };
        let at = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        let (request, consumed) = complete("body exactly at the limit", at, &limits);
        assert_eq!(
            (request.body.as_slice(), consumed),
            (&b"hello"[..], at.len())
        );
        let over = b"POST /x HTTP/1.1\r\nContent-Length: 6\r\n\r\nhello!";
        assert_eq!(
            parse_request(over, &limits),
            Err(ParseError::BodyTooLarge),
            "body one byte over the limit"
        );
    }

    #[test]
    fn version_errors_wait_for_the_end_of_the_request_line() {
        // Found by fuzzing (fuzz/fuzz_targets/http_request.rs): the error was decided from the
        // line's last token as far as it had arrived, so "G 0  HTTP/1" read whole said 505
        // while its first 5 bytes, read alone, had already said 400; and "HTTP/2" said 505
        // before the "x" that makes "HTTP/2x" junk arrived.
        use ParseError::*;
        #[rustfmt::skip]
        let cases: [(&str, &[u8], Result<Parsed, ParseError>); 6] = [
            ("double space, line not ended", b"G 0  HTTP/1", Ok(Parsed::Partial)),
            ("http 2, line not ended", b"GET / HTTP/2", Ok(Parsed::Partial)),
            ("http 2 then junk", b"GET / HTTP/2x\r\n", Err(Malformed)),
            ("http 2.0", b"GET / HTTP/2.0\r\n\r\n", Err(UnsupportedVersion)),
            ("http 2.0, bare lf", b"GET / HTTP/2.0\n", Err(UnsupportedVersion)),
            ("junk protocol, line ended by cr", b"GET / XTTP/1.1\r", Err(Malformed)),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse(input), want, "{name}");
            for end in 0..input.len() {
                let got = parse(&input[..end]);
                assert!(
                    got == Ok(Parsed::Partial) || got == want,
                    "{name}: the first {end} bytes gave {got:?}"
                );
            }
        }
        // A request line that cannot end within the header limit is too large, not Partial.
        let limits = Limits {
            max_header_bytes: 12,
            ..Limits::default()
        };
        assert_eq!(
            parse_request(b"GET / HTTP/2.0\r\n\r\n", &limits),
            Err(HeadersTooLarge)
        );
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let cases: [(&str, &[u8]); 2] = [
            (
                "get",
                b"GET /1/match/9?since=3 HTTP/1.1\r\nHost: h\r\nAuthorization: Basic x\r\n\r\n",
            ),
            (
                "post",
                b"POST /1/match HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
            ),
        ];
        for (name, input) in cases {
            for end in 0..input.len() {
                assert_eq!(parse(&input[..end]), Ok(Parsed::Partial), "{name} at {end}");
            }
            let (_, consumed) = complete(name, input, &Limits::default());
            assert_eq!(consumed, input.len(), "{name}");
        }
    }

    #[test]
    fn pipelined_requests_parse_one_after_another() {
        let buf: &[u8] = b"GET /a HTTP/1.1\r\n\r\n\
            POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz\
            GET /c HTTP/1.1\r\nConnection: close\r\n\r\n\
            GET /d";
        let mut rest = buf;
        let mut seen = Vec::new();
        while let Ok(Parsed::Complete { request, consumed }) = parse(rest) {
            seen.push((
                request.method,
                request.path,
                request.body,
                request.keep_alive,
            ));
            rest = &rest[consumed..];
        }
        let expected = vec![
            (Method::Get, "/a".to_owned(), Vec::new(), true),
            (Method::Post, "/b".to_owned(), b"xyz".to_vec(), true),
            (Method::Get, "/c".to_owned(), Vec::new(), false),
        ];
        assert_eq!(seen, expected);
        assert_eq!(rest, b"GET /d");
    }

    #[test]
    fn post_body_arriving_in_pieces() {
        let pieces: [&[u8]; 4] = [
            b"POST /1/match HTTP/1.1\r\nContent-Le",
            b"ngth: 11\r\n\r\n",
            b"hello",
            b" world",
        ];
        let mut buf = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            buf.extend_from_slice(piece);
            let got = parse(&buf);
            if i + 1 < pieces.len() {
                assert_eq!(got, Ok(Parsed::Partial), "after piece {i}");
            } else {
                let (request, consumed) = complete("last piece", &buf, &Limits::default());
                assert_eq!(request.body, b"hello world");
                assert_eq!(consumed, buf.len());
            }
        }
    }

    #[test]
    fn keep_alive_rules() {
        let cases: [(&str, &[u8], bool); 8] = [
            ("1.1 default", b"GET / HTTP/1.1\r\n\r\n", true),
            (
                "1.1 close",
                b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
                false,
            ),
            (
                "1.1 close any case",
                b"GET / HTTP/1.1\r\nconnection: Close\r\n\r\n",
                false,
            ),
            (
                "1.1 explicit keep-alive",
                b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            ("1.0 default", b"GET / HTTP/1.0\r\n\r\n", false),
            (
                "1.0 keep-alive",
                b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                true,
            ),
            (
                "1.0 close",
                b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n",
                false,
            ),
            (
                "close wins over keep-alive",
                b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
                false,
            ),
        ];
        for (name, input, expected) in cases {
            let (request, _) = complete(name, input, &Limits::default());
            assert_eq!(request.keep_alive, expected, "{name}");
        }
    }
}
