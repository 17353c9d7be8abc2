//! The publisher's loop of `fanout`, the same for every system: one thread (mio), a few
//! keep-alive connections (match m on connection m mod P), publishes written as soon as the
//! [`Schedule`] releases them and *pipelined*: the loop never waits for an answer before the
//! next publish. Answers (HTTP 201, a PUBLISH's integer, NATS `+OK`) are read as they come and
//! matched to their publish in order; a refusal, an unanswered publish and a publish never
//! sent are all counted.
//!
//! Bounded: an answer that takes longer than the reply timeout fails the connection's
//! publishes as `timeout`; with the window, a match whose subscribers make no progress for the
//! stall timeout ends publishing; at the time limit everything still pending fails.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::figures::latency::Latency;
use crate::net;
use crate::publisher::flow::{Flow, Publish, Schedule, Wait};
use crate::publisher::publish::{Published, Sink};
use crate::publisher::window::Board;
use crate::requests::ErrorKind;
use crate::wire::http;
use crate::wire::payload::Kind;
use crate::wire::{nats, resp};

/// The board's wake-ups.
const WAKE: Token = Token(usize::MAX);
/// Longest wait in `poll`.
const TICK: Duration = Duration::from_millis(20);
/// Most publishes released per turn of the loop.
const BUDGET: usize = 1024;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server.
    pub addr: SocketAddr,
    /// Publishing connections.
    pub connections: usize,
    /// Longest wait for an answer (and for a connect).
    pub reply_timeout: Duration,
    /// Window: longest time without any subscriber progress while publishes wait.
    pub stall_timeout: Duration,
    /// When everything still pending fails.
    pub limit: Instant,
}

#[derive(Debug, Clone, Copy)]
enum What {
    Handshake,
    Event(Kind),
}

#[derive(Debug)]
struct Pending {
    /// Offset just past its bytes in the connection's output.
    end: u64,
    what: What,
    due: Instant,
    written: Option<Instant>,
}

#[derive(Debug, Default)]
struct Conn {
    stream: Option<TcpStream>,
    connected: bool,
    opened: Option<Instant>,
    /// The last write hit `EAGAIN`: wait for the socket to turn writable.
    blocked: bool,
    out: Vec<u8>,
    out_pos: usize,
    /// Offset of `out[0]` in everything written on this connection.
    base: u64,
    inflight: VecDeque<Pending>,
    /// Index in `inflight` of the first publish not wholly written.
    unwritten: usize,
    input: Vec<u8>,
}

struct Loop<'a> {
    opts: &'a Options,
    sink: &'a Sink,
    poll: Poll,
    conns: Vec<Conn>,
    out: Published,
    latency: Latency,
    last_due: Option<Instant>,
    last_written: Option<Instant>,
    /// The least and the most an event was written after it was due.
    min_lag: Option<Duration>,
    max_lag: Duration,
    /// When the last accepted event's answer was read, and the least and most an answer came
    /// after its event was due.
    last_accepted: Option<Instant>,
    min_answer_lag: Option<Duration>,
    max_answer_lag: Duration,
    sent: &'a AtomicU64,
}

/// Publishes `schedule` over `channels` through `sink`; `board` holds the frontiers (window)
/// and wakes the loop; `sent` counts events written, for the progress line.
pub fn run(
    opts: &Options,
    sink: &Sink,
    channels: &[String],
    schedule: &mut Schedule,
    board: &Board,
    sent: &AtomicU64,
) -> anyhow::Result<Published> {
    let poll = Poll::new()?;
    board.set_waker(Arc::new(Waker::new(poll.registry(), WAKE)?));
    let mut lp = Loop::new(opts, sink, poll, sent);
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut batch = Vec::with_capacity(BUDGET);
    let mut wait = Wait::Until(schedule.t0());
    let mut watchdog = Watchdog {
        generation: board.generation(),
        at: Instant::now(),
    };
    loop {
        let now = Instant::now();
        if now >= opts.limit {
            lp.out.stalled = Some("the time limit (--timeout) passed".into());
            break;
        }
        if crate::interrupt::requested() {
            lp.out.stalled = Some("interrupted (Ctrl-C)".into());
            break;
        }
        if wait != Wait::Done {
            batch.clear();
            let frontier = |m: usize| board.frontier(m);
            wait = schedule.poll(
                now,
                crate::figures::latency::realtime_ns(),
                &frontier,
                BUDGET,
                &mut batch,
            );
            if !batch.is_empty() {
                watchdog.at = now;
            }
            for p in &batch {
                lp.enqueue(p, &channels[p.channel]);
            }
        }
        for i in 0..lp.conns.len() {
            lp.flush(i);
        }
        lp.expire(now);
        if wait == Wait::Done && lp.conns.iter().all(|c| c.inflight.is_empty()) {
            break;
        }
        if wait == Wait::Frontier {
            if let Some(why) = watchdog.stalled(board, now, opts.stall_timeout) {
                lp.out.stalled = Some(why);
                break;
            }
        }
        let timeout = match wait {
            Wait::Until(t) => t.saturating_duration_since(now).min(TICK),
            Wait::Frontier | Wait::Done => TICK,
        };
        match lp.poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            if ev.token() == WAKE || i >= lp.conns.len() {
                continue;
            }
            lp.ready(i, &mut buf);
        }
    }
    Ok(lp.finish(schedule))
}

