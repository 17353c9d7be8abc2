//! The subscriber loop: many simulated subscribers on one thread (mio, edge-triggered epoll),
//! used by `clients`, `fanout` and its Redis and NATS baselines, in-process or in a worker
//! process.
//!
//! Each subscriber optionally checks in (`GET /1/checkin`), connects, sends its command
//! (`VERSION:v:CONNECT:<user>:MATCH:<id>`, the event stream's `GET /1/match/<id>/stream` on its
//! node's API, a Redis `SUBSCRIBE`, or NATS `CONNECT`/`SUB`/`PING`), and reads until the server
//! hangs up (or, for Redis and NATS, until the stop message).
//! For `fanout --rate max`, the shard keeps per match the smallest seq its live subscribers
//! have seen ([`crate::publisher::window::MinTracker`]) and signals every change, so the publisher can
//! hold each match's window to its slowest subscriber. At most `concurrency` subscribers are
//! *attempting* at once: from the first connect until their status frame (or failure). Every
//! loop is bounded: a checkin or connect that takes longer than the connect timeout fails, so
//! does a connected subscriber whose status does not follow within it, and at the time limit
//! every subscriber still open fails as `timeout`.
//!
//! With a [`Resume`](crate::subscribers::plan::Resume) plan (`soak`), rounds of subscribers
//! picked at random disconnect and reconnect with `SINCE:<last seq received whole>`
//! ([`resume`]); a subscriber's seq count goes on across its reconnections, so a resume that
//! loses or repeats an event shows as out of order or duplicated.
//!
//! Memory: one `Sub` per open connection (about 250 bytes: the framing checker keeps only
//! the head of the current line) in a slab; reads go through one shared 64 KiB buffer. The
//! checkin's response parser lives only while the checkin does.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::figures::latency::Latency;
use crate::figures::progress::Live;
use crate::net;
use crate::publisher::window::MinTracker;
use crate::subscribers::outcome::{self, Failure, Seen};
use crate::subscribers::plan::{Outcome, Plan, Target};
use crate::wire::decode::{Decoder, Protocol};
use crate::wire::framing::{Item, Violation};
use crate::wire::http::ResponseParser;
use crate::wire::{resp, sse};

/// Size of the shared read buffer.
const READ_BUF: usize = 64 * 1024;
/// Longest wait in `poll` (timeouts and progress are checked at least this often).
const TICK: Duration = Duration::from_millis(50);
/// How often progress is published.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// The window of the live percentiles.
const RECENT: Duration = Duration::from_secs(1);

/// Signals a shard gives while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal<'a> {
    /// Every attempt has ended (status or failure): the watcher may play now.
    Ready,
    /// Time to publish progress (every quarter second).
    Tick,
    /// These matches' smallest live seq changed: `(match index, seq or NO_LIVE)`. Every match
    /// is reported just before `Ready`.
    Frontier(&'a [(u32, u64)]),
}

#[derive(Debug)]
enum Phase {
    /// Checking in: the request was sent once `sent`.
    Checkin {
        parser: Box<ResponseParser>,
        sent: bool,
    },
    Connecting,
    /// Sending the command: bytes written so far.
    Sending(usize),
    Reading,
}

/// One subscriber.
#[derive(Debug)]
struct Sub {
    index: u64,
    stream: TcpStream,
    phase: Phase,
    /// Start of the current phase's clock: checkin start, then connect start.
    t0: Instant,
    seen: Seen,
    decoder: Decoder,
    last_seq: u64,
    /// Where its match's tracker has it (see [`MinTracker::add`]).
    tracked: u64,
    /// This session was resumed: its command carries `SINCE:<last_seq>` and no status comes.
    resumed: bool,
}

/// A pending bound on one subscriber's phase: it applies while the subscriber with `index`
/// still has the phase clock `t0` and is in the `stage`.
#[derive(Debug, Clone, Copy)]
struct Bound {
    deadline: Instant,
    key: usize,
    index: u64,
    t0: Instant,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Checking in or connecting.
    Connect,
    /// Connected, waiting for the status frame.
    Status,
}

