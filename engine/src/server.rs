//! Starting and stopping a node: store thread, listeners, one pinned executor per core.
//!
//! [`start`] returns only once every core has bound its listeners and built its match table,
//! so the ports in the [`ServerHandle`] (and in the `listening` log line) are real, also with
//! port 0. Shutdown order: the bus tells every core; each stops accepting, sends its
//! subscribers `ERROR: server shutting down`, waits for its connections to finish within the
//! grace period, and exits; then the store thread drains its queue and stops. A drain
//! ([`crate::drain`]) may come first: [`ServerHandle::wait`] returns once it has ended, and
//! the caller then shuts the node down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

use crate::bus::{bus, BusHandle, BusMsg, Inbox, MatchRecord};
use crate::cluster::feed::{self, Feed};
use crate::cluster::registry::{self, Registry};
use crate::cluster::Delivered;
use crate::config::{Config, StoreSpec};
use crate::drain::{self, Drainer};
use crate::error::Error;
use crate::fanout::Fanout;
use crate::listener::{accept_loop, adopt, bind, bind_api, Port};
use crate::shard::Shard;
use crate::stats::NodeStats;
use crate::store::embedded::EmbeddedStore;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::{Store, StoreError, StoreHandle, StoreService};
use crate::{api, limits, session, store, token};

/// How long a task may run before the executor polls io_uring again: bounds how long a large
/// fanout keeps a core from answering requests and reading new events.
const PREEMPT_TIMER: Duration = Duration::from_millis(1);

/// A running node.
pub struct ServerHandle {
    /// The API address as bound.
    pub api_addr: SocketAddr,
    /// Stream port of core i at index i.
    pub stream_ports: Vec<u16>,
    /// The watcher token in force.
    pub token: String,
    /// Where the generated token was written (none when `--token` was given): removed at stop.
    pub token_file: Option<PathBuf>,
    /// Node identity and live counters.
    pub node: Arc<NodeStats>,
    bus: BusHandle,
    executors: Vec<ExecutorJoinHandle<()>>,
    store: Option<StoreService>,
    feed: Option<Feed>,
    registry: Option<Registry>,
    drainer: Option<Drainer>,
}

/// Everything one core needs, moved into its executor thread.
struct CoreSetup {
    core: usize,
    inbox: Inbox,
    store: StoreHandle,
    node: Arc<NodeStats>,
    config: Arc<Config>,
    token: Arc<str>,
    records: Arc<Vec<MatchRecord>>,
    api: std::net::TcpListener,
    stream: std::net::TcpListener,
    ready: std::sync::mpsc::Sender<()>,
}

/// The listening sockets of every core.
struct Listeners {
    /// The API listener of core i at index i (one port, shared with SO_REUSEPORT).
    api: Vec<std::net::TcpListener>,
    /// The stream listener of core i at index i.
    stream: Vec<std::net::TcpListener>,
    /// The API address as bound.
    api_addr: SocketAddr,
    /// The stream port of core i at index i, as bound.
    stream_ports: Vec<u16>,
}

/// Binds every core's listeners: the API port shared by all, one stream port each (with a
/// base port, consecutive from it). Done first, so a port in use fails before anything starts.
fn bind_listeners(config: &Config, cores: usize) -> Result<Listeners, Error> {
    let first_api = bind_api(config.api, config.backlog)?;
    let api_addr = first_api.local_addr().map_err(|e| Error::Bind {
        addr: config.api,
        source: e,
    })?;
    let mut api = vec![first_api];
    for _ in 1..cores {
        api.push(bind_api(api_addr, config.backlog)?);
    }
    let mut stream = Vec::with_capacity(cores);
    let mut stream_ports = Vec::with_capacity(cores);
    for i in 0..cores {
        let port = match config.stream_port {
            0 => 0,
            base => u16::try_from(usize::from(base) + i)
                .map_err(|_| Error::Config(format!("stream port {base}+{i} exceeds 65535")))?,
        };
        let addr = SocketAddr::new(config.api.ip(), port);
        let listener = bind(addr, config.backlog, false)?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::Bind { addr, source: e })?;
        stream_ports.push(bound.port());
        stream.push(listener);
    }
    Ok(Listeners {
        api,
        stream,
        api_addr,
        stream_ports,
    })
}

/// The store, opened and running.
struct OpenStore {
    /// The store thread.
    service: StoreService,
    /// The way to it, for the cores.
    handle: StoreHandle,
    /// Every match it holds, with its history: what the cores' tables start from.
    records: Vec<MatchRecord>,
    /// The store's one-line description, for the `listening` line.
    describe: String,
}

