//! Per-core state: the match table, the inbox, counters, and the core's lifecycle.
//!
//! Everything here is owned by one executor thread (`Rc`, `RefCell`); only the bus and the
//! counters cross threads. [`Shard::sync`] drains the inbox synchronously: the bus task calls
//! it when woken, and request handlers call it before reading so that a client who got a 201
//! from any core reads its own write on this one (the store publishes before it answers).

use std::cell::RefCell;
use std::os::unix::io::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::bus::{BusMsg, Inbox};
use crate::config::Config;
use crate::fanout::Fanout;
use crate::latch::Latch;
use crate::outbox::{duplicate, tend, Outbox};
use crate::stats::{CoreStats, NodeStats};
use crate::store::StoreHandle;
use crate::tasks::Tasks;
use glommio::net::TcpStream;
use matchstream_protocol::encoding::Encoding;

/// Bus messages applied per borrow of the match table. [`Shard::sync`] still drains the inbox
/// to empty, a chunk at a time, recording the bus depth before each chunk.
const MAX_DRAIN: usize = 1024;

/// Subscribers written to between two yields of the bus task.
const FLUSH_CHUNK: usize = 256;

/// How often idle subscribers are checked for a closed connection.
pub const PEER_SWEEP: Duration = Duration::from_secs(5);

/// Most publish instants kept for the publish→flush histogram between two flush passes;
/// past it they are recorded at once (a pass that long is measured short, not without bound).
const MAX_UNFLUSHED: usize = 1 << 16;

/// One core's state.
pub struct Shard {
    /// Index of this core.
    pub core: usize,
    /// The match table.
    pub fanout: RefCell<Fanout>,
    inbox: Inbox,
    /// The way to the store thread.
    pub store: StoreHandle,
    /// This core's counters.
    pub stats: Arc<CoreStats>,
    /// Node identity and every core's counters (for checkin and stats).
    pub node: Arc<NodeStats>,
    /// The configuration.
    pub config: Arc<Config>,
    /// The watcher token.
    pub token: Arc<str>,
    /// Set when the server starts shutting down.
    pub shutdown: Latch,
    /// The connection tasks that shutdown waits for.
    pub tasks: Rc<Tasks>,
    /// The bus task's waker, for handlers that queued frames.
    flusher: RefCell<Option<Waker>>,
    /// When each message whose events were queued for subscribers since the last flush pass
    /// was published, and how many such events it held: recorded as publish→flush latency
    /// once a pass has written them.
    unflushed: RefCell<Vec<(Instant, u64)>>,
}

impl Shard {
    /// A core's state.
    pub fn new(
        core: usize,
        fanout: Fanout,
        inbox: Inbox,
        store: StoreHandle,
        node: Arc<NodeStats>,
        config: Arc<Config>,
        token: Arc<str>,
    ) -> Shard {
        node.cores[core].set_thread();
        Shard {
            core,
            fanout: RefCell::new(fanout),
            inbox,
            store,
            stats: node.cores[core].clone(),
            node,
            config,
            token,
            shutdown: Latch::default(),
            tasks: Rc::default(),
            flusher: RefCell::new(None),
            unflushed: RefCell::new(Vec::new()),
        }
    }

    /// Applies every waiting bus message to the match table (state, history, subscribers'
    /// queues) without sending: request handlers call it so that they read the latest state.
    /// The bus task sends what it queued.
    pub fn sync(&self) {
        let mut stop = false;
        loop {
            let depth = self.inbox.depth();
            if depth == 0 {
                break;
            }
            self.stats.set_bus_depth(depth as u64);
            let mut fanout = self.fanout.borrow_mut();
            let mut unflushed = self.unflushed.borrow_mut();
            for _ in 0..MAX_DRAIN {
                let Some((msg, published)) = self.inbox.try_recv_stamped() else {
                    break;
                };
                stop |= matches!(msg, BusMsg::Shutdown);
                let queued = fanout.apply(msg, &self.stats);
                if queued > 0 {
                    if unflushed.len() >= MAX_UNFLUSHED {
                        self.record_flushed(&mut unflushed);
                    }
                    unflushed.push((published, queued as u64));
                }
            }
        }
        self.wake_flusher();
        if stop && !self.shutdown.is_set() {
            log::info!(target: "matchstream::shard", "core {} shutting down", self.core);
            self.shutdown.set();
        }
    }

    /// Wakes the bus task when frames wait to be sent.
    fn wake_flusher(&self) {
        if self.fanout.borrow().has_dirty() {
            if let Some(w) = self.flusher.borrow().as_ref() {
                w.wake_by_ref();
            }
        }
    }

