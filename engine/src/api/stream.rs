//! `GET /1/match/<id>/stream`: a match's events as server-sent events (SPEC §8), for browsers,
//! on the API port.
//!
//! An SSE subscriber is a subscriber like those of the stream ports: once its request is
//! accepted, the connection leaves the API's request loop for good, and its socket moves into
//! an [`Outbox`] in the core's fanout table exactly as a stream port's handshake hands it over
//! ([`crate::session`]): the same shared frames (the SSE rendering of an event is made once per
//! core, when the first SSE subscriber needs it), the same non-blocking vectored writes, the
//! same slow-consumer bound (`--max-queue`) and the same resume backlog in bounded pieces
//! ([`crate::replay`]). Only the bytes differ ([`Encoding::Sse`]): the status and events of
//! [`matchstream_protocol::sse`], and last words as an `error` event.
//!
//! Policy, enforced here and in [`open`]:
//! - unknown match: 404 JSON, a bad `Last-Event-ID` or `since`: 400, before any stream;
//! - a resume point (`Last-Event-ID`, which wins, else `?since=`) replaces the status by every
//!   stored event after it, like v2 `SINCE`; an ended match with nothing after it answers
//!   `204 No Content`, the answer that makes a browser's `EventSource` stop reconnecting;
//! - the stream's head has no `Content-Length` and says `Connection: close`: the body ends
//!   when the server closes, after `stop` or the last words;
//! - a stream that has had nothing sent for `--sse-keepalive-ms` gets a comment line at the
//!   core's next sweep ([`crate::fanout::Fanout::sweep`]); no timer per subscriber.

use std::os::unix::io::AsRawFd;
use std::rc::Rc;

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use matchstream_http::{query_param, Request, Response};
use matchstream_protocol::encoding::Encoding;
use matchstream_protocol::sse;
use matchstream_protocol::Period;

use super::{error, read};
use crate::drain;
use crate::outbox::send_now;
use crate::replay::{self, Next};
use crate::shard::{JoinError, Shard};

/// An accepted stream request: what [`run`] subscribes the connection to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The match.
    pub match_id: String,
    /// Resume after this seq (no status), or start with the status.
    pub since: Option<u64>,
}

/// The head of a stream: 200, `text/event-stream`, never cached, readable from any origin;
/// written by [`Response::write_head_until_close`] (no `Content-Length`, `Connection: close`).
pub fn head() -> Response {
    let mut head = read(Response::new(200)).with_header("Cache-Control", "no-cache");
    head.content_type = Some(sse::CONTENT_TYPE);
    head
}

/// Decides a stream request: the plan of the stream, or the answer that replaces it (400 for
/// a bad resume point, 404 for an unknown match, 204 for an ended match with nothing after the
/// resume point). Reads the core's latest state.
pub fn open(shard: &Shard, id: &str, req: &Request) -> Result<Plan, Response> {
    let since = match resume_point(req) {
        Ok(since) => since,
        Err(reason) => return Err(read(error(400, reason))),
    };
    shard.sync();
    let fanout = shard.fanout.borrow();
    let Some(view) = fanout.get(id) else {
        return Err(read(error(404, "unknown match")));
    };
    if let Some(seq) = since {
        if view.state.period == Period::Ended && view.since(seq).is_empty() {
            return Err(read(Response::new(204)));
        }
    }
    Ok(Plan {
        match_id: id.to_owned(),
        since,
    })
}

/// Where a request resumes: its `Last-Event-ID` header (what a reconnecting `EventSource`
/// sends; an empty one counts as absent), else its `since` parameter; `None` to start with the
/// status. The reason of the 400 for one that is not a decimal seq.
fn resume_point(req: &Request) -> Result<Option<u64>, &'static str> {
    if let Some(id) = req.last_event_id.as_deref().map(str::trim) {
        if !id.is_empty() {
            return id
                .parse()
                .map(Some)
                .map_err(|_| "Last-Event-ID must be a non-negative integer");
        }
    }
    match req.query.as_deref().and_then(|q| query_param(q, "since")) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| "since must be a non-negative integer"),
    }
}

