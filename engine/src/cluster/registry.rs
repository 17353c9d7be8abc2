//! The node registry: each node heartbeats its host, stream ports and per-core load into Redis
//! with a time-to-live, and reads everyone else's, so checkin on any node answers the
//! least-loaded port of the whole cluster. A node that dies drops out when its key expires.
//!
//! A draining node ([`crate::drain`]) removes its entry at once (within [`WAKE`] of the drain's
//! start) and from then on only reads the others', so that its own checkin can still send
//! clients to them. Every heartbeat, ok or failed, is recorded for `GET /readyz`
//! ([`crate::health`]): it is the node's cheap, regular proof that Redis answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{connect, node_key, Backoff, Worker, NODES};
use crate::config::RedisUrl;
use crate::stats::cluster::NodeFigures;
use crate::stats::{NodeStats, RemotePort};

/// The registry thread's name.
pub const THREAD_NAME: &str = "matchstream-registry";

/// How often a node heartbeats.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a heartbeat stays valid: a dead node drops out of checkin within this (and a
/// node whose heartbeats fail that long is not ready, `health`).
pub const TTL: Duration = crate::health::REDIS_STALE;
/// How often the thread wakes between heartbeats, to stop or to leave for a drain.
const WAKE: Duration = Duration::from_millis(100);

/// What a node publishes about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Node id.
    pub id: String,
    /// The host clients connect to.
    pub host: String,
    /// Stream port of core i at index i.
    pub ports: Vec<u16>,
    /// Subscribers of core i at index i.
    pub load: Vec<u64>,
    /// The node's HTTP API, `host:port` (the advertised host, the API's port), for tools
    /// that poll every node (`matchstream top`); empty from a node that did not publish it.
    #[serde(default)]
    pub api: String,
    /// Subscribers of the node (every core and transport); 0 from a node that did not publish
    /// it.
    #[serde(default)]
    pub subscribers: u64,
    /// The node's deliveries per second over its last second (`stats::cluster`).
    #[serde(default)]
    pub deliveries_per_second: f64,
}

/// The running registry thread.
pub struct Registry(Worker);

impl Registry {
    /// Starts heartbeating `node` (reachable at `host`) into the Redis at `url`, through
    /// `client`.
    pub fn start(
        client: redis::Client,
        url: &RedisUrl,
        node: Arc<NodeStats>,
        host: String,
    ) -> std::io::Result<Registry> {
        let url = url.clone();
        Worker::spawn(THREAD_NAME, move |stop| {
            run(&client, &url, &node, &host, stop)
        })
        .map(Registry)
    }

    /// Stops heartbeating, removes this node from the registry, waits for the thread.
    pub fn stop(self) {
        self.0.stop();
    }
}

fn run(client: &redis::Client, url: &RedisUrl, node: &NodeStats, host: &str, stop: &AtomicBool) {
    let mut con: Option<redis::Connection> = None;
    let mut backoff = Backoff::default();
    let mut down = false;
    let mut last_ok = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if con.is_none() && backoff.ready() {
            match connect(client) {
                Ok(c) => con = Some(c),
                Err(_) => {
                    node.store_health.heartbeat(false);
                    backoff.failed();
                }
            }
        }
        let draining = node.drain.is_draining();
        if let Some(c) = con.as_mut() {
            match beat(c, node, host, !draining) {
                Ok(remote) => {
                    node.set_remote(remote);
                    node.store_health.heartbeat(true);
                    last_ok = Instant::now();
                    backoff.succeeded();
                    if down {
                        log::info!(target: "matchstream::registry", "registry on {url} reachable again");
                        down = false;
                    }
                }
                Err(e) => {
                    node.store_health.heartbeat(false);
                    if !down {
                        log::warn!(target: "matchstream::registry", "registry on {url} unavailable: {e}");
                        down = true;
                    }
                    con = None;
                    backoff.failed();
                }
            }
        }
        if last_ok.elapsed() > TTL {
            // What we know of the others is older than their heartbeats' lifetime.
            node.set_remote(Vec::new());
            node.others.set(Vec::new());
        }
        // The next heartbeat, or at once when a drain begins: the node leaves the registry.
        let until = Instant::now() + HEARTBEAT;
        while !stop.load(Ordering::Relaxed)
            && Instant::now() < until
            && draining == node.drain.is_draining()
        {
            std::thread::sleep(WAKE);
        }
    }
    if let Some(c) = con.as_mut() {
        let _: redis::RedisResult<()> = redis::pipe()
            .cmd("DEL")
            .arg(node_key(&node.node_id))
            .ignore()
            .cmd("SREM")
            .arg(NODES)
            .arg(&node.node_id)
            .ignore()
            .query(c);
    }
}

