//! Live figures: per-core counters written by their core, read by any core for `/1/stats` and
//! `/metrics`, plus process figures (RSS, open files against the limit) read from /proc.
//!
//! Counters are relaxed atomics written only by the owning core, so counting costs no more
//! than a plain add on the hot path and no lock is ever taken. The one exception is
//! [`HttpStats`], the node's API connections, which every core writes: the cap on them is per
//! node, and it is touched once per connection, not per request. (The busiest matches sit
//! behind a mutex that a core only ever *tries* to take, at its recount: [`busiest`].)
//!
//! Reads stay cheap (issue 11, item 8): every figure here costs O(cores) or small /proc
//! reads (one per core for its thread's CPU time), never O(connections). Open files come from one `stat` of `/proc/self/fd`, whose size
//! Linux ≥ 6.2 reports as the number of open descriptors (counted from the descriptor
//! bitmap); only on an older kernel, which reports 0, the directory is walked — at most once
//! per [`OPEN_FILES_TTL`], on a thread of its own, the readers getting the last count.
//!
//! The operations figures (issue 13, item 2) live in submodules: [`histogram`] (fixed-bucket
//! histograms of atomics: publish→flush latency per core, the store's batch sizes and commit
//! latency, the feed's lag), [`peak`] (a gauge's peak over recent seconds, which no reader
//! resets), [`requests`] (API requests by route and status, per core), [`busiest`] (each
//! core's matches with the most subscribers), [`store`] and [`feed`] (the store thread's and
//! the Redis feed's own counters), [`cpu`] (CPU time from /proc). [`cluster`] adds the
//! cluster's totals (issue 15): every node's subscribers and deliveries per second.

pub mod busiest;
pub mod cluster;
pub mod cpu;
pub mod feed;
pub mod histogram;
pub mod peak;
pub mod requests;
pub mod store;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use busiest::{Busiest, MatchLoad};
use feed::{FeedSnapshot, FeedStats};
use histogram::{Histogram, HistogramSnapshot, LATENCY_US};
use peak::{Peak, MINUTE, RECENT};
use requests::{RequestCount, Requests, Route};
use store::{StoreSnapshot, StoreStats};

/// One core's counters.
#[derive(Debug)]
pub struct CoreStats {
    subscribers: AtomicU64,
    live_matches: AtomicU64,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    slow_disconnects: AtomicU64,
    bus_depth: AtomicU64,
    sessions_total: AtomicU64,
    http_requests: AtomicU64,
    /// Clients checkin sent to this core that have not connected yet (for a while).
    pending: Pending,
    /// The bus depth's per-second peaks.
    bus_peak: Peak,
    /// Unsent bytes in the core's outboxes. Only the core writes it (its outboxes are its
    /// own), so it is kept with a plain load and store, no atomic add, on the fanout's path.
    queued_bytes: AtomicU64,
    /// The core's thread, for its CPU time (0 until the core runs).
    thread_id: AtomicU64,
    /// Microseconds from an event's publish on the bus to the end of the core's flush pass
    /// that wrote it to its subscribers here (events with subscribers on the core only).
    publish_to_flush: Histogram,
    /// API requests this core answered, by route and status.
    requests: Requests,
    /// The core's busiest matches as of its last recount.
    busiest: Busiest,
}

impl Default for CoreStats {
    fn default() -> CoreStats {
        CoreStats {
            subscribers: AtomicU64::default(),
            live_matches: AtomicU64::default(),
            frames_sent: AtomicU64::default(),
            bytes_sent: AtomicU64::default(),
            slow_disconnects: AtomicU64::default(),
            bus_depth: AtomicU64::default(),
            sessions_total: AtomicU64::default(),
            http_requests: AtomicU64::default(),
            pending: Pending::default(),
            bus_peak: Peak::default(),
            queued_bytes: AtomicU64::default(),
            thread_id: AtomicU64::default(),
            publish_to_flush: Histogram::new(LATENCY_US),
            requests: Requests::default(),
            busiest: Busiest::default(),
        }
    }
}

/// How long a client checkin sent to a core counts there if it never connects. A client
/// connects right after its checkin (milliseconds); one that does not — gone, or a scan of the
/// endpoint — must not weigh on the core's load for ever, or a stream of check-ins without
/// connects would steer every later client away from it. 5 s covers a slow client on a
/// slow network many times over and is short against a match.
pub const PENDING_TTL: Duration = Duration::from_secs(5);

/// The clock of [`Pending`]: check-ins of the same half second share a slot.
const PENDING_TICK: Duration = Duration::from_millis(500);

/// Slots of [`Pending`]: a check-in counts for `PENDING_SLOTS` ticks at most, so between
/// [`PENDING_TTL`] less one tick and [`PENDING_TTL`].
const PENDING_SLOTS: usize = (PENDING_TTL.as_millis() / PENDING_TICK.as_millis()) as usize;

/// Bits of a slot's word that hold its count; the others hold its tick.
const COUNT_BITS: u32 = 24;

/// Check-ins not followed by a connect yet, each expiring [`PENDING_TTL`] after it was made.
/// Any core's checkin adds to it and the core's accepts take from it, so it is made of
/// relaxed atomics, like every counter here: one word per tick slot, holding the slot's tick
/// and how many check-ins of that tick are still pending. A slot whose tick is
/// [`PENDING_SLOTS`] old counts nothing and is reused; no timer runs.
#[derive(Debug, Default)]
struct Pending {
    slots: [AtomicU64; PENDING_SLOTS],
}

