//! Incremental parsing of one HTTP/1.x response head from a byte buffer: the client side's
//! mirror of [`crate::request`]. It says the status, how the body that follows is framed
//! (`Content-Length`, nothing, or everything until the server closes) and whether the
//! connection may carry another request; reading the body is the caller's, since a blocking
//! client, a load loop that keeps only a bounded prefix of each body and a pipelining
//! publisher each read it their own way.

use crate::error::ResponseError;
use crate::fields::Fields;
use crate::request::MAX_HEADERS_CAP;

/// Limits applied while parsing a response head. Defaults: max_head_bytes 65536, max_body
/// 64 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Maximum size of the status line plus header fields plus the blank line, in bytes.
    pub max_head_bytes: usize,
    /// Maximum `Content-Length` accepted, in bytes.
    pub max_body: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_head_bytes: 64 * 1024,
            max_body: 64 * 1024 * 1024,
        }
    }
}

/// How the body after a response head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a 1xx, 204 or 304 answer, whatever its headers say.
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(usize),
    /// Everything until the server closes the connection (no `Content-Length`); such a
    /// response cannot be followed by another on the same connection.
    UntilClose,
}

/// A complete response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// Bytes of the head, blank line included: the body starts there.
    pub len: usize,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection may carry another request: HTTP/1.1 unless `Connection:
    /// close`, HTTP/1.0 only with `Connection: keep-alive`; never after a body that runs
    /// until the close.
    pub keep_alive: bool,
}

/// Outcome of [`parse_response_head`] that is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedHead {
    /// A whole head is at the start of the buffer.
    Complete(ResponseHead),
    /// More bytes are needed.
    Partial,
}

