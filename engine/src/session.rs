//! One subscriber connection's handshake: read the command line, then subscribe.
//!
//! The connection's task lives for the handshake only. Once subscribed, the socket moves into
//! an [`Outbox`] in the core's fanout table and the task ends: the fanout writes frames with
//! non-blocking vectored sends, so a healthy subscriber costs no task, no glommio stream and no
//! buffer, only its outbox. A task comes back for a subscriber only while its socket is full or
//! its stream ends with something left to say ([`crate::outbox::tend`]). Every error ends this
//! subscriber only and is counted; nothing reaches the listener.

use std::net::Shutdown;
use std::os::unix::io::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use matchstream_protocol::command::{find_line, parse_command, Command};

use crate::incarnation;
use crate::outbox::{duplicate, send_now, tend, Outbox};
use crate::shard::Shard;

/// How a handshake failed.
enum Refused {
    /// Tell the client this reason, then close ([`refuse`]).
    Reply(&'static str),
    /// The peer went away: nothing to say.
    Gone,
}

/// How long a refused connection's input is drained after its error line (lingering close).
const LINGER_TIME: Duration = Duration::from_secs(1);

/// Most bytes of a refused connection's input drained before it is closed.
const LINGER_BYTES: usize = 64 * 1024;

/// Runs one new stream connection through its handshake and subscription.
pub async fn run(shard: Rc<Shard>, mut stream: TcpStream) {
    let _task = shard.tasks.enter();
    shard.stats.add_session();
    let command = match read_command(&shard, &mut stream).await {
        Ok(command) => command,
        // Boxed: the refusal's buffer and timer are not part of every session's future.
        Err(Refused::Reply(reason)) => return Box::pin(refuse(stream, reason)).await,
        Err(Refused::Gone) => return,
    };
    // Read the latest state: a match created (or cancelled) just before is seen. No await
    // from here to the subscription, so the match found is the match subscribed to.
    shard.sync();
    if shard.fanout.borrow().get(&command.match_id).is_none() {
        return Box::pin(refuse(stream, "unknown match")).await;
    }
    let resume = incarnation::check_resume(&shard.fanout.borrow(), &command);
    if let Err(reason) = resume {
        return Box::pin(refuse(stream, reason)).await;
    }
    // Take the socket out of glommio: from here on the outbox owns it.
    let Ok(socket) = duplicate(stream.as_raw_fd()) else {
        return Box::pin(refuse(stream, "server out of file descriptors")).await;
    };
    drop(stream);
    // Only an accepted subscription counts a visit: an anonymous loop of connects to unknown
    // matches records nothing.
    shard.store.visit(&command.user_id);
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
        // Cannot happen (the match was found above without an await since); said anyway.
        send_now(outbox.fd(), b"ERROR: unknown match\r\n");
        return;
    }
    outbox.flush();
    tend::spawn(&shard.tasks, outbox);
    log::debug!(target: "matchstream::session",
        "{} subscribed to {} (v{})", command.user_id, command.match_id, command.version.number());
}

/// Refuses a connection the way nginx's lingering close does: writes the error line once
/// without waiting (the socket's buffers are empty), shuts the write side (the client reads
/// the line, then an end of stream), then reads and discards the client's input until it
/// closes, for at most [`LINGER_TIME`] and [`LINGER_BYTES`], and closes. Closing with input
/// unread would send a reset instead, which some clients report in place of the line.
async fn refuse(stream: TcpStream, reason: &str) {
    let line = format!("ERROR: {reason}\r\n");
    if !send_now(stream.as_raw_fd(), line.as_bytes())
        || stream.shutdown(Shutdown::Write).await.is_err()
    {
        return;
    }
    let mut stream = stream;
    let mut buf = vec![0u8; 4096];
    let drain = async {
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    future::or(drain, async {
        Timer::new(LINGER_TIME).await;
    })
    .await;
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
