//! One frame of `matchstream top`: what two rounds of samples a second apart say, per node
//! and core — rates from the differences of counters over the time between a node's two
//! answers, gauges as the last answer gave them. Pure: the view draws it, the tests build it
//! from recorded `/1/stats` bodies.

use std::collections::BTreeMap;

use crate::stats::histogram::{Bound, HistogramSnapshot};

use super::sample::{Sample, Stats};

/// Busiest matches shown.
pub const MATCHES_SHOWN: usize = 10;

/// What one frame shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    /// The nodes that answered, the `--url` one first.
    pub nodes: Vec<Node>,
    /// The nodes that did not: URL and why.
    pub unreachable: Vec<(String, String)>,
    /// The busiest matches of the cluster: id, subscribers on every node.
    pub matches: Vec<(String, u64)>,
}

/// One node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Its id.
    pub id: String,
    /// Its cores.
    pub cores: Vec<CoreRow>,
    /// The whole node: the cores summed, the process's CPU.
    pub total: CoreRow,
    /// Resident memory.
    pub rss_bytes: u64,
    /// Open files and their limit.
    pub open_files: (u64, u64),
    /// The store thread.
    pub store: StoreRow,
    /// The Redis feed, if the node has one.
    pub feed: Option<FeedRow>,
}

/// A core's (or a node's) line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoreRow {
    /// The core's index (none on a node's line).
    pub core: Option<usize>,
    /// Its stream port (0 on a node's line).
    pub port: u16,
    /// Subscribers now.
    pub subscribers: u64,
    /// Frames written per second (none before a second sample).
    pub deliveries: Option<f64>,
    /// The bus depth's peak since about the last refresh.
    pub bus_peak: u64,
    /// Bytes waiting in outboxes.
    pub queued_bytes: u64,
    /// Subscribers cut off as too slow since start.
    pub slow: u64,
    /// CPU % of the core's thread (of the process on a node's line; 100 = one CPU).
    pub cpu: Option<f64>,
    /// Publish→flush p99 since the last sample.
    pub flush_p99: Option<Bound>,
}

/// A node's store thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreRow {
    /// Requests waiting now.
    pub queue_depth: u64,
    /// Most waiting at a batch over the last 1–2 s.
    pub queue_peak: u64,
    /// Batches per second.
    pub batches: Option<f64>,
    /// Operations per batch since the last sample (the last batch's before a second one).
    pub batch_size: Option<f64>,
    /// Commit latency p50 and p99 since the last sample.
    pub commit: (Option<Bound>, Option<Bound>),
}

/// A node's Redis feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedRow {
    /// Events per second.
    pub events: Option<f64>,
    /// The last event's lag, ms.
    pub last_lag_ms: u64,
    /// Lag p99 since the last sample, ms.
    pub lag_p99: Option<Bound>,
    /// Gaps filled since start.
    pub gap_fills: u64,
}

impl Frame {
    /// The frame of the round `now`, with `before` (the previous round) for rates.
    pub fn between(before: &[Sample], now: &[Sample]) -> Frame {
        let earlier: BTreeMap<&str, &Sample> = before
            .iter()
            .filter_map(|s| Some((s.stats.as_ref().ok()?.node_id.as_str(), s)))
            .collect();
        let mut frame = Frame::default();
        let mut matches: BTreeMap<String, u64> = BTreeMap::new();
        for sample in now {
            let stats = match &sample.stats {
                Ok(stats) => stats,
                Err(why) => {
                    frame.unreachable.push((sample.url.clone(), why.clone()));
                    continue;
                }
            };
            let prev = earlier.get(stats.node_id.as_str()).and_then(|p| {
                let seconds = sample.at.checked_duration_since(p.at)?.as_secs_f64();
                let stats = p.stats.as_ref().ok()?;
                (seconds > 0.0).then_some((stats, seconds))
            });
            for m in &stats.busiest_matches {
                *matches.entry(m.id.clone()).or_default() += m.subscribers;
            }
            frame.nodes.push(node(stats, prev));
        }
        let mut matches: Vec<(String, u64)> = matches.into_iter().collect();
        matches.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        matches.truncate(MATCHES_SHOWN);
        frame.matches = matches;
        frame
    }

    /// Subscribers on every node.
    pub fn subscribers(&self) -> u64 {
        self.nodes.iter().map(|n| n.total.subscribers).sum()
    }

    /// Deliveries per second on every node (none before a second sample).
    pub fn deliveries(&self) -> Option<f64> {
        self.nodes.iter().map(|n| n.total.deliveries).sum()
    }
}