impl Pending {
    fn slot(&self, tick: u64) -> &AtomicU64 {
        &self.slots[(tick % PENDING_SLOTS as u64) as usize]
    }

    /// Counts a check-in made at `tick`.
    fn add(&self, tick: u64) {
        let _ = self.slot(tick).fetch_update(Relaxed, Relaxed, |word| {
            let (at, count) = unpack(word);
            Some(match at == tick {
                true => pack(tick, (count + 1).min(COUNT_MAX)),
                false => pack(tick, 1),
            })
        });
    }

    /// Takes the oldest check-in still counting at `tick` (a client arrived); none left is
    /// fine (a client that connected without a checkin).
    fn take(&self, tick: u64) {
        for age in (0..PENDING_SLOTS as u64).rev() {
            let Some(at) = tick.checked_sub(age) else {
                continue;
            };
            let taken = self.slot(at).fetch_update(Relaxed, Relaxed, |word| {
                let (was, count) = unpack(word);
                (was == at && count > 0).then(|| pack(at, count - 1))
            });
            if taken.is_ok() {
                return;
            }
        }
    }

    /// Check-ins still counting at `tick`.
    fn count(&self, tick: u64) -> u64 {
        self.slots
            .iter()
            .map(|slot| unpack(slot.load(Relaxed)))
            .filter(|&(at, _)| at <= tick && tick - at < PENDING_SLOTS as u64)
            .map(|(_, count)| count)
            .sum()
    }
}

/// The largest count a slot holds.
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;

fn pack(tick: u64, count: u64) -> u64 {
    tick << COUNT_BITS | count
}

fn unpack(word: u64) -> (u64, u64) {
    (word >> COUNT_BITS, word & COUNT_MAX)
}

/// The current tick of [`Pending`]'s clock: [`PENDING_TICK`]s since the first use. Ticks start
/// at 1, so that an unused slot (tick 0, count 0) is never mistaken for a counting one.
fn pending_tick() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let elapsed = ORIGIN.get_or_init(Instant::now).elapsed();
    (elapsed.as_millis() / PENDING_TICK.as_millis()) as u64 + 1
}

/// A copy of one core's counters.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CoreSnapshot {
    /// Subscribers streaming now.
    pub subscribers: u64,
    /// Matches with at least one subscriber on this core (recounted when matches change and
    /// at every sweep, not per event).
    pub live_matches: u64,
    /// Frames written completely.
    pub frames_sent: u64,
    /// Bytes written to subscribers.
    pub bytes_sent: u64,
    /// Subscribers cut off as too slow.
    pub slow_disconnects: u64,
    /// Messages waiting on the core's inbound bus at its last drain.
    pub bus_depth: u64,
    /// Stream connections accepted since start.
    pub sessions_total: u64,
    /// HTTP requests served since start.
    pub http_requests: u64,
    /// The deepest the inbound bus was at a drain over the last 1–2 s (the current second
    /// and the one before: what a reader polling every second needs to see every peak).
    pub bus_depth_peak: u64,
    /// The same over the last minute (for scrapers).
    pub bus_depth_peak_60s: u64,
    /// Bytes queued in the core's outboxes and not yet written to its subscribers.
    pub queued_bytes: u64,
}

