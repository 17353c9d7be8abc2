//! Checkin's policy: which stream port `GET /1/checkin` sends a new subscriber to.
//!
//! The least-loaded port of the cluster, where a core's load is its subscribers plus the
//! clients checkin sent it that have not connected yet ([`CoreStats::load`]): so a connect
//! burst spreads instead of piling onto the core that looked emptiest. A client that never
//! connects stops counting after [`PENDING_TTL`], so check-ins without connects (clients that
//! gave up, a scan of the endpoint) cannot steer every later client away from a core. This node's cores win
//! ties; another node's port is chosen only when it carries strictly less.
//!
//! A draining node ([`crate::drain`]) sends every client to the least-loaded port of another
//! node, and when it knows of none, nowhere ([`Target::Nowhere`]: 503 `node draining`).
//!
//! [`CoreStats::load`]: crate::stats::CoreStats::load
//! [`PENDING_TTL`]: crate::stats::PENDING_TTL

use crate::stats::NodeStats;

/// Where checkin sends a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A core of this node.
    Local(usize),
    /// A port of another node.
    Remote {
        /// Its host.
        host: String,
        /// Its port.
        port: u16,
    },
    /// Nowhere: this node is draining and knows of no other.
    Nowhere,
}

/// The least-loaded stream port of the cluster (this node's cores win ties); counts the
/// client as pending there.
pub fn pick(node: &NodeStats) -> Target {
    if node.drain.is_draining() {
        return remote_below(node, u64::MAX).unwrap_or(Target::Nowhere);
    }
    let core = least_loaded_core(node);
    let local = node.cores.get(core).map_or(0, |c| c.load());
    remote_below(node, local).unwrap_or_else(|| {
        if let Some(c) = node.cores.get(core) {
            c.add_pending();
        }
        Target::Local(core)
    })
}

/// The least-loaded port of another node whose load is below `limit`, if any; counts the
/// client there. Remote loads are as old as the last heartbeat (up to a second): counting every
/// client sent there since makes a connect burst spread over the cluster instead of all going
/// to the port that looked emptiest a second ago.
fn remote_below(node: &NodeStats, limit: u64) -> Option<Target> {
    // A lone node (most of them) knows of no other port: no lock shared by every core is
    // taken per checkin (issue 14).
    if !node.has_remote.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let mut remote = node.remote.write().ok()?;
    let best = remote
        .iter_mut()
        .filter(|p| p.load < limit)
        .min_by_key(|p| p.load)?;
    best.load += 1;
    Some(Target::Remote {
        host: best.host.clone(),
        port: best.port,
    })
}

/// The index of the core with the lowest load (ties: lowest index).
fn least_loaded_core(node: &NodeStats) -> usize {
    node.cores
        .iter()
        .enumerate()
        .min_by_key(|(i, c)| (c.load(), *i))
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::RemotePort;

    #[test]
    fn checkin_prefers_a_less_loaded_remote_port_and_local_on_ties() {
        let n = NodeStats::for_tests();
        n.cores[0].subscribers_delta(true);
        n.cores[1].subscribers_delta(true);
        let remote = |load| RemotePort {
            node: "n2".into(),
            host: "10.0.0.2".into(),
            port: 9200,
            load,
            api: String::new(),
        };
        n.set_remote(vec![remote(1)]);
        assert_eq!(pick(&n), Target::Local(0));
        n.set_remote(vec![remote(0)]);
        assert_eq!(
            pick(&n),
            Target::Remote {
                host: "10.0.0.2".into(),
                port: 9200
            }
        );
    }

    #[test]
    fn a_draining_node_sends_every_client_to_another_node_or_nowhere() {
        let n = NodeStats::for_tests();
        n.drain.begin(
            std::time::Duration::from_secs(60),
            crate::drain::Trigger::Request,
        );
        assert_eq!(pick(&n), Target::Nowhere, "no other node known");
        let remote = |port, load| RemotePort {
            node: "n2".into(),
            host: "10.0.0.2".into(),
            port,
            load,
            api: String::new(),
        };
        // Loaded more than this node's empty cores: still chosen, the lighter first.
        n.set_remote(vec![remote(9200, 7), remote(9201, 5)]);
        let to = |port| Target::Remote {
            host: "10.0.0.2".into(),
            port,
        };
        assert_eq!(pick(&n), to(9201));
        assert_eq!(pick(&n), to(9201));
        assert_eq!(pick(&n), to(9200), "the clients sent count");
        assert_eq!(
            n.cores[0].load() + n.cores[1].load(),
            0,
            "none counted here"
        );
    }

    #[test]
    fn least_loaded_core_picks_fewest_subscribers() {
        let n = NodeStats::for_tests();
        assert_eq!(least_loaded_core(&n), 0);
        n.cores[0].subscribers_delta(true);
        assert_eq!(least_loaded_core(&n), 1);
    }

    #[test]
    fn a_client_sent_to_a_core_counts_there_until_it_connects() {
        let n = NodeStats::for_tests();
        assert_eq!(pick(&n), Target::Local(0));
        assert_eq!(pick(&n), Target::Local(1));
        n.cores[0].add_session();
        assert_eq!(pick(&n), Target::Local(0));
    }
}
