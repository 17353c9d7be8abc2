//! The busiest matches: each core publishes its [`TOP_MATCHES`] matches with the most
//! subscribers when it recounts its live matches (on a match's creation, cancellation or
//! replacement, and at every sweep of its subscribers, every 5 s), never per event or per
//! subscriber; a reader sums the cores' lists.
//!
//! The one lock of the per-core figures, and never waited for by the core: the core only
//! *tries* to take it (a reader holding it for the copy of ten entries makes the core keep
//! its previous list until its next recount), and readers hold it for that copy only.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Matches each core publishes, and `/1/stats` lists.
pub const TOP_MATCHES: usize = 10;

/// A match and its subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchLoad {
    /// The match id.
    #[serde(rename = "match")]
    pub id: String,
    /// Its subscribers (on one core, or on every core of the node when summed).
    pub subscribers: u64,
}

/// One core's busiest matches, as last published.
#[derive(Debug, Default)]
pub struct Busiest {
    top: Mutex<Vec<MatchLoad>>,
}

impl Busiest {
    /// Publishes the busiest of `counts` (match, subscribers; zeros are left out), unless a
    /// reader holds the list right now.
    pub fn publish<'a>(&self, counts: impl Iterator<Item = (&'a str, usize)>) {
        let mut all: Vec<(usize, &str)> = counts
            .filter(|&(_, n)| n > 0)
            .map(|(id, n)| (n, id))
            .collect();
        let order = |a: &(usize, &str), b: &(usize, &str)| b.0.cmp(&a.0).then(a.1.cmp(b.1));
        if all.len() > TOP_MATCHES {
            all.select_nth_unstable_by(TOP_MATCHES - 1, order);
            all.truncate(TOP_MATCHES);
        }
        all.sort_unstable_by(order);
        let top: Vec<MatchLoad> = all
            .into_iter()
            .map(|(n, id)| MatchLoad {
                id: id.to_owned(),
                subscribers: n as u64,
            })
            .collect();
        if let Ok(mut slot) = self.top.try_lock() {
            let old = std::mem::replace(&mut *slot, top);
            drop(slot);
            drop(old);
        }
    }

    fn copy(&self) -> Vec<MatchLoad> {
        self.top.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// The node's busiest matches: the cores' lists summed per match, the most subscribers
/// first (ties by id), at most [`TOP_MATCHES`]. A match outside a core's own top ten
/// counts only the cores where it is in it.
pub fn sum<'a>(cores: impl IntoIterator<Item = &'a Busiest>) -> Vec<MatchLoad> {
    let mut sums: HashMap<String, u64> = HashMap::new();
    for core in cores {
        for m in core.copy() {
            *sums.entry(m.id).or_default() += m.subscribers;
        }
    }
    let mut all: Vec<MatchLoad> = sums
        .into_iter()
        .map(|(id, subscribers)| MatchLoad { id, subscribers })
        .collect();
    all.sort_unstable_by(|a, b| b.subscribers.cmp(&a.subscribers).then(a.id.cmp(&b.id)));
    all.truncate(TOP_MATCHES);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_core_keeps_its_ten_busiest_and_the_node_sums_them() {
        let a = Busiest::default();
        let names: Vec<String> = (0..15).map(|i| format!("m{i:02}")).collect();
        a.publish(names.iter().enumerate().map(|(i, n)| (n.as_str(), i)));
        let top = a.copy();
        assert_eq!(top.len(), TOP_MATCHES);
        assert_eq!(top[0].id, "m14");
        assert_eq!(top[9].id, "m05");
        let b = Busiest::default();
        b.publish([("m05", 100), ("zz", 0)].into_iter());
        let node = sum([&a, &b]);
        assert_eq!(
            node[0],
            MatchLoad {
                id: "m05".into(),
                subscribers: 105
            }
        );
        assert_eq!(node[1].id, "m14");
        assert!(
            node.iter().all(|m| m.id != "zz"),
            "no subscribers, not listed"
        );
    }

    #[test]
    fn ties_are_listed_by_id() {
        let a = Busiest::default();
        a.publish([("b", 2), ("a", 2), ("c", 3)].into_iter());
        let ids: Vec<String> = sum([&a]).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["c", "a", "b"]);
    }
}