/// The loop's state.
struct Shard<'a> {
    plan: &'a Plan,
    live: &'a Live,
    poll: Poll,
    subs: Slab<Sub>,
    /// Pending bounds, in deadline order (every bound has the same length).
    timeouts: VecDeque<Bound>,
    timeout: Duration,
    out: Outcome,
    attempting: u64,
    launched: u64,
    scratch: Vec<u8>,
    items: Vec<Item>,
    /// Per match: the live subscribers' seqs, the value last reported, whether it may have
    /// changed since.
    trackers: Vec<MinTracker>,
    /// Deliveries since the last progress window (the live p50/p99).
    recent: Latency,
    recent_since: Instant,
    reported: Vec<u64>,
    dirty: Vec<bool>,
    dirty_list: Vec<u32>,
    changes: Vec<(u32, u64)>,
    /// Rounds of resumes, once the shard is ready (with a resume plan).
    rounds: Option<resume::Rounds>,
    /// Resumes under way: disconnected, the `SINCE` command not wholly sent yet.
    resuming: u64,
}

/// Runs one shard to its end; `signal` is called with [`Signal::Ready`] once and
/// [`Signal::Tick`] periodically. `abort` ends the run early (remaining subscribers count as
/// `timeout`).
pub fn run(
    plan: &Plan,
    live: &Live,
    abort: &AtomicBool,
    signal: &mut dyn FnMut(Signal<'_>),
) -> anyhow::Result<Outcome> {
    if plan.channels.is_empty() {
        anyhow::bail!("no match or channel to subscribe to");
    }
    let started = Instant::now();
    let limit = started + Duration::from_millis(plan.time_limit_ms);
    let mut shard = Shard::new(plan, live, started)?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_BUF];
    // Fixed costs (histograms, buffers) are in place: what grows from here is per connection.
    let rss_start = crate::figures::sysstat::rss_bytes("self").unwrap_or(0);
    let mut ready = false;
    let mut next_publish = started;
    loop {
        let now = Instant::now();
        if now >= limit || abort.load(Ordering::Relaxed) {
            shard.give_up();
            break;
        }
        shard.launch_more(now);
        if !ready && shard.launched == plan.count && shard.attempting == 0 {
            ready = true;
            shard.ready(rss_start, signal);
        }
        shard.resume_due(now);
        if shard.launched == plan.count && shard.subs.is_empty() {
            break;
        }
        shard.expire(now);
        if now >= next_publish {
            shard.publish();
            signal(Signal::Tick);
            next_publish = now + PUBLISH_EVERY;
        }
        let wait = shard.timeouts.front().map_or(TICK, |b| {
            b.deadline.saturating_duration_since(now).min(TICK)
        });
        match shard.poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            shard.handle(ev.token().0, ev.is_read_closed(), &mut buf);
        }
        if ready {
            shard.report_frontiers(signal);
        }
    }
    if !ready {
        shard.report_frontiers(signal);
        signal(Signal::Ready);
    }
    shard.publish();
    shard.out.seconds = started.elapsed().as_secs_f64();
    shard.out.cpu_at_end = crate::figures::sysstat::thread_cpu_seconds();
    Ok(shard.out)
}

impl<'a> Shard<'a> {
    /// A shard with no subscriber launched yet.
    fn new(plan: &'a Plan, live: &'a Live, started: Instant) -> anyhow::Result<Shard<'a>> {
        Ok(Shard {
            plan,
            live,
            poll: Poll::new()?,
            subs: Slab::with_capacity(plan.count.min(1 << 16) as usize),
            timeouts: VecDeque::new(),
            timeout: Duration::from_millis(plan.connect_timeout_ms.max(1)),
            out: Outcome {
                planned: plan.count,
                ..Outcome::default()
            },
            attempting: 0,
            launched: 0,
            scratch: Vec::with_capacity(256),
            items: Vec::new(),
            trackers: vec![MinTracker::default(); plan.channels.len()],
            recent: Latency::new(),
            recent_since: started,
            reported: vec![u64::MAX - 1; plan.channels.len()],
            dirty: vec![true; plan.channels.len()],
            dirty_list: (0..plan.channels.len() as u32).collect(),
            changes: Vec::new(),
            rounds: None,
            resuming: 0,
        })
    }

    /// Every attempt has ended: records what the open connections cost (RSS grown since
    /// `rss_start`, CPU so far) and signals [`Signal::Ready`] after every match's frontier.
    fn ready(&mut self, rss_start: u64, signal: &mut dyn FnMut(Signal<'_>)) {
        self.out.open_at_ready = self.subs.len() as u64;
        let rss = crate::figures::sysstat::rss_bytes("self").unwrap_or(0);
        self.out.rss_growth_bytes = rss.saturating_sub(rss_start);
        self.out.cpu_at_ready = crate::figures::sysstat::thread_cpu_seconds();
        self.rounds = self
            .plan
            .resume
            .as_ref()
            .map(|r| resume::Rounds::new(r, self.plan.first, std::time::Instant::now()));
        self.publish();
        self.report_frontiers(signal);
        signal(Signal::Ready);
    }
}