/// Per second: the growth of a counter over `seconds`.
fn rate(now: u64, before: u64, seconds: f64) -> f64 {
    now.saturating_sub(before) as f64 / seconds
}

fn node(stats: &Stats, prev: Option<(&Stats, f64)>) -> Node {
    let cores: Vec<CoreRow> = stats
        .cores
        .iter()
        .map(|c| {
            let was = prev.and_then(|(p, s)| Some((p.cores.iter().find(|x| x.core == c.core)?, s)));
            CoreRow {
                core: Some(c.core),
                port: c.stream_port,
                subscribers: c.subscribers,
                deliveries: was.map(|(w, s)| rate(c.frames_sent, w.frames_sent, s)),
                bus_peak: c.bus_depth_peak,
                queued_bytes: c.queued_bytes,
                slow: c.slow_disconnects,
                cpu: was.map(|(w, s)| cpu(c.cpu_seconds, w.cpu_seconds, s)),
                flush_p99: was.and_then(|(w, _)| {
                    c.publish_to_flush_us
                        .since(&w.publish_to_flush_us)
                        .quantile(0.99)
                }),
            }
        })
        .collect();
    let mut flush = HistogramSnapshot::default();
    if let Some((p, _)) = prev {
        for c in &stats.cores {
            if let Some(w) = p.cores.iter().find(|x| x.core == c.core) {
                flush = add(&flush, &c.publish_to_flush_us.since(&w.publish_to_flush_us));
            }
        }
    }
    let total = CoreRow {
        core: None,
        port: 0,
        subscribers: cores.iter().map(|c| c.subscribers).sum(),
        deliveries: cores.iter().map(|c| c.deliveries).sum(),
        bus_peak: cores.iter().map(|c| c.bus_peak).max().unwrap_or(0),
        queued_bytes: cores.iter().map(|c| c.queued_bytes).sum(),
        slow: cores.iter().map(|c| c.slow).sum(),
        cpu: prev.map(|(p, s)| cpu(stats.process.cpu_seconds, p.process.cpu_seconds, s)),
        flush_p99: prev.and_then(|_| flush.quantile(0.99)),
    };
    let st = &stats.store;
    let store = match prev {
        Some((p, s)) => {
            let batches = st.batches.saturating_sub(p.store.batches);
            let commit = st.commit_us.since(&p.store.commit_us);
            StoreRow {
                queue_depth: st.queue_depth,
                queue_peak: st.queue_depth_peak,
                batches: Some(batches as f64 / s),
                batch_size: (batches > 0)
                    .then(|| st.ops.saturating_sub(p.store.ops) as f64 / batches as f64),
                commit: (commit.quantile(0.5), commit.quantile(0.99)),
            }
        }
        None => StoreRow {
            queue_depth: st.queue_depth,
            queue_peak: st.queue_depth_peak,
            batches: None,
            batch_size: (st.batches > 0).then_some(st.last_batch_size as f64),
            commit: (None, None),
        },
    };
    let feed = stats.feed.as_ref().map(|f| {
        let was = prev.and_then(|(p, s)| Some((p.feed.as_ref()?, s)));
        FeedRow {
            events: was.map(|(w, s)| rate(f.events, w.events, s)),
            last_lag_ms: f.last_lag_ms,
            lag_p99: was.and_then(|(w, _)| f.lag_ms.since(&w.lag_ms).quantile(0.99)),
            gap_fills: f.gap_fills,
        }
    });
    Node {
        id: stats.node_id.clone(),
        cores,
        total,
        rss_bytes: stats.process.rss_bytes,
        open_files: (stats.process.open_files, stats.process.open_files_limit),
        store,
        feed,
    }
}

/// CPU % from two readings of CPU seconds `seconds` apart (100 = one CPU busy).
fn cpu(now: f64, before: f64, seconds: f64) -> f64 {
    ((now - before).max(0.0) / seconds) * 100.0
}

/// Two histograms of the same bounds added (the first may be empty).
fn add(a: &HistogramSnapshot, b: &HistogramSnapshot) -> HistogramSnapshot {
    if a.le.is_empty() {
        return b.clone();
    }
    HistogramSnapshot {
        count: a.count + b.count,
        sum: a.sum + b.sum,
        le: a.le.clone(),
        buckets: a
            .buckets
            .iter()
            .zip(&b.buckets)
            .map(|(x, y)| x + y)
            .collect(),
    }
}
