//! The HTTP API: one task per connection, requests parsed incrementally (partial reads,
//! pipelining) by `matchstream-http`, answered by [`handlers`].
//!
//! Policy: a request must arrive whole within `--http-timeout-ms` of its first byte (else 408
//! and close: slow-loris clients cannot hold a connection); an idle keep-alive connection is
//! closed after `--http-idle-ms`; any parse error is answered with its status and the
//! connection closed; nothing a client sends can change stored data unless it is a complete,
//! authenticated, valid write.

pub mod handlers;

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use matchstream_http::{parse_request, Limits, Method, Parsed, Response};
use matchstream_protocol::api::error_body;

use crate::shard::Shard;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// A JSON error response `{"error": reason}`.
pub fn error(status: u16, reason: &str) -> Response {
    Response::json(status, error_body(reason))
}

/// What a wait for more of a request brought.
enum Input {
    Read(std::io::Result<usize>),
    Timeout,
    Shutdown,
}

/// Serves one HTTP connection until the client closes, an error, or shutdown.
pub async fn serve(shard: Rc<Shard>, mut stream: TcpStream) {
    let _task = shard.tasks.enter();
    let local = stream.local_addr().ok();
    let limits = Limits::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let mut started: Option<Instant> = None;
    loop {
        let mut close = false;
        while !buf.is_empty() {
            match parse_request(&buf, &limits) {
                Ok(Parsed::Complete { request, consumed }) => {
                    buf.drain(..consumed);
                    started = None;
                    shard.stats.add_http_request();
                    let response = handlers::handle(&shard, &request, local).await;
                    let keep_alive = request.keep_alive && !shard.shutdown.is_set();
                    response.write_to(&mut out, keep_alive, request.method == Method::Head);
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
                    error(e.status(), e.reason()).write_to(&mut out, false, false);
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
        let wait = match started {
            Some(t) => {
                Duration::from_millis(shard.config.http_timeout_ms).saturating_sub(t.elapsed())
            }
            None => Duration::from_millis(shard.config.http_idle_ms),
        };
        match read_more(&shard, &mut stream, &mut buf, wait, started.is_none()).await {
            Input::Read(Ok(n)) if n > 0 => {}
            Input::Read(_) | Input::Shutdown => return,
            Input::Timeout => return timed_out(&mut stream, started.is_some(), &mut out).await,
        }
    }
}

/// Reads what comes next onto the end of `buf` within `wait`; between requests (`idle`), a
/// shutdown ends the wait too.
async fn read_more(
    shard: &Shard,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    wait: Duration,
    idle: bool,
) -> Input {
    let len = buf.len();
    buf.resize(len + READ_CHUNK, 0);
    // The stream's own read timeout (no timer per request): the time left for this
    // request, or the idle limit between requests.
    if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
        buf.truncate(len);
        return Input::Timeout;
    }
    let read = async {
        match stream.read(&mut buf[len..]).await {
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
    let read = match &input {
        Input::Read(Ok(n)) => *n,
        _ => 0,
    };
    buf.truncate(len + read);
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
