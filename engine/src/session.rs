//! One subscriber connection: read the command line, subscribe, stream until the end.
//!
//! The session task owns the socket. After the handshake it sleeps until its [`Outbox`] needs
//! it (socket full, stream ended) or the peer closes; the fanout writes frames directly with
//! non-blocking vectored sends, so a healthy subscriber costs its task nothing per event.
//! Every error ends this session only and is counted; nothing reaches the listener.

use std::os::unix::io::AsRawFd;
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

/// Runs one subscriber connection to its end.
pub async fn run(shard: Rc<Shard>, mut stream: TcpStream) {
    let _task = shard.task();
    shard.stats.add_session();
    let fd = stream.as_raw_fd();
    let command = match read_command(&shard, &mut stream).await {
        Ok(command) => command,
        Err(Refused::Reply(reason)) => {
            send_now(fd, format!("ERROR: {reason}\r\n").as_bytes());
            return;
        }
        Err(Refused::Gone) => return,
    };
    shard.store.visit(&command.user_id);
    shard.sync();
    let outbox = Rc::new(Outbox::new(fd, command.version, shard.config.max_queue));
    let subscribed = shard
        .fanout
        .borrow_mut()
        .subscribe(&command.match_id, &outbox, command.since);
    if subscribed.is_none() {
        send_now(fd, b"ERROR: unknown match\r\n");
        return;
    }
    shard.stats.subscribers_delta(true);
    outbox.flush(&shard.stats);
    let end = stream_until_end(&shard, &mut stream, &outbox).await;
    shard.stats.subscribers_delta(false);
    if matches!(end, End::PeerGone | End::TooSlow) {
        shard.fanout.borrow_mut().unsubscribe(&command.match_id);
    }
    log::debug!(target: "matchstream::session",
        "{} on {} ended: {end:?}", command.user_id, command.match_id);
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

enum Wake {
    Outbox,
    Peer(std::io::Result<usize>),
}

/// Sleeps until the outbox needs the task or the peer closes; handles full sockets and ends.
async fn stream_until_end(shard: &Shard, stream: &mut TcpStream, outbox: &Outbox) -> End {
    let mut probe = [0u8; 16];
    loop {
        if let Some(end) = outbox.end() {
            if !end.is_graceful() || (outbox.is_empty() && !outbox.is_blocked()) {
                if end == End::TooSlow {
                    shard.stats.add_slow_disconnect();
                }
                say_goodbye(stream, outbox, end).await;
                return end;
            }
        }
        if outbox.is_blocked() {
            write_when_writable(shard, stream, outbox).await;
            continue;
        }
        let needs = future::poll_fn(|cx| {
            outbox.register(cx.waker());
            if outbox.needs_task() {
                std::task::Poll::Ready(Wake::Outbox)
            } else {
                std::task::Poll::Pending
            }
        });
        let peer = async { Wake::Peer(stream.read(&mut probe).await) };
        match future::or(needs, peer).await {
            Wake::Outbox => {}
            Wake::Peer(Ok(0) | Err(_)) => outbox.finish(End::PeerGone),
            Wake::Peer(Ok(_)) => {} // a subscriber has nothing more to say; ignore it
        }
    }
}

/// The socket was full: wait (through io_uring) until it takes the rest of the first frame,
/// unless the stream is cut off meanwhile.
async fn write_when_writable(shard: &Shard, stream: &mut TcpStream, outbox: &Outbox) {
    let Some(head) = outbox.head() else {
        outbox.resume(0, &shard.stats);
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
        Some(Ok(n)) => outbox.resume(n, &shard.stats),
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

    /// Every idle subscriber keeps its session future and outbox alive: a guard against
    /// growing them by accident (a buffer held across an await, say).
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
