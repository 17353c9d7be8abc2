//! The HTTP API: one task per connection, requests parsed incrementally (partial reads,
//! pipelining) by `matchstream-http`, answered by [`handlers`].
//!
//! Policy: a request must arrive whole within `--http-timeout-ms` of its first byte (else 408
//! and close: slow-loris clients cannot hold a connection); an idle keep-alive connection is
//! closed after `--http-idle-ms`; any parse error is answered with its status and the
//! connection closed; nothing a client sends can change stored data unless it is a complete,
//! authenticated, valid write.
//!
//! A connection's memory is bounded by a constant, whatever it pipelines and however slowly it
//! reads (issue 11):
//!
//! - **Backpressure.** The requests already read are answered in order until [`MAX_UNSENT`]
//!   bytes of answers wait; those are written before the next request is answered, and the
//!   socket is read only once every answer is written and no whole request is left. One answer
//!   may exceed the bound alone (a long history); no second one is rendered on top of it. So a
//!   connection holds at most `MAX_UNSENT` plus one answer, and one request of input (the
//!   parser's limits, 8 KiB of head and 64 KiB of body, plus a [`READ_CHUNK`]); the requests of
//!   a client that does not read wait in its own socket buffers. Buffers grown past
//!   [`KEEP_CAPACITY`] are freed once emptied.
//! - **Write timeout.** A write that makes no progress for `--http-write-timeout-ms` closes the
//!   connection and is counted: a client that never reads is let go. Progress restarts the wait.
//! - **Connection cap.** At most `--max-api-connections` API connections are open on the node,
//!   all cores together ([`crate::stats::HttpStats`]). Above it a connection is answered
//!   `503 too many connections` at once, without its request being read, and closed the
//!   lingering way ([`crate::linger`]), so the client reads the answer, not a reset.
//!
//! A request for a match's event stream (SPEC §8) ends the request loop: the answers before it
//! and the stream's head are written, and the connection becomes a subscriber ([`stream`]),
//! out of the connection cap; requests pipelined behind it are never read.

pub mod admin;
mod epoll;
pub mod handlers;
pub mod pages;
pub mod poller;
pub mod stream;

use std::cell::OnceCell;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use matchstream_http::{parse_request, Limits, Method, Parsed, Response};
use matchstream_protocol::api::error_body;

use crate::linger;
use crate::shard::Shard;
use crate::stats::HttpSlot;
use handlers::Answer;

/// Bytes read from the socket at a time.
pub const READ_CHUNK: usize = 4096;

/// Most bytes of answers rendered and not yet written: past it, a connection's next request is
/// answered (and its socket read) only once they are written. One answer may be larger alone.
/// 64 KiB already makes one write of many small pipelined answers; more would only hold
/// memory the kernel's socket buffer holds anyway.
pub const MAX_UNSENT: usize = 64 * 1024;

/// Capacity an emptied read or write buffer keeps; a larger one (grown by a big request or
/// answers) is freed, so an idle keep-alive connection holds little.
pub const KEEP_CAPACITY: usize = 16 * 1024;

/// A JSON error response `{"error": reason}`.
pub fn error(status: u16, reason: &str) -> Response {
    Response::json(status, error_body(reason))
}

/// Adds the CORS header every public read carries.
pub fn read(response: Response) -> Response {
    response.with_header("Access-Control-Allow-Origin", "*")
}

/// The address a connection reached this node at, for checkin's answer without
/// `--advertise`: a `getsockname` the first time it is asked on a connection, none for the
/// requests that never ask (issue 14: a system call per connection that most do not need).
pub struct Local<'a> {
    fd: RawFd,
    addr: &'a OnceCell<Option<SocketAddr>>,
}

impl<'a> Local<'a> {
    /// The local address of the socket `fd`, kept in `addr` once asked.
    pub fn new(fd: RawFd, addr: &'a OnceCell<Option<SocketAddr>>) -> Self {
        Local { fd, addr }
    }

    /// The connection's local address, if the kernel tells it.
    pub fn get(&self) -> Option<SocketAddr> {
        *self.addr.get_or_init(|| {
            // SAFETY: the descriptor is the open socket of the connection being answered,
            // borrowed for this call only.
            let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
            socket2::SockRef::from(&fd)
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
        })
    }
}

/// What a wait for more of a request brought.
enum Input {
    Read(std::io::Result<usize>),
    Timeout,
    Shutdown,
}

/// Serves one HTTP connection until the client closes, an error, a timeout or shutdown; above
/// the node's connection cap, refuses it with 503. (The API port's own connections start in
/// [`poller`]; this serves them from the moment they need a task, and any other.)
pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let _task = shard.tasks.enter();
    let Some(slot) = shard.node.http.admit(shard.config.max_api_connections) else {
        // Boxed: the refusal's buffer and timer are not part of every connection's future.
        return Box::pin(linger::refuse(stream, &full_answer(), &shard.shutdown)).await;
    };
    serve_admitted(&shard, stream, slot, Resume::default()).await;
}