impl Shard<'_> {
    fn channel_of(&self, index: u64) -> usize {
        (index % self.plan.channels.len() as u64) as usize
    }

    fn publish(&mut self) {
        let open = self.subs.len() as u64;
        self.out.peak_open = self.out.peak_open.max(open);
        let p = |a: &std::sync::atomic::AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        p(&self.live.started, self.launched);
        p(&self.live.connected, self.out.connected);
        p(&self.live.ok, self.out.ok);
        p(&self.live.failed, self.out.failed);
        p(&self.live.delivered, self.out.delivered);
        p(&self.live.open, open);
        p(&self.live.resumes, self.out.resumes);
        p(&self.live.resuming, self.resuming);
        // Live percentiles over the last second or so of deliveries.
        if self.recent.count() > 0 {
            p(
                &self.live.p50_us,
                (self.recent.quantile_ms(0.5) * 1000.0) as u64,
            );
            p(
                &self.live.p99_us,
                (self.recent.quantile_ms(0.99) * 1000.0) as u64,
            );
        }
        if self.recent_since.elapsed() >= RECENT {
            self.recent.reset();
            self.recent_since = Instant::now();
        }
    }

    /// Starts subscribers while fewer than `concurrency` are attempting.
    fn launch_more(&mut self, now: Instant) {
        while self.attempting < self.plan.concurrency.max(1) && self.launched < self.plan.count {
            let index = self.plan.first + self.launched;
            self.launched += 1;
            // The key the next insert takes: nothing is inserted in between.
            let key = self.subs.vacant_key();
            let (stream, phase) = match self.open(index, key) {
                Ok(opened) => opened,
                Err(kind) => {
                    self.fail_unlaunched(kind);
                    continue;
                }
            };
            self.subs.insert(Sub {
                index,
                stream,
                phase,
                t0: now,
                seen: Seen::default(),
                decoder: Decoder::new(self.plan.protocol),
                last_seq: 0,
                tracked: 0,
                resumed: false,
            });
            self.attempting += 1;
            self.bound(key, index, now, Stage::Connect);
        }
    }

    /// Opens subscriber `index`'s connection, registered as `key`: to the API for its checkin,
    /// straight to its stream address, or to its node's API for an event stream; the phase it
    /// starts in.
    fn open(&self, index: u64, key: usize) -> Result<(TcpStream, Phase), Failure> {
        let (addr, checkin) = match &self.plan.target {
            Target::Checkin(api) => (api.addr, true),
            Target::Direct(addrs) if !addrs.is_empty() => {
                (addrs[(index % addrs.len() as u64) as usize], false)
            }
            Target::Sse(apis) if !apis.is_empty() => {
                (apis[(index % apis.len() as u64) as usize].addr, false)
            }
            Target::Direct(_) | Target::Sse(_) => return Err(Failure::ConnectError),
        };
        let stream = self.connect_as(addr, index, key).map_err(|e| {
            let kind = net::classify(&e);
            if checkin && kind != net::IoKind::BenchLimit {
                Failure::CheckinFailed
            } else {
                Failure::of_connect(kind)
            }
        })?;
        let phase = if checkin {
            Phase::Checkin {
                parser: Box::new(ResponseParser::new(1024)),
                sent: false,
            }
        } else {
            Phase::Connecting
        };
        Ok((stream, phase))
    }

    /// Connects subscriber `index` to `addr` from its source address, registered as `key`.
    fn connect_as(&self, addr: SocketAddr, index: u64, key: usize) -> io::Result<TcpStream> {
        let source = self.plan.source_ips.as_ref().map(|s| s.pick(index));
        let mut stream = net::connect(addr, source)?;
        self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok(stream)
    }

    /// Moves subscriber `key` to its new connection `stream` (registered) in `phase`, closing
    /// the old one, and bounds the phase from `now` (a checkin's answer, a resume).
    fn switch(&mut self, key: usize, stream: TcpStream, phase: Phase, now: Instant) {
        let Some(sub) = self.subs.get_mut(key) else {
            return;
        };
        let mut old = std::mem::replace(&mut sub.stream, stream);
        let _ = self.poll.registry().deregister(&mut old);
        drop(old);
        sub.phase = phase;
        sub.t0 = now;
        let index = sub.index;
        self.bound(key, index, now, Stage::Connect);
    }

    fn fail_unlaunched(&mut self, kind: Failure) {
        self.out.failed += 1;
        outcome::count(&mut self.out.failures, kind);
    }

    /// Bounds the phase of subscriber `key` that started at `t0` by the connect timeout.
    fn bound(&mut self, key: usize, index: u64, t0: Instant, stage: Stage) {
        self.timeouts.push_back(Bound {
            deadline: Instant::now() + self.timeout,
            key,
            index,
            t0,
            stage,
        });
    }

    /// Fails checkins, connects and status waits older than the timeout.
    fn expire(&mut self, now: Instant) {
        while let Some(&b) = self.timeouts.front() {
            if b.deadline > now {
                break;
            }
            self.timeouts.pop_front();
            let kind = match self.subs.get(b.key) {
                Some(s) if s.index == b.index && s.t0 == b.t0 => match (b.stage, &s.phase) {
                    (Stage::Connect, Phase::Checkin { .. }) => Failure::CheckinFailed,
                    (Stage::Connect, Phase::Connecting) => Failure::ConnectTimeout,
                    (Stage::Status, Phase::Sending(_) | Phase::Reading) if !s.seen.status => {
                        Failure::StatusTimeout
                    }
                    _ => continue,
                },
                _ => continue,
            };
            self.end(b.key, Err(kind));
        }
    }

    /// At the time limit: everything open or never started fails as `timeout`.
    fn give_up(&mut self) {
        let keys: Vec<usize> = self.subs.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.end(key, Err(Failure::Timeout));
        }
        while self.launched < self.plan.count {
            self.launched += 1;
            self.fail_unlaunched(Failure::Timeout);
        }
    }

    /// Removes subscriber `key` with its verdict.
    fn end(&mut self, key: usize, verdict: Result<(), Failure>) {
        let Some(mut sub) = self.subs.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut sub.stream);
        if sub.resumed && !matches!(sub.phase, Phase::Reading) {
            self.resuming = self.resuming.saturating_sub(1);
        }
        if !sub.seen.status {
            self.attempting = self.attempting.saturating_sub(1);
        } else {
            let c = self.channel_of(sub.index);
            self.trackers[c].remove(sub.tracked);
            self.touch(c);
        }
        match verdict {
            Ok(()) => self.out.ok += 1,
            Err(kind) => {
                self.out.failed += 1;
                outcome::count(&mut self.out.failures, kind);
            }
        }
    }

    /// A socket event; `closed` says the peer's FIN (or an error) came with it.
    fn handle(&mut self, key: usize, closed: bool, buf: &mut [u8]) {
        let verdict = match self.subs.get(key).map(|s| &s.phase) {
            None => return,
            Some(Phase::Checkin { .. }) => self.checkin(key, buf),
            Some(Phase::Connecting) => self
                .connected(key)
                .and_then(|()| self.read(key, closed, buf)),
            Some(Phase::Sending(_)) => self.send(key).and_then(|()| self.read(key, closed, buf)),
            Some(Phase::Reading) => self.read(key, closed, buf),
        };
        if let Err(end) = verdict {
            self.end(key, end);
        }
    }

    /// A connecting socket woke up: if connected, send the command.
    fn connected(&mut self, key: usize) -> Result<(), Result<(), Failure>> {
        let Some(sub) = self.subs.get_mut(key) else {
            return Ok(());
        };
        match net::connect_result(&sub.stream) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(Err(Failure::of_connect(net::classify(&e)))),
        }
        self.out.connect.record(sub.t0.elapsed());
        sub.phase = Phase::Sending(0);
        let (index, t0) = (sub.index, sub.t0);
        self.bound(key, index, t0, Stage::Status);
        self.send(key)
    }

    /// Writes (the rest of) the command.
    fn send(&mut self, key: usize) -> Result<(), Result<(), Failure>> {
        let Some(sub) = self.subs.get_mut(key) else {
            return Ok(());
        };
        let Phase::Sending(mut done) = sub.phase else {
            return Ok(());
        };
        self.scratch.clear();
        let channels = &self.plan.channels;
        let channel = &channels[(sub.index % channels.len() as u64) as usize];
        match self.plan.protocol {
            Protocol::Stream { version } => {
                use std::fmt::Write as _;
                let mut line = String::with_capacity(96);
                let _ = write!(
                    line,
                    "VERSION:{version}:CONNECT:{}{}:MATCH:{channel}",
                    self.plan.user_prefix, sub.index
                );
                if sub.resumed {
                    let _ = write!(line, ":SINCE:{}", sub.last_seq);
                }
                line.push_str("\r\n");
                self.scratch.extend_from_slice(line.as_bytes());
            }
            Protocol::Sse => {
                let Target::Sse(apis) = &self.plan.target else {
                    return Err(Err(Failure::ConnectError));
                };
                let api = &apis[(sub.index % apis.len().max(1) as u64) as usize];
                let since = sub.resumed.then_some(sub.last_seq);
                let (host, prefix) = (api.url.host_header(), api.url.prefix());
                sse::request(host, prefix, channel, since, &mut self.scratch);
            }
            Protocol::Redis => {
                resp::command(&[b"SUBSCRIBE", channel.as_bytes()], &mut self.scratch)
            }
            Protocol::Nats => crate::wire::nats::subscribe(channel, &mut self.scratch),
        }
        while done < self.scratch.len() {
            match sub.stream.write(&self.scratch[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    sub.phase = Phase::Sending(done);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(sub.seen.broken(net::classify(&e))),
            }
        }
        sub.phase = Phase::Reading;
        if sub.resumed {
            self.resuming = self.resuming.saturating_sub(1);
            self.out.resumes += 1;
        }
        Ok(())
    }

    /// Reads until the socket is drained, checking and accounting every frame.
    ///
    /// A short read means the receive queue was empty at that moment (epoll(7): for stream
    /// sockets a short read detects the end as well as `EAGAIN`), and anything arriving later
    /// raises a new edge; so unless the peer's FIN came with this event, a short read ends the
    /// loop without the extra `read` that would only say `EAGAIN`. This halves the bench's
    /// syscalls per delivery in fanout runs.
    fn read(
        &mut self,
        key: usize,
        closed: bool,
        buf: &mut [u8],
    ) -> Result<(), Result<(), Failure>> {
        loop {
            let Some(sub) = self.subs.get_mut(key) else {
                return Ok(());
            };
            if !matches!(sub.phase, Phase::Reading) {
                return Ok(());
            }
            let n = match sub.stream.read(buf) {
                Ok(0) => return Err(sub.seen.closed(sub.decoder.finish())),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(sub.seen.broken(net::classify(&e))),
            };
            self.out.bytes_received += n as u64;
            let mut items = std::mem::take(&mut self.items);
            items.clear();
            let fed = sub.decoder.feed(&buf[..n], &mut items);
            let pings = sub.decoder.take_pings();
            if pings > 0 {
                // A NATS server's keep-alive: a few bytes to a socket we only read from.
                let pongs = b"PONG\r\n".repeat(pings as usize);
                let _ = sub.stream.write(&pongs);
            }
            let verdict = self.account(key, &items);
            self.items = items;
            verdict?;
            if let Err(v) = fed {
                let what = match v {
                    Violation::BadFraming(what) => Some(what.to_owned()),
                    Violation::BadLine(line) => Some(line),
                    Violation::Incomplete => None,
                };
                if let Some(what) = what {
                    *self.out.framing.entry(what).or_default() += 1;
                }
                return Err(Err(Failure::BadFraming));
            }
            if n < buf.len() && !closed {
                return Ok(());
            }
        }
    }
}

mod account;
mod checkin;
mod resume;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_is_small() {
        // The bench's budget is 2 KiB per open connection; the slab entry is most of it.
        let size = std::mem::size_of::<Sub>();
        assert!(size <= 320, "{size} bytes");
    }
}
