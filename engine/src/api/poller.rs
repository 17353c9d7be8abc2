//! The API port's connections on one core: an epoll set of short connections, served without
//! a task each (issue 14).
//!
//! Most API connections ask for checkin, a match or its history and go. As a glommio task each,
//! such a connection cost a task spawn, four `fcntl`/`accept` system calls in glommio's accept,
//! an io_uring poll armed and torn down per request and a timer per read — 1.7× nginx's CPU per
//! request. Here a core keeps its API listener and every idle or reading connection in one
//! epoll set, registered once; glommio waits on the set's descriptor (one io_uring poll per
//! wake, however many connections are ready), and a wake accepts in a batch (`accept4`, no
//! flags to restore), reads each ready connection once into one buffer shared by the core,
//! answers what can be answered at once ([`handlers::answer_now`]: public reads, pages,
//! health, every error) and writes the answers with one non-blocking `send`.
//!
//! A connection leaves for a task of its own ([`super::serve_admitted`]), for good, with what
//! it has read and not answered and what is not yet written ([`Resume`]), whenever it needs
//! one: a request that waits (a watcher's write, which waits for the store), an event stream,
//! or answers the socket does not take at once. So the task path's rules hold for them as
//! before (write timeout, backpressure, `MAX_UNSENT`).
//!
//! The policy of [`super`] holds here too: a request must arrive whole within
//! `--http-timeout-ms` of its first byte (else 408 and close), an idle connection is closed
//! after `--http-idle-ms`, a parse error is answered with its status and the connection
//! closed, `--max-api-connections` is counted per connection. Deadlines are checked by a sweep
//! at the earliest one, never on a fixed tick: a core with no API connection has no timer.
//! At shutdown the listener closes, idle connections close, and a connection in the middle of
//! a request is handed to a task, which finishes it under the task path's rules.

use std::cell::OnceCell;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use matchstream_http::{parse_request, Limits, Method, Parsed};
use slab::Slab;

use super::epoll::Epoll;
use super::{access, error, full_answer, handlers, Local, Resume, MAX_UNSENT};
use crate::linger;
use crate::listener::{accept_loop, adopt, spawn_connection, Port};
use crate::outbox::send_now;
use crate::shard::Shard;
use crate::stats::HttpSlot;

/// Bytes read from a ready connection at a time, into the core's one read buffer.
const READ_SIZE: usize = 64 * 1024;
/// Ready connections taken from the epoll set per call.
const EVENTS: usize = 256;
/// Connections accepted per wake of the listener before the ready connections get their turn.
const ACCEPT_BATCH: usize = 128;
/// The epoll key of the listener (a connection's key is its slab index).
const LISTENER: u64 = u64::MAX;
/// How long accepting pauses after the open-files limit (or memory) refused a connection.
const ACCEPT_PAUSE: Duration = Duration::from_millis(20);

/// Serves the API listener of this core until shutdown. Falls back to a task per connection
/// ([`accept_loop`]) if the kernel refuses an epoll set.
pub async fn run(shard: Rc<Shard>, listener: TcpListener) {
    let epoll = match Epoll::new().and_then(|e| {
        listener.set_nonblocking(true)?;
        e.add(listener.as_raw_fd(), libc::EPOLLIN as u32, LISTENER)?;
        Ok(e)
    }) {
        Ok(epoll) => epoll,
        Err(e) => {
            log::warn!(target: "matchstream::api",
                "core {}: no epoll set for the API port ({e}); a task per connection instead",
                shard.core);
            let _ = listener.set_nonblocking(false);
            return accept_loop(shard, adopt(listener), Port::Api, super::serve).await;
        }
    };
    let _task = shard.tasks.enter();
    Poller::new(&shard, epoll, listener).run().await;
}

/// One connection in the set.
struct Conn<'s> {
    socket: std::net::TcpStream,
    /// Its place under `--max-api-connections`.
    slot: HttpSlot<'s>,
    /// The start of a request not yet whole (empty between requests).
    partial: Vec<u8>,
    /// When the first byte of `partial` came.
    started: Option<Instant>,
    /// When the last request was answered (or the connection accepted).
    idle_since: Instant,
    /// The local address, asked for by checkin only.
    local: OnceCell<Option<SocketAddr>>,
    /// `TCP_NODELAY` is set: from the first answer of a connection that stays open on (as
    /// nginx does), so a connection that asks one thing and goes is spared the system call.
    /// The first answer cannot wait for Nagle: nothing is in flight before it.
    nodelay: bool,
}