/// Where a connection handed over by [`poller`] stands: bytes read and not yet answered,
/// answers not yet written, the first byte's time of a request still arriving, and whether
/// the connection closes once its answers are written.
#[derive(Default)]
pub struct Resume {
    /// Bytes read, not yet answered: whole requests and the start of the next.
    pub input: Vec<u8>,
    /// Answers rendered, not yet written.
    pub output: Vec<u8>,
    /// When the first byte of an incomplete request at the end of `input` came.
    pub started: Option<Instant>,
    /// The last answer in `output` says `Connection: close`.
    pub closing: bool,
}

/// Serves an admitted connection (it holds `slot`) from where `resume` says it stands.
pub async fn serve_admitted(
    shard: &Rc<Shard>,
    mut stream: TcpStream,
    slot: HttpSlot<'_>,
    resume: Resume,
) {
    let write_timeout = Duration::from_millis(shard.config.http_write_timeout_ms.max(1));
    if stream.set_write_timeout(Some(write_timeout)).is_err() {
        return;
    }
    if resume.closing {
        let _ = stream.write_all(&resume.output).await;
        return;
    }
    // Asked of the kernel only when an answer needs it (checkin), once per connection.
    let local = OnceCell::new();
    // Only asked for when the access log wants it (a syscall per connection).
    let peer = if shard.config.access_log {
        stream.peer_addr().ok()
    } else {
        None
    };
    let limits = Limits::default();
    let mut buf = InBuf::from(resume.input);
    let mut out = resume.output;
    let mut started = resume.started;
    loop {
        let mut close = false;
        // Whether every whole request read so far is answered: only then is the socket read.
        let mut drained = true;
        while !buf.is_empty() {
            if out.len() >= MAX_UNSENT {
                drained = false;
                break;
            }
            match parse_request(buf.pending(), &limits) {
                Ok(Parsed::Complete { request, consumed }) => {
                    buf.consume(consumed);
                    started = None;
                    shard.stats.add_http_request();
                    let received = Instant::now();
                    let response = match handlers::handle(
                        shard,
                        &request,
                        Local::new(stream.as_raw_fd(), &local),
                    )
                    .await
                    {
                        Answer::Reply(response) => response,
                        Answer::Stream(plan) => {
                            let before = out.len();
                            self::stream::head().write_head_until_close(&mut out);
                            if shard.config.access_log {
                                let head = out.len() - before;
                                access(Some(&request), 200, head, received, peer);
                            }
                            if request.method == Method::Head {
                                close = true;
                                break;
                            }
                            // The connection leaves the request loop for good, and the API's
                            // connection cap: it is a subscriber now. Requests pipelined
                            // behind it are never read.
                            drop(slot);
                            // Boxed: not part of every connection's future.
                            let shard = shard.clone();
                            return Box::pin(self::stream::run(shard, stream, plan, out)).await;
                        }
                    };
                    let keep_alive = request.keep_alive && !shard.shutdown.is_set();
                    let before = out.len();
                    response.write_to(&mut out, keep_alive, request.method == Method::Head);
                    if shard.config.access_log {
                        access(
                            Some(&request),
                            response.status,
                            out.len() - before,
                            received,
                            peer,
                        );
                    }
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
                Ok(Parsed::Partial) => {
                    started.get_or_insert_with(Instant::now);
                    break;
                }
                Err(e) => {
                    let before = out.len();
                    error(e.status(), e.reason()).write_to(&mut out, false, false);
                    if shard.config.access_log {
                        // Timed from the request's first byte, when it came in pieces.
                        let received = started.unwrap_or_else(Instant::now);
                        access(None, e.status(), out.len() - before, received, peer);
                    }
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            if let Err(e) = stream.write_all(&out).await {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    shard.node.http.add_write_timeout();
                }
                return;
            }
            recycle(&mut out);
            // A client that pipelines and reads fast could keep this task writing (every send
            // succeeding at once) until its pipeline ends: past the preemption period, let the
            // core's other connections have their turn.
            glommio::yield_if_needed().await;
        }
        if close {
            return;
        }
        if !drained {
            continue;
        }
        if buf.is_empty() {
            buf.recycle();
        }
        let wait = match started {
            Some(t) => {
                Duration::from_millis(shard.config.http_timeout_ms).saturating_sub(t.elapsed())
            }
            None => Duration::from_millis(shard.config.http_idle_ms),
        };
        match read_more(shard, &mut stream, &mut buf, wait, started.is_none()).await {
            Input::Read(Ok(n)) if n > 0 => {}
            Input::Read(_) | Input::Shutdown => return,
            Input::Timeout => return timed_out(&mut stream, started.is_some(), &mut out).await,
        }
    }
}

/// One line of the access log (`--access-log`): what was asked and answered, never a header.
/// A request that could not be parsed is logged with `-` for its method and path.
pub(crate) fn access(
    request: Option<&matchstream_http::Request>,
    status: u16,
    bytes: usize,
    received: Instant,
    peer: Option<std::net::SocketAddr>,
) {
    let method = request.map_or("-", |r| r.method.as_str());
    let path = request.map_or("-", |r| r.path.as_str());
    let us = u64::try_from(received.elapsed().as_micros()).unwrap_or(u64::MAX);
    let peer = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
    log::info!(target: "matchstream::access",
        method, path, status, bytes, us, peer = peer.as_str(); "{method} {path} {status}");
}

/// The whole answer to a connection above `--max-api-connections`.
pub(crate) fn full_answer() -> Vec<u8> {
    let mut out = Vec::new();
    error(503, "too many connections").write_to(&mut out, false, false);
    out
}

/// Empties a buffer, freeing it when it grew past [`KEEP_CAPACITY`].
fn recycle(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_CAPACITY {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

/// A connection's input: the bytes read and not yet parsed are `data[start..end]`. `data` is
/// zeroed once, when it grows, and read into again as it is: zeroing a 4 KiB chunk before
/// every read was the largest cost of a keep-alive request in matchstream's own code (28 % of
/// its instructions under callgrind, issue 14). Parsed requests advance `start` instead of
/// moving the rest to the front; the rest moves only when the free tail is short of a chunk.
#[derive(Default)]
struct InBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl From<Vec<u8>> for InBuf {
    /// A buffer whose pending bytes are `bytes`.
    fn from(bytes: Vec<u8>) -> Self {
        let end = bytes.len();
        InBuf {
            data: bytes,
            start: 0,
            end,
        }
    }
}

impl InBuf {
    /// The bytes read and not yet parsed.
    fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops the first `n` pending bytes (a parsed request).
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// At least [`READ_CHUNK`] writable bytes after the pending ones.
    fn spare(&mut self) -> &mut [u8] {
        if self.data.len() - self.end < READ_CHUNK {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.data.len() - self.end < READ_CHUNK {
                self.data.resize(self.end + READ_CHUNK, 0);
            }
        }
        &mut self.data[self.end..]
    }

    /// Counts `n` bytes read into [`InBuf::spare`] as pending.
    fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }

    /// Frees an empty buffer that grew past [`KEEP_CAPACITY`].
    fn recycle(&mut self) {
        if self.is_empty() && self.data.len() > KEEP_CAPACITY {
            *self = InBuf::default();
        }
    }
}

/// Reads what comes next onto the end of `buf` within `wait`; between requests (`idle`), a
/// shutdown ends the wait too.
async fn read_more(
    shard: &Shard,
    stream: &mut TcpStream,
    buf: &mut InBuf,
    wait: Duration,
    idle: bool,
) -> Input {
    // The stream's own read timeout (no timer per request): the time left for this
    // request, or the idle limit between requests.
    if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
        return Input::Timeout;
    }
    let spare = buf.spare();
    let read = async {
        match stream.read(spare).await {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Input::Timeout,
            other => Input::Read(other),
        }
    };
    let shutdown = async {
        if idle {
            shard.shutdown.wait().await;
        } else {
            future::pending::<()>().await;
        }
        Input::Shutdown
    };
    let input = future::or(read, shutdown).await;
    if let Input::Read(Ok(n)) = &input {
        buf.filled(*n);
    }
    input
}

/// A request that did not arrive whole in time gets 408; an idle connection just closes.
async fn timed_out(stream: &mut TcpStream, mid_request: bool, out: &mut Vec<u8>) {
    if mid_request {
        out.clear();
        error(408, "request not received in time").write_to(out, false, false);
        let _ = stream.write_all(out).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbuf_keeps_pending_bytes_across_consumes_and_compactions() {
        let mut buf = InBuf::default();
        let spare = buf.spare();
        assert!(spare.len() >= READ_CHUNK);
        spare[..6].copy_from_slice(b"abcdef");
        buf.filled(6);
        buf.consume(2);
        assert_eq!(buf.pending(), b"cdef");
        // Fill the chunk so the next spare() must move "cdef..." to the front or grow.
        let n = buf.spare().len();
        buf.filled(n);
        assert_eq!(&buf.pending()[..4], b"cdef");
        let len = buf.pending().len();
        assert!(buf.spare().len() >= READ_CHUNK);
        assert_eq!(buf.pending().len(), len);
        assert_eq!(&buf.pending()[..4], b"cdef");
        buf.consume(len);
        assert!(buf.is_empty());
        assert_eq!(buf.pending(), b"");
    }

    #[test]
    fn inbuf_frees_what_grew_past_keep_capacity_once_empty() {
        let mut buf = InBuf::default();
        while buf.data.len() <= KEEP_CAPACITY {
            let n = buf.spare().len();
            buf.filled(n);
        }
        buf.recycle();
        assert!(
            buf.data.len() > KEEP_CAPACITY,
            "not freed while bytes are pending"
        );
        let all = buf.pending().len();
        buf.consume(all);
        buf.recycle();
        assert_eq!(buf.data.capacity(), 0);
    }
}