impl CoreStats {
    /// Counts `n` bytes sent.
    pub fn add_bytes(&self, n: u64) {
        self.bytes_sent.fetch_add(n, Relaxed);
    }
    /// Counts `n` frames sent.
    pub fn add_frames(&self, n: u64) {
        if n > 0 {
            self.frames_sent.fetch_add(n, Relaxed);
        }
    }
    /// A subscriber joined (`+1`) or left (`-1`).
    pub fn subscribers_delta(&self, joined: bool) {
        if joined {
            self.subscribers.fetch_add(1, Relaxed);
        } else {
            self.subscribers.fetch_sub(1, Relaxed);
        }
    }
    /// Sets the number of matches with subscribers.
    pub fn set_live_matches(&self, n: u64) {
        self.live_matches.store(n, Relaxed);
    }
    /// Counts a too-slow disconnect.
    pub fn add_slow_disconnect(&self) {
        self.slow_disconnects.fetch_add(1, Relaxed);
    }
    /// Records the inbound bus depth (and its peak).
    pub fn set_bus_depth(&self, n: u64) {
        self.bus_depth.store(n, Relaxed);
        self.bus_peak.record(n);
    }
    /// `n` more bytes wait in an outbox of this core. Called by the core only.
    pub fn queued_grew(&self, n: usize) {
        let now = self.queued_bytes.load(Relaxed);
        self.queued_bytes
            .store(now.saturating_add(n as u64), Relaxed);
    }
    /// `n` fewer bytes wait in an outbox of this core (sent, dropped). Called by the core only.
    pub fn queued_shrank(&self, n: usize) {
        let now = self.queued_bytes.load(Relaxed);
        self.queued_bytes
            .store(now.saturating_sub(n as u64), Relaxed);
    }
    /// Records that the calling thread runs this core (for its CPU time).
    pub fn set_thread(&self) {
        self.thread_id.store(cpu::current_thread_id(), Relaxed);
    }
    /// CPU seconds of the core's thread so far (0 before it runs).
    pub fn cpu_seconds(&self) -> f64 {
        cpu::thread_seconds(self.thread_id.load(Relaxed))
    }
    /// Records `n` events written to this core's subscribers `latency` after their publish.
    pub fn record_publish_to_flush(&self, latency: Duration, n: u64) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.publish_to_flush.record_n(us, n);
    }
    /// The publish→flush histogram.
    pub fn publish_to_flush(&self) -> HistogramSnapshot {
        self.publish_to_flush.snapshot()
    }
    /// Counts an API request by its route and the status it was answered with.
    pub fn count_request(&self, route: Route, status: u16) {
        self.requests.count(route, status);
    }
    /// Publishes the core's busiest matches ([`busiest`]).
    pub fn publish_busiest<'a>(&self, counts: impl Iterator<Item = (&'a str, usize)>) {
        self.busiest.publish(counts);
    }
    /// Counts an accepted stream connection (one client checkin announced has arrived).
    pub fn add_session(&self) {
        self.sessions_total.fetch_add(1, Relaxed);
        self.pending.take(pending_tick());
    }
    /// Counts a client checkin sent to this core, for [`PENDING_TTL`] at most.
    pub fn add_pending(&self) {
        self.pending.add(pending_tick());
    }
    /// Subscribers plus clients sent here in the last [`PENDING_TTL`] that have not
    /// connected yet: checkin's measure, so a connect burst spreads instead of piling onto
    /// the core that looked emptiest.
    pub fn load(&self) -> u64 {
        self.subscribers.load(Relaxed) + self.pending.count(pending_tick())
    }
    /// Counts an HTTP request.
    pub fn add_http_request(&self) {
        self.http_requests.fetch_add(1, Relaxed);
    }
    /// Subscribers streaming now (checkin measures [`CoreStats::load`] instead).
    pub fn subscribers(&self) -> u64 {
        self.subscribers.load(Relaxed)
    }
    /// A copy of every counter.
    pub fn snapshot(&self) -> CoreSnapshot {
        CoreSnapshot {
            subscribers: self.subscribers.load(Relaxed),
            live_matches: self.live_matches.load(Relaxed),
            frames_sent: self.frames_sent.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            slow_disconnects: self.slow_disconnects.load(Relaxed),
            bus_depth: self.bus_depth.load(Relaxed),
            sessions_total: self.sessions_total.load(Relaxed),
            http_requests: self.http_requests.load(Relaxed),
            bus_depth_peak: self.bus_peak.over(RECENT),
            bus_depth_peak_60s: self.bus_peak.over(MINUTE),
            queued_bytes: self.queued_bytes.load(Relaxed),
        }
    }
}

/// What every core knows about the node: its identity and every core's counters.
#[derive(Debug)]
pub struct NodeStats {
    /// The node id.
    pub node_id: String,
    /// The API address as bound.
    pub api_addr: std::net::SocketAddr,
    /// Stream port of core i at index i.
    pub stream_ports: Vec<u16>,
    /// Counters of core i at index i.
    pub cores: Vec<Arc<CoreStats>>,
    /// Stream ports of the other nodes sharing this node's Redis (empty on a lone node).
    pub remote: RwLock<Vec<RemotePort>>,
    /// Whether `remote` holds any port: checkin on a lone node reads this and takes no lock.
    pub has_remote: AtomicBool,
    /// The other nodes' subscribers and deliveries per second (empty on a lone node).
    pub others: cluster::Others,
    /// This node's deliveries per second ([`cluster::own`]).
    pub delivery_rate: cluster::DeliveryRate,
    /// The node's HTTP API connections: one count for every core, so the cap holds per node.
    pub http: HttpStats,
    /// Matches, events and feed messages read from Redis that failed the node's checks and
    /// were not rendered (the store thread and the feed count them; see `cluster::trust`).
    pub store_rejected: Arc<AtomicU64>,
    /// Whether the node drains, and until when ([`crate::drain`]).
    pub drain: crate::drain::flag::Drain,
    /// Whether the store is reachable, as its threads last saw it ([`crate::health`]).
    pub store_health: Arc<crate::health::StoreHealth>,
    /// The store thread's figures ([`store`]).
    pub store_thread: Arc<StoreStats>,
    /// The Redis feed's figures ([`feed`]), set when the node joins a cluster.
    pub feed: OnceLock<Arc<FeedStats>>,
}

/// The node's HTTP API connections: open now (against `--max-api-connections`), refused at
/// the cap, closed because the client took none of an answer in time. Shared by every core;
/// touched once per connection, never per request.
#[derive(Debug, Default)]
pub struct HttpStats {
    connections: AtomicU64,
    refused: AtomicU64,
    write_timeouts: AtomicU64,
}

/// A copy of [`HttpStats`].
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct HttpSnapshot {
    /// API connections open now, on every core.
    pub connections: u64,
    /// Connections refused with 503 since start: the node was at `--max-api-connections`.
    pub refused: u64,
    /// Connections closed since start because an answer made no progress for
    /// `--http-write-timeout-ms` (the client did not read).
    pub write_timeouts: u64,
}