/// One heartbeat: publish ours (`publish`; else remove it: the node drains), read everyone's,
/// drop the expired from the set.
fn beat(
    con: &mut redis::Connection,
    node: &NodeStats,
    host: &str,
    publish: bool,
) -> redis::RedisResult<Vec<RemotePort>> {
    let mut pipe = redis::pipe();
    if publish {
        let own = crate::stats::cluster::own(node);
        let entry = NodeEntry {
            id: node.node_id.clone(),
            host: host.to_owned(),
            ports: node.stream_ports.clone(),
            load: node.cores.iter().map(|c| c.load()).collect(),
            api: api_address(host, node.api_addr.port()),
            subscribers: own.subscribers,
            deliveries_per_second: own.deliveries_per_second,
        };
        let json = serde_json::to_string(&entry).unwrap_or_default();
        pipe.cmd("SET")
            .arg(node_key(&node.node_id))
            .arg(json)
            .arg("PX")
            .arg(TTL.as_millis() as u64)
            .ignore()
            .cmd("SADD")
            .arg(NODES)
            .arg(&node.node_id)
            .ignore();
    } else {
        pipe.cmd("DEL")
            .arg(node_key(&node.node_id))
            .ignore()
            .cmd("SREM")
            .arg(NODES)
            .arg(&node.node_id)
            .ignore();
    }
    let (members,): (Vec<String>,) = pipe.cmd("SMEMBERS").arg(NODES).query(con)?;
    let keys: Vec<String> = members.iter().map(|m| node_key(m)).collect();
    let values: Vec<Option<String>> = if keys.is_empty() {
        Vec::new()
    } else {
        redis::cmd("MGET").arg(&keys).query(con)?
    };
    let mut remote = Vec::new();
    let mut others = Vec::new();
    for (member, value) in members.iter().zip(values) {
        match value.and_then(|v| serde_json::from_str::<NodeEntry>(&v).ok()) {
            None => {
                let _: i64 = redis::cmd("SREM").arg(NODES).arg(member).query(con)?;
            }
            Some(e) if e.id == node.node_id => {}
            Some(e) => {
                others.push(NodeFigures {
                    node: e.id.clone(),
                    subscribers: e.subscribers,
                    deliveries_per_second: e.deliveries_per_second,
                });
                for (port, load) in e.ports.iter().zip(&e.load) {
                    remote.push(RemotePort {
                        node: e.id.clone(),
                        host: e.host.clone(),
                        port: *port,
                        load: *load,
                        api: e.api.clone(),
                    });
                }
            }
        }
    }
    node.others.set(others);
    Ok(remote)
}

/// `host:port`, with an IPv6 host in brackets.
fn api_address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_addresses_bracket_ipv6_hosts() {
        assert_eq!(api_address("10.0.0.2", 8888), "10.0.0.2:8888");
        assert_eq!(api_address("node-a", 80), "node-a:80");
        assert_eq!(api_address("::1", 8888), "[::1]:8888");
        assert_eq!(api_address("[::1]", 8888), "[::1]:8888");
    }

    #[test]
    fn entries_of_nodes_that_publish_no_api_still_read() {
        let e: NodeEntry =
            serde_json::from_str(r#"{"id":"n2","host":"h","ports":[9100],"load":[3]}"#)
                .expect("an older node's entry");
        assert_eq!(e.api, "");
    }
}
