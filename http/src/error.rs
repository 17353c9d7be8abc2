//! Why a request could not be parsed, with the HTTP status each reason maps to.

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
}
