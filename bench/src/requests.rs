//! The request loop: a fixed number of client connections ("slots") on one thread (mio), each
//! with one request in flight at a time, fed by a [`Source`] that decides what to send and
//! when. `http` drives it with GETs (keep-alive or a new connection per request, as ab does
//! without `-k`); `fanout` drives it with the watcher's POSTs and the baseline's PUBLISHes.
//!
//! A request's latency runs from the moment it was started (including the connect when it
//! needs a new connection) to its complete response. A failed request is not retried: it is
//! reported to the source with its [`ErrorKind`] and the slot moves on. Bounded: each request
//! has a timeout and the loop a time limit, after which requests still in flight fail as
//! `timeout`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::net::{self, IoKind, SourceIps};
use crate::wire::http::ResponseParser;
use crate::wire::resp;

/// Longest wait in `poll`.
const TICK: Duration = Duration::from_millis(20);

/// What the source wants next from a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send the request just written.
    Send,
    /// Nothing yet: ask again at this instant.
    Wait(Instant),
    /// This slot is done.
    Done,
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status; for RESP 200 (a reply) or 500 (an error reply).
    pub status: u16,
    /// Bytes received for it.
    pub bytes: usize,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Connect refused.
    ConnectRefused,
    /// Connect not done within the request timeout.
    ConnectTimeout,
    /// Connect failed otherwise.
    ConnectError,
    /// A limit of the bench's machine (open files, ephemeral ports).
    BenchLimit,
    /// Reset by the server.
    Reset,
    /// Closed by the server before the response was complete.
    ClosedEarly,
    /// The response was not valid HTTP (or RESP).
    BadResponse,
    /// No complete response within the request timeout (or the loop's time limit).
    Timeout,
}

impl ErrorKind {
    /// The key in JSON reports.
    pub fn key(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::ConnectError => "connect_error",
            ErrorKind::BenchLimit => "bench_limit",
            ErrorKind::Reset => "reset",
            ErrorKind::ClosedEarly => "closed_early",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Timeout => "timeout",
        }
    }

    fn of_io(kind: IoKind, connecting: bool) -> ErrorKind {
        match (kind, connecting) {
            (IoKind::Refused, _) => ErrorKind::ConnectRefused,
            (IoKind::TimedOut, true) => ErrorKind::ConnectTimeout,
            (IoKind::TimedOut, false) => ErrorKind::Timeout,
            (IoKind::BenchLimit, _) => ErrorKind::BenchLimit,
            (IoKind::Reset, _) => ErrorKind::Reset,
            (IoKind::Other, true) => ErrorKind::ConnectError,
            (IoKind::Other, false) => ErrorKind::Reset,
        }
    }
}

/// Decides the requests and hears how they went.
pub trait Source {
    /// Writes the next request of `slot` into `out` (empty on entry) and says whether to send
    /// it now, later, or never.
    fn next(&mut self, slot: usize, now: Instant, out: &mut Vec<u8>) -> Next;
    /// A reply arrived for `slot`'s request.
    fn reply(&mut self, slot: usize, reply: &Reply, latency: Duration);
    /// `slot`'s request failed.
    fn error(&mut self, slot: usize, kind: ErrorKind, latency: Duration);
}

/// The wire protocol of the replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// HTTP/1.1 responses.
    Http,
    /// One-line RESP replies.
    Resp,
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server address.
    pub addr: SocketAddr,
    /// Connections (one request in flight each).
    pub slots: usize,
    /// Reuse connections; otherwise one connection per request.
    pub keep_alive: bool,
    /// Reply protocol.
    pub codec: Codec,
    /// Bound of one request (connect included).
    pub request_timeout: Duration,
    /// Bound of the whole loop.
    pub time_limit: Duration,
    /// Source addresses to rotate over.
    pub source_ips: Option<SourceIps>,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// No request; ask the source (at `Slot::wake`).
    Idle,
    Connecting,
    Writing(usize),
    Reading,
    Done,
}

