//! The Redis feed's figures ([`crate::cluster::feed`]): events delivered, how late they
//! reached this node, and the gaps filled from the history. Written by the feed thread
//! alone, read by any core.
//!
//! Lag is the node's wall clock at delivery less the event's timestamp (set by the node that
//! accepted it, when its store thread applied it): the store's commit, Redis's publish, the
//! feed's checks. Events read back to fill a gap or to catch up after a lost subscription
//! count with the lag they had, which is what their subscribers saw. Between hosts it
//! includes the clocks' difference (keep them in sync, NTP); a clock behind counts 0.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

use super::histogram::{Histogram, HistogramSnapshot, LAG_MS};

/// The feed's counters.
#[derive(Debug)]
pub struct FeedStats {
    events: AtomicU64,
    last_lag_ms: AtomicU64,
    lag_ms: Histogram,
    gap_fills: AtomicU64,
    gap_filled_events: AtomicU64,
}

impl Default for FeedStats {
    fn default() -> FeedStats {
        FeedStats {
            events: AtomicU64::new(0),
            last_lag_ms: AtomicU64::new(0),
            lag_ms: Histogram::new(LAG_MS),
            gap_fills: AtomicU64::new(0),
            gap_filled_events: AtomicU64::new(0),
        }
    }
}

/// A copy of [`FeedStats`], as `/1/stats` shows it (its `feed` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedSnapshot {
    /// Events the feed delivered to the node's cores since start.
    pub events: u64,
    /// The lag of the last one, milliseconds.
    pub last_lag_ms: u64,
    /// The lag of each, milliseconds.
    pub lag_ms: HistogramSnapshot,
    /// Gaps filled: reads of a match's history that delivered events the channel did not
    /// bring (a message lost, a subscription down and back).
    pub gap_fills: u64,
    /// Events those reads delivered.
    pub gap_filled_events: u64,
}

impl FeedStats {
    /// An event reached the cores `lag_ms` after its timestamp.
    pub fn delivered(&self, lag_ms: u64) {
        self.events.fetch_add(1, Relaxed);
        self.last_lag_ms.store(lag_ms, Relaxed);
        self.lag_ms.record(lag_ms);
    }

    /// A read of a match's history delivered `events` events (none: not a fill).
    pub fn gap_filled(&self, events: u64) {
        if events > 0 {
            self.gap_fills.fetch_add(1, Relaxed);
            self.gap_filled_events.fetch_add(events, Relaxed);
        }
    }

    /// A copy of every figure.
    pub fn snapshot(&self) -> FeedSnapshot {
        FeedSnapshot {
            events: self.events.load(Relaxed),
            last_lag_ms: self.last_lag_ms.load(Relaxed),
            lag_ms: self.lag_ms.snapshot(),
            gap_fills: self.gap_fills.load(Relaxed),
            gap_filled_events: self.gap_filled_events.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_and_fills_are_counted() {
        let f = FeedStats::default();
        f.delivered(3);
        f.delivered(40);
        f.gap_filled(0);
        f.gap_filled(5);
        let s = f.snapshot();
        assert_eq!((s.events, s.last_lag_ms), (2, 40));
        assert_eq!((s.lag_ms.count, s.lag_ms.sum), (2, 43));
        assert_eq!((s.gap_fills, s.gap_filled_events), (1, 5));
    }
}
