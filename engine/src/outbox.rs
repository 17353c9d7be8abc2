//! A subscriber's outbound queue of shared frames, and the vectored write that drains it.
//!
//! Policy (the fanout hot path): a frame is rendered once per core and shared by reference
//! count; subscribers only queue pointers to it. The core appends an event's frame to every
//! subscriber's outbox, then flushes each outbox once with a single non-blocking `sendmsg`
//! over all its queued frames, so the cost is one system call per subscriber per batch of
//! events, not per event. Only when the socket is full does a tend task take over and
//! wait for writability through io_uring. Unsent bytes are bounded by `max_queue`: past it
//! the subscriber is ended as too slow (SPEC §3) and the shared frames are released.
//!
//! An outbox owns its subscriber's socket. A healthy subscriber has no task at all: the
//! outbox in its core's fanout table is all it costs. A task ([`tend`]) exists only while the
//! socket is full or the stream ends with something left to say; the outbox closes the socket
//! when it is dropped (or when that task closes it).

pub mod tend;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use matchstream_protocol::encoding::Encoding;

use crate::stats::CoreStats;

/// A rendered frame, shared by every subscriber of a core.
pub type Frame = Rc<[u8]>;

/// Most frames handed to one `sendmsg` call.
const MAX_IOVECS: usize = 64;

/// Bytes of a subscriber's input (anything after its command line) that one check of
/// [`Outbox::peer_gone`] reads and discards; a subscriber that sent more since the last check
/// (every few seconds) floods its stream with input nobody reads and is cut off.
pub const MAX_DISCARD: usize = 64 * 1024;

/// The stack buffer that input is discarded through, one `recv` at a time.
const DISCARD_CHUNK: usize = 4096;

/// Why and how a subscriber's stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Normal end (after `stop`, or after the status of a match that is not live):
    /// close once everything queued is sent.
    Finished,
    /// The server is stopping: the error line is queued; close once it is sent.
    Shutdown,
    /// Unsent output exceeded the bound: write `ERROR: too slow` if possible and close now.
    TooSlow,
    /// The match was cancelled: write the error line if possible and close now.
    Cancelled,
    /// The match's history was replaced (a new incarnation): the same, with its own line.
    HistoryChanged,
    /// The node withdrew the match (its stored data fails the checks): the same.
    Unavailable,
    /// The node is draining ([`crate::drain`]): the same, and the client resumes elsewhere.
    Draining,
    /// The peer is gone (write error or EOF): close now.
    PeerGone,
}

impl End {
    /// True for ends that wait for the queue to drain.
    pub fn is_graceful(self) -> bool {
        matches!(self, End::Finished | End::Shutdown)
    }

    /// The reason an abrupt end says before closing, if any (an `ERROR:` line on a stream
    /// port, an `error` event on an SSE stream).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            End::TooSlow => Some("too slow"),
            End::Cancelled => Some("match cancelled"),
            End::HistoryChanged => Some("match history changed"),
            End::Unavailable => Some("match unavailable"),
            End::Draining => Some(crate::drain::REASON),
            End::Finished | End::Shutdown | End::PeerGone => None,
        }
    }

    /// True for an end with an error line to say (an abrupt one: a task must say it).
    fn has_last_words(self) -> bool {
        self.reason().is_some()
    }
}

/// One subscriber's send side and socket, kept in the core's fanout table.
pub struct Outbox {
    socket: RefCell<Option<OwnedFd>>,
    fd: RawFd,
    /// The core's counters: bytes and frames sent, subscribers, slow disconnects ([`tend`]).
    stats: Arc<CoreStats>,
    /// How the subscriber's stream is written (v1, v2 frames or SSE): which shared frames it
    /// queues and how its last words read.
    pub encoding: Encoding,
    queue: RefCell<VecDeque<Frame>>,
    /// Bytes of the first queued frame already sent.
    offset: Cell<usize>,
    /// Unsent bytes across the queue (counted into the core's `queued_bytes` by
    /// [`Outbox::set_queued`]).
    queued: Cell<usize>,
    max_queue: usize,
    /// The socket was full: the tend task is waiting for writability and owns the writes.
    blocked: Cell<bool>,
    /// Queued for the end-of-batch flush already.
    dirty: Cell<bool>,
    end: Cell<Option<End>>,
    waker: RefCell<Option<Waker>>,
    /// A task tends this outbox (full socket or last words).
    tended: Cell<bool>,
    /// Sweeps of the core since bytes last left ([`Outbox::quiet_for`], the SSE keep-alive).
    quiet: Cell<u16>,
}

