//! The examples of `docs/protocol.md` and the JSON examples of `docs/api.md`, checked against
//! the code that produces those bytes, so the docs cannot drift from the wire.
//!
//! The SSE examples of `docs/api.md` (`sse ...` blocks) are the bytes as they are: each line of
//! the block ends with `\n`, and an event's blank line is the block's last line.
//!
//! A fenced block is checked when the line before its opening fence is
//! `<!-- check: <name> -->`. Each table below says which blocks it checks and what it compares
//! them with; a marker no table knows, or a table entry whose block is gone, fails too.
//! (`docs/api.md`'s `http ...` blocks, whole requests and answers, are checked against a
//! running server by `engine/tests/docs.rs`.)
//!
//! The examples come from the sample match (`protocol/scripts/elp-tig.match`), played
//! through the same validation and state transitions as the store's (`support/sample.rs`),
//! with the timestamps a watcher keeping the script's pace from 2011-09-13 13:48:47 UTC
//! would get.

#[path = "support/doc_blocks.rs"]
mod doc_blocks;
#[path = "support/sample.rs"]
mod sample;

use std::collections::BTreeMap;

use doc_blocks::checked_blocks;

use matchstream_protocol::api::{
    match_body, parse_new_match, parse_posted_event, stored_event_body, write_history,
};
use matchstream_protocol::command::{find_line, parse_command, Command, CommandError};
use matchstream_protocol::frame::{render_error, render_event, render_status, Version};
use matchstream_protocol::sse;
use matchstream_protocol::state::validate;
use matchstream_protocol::{Event, Incarnation};
use sample::{play as play_sample, INCARNATION};

const PROTOCOL: &str = include_str!("../../docs/protocol.md");
const API: &str = include_str!("../../docs/api.md");

/// A frame the doc shows.
enum Frame {
    /// The status frame of the match after the event with this seq (0: as created).
    Status(u64, Version),
    /// The frame of the event with this seq.
    Event(u64, Version),
}

/// `docs/protocol.md`: the frame examples.
const FRAMES: [(&str, Frame); 10] = [
    ("frame status-after-start-v1", Frame::Status(1, Version::V1)),
    ("frame status-after-start-v2", Frame::Status(1, Version::V2)),
    ("frame goal-v1", Frame::Event(2, Version::V1)),
    ("frame goal-v2", Frame::Event(2, Version::V2)),
    ("frame red-card-v1", Frame::Event(4, Version::V1)),
    ("frame substitution-v1", Frame::Event(5, Version::V1)),
    ("frame comment-v1", Frame::Event(16, Version::V1)),
    ("frame halftime-start-v2", Frame::Event(17, Version::V2)),
    ("frame own-goal-v1", Frame::Event(19, Version::V1)),
    ("frame stop-v1", Frame::Event(30, Version::V1)),
];

/// What a JSON block of `docs/api.md` is.
enum Json {
    /// `GET /1/match/<id>` after the event with this seq.
    Match(u64),
    /// `GET /1/match/<id>/history?since=<since>` after the event with seq `upto`.
    History { since: u64, upto: u64 },
    /// The 201 body answering the event with this seq.
    StoredEvent(u64),
    /// A `POST /1/matches` body the server accepts.
    CreateRequest,
    /// A `POST /1/match/<id>/events` body the server accepts once the match has started.
    EventRequest,
}

/// `docs/api.md`: the JSON examples (compared without the whitespace between tokens).
const JSON: [(&str, Json); 5] = [
    ("json match", Json::Match(7)),
    ("json history-since-5", Json::History { since: 5, upto: 7 }),
    ("json event-response", Json::StoredEvent(2)),
    ("json create-request", Json::CreateRequest),
    ("json event-request", Json::EventRequest),
];