impl HttpStats {
    /// The place of a connection admitted earlier and given up with [`HttpSlot::hand_over`].
    pub fn adopt(&self) -> HttpSlot<'_> {
        HttpSlot { stats: self }
    }

    /// Takes one of `max` connection slots, or counts a refusal and gives `None` when all are
    /// taken. The slot is given back when the returned guard drops.
    pub fn admit(&self, max: u64) -> Option<HttpSlot<'_>> {
        let taken = self
            .connections
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1));
        match taken {
            Ok(_) => Some(HttpSlot { stats: self }),
            Err(_) => {
                self.refused.fetch_add(1, Relaxed);
                None
            }
        }
    }
    /// Counts a connection closed by the write timeout.
    pub fn add_write_timeout(&self) {
        self.write_timeouts.fetch_add(1, Relaxed);
    }
    /// A copy of every counter.
    pub fn snapshot(&self) -> HttpSnapshot {
        HttpSnapshot {
            connections: self.connections.load(Relaxed),
            refused: self.refused.load(Relaxed),
            write_timeouts: self.write_timeouts.load(Relaxed),
        }
    }
}

/// One open API connection's place under the cap ([`HttpStats::admit`]); freed on drop.
#[derive(Debug)]
pub struct HttpSlot<'a> {
    stats: &'a HttpStats,
}

impl HttpSlot<'_> {
    /// Gives the place up without freeing it: the connection moves to a task, which takes it
    /// again with [`HttpStats::adopt`] (so the cap cannot refuse a connection already in).
    pub fn hand_over(self) {
        std::mem::forget(self);
    }
}

impl Drop for HttpSlot<'_> {
    fn drop(&mut self) {
        self.stats.connections.fetch_sub(1, Relaxed);
    }
}

/// A stream port of another node, as its last heartbeat told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemotePort {
    /// The node's id.
    pub node: String,
    /// The host clients connect to.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Subscribers on that port's core.
    pub load: u64,
    /// The node's HTTP API, `host:port`, for tools that poll every node (`matchstream top`);
    /// empty from a node that does not publish it.
    pub api: String,
}

impl NodeStats {
    /// A node's stats with no remote ports yet.
    pub fn new(
        node_id: String,
        api_addr: std::net::SocketAddr,
        stream_ports: Vec<u16>,
    ) -> NodeStats {
        NodeStats {
            node_id,
            api_addr,
            cores: stream_ports.iter().map(|_| Arc::default()).collect(),
            stream_ports,
            remote: RwLock::new(Vec::new()),
            has_remote: AtomicBool::new(false),
            others: cluster::Others::default(),
            delivery_rate: cluster::DeliveryRate::default(),
            http: HttpStats::default(),
            store_rejected: Arc::default(),
            drain: crate::drain::flag::Drain::default(),
            store_health: Arc::default(),
            store_thread: Arc::default(),
            feed: OnceLock::new(),
        }
    }

    /// Replaces what is known of the other nodes' ports.
    pub fn set_remote(&self, ports: Vec<RemotePort>) {
        if let Ok(mut remote) = self.remote.write() {
            self.has_remote.store(!ports.is_empty(), Relaxed);
            *remote = ports;
        }
    }
}

/// Process figures from /proc.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessSnapshot {
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Open file descriptors.
    pub open_files: u64,
    /// The soft open-files limit.
    pub open_files_limit: u64,
    /// CPU time the process used since start, user and system, seconds.
    pub cpu_seconds: f64,
}

/// Reads RSS and open files of this process.
pub fn process_snapshot() -> ProcessSnapshot {
    let rss_bytes = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_size());
    let open_files = open_files();
    ProcessSnapshot {
        rss_bytes,
        open_files,
        open_files_limit: crate::limits::open_files_limit().0,
        cpu_seconds: cpu::process_seconds(),
    }
}

/// Longest a walked count of open files is reused (older kernels only, see the module docs).
pub const OPEN_FILES_TTL: Duration = Duration::from_secs(1);

/// Open file descriptors of this process, without walking `/proc/self/fd` on the caller's
/// thread: the directory's size where the kernel reports it, else the last walked count.
pub fn open_files() -> u64 {
    match std::fs::metadata("/proc/self/fd") {
        Ok(meta) if meta.len() > 0 => meta.len(),
        _ => walked_open_files(),
    }
}

/// The last count of a walk of `/proc/self/fd`, starting a new walk on its own thread when
/// that count is older than [`OPEN_FILES_TTL`] (0 until the first walk ends).
fn walked_open_files() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static WALKED_AT: RwLock<Option<Instant>> = RwLock::new(None);
    static WALKING: AtomicBool = AtomicBool::new(false);
    let stale = WALKED_AT
        .read()
        .map_or(true, |at| at.is_none_or(|t| t.elapsed() >= OPEN_FILES_TTL));
    if stale && !WALKING.swap(true, Relaxed) {
        let walk = move || {
            let n = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
            COUNT.store(n, Relaxed);
            if let Ok(mut at) = WALKED_AT.write() {
                *at = Some(Instant::now());
            }
            WALKING.store(false, Relaxed);
        };
        if std::thread::Builder::new()
            .name("matchstream-fd-count".into())
            .spawn(walk)
            .is_err()
        {
            WALKING.store(false, Relaxed);
        }
    }
    COUNT.load(Relaxed)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

#[derive(Serialize)]
struct CoreJson {
    core: usize,
    stream_port: u16,
    #[serde(flatten)]
    counters: CoreSnapshot,
    /// CPU time of the core's thread since start, seconds.
    cpu_seconds: f64,
    /// Publish→flush latency of the events written to the core's subscribers, microseconds.
    publish_to_flush_us: HistogramSnapshot,
}