impl Outbox {
    /// An empty outbox owning `socket`; counts as a subscriber of `stats` until dropped.
    pub fn new(
        socket: OwnedFd,
        encoding: Encoding,
        max_queue: usize,
        stats: Arc<CoreStats>,
    ) -> Outbox {
        stats.subscribers_delta(true);
        Outbox {
            fd: socket.as_raw_fd(),
            socket: RefCell::new(Some(socket)),
            stats,
            encoding,
            queue: RefCell::new(VecDeque::new()),
            offset: Cell::new(0),
            queued: Cell::new(0),
            max_queue,
            blocked: Cell::new(false),
            dirty: Cell::new(false),
            end: Cell::new(None),
            waker: RefCell::new(None),
            tended: Cell::new(false),
            quiet: Cell::new(0),
        }
    }

    /// The socket.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Closes the socket now (the outbox may live on in a table until it is swept).
    fn close(&self) {
        self.socket.borrow_mut().take();
    }

    /// True when the stream has ended and a task must act: a full socket to wait on, or last
    /// words to say. A subscriber in neither state needs no task.
    pub fn wants_task(&self) -> bool {
        !self.tended.get()
            && self.socket.borrow().is_some()
            && (self.blocked.get()
                || self.end.get().is_some_and(End::has_last_words)
                || (self.end.get().is_some_and(End::is_graceful) && !self.is_empty()))
    }

    /// Marks that a task tends the outbox (`true`) or no longer does (`false`).
    fn set_tended(&self, tended: bool) {
        self.tended.set(tended);
    }