/// What an SSE block of `docs/api.md` is.
enum Sse {
    /// The event with this seq.
    Event(u64),
    /// A stream's last words with this reason.
    Error(&'static str),
    /// The keep-alive comment.
    KeepAlive,
}

/// `docs/api.md`: the SSE examples.
const SSE: [(&str, Sse); 4] = [
    ("sse goal", Sse::Event(2)),
    ("sse stop", Sse::Event(30)),
    ("sse too-slow", Sse::Error("too slow")),
    ("sse keepalive", Sse::KeepAlive),
];

#[test]
fn api_sse_examples_are_what_the_server_renders() {
    let blocks = checked_blocks(API, "sse ");
    assert_same_names(&blocks, SSE.iter().map(|(name, _)| *name), "docs/api.md");
    let (_, events) = play_sample();
    for (name, kind) in &SSE {
        let mut bytes = Vec::new();
        match *kind {
            Sse::Event(seq) => sse::render_event(&events[idx(seq) - 1], &mut bytes),
            Sse::Error(reason) => sse::render_error(reason, &mut bytes),
            Sse::KeepAlive => bytes.extend_from_slice(sse::KEEPALIVE),
        }
        assert_eq!(
            blocks[*name],
            String::from_utf8(bytes).expect("UTF-8"),
            "docs/api.md block {name:?}"
        );
    }
}

#[test]
fn protocol_frame_examples_are_what_the_server_renders() {
    let blocks = checked_blocks(PROTOCOL, "frame ");
    assert_same_names(
        &blocks,
        FRAMES.iter().map(|(name, _)| *name),
        "docs/protocol.md",
    );
    let (states, events) = play_sample();
    for (name, frame) in &FRAMES {
        let mut bytes = Vec::new();
        match *frame {
            Frame::Status(after, version) => {
                render_status(&states[idx(after)], version, &mut bytes)
            }
            Frame::Event(seq, version) => render_event(&events[idx(seq) - 1], version, &mut bytes),
        }
        assert_eq!(
            blocks[*name],
            notation(&bytes),
            "docs/protocol.md block {name:?}"
        );
    }
}

#[test]
fn protocol_command_lines_parse() {
    let blocks = checked_blocks(PROTOCOL, "command");
    let incarnation = Incarnation::parse(INCARNATION).ok();
    let want = [
        (Version::V1, None, None),
        (Version::V2, None, None),
        (Version::V2, Some(7), None),
        (Version::V2, Some(7), incarnation),
    ];
    assert_same_names(&blocks, ["command-lines"], "docs/protocol.md");
    let lines: Vec<&str> = blocks["command-lines"].lines().collect();
    assert_eq!(
        lines.len(),
        want.len(),
        "docs/protocol.md block command-lines"
    );
    for (line, (version, since, incarnation)) in lines.into_iter().zip(want) {
        let bytes = unescape(line);
        assert_eq!(find_line(&bytes), Ok(Some(bytes.len())), "{line}");
        let expected = Command {
            version,
            user_id: "ana".into(),
            match_id: "elp-tig-2011-09-10".into(),
            since,
            incarnation,
        };
        assert_eq!(parse_command(&bytes), Ok(expected), "{line}");
    }
}

/// A command line that the parser refuses with `error`. The match makes this table grow with
/// the enum: a new variant does not compile until it has a line here (and in the doc).
fn refused_line(error: CommandError) -> Vec<u8> {
    match error {
        CommandError::Malformed => b"VERSION:1:CONNECT:ana:MATC:elp-tig-2011-09-10\r\n".to_vec(),
        CommandError::UnknownCommand => b"HELLO\r\n".to_vec(),
        CommandError::UnsupportedVersion => b"VERSION:3:CONNECT:ana:MATCH:m\r\n".to_vec(),
        CommandError::BadUserId => b"VERSION:1:CONNECT:a b:MATCH:m\r\n".to_vec(),
        CommandError::SinceNeedsV2 => b"VERSION:1:CONNECT:ana:MATCH:m:SINCE:3\r\n".to_vec(),
        CommandError::TooLong => vec![b'x'; 1024],
    }
}

#[test]
fn protocol_error_table_lists_every_command_error_as_sent() {
    use CommandError::*;
    let documented = documented_error_lines(PROTOCOL);
    for error in [
        Malformed,
        UnknownCommand,
        UnsupportedVersion,
        BadUserId,
        SinceNeedsV2,
        TooLong,
    ] {
        let line = refused_line(error);
        let got = find_line(&line).and_then(|_| parse_command(&line));
        assert_eq!(got, Err(error), "{:?}", String::from_utf8_lossy(&line));
        let mut sent = Vec::new();
        render_error(error.reason(), &mut sent);
        let sent = notation(&sent);
        let sent = sent.trim_end();
        assert!(
            documented.iter().any(|d| d == sent),
            "docs/protocol.md's error table lacks `{sent}`; it lists {documented:?}"
        );
    }
    // Every documented line is an error line as `render_error` writes it.
    for line in &documented {
        let reason = line
            .strip_prefix("ERROR: ")
            .and_then(|l| l.strip_suffix("\\r\\n"))
            .unwrap_or_else(|| panic!("not an error line: {line}"));
        let mut sent = Vec::new();
        render_error(reason, &mut sent);
        assert_eq!(notation(&sent).trim_end(), line);
    }
}

#[test]
fn api_json_examples_are_what_the_server_writes_and_accepts() {
    let blocks = checked_blocks(API, "json ");
    assert_same_names(&blocks, JSON.iter().map(|(name, _)| *name), "docs/api.md");
    let (states, events) = play_sample();
    for (name, kind) in &JSON {
        let block = &blocks[*name];
        let written = match *kind {
            Json::Match(after) => match_body(&states[idx(after)]),
            Json::History { since, upto } => {
                let shown: Vec<&Event> = events[idx(since)..idx(upto)].iter().collect();
                let mut out = Vec::new();
                write_history(&shown, &mut out);
                out
            }
            Json::StoredEvent(seq) => stored_event_body(&events[idx(seq) - 1]),
            Json::CreateRequest => {
                let parsed = parse_new_match(block.as_bytes());
                assert!(parsed.is_ok(), "docs/api.md block {name:?}: {parsed:?}");
                continue;
            }
            Json::EventRequest => {
                let posted = parse_posted_event(block.as_bytes())
                    .unwrap_or_else(|e| panic!("docs/api.md block {name:?}: {e}"));
                let valid = validate(&states[1], &posted);
                assert!(valid.is_ok(), "docs/api.md block {name:?}: {valid:?}");
                continue;
            }
        };
        let written = String::from_utf8(written).expect("JSON is UTF-8");
        assert_eq!(minify(block), written, "docs/api.md block {name:?}");
    }
}

fn idx(seq: u64) -> usize {
    usize::try_from(seq).expect("small seq")
}

fn assert_same_names<'a>(
    blocks: &BTreeMap<String, String>,
    names: impl IntoIterator<Item = &'a str>,
    doc: &str,
) {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    let found: Vec<&str> = blocks.keys().map(String::as_str).collect();
    assert_eq!(found, names, "{doc}: checked blocks vs. the test's table");
}

/// The doc's notation of bytes: `\t`, `\r`, `\n` spelt out, a line break after each `\n`.
fn notation(bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes).expect("frames are UTF-8");
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n\n"),
            c => out.push(c),
        }
    }
    out
}

/// The bytes one line of the notation stands for.
fn unescape(line: &str) -> Vec<u8> {
    line.replace("\\t", "\t")
        .replace("\\r", "\r")
        .replace("\\n", "\n")
        .into_bytes()
}

/// The error lines (`ERROR: ...\r\n`, in the notation) in the table of `doc`'s Errors section.
fn documented_error_lines(doc: &str) -> Vec<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `ERROR: "))
        .filter_map(|l| l.split_once('`'))
        .map(|(reason, _)| format!("ERROR: {reason}"))
        .collect()
}

/// `json` without the whitespace between its tokens (strings kept as they are).
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}