/// Opens the configured store, loads its matches and starts the store thread publishing on
/// `bus`; what a shared store holds and fails the checks counts in `node`'s `store_rejected`.
fn open_store(
    spec: &StoreSpec,
    bus: &BusHandle,
    delivered: &Arc<Delivered>,
    node: &NodeStats,
) -> Result<OpenStore, Error> {
    let fail = |source: StoreError| Error::Store {
        spec: spec.to_string(),
        source,
    };
    let mut store: Box<dyn Store> = match spec {
        StoreSpec::Memory => Box::new(MemoryStore::new()),
        StoreSpec::Embedded(dir) => Box::new(EmbeddedStore::open(dir).map_err(fail)?),
        StoreSpec::Redis(url) => Box::new(
            RedisStore::open(url, delivered.clone(), node.store_rejected.clone()).map_err(fail)?,
        ),
    };
    let records = store.load().map_err(fail)?;
    let describe = store.describe();
    log::info!(target: "matchstream::store", "store {describe} holds {} matches", records.len());
    if matches!(spec, StoreSpec::Redis(_)) {
        node.store_health.watch_redis();
    }
    let (service, handle) = StoreService::start_counted(
        store,
        bus.clone(),
        node.store_health.clone(),
        node.store_thread.clone(),
    )
    .map_err(|source| Error::Thread {
        name: store::service::THREAD_NAME.into(),
        source,
    })?;
    Ok(OpenStore {
        service,
        handle,
        records,
        describe,
    })
}

/// On a Redis store, joins the cluster: starts the node's feed of the Redis event channel
/// (from the state of `records`) and its heartbeat into the node registry.
fn join_cluster(
    config: &Config,
    node: &Arc<NodeStats>,
    records: &[MatchRecord],
    bus: &BusHandle,
    delivered: &Arc<Delivered>,
) -> Result<(Option<Feed>, Option<Registry>), Error> {
    let StoreSpec::Redis(url) = &config.store else {
        return Ok((None, None));
    };
    let client = redis::Client::open(url.expose()).map_err(|source| Error::RedisUrl {
        url: url.clone(),
        source,
    })?;
    let thread = |name: &str| {
        let name = name.to_owned();
        move |source| Error::Thread { name, source }
    };
    let feed = Feed::start(
        client.clone(),
        url,
        records,
        bus.clone(),
        delivered.clone(),
        node.store_rejected.clone(),
        node.store_health.clone(),
    )
    .map_err(thread(feed::THREAD_NAME))?;
    let _ = node.feed.set(feed.stats());
    let host = advertised_host(config, node.api_addr);
    let registry =
        Registry::start(client, url, node.clone(), host).map_err(thread(registry::THREAD_NAME))?;
    Ok((Some(feed), Some(registry)))
}

/// The host other nodes' checkins send clients to: `--advertise`, else the API's address.
fn advertised_host(config: &Config, api: SocketAddr) -> String {
    match &config.advertise {
        Some(h) => h.clone(),
        None if api.ip().is_unspecified() => {
            log::warn!(target: "matchstream::server",
                "the API listens on {api}: other nodes will send clients to 127.0.0.1; set --advertise");
            "127.0.0.1".into()
        }
        None => api.ip().to_string(),
    }
}