    /// The bus task: applies messages as they arrive and sends the frames they queued, a
    /// chunk of subscribers at a time. Between chunks it yields, so the core answers requests
    /// (a watcher's next POST) while a large fanout is under way, and applies whatever arrived
    /// meanwhile before going on: a subscriber not yet written to then gets every new frame in
    /// the same single write. Under load this batches deliveries by itself.
    pub async fn run_bus(self: Rc<Self>) {
        loop {
            futures_lite::future::poll_fn(|cx| {
                *self.flusher.borrow_mut() = Some(cx.waker().clone());
                if self.inbox.depth() > 0 || self.fanout.borrow().has_dirty() {
                    std::task::Poll::Ready(())
                } else {
                    self.inbox.register(cx.waker());
                    if self.inbox.depth() > 0 {
                        std::task::Poll::Ready(())
                    } else {
                        std::task::Poll::Pending
                    }
                }
            })
            .await;
            self.sync();
            let pass = std::time::Instant::now();
            let mut chunks = 0u32;
            loop {
                chunks += 1;
                let more = self.fanout.borrow_mut().flush(FLUSH_CHUNK);
                let needy = self.fanout.borrow_mut().take_tend();
                for outbox in needy {
                    tend::spawn(&self.tasks, outbox);
                }
                if !more {
                    break;
                }
                // Past the preemption period, step aside: glommio then polls io_uring (the
                // socket I/O and cross-thread wakes of other tasks) before coming back.
                glommio::yield_if_needed().await;
                self.sync();
            }
            self.record_flushed(&mut self.unflushed.borrow_mut());
            if chunks > 4 {
                log::debug!(target: "matchstream::shard",
                    "core {}: flush pass of {chunks} chunks took {:?}", self.core, pass.elapsed());
            }
            if self.shutdown.is_set() {
                break;
            }
        }
    }

    /// Records the publish→flush latency of the events queued since the last pass, now that
    /// a pass has written them (or handed a full socket's rest to its tend task).
    fn record_flushed(&self, unflushed: &mut Vec<(Instant, u64)>) {
        let now = Instant::now();
        for (published, n) in unflushed.drain(..) {
            self.stats
                .record_publish_to_flush(now.saturating_duration_since(published), n);
        }
    }

    /// Every [`PEER_SWEEP`], drops ended subscribers and finds those whose peer has gone; and
    /// queues the SSE keep-alive ([`Fanout::sweep`]). With an SSE keep-alive shorter than
    /// [`PEER_SWEEP`] (tests) it sweeps that often instead.
    pub async fn run_sweep(self: Rc<Self>) {
        let (period, keepalive_after) = sweep_plan(self.config.sse_keepalive_ms);
        loop {
            let tick = async {
                glommio::timer::sleep(period).await;
                true
            };
            let stop = async {
                self.shutdown.wait().await;
                false
            };
            if !futures_lite::future::or(tick, stop).await {
                break;
            }
            let dropped = self.fanout.borrow_mut().sweep(&self.stats, keepalive_after);
            if dropped > 0 {
                log::debug!(target: "matchstream::shard", "core {}: swept {dropped} ended subscribers", self.core);
            }
            self.wake_flusher();
        }
    }
}

/// Why [`Shard::join`] could not hand a socket to the fanout.
pub enum JoinError {
    /// No file descriptor was left for the outbox's copy of the socket: the stream, for the
    /// caller to say so.
    NoDescriptor(TcpStream),
    /// The match is no longer in the table (cancelled meanwhile): the outbox holding the
    /// socket, for last words.
    Gone(Rc<Outbox>),
}

impl Shard {
    /// Turns an accepted subscriber — a stream port session or an event stream of the API,
    /// its handshake and resume backlog done — into an outbox in this core's fanout table:
    /// the socket leaves glommio, everything of `match_id` after `since` is queued (with
    /// `None`, the status first), what is queued is written, and a tend task comes back for
    /// the subscriber only while its socket is full or for its last words. No await: what
    /// the caller last saw of the match still holds when it subscribes.
    pub fn join(
        &self,
        stream: TcpStream,
        match_id: &str,
        encoding: Encoding,
        since: Option<u64>,
    ) -> Result<(), JoinError> {
        let Ok(socket) = duplicate(stream.as_raw_fd()) else {
            return Err(JoinError::NoDescriptor(stream));
        };
        drop(stream);
        let outbox = Rc::new(Outbox::new(
            socket,
            encoding,
            self.config.max_queue,
            self.stats.clone(),
        ));
        let subscribed = self.fanout.borrow_mut().subscribe(match_id, &outbox, since);
        if subscribed.is_none() {
            return Err(JoinError::Gone(outbox));
        }
        outbox.flush();
        tend::spawn(&self.tasks, outbox);
        Ok(())
    }
}

/// The sweep's period and the number of sweeps without output after which an SSE stream gets
/// its keep-alive (0: never), for a keep-alive of `keepalive_ms` (0: none). A stream then has
/// the comment between `keepalive_ms` and one period after its last byte.
fn sweep_plan(keepalive_ms: u64) -> (Duration, u32) {
    if keepalive_ms == 0 {
        return (PEER_SWEEP, 0);
    }
    let keepalive = Duration::from_millis(keepalive_ms);
    let period = PEER_SWEEP.min(keepalive);
    let after = keepalive.as_millis().div_ceil(period.as_millis().max(1));
    (period, u32::try_from(after).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keepalive_rides_on_the_sweep() {
        assert_eq!(sweep_plan(15_000), (PEER_SWEEP, 3));
        assert_eq!(sweep_plan(12_000), (PEER_SWEEP, 3));
        assert_eq!(sweep_plan(0), (PEER_SWEEP, 0));
        assert_eq!(sweep_plan(500), (Duration::from_millis(500), 1));
    }
}
