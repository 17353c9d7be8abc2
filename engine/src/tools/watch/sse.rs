//! `watch --sse`: the match's event stream on the API port (`GET /1/match/<id>/stream`,
//! docs/api.md), read as a browser's `EventSource` reads it: the response head, then blocks
//! ([`parse_block`]); a resume sends `Last-Event-ID`, and a 204 means the match ended with
//! nothing after it. The stream's keep-alive comments make a silent connection detectable: one
//! that brings nothing for [`SILENCE`] counts as lost.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, Context};
use matchstream_client::{connect, Url};
use matchstream_http::{parse_response_head, Framing, ParsedHead, ResponseLimits};
use matchstream_protocol::api::{parse_event_json, parse_match_json};
use matchstream_protocol::sse::{parse_block, Block, SseEvent};
use matchstream_protocol::MatchId;

use super::view::{Happening, Status, Who};
use super::{Ending, Failure, Item, Sink, MAX_FRAME};

/// How long a stream may bring nothing, keep-alives included (every 15 s by default), before
/// it counts as lost.
pub const SILENCE: Duration = Duration::from_secs(60);

/// One connection: the request (with `Last-Event-ID` after the sink's last seq), the head,
/// the events into `sink` until the end.
pub fn session(url: &Url, id: &MatchId, sink: &mut Sink<impl Write>) -> Result<Ending, Failure> {
    let mut stream = connect(&url.authority()).map_err(Failure::Lost)?;
    stream.set_read_timeout(Some(SILENCE)).map_err(lost)?;
    let mut request = format!(
        "GET {}/1/match/{id}/stream HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
        url.prefix(),
        url.host_header()
    );
    if let Some(seq) = sink.last_seq {
        request.push_str(&format!("Last-Event-ID: {seq}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(lost)?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let head = loop {
        match parse_response_head(&buf, &ResponseLimits::default()) {
            Ok(ParsedHead::Complete(head)) => break head,
            Ok(ParsedHead::Partial) => {}
            Err(e) => return Err(Failure::Fatal(anyhow!("a bad answer: {e}"))),
        }
        if read_more(&mut stream, &mut buf)? == 0 {
            return Err(Failure::Lost(anyhow!("closed before answering")));
        }
    };
    match head.status {
        200 => {}
        204 => return Ok(Ending::NoContent),
        status => {
            // The error's body, as long as its Content-Length says (the connection stays).
            let want = match head.framing {
                Framing::Length(n) => head.len + n.min(MAX_FRAME),
                Framing::Empty | Framing::UntilClose => head.len,
            };
            while buf.len() < want && read_more(&mut stream, &mut buf).unwrap_or(0) > 0 {}
            let body = String::from_utf8_lossy(&buf[head.len..want.min(buf.len())]);
            return Err(Failure::Fatal(anyhow!("{status} {}", body.trim())));
        }
    }
    sink.opened = true;
    buf.drain(..head.len);
    read_events(&mut stream, buf, id, sink)
}

fn lost(e: std::io::Error) -> Failure {
    Failure::Lost(anyhow!(e))
}

/// Reads more of the stream onto `buf`; 0 at its end.
fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, Failure> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Failure::Lost(anyhow!(
                    "nothing for {} s, not even a keep-alive",
                    SILENCE.as_secs()
                )))
            }
            Err(e) => return Err(Failure::Lost(anyhow!(e).context("connection lost"))),
        }
    }
}

/// Reads blocks into `sink` until the server closes or sends its last words.
fn read_events(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    id: &MatchId,
    sink: &mut Sink<impl Write>,
) -> Result<Ending, Failure> {
    loop {
        while let Some((block, used)) = parse_block(&buf).map_err(|e| Failure::Fatal(e.into()))? {
            let item = match block {
                Block::Idle => Item::Other(None),
                Block::Event(e) if e.event == "error" => return Ok(Ending::Error(reason(&e))),
                Block::Event(e) => decode(&e, id).map_err(Failure::Fatal)?,
            };
            if !sink.take(&item, &buf[..used]) {
                return Ok(Ending::OutputClosed);
            }
            buf.drain(..used);
        }
        if buf.len() > MAX_FRAME {
            return Err(Failure::Fatal(anyhow!(
                "no event end within {MAX_FRAME} bytes"
            )));
        }
        if read_more(stream, &mut buf)? == 0 {
            return if buf.is_empty() {
                Ok(Ending::Closed)
            } else {
                Err(Failure::Lost(anyhow!(
                    "the server closed the connection in the middle of an event"
                )))
            };
        }
    }
}