/// Runs an accepted stream request: writes `pending` (the answers to the requests before it
/// and the stream's head) as any answer is written, the resume backlog if there is one, then
/// hands the socket to an outbox in the fanout table and returns: from then on the fanout
/// writes to it, and a tend task comes back only for a full socket or last words.
pub async fn run(shard: Rc<Shard>, mut stream: TcpStream, plan: Plan, pending: Vec<u8>) {
    // A subscriber from now on: found dead like a stream port's (the API port leaves it out).
    crate::listener::watch_for_dead_peer(&stream, shard.core, "sse");
    if stream.write_all(&pending).await.is_err() {
        return;
    }
    drop(pending);
    let encoding = Encoding::Sse;
    // The backlog, piece by piece (boxed: most streams have none); it returns with at most one
    // piece left, which the subscription queues. The stream's write timeout still holds: a
    // client that takes none of a piece for --http-write-timeout-ms is let go.
    let backlog = replay::send_backlog(&shard, &mut stream, &plan.match_id, encoding, plan.since);
    let Next::Subscribe(since) = Box::pin(backlog).await else {
        return;
    };
    // The latest state (the head's write may have waited), then no await until subscribed. A
    // node that began stopping or draining meanwhile has told its subscribers already: say it
    // here (a draining node takes no new subscriber; the browser reconnects, elsewhere).
    shard.sync();
    let leaving = if shard.shutdown.is_set() {
        Some("server shutting down")
    } else if shard.node.drain.is_draining() {
        Some(drain::REASON)
    } else {
        None
    };
    if let Some(reason) = leaving {
        let mut words = Vec::new();
        encoding.render_error(reason, &mut words);
        send_now(stream.as_raw_fd(), &words);
        return;
    }
    // From here on the outbox owns the socket.
    match shard.join(stream, &plan.match_id, encoding, since) {
        Ok(()) => {}
        Err(JoinError::NoDescriptor(stream)) => {
            let mut words = Vec::new();
            encoding.render_error("server out of file descriptors", &mut words);
            send_now(stream.as_raw_fd(), &words);
            return;
        }
        Err(JoinError::Gone(outbox)) => {
            // Cancelled since the request was accepted (or during the backlog's last look: no).
            let mut words = Vec::new();
            encoding.render_error("match cancelled", &mut words);
            send_now(outbox.fd(), &words);
            return;
        }
    }
    log::debug!(target: "matchstream::api", "sse subscriber of {}", plan.match_id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchstream_http::Method;

    fn request(query: Option<&str>, last_event_id: Option<&str>) -> Request {
        Request {
            method: Method::Get,
            path: "/1/match/elp-tig-2011-09-10/stream".into(),
            query: query.map(str::to_owned),
            authorization: None,
            content_type: None,
            last_event_id: last_event_id.map(str::to_owned),
            body: Vec::new(),
            keep_alive: true,
        }
    }

    #[test]
    fn resume_points() {
        let bad_id = Err("Last-Event-ID must be a non-negative integer");
        let bad_since = Err("since must be a non-negative integer");
        #[rustfmt::skip]
        let cases = [
            ("none", None, None, Ok(None)),
            ("since", Some("since=7"), None, Ok(Some(7))),
            ("since among others", Some("x=1&since=0"), None, Ok(Some(0))),
            ("last-event-id", None, Some("12"), Ok(Some(12))),
            ("last-event-id wins over since", Some("since=3"), Some("12"), Ok(Some(12))),
            ("an empty last-event-id counts as absent", Some("since=3"), Some(""), Ok(Some(3))),
            ("bad since", Some("since=-1"), None, bad_since),
            ("empty since", Some("since="), None, bad_since),
            ("bad last-event-id", None, Some("x7"), bad_id),
        ];
        for (name, query, id, want) in cases {
            assert_eq!(resume_point(&request(query, id)), want, "{name}");
        }
    }

    #[test]
    fn the_head_has_no_length_and_closes() {
        let mut out = Vec::new();
        head().write_head_until_close(&mut out);
        assert_eq!(
            String::from_utf8(out).expect("ASCII"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
             Access-Control-Allow-Origin: *\r\nCache-Control: no-cache\r\n\
             Connection: close\r\n\r\n"
        );
    }
}