struct Slot {
    stream: Option<TcpStream>,
    state: State,
    request: Vec<u8>,
    started: Instant,
    wake: Instant,
    parser: ResponseParser,
    resp_buf: Vec<u8>,
}

/// Runs until every slot is done or the time limit; returns the number of connections opened.
pub fn run(opts: &Options, source: &mut dyn Source) -> anyhow::Result<u64> {
    let start = Instant::now();
    let limit = start + opts.time_limit;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut slots: Vec<Slot> = (0..opts.slots.max(1))
        .map(|_| Slot {
            stream: None,
            state: State::Idle,
            request: Vec::new(),
            started: start,
            wake: start,
            parser: ResponseParser::new(0),
            resp_buf: Vec::new(),
        })
        .collect();
    let mut lp = Loop {
        opts,
        poll: &mut poll,
        connections: 0,
    };
    loop {
        let now = Instant::now();
        if now >= limit {
            for (i, s) in slots.iter_mut().enumerate() {
                if matches!(
                    s.state,
                    State::Connecting | State::Writing(_) | State::Reading
                ) {
                    source.error(i, ErrorKind::Timeout, now - s.started);
                }
                lp.close(s);
                s.state = State::Done;
            }
            break;
        }
        let mut next_wake = now + TICK;
        for (i, s) in slots.iter_mut().enumerate() {
            if s.state == State::Idle && s.wake <= now {
                lp.advance(i, s, source, now);
            }
            if s.state == State::Idle {
                next_wake = next_wake.min(s.wake);
            }
            let busy = matches!(
                s.state,
                State::Connecting | State::Writing(_) | State::Reading
            );
            if busy && now.duration_since(s.started) >= opts.request_timeout {
                let kind = if s.state == State::Connecting {
                    ErrorKind::ConnectTimeout
                } else {
                    ErrorKind::Timeout
                };
                lp.fail(i, s, source, kind);
            }
        }
        if slots.iter().all(|s| s.state == State::Done) {
            break;
        }
        let wait = next_wake.saturating_duration_since(Instant::now());
        match lp.poll.poll(&mut events, Some(wait.min(TICK))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            if let Some(s) = slots.get_mut(i) {
                lp.ready(i, s, source, &mut buf);
            }
        }
    }
    Ok(lp.connections)
}

struct Loop<'a> {
    opts: &'a Options,
    poll: &'a mut Poll,
    connections: u64,
}