/// Watches the window's progress while publishes wait for it: publishes released, or the
/// board's generation moving (a subscriber received something).
struct Watchdog {
    /// The board's generation when last seen.
    generation: u64,
    /// When progress was last seen.
    at: Instant,
}

impl Watchdog {
    /// Why publishing should stop: no progress for `timeout`.
    fn stalled(&mut self, board: &Board, now: Instant, timeout: Duration) -> Option<String> {
        let g = board.generation();
        if g != self.generation {
            self.generation = g;
            self.at = now;
            None
        } else if now.duration_since(self.at) >= timeout {
            Some(format!(
                "no subscriber progress for {:.0} s while publishes waited for the window",
                timeout.as_secs_f64()
            ))
        } else {
            None
        }
    }
}

impl<'a> Loop<'a> {
    /// A loop of `opts.connections` connections (none open yet).
    fn new(opts: &'a Options, sink: &'a Sink, poll: Poll, sent: &'a AtomicU64) -> Loop<'a> {
        Loop {
            opts,
            sink,
            poll,
            conns: (0..opts.connections.max(1))
                .map(|_| Conn::default())
                .collect(),
            out: Published::default(),
            latency: Latency::new(),
            last_due: None,
            last_written: None,
            min_lag: None,
            max_lag: Duration::ZERO,
            last_accepted: None,
            min_answer_lag: None,
            max_answer_lag: Duration::ZERO,
            sent,
        }
    }
}

impl Loop<'_> {
    /// Writes `p`'s request into its connection's output (connecting first if needed).
    fn enqueue(&mut self, p: &Publish, channel: &str) {
        let i = p.channel % self.conns.len();
        if self.conns[i].stream.is_none() {
            if let Err(kind) = self.connect(i) {
                *self.out.errors.entry(kind.key().to_owned()).or_default() += 1;
                return;
            }
        }
        let c = &mut self.conns[i];
        self.sink.encode(channel, p, &mut c.out);
        c.inflight.push_back(Pending {
            end: c.base + c.out.len() as u64,
            what: What::Event(p.kind),
            due: p.due,
            written: None,
        });
    }