/// Parses the response head at the start of `buf`.
///
/// Returns [`ParsedHead::Partial`] until the blank line that ends the head has arrived.
/// Errors:
///
/// - [`ResponseError::HeadTooLarge`] as soon as `buf` holds `max_head_bytes` without a
///   complete head;
/// - [`ResponseError::TooManyHeaders`] past [`MAX_HEADERS_CAP`] fields;
/// - [`ResponseError::Malformed`] on anything but an HTTP/1.0 or HTTP/1.1 status line and
///   header block;
/// - [`ResponseError::BadContentLength`] for an invalid `Content-Length` or several that
///   disagree, [`ResponseError::BodyTooLarge`] for one above `max_body`;
/// - [`ResponseError::TransferEncoding`] for any `Transfer-Encoding`: chunked bodies are not
///   accepted.
///
/// A response to `HEAD` has no body whatever its `Content-Length` says: only the caller
/// knows what it asked.
///
/// ```
/// use matchstream_http::{parse_response_head, Framing, ParsedHead, ResponseLimits};
///
/// let limits = ResponseLimits::default();
/// let buf = b"HTTP/1.1 201 Created\r\nContent-Length: 8\r\n\r\n{\"id\":7}";
/// let Ok(ParsedHead::Complete(head)) = parse_response_head(buf, &limits) else {
///     panic!("expected a complete head");
/// };
/// assert_eq!((head.status, head.framing), (201, Framing::Length(8)));
/// assert_eq!(&buf[head.len..], b"{\"id\":7}");
/// assert!(head.keep_alive);
/// assert_eq!(parse_response_head(&buf[..20], &limits), Ok(ParsedHead::Partial));
/// ```
pub fn parse_response_head(
    buf: &[u8],
    limits: &ResponseLimits,
) -> Result<ParsedHead, ResponseError> {
    // As for requests: a full window without the blank line is a head too large, however
    // the rest of the buffer looks.
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS_CAP];
    let mut head = httparse::Response::new(&mut slots);
    let len = match head.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if window.len() >= limits.max_head_bytes => {
            return Err(ResponseError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(ParsedHead::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooManyHeaders),
        Err(_) => return Err(ResponseError::Malformed),
    };
    let status = head.code.ok_or(ResponseError::Malformed)?;
    let http11 = match head.version {
        Some(1) => true,
        Some(0) => false,
        _ => return Err(ResponseError::Malformed),
    };
    let mut fields = Fields::default();
    for header in head.headers.iter() {
        fields
            .record_framing(header.name, header.value)
            .map_err(|_| ResponseError::BadContentLength)?;
    }
    if fields.transfer_encoding {
        return Err(ResponseError::TransferEncoding);
    }
    let framing = match fields.content_length {
        _ if matches!(status, 100..=199 | 204 | 304) => Framing::Empty,
        Some(n) if n > limits.max_body as u64 => return Err(ResponseError::BodyTooLarge),
        // Fits: it is at most max_body, a usize.
        Some(n) => Framing::Length(n as usize),
        None => Framing::UntilClose,
    };
    let keep_alive =
        !fields.close && (http11 || fields.keep_alive) && framing != Framing::UntilClose;
    Ok(ParsedHead::Complete(ResponseHead {
        status,
        len,
        framing,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<ParsedHead, ResponseError> {
        parse_response_head(input, &ResponseLimits::default())
    }

    fn head(status: u16, len: usize, framing: Framing, keep_alive: bool) -> ParsedHead {
        ParsedHead::Complete(ResponseHead {
            status,
            len,
            framing,
            keep_alive,
        })
    }

    #[test]
    fn default_limits() {
        let limits = ResponseLimits::default();
        assert_eq!(
            (limits.max_head_bytes, limits.max_body),
            (65536, 64 * 1024 * 1024)
        );
    }

    #[test]
    fn complete_heads() {
        use Framing::*;
        #[rustfmt::skip]
        let cases: [(&str, &[u8], ParsedHead); 14] = [
            ("length, body not counted",
                b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nabcde", head(201, 43, Length(5), true)),
            ("zero length", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", head(200, 38, Length(0), true)),
            ("identical lengths",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", head(200, 57, Length(2), true)),
            ("no length runs until close", b"HTTP/1.1 200 OK\r\n\r\n", head(200, 19, UntilClose, false)),
            ("1.0 without length", b"HTTP/1.0 200 OK\r\n\r\nall of it", head(200, 19, UntilClose, false)),
            ("no content has no body", b"HTTP/1.1 204 No Content\r\n\r\n", head(204, 27, Empty, true)),
            ("not modified ignores its length",
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", head(304, 48, Empty, true)),
            ("continue has no body", b"HTTP/1.1 100 Continue\r\n\r\n", head(100, 25, Empty, true)),
            ("bodiless status ignores a huge length",
                b"HTTP/1.1 204 No Content\r\nContent-Length: 999999999999\r\n\r\n", head(204, 57, Empty, true)),
            ("1.1 close", b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n",
                head(200, 57, Length(0), false)),
            ("1.0 closes by default", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", head(200, 38, Length(1), false)),
            ("1.0 keep-alive",
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
                head(200, 62, Length(1), true)),
            ("close wins over keep-alive",
                b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\n",
                head(200, 69, Length(1), false)),
            ("bare lf line endings", b"HTTP/1.1 404 Not Found\nContent-Length: 2\n\n{}", head(404, 42, Length(2), true)),
        ];
        for (name, input, expected) in cases {
            assert_eq!(parse(input), Ok(expected), "{name}");
        }
    }

    #[test]
    fn errors() {
        use ResponseError::*;
        let small = ResponseLimits {
            max_head_bytes: 64,
            max_body: 10,
        };
        let slow = "HTTP/1.1 200 OK\r\nX-Slow: ".to_owned() + &"a".repeat(100);
        let many = "HTTP/1.1 200 OK\r\n".to_owned() + &"A: b\r\n".repeat(65) + "\r\n";
        #[rustfmt::skip]
        let cases: Vec<(&str, &[u8], ResponseError)> = vec![
            ("not http", b"SMTP ready\r\n\r\n", Malformed),
            ("http 2", b"HTTP/2.0 200 OK\r\n\r\n", Malformed),
            ("no status code", b"HTTP/1.1 OK\r\n\r\n", Malformed),
            ("bad header name", b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", Malformed),
            ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncoding),
            ("any transfer coding", b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: identity\r\n\r\n",
                TransferEncoding),
            ("length not a number", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", BadContentLength),
            ("negative length", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", BadContentLength),
            ("conflicting lengths",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", BadContentLength),
            ("length above max_body", b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", BodyTooLarge),
            ("head bytes reach the limit without its end", slow.as_bytes(), HeadTooLarge),
        ];
        for (name, input, expected) in cases {
            assert_eq!(parse_response_head(input, &small), Err(expected), "{name}");
        }
        assert_eq!(
            parse(many.as_bytes()),
            Err(TooManyHeaders),
            "too many headers"
        );
    }

    #[test]
    fn body_limit_boundary() {
        let limits = ResponseLimits {
            max_body: 10,
            ..ResponseLimits::default()
        };
        let at = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(
            parse_response_head(at, &limits),
            Ok(head(200, at.len(), Framing::Length(10), true)),
            "a body exactly at max_body"
        );
        let over = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(
            parse_response_head(over, &limits),
            Err(ResponseError::BodyTooLarge),
            "one byte over"
        );
    }

    #[test]
    fn partial_heads() {
        let cases: [(&str, &[u8]); 4] = [
            ("empty", b""),
            ("half a status line", b"HTTP/1.1 20"),
            ("status line only", b"HTTP/1.1 200 OK\r\n"),
            (
                "header without blank line",
                b"HTTP/1.1 200 OK\r\nContent-Len",
            ),
        ];
        for (name, input) in cases {
            assert_eq!(parse(input), Ok(ParsedHead::Partial), "{name}");
        }
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let input = b"HTTP/1.1 201 Created\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n";
        for end in 0..input.len() {
            assert_eq!(parse(&input[..end]), Ok(ParsedHead::Partial), "at {end}");
        }
        assert_eq!(
            parse(input),
            Ok(head(201, input.len(), Framing::Length(11), true))
        );
    }

    #[test]
    fn head_limit_boundary() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let cases = [
            ("head exactly at the limit", input.len(), true),
            ("limit one byte short", input.len() - 1, false),
        ];
        for (name, max_head_bytes, fits) in cases {
            let limits = ResponseLimits {
                max_head_bytes,
                ..ResponseLimits::default()
            };
            let got = parse_response_head(input, &limits);
            assert_eq!(
                matches!(got, Ok(ParsedHead::Complete(_))),
                fits,
                "{name}: {got:?}"
            );
            assert_eq!(
                got == Err(ResponseError::HeadTooLarge),
                !fits,
                "{name}: {got:?}"
            );
        }
    }
}