    /// Checks whether the peer has gone, for idle subscribers, whose sockets are otherwise
    /// only noticed dead on the next write. Input after the command line is read and
    /// discarded here (docs/protocol.md), with non-blocking reads into a small stack buffer,
    /// so that a close behind it is seen: a peek would see the unread byte, not the EOF.
    /// Gone: EOF, an error, or more than [`MAX_DISCARD`] bytes of input in one check (a peer
    /// that floods its stream with input is cut off).
    pub fn peer_gone(&self) -> bool {
        let mut buf = [0u8; DISCARD_CHUNK];
        let mut discarded = 0;
        while discarded <= MAX_DISCARD {
            // SAFETY: recv into a local buffer of that length on our socket, without waiting.
            let n = unsafe {
                libc::recv(
                    self.fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            match n {
                0 => return true,
                n if n > 0 => discarded += n as usize,
                _ => {
                    let e = std::io::Error::last_os_error();
                    match e.kind() {
                        std::io::ErrorKind::WouldBlock => return false,
                        std::io::ErrorKind::Interrupted => {}
                        _ => return true,
                    }
                }
            }
        }
        log::debug!(target: "matchstream::outbox",
            "fd {}: more than {MAX_DISCARD} bytes of input since the last check: cut off", self.fd);
        true
    }

    /// Counts one sweep of the core; true (and the count starts again) once more than `after`
    /// sweeps passed without a byte sent (`after` 0: never). The sweep then queues the SSE
    /// keep-alive: a stream that had nothing sent for `after` sweep periods gets it at the next.
    pub fn quiet_for(&self, after: u32) -> bool {
        if after == 0 {
            return false;
        }
        let n = self.quiet.get().saturating_add(1);
        if u32::from(n) > after {
            self.quiet.set(0);
            true
        } else {
            self.quiet.set(n);
            false
        }
    }

    /// Queues a frame. Ignored once the stream has an end. Ends the stream as too slow when
    /// the unsent bytes pass the bound.
    pub fn push(&self, frame: Frame) {
        if self.end.get().is_some() {
            return;
        }
        self.set_queued(self.queued.get() + frame.len());
        self.queue.borrow_mut().push_back(frame);
        if self.queued.get() > self.max_queue {
            self.finish(End::TooSlow);
        }
    }

    /// Queues a last frame even after a graceful end was set (the shutdown notice).
    pub fn push_final(&self, frame: Frame) {
        if matches!(self.end.get(), None | Some(End::Finished)) {
            self.set_queued(self.queued.get() + frame.len());
            self.queue.borrow_mut().push_back(frame);
        }
    }

    /// Sets how the stream ends (the first abrupt end wins over a graceful one) and wakes
    /// the tend task. An abrupt end drops the queued frames.
    pub fn finish(&self, end: End) {
        match self.end.get() {
            Some(current) if !current.is_graceful() => return,
            Some(current) if end.is_graceful() && current == end => return,
            _ => {}
        }
        self.end.set(Some(end));
        if !end.is_graceful() {
            // Keep only the rest of a frame already started, so the peer never sees half a
            // frame followed by the error line.
            let mut queue = self.queue.borrow_mut();
            let keep = usize::from(self.offset.get() > 0).min(queue.len());
            queue.truncate(keep);
            self.set_queued(
                queue
                    .front()
                    .map_or(0, |f| f.len().saturating_sub(self.offset.get())),
            );
        }
        self.wake();
    }

    /// How the stream ends, once decided.
    pub fn end(&self) -> Option<End> {
        self.end.get()
    }

    /// Marks the outbox for the end-of-batch flush; true if it was not marked yet.
    pub fn mark_dirty(&self) -> bool {
        !self.dirty.replace(true)
    }

    /// True when nothing is left to send.
    fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    /// True while the tend task waits for the socket to become writable.
    fn is_blocked(&self) -> bool {
        self.blocked.get()
    }

    /// Registers the tend task's waker.
    fn register(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow().as_ref() {
            w.wake_by_ref();
        }
    }

    /// Sends as much of the queue as the socket takes now, without blocking. Leaves the rest
    /// to the tend task (marked blocked) when the socket is full.
    pub fn flush(&self) {
        self.dirty.set(false);
        if self.blocked.get() || self.socket.borrow().is_none() {
            return;
        }
        loop {
            let (result, offered) = {
                let queue = self.queue.borrow();
                if queue.is_empty() {
                    break;
                }
                let mut iov: [libc::iovec; MAX_IOVECS] = [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; MAX_IOVECS];
                let mut count = 0;
                let mut offered = 0;
                for (i, frame) in queue.iter().take(MAX_IOVECS).enumerate() {
                    let skip = if i == 0 { self.offset.get() } else { 0 };
                    let bytes = &frame[skip..];
                    iov[i] = libc::iovec {
                        iov_base: bytes.as_ptr() as *mut libc::c_void,
                        iov_len: bytes.len(),
                    };
                    offered += bytes.len();
                    count = i + 1;
                }
                (send_vectored(self.fd, &iov[..count]), offered)
            };
            match result {
                Ok(sent) => {
                    self.consume(sent);
                    if sent < offered {
                        self.block();
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.block();
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!(target: "matchstream::outbox", "write to fd {} failed: {e}", self.fd);
                    self.finish(End::PeerGone);
                    return;
                }
            }
        }
        if self.end.get().is_some_and(End::is_graceful) {
            self.wake();
        }
    }

    /// The unsent rest of the first frame, for the tend task's awaited write.
    fn head(&self) -> Option<Frame> {
        self.queue.borrow().front().cloned()
    }

    /// Offset into [`Outbox::head`] where the unsent bytes start.
    fn head_offset(&self) -> usize {
        self.offset.get()
    }

    /// Records that `sent` bytes left through the tend task's write, clears the blocked
    /// mark and flushes whatever else fits.
    fn resume(&self, sent: usize) {
        self.consume(sent);
        self.blocked.set(false);
        self.flush();
    }

    /// Sets the unsent bytes, and the core's count of them by the difference.
    fn set_queued(&self, n: usize) {
        let was = self.queued.replace(n);
        if n > was {
            self.stats.queued_grew(n - was);
        } else {
            self.stats.queued_shrank(was - n);
        }
    }

    fn block(&self) {
        self.blocked.set(true);
        self.wake();
    }

    fn consume(&self, mut sent: usize) {
        if sent > 0 {
            self.quiet.set(0);
        }
        let stats = &self.stats;
        stats.add_bytes(sent as u64);
        self.set_queued(self.queued.get().saturating_sub(sent));
        let mut queue = self.queue.borrow_mut();
        let mut frames = 0;
        while sent > 0 {
            let Some(front) = queue.front() else { break };
            let left = front.len() - self.offset.get();
            if sent >= left {
                sent -= left;
                queue.pop_front();
                self.offset.set(0);
                frames += 1;
            } else {
                self.offset.set(self.offset.get() + sent);
                sent = 0;
            }
        }
        stats.add_frames(frames);
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.stats.subscribers_delta(false);
        self.stats.queued_shrank(self.queued.get());
    }
}

/// Sends `bytes` once without waiting (error lines to a client that just connected, whose
/// socket buffer is empty). Returns whether all of it went.
pub fn send_now(fd: RawFd, bytes: &[u8]) -> bool {
    let iov = [libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    }];
    matches!(send_vectored(fd, &iov), Ok(n) if n == bytes.len())
}

/// A second descriptor for the same socket (close-on-exec): how a socket moves out of glommio
/// into an outbox, and how a tend task gets a glommio stream on an outbox's socket.
pub fn duplicate(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor the caller owns; the new one is owned by the result.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        // SAFETY: `new` is a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }
}

/// One non-blocking vectored send (`MSG_DONTWAIT`, so the socket's own mode does not matter;
/// `MSG_NOSIGNAL`, so a closed peer is an error, not a SIGPIPE).
fn send_vectored(fd: RawFd, iov: &[libc::iovec]) -> std::io::Result<usize> {
    // SAFETY: msghdr is plain data; every field we do not set is zero (no address, no
    // control data). `iov` points at frames kept alive by the borrowed queue for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len();
    // SAFETY: fd is a socket owned by the caller; msg is valid for the duration of the call.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    fn frame(s: &str) -> Frame {
        Rc::from(s.as_bytes())
    }

    #[test]
    fn flush_sends_all_queued_frames_in_one_go() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        let stats = Arc::new(CoreStats::default());
        let out = Outbox::new(a.into(), Encoding::V1, 1 << 20, stats.clone());
        assert_eq!(stats.subscribers(), 1);
        out.push(frame("one\r\n"));
        out.push(frame("two\r\n"));
        out.flush();
        assert!(out.is_empty());
        let mut buf = [0u8; 10];
        b.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"one\r\ntwo\r\n");
        assert_eq!(stats.snapshot().frames_sent, 2);
        assert_eq!(stats.snapshot().bytes_sent, 10);
        drop(out);
        assert_eq!(stats.subscribers(), 0);
    }

    fn set_buffer(fd: RawFd, option: libc::c_int, bytes: libc::c_int) {
        // SAFETY: setsockopt on our own socket with a c_int of the given size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt");
    }

    #[test]
    fn a_full_socket_blocks_keeps_the_rest_and_sends_it_exactly_once_drained() {
        // TCP on loopback, which frees its buffers by the byte, not by the frame.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let a =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut b, _) = listener.accept().expect("accept");
        b.set_read_timeout(Some(std::time::Duration::from_millis(10)))
            .expect("timeout");
        // A small fixed send buffer (no autotuning): the socket fills early.
        set_buffer(a.as_raw_fd(), libc::SO_SNDBUF, 8 * 1024);
        let stats = Arc::new(CoreStats::default());
        let out = Outbox::new(a.into(), Encoding::V1, usize::MAX, stats.clone());
        // 64 distinct frames of 16 KiB: each starts with its number and is filled with its
        // own letter, so a frame sent twice, skipped or cut shows in the bytes.
        let mut want = Vec::new();
        for i in 0..64u8 {
            let mut bytes = format!("frame {i:02}:").into_bytes();
            bytes.resize(16 * 1024, b'a' + i % 26);
            want.extend_from_slice(&bytes);
            out.push(Rc::from(bytes));
        }
        out.flush();
        assert!(
            out.is_blocked(),
            "1 MiB does not fit in the sockets' buffers"
        );
        assert!(out.wants_task());
        assert!(!out.is_empty());
        // What a tend task does: once the reader (3,001 bytes at a time) drained some, write
        // more of the head frame, then hand back to the flush.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..100_000 {
            if let Ok(n) = b.read(&mut buf[..3001]) {
                got.extend_from_slice(&buf[..n]);
            }
            if out.is_empty() {
                break;
            }
            let head = out.head().expect("a head while not empty");
            // At most 1,000 bytes: the head's rest is taken in several partial writes.
            let rest = &head[out.head_offset()..];
            let rest = &rest[..rest.len().min(1000)];
            let iov = [libc::iovec {
                iov_base: rest.as_ptr() as *mut libc::c_void,
                iov_len: rest.len(),
            }];
            match send_vectored(out.fd(), &iov) {
                Ok(n) => out.resume(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("send: {e}"),
            }
        }
        assert!(
            out.is_empty(),
            "everything left the queue: got {} of {}, queued {}",
            got.len(),
            want.len(),
            out.queued.get()
        );
        assert!(!out.is_blocked());
        while got.len() < want.len() {
            match b.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the bytes arrive exactly once, in order");
        assert_eq!(stats.snapshot().frames_sent, 64);
        assert_eq!(stats.snapshot().bytes_sent, want.len() as u64);
    }

    #[test]
    fn exceeding_the_bound_ends_as_too_slow_and_drops_the_queue() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::V1, 8, Arc::default());
        out.push(frame("12345"));
        assert_eq!(out.end(), None);
        out.push(frame("67890"));
        assert_eq!(out.end(), Some(End::TooSlow));
        assert!(out.is_empty());
        out.push(frame("more"));
        assert!(out.is_empty());
    }

    #[test]
    fn the_bound_is_passed_only_past_it_and_counts_a_final_frame_too() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::V1, 10, Arc::default());
        out.push(frame("12345"));
        out.push(frame("67890"));
        assert_eq!(out.end(), None, "exactly the bound is not past it");
        out.push(frame("1"));
        assert_eq!(out.end(), Some(End::TooSlow));

        let (a, _b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::V1, 10, Arc::default());
        out.push_final(frame("123456"));
        out.push(frame("7890"));
        assert_eq!(out.end(), None);
        out.push(frame("1"));
        assert_eq!(
            out.end(),
            Some(End::TooSlow),
            "the final frame's bytes are unsent bytes too"
        );
    }

    #[test]
    fn an_abrupt_end_wins_over_a_graceful_one_and_the_first_abrupt_end_stays() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::V1, 1 << 20, Arc::default());
        out.push(frame("left over\r\n"));
        out.finish(End::Finished);
        assert!(!out.is_empty(), "a graceful end keeps the queue to send");
        out.finish(End::PeerGone);
        assert_eq!(out.end(), Some(End::PeerGone));
        assert!(out.is_empty(), "an abrupt end drops the queue");

        for later in [End::Finished, End::Shutdown, End::Cancelled, End::PeerGone] {
            let (a, _b) = UnixStream::pair().expect("pair");
            let out = Outbox::new(a.into(), Encoding::V1, 1 << 20, Arc::default());
            out.finish(End::TooSlow);
            out.finish(later);
            assert_eq!(out.end(), Some(End::TooSlow), "after {later:?}");
        }
    }

    #[test]
    fn a_stream_ended_then_shut_down_gets_one_notice_after_its_rest() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        b.set_nonblocking(true).expect("nonblocking");
        let out = Outbox::new(a.into(), Encoding::V1, 1 << 20, Arc::default());
        out.push(frame("the end\r\n"));
        out.finish(End::Finished);
        out.push_final(frame("ERROR: server shutting down\r\n"));
        out.finish(End::Shutdown);
        assert_eq!(
            out.end(),
            Some(End::Shutdown),
            "a later graceful end replaces one"
        );
        out.push_final(frame("a second notice\r\n"));
        out.flush();
        let mut got = Vec::new();
        drain(&mut b, &mut got);
        assert_eq!(got, b"the end\r\nERROR: server shutting down\r\n");
    }

    #[test]
    fn a_duplicate_writes_to_the_same_socket_and_a_bad_descriptor_has_none() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        // Descriptor 0 free, as in a process started with its standard input closed: a
        // duplicate may be 0 like any other. (nextest runs each test in a process of its own.)
        // SAFETY: closing this test process's standard input, which nothing reads.
        unsafe { libc::close(0) };
        let copy = duplicate(a.as_raw_fd()).expect("a duplicate, descriptor 0 included");
        drop(a);
        assert!(send_now(copy.as_raw_fd(), b"through the copy"));
        drop(copy);
        let mut got = Vec::new();
        b.read_to_end(&mut got).expect("read to the close");
        assert_eq!(got, b"through the copy");
        assert!(duplicate(1 << 24).is_err(), "no such descriptor");
    }

    #[test]
    fn an_outbox_is_marked_for_the_flush_once_until_flushed() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::V1, 1 << 20, Arc::default());
        assert!(out.mark_dirty(), "not marked yet");
        assert!(!out.mark_dirty(), "marked already");
        out.flush();
        assert!(out.mark_dirty(), "the flush cleared the mark");
    }

    /// Frames of 16 KiB, distinct bytes each, filling `out` past what a socket buffers; the
    /// bytes expected on the other side.
    fn fill(out: &Outbox, frames: u8) -> Vec<u8> {
        let mut want = Vec::new();
        for i in 0..frames {
            let mut bytes = format!("frame {i:02}:").into_bytes();
            bytes.resize(16 * 1024, b'a' + i % 26);
            want.extend_from_slice(&bytes);
            out.push(Rc::from(bytes));
        }
        want
    }

    /// Reads what has arrived on `peer` (non-blocking) into `got`; returns how many bytes.
    fn drain(peer: &mut UnixStream, got: &mut Vec<u8>) -> usize {
        let mut buf = vec![0u8; 64 * 1024];
        let before = got.len();
        while let Ok(n) = peer.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.len() - before
    }

    #[test]
    fn a_socket_still_full_blocks_again_and_is_not_a_gone_peer() {
        let (a, b) = UnixStream::pair().expect("pair");
        b.set_nonblocking(true).expect("nonblocking");
        let out = Outbox::new(a.into(), Encoding::V2, usize::MAX, Arc::default());
        fill(&out, 64);
        out.flush();
        assert!(out.is_blocked());
        // What the tend task does when woken with nothing written: hand back to the flush,
        // which finds the socket as full as before.
        for _ in 0..8 {
            out.resume(0);
            assert!(out.is_blocked(), "full: the task waits again");
            assert_eq!(out.end(), None, "a full socket is not a gone peer");
        }
    }

    #[test]
    fn while_blocked_the_flush_leaves_the_writes_to_the_task() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        b.set_nonblocking(true).expect("nonblocking");
        let out = Outbox::new(a.into(), Encoding::V2, usize::MAX, Arc::default());
        let mut want = fill(&out, 64);
        out.flush();
        assert!(out.is_blocked());
        let mut got = Vec::new();
        assert!(drain(&mut b, &mut got) > 0);
        // Room again, and a new event's frame: the task's write (of the head frame, from its
        // offset) is in flight, so the flush must not write past it.
        let last = frame("the next event\r\n");
        want.extend_from_slice(&last);
        out.push(last);
        out.flush();
        assert_eq!(
            drain(&mut b, &mut got),
            0,
            "nothing written around the task"
        );
        // The task's write lands; from here the flush writes again.
        while !out.is_empty() {
            out.resume(0);
            drain(&mut b, &mut got);
        }
        assert!(got == want, "every byte once, in order");
    }

    #[test]
    fn the_waker_registered_last_is_the_one_woken() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Wake;

        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (a, _b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::V2, 1 << 20, Arc::default());
        let (first, second) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        // A task that ended, then a new one tending the same outbox.
        out.register(&Waker::from(first.clone()));
        out.register(&Waker::from(second.clone()));
        out.finish(End::TooSlow);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the tending task is woken"
        );
    }

    #[test]
    fn only_bytes_sent_start_the_quiet_count_again() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::Sse, 1 << 20, Arc::default());
        assert!(!out.quiet_for(2));
        assert!(!out.quiet_for(2));
        // The tend task handing back with nothing written: no output.
        out.resume(0);
        assert!(out.quiet_for(2), "three sweeps without a byte sent");
        assert!(!out.quiet_for(2), "the count starts again");
        out.push(frame("x"));
        out.flush();
        assert!(!out.quiet_for(2), "a byte left: counted from there");
        assert!(!out.quiet_for(2));
        assert!(out.quiet_for(2));
    }

    #[test]
    fn a_graceful_end_needs_the_task_only_once_drained() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::V1, 1 << 20, Arc::default());
        out.push(frame("stop\r\n"));
        out.finish(End::Finished);
        assert!(out.wants_task(), "something left to send after the end");
        out.flush();
        assert!(
            !out.wants_task(),
            "all sent: dropping the outbox closes the socket"
        );
    }

    #[test]
    fn writing_to_a_closed_peer_ends_the_stream() {
        let (a, b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::V1, 1 << 20, Arc::default());
        assert!(!out.peer_gone());
        drop(b);
        assert!(out.peer_gone());
        out.push(frame("x"));
        out.flush();
        assert_eq!(out.end(), Some(End::PeerGone));
    }

    #[test]
    fn input_after_the_command_is_discarded_and_a_close_behind_it_seen() {
        use std::io::Write;
        let (a, mut b) = UnixStream::pair().expect("pair");
        let out = Outbox::new(a.into(), Encoding::V2, 1 << 20, Arc::default());
        b.write_all(b"x").expect("write");
        assert!(!out.peer_gone(), "input alone is not a close");
        b.write_all(b"more").expect("write");
        drop(b);
        assert!(out.peer_gone(), "a close behind unread input");
    }

    #[test]
    fn up_to_64_kib_of_input_between_two_checks_is_discarded_not_cut_off() {
        use std::io::Write;
        let (a, mut b) = UnixStream::pair().expect("pair");
        b.set_nonblocking(true).expect("nonblocking");
        let out = Outbox::new(a.into(), Encoding::V2, 1 << 20, Arc::default());
        // docs/protocol.md: more than 64 KiB since the last check is a cut-off; 64 KiB is not.
        b.write_all(&vec![b'x'; 64 * 1024])
            .expect("the pair's buffer takes it");
        assert!(!out.peer_gone(), "64 KiB of input is read and thrown away");
        b.write_all(b"and again").expect("write");
        assert!(!out.peer_gone(), "the count starts again at each check");
    }

    #[test]
    fn close_releases_the_socket_while_the_outbox_lives_on() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        b.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        let out = Outbox::new(a.into(), Encoding::V1, 1 << 20, Arc::default());
        out.push(frame("kept\r\n"));
        out.finish(End::Finished);
        assert!(out.wants_task(), "a graceful end with something left");
        out.close();
        // The peer sees the close now, not when the table lets the outbox go.
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).expect("an end of stream");
        assert!(rest.is_empty(), "nothing was sent: {rest:?}");
        assert!(!out.wants_task(), "no task for a closed socket");
        out.flush();
        assert_eq!(
            out.end(),
            Some(End::Finished),
            "a closed socket is not a gone peer"
        );
    }

    #[test]
    fn a_peer_flooding_input_is_cut_off() {
        use std::io::Write;
        let (a, mut b) = UnixStream::pair().expect("pair");
        b.set_nonblocking(true).expect("nonblocking");
        let out = Outbox::new(a.into(), Encoding::V2, 1 << 20, Arc::default());
        let flood = vec![b'x'; MAX_DISCARD + 2 * DISCARD_CHUNK];
        b.write_all(&flood).expect("the pair's buffer takes it");
        assert!(out.peer_gone(), "more than the bound since the last check");
    }
}