/// What becomes of a connection after its turn.
enum Turn {
    Keep,
    Close,
    HandOver(Resume),
}

struct Poller<'s> {
    shard: &'s Rc<Shard>,
    epoll: Epoll,
    listener: TcpListener,
    conns: Slab<Conn<'s>>,
    read: Vec<u8>,
    out: Vec<u8>,
    limits: Limits,
    request_timeout: Duration,
    idle_timeout: Duration,
    /// The earliest deadline of any connection, if any (the next sweep).
    next_sweep: Option<Instant>,
    /// Accepting is paused until then (the open-files limit was reached).
    accept_paused: Option<Instant>,
    last_accept_error: Option<Instant>,
}

impl<'s> Poller<'s> {
    fn new(shard: &'s Rc<Shard>, epoll: Epoll, listener: TcpListener) -> Self {
        Poller {
            shard,
            epoll,
            listener,
            conns: Slab::new(),
            // Zeroed once, read into for the life of the core.
            read: vec![0; READ_SIZE],
            out: Vec::new(),
            limits: Limits::default(),
            request_timeout: Duration::from_millis(shard.config.http_timeout_ms),
            idle_timeout: Duration::from_millis(shard.config.http_idle_ms),
            next_sweep: None,
            accept_paused: None,
            last_accept_error: None,
        }
    }

