//! What the fuzz targets share: writers that are the inverse of a parser that has none in the
//! product (command lines, requests, scripts), the HTTP session loop, and the frame shape check.
//!
//! Each writer produces the canonical text of a parsed value, so a target checks
//! `parse(write(parse(input))) == parse(input)`: whatever a parser accepts, it keeps all of.

use matchstream_http::{parse_request, Limits, ParseError, Parsed, Request};
use matchstream_protocol::command::Command;
use matchstream_protocol::script::{Script, Step};
use matchstream_protocol::{Player, PlayerRef, PostedEvent};

/// The canonical command line of `c`:
/// `VERSION:<n>:CONNECT:<user>:MATCH:<id>[:SINCE:<seq>[:INCARNATION:<incarnation>]]\r\n`.
pub fn write_command(c: &Command) -> Vec<u8> {
    let incarnation = c
        .incarnation
        .map(|i| format!(":INCARNATION:{i}"))
        .unwrap_or_default();
    let since = c
        .since
        .map(|s| format!(":SINCE:{s}{incarnation}"))
        .unwrap_or_default();
    format!(
        "VERSION:{}:CONNECT:{}:MATCH:{}{since}\r\n",
        c.version.number(),
        c.user_id,
        c.match_id
    )
    .into_bytes()
}

/// A request as a client would send it again: HTTP/1.1, the two fields the parser keeps,
/// `Content-Length` always, `Connection: close` when the request did not keep the connection.
pub fn write_request(r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(r.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(r.path.as_bytes());
    if let Some(q) = &r.query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in [
        ("Authorization", &r.authorization),
        ("Content-Type", &r.content_type),
    ] {
        if let Some(v) = value {
            out.extend_from_slice(format!("{name}: {v}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n", r.body.len()).as_bytes());
    if !r.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    out
}

/// How an HTTP session over some input ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The input ran out; these bytes are buffered, waiting for more.
    Waiting(Vec<u8>),
    /// The connection is answered with this error and closed.
    Failed(ParseError),
}

/// What a connection does with `chunks` arriving one after another: append each to its
/// buffer, then parse and drain requests while they are complete. Checks, for every request,
/// that it is made of exactly the `consumed` first bytes of the buffer.
pub fn http_session<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    limits: &Limits,
) -> (Vec<Request>, SessionEnd) {
    let mut buf = Vec::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parse_request(&buf, limits) {
                Ok(Parsed::Complete { request, consumed }) => {
                    check_complete(&buf, limits, &request, consumed);
                    buf.drain(..consumed);
                    requests.push(request);
                }
                Ok(Parsed::Partial) => break,
                Err(e) => return (requests, SessionEnd::Failed(e)),
            }
        }
    }
    (requests, SessionEnd::Waiting(buf))
}

/// A complete request: `consumed` is within the buffer, not zero, ends with the body, is
/// exactly what it needs (the same bytes alone give the same request, one byte less is
/// `Partial`), and the body respects the limit.
fn check_complete(buf: &[u8], limits: &Limits, request: &Request, consumed: usize) {
    assert!(
        consumed > 0 && consumed <= buf.len(),
        "consumed {consumed} of {}",
        buf.len()
    );
    assert!(request.body.len() <= limits.max_body, "body over max_body");
    assert_eq!(
        &buf[consumed - request.body.len()..consumed],
        &request.body[..]
    );
    assert!(request.path.starts_with('/'), "path {:?}", request.path);
    let alone = parse_request(&buf[..consumed], limits);
    assert_eq!(
        alone,
        Ok(Parsed::Complete {
            request: request.clone(),
            consumed
        }),
        "the request's own bytes parse differently"
    );
    assert_eq!(
        parse_request(&buf[..consumed - 1], limits),
        Ok(Parsed::Partial),
        "a byte short of a complete request is not Partial"
    );
}

/// The canonical text of a script: headers, then one line per step, every event value quoted.
pub fn write_script(s: &Script) -> String {
    let m = &s.new_match;
    let mut out = format!(
        "home {}\nvisit {}\ndate {}\n",
        m.home, m.visit, m.start_date
    );
    if let Some(stadium) = &m.stadium {
        out += &format!("stadium {stadium}\n");
    }
    for (word, roster) in [
        ("home_players", &m.home_players),
        ("visit_players", &m.visit_players),
    ] {
        if !roster.is_empty() {
            out += &format!("{word} {}\n", roster_text(roster));
        }
    }
    for step in &s.steps {
        match step {
            Step::Sleep(ms) => out += &format!("sleep {ms}\n"),
            Step::Event(e) => out += &event_line(e),
        }
    }
    out
}

/// `<kind> key="value" ...\n`.
fn event_line(e: &PostedEvent) -> String {
    let mut line = e.kind.as_str().to_owned();
    let mut pair = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            line += &format!(" {key}={}", quote(&v));
        }
    };
    pair("team", e.team.as_ref().map(|t| t.to_string()));
    pair("player", e.player.as_ref().map(player_ref_text));
    pair("player_team", e.player_team.as_ref().map(|t| t.to_string()));
    pair("player_in", e.player_in.as_ref().map(player_ref_text));
    pair("player_out", e.player_out.as_ref().map(player_ref_text));
    pair("card", e.card.map(|c| c.as_str().to_owned()));
    pair("comment", e.comment.clone());
    pair("home_players", e.home_players.as_deref().map(roster_text));
    pair("visit_players", e.visit_players.as_deref().map(roster_text));
    line + "\n"
}

fn player_ref_text(p: &PlayerRef) -> String {
    match p {
        PlayerRef::Number(n) => n.to_string(),
        PlayerRef::Full(p) => format!("{} {}", p.number, p.name),
    }
}

fn roster_text(players: &[Player]) -> String {
    players
        .iter()
        .map(|p| format!("{} {}", p.number, p.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `"text"` with `"` and `\` escaped.
fn quote(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A frame as SPEC §3 shapes it and a subscriber splits it: a header line, detail lines that
/// each start with a tab, and the terminator `\r\n` as the only CR, at the very end.
pub fn assert_one_frame(frame: &[u8]) {
    let body = frame
        .strip_suffix(b"\r\n")
        .unwrap_or_else(|| panic!("no terminator: {:?}", String::from_utf8_lossy(frame)));
    let text = String::from_utf8_lossy(frame);
    assert!(body.ends_with(b"\n"), "last line not ended: {text:?}");
    assert!(!body.contains(&b'\r'), "a CR inside the frame: {text:?}");
    let mut lines = body[..body.len() - 1].split(|&b| b == b'\n');
    let header = lines.next().unwrap_or_default();
    assert!(header.ends_with(b":"), "header line {text:?}");
    for line in lines {
        assert!(
            line.starts_with(b"\t"),
            "detail line without a tab: {text:?}"
        );
    }
}
