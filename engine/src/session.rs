//! One subscriber connection: read the command line, subscribe, and — only when needed —
//! tend the subscriber's socket.
//!
//! The connection's task lives for the handshake only. Once subscribed, the socket moves into
//! an [`Outbox`] in the core's fanout table and the task ends: the fanout writes frames with
//! non-blocking vectored sends, so a healthy subscriber costs no task, no glommio stream and no
//! buffer, only its outbox. A task ([`tend`]) comes back for a subscriber only while its socket
//! is full (waiting for writability through io_uring) or its stream ends with something left to
//! say. Every error ends this subscriber only and is counted; nothing reaches the listener.

use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::Timer;
use matchstream_protocol::command::{find_line, parse_command, Command};

use crate::outbox::{send_now, End, Outbox};
use crate::shard::Shard;

/// How long a subscriber being cut off gets to take its last words.
const GOODBYE_TIME: Duration = Duration::from_secs(1);

/// How a handshake failed.
enum Refused {
    /// Tell the client this reason, then close.
    Reply(&'static str),
    /// The peer went away: nothing to say.
    Gone,
}

/// Runs one new stream connection through its handshake and subscription.
pub async fn run(shard: Rc<Shard>, mut stream: TcpStream) {
    let _task = shard.task();
    shard.stats.add_session();
    let command = match read_command(&shard, &mut stream).await {
        Ok(command) => command,
        Err(Refused::Reply(reason)) => {
            send_now(
                stream.as_raw_fd(),
                format!("ERROR: {reason}\r\n").as_bytes(),
            );
            return;
        }
        Err(Refused::Gone) => return,
    };
    shard.store.visit(&command.user_id);
    // Take the socket out of glommio: from here on the outbox owns it.
    let Ok(socket) = duplicate(stream.as_raw_fd()) else {
        send_now(
            stream.as_raw_fd(),
            b"ERROR: server out of file descriptors\r\n",
        );
        return;
    };
    drop(stream);
    shard.sync();
    let outbox = Rc::new(Outbox::new(
        socket,
        command.version,
        shard.config.max_queue,
        shard.stats.clone(),
    ));
    let subscribed = shard
        .fanout
        .borrow_mut()
        .subscribe(&command.match_id, &outbox, command.since);
    if subscribed.is_none() {
        send_now(outbox.fd(), b"ERROR: unknown match\r\n");
        return;
    }
    outbox.flush();
    if outbox.wants_task() {
        spawn_tend(&shard, outbox);
    }
    log::debug!(target: "matchstream::session",
        "{} subscribed to {} (v{})", command.user_id, command.match_id, command.version.number());
}

/// A second descriptor for the same socket (close-on-exec).
fn duplicate(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own; the new one is owned by the result.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        // SAFETY: `new` is a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }
}

/// Starts a [`tend`] task for `outbox` unless one runs already.
pub fn spawn_tend(shard: &Rc<Shard>, outbox: Rc<Outbox>) {
    if !outbox.wants_task() {
        return;
    }
    outbox.set_tended(true);
    glommio::spawn_local(tend(shard.clone(), outbox)).detach();
}

/// Tends a subscriber while it needs a task: waits for its full socket to drain (io_uring
/// writability), then hands it back to the fanout; or says the last words of a stream that
/// ended (the rest of a started frame and the error line, for [`GOODBYE_TIME`]) and closes it.
pub async fn tend(shard: Rc<Shard>, outbox: Rc<Outbox>) {
    let _task = shard.task();
    // A glommio stream on a duplicate of the socket, for as long as this task lives.
    let Ok(socket) = duplicate(outbox.fd()) else {
        outbox.finish(End::PeerGone);
        outbox.close();
        outbox.set_tended(false);
        return;
    };
    // SAFETY: the duplicate's ownership moves into the glommio stream, which closes it.
    let mut stream = unsafe { TcpStream::from_raw_fd(socket.into_raw_fd()) };
    loop {
        if let Some(end) = outbox.end() {
            if !end.is_graceful() || (outbox.is_empty() && !outbox.is_blocked()) {
                if end == End::TooSlow {
                    shard.stats.add_slow_disconnect();
                }
                say_goodbye(&mut stream, &outbox, end).await;
                outbox.close();
                break;
            }
        }
        if !outbox.is_blocked() {
            break; // flowing again: the fanout writes directly
        }
        write_when_writable(&mut stream, &outbox).await;
    }
    outbox.set_tended(false);
}

/// Reads and parses the command line within the configured time.
async fn read_command(shard: &Shard, stream: &mut TcpStream) -> Result<Command, Refused> {
    let limit = Duration::from_millis(shard.config.command_timeout_ms);
    let read = async {
        // On the heap and dropped after the handshake: an idle subscriber keeps no buffer.
        let mut buf: Vec<u8> = Vec::with_capacity(128);
        loop {
            match find_line(&buf) {
                Ok(Some(n)) => {
                    return parse_command(&buf[..n]).map_err(|e| Refused::Reply(e.reason()))
                }
                Ok(None) => {}
                Err(e) => return Err(Refused::Reply(e.reason())),
            }
            let len = buf.len();
            buf.resize(len + 512, 0);
            match stream.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => return Err(Refused::Gone),
                Ok(n) => buf.truncate(len + n),
            }
        }
    };
    let timeout = async {
        Timer::new(limit).await;
        Err(Refused::Reply("timeout"))
    };
    let shutdown = async {
        shard.shutdown.wait().await;
        Err(Refused::Reply("server shutting down"))
    };
    future::or(read, future::or(timeout, shutdown)).await
}

