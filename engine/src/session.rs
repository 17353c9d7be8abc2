//! One subscriber connection's handshake: read the command line, then subscribe.
//!
//! The connection's task lives for the handshake only. Once subscribed, the socket moves into
//! an [`Outbox`] in the core's fanout table and the task ends: the fanout writes frames with
//! non-blocking vectored sends, so a healthy subscriber costs no task, no glommio stream and no
//! buffer, only its outbox. A task comes back for a subscriber only while its socket is full or
//! its stream ends with something left to say ([`crate::outbox::tend`]). Every error ends this
//! subscriber only and is counted; nothing reaches the listener.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use matchstream_protocol::command::{find_line, parse_command, Command};
use matchstream_protocol::encoding::Encoding;

use crate::drain;
use crate::incarnation;
use crate::linger;
use crate::outbox::send_now;
use crate::replay::{self, Next};
use crate::shard::{JoinError, Shard};

/// How a handshake failed.
enum Refused {
    /// Tell the client this reason, then close ([`refuse`]).
    Reply(&'static str),
    /// The peer went away: nothing to say.
    Gone,
}

/// Runs one new stream connection through its handshake and subscription.
pub async fn run(shard: Rc<Shard>, mut stream: TcpStream) {
    let _task = shard.tasks.enter();
    shard.stats.add_session();
    let command = match read_command(&shard, &mut stream).await {
        Ok(command) => command,
        // Boxed: the refusal's buffer and timer are not part of every session's future.
        Err(Refused::Reply(reason)) => return Box::pin(refuse(&shard, stream, reason)).await,
        Err(Refused::Gone) => return,
    };
    // Read the latest state: a match created (or cancelled) just before is seen.
    shard.sync();
    // A draining node takes no new subscriber, of any version: it is leaving.
    if shard.node.drain.is_draining() {
        return Box::pin(refuse(&shard, stream, drain::REASON)).await;
    }
    if shard.fanout.borrow().get(&command.match_id).is_none() {
        return Box::pin(refuse(&shard, stream, "unknown match")).await;
    }
    // A resume that names another incarnation of the match would get another history's
    // events under the seqs it holds. (A `let`: the table's borrow must end before the
    // refusal's await.)
    let resume = incarnation::check_resume(&shard.fanout.borrow(), &command);
    if let Err(reason) = resume {
        return Box::pin(refuse(&shard, stream, reason)).await;
    }
    let encoding = Encoding::from(command.version);
    // A resume's backlog is written piece by piece first (boxed: most sessions have none);
    // it returns with at most one piece left, which the subscription queues. No await from
    // its last look at the match to the subscription, so nothing falls between the two.
    let backlog = replay::send_backlog(
        &shard,
        &mut stream,
        &command.match_id,
        encoding,
        command.since,
    );
    let Next::Subscribe(since) = Box::pin(backlog).await else {
        return;
    };
    // From here on the outbox owns the socket.
    match shard.join(stream, &command.match_id, encoding, since) {
        Ok(()) => {}
        Err(JoinError::NoDescriptor(stream)) => {
            return Box::pin(refuse(&shard, stream, "server out of file descriptors")).await;
        }
        Err(JoinError::Gone(outbox)) => {
            // Cannot happen (the match was seen with no await since: above, or by the
            // replay's last look); said anyway.
            send_now(outbox.fd(), b"ERROR: unknown match\r\n");
            return;
        }
    }
    // Only an accepted subscription counts a visit: an anonymous loop of connects to unknown
    // matches records nothing.
    shard.store.visit(&command.user_id);
    log::debug!(target: "matchstream::session",
        "{} subscribed to {} (v{})", command.user_id, command.match_id, command.version.number());
}

/// Refuses a connection: the error line, then a lingering close ([`linger::refuse`]).
async fn refuse(shard: &Shard, stream: TcpStream, reason: &str) {
    linger::refuse(
        stream,
        format!("ERROR: {reason}\r\n").as_bytes(),
        &shard.shutdown,
    )
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
        assert!(std::mem::size_of::<crate::outbox::Outbox>() <= 128);
    }
}