#[derive(Serialize)]
struct StatsJson<'a> {
    node_id: &'a str,
    api: String,
    cores: Vec<CoreJson>,
    process: ProcessSnapshot,
    http: HttpSnapshot,
    /// What this node read from Redis and refused to render.
    store_rejected: u64,
    /// Other nodes' stream ports as their last heartbeats told (empty on a lone node).
    cluster: Vec<RemotePort>,
    /// Every node's subscribers and deliveries per second, and their sums.
    cluster_totals: cluster::ClusterTotals,
    /// The store thread's figures.
    store: StoreSnapshot,
    /// The Redis feed's figures (null without Redis).
    feed: Option<FeedSnapshot>,
    /// API requests by route and status since start, all cores together.
    requests: Vec<RequestCount>,
    /// The matches with the most subscribers on the node.
    busiest_matches: Vec<MatchLoad>,
}

/// The body of `GET /1/stats`.
pub fn stats_json(node: &NodeStats) -> Vec<u8> {
    let body = StatsJson {
        node_id: &node.node_id,
        api: node.api_addr.to_string(),
        cores: node
            .cores
            .iter()
            .enumerate()
            .map(|(i, c)| CoreJson {
                core: i,
                stream_port: node.stream_ports.get(i).copied().unwrap_or(0),
                counters: c.snapshot(),
                cpu_seconds: c.cpu_seconds(),
                publish_to_flush_us: c.publish_to_flush(),
            })
            .collect(),
        process: process_snapshot(),
        http: node.http.snapshot(),
        store_rejected: node.store_rejected.load(Relaxed),
        cluster: node.remote.read().map(|r| r.clone()).unwrap_or_default(),
        cluster_totals: cluster::totals(node),
        store: node.store_thread.snapshot(),
        feed: node.feed.get().map(|f| f.snapshot()),
        requests: requests::sum(node.cores.iter().map(|c| &c.requests)),
        busiest_matches: busiest::sum(node.cores.iter().map(|c| &c.busiest)),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// A per-core metric: name, type, help text, and how to read it from a snapshot.
type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&CoreSnapshot) -> u64,
);

/// The per-core metrics of `GET /metrics`.
const PER_CORE: [Metric; 11] = [
    (
        "matchstream_subscribers",
        "gauge",
        "Subscribers streaming now.",
        |s| s.subscribers,
    ),
    (
        "matchstream_live_matches",
        "gauge",
        "Matches with subscribers on the core.",
        |s| s.live_matches,
    ),
    (
        "matchstream_frames_sent_total",
        "counter",
        "Frames written to subscribers.",
        |s| s.frames_sent,
    ),
    (
        "matchstream_bytes_sent_total",
        "counter",
        "Bytes written to subscribers.",
        |s| s.bytes_sent,
    ),
    (
        "matchstream_slow_disconnects_total",
        "counter",
        "Subscribers cut off as too slow.",
        |s| s.slow_disconnects,
    ),
    (
        "matchstream_bus_depth",
        "gauge",
        "Messages waiting on the core's inbound bus.",
        |s| s.bus_depth,
    ),
    (
        "matchstream_sessions_total",
        "counter",
        "Stream connections accepted.",
        |s| s.sessions_total,
    ),
    (
        "matchstream_http_requests_total",
        "counter",
        "HTTP requests served.",
        |s| s.http_requests,
    ),
    (
        "matchstream_bus_depth_peak",
        "gauge",
        "Deepest the core's inbound bus was at a drain over the last 1-2 s.",
        |s| s.bus_depth_peak,
    ),
    (
        "matchstream_bus_depth_peak_60s",
        "gauge",
        "Deepest the core's inbound bus was at a drain over the last minute.",
        |s| s.bus_depth_peak_60s,
    ),
    (
        "matchstream_queued_bytes",
        "gauge",
        "Bytes queued in the core's outboxes, not yet written to subscribers.",
        |s| s.queued_bytes,
    ),
];