    fn connect(&mut self, i: usize) -> Result<(), ErrorKind> {
        let mut stream =
            net::connect(self.opts.addr, None).map_err(|e| connect_error(net::classify(&e)))?;
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| connect_error(net::classify(&e)))?;
        let c = &mut self.conns[i];
        *c = Conn {
            stream: Some(stream),
            opened: Some(Instant::now()),
            ..Conn::default()
        };
        if self.sink.handshake(&mut c.out) {
            c.inflight.push_back(Pending {
                end: c.out.len() as u64,
                what: What::Handshake,
                due: Instant::now(),
                written: None,
            });
        }
        Ok(())
    }

    /// A socket event on connection `i`.
    fn ready(&mut self, i: usize, buf: &mut [u8]) {
        let c = &mut self.conns[i];
        let Some(stream) = &c.stream else { return };
        c.blocked = false;
        if !c.connected {
            match net::connect_result(stream) {
                Ok(true) => c.connected = true,
                Ok(false) => return,
                Err(e) => return self.fail(i, connect_error(net::classify(&e))),
            }
        }
        self.flush(i);
        self.read(i, buf);
    }

    /// Writes what connection `i` has pending, as far as the socket takes it.
    fn flush(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if !c.connected || c.blocked || c.out_pos == c.out.len() {
            return;
        }
        let Some(stream) = &mut c.stream else { return };
        let mut broken = None;
        while c.out_pos < c.out.len() {
            match stream.write(&c.out[c.out_pos..]) {
                Ok(n) => c.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    broken = Some(ErrorKind::of_io_pub(net::classify(&e)));
                    break;
                }
            }
        }
        let now = Instant::now();
        let done = c.base + c.out_pos as u64;
        while let Some(p) = c.inflight.get_mut(c.unwritten) {
            if p.end > done {
                break;
            }
            p.written = Some(now);
            c.unwritten += 1;
            if let What::Event(kind) = p.what {
                if kind != Kind::Stop {
                    self.out.events_sent += 1;
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    self.last_written = Some(now);
                    self.last_due = Some(self.last_due.map_or(p.due, |d| d.max(p.due)));
                    let lag = now.saturating_duration_since(p.due);
                    self.min_lag = Some(self.min_lag.map_or(lag, |m| m.min(lag)));
                    self.max_lag = self.max_lag.max(lag);
                }
            }
        }
        if c.out_pos == c.out.len() {
            c.base += c.out.len() as u64;
            c.out.clear();
            c.out_pos = 0;
        }
        if let Some(kind) = broken {
            self.fail(i, kind);
        }
    }

    /// Reads connection `i`'s answers and matches them to its publishes.
    fn read(&mut self, i: usize, buf: &mut [u8]) {
        loop {
            let c = &mut self.conns[i];
            let Some(stream) = &mut c.stream else { return };
            let got = stream.read(buf);
            let n = match got {
                Ok(0) if c.inflight.is_empty() => return self.drop_conn(i),
                Ok(0) => return self.fail(i, ErrorKind::ClosedEarly),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(i, ErrorKind::of_io_pub(net::classify(&e))),
            };
            c.input.extend_from_slice(&buf[..n]);
            if let Err(kind) = self.answers(i) {
                return self.fail(i, kind);
            }
            if n < buf.len() {
                return;
            }
        }
    }

    /// Takes every whole answer out of connection `i`'s input.
    fn answers(&mut self, i: usize) -> Result<(), ErrorKind> {
        let now = Instant::now();
        loop {
            let c = &mut self.conns[i];
            // `Ok(Some((accepted or the refusal's key, bytes used)))`; `Ok(None)`: not whole yet.
            let parsed: Option<(Result<(), String>, usize)> = match self.sink {
                Sink::Matchstream { .. } => match http::parse_pipelined(&c.input) {
                    Ok(Some(r)) => {
                        let verdict = if r.status == 201 {
                            Ok(())
                        } else {
                            Err(r.status.to_string())
                        };
                        Some((verdict, r.used))
                    }
                    Ok(None) => None,
                    Err(_) => return Err(ErrorKind::BadResponse),
                },
                Sink::Redis { .. } => match resp::parse_reply(&c.input) {
                    Some((resp::Reply::Ok, used)) => Some((Ok(()), used)),
                    Some((resp::Reply::Error(_), used)) => Some((Err("error".into()), used)),
                    None if c.input.len() > 4096 => return Err(ErrorKind::BadResponse),
                    None => None,
                },
                Sink::Nats { .. } => match nats::parse_reply(&c.input) {
                    Ok(Some((nats::Reply::Ok, used))) => Some((Ok(()), used)),
                    Ok(Some((nats::Reply::Err(_), used))) => Some((Err("error".into()), used)),
                    Ok(Some((nats::Reply::Ping, used))) => {
                        c.input.drain(..used);
                        c.out.extend_from_slice(b"PONG\r\n");
                        continue;
                    }
                    Ok(Some((nats::Reply::Other, used))) => {
                        c.input.drain(..used);
                        continue;
                    }
                    Ok(None) => None,
                    Err(_) => return Err(ErrorKind::BadResponse),
                },
            };
            let Some((verdict, used)) = parsed else {
                return Ok(());
            };
            c.input.drain(..used);
            let Some(p) = c.inflight.pop_front() else {
                return Err(ErrorKind::BadResponse);
            };
            c.unwritten = c.unwritten.saturating_sub(1);
            self.latency
                .record(now.saturating_duration_since(p.written.unwrap_or(now)));
            match (p.what, verdict) {
                (What::Handshake, Ok(())) => {}
                (What::Event(Kind::Stop), Ok(())) => self.out.stops_ok += 1,
                (What::Event(_), Ok(())) => {
                    self.out.events_ok += 1;
                    self.last_accepted = Some(now);
                    let lag = now.saturating_duration_since(p.due);
                    self.min_answer_lag = Some(self.min_answer_lag.map_or(lag, |m| m.min(lag)));
                    self.max_answer_lag = self.max_answer_lag.max(lag);
                }
                (_, Err(key)) => *self.out.refused.entry(key).or_default() += 1,
            }
        }
    }

    /// Fails answers that take too long, and connects that do.
    fn expire(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            let late = |t: Instant| now.saturating_duration_since(t) >= self.opts.reply_timeout;
            if !c.connected && c.stream.is_some() && c.opened.is_some_and(late) {
                self.fail(i, ErrorKind::ConnectTimeout);
            } else if c.inflight.front().and_then(|p| p.written).is_some_and(late) {
                self.fail(i, ErrorKind::Timeout);
            }
        }
    }

    /// Connection `i` broke: every publish on it still unanswered fails as `kind`.
    fn fail(&mut self, i: usize, kind: ErrorKind) {
        let c = &mut self.conns[i];
        let lost = c
            .inflight
            .iter()
            .filter(|p| matches!(p.what, What::Event(_)))
            .count() as u64;
        if lost > 0 {
            *self.out.errors.entry(kind.key().to_owned()).or_default() += lost;
        }
        self.drop_conn(i);
    }

    fn drop_conn(&mut self, i: usize) {
        if let Some(mut s) = self.conns[i].stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        self.conns[i] = Conn::default();
    }

    /// Ends the run: whatever is still pending fails as `timeout`, whatever the schedule
    /// never released counts as unsent, and the figures are summed up.
    fn finish(mut self, schedule: &Schedule) -> Published {
        for i in 0..self.conns.len() {
            self.fail(i, ErrorKind::Timeout);
        }
        self.out.unsent += schedule.remaining();
        let t0 = schedule.t0();
        self.out.latency = self.latency.summary();
        self.out.max_lag_ms = self.max_lag.as_secs_f64() * 1000.0;
        self.out.max_answer_lag_ms = self.max_answer_lag.as_secs_f64() * 1000.0;
        let since_t0 =
            |t: Option<Instant>| t.map_or(0.0, |t| t.saturating_duration_since(t0).as_secs_f64());
        let seconds = since_t0(self.last_written);
        let answered = since_t0(self.last_accepted);
        self.out.seconds = seconds;
        let planned = schedule.planned_events().max(1) as f64;
        match schedule.flow() {
            Flow::Paced { rate } => {
                let target = rate * schedule.channels() as f64;
                let period = 1.0 / rate.max(1e-9);
                // The schedule's span against the time it took, less the least delay any event
                // had (a round trip, the same for every event, is latency, not rate).
                let nominal = schedule.last_event_offset().as_secs_f64() + period;
                let least = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
                let actual = (seconds - least(self.min_lag)).max(0.0) + period;
                let share = self.out.events_sent as f64 / planned;
                let achieved = target * share * (nominal / actual).min(1.0);
                let actual = (answered - least(self.min_answer_lag)).max(0.0) + period;
                let share = self.out.events_ok as f64 / planned;
                let accepted = target * share * (nominal / actual).min(1.0);
                self.out.target_events_per_second = Some(target);
                self.out.achieved_events_per_second = achieved;
                self.out.achieved_percent = Some(100.0 * achieved / target.max(1e-9));
                self.out.accepted_events_per_second = accepted;
                self.out.accepted_percent = Some(100.0 * accepted / target.max(1e-9));
            }
            Flow::Window { .. } => {
                let per_s = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
                self.out.achieved_events_per_second = per_s(self.out.events_sent, seconds);
                self.out.accepted_events_per_second = per_s(self.out.events_ok, answered);
            }
        }
        self.out
    }
}

fn connect_error(kind: net::IoKind) -> ErrorKind {
    match kind {
        net::IoKind::Refused => ErrorKind::ConnectRefused,
        net::IoKind::TimedOut => ErrorKind::ConnectTimeout,
        net::IoKind::BenchLimit => ErrorKind::BenchLimit,
        net::IoKind::Reset => ErrorKind::Reset,
        net::IoKind::Other => ErrorKind::ConnectError,
    }
}

impl ErrorKind {
    /// The kind of a publishing connection's failure after it connected.
    fn of_io_pub(kind: net::IoKind) -> ErrorKind {
        match kind {
            net::IoKind::Refused => ErrorKind::ConnectRefused,
            net::IoKind::TimedOut => ErrorKind::Timeout,
            net::IoKind::BenchLimit => ErrorKind::BenchLimit,
            net::IoKind::Reset | net::IoKind::Other => ErrorKind::Reset,
        }
    }
}
