//! The slow path of a subscriber: a task that tends its outbox only while it needs one.
//!
//! The fanout writes to a healthy subscriber directly ([`Outbox::flush`]); a task comes back
//! for it only while its socket is full (waiting for writability through io_uring, then
//! handing the subscriber back to the fanout) or its stream ends with something left to say
//! (the rest of a started frame and the error line — an `error` event for an SSE subscriber —
//! for at most `GOODBYE_TIME`).

use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use glommio::timer::Timer;

use super::{duplicate, End, Outbox};
use crate::tasks::Tasks;

/// How long a subscriber being cut off gets to take its last words.
const GOODBYE_TIME: Duration = Duration::from_secs(1);

/// Starts a tend task for `outbox` unless none is needed or one runs already; `tasks` counts
/// it, so shutdown waits for it.
pub fn spawn(tasks: &Rc<Tasks>, outbox: Rc<Outbox>) {
    if !outbox.wants_task() {
        return;
    }
    outbox.set_tended(true);
    glommio::spawn_local(run(tasks.clone(), outbox)).detach();
}

/// Tends a subscriber while it needs a task: waits for its full socket to drain, then hands
/// it back to the fanout; or says the last words of a stream that ended and closes it.
async fn run(tasks: Rc<Tasks>, outbox: Rc<Outbox>) {
    let _task = tasks.enter();
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
                    outbox.stats.add_slow_disconnect();
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
    let Some(reason) = end.reason() else {
        return;
    };
    let mut last = Vec::with_capacity(256);
    if let Some(head) = outbox.head() {
        if outbox.head_offset() > 0 {
            last.extend_from_slice(&head[outbox.head_offset()..]);
        }
    }
    // `ERROR: <reason>\r\n` on a stream port, an `error` event on an SSE stream.
    outbox.encoding.render_error(reason, &mut last);
    let write = async {
        let _ = stream.write_all(&last).await;
    };
    future::or(write, async {
        Timer::new(GOODBYE_TIME).await;
    })
    .await;
}
