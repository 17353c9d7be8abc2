//! Interpretation of the few header fields the parsers care about: those that frame a message
//! (length, transfer coding, connection), for requests and responses alike, and a request's
//! authorization, content type and `Last-Event-ID` (an event stream's resume point).

use crate::error::ParseError;

/// The header fields the parser interprets; every other field is ignored.
#[derive(Default)]
pub(crate) struct Fields {
    pub(crate) content_length: Option<u64>,
    pub(crate) transfer_encoding: bool,
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
    pub(crate) authorization: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) last_event_id: Option<String>,
}

impl Fields {
    /// Folds one header field of a request into the summary; errors on invalid or
    /// conflicting values.
    pub(crate) fn record(&mut self, name: &str, value: &[u8]) -> Result<(), ParseError> {
        if self.record_framing(name, value)? {
            return Ok(());
        }
        if name.eq_ignore_ascii_case("authorization") {
            set_once(&mut self.authorization, value)?;
        } else if name.eq_ignore_ascii_case("content-type") {
            set_once(&mut self.content_type, value)?;
        } else if name.eq_ignore_ascii_case("last-event-id") {
            set_once(&mut self.last_event_id, value)?;
        }
        Ok(())
    }

    /// Folds one of the fields that frame a message (`Content-Length`, `Transfer-Encoding`,
    /// `Connection`), the same for requests and responses: `Ok(false)` for any other field.
    /// The only error is an invalid or conflicting `Content-Length`.
    pub(crate) fn record_framing(&mut self, name: &str, value: &[u8]) -> Result<bool, ParseError> {
        if name.eq_ignore_ascii_case("content-length") {
            let len = parse_content_length(value)?;
            if self.content_length.is_some_and(|prev| prev != len) {
                return Err(ParseError::Malformed);
            }
            self.content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            self.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|b| *b == b',').map(trim_ows) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

/// Stores a singleton field's value; a second occurrence is ambiguous and thus malformed.
fn set_once(slot: &mut Option<String>, value: &[u8]) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::Malformed);
    }
    *slot = Some(String::from_utf8_lossy(value).into_owned());
    Ok(())
}

/// Parses a `Content-Length` value: ASCII digits only, or a comma-separated list of identical
/// such values (RFC 9110 §8.6). Absurdly large values saturate so they report as too large.
fn parse_content_length(value: &[u8]) -> Result<u64, ParseError> {
    let mut result = None;
    for part in value.split(|b| *b == b',').map(trim_ows) {
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::Malformed);
        }
        let len = part.iter().fold(0u64, |acc, d| {
            acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        if result.is_some_and(|prev| prev != len) {
            return Err(ParseError::Malformed);
        }
        result = Some(len);
    }
    result.ok_or(ParseError::Malformed)
}

/// Strips optional whitespace (spaces and tabs) around a list element.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// httparse reports any bad version token the same way; tell "HTTP/2.0" (505) from junk (400).
/// `None` while the request line has not ended: the bytes still to come could change the
/// token, and the answer must not depend on where a read ended.
pub(crate) fn version_error(window: &[u8]) -> Option<ParseError> {
    let line_end = window.iter().position(|b| *b == b'\r' || *b == b'\n')?;
    let line = &window[..line_end];
    let token = line.rsplit(|b| *b == b' ').next().unwrap_or_default();
    Some(match token.strip_prefix(b"HTTP/") {
        Some([major, b'.', minor]) if major.is_ascii_digit() && minor.is_ascii_digit() => {
            ParseError::UnsupportedVersion
        }
        Some([major]) if major.is_ascii_digit() => ParseError::UnsupportedVersion,
        _ => ParseError::Malformed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_values() {
        let cases: [(&str, &[u8], Result<u64, ParseError>); 10] = [
            ("zero", b"0", Ok(0)),
            ("plain", b"42", Ok(42)),
            ("leading zeros", b"007", Ok(7)),
            ("identical list", b"5, 5,5", Ok(5)),
            (
                "saturates when huge",
                b"99999999999999999999999999",
                Ok(u64::MAX),
            ),
            ("empty", b"", Err(ParseError::Malformed)),
            ("sign", b"+5", Err(ParseError::Malformed)),
            ("negative", b"-1", Err(ParseError::Malformed)),
            ("inner space", b"5 5", Err(ParseError::Malformed)),
            ("conflicting list", b"5, 6", Err(ParseError::Malformed)),
        ];
        for (name, value, expected) in cases {
            assert_eq!(parse_content_length(value), expected, "{name}");
        }
    }

    #[test]
    fn connection_tokens() {
        let cases: [(&str, &[&[u8]], bool, bool); 5] = [
            ("close", &[b"close"], true, false),
            ("keep-alive any case", &[b"Keep-Alive"], false, true),
            ("list with ows", &[b"upgrade ,\tclose"], true, false),
            ("both across fields", &[b"keep-alive", b"close"], true, true),
            ("unrelated token", &[b"closed"], false, false),
        ];
        for (name, values, close, keep_alive) in cases {
            let mut fields = Fields::default();
            for value in values {
                assert_eq!(fields.record("Connection", value), Ok(()), "{name}");
            }
            assert_eq!(
                (fields.close, fields.keep_alive),
                (close, keep_alive),
                "{name}"
            );
        }
    }

    #[test]
    fn singleton_fields_reject_repeats() {
        for name in ["Authorization", "content-type"] {
            let mut fields = Fields::default();
            assert_eq!(fields.record(name, b"a"), Ok(()), "{name}");
            assert_eq!(
                fields.record(name, b"a"),
                Err(ParseError::Malformed),
                "{name}"
            );
        }
    }

    #[test]
    fn version_tokens() {
        let cases: [(&str, &[u8], ParseError); 9] = [
            (
                "http 2.0",
                b"GET / HTTP/2.0\r\n",
                ParseError::UnsupportedVersion,
            ),
            (
                "http 0.9",
                b"GET / HTTP/0.9\r\n",
                ParseError::UnsupportedVersion,
            ),
            (
                "http 2",
                b"GET / HTTP/2\r\n",
                ParseError::UnsupportedVersion,
            ),
            ("junk protocol", b"GET / FOO/1.1\r\n", ParseError::Malformed),
            ("junk version", b"GET / HTTP/one\r\n", ParseError::Malformed),
            // One character where a digit belongs is junk too, whichever the character.
            (
                "letter for the major",
                b"GET / HTTP/x.1\r\n",
                ParseError::Malformed,
            ),
            (
                "letter for the minor",
                b"GET / HTTP/1.x\r\n",
                ParseError::Malformed,
            ),
            ("letter alone", b"GET / HTTP/x\r\n", ParseError::Malformed),
            (
                "ended by a cr alone",
                b"GET / HTTP/2\r",
                ParseError::UnsupportedVersion,
            ),
        ];
        for (name, line, expected) in cases {
            assert_eq!(version_error(line), Some(expected), "{name}");
        }
        assert_eq!(version_error(b"GET / HTTP/2"), None, "line not ended");
    }

    #[test]
    fn trims_optional_whitespace() {
        let cases: [(&str, &[u8], &[u8]); 4] = [
            ("none", b"a", b"a"),
            ("both sides", b" \ta b\t ", b"a b"),
            ("all blank", b" \t ", b""),
            ("empty", b"", b""),
        ];
        for (name, input, expected) in cases {
            assert_eq!(trim_ows(input), expected, "{name}");
        }
    }
}