/// The reason of an `error` event, `{"error":"too slow"}`.
fn reason(e: &SseEvent) -> String {
    serde_json::from_str::<serde_json::Value>(&e.data)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| e.data.clone())
}

/// What an event says: the status (the match JSON), or a match event (a history entry).
fn decode(e: &SseEvent, id: &MatchId) -> anyhow::Result<Item> {
    let seq = e.id.as_deref().and_then(|s| s.parse().ok());
    let json: serde_json::Value = serde_json::from_str(&e.data)
        .with_context(|| format!("event {:?} holds no JSON: {:?}", e.event, e.data))?;
    if e.event == "status" {
        let m = parse_match_json(&json)?;
        return Ok(Item::Status(Status {
            seq: seq.or(Some(m.last_seq)),
            home: m.home.as_str().to_owned(),
            visit: m.visit.as_str().to_owned(),
            home_score: m.home_score,
            visit_score: m.visit_score,
            period: m.period,
        }));
    }
    let event = parse_event_json(&json, id)?;
    let who = |p: &Option<matchstream_protocol::Player>| {
        p.as_ref().map(|p| Who {
            name: p.name.clone(),
            number: p.number,
        })
    };
    let d = &event.data;
    Ok(Item::Event(Happening {
        seq: Some(event.seq),
        timestamp_ms: event.timestamp_ms,
        kind: event.kind,
        team: d.team.as_ref().map(|t| t.as_str().to_owned()),
        player_team: d.player_team.as_ref().map(|t| t.as_str().to_owned()),
        player: who(&d.player),
        player_out: who(&d.player_out),
        player_in: who(&d.player_in),
        card: d.card,
        comment: d.comment.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchstream_protocol::{sse, EventKind, Period};

    fn event(bytes: &[u8]) -> SseEvent {
        match parse_block(bytes) {
            Ok(Some((Block::Event(e), n))) if n == bytes.len() => e,
            other => panic!("one event expected: {other:?}"),
        }
    }

    #[test]
    fn events_decode_to_what_was_rendered() {
        let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
        let mut bytes = Vec::new();
        sse::render_error("too slow", &mut bytes);
        assert_eq!(reason(&event(&bytes)), "too slow");
        let goal = r#"{"seq":2,"timestamp":1315921731000,"kind":"goal","data":{"player":{"number":7,"name":"Luna"},"team":"tig","player_team":"elp"}}"#;
        let block = format!("id: 2\nevent: goal\ndata: {goal}\n\n");
        let Item::Event(h) = decode(&event(block.as_bytes()), &id).expect("decodes") else {
            panic!("an event")
        };
        assert_eq!(
            h,
            Happening {
                seq: Some(2),
                team: Some("tig".into()),
                player_team: Some("elp".into()),
                player: Some(Who {
                    name: "Luna".into(),
                    number: 7
                }),
                ..Happening::new(EventKind::Goal, 1_315_921_731_000)
            }
        );
        let status = r#"{"id":"elp-tig-2011-09-10","home":"elp","visit":"tig","start_date":"2011-09-10","stadium":null,"home_players":[],"visit_players":[],"home_score":1,"visit_score":2,"period":"last","last_seq":9,"updated":1315921731000}"#;
        let block = format!("id: 9\nevent: status\ndata: {status}\n\n");
        assert_eq!(
            decode(&event(block.as_bytes()), &id).expect("decodes"),
            Item::Status(Status {
                seq: Some(9),
                home: "elp".into(),
                visit: "tig".into(),
                home_score: 1,
                visit_score: 2,
                period: Period::Last,
            })
        );
        assert!(decode(&event(b"event: goal\ndata: nope\n\n"), &id).is_err());
    }
}
