//! Cluster-wide totals (issue 15): how many watch and how many deliveries a second, all nodes
//! together, in one query of any node (`GET /1/stats` `cluster_totals`, and the
//! `matchstream_cluster_*` gauges of `/metrics`).
//!
//! Each node publishes its own subscribers and deliveries per second with its heartbeat
//! ([`crate::cluster::registry`]) and keeps the other nodes' last figures ([`Others`]); a lone
//! node's totals are its own. A node's deliveries per second is the growth of its cores'
//! `frames_sent` over the last second or more ([`DeliveryRate`]), measured when read (by the
//! heartbeat every second, or by a stats reader): no timer and nothing on a core's path.
//! Figures of other nodes are as old as their last heartbeat (at most a second or two).

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::NodeStats;

/// The shortest window a rate is measured over.
const WINDOW: Duration = Duration::from_secs(1);

/// One node's figures, as its heartbeat tells them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFigures {
    /// The node's id.
    pub node: String,
    /// Its subscribers, every core and transport together.
    pub subscribers: u64,
    /// Its deliveries (frames written to subscribers) per second, over its last second.
    pub deliveries_per_second: f64,
}

/// The cluster's totals, this node's figures included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterTotals {
    /// Nodes counted (this one and every node whose heartbeat is live).
    pub nodes: usize,
    /// Subscribers of every node.
    pub subscribers: u64,
    /// Deliveries per second of every node.
    pub deliveries_per_second: f64,
    /// Each node's figures, this node's first.
    pub by_node: Vec<NodeFigures>,
}

/// A node's deliveries per second, measured over at least [`WINDOW`] between reads.
#[derive(Debug, Default)]
pub struct DeliveryRate {
    state: Mutex<RateState>,
}

#[derive(Debug, Default)]
struct RateState {
    /// The total and when it was read, at the start of the current window.
    since: Option<(Instant, u64)>,
    /// The rate of the last whole window.
    rate: f64,
}

impl DeliveryRate {
    /// The rate of `total` (a counter that only grows) as read at `now`: over the window
    /// since the previous reading at least [`WINDOW`] ago; until a window has passed, the
    /// last window's rate (0 before the first).
    pub fn read(&self, total: u64, now: Instant) -> f64 {
        let Ok(mut state) = self.state.lock() else {
            return 0.0;
        };
        match state.since {
            None => state.since = Some((now, total)),
            Some((at, then)) => {
                let elapsed = now.saturating_duration_since(at);
                if elapsed >= WINDOW {
                    state.rate = total.saturating_sub(then) as f64 / elapsed.as_secs_f64();
                    state.since = Some((now, total));
                }
            }
        }
        state.rate
    }
}

/// The other nodes' figures as their last heartbeats told (empty on a lone node).
#[derive(Debug, Default)]
pub struct Others(RwLock<Vec<NodeFigures>>);

impl Others {
    /// Replaces what is known of the other nodes.
    pub fn set(&self, figures: Vec<NodeFigures>) {
        if let Ok(mut others) = self.0.write() {
            *others = figures;
        }
    }

    fn get(&self) -> Vec<NodeFigures> {
        self.0.read().map(|o| o.clone()).unwrap_or_default()
    }
}

/// This node's own figures, read now.
pub fn own(node: &NodeStats) -> NodeFigures {
    let snapshots = node.cores.iter().map(|c| c.snapshot());
    let (subscribers, frames) =
        snapshots.fold((0, 0), |(s, f), c| (s + c.subscribers, f + c.frames_sent));
    NodeFigures {
        node: node.node_id.clone(),
        subscribers,
        deliveries_per_second: node.delivery_rate.read(frames, Instant::now()),
    }
}

/// The cluster's totals: this node's figures and the others'.
pub fn totals(node: &NodeStats) -> ClusterTotals {
    sum(own(node), node.others.get())
}

fn sum(own: NodeFigures, others: Vec<NodeFigures>) -> ClusterTotals {
    let mut by_node = vec![own];
    by_node.extend(others);
    ClusterTotals {
        nodes: by_node.len(),
        subscribers: by_node.iter().map(|n| n.subscribers).sum(),
        deliveries_per_second: by_node.iter().map(|n| n.deliveries_per_second).sum(),
        by_node,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_measured_over_a_whole_window_and_held_until_the_next() {
        let rate = DeliveryRate::default();
        let t0 = Instant::now();
        assert_eq!(rate.read(100, t0), 0.0, "no window yet");
        assert_eq!(rate.read(150, t0 + Duration::from_millis(500)), 0.0);
        // 2 s after the first reading, 400 more: 200 a second.
        assert_eq!(rate.read(500, t0 + Duration::from_secs(2)), 200.0);
        // Within the next window the last rate holds, whatever the counter did.
        assert_eq!(rate.read(501, t0 + Duration::from_millis(2500)), 200.0);
        assert_eq!(rate.read(1001, t0 + Duration::from_secs(3)), 501.0);
    }

    #[test]
    fn totals_add_every_node_this_one_first() {
        let fig = |node: &str, subscribers, deliveries_per_second| NodeFigures {
            node: node.into(),
            subscribers,
            deliveries_per_second,
        };
        let t = sum(fig("a", 3, 10.0), vec![fig("b", 4, 2.5), fig("c", 0, 0.0)]);
        assert_eq!(t.nodes, 3);
        assert_eq!(t.subscribers, 7);
        assert_eq!(t.deliveries_per_second, 12.5);
        assert_eq!(t.by_node[0].node, "a");
        let alone = sum(fig("a", 5, 1.0), Vec::new());
        assert_eq!((alone.nodes, alone.subscribers), (1, 5));
    }

    #[test]
    fn a_node_counts_its_cores_subscribers() {
        let n = NodeStats::for_tests();
        n.cores[0].subscribers_delta(true);
        n.cores[1].subscribers_delta(true);
        n.cores[1].subscribers_delta(true);
        let t = totals(&n);
        assert_eq!((t.nodes, t.subscribers), (1, 3));
        n.others.set(vec![NodeFigures {
            node: "n2".into(),
            subscribers: 4,
            deliveries_per_second: 8.0,
        }]);
        let t = totals(&n);
        assert_eq!((t.nodes, t.subscribers), (2, 7));
        assert_eq!(t.by_node[1].node, "n2");
    }
}
