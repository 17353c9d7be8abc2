//! Why a request could not be parsed, with the HTTP status each reason maps to; and why a
//! response head could not be (the client side).

use std::fmt;

/// A request that cannot be served; the connection should answer with [`ParseError::status`]
/// and then be closed, since the stream can no longer be framed reliably.
///
/// "Need more bytes" is not an error: it is [`crate::Parsed::Partial`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Syntax error, bad target, or invalid/conflicting `Content-Length` (400).
    Malformed,
    /// The header block did not end within `max_header_bytes` (431).
    HeadersTooLarge,
    /// More header fields than `max_headers` (431).
    TooManyHeaders,
    /// `Content-Length` exceeds `max_body` (413).
    BodyTooLarge,
    /// `POST`/`PUT`/`PATCH` without `Content-Length` (411).
    LengthRequired,
    /// An HTTP version other than 1.0 or 1.1 (505).
    UnsupportedVersion,
    /// A `Transfer-Encoding` header: chunked bodies are not accepted (501).
    NotImplemented,
}

impl ParseError {
    /// The HTTP status code to answer with.
    ///
    /// ```
    /// use matchstream_http::ParseError;
    /// assert_eq!(ParseError::BodyTooLarge.status(), 413);
    /// ```
    pub fn status(self) -> u16 {
        match self {
            ParseError::Malformed => 400,
            ParseError::HeadersTooLarge | ParseError::TooManyHeaders => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::LengthRequired => 411,
            ParseError::UnsupportedVersion => 505,
            ParseError::NotImplemented => 501,
        }
    }

    /// A short lowercase description, suitable as an error response body.
    pub fn reason(self) -> &'static str {
        match self {
            ParseError::Malformed => "malformed request",
            ParseError::HeadersTooLarge => "headers too large",
            ParseError::TooManyHeaders => "too many headers",
            ParseError::BodyTooLarge => "body too large",
            ParseError::LengthRequired => "length required",
            ParseError::UnsupportedVersion => "http version not supported",
            ParseError::NotImplemented => "transfer-encoding not supported",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ParseError {}

/// A response head that cannot be read, so the connection cannot be framed any further: the
/// client should give up on the connection (and say why).
///
/// "Need more bytes" is not an error: it is [`crate::ParsedHead::Partial`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Not an HTTP/1.0 or HTTP/1.1 status line and header block.
    Malformed,
    /// The head did not end within `max_head_bytes`.
    HeadTooLarge,
    /// More header fields than [`crate::request::MAX_HEADERS_CAP`].
    TooManyHeaders,
    /// An invalid `Content-Length`, or several that disagree.
    BadContentLength,
    /// `Content-Length` exceeds `max_body`.
    BodyTooLarge,
    /// A `Transfer-Encoding` header: chunked bodies are not accepted (the API never sends
    /// them).
    TransferEncoding,
}

impl ResponseError {
    /// A short lowercase description, for an error message.
    ///
    /// ```
    /// use matchstream_http::ResponseError;
    /// assert_eq!(ResponseError::HeadTooLarge.reason(), "response head too large");
    /// ```
    pub fn reason(self) -> &'static str {
        match self {
            ResponseError::Malformed => "malformed response",
            ResponseError::HeadTooLarge => "response head too large",
            ResponseError::TooManyHeaders => "too many response headers",
            ResponseError::BadContentLength => "bad or conflicting Content-Length",
            ResponseError::BodyTooLarge => "response body too large",
            ResponseError::TransferEncoding => {
                "unsupported Transfer-Encoding (chunked bodies are not accepted)"
            }
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ResponseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_reason_per_variant() {
        let cases = [
            (ParseError::Malformed, 400, "malformed request"),
            (ParseError::HeadersTooLarge, 431, "headers too large"),
            (ParseError::TooManyHeaders, 431, "too many headers"),
            (ParseError::BodyTooLarge, 413, "body too large"),
            (ParseError::LengthRequired, 411, "length required"),
            (
                ParseError::UnsupportedVersion,
                505,
                "http version not supported",
            ),
            (
                ParseError::NotImplemented,
                501,
                "transfer-encoding not supported",
            ),
        ];
        for (err, status, reason) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.reason(), reason, "{err:?}");
            assert_eq!(err.to_string(), reason, "{err:?}");
        }
    }

    #[test]
    fn response_reasons_per_variant() {
        let cases = [
            (ResponseError::Malformed, "malformed response"),
            (ResponseError::HeadTooLarge, "response head too large"),
            (ResponseError::TooManyHeaders, "too many response headers"),
            (
                ResponseError::BadContentLength,
                "bad or conflicting Content-Length",
            ),
            (ResponseError::BodyTooLarge, "response body too large"),
            (
                ResponseError::TransferEncoding,
                "unsupported Transfer-Encoding (chunked bodies are not accepted)",
            ),
        ];
        for (err, reason) in cases {
            assert_eq!(err.reason(), reason, "{err:?}");
            assert_eq!(err.to_string(), reason, "{err:?}");
        }
    }
}