impl Loop<'_> {
    fn close(&mut self, s: &mut Slot) {
        if let Some(mut st) = s.stream.take() {
            let _ = self.poll.registry().deregister(&mut st);
        }
        s.parser = ResponseParser::new(0);
        s.resp_buf.clear();
    }

    /// Asks the source for the slot's next request and starts it.
    fn advance(&mut self, i: usize, s: &mut Slot, source: &mut dyn Source, now: Instant) {
        s.request.clear();
        match source.next(i, now, &mut s.request) {
            Next::Done => {
                self.close(s);
                s.state = State::Done;
            }
            Next::Wait(t) => s.wake = t,
            Next::Send => {
                s.started = now;
                if s.stream.is_some() {
                    s.state = State::Writing(0);
                    self.write(i, s, source);
                } else {
                    self.connect(i, s, source);
                }
            }
        }
    }

    fn connect(&mut self, i: usize, s: &mut Slot, source: &mut dyn Source) {
        let from = self
            .opts
            .source_ips
            .as_ref()
            .map(|ips| ips.pick(self.connections));
        self.connections += 1;
        let stream = net::connect(self.opts.addr, from).and_then(|mut st| {
            self.poll.registry().register(
                &mut st,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(st)
        });
        match stream {
            Ok(st) => {
                s.stream = Some(st);
                s.state = State::Connecting;
            }
            Err(e) => {
                let kind = ErrorKind::of_io(net::classify(&e), true);
                self.fail(i, s, source, kind);
            }
        }
    }

    fn fail(&mut self, i: usize, s: &mut Slot, source: &mut dyn Source, kind: ErrorKind) {
        source.error(i, kind, s.started.elapsed());
        self.close(s);
        s.state = State::Idle;
        s.wake = Instant::now();
    }

    /// A socket event.
    fn ready(&mut self, i: usize, s: &mut Slot, source: &mut dyn Source, buf: &mut [u8]) {
        if s.state == State::Connecting {
            let Some(st) = &s.stream else { return };
            match net::connect_result(st) {
                Ok(true) => {
                    s.state = State::Writing(0);
                }
                Ok(false) => return,
                Err(e) => {
                    let kind = ErrorKind::of_io(net::classify(&e), true);
                    return self.fail(i, s, source, kind);
                }
            }
        }
        if matches!(s.state, State::Writing(_)) {
            self.write(i, s, source);
        }
        if matches!(s.state, State::Reading | State::Idle | State::Done) {
            self.read(i, s, source, buf);
        }
    }

    fn write(&mut self, i: usize, s: &mut Slot, source: &mut dyn Source) {
        let State::Writing(mut done) = s.state else {
            return;
        };
        let Some(st) = &mut s.stream else { return };
        while done < s.request.len() {
            match st.write(&s.request[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    s.state = State::Writing(done);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kind = ErrorKind::of_io(net::classify(&e), false);
                    return self.fail(i, s, source, kind);
                }
            }
        }
        s.state = State::Reading;
    }

    fn read(&mut self, i: usize, s: &mut Slot, source: &mut dyn Source, buf: &mut [u8]) {
        loop {
            let Some(st) = &mut s.stream else { return };
            let n = match st.read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if s.state == State::Reading {
                        let kind = ErrorKind::of_io(net::classify(&e), false);
                        self.fail(i, s, source, kind);
                    } else {
                        self.close(s);
                    }
                    return;
                }
            };
            if s.state != State::Reading {
                // An idle keep-alive connection the server closed (or sent junk on).
                self.close(s);
                return;
            }
            let reply = match self.opts.codec {
                Codec::Http if n == 0 => match s.parser.eof() {
                    Some(r) => Ok(Some(Reply {
                        status: r.status,
                        bytes: r.bytes,
                    })),
                    None => Err(ErrorKind::ClosedEarly),
                },
                Codec::Http => match s.parser.feed(&buf[..n]) {
                    Ok(Some(r)) => {
                        if r.close || !self.opts.keep_alive {
                            self.close(s);
                        }
                        Ok(Some(Reply {
                            status: r.status,
                            bytes: r.bytes,
                        }))
                    }
                    Ok(None) => Ok(None),
                    Err(_) => Err(ErrorKind::BadResponse),
                },
                Codec::Resp if n == 0 => Err(ErrorKind::ClosedEarly),
                Codec::Resp => {
                    s.resp_buf.extend_from_slice(&buf[..n]);
                    match resp::parse_reply(&s.resp_buf) {
                        Some((r, used)) => {
                            s.resp_buf.drain(..used);
                            Ok(Some(Reply {
                                status: if r == resp::Reply::Ok { 200 } else { 500 },
                                bytes: used,
                            }))
                        }
                        None if s.resp_buf.len() > 4096 => Err(ErrorKind::BadResponse),
                        None => Ok(None),
                    }
                }
            };
            match reply {
                Ok(Some(r)) => {
                    source.reply(i, &r, s.started.elapsed());
                    if n == 0 || !self.opts.keep_alive {
                        self.close(s);
                    }
                    s.state = State::Idle;
                    s.wake = Instant::now();
                    self.advance(i, s, source, Instant::now());
                    return;
                }
                Ok(None) => {}
                Err(kind) => return self.fail(i, s, source, kind),
            }
        }
    }
}
