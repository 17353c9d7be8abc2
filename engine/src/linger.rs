//! Lingering close, the way nginx refuses a connection: the answer, then a clean end of
//! stream instead of a TCP reset. Used for a subscriber's handshake errors ([`crate::session`])
//! and for the API's `503 too many connections` ([`crate::api`]).

use std::net::Shutdown;
use std::os::unix::io::AsRawFd;
use std::time::Duration;

use futures_lite::future;
use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;
use glommio::timer::Timer;

use crate::latch::Latch;
use crate::outbox::send_now;

/// How long a refused connection's input is drained after its answer.
pub const LINGER_TIME: Duration = Duration::from_secs(1);

/// Most bytes of a refused connection's input drained before it is closed.
pub const LINGER_BYTES: usize = 64 * 1024;

/// Bytes read at a time while draining.
const DRAIN_CHUNK: usize = 4096;

/// Writes `answer` once without waiting (the socket's buffers are empty: the connection is
/// new), shuts the write side (the client reads the answer, then an end of stream), then reads
/// and discards the client's input until it closes, for at most [`LINGER_TIME`] and
/// [`LINGER_BYTES`], and closes. Closing with input unread would send a reset instead, which
/// some clients report in place of the answer. Once the node is stopping (`shutdown`), it
/// closes at once: a shutdown does not wait on lingering clients.
pub async fn refuse(stream: TcpStream, answer: &[u8], shutdown: &Latch) {
    if !send_now(stream.as_raw_fd(), answer) || stream.shutdown(Shutdown::Write).await.is_err() {
        return;
    }
    let mut stream = stream;
    let mut buf = vec![0u8; DRAIN_CHUNK];
    let drain = async {
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let stop = future::or(
        async {
            Timer::new(LINGER_TIME).await;
        },
        shutdown.wait(),
    );
    future::or(drain, stop).await;
}