/// The body of `GET /metrics` (Prometheus text format 0.0.4).
pub fn metrics_text(node: &NodeStats) -> String {
    let mut out = String::new();
    let snaps: Vec<CoreSnapshot> = node.cores.iter().map(|c| c.snapshot()).collect();
    for (name, kind, help, get) in PER_CORE {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (i, s) in snaps.iter().enumerate() {
            let port = node.stream_ports.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name}{{node=\"{}\",core=\"{i}\",port=\"{port}\"}} {}",
                node.node_id,
                get(s)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP matchstream_store_rejected_total Matches, events and feed messages read from Redis that failed the node's checks.\n\
         # TYPE matchstream_store_rejected_total counter\n\
         matchstream_store_rejected_total{{node=\"{}\"}} {}",
        node.node_id,
        node.store_rejected.load(Relaxed)
    );
    // The store's reachability as GET /readyz judges it (crate::health), for alerting.
    let _ = writeln!(
        out,
        "# HELP matchstream_store_reachable 1 while the store is reachable (as GET /readyz judges it), else 0.\n\
         # TYPE matchstream_store_reachable gauge\n\
         matchstream_store_reachable{{node=\"{}\"}} {}",
        node.node_id,
        u8::from(node.store_health.problem().is_none())
    );
    // The cluster's totals as this node knows them (every node reports the same sums: a
    // dashboard takes one, max() over nodes).
    let totals = cluster::totals(node);
    for (name, help, value) in [
        (
            "matchstream_cluster_nodes",
            "Nodes of the cluster (this one and every node whose heartbeat is live).",
            totals.nodes as f64,
        ),
        (
            "matchstream_cluster_subscribers",
            "Subscribers of every node of the cluster.",
            totals.subscribers as f64,
        ),
        (
            "matchstream_cluster_deliveries_per_second",
            "Deliveries per second of every node of the cluster, over each node's last second.",
            totals.deliveries_per_second,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{node=\"{}\"}} {value}",
            node.node_id
        );
    }
    let p = process_snapshot();
    let h = node.http.snapshot();
    for (name, kind, help, v) in [
        (
            "matchstream_http_connections",
            "gauge",
            "HTTP API connections open now.",
            h.connections,
        ),
        (
            "matchstream_http_refused_total",
            "counter",
            "HTTP API connections refused at --max-api-connections.",
            h.refused,
        ),
        (
            "matchstream_http_write_timeouts_total",
            "counter",
            "HTTP API connections closed because the client read nothing in time.",
            h.write_timeouts,
        ),
        (
            "matchstream_process_rss_bytes",
            "gauge",
            "Resident set size.",
            p.rss_bytes,
        ),
        (
            "matchstream_process_open_files",
            "gauge",
            "Open file descriptors.",
            p.open_files,
        ),
        (
            "matchstream_process_open_files_limit",
            "gauge",
            "Soft open-files limit.",
            p.open_files_limit,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{node=\"{}\"}} {v}",
            node.node_id
        );
    }
    operations_metrics(&mut out, node, &p);
    out
}

/// The figures of issue 13 (item 2) in `/metrics`: CPU time, publish→flush latency per core,
/// the store thread, the feed, API requests by route and status, the busiest matches.
fn operations_metrics(out: &mut String, node: &NodeStats, p: &ProcessSnapshot) {
    let id = &node.node_id;
    let core_labels = |i: usize| {
        let port = node.stream_ports.get(i).copied().unwrap_or(0);
        format!("node=\"{id}\",core=\"{i}\",port=\"{port}\"")
    };
    let name = "matchstream_core_cpu_seconds_total";
    let _ = writeln!(
        out,
        "# HELP {name} CPU time of the core's thread.\n# TYPE {name} counter"
    );
    for (i, c) in node.cores.iter().enumerate() {
        let _ = writeln!(out, "{name}{{{}}} {}", core_labels(i), c.cpu_seconds());
    }
    let name = "matchstream_process_cpu_seconds_total";
    let _ = writeln!(
        out,
        "# HELP {name} CPU time of the process, user and system.\n# TYPE {name} counter\n\
         {name}{{node=\"{id}\"}} {}",
        p.cpu_seconds
    );
    let name = "matchstream_publish_to_flush_seconds";
    histogram_head(
        out,
        name,
        "From an event's publish on the bus to the end of the core's flush that wrote it to its subscribers.",
    );
    for (i, c) in node.cores.iter().enumerate() {
        histogram_series(out, name, &core_labels(i), &c.publish_to_flush(), 1e6);
    }
    let node_label = format!("node=\"{id}\"");
    let st = node.store_thread.snapshot();
    for (name, kind, help, v) in [
        (
            "matchstream_store_queue_depth",
            "gauge",
            "Requests waiting for the store thread after its last commit.",
            st.queue_depth,
        ),
        (
            "matchstream_store_queue_depth_peak_60s",
            "gauge",
            "Most requests waiting when the store thread took a batch, over the last minute.",
            st.queue_depth_peak_60s,
        ),
        (
            "matchstream_store_batches_total",
            "counter",
            "Batches the store thread committed.",
            st.batches,
        ),
        (
            "matchstream_store_ops_total",
            "counter",
            "Operations the store thread committed.",
            st.ops,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{node_label}}} {v}"
        );
    }
    let name = "matchstream_store_batch_size";
    histogram_head(out, name, "Operations per batch of the store thread.");
    histogram_series(out, name, &node_label, &st.batch_size, 1.0);
    let name = "matchstream_store_commit_seconds";
    histogram_head(out, name, "Time the store backend took per batch.");
    histogram_series(out, name, &node_label, &st.commit_us, 1e6);
    if let Some(feed) = node.feed.get().map(|f| f.snapshot()) {
        for (name, kind, help, v) in [
            (
                "matchstream_feed_events_total",
                "counter",
                "Events the Redis feed delivered to the node's cores.",
                feed.events,
            ),
            (
                "matchstream_feed_gap_fills_total",
                "counter",
                "Reads of a match's history that delivered events the Redis channel did not bring.",
                feed.gap_fills,
            ),
            (
                "matchstream_feed_gap_filled_events_total",
                "counter",
                "Events delivered by those reads.",
                feed.gap_filled_events,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{node_label}}} {v}"
            );
        }
        let name = "matchstream_feed_last_lag_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Lag of the last event the Redis feed delivered.\n# TYPE {name} gauge\n\
             {name}{{{node_label}}} {}",
            feed.last_lag_ms as f64 / 1e3
        );
        let name = "matchstream_feed_lag_seconds";
        histogram_head(
            out,
            name,
            "From an event's timestamp to its delivery by the Redis feed.",
        );
        histogram_series(out, name, &node_label, &feed.lag_ms, 1e3);
    }
    let name = "matchstream_api_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} API requests answered, by route and status.\n# TYPE {name} counter"
    );
    for r in requests::sum(node.cores.iter().map(|c| &c.requests)) {
        let _ = writeln!(
            out,
            "{name}{{{node_label},route=\"{}\",status=\"{}\"}} {}",
            r.route, r.status, r.count
        );
    }
    let name = "matchstream_match_subscribers";
    let _ = writeln!(
        out,
        "# HELP {name} Subscribers of the node's busiest matches (at most {}).\n# TYPE {name} gauge",
        busiest::TOP_MATCHES
    );
    for m in busiest::sum(node.cores.iter().map(|c| &c.busiest)) {
        let _ = writeln!(
            out,
            "{name}{{{node_label},match=\"{}\"}} {}",
            m.id, m.subscribers
        );
    }
}

