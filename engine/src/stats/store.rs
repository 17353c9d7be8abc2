//! The store thread's figures: how many requests wait for it, how large its batches are and
//! how long their commits take. Written by the store thread alone, read by any core.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::histogram::{Histogram, HistogramSnapshot, BATCH_SIZES, LATENCY_US};
use super::peak::{Peak, MINUTE, RECENT};

/// The store thread's counters.
#[derive(Debug)]
pub struct StoreStats {
    queue_depth: AtomicU64,
    queue_peak: Peak,
    batches: AtomicU64,
    ops: AtomicU64,
    last_batch: AtomicU64,
    batch_size: Histogram,
    commit_us: Histogram,
}

impl Default for StoreStats {
    fn default() -> StoreStats {
        StoreStats {
            queue_depth: AtomicU64::new(0),
            queue_peak: Peak::default(),
            batches: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            last_batch: AtomicU64::new(0),
            batch_size: Histogram::new(BATCH_SIZES),
            commit_us: Histogram::new(LATENCY_US),
        }
    }
}

/// A copy of [`StoreStats`], as `/1/stats` shows it (its `store` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSnapshot {
    /// Requests waiting for the store thread after its last commit.
    pub queue_depth: u64,
    /// The most requests waiting when the thread took a batch (that batch included), over
    /// the last 1–2 s ([`RECENT`]).
    pub queue_depth_peak: u64,
    /// The same over the last minute.
    pub queue_depth_peak_60s: u64,
    /// Batches committed since start.
    pub batches: u64,
    /// Operations committed since start (writes, reads of visit counts, visit counts
    /// coalesced per user).
    pub ops: u64,
    /// Operations of the last batch.
    pub last_batch_size: u64,
    /// Operations per batch.
    pub batch_size: HistogramSnapshot,
    /// How long each batch took the backend, microseconds: validation, the write and its
    /// fsync (embedded) or round trips (Redis).
    pub commit_us: HistogramSnapshot,
}

impl StoreStats {
    /// The thread took a batch of `size` requests, `left` more waiting behind it.
    pub fn took(&self, size: usize, left: usize) {
        self.queue_peak.record((size + left) as u64);
    }

    /// A batch of `size` operations was committed in `took`; `left` requests wait now.
    pub fn committed(&self, size: usize, took: Duration, left: usize) {
        self.batches.fetch_add(1, Relaxed);
        self.ops.fetch_add(size as u64, Relaxed);
        self.last_batch.store(size as u64, Relaxed);
        self.batch_size.record(size as u64);
        self.commit_us
            .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        self.queue_depth.store(left as u64, Relaxed);
    }

    /// A copy of every figure.
    pub fn snapshot(&self) -> StoreSnapshot {
        StoreSnapshot {
            queue_depth: self.queue_depth.load(Relaxed),
            queue_depth_peak: self.queue_peak.over(RECENT),
            queue_depth_peak_60s: self.queue_peak.over(MINUTE),
            batches: self.batches.load(Relaxed),
            ops: self.ops.load(Relaxed),
            last_batch_size: self.last_batch.load(Relaxed),
            batch_size: self.batch_size.snapshot(),
            commit_us: self.commit_us.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_count_their_size_latency_and_queue() {
        let s = StoreStats::default();
        s.took(3, 5);
        s.committed(3, Duration::from_micros(700), 5);
        s.took(1, 0);
        s.committed(1, Duration::from_micros(40), 0);
        let snap = s.snapshot();
        assert_eq!(snap.queue_depth, 0);
        assert_eq!(snap.queue_depth_peak, 8);
        assert_eq!(snap.queue_depth_peak_60s, 8);
        assert_eq!((snap.batches, snap.ops, snap.last_batch_size), (2, 4, 1));
        assert_eq!(snap.batch_size.count, 2);
        assert_eq!(snap.batch_size.buckets[..3], [1, 1, 2], "≤1, ≤2, ≤4");
        assert_eq!((snap.commit_us.count, snap.commit_us.sum), (2, 740));
    }
}
