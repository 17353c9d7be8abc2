//! The bytes of one API request: what [`crate::HttpClient`] sends, and what the bench's
//! non-blocking load loops write for their checkins, GETs and publishes.

use std::io::Write as _;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("matchstream/", env!("CARGO_PKG_VERSION"));

/// Appends an HTTP/1.1 request. `body` is sent as `Content-Type: application/json` with its
/// `Content-Length`; `token` as a bearer `Authorization`; `keep_alive = false` adds
/// `Connection: close`. `host` is the `Host` header's value, `path` the whole target.
///
/// ```
/// let mut out = Vec::new();
/// matchstream_client::write_request("GET", "h:1", "/1/checkin", None, None, false, &mut out);
/// let text = String::from_utf8(out).expect("ascii");
/// assert!(text.starts_with("GET /1/checkin HTTP/1.1\r\nHost: h:1\r\n"));
/// assert!(text.ends_with("Connection: close\r\n\r\n"));
/// ```
pub fn write_request(
    method: &str,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    keep_alive: bool,
    out: &mut Vec<u8>,
) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A case: its name, the token, the body, keep-alive, the bytes expected.
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static [u8]>,
        bool,
        &'static str,
    );

    #[test]
    fn requests_carry_token_body_and_close() {
        let cases: [Case; 3] = [
            (
                "post with token, closing",
                Some("T"),
                Some(b"{}"),
                false,
                "POST /p HTTP/1.1\r\nHost: h:1\r\nUser-Agent: matchstream/0.1.0\r\n\
                 Authorization: Bearer T\r\nContent-Type: application/json\r\n\
                 Content-Length: 2\r\nConnection: close\r\n\r\n{}",
            ),
            (
                "bare, kept alive",
                None,
                None,
                true,
                "POST /p HTTP/1.1\r\nHost: h:1\r\nUser-Agent: matchstream/0.1.0\r\n\r\n",
            ),
            (
                "empty body still has a length",
                None,
                Some(b""),
                true,
                "POST /p HTTP/1.1\r\nHost: h:1\r\nUser-Agent: matchstream/0.1.0\r\n\
                 Content-Type: application/json\r\nContent-Length: 0\r\n\r\n",
            ),
        ];
        for (name, token, body, keep_alive, want) in cases {
            let mut out = Vec::new();
            write_request("POST", "h:1", "/p", token, body, keep_alive, &mut out);
            let want = want.replace("0.1.0", env!("CARGO_PKG_VERSION"));
            assert_eq!(String::from_utf8(out).expect("ascii"), want, "{name}");
        }
    }
}