    async fn run(mut self) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        loop {
            if self.shard.shutdown.is_set() {
                break;
            }
            let ready = self.epoll.wait(&mut events);
            let now = Instant::now();
            for event in &events[..ready] {
                let key = event.u64;
                if key == LISTENER {
                    self.accept(now);
                } else if let Ok(key) = usize::try_from(key) {
                    self.turn(key, now);
                }
            }
            if self.next_sweep.is_some_and(|at| at <= now) {
                self.sweep(now);
            }
            if self.accept_paused.is_some_and(|at| at <= now) {
                self.resume_accepting();
            }
            if ready > 0 {
                // Past the preemption period, the core's other tasks (the bus, the fanout)
                // have their turn before the next batch.
                glommio::yield_if_needed().await;
                continue;
            }
            if !self.wait().await {
                break;
            }
        }
        self.stop();
    }

    /// Waits for a ready connection or listener, the next deadline, or shutdown; false on
    /// shutdown.
    async fn wait(&self) -> bool {
        let wake = [self.next_sweep, self.accept_paused]
            .into_iter()
            .flatten()
            .min();
        let fd = self.epoll.fd.as_raw_fd();
        let ready = async {
            if let Err(e) = glommio::net::readable(fd).await {
                log::warn!(target: "matchstream::api",
                    "core {}: waiting on the API epoll set failed: {e}", self.shard.core);
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            true
        };
        let stop = async {
            self.shard.shutdown.wait().await;
            false
        };
        let deadline = async {
            match wake {
                Some(at) => {
                    glommio::timer::sleep(at.saturating_duration_since(Instant::now())).await
                }
                None => future::pending::<()>().await,
            }
            true
        };
        future::or(stop, future::or(ready, deadline)).await
    }

    /// Accepts what the listener has, up to a batch.
    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            // SAFETY: accept4 on our listening socket, no address asked for; the descriptor
            // returned is owned by the TcpStream made of it below.
            let fd = unsafe {
                libc::accept4(
                    self.listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    Some(libc::EINTR | libc::ECONNABORTED | libc::EPROTO) => continue,
                    _ => return self.accept_failed(e, now),
                }
            }
            // SAFETY: fd is a connected socket just returned by accept4, owned by no one else.
            let socket = unsafe { std::net::TcpStream::from_raw_fd(fd) };
            let Some(slot) = self
                .shard
                .node
                .http
                .admit(self.shard.config.max_api_connections)
            else {
                refuse(self.shard, socket);
                continue;
            };
            let entry = self.conns.vacant_entry();
            if let Err(e) = self.epoll.add(
                fd,
                (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
                entry.key() as u64,
            ) {
                log::debug!(target: "matchstream::api", "cannot watch an API connection: {e}");
                continue;
            }
            entry.insert(Conn {
                socket,
                slot,
                partial: Vec::new(),
                started: None,
                idle_since: now,
                local: OnceCell::new(),
                nodelay: false,
            });
            self.due(now + self.idle_timeout);
        }
    }

    /// Typically EMFILE at the open-files limit: say so at most once a second and stop
    /// accepting for a moment instead of spinning on a listener that stays ready.
    fn accept_failed(&mut self, e: io::Error, now: Instant) {
        if self
            .last_accept_error
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(1))
        {
            log::warn!(target: "matchstream::listener",
                "core {} cannot accept api connections: {e}", self.shard.core);
            self.last_accept_error = Some(now);
        }
        if self.accept_paused.is_none()
            && self
                .epoll
                .modify(self.listener.as_raw_fd(), 0, LISTENER)
                .is_ok()
        {
            self.accept_paused = Some(now + ACCEPT_PAUSE);
        }
    }

    fn resume_accepting(&mut self) {
        self.accept_paused = None;
        let _ = self
            .epoll
            .modify(self.listener.as_raw_fd(), libc::EPOLLIN as u32, LISTENER);
    }

    /// A ready connection's turn: one read, every whole request answered at once if it can
    /// be, the answers written.
    fn turn(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let fd = conn.socket.as_raw_fd();
        // SAFETY: recv into our buffer of the length we pass, on an open socket.
        let n = unsafe {
            libc::recv(
                fd,
                self.read.as_mut_ptr().cast(),
                self.read.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let n = match usize::try_from(n) {
            Ok(0) => return self.close(key),
            Ok(n) => n,
            Err(_) => match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => return,
                _ => return self.close(key),
            },
        };
        let turn = if conn.partial.is_empty() {
            answer(
                self.shard,
                conn,
                &self.read[..n],
                &mut self.out,
                &self.limits,
                now,
            )
        } else {
            let mut input = std::mem::take(&mut conn.partial);
            input.extend_from_slice(&self.read[..n]);
            answer(self.shard, conn, &input, &mut self.out, &self.limits, now)
        };
        if matches!(turn, Turn::Keep) && !conn.nodelay {
            conn.nodelay = true;
            let _ = conn.socket.set_nodelay(true);
        }
        if let Some(started) = conn.started {
            self.due(started + self.request_timeout);
        }
        match turn {
            Turn::Keep => {}
            Turn::Close => self.close(key),
            Turn::HandOver(resume) => self.hand_over(key, resume),
        }
    }

    /// Makes the next sweep no later than `at`.
    fn due(&mut self, at: Instant) {
        if self.next_sweep.is_none_or(|next| at < next) {
            self.next_sweep = Some(at);
        }
    }

    /// Closes what is past its deadline: 408 for a request not whole in time, nothing for an
    /// idle connection; and finds the next deadline.
    fn sweep(&mut self, now: Instant) {
        let mut next: Option<Instant> = None;
        let mut expired = Vec::new();
        for (key, conn) in &self.conns {
            let deadline = match conn.started {
                Some(t) => t + self.request_timeout,
                None => conn.idle_since + self.idle_timeout,
            };
            if deadline <= now {
                expired.push(key);
            } else if next.is_none_or(|n| deadline < n) {
                next = Some(deadline);
            }
        }
        for key in expired {
            let conn = &self.conns[key];
            if conn.started.is_some() {
                let mut out = Vec::new();
                error(408, "request not received in time").write_to(&mut out, false, false);
                send_now(conn.socket.as_raw_fd(), &out);
            }
            self.close(key);
        }
        self.next_sweep = next;
    }

    /// Closes a connection (closing its only descriptor takes it out of the epoll set too).
    fn close(&mut self, key: usize) {
        drop(self.conns.try_remove(key));
    }

    /// Moves a connection to a task of its own (see the module's documentation).
    fn hand_over(&mut self, key: usize, resume: Resume) {
        let Some(conn) = self.conns.try_remove(key) else {
            return;
        };
        let fd = conn.socket.as_raw_fd();
        let _ = self.epoll.delete(fd);
        if !conn.nodelay {
            let _ = conn.socket.set_nodelay(true);
        }
        conn.slot.hand_over();
        let stream = into_glommio(conn.socket);
        let shard = self.shard.clone();
        spawn_connection(self.shard.core, "api", async move {
            let _task = shard.tasks.enter();
            let slot = shard.node.http.adopt();
            super::serve_admitted(&shard, stream, slot, resume).await;
        });
    }

    /// At shutdown: idle connections close; one in the middle of a request is handed over.
    fn stop(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let conn = &mut self.conns[key];
            let resume = Resume {
                input: std::mem::take(&mut conn.partial),
                started: conn.started,
                ..Resume::default()
            };
            if resume.input.is_empty() {
                self.close(key);
            } else {
                self.hand_over(key, resume);
            }
        }
    }
}

