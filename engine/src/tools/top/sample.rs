//! What `matchstream top` reads: each node's `GET /1/stats` (docs/api.md), parsed into the
//! few figures it shows, and a round of them over the whole cluster — the node given with
//! `--url`, and every other node its `cluster` list names with an API address.
//!
//! Every field has a default, so a node of an older version (without the operations
//! figures) still shows what it has.

use std::collections::BTreeMap;
use std::time::Instant;

use matchstream_client::HttpClient;
use serde::Deserialize;

use crate::stats::histogram::HistogramSnapshot;

/// A node's `/1/stats`, as far as top reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// The node's id.
    pub node_id: String,
    /// Its cores.
    pub cores: Vec<Core>,
    /// The process.
    pub process: Process,
    /// The store thread.
    pub store: Store,
    /// The Redis feed (none without Redis).
    pub feed: Option<Feed>,
    /// The busiest matches.
    pub busiest_matches: Vec<MatchLoad>,
    /// The other nodes' stream ports, with their API addresses.
    pub cluster: Vec<Remote>,
}

/// One core.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Core {
    /// Its index.
    pub core: usize,
    /// Its stream port.
    pub stream_port: u16,
    /// Subscribers now.
    pub subscribers: u64,
    /// Frames written since start.
    pub frames_sent: u64,
    /// Subscribers cut off as too slow since start.
    pub slow_disconnects: u64,
    /// The bus depth's peak over the last 1–2 s.
    pub bus_depth_peak: u64,
    /// Bytes waiting in the core's outboxes.
    pub queued_bytes: u64,
    /// CPU time of the core's thread.
    pub cpu_seconds: f64,
    /// Publish→flush latency, microseconds.
    pub publish_to_flush_us: HistogramSnapshot,
}

/// The process.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Process {
    /// Resident memory.
    pub rss_bytes: u64,
    /// Open files.
    pub open_files: u64,
    /// Their limit.
    pub open_files_limit: u64,
    /// CPU time of the process.
    pub cpu_seconds: f64,
}

/// The store thread.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Store {
    /// Requests waiting now.
    pub queue_depth: u64,
    /// Most waiting at a batch over the last 1–2 s.
    pub queue_depth_peak: u64,
    /// Batches since start.
    pub batches: u64,
    /// Operations since start.
    pub ops: u64,
    /// Operations of the last batch.
    pub last_batch_size: u64,
    /// Commit latency, microseconds.
    pub commit_us: HistogramSnapshot,
}

/// The Redis feed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Feed {
    /// Events delivered since start.
    pub events: u64,
    /// The last one's lag.
    pub last_lag_ms: u64,
    /// Lag, milliseconds.
    pub lag_ms: HistogramSnapshot,
    /// Gaps filled since start.
    pub gap_fills: u64,
}

/// A busy match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MatchLoad {
    /// Its id.
    #[serde(rename = "match")]
    pub id: String,
    /// Its subscribers on the node.
    pub subscribers: u64,
}

/// A stream port of another node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Remote {
    /// The node's id.
    pub node: String,
    /// Its API, `host:port` (empty from an older node).
    pub api: String,
}

/// One node's answer, or why there was none.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The URL asked.
    pub url: String,
    /// When the answer came.
    pub at: Instant,
    /// The figures, or the error.
    pub stats: Result<Stats, String>,
}

/// Asks the nodes of a cluster for their figures, keeping a connection to each.
pub struct Poller {
    seed: String,
    clients: BTreeMap<String, HttpClient>,
    /// The other nodes' URLs by node id, as the last round's lists named them.
    others: BTreeMap<String, String>,
}

impl Poller {
    /// A poller of the node at `url` and of the nodes it lists.
    pub fn new(url: &str) -> Poller {
        Poller {
            seed: url.trim_end_matches('/').to_owned(),
            clients: BTreeMap::new(),
            others: BTreeMap::new(),
        }
    }

    /// One round: every known node at once (a slow node delays the round by its answer's
    /// timeout at most, not by the others'), the `--url` node first, then by node id. The
    /// nodes the answers list are asked from the next round on.
    pub fn round(&mut self) -> Vec<Sample> {
        let mut urls = vec![self.seed.clone()];
        urls.extend(self.others.values().filter(|u| **u != self.seed).cloned());
        urls.dedup();
        for url in &urls {
            if !self.clients.contains_key(url) {
                if let Ok(client) = HttpClient::new(url) {
                    self.clients.insert(url.clone(), client);
                }
            }
        }
        let mut samples: Vec<Sample> = std::thread::scope(|scope| {
            let asks: Vec<_> = urls
                .iter()
                .map(|url| {
                    let client = self.clients.remove(url);
                    let url = url.clone();
                    scope.spawn(move || ask(url, client))
                })
                .collect();
            asks.into_iter()
                .filter_map(|h| h.join().ok())
                .map(|(sample, client)| {
                    if let Some(client) = client {
                        self.clients.insert(sample.url.clone(), client);
                    }
                    sample
                })
                .collect()
        });
        let mut others = BTreeMap::new();
        for stats in samples.iter().filter_map(|s| s.stats.as_ref().ok()) {
            for remote in stats.cluster.iter().filter(|r| !r.api.is_empty()) {
                others
                    .entry(remote.node.clone())
                    .or_insert_with(|| format!("http://{}", remote.api));
            }
        }
        // The `--url` node, listed by the others under its id, is asked at its `--url` only.
        let seed_id = samples
            .iter()
            .find(|s| s.url == self.seed)
            .and_then(|s| s.stats.as_ref().ok())
            .map(|st| st.node_id.clone());
        if let Some(id) = seed_id {
            others.remove(&id);
        }
        self.others = others;
        let seed = self.seed.clone();
        samples.sort_by_key(|s| (s.url != seed, node_key(s)));
        samples
    }
}

/// A sample's place among the others: by node id, unreachable ones by URL.
fn node_key(s: &Sample) -> String {
    match &s.stats {
        Ok(st) => st.node_id.clone(),
        Err(_) => s.url.clone(),
    }
}

/// Asks one node; gives back its client for the next round (a failed one is dropped).
fn ask(url: String, client: Option<HttpClient>) -> (Sample, Option<HttpClient>) {
    let mut client = match client {
        Some(c) => c,
        None => match HttpClient::new(&url) {
            Ok(c) => c,
            Err(e) => {
                let stats = Err(format!("{e:#}"));
                return (
                    Sample {
                        url,
                        at: Instant::now(),
                        stats,
                    },
                    None,
                );
            }
        },
    };
    let answer = client.get("/1/stats");
    let at = Instant::now();
    let stats = match answer {
        Ok(r) if r.status == 200 => {
            serde_json::from_slice::<Stats>(&r.body).map_err(|e| format!("unreadable stats: {e}"))
        }
        Ok(r) => Err(format!("GET /1/stats: {}", r.error_text())),
        Err(e) => Err(format!("{e:#}")),
    };
    let keep = stats.is_ok().then_some(client);
    (Sample { url, at, stats }, keep)
}
