//! Query strings and percent-decoding (`since=5&name=a%20b`).

/// Looks up one key in a query string (`"since=5&x=y"`), percent-decoded (`'+'` as space).
/// None when absent.
///
/// Keys are compared after decoding; the first occurrence wins; a pair without `'='` has an
/// empty value. A value with an invalid escape or invalid UTF-8 also gives None.
///
/// ```
/// use matchstream_http::query::query_param;
/// assert_eq!(query_param("since=5&name=a+b%21", "name").as_deref(), Some("a b!"));
/// assert_eq!(query_param("since=5", "until"), None);
/// ```
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| decode(k, true).is_some_and(|k| k == key))
        .and_then(|(_, v)| decode(v, true))
}

/// Decodes `%XX` escapes (`'+'` stays `'+'`, as in paths). None on invalid escapes or
/// invalid UTF-8.
///
/// ```
/// use matchstream_http::query::percent_decode;
/// assert_eq!(percent_decode("caf%C3%A9+au%20lait").as_deref(), Some("café+au lait"));
/// assert_eq!(percent_decode("100%"), None);
/// ```
pub fn percent_decode(s: &str) -> Option<String> {
    decode(s, false)
}

fn decode(s: &str, plus_as_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        let cases = [
            ("plain", "abc", Some("abc")),
            ("empty", "", Some("")),
            ("space", "a%20b", Some("a b")),
            ("lowercase hex", "%2f%2F", Some("//")),
            ("plus kept", "a+b", Some("a+b")),
            ("utf-8 sequence", "%E2%82%AC", Some("€")),
            ("escaped percent", "100%25", Some("100%")),
            ("truncated escape", "a%2", None),
            ("lone percent", "%", None),
            ("non-hex escape", "%zz", None),
            ("invalid utf-8", "%FF", None),
            ("split utf-8 sequence", "%E2%82", None),
        ];
        for (name, input, expected) in cases {
            assert_eq!(percent_decode(input).as_deref(), expected, "{name}");
        }
    }

    #[test]
    fn query_lookup() {
        let cases = [
            ("single", "since=5", "since", Some("5")),
            ("among others", "a=1&since=7&b=2", "since", Some("7")),
            ("absent", "a=1&b=2", "since", None),
            ("empty query", "", "since", None),
            ("first occurrence wins", "x=1&x=2", "x", Some("1")),
            ("no equals sign", "flag&b=2", "flag", Some("")),
            ("empty value", "a=", "a", Some("")),
            ("plus is space", "q=hello+world", "q", Some("hello world")),
            ("percent in value", "q=a%26b%3Dc", "q", Some("a&b=c")),
            ("encoded key", "my%20key=v", "my key", Some("v")),
            ("prefix key is not a match", "sincere=1", "since", None),
            ("empty pairs skipped", "&&a=1&", "a", Some("1")),
            ("equals in value", "a=b=c", "a", Some("b=c")),
            ("invalid value escape", "a=%zz", "a", None),
        ];
        for (name, query, key, expected) in cases {
            assert_eq!(query_param(query, key).as_deref(), expected, "{name}");
        }
    }
}