/// The socket was full: wait (through io_uring) until it takes the rest of the first frame,
/// unless the stream is cut off meanwhile.
async fn write_when_writable(stream: &mut TcpStream, outbox: &Outbox) {
    let Some(head) = outbox.head() else {
        outbox.resume(0);
        return;
    };
    let offset = outbox.head_offset();
    let write = async { Some(stream.write(&head[offset..]).await) };
    let cut = future::poll_fn(|cx| {
        outbox.register(cx.waker());
        match outbox.end() {
            Some(end) if !end.is_graceful() => std::task::Poll::Ready(None),
            _ => std::task::Poll::Pending,
        }
    });
    match future::or(write, cut).await {
        Some(Ok(n)) => outbox.resume(n),
        Some(Err(_)) => outbox.finish(End::PeerGone),
        None => {}
    }
}

/// Tells a subscriber that is being cut off why: the rest of a frame already started, then
/// the error line, if the socket takes them within [`GOODBYE_TIME`] (a client that resumes
/// reading soon gets whole frames and the reason; one that never reads costs a parked task
/// for that long, no CPU).
async fn say_goodbye(stream: &mut TcpStream, outbox: &Outbox, end: End) {
    let line: &[u8] = match end {
        End::TooSlow => b"ERROR: too slow\r\n",
        End::Cancelled => b"ERROR: match cancelled\r\n",
        End::Finished | End::Shutdown | End::PeerGone => return,
    };
    let mut last = Vec::with_capacity(256);
    if let Some(head) = outbox.head() {
        if outbox.head_offset() > 0 {
            last.extend_from_slice(&head[outbox.head_offset()..]);
        }
    }
    last.extend_from_slice(line);
    let write = async {
        let _ = stream.write_all(&last).await;
    };
    future::or(write, async {
        Timer::new(GOODBYE_TIME).await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, B, F>(_: fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// An idle subscriber is its outbox, nothing else; a connecting one its session future:
    /// a guard against growing them by accident (a buffer held across an await, say).
    #[test]
    fn an_idle_session_stays_small() {
        assert!(
            future_size(run) <= 640,
            "session future is {} bytes",
            future_size(run)
        );
        assert!(std::mem::size_of::<Outbox>() <= 128);
    }
}