/// Writes a generated token to its file (see [`token`]) and logs the file's path, never the
/// token.
fn publish_token(config: &Config, api_port: u16, value: &str) -> Result<PathBuf, Error> {
    let path = token::file_for(&config.store, api_port);
    token::write(&path, value).map_err(|source| Error::TokenFile {
        path: path.clone(),
        source,
    })?;
    log::warn!(target: "matchstream::server",
        "no --token / MATCHSTREAM_TOKEN given: watchers must use the generated token in {} (mode 0600)",
        path.display());
    Ok(path)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Starts a node and returns once it serves.
pub fn start(config: Config) -> Result<ServerHandle, Error> {
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    let cores = match config.cores {
        0 => cpus.len().max(1),
        n => n,
    };
    let nofile = limits::raise_open_files_limit();
    log::debug!(target: "matchstream::server", "open-files limit {nofile}");

    let listeners = bind_listeners(&config, cores)?;
    let api_addr = listeners.api_addr;
    let stream_ports = listeners.stream_ports.clone();
    limits::check(config.backlog, &stream_ports, api_addr.port());

    let (token, generated) = match &config.token {
        Some(t) if !t.is_empty() => (t.clone(), false),
        _ => (token::generate(), true),
    };

    let node = Arc::new(NodeStats::new(
        config
            .node_id
            .clone()
            .unwrap_or_else(|| format!("{}:{}", hostname(), api_addr.port())),
        api_addr,
        stream_ports.clone(),
    ));
    let (bus, inboxes) = bus(cores);
    let delivered = Arc::new(Delivered::default());
    let store = open_store(&config.store, &bus, &delivered, &node)?;
    let (feed, registry) = join_cluster(&config, &node, &store.records, &bus, &delivered)?;
    let drainer = Drainer::start(node.clone(), bus.clone()).map_err(|source| Error::Thread {
        name: drain::THREAD_NAME.into(),
        source,
    })?;
    let token_file = match generated {
        true => Some(publish_token(&config, api_addr.port(), &token)?),
        false => None,
    };
    let cores = Cores {
        cpus,
        config: Arc::new(config),
        token: Arc::from(token.as_str()),
        store: store.handle,
        node: node.clone(),
        records: Arc::new(store.records),
    };
    let executors = spawn_cores(cores, inboxes, listeners)?;
    log::info!(target: "matchstream::server",
        "listening api={api_addr} stream={} cores={} store={} node={}",
        stream_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
        executors.len(), store.describe, node.node_id);
    Ok(ServerHandle {
        api_addr,
        stream_ports,
        token,
        token_file,
        node,
        bus,
        executors,
        store: Some(store.service),
        feed,
        registry,
        drainer: Some(drainer),
    })
}

/// What every core shares, handed to [`spawn_cores`].
struct Cores {
    /// The CPUs cores are pinned to, core i on CPU i (modulo their number).
    cpus: Vec<core_affinity::CoreId>,
    config: Arc<Config>,
    token: Arc<str>,
    /// The way to the store thread (dropped here once every core has its own).
    store: StoreHandle,
    node: Arc<NodeStats>,
    /// The matches every core's table starts from.
    records: Arc<Vec<MatchRecord>>,
}

/// Starts one executor per core (pinned unless `--no-pin`), each with its inbox and listeners,
/// and returns once every core has built its match table and serves.
fn spawn_cores(
    shared: Cores,
    inboxes: Vec<Inbox>,
    listeners: Listeners,
) -> Result<Vec<ExecutorJoinHandle<()>>, Error> {
    let Cores {
        cpus,
        config,
        token,
        store,
        node,
        records,
    } = shared;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut executors = Vec::with_capacity(inboxes.len());
    let listeners = listeners.api.into_iter().zip(listeners.stream);
    for (core, (inbox, (api, stream))) in inboxes.into_iter().zip(listeners).enumerate() {
        let placement = match cpus.get(core % cpus.len().max(1)) {
            Some(cpu) if !config.no_pin => Placement::Fixed(cpu.id),
            _ => Placement::Unbound,
        };
        let setup = CoreSetup {
            core,
            inbox,
            store: store.clone(),
            node: node.clone(),
            config: config.clone(),
            token: token.clone(),
            records: records.clone(),
            api,
            stream,
            ready: ready_tx.clone(),
        };
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("matchstream-core-{core}"))
            .preempt_timer(PREEMPT_TIMER)
            .spawn(move || run_core(setup))
            .map_err(|e| Error::Executor {
                core,
                source: e.into(),
            })?;
        executors.push(handle);
    }
    drop(ready_tx);
    drop(store);
    for core in 0..executors.len() {
        if ready_rx.recv().is_err() {
            return Err(Error::CoreStopped { core });
        }
    }
    Ok(executors)
}

async fn run_core(setup: CoreSetup) {
    let CoreSetup {
        core,
        inbox,
        store,
        node,
        config,
        token,
        records,
        api,
        stream,
        ready,
    } = setup;
    let fanout = Fanout::new(&records);
    drop(records);
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let shard = std::rc::Rc::new(Shard::new(core, fanout, inbox, store, node, config, token));
    let bus_task = glommio::spawn_local(shard.clone().run_bus());
    glommio::spawn_local(shard.clone().run_sweep()).detach();
    let streams = glommio::spawn_local(accept_loop(
        shard.clone(),
        adopt(stream),
        Port::Stream,
        session::run,
    ));
    let apis = glommio::spawn_local(api::poller::run(shard.clone(), api));
    let _ = ready.send(());
    drop(ready);
    bus_task.await;
    streams.await;
    apis.await;
    // After a signal's drain, what is left of its grace period (SIGTERM is answered within it).
    let grace = shard.node.drain.final_wait(grace);
    future::or(shard.tasks.idle(), async {
        glommio::timer::sleep(grace).await;
        log::warn!(target: "matchstream::server",
            "core {core}: connections still open after the grace period; closing them");
    })
    .await;
}

impl ServerHandle {
    /// Blocks until the node has drained: a drain began (`POST /1/admin/drain`, or
    /// [`crate::signals::drain_on_termination`]) and ended, its v1 subscribers gone or its
    /// time up. The caller then shuts the node down ([`ServerHandle::shutdown`]).
    pub fn wait(&self) {
        self.node.drain.wait_finished();
    }

    /// Stops the node gracefully and waits for it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.executors.is_empty() && self.store.is_none() {
            return;
        }
        log::info!(target: "matchstream::server", "shutting down");
        if let Some(drainer) = self.drainer.take() {
            drainer.stop();
        }
        // Leave the cluster first, so checkin stops sending clients here.
        if let Some(registry) = self.registry.take() {
            registry.stop();
        }
        self.bus.broadcast(BusMsg::Shutdown);
        for (core, ex) in self.executors.drain(..).enumerate() {
            if ex.join().is_err() {
                log::error!(target: "matchstream::server", "core {core} ended with an error");
            }
        }
        if let Some(feed) = self.feed.take() {
            feed.stop();
        }
        if let Some(store) = self.store.take() {
            store.join();
        }
        if let Some(path) = self.token_file.take() {
            token::remove(&path);
        }
        log::info!(target: "matchstream::server", "stopped");
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
