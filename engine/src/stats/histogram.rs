//! A histogram of fixed buckets made of relaxed atomics: written by its owner (a core, the
//! store thread, the feed) with no lock, read by anyone at any time, shown in `/1/stats` as
//! cumulative counts per upper bound and in `/metrics` as a Prometheus histogram.
//!
//! Why not hdrhistogram (the bench's): its recorder is not readable from another thread
//! without a lock or a copy per read, and Prometheus wants fixed `le` buckets anyway; a few
//! dozen atomics per histogram are what a Prometheus client library keeps too.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Upper bounds, in microseconds, of latency histograms (50 µs to 10 s).
pub const LATENCY_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Upper bounds, in milliseconds, of the feed's lag (1 ms to 60 s): event timestamps are
/// whole milliseconds.
pub const LAG_MS: &[u64] = &[
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];

/// Upper bounds of the store thread's batch sizes (1 to its most, 4096).
pub const BATCH_SIZES: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// Counts of values per bucket, their sum and count.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// Values at most `bounds[i]` (and above `bounds[i - 1]`) at index i; above every bound
    /// at the last index.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Counts one value.
    pub fn record(&self, value: u64) {
        self.record_n(value, 1);
    }

    /// Counts `n` values of `value`.
    pub fn record_n(&self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        let i = self.bounds.partition_point(|&b| b < value);
        self.counts[i].fetch_add(n, Relaxed);
        self.sum.fetch_add(value.saturating_mul(n), Relaxed);
    }

    /// A copy: cumulative counts per bound. The count is the buckets' total, so a reader
    /// racing a writer never sees a count that disagrees with the buckets.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (i, c) in self.counts.iter().enumerate() {
            running += c.load(Relaxed);
            if i < self.bounds.len() {
                buckets.push(running);
            }
        }
        HistogramSnapshot {
            count: running,
            sum: self.sum.load(Relaxed),
            le: self.bounds.to_vec(),
            buckets,
        }
    }
}

/// A copy of a [`Histogram`], as `/1/stats` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    /// Values counted.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
    /// The buckets' upper bounds.
    pub le: Vec<u64>,
    /// Values at most `le[i]` at index i (cumulative, as Prometheus counts); those above the
    /// last bound are in `count` only.
    pub buckets: Vec<u64>,
}

impl HistogramSnapshot {
    /// What was counted between `earlier` and this one (of the same histogram).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let same = self.le == earlier.le;
        HistogramSnapshot {
            count: self.count.saturating_sub(earlier.count),
            sum: self.sum.saturating_sub(earlier.sum),
            le: self.le.clone(),
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .map(|(i, b)| match earlier.buckets.get(i) {
                    Some(e) if same => b.saturating_sub(*e),
                    _ => *b,
                })
                .collect(),
        }
    }

    /// The upper bound of the bucket holding the `q`-quantile (0 < q ≤ 1): the value that
    /// many of the values are at most. `None` when nothing was counted; `Above(last bound)`
    /// when it lies above every bound.
    pub fn quantile(&self, q: f64) -> Option<Bound> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let at = self.buckets.iter().position(|&b| b >= rank);
        Some(match at.and_then(|i| self.le.get(i)) {
            Some(&le) => Bound::AtMost(le),
            None => Bound::Above(self.le.last().copied().unwrap_or(0)),
        })
    }

    /// The mean of the values counted, if any.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}

/// Where a quantile lies ([`HistogramSnapshot::quantile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// At most this bound.
    AtMost(u64),
    /// Above the last bound, this one.
    Above(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[u64] = &[10, 100, 1000];

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let h = Histogram::new(BOUNDS);
        for v in [0, 10, 11, 100, 999, 1000, 1001, 5000] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.le, vec![10, 100, 1000]);
        // ≤10: 0, 10; ≤100: + 11, 100; ≤1000: + 999, 1000; above: 1001, 5000.
        assert_eq!(s.buckets, vec![2, 4, 6]);
        assert_eq!(s.count, 8);
        assert_eq!(s.sum, 10 + 11 + 100 + 999 + 1000 + 1001 + 5000);
    }

    #[test]
    fn record_n_counts_n_values() {
        let h = Histogram::new(BOUNDS);
        h.record_n(50, 3);
        h.record_n(50, 0);
        let s = h.snapshot();
        assert_eq!((s.count, s.sum, s.buckets.clone()), (3, 150, vec![0, 3, 3]));
    }

    #[test]
    fn quantiles_name_the_bucket_they_fall_in() {
        let h = Histogram::new(BOUNDS);
        assert_eq!(h.snapshot().quantile(0.5), None, "nothing counted");
        for _ in 0..98 {
            h.record(5);
        }
        h.record(500);
        h.record(50_000);
        let s = h.snapshot();
        assert_eq!(s.quantile(0.5), Some(Bound::AtMost(10)));
        assert_eq!(s.quantile(0.99), Some(Bound::AtMost(1000)));
        assert_eq!(s.quantile(1.0), Some(Bound::Above(1000)));
        assert_eq!(s.mean(), Some((98.0 * 5.0 + 500.0 + 50_000.0) / 100.0));
    }

    #[test]
    fn since_keeps_what_came_after_an_earlier_copy() {
        let h = Histogram::new(BOUNDS);
        h.record(5);
        let before = h.snapshot();
        h.record(50);
        h.record(5000);
        let d = h.snapshot().since(&before);
        assert_eq!((d.count, d.sum, d.buckets), (2, 5050, vec![0, 1, 1]));
    }

    #[test]
    fn readers_on_other_threads_see_counts_that_agree_with_the_buckets() {
        let h = std::sync::Arc::new(Histogram::new(LATENCY_US));
        let writer = {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..200_000u64 {
                    h.record(i % 20_000_000);
                }
            })
        };
        for _ in 0..1000 {
            let s = h.snapshot();
            assert!(s.buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative");
            assert!(s.buckets.last().copied().unwrap_or(0) <= s.count);
        }
        writer.join().expect("writer");
        assert_eq!(h.snapshot().count, 200_000);
    }
}