/// Answers the whole requests in `input` that can be answered at once, writing the answers to
/// the socket; keeps the start of a request not yet whole in `conn.partial`.
fn answer(
    shard: &Rc<Shard>,
    conn: &mut Conn<'_>,
    input: &[u8],
    out: &mut Vec<u8>,
    limits: &Limits,
    now: Instant,
) -> Turn {
    out.clear();
    let fd = conn.socket.as_raw_fd();
    let mut at = 0;
    let mut closing = false;
    let mut waits = false;
    while at < input.len() {
        match parse_request(&input[at..], limits) {
            Ok(Parsed::Complete { request, consumed }) => {
                let local = Local::new(fd, &conn.local);
                let Some(response) = handlers::answer_now(shard, &request, &local) else {
                    // A write or a stream: the task answers it, from this request on.
                    waits = true;
                    break;
                };
                shard.stats.add_http_request();
                at += consumed;
                conn.started = None;
                let keep_alive = request.keep_alive && !shard.shutdown.is_set();
                let before = out.len();
                response.write_to(out, keep_alive, request.method == Method::Head);
                if shard.config.access_log {
                    access(
                        Some(&request),
                        response.status,
                        out.len() - before,
                        now,
                        peer(fd),
                    );
                }
                if !keep_alive {
                    closing = true;
                    break;
                }
                if out.len() >= MAX_UNSENT {
                    // The task path's backpressure from here on.
                    waits = true;
                    break;
                }
            }
            Ok(Parsed::Partial) => {
                conn.started.get_or_insert(now);
                break;
            }
            Err(e) => {
                let before = out.len();
                error(e.status(), e.reason()).write_to(out, false, false);
                if shard.config.access_log {
                    let received = conn.started.unwrap_or(now);
                    access(None, e.status(), out.len() - before, received, peer(fd));
                }
                closing = true;
                break;
            }
        }
    }
    conn.idle_since = now;
    let rest = &input[at..];
    let sent = send_some(fd, out);
    let Some(sent) = sent else {
        return Turn::Close;
    };
    if sent < out.len() || waits {
        return Turn::HandOver(Resume {
            input: if closing { Vec::new() } else { rest.to_vec() },
            output: out[sent..].to_vec(),
            started: conn.started,
            closing,
        });
    }
    if closing {
        return Turn::Close;
    }
    if !rest.is_empty() {
        conn.partial = rest.to_vec();
    }
    Turn::Keep
}

/// Writes as much of `bytes` as the socket takes now; `None` if the peer is gone.
fn send_some(fd: RawFd, bytes: &[u8]) -> Option<usize> {
    let mut sent = 0;
    while sent < bytes.len() {
        // SAFETY: send from our buffer of the length we pass, on an open socket.
        let n = unsafe {
            libc::send(
                fd,
                bytes[sent..].as_ptr().cast(),
                bytes.len() - sent,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        match usize::try_from(n) {
            Ok(n) => sent += n,
            Err(_) => match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) => break,
                Some(libc::EINTR) => continue,
                _ => return None,
            },
        }
    }
    Some(sent)
}

/// The peer's address, for the access log.
fn peer(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: the descriptor is the open socket of the connection being answered.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    socket2::SockRef::from(&fd)
        .peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
}

/// A connection's socket as a glommio stream, for a task of its own.
fn into_glommio(socket: std::net::TcpStream) -> glommio::net::TcpStream {
    // glommio's streams expect a blocking descriptor (they never block on it).
    let _ = socket.set_nonblocking(false);
    // SAFETY: the socket's ownership moves to the glommio stream.
    unsafe { glommio::net::TcpStream::from_raw_fd(socket.into_raw_fd()) }
}

/// Answers a connection above `--max-api-connections` with 503, in a task of its own.
fn refuse(shard: &Rc<Shard>, socket: std::net::TcpStream) {
    let stream = into_glommio(socket);
    let shard = shard.clone();
    spawn_connection(shard.core, "api", async move {
        let _task = shard.tasks.enter();
        linger::refuse(stream, &full_answer(), &shard.shutdown).await;
    });
}