/// The HELP and TYPE lines of a histogram.
fn histogram_head(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
}

/// One series of a histogram: its cumulative buckets, `+Inf`, sum and count, its bounds and
/// sum divided by `scale` (1e6: microseconds to seconds; 1: plain counts).
fn histogram_series(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot, scale: f64) {
    for (le, n) in h.le.iter().zip(&h.buckets) {
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"{}\"}} {n}",
            *le as f64 / scale
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{{labels},le=\"+Inf\"}} {}\n{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}",
        h.count,
        h.sum as f64 / scale,
        h.count
    );
}

#[cfg(test)]
impl NodeStats {
    /// Node `n1`, API on 127.0.0.1:8888, two cores on stream ports 9100 and 9101: the node
    /// of unit tests.
    pub(crate) fn for_tests() -> NodeStats {
        NodeStats::new(
            "n1".into(),
            "127.0.0.1:8888".parse().expect("addr"),
            vec![9100, 9101],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_json_lists_every_core_and_the_process() {
        let n = NodeStats::for_tests();
        n.cores[1].add_bytes(42);
        let v: serde_json::Value = serde_json::from_slice(&stats_json(&n)).expect("json");
        assert_eq!(v["node_id"], "n1");
        assert_eq!(v["cores"][1]["stream_port"], 9101);
        assert_eq!(v["cores"][1]["bytes_sent"], 42);
        n.store_rejected.fetch_add(3, Relaxed);
        let v: serde_json::Value = serde_json::from_slice(&stats_json(&n)).expect("json");
        assert_eq!(v["store_rejected"], 3);
        assert!(v["process"]["rss_bytes"].as_u64().unwrap_or(0) > 0);
        assert!(v["process"]["open_files_limit"].as_u64().unwrap_or(0) > 0);
    }

    #[test]
    fn open_files_are_counted_without_a_walk() {
        let before = open_files();
        let extra: Vec<std::fs::File> = (0..50)
            .map(|_| std::fs::File::open("/proc/self/statm").expect("open"))
            .collect();
        // The kernel's count (Linux >= 6.2) is exact; another test may open files meanwhile.
        assert!(open_files() >= before + 50, "{before} -> {}", open_files());
        drop(extra);
        // The fallback answers at once and counts on its own thread.
        let _ = walked_open_files();
        let deadline = Instant::now() + Duration::from_secs(5);
        while walked_open_files() == 0 {
            assert!(Instant::now() < deadline, "the walk never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// With 15,000 descriptors open, a count takes well under 1 ms (a walk took ~20 ms).
    #[test]
    fn counting_15000_open_files_takes_under_a_millisecond() {
        let extra: Vec<std::fs::File> = (0..15_000)
            .map(|_| std::fs::File::open("/dev/null").expect("open (open-files limit?)"))
            .collect();
        let fastest = (0..5)
            .map(|_| {
                let t = Instant::now();
                assert!(open_files() >= 15_000);
                t.elapsed()
            })
            .min()
            .unwrap_or_default();
        drop(extra);
        assert!(fastest < Duration::from_millis(1), "{fastest:?}");
    }

    /// Ticks of [`PENDING_TICK`] in `d`.
    fn ticks(d: Duration) -> u64 {
        (d.as_millis() / PENDING_TICK.as_millis()) as u64
    }

    #[test]
    fn a_checkin_without_a_connect_stops_counting_after_the_ttl() {
        let p = Pending::default();
        let t0 = 1;
        p.add(t0);
        p.add(t0);
        assert_eq!(p.count(t0), 2);
        let last = t0 + ticks(PENDING_TTL) - 1;
        assert_eq!(p.count(last), 2, "still counting a tick before the TTL");
        assert_eq!(p.count(last + 1), 0, "expired at the TTL");
        // A check-in at the same slot a TTL later starts afresh, not on top of the old ones.
        p.add(last + 1);
        assert_eq!(p.count(last + 1), 1);
    }

    #[test]
    fn a_connect_takes_the_oldest_checkin_still_counting() {
        let p = Pending::default();
        p.add(1);
        p.add(3);
        p.add(3);
        p.take(4);
        assert_eq!(p.count(4), 2);
        // The one of tick 1 was taken: those of tick 3 count until their own TTL.
        let expiry = 3 + ticks(PENDING_TTL);
        assert_eq!(p.count(expiry - 1), 2);
        p.take(expiry - 1);
        p.take(expiry - 1);
        p.take(expiry - 1);
        assert_eq!(
            p.count(expiry - 1),
            0,
            "more connects than check-ins leave none, not less"
        );
        p.add(expiry);
        assert_eq!(p.count(expiry), 1);
    }

    #[test]
    fn pending_counts_saturate_instead_of_spilling_into_the_tick() {
        let p = Pending::default();
        p.slots[1].store(pack(1, COUNT_MAX), Relaxed);
        p.add(1);
        assert_eq!(p.count(1), COUNT_MAX);
        assert_eq!(unpack(p.slots[1].load(Relaxed)), (1, COUNT_MAX));
    }

    #[test]
    fn api_connections_are_capped_per_node_and_slots_come_back() {
        let n = NodeStats::for_tests();
        let a = n.http.admit(2).expect("first");
        let b = n.http.admit(2).expect("second");
        assert!(n.http.admit(2).is_none());
        drop(a);
        let c = n.http.admit(2).expect("a freed slot");
        n.http.add_write_timeout();
        let want = HttpSnapshot {
            connections: 2,
            refused: 1,
            write_timeouts: 1,
        };
        assert_eq!(n.http.snapshot(), want);
        let v: serde_json::Value = serde_json::from_slice(&stats_json(&n)).expect("json");
        assert_eq!(v["http"]["connections"], 2);
        assert_eq!(v["http"]["refused"], 1);
        assert!(metrics_text(&n).contains(
            "# TYPE matchstream_http_refused_total counter\nmatchstream_http_refused_total{node=\"n1\"} 1"
        ));
        drop((b, c));
        assert_eq!(n.http.snapshot().connections, 0);
    }

    #[test]
    fn new_figures_follow_the_existing_keys_in_their_order() {
        let n = NodeStats::for_tests();
        let body = String::from_utf8(stats_json(&n)).expect("utf-8");
        let at = |key: &str| {
            body.find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing: {body}"))
        };
        let top = [
            "node_id",
            "api",
            "cores",
            "process",
            "http",
            "store_rejected",
            "cluster",
            "store",
            "feed",
            "requests",
            "busiest_matches",
        ];
        assert!(top.windows(2).all(|w| at(w[0]) < at(w[1])), "{body}");
        let core = [
            "http_requests",
            "bus_depth_peak",
            "bus_depth_peak_60s",
            "queued_bytes",
            "cpu_seconds",
            "publish_to_flush_us",
        ];
        assert!(core.windows(2).all(|w| at(w[0]) < at(w[1])), "{body}");
    }

    #[test]
    fn histograms_are_prometheus_histograms() {
        let n = NodeStats::for_tests();
        n.cores[0].record_publish_to_flush(Duration::from_micros(300), 2);
        n.cores[0].record_publish_to_flush(Duration::from_secs(20), 1);
        let text = metrics_text(&n);
        let labels = "node=\"n1\",core=\"0\",port=\"9100\"";
        for line in [
            "# TYPE matchstream_publish_to_flush_seconds histogram".to_owned(),
            format!("matchstream_publish_to_flush_seconds_bucket{{{labels},le=\"0.00025\"}} 0"),
            format!("matchstream_publish_to_flush_seconds_bucket{{{labels},le=\"0.0005\"}} 2"),
            format!("matchstream_publish_to_flush_seconds_bucket{{{labels},le=\"10\"}} 2"),
            format!("matchstream_publish_to_flush_seconds_bucket{{{labels},le=\"+Inf\"}} 3"),
            format!("matchstream_publish_to_flush_seconds_sum{{{labels}}} 20.0006"),
            format!("matchstream_publish_to_flush_seconds_count{{{labels}}} 3"),
            "matchstream_store_batch_size_bucket{node=\"n1\",le=\"4096\"} 0".to_owned(),
            "matchstream_store_commit_seconds_count{node=\"n1\"} 0".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        assert!(!text.contains("matchstream_feed_"), "no feed without Redis");
        // Every sample line is `name{labels} value` with a number for a value.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let value = l.rsplit(' ').next().unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }

    #[test]
    fn queued_bytes_follow_their_outboxes() {
        let c = CoreStats::default();
        c.queued_grew(100);
        c.queued_grew(20);
        c.queued_shrank(50);
        assert_eq!(c.snapshot().queued_bytes, 70);
        c.queued_shrank(500);
        assert_eq!(c.snapshot().queued_bytes, 0, "never below zero");
    }

    #[test]
    fn metrics_text_has_one_sample_per_core() {
        let text = metrics_text(&NodeStats::for_tests());
        assert!(text.contains("matchstream_subscribers{node=\"n1\",core=\"1\",port=\"9101\"} 0"));
        assert!(text.contains("# TYPE matchstream_bytes_sent_total counter"));
        assert!(text.contains("matchstream_store_rejected_total{node=\"n1\"} 0\n"));
    }

    #[test]
    fn metrics_text_says_whether_the_store_is_reachable() {
        let n = NodeStats::for_tests();
        // No store thread yet: unreachable, as /readyz would say.
        let gauge =
            "# TYPE matchstream_store_reachable gauge\nmatchstream_store_reachable{node=\"n1\"}";
        assert!(metrics_text(&n).contains(&format!("{gauge} 0\n")));
        n.store_health.set_store_thread(true);
        assert!(metrics_text(&n).contains(&format!("{gauge} 1\n")));
        n.store_health.watch_redis();
        n.store_health.heartbeat(false);
        assert!(metrics_text(&n).contains(&format!("{gauge} 0\n")));
        n.store_health.heartbeat(true);
        assert!(metrics_text(&n).contains(&format!("{gauge} 1\n")));
    }
}
