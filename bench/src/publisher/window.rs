//! The window of `--rate max`: event k of a match is published as soon as every live
//! subscriber of that match has received event k − W. In seq terms (the v2 `seq` of the frames;
//! the baselines' payloads carry the same numbers): an event with seq `s` may go once the
//! smallest last-seen seq over the live subscribers of its match, the match's *frontier* `f`,
//! satisfies `s <= f + W` ([`allowed`]).
//!
//! - Each shard of subscribers keeps a [`MinTracker`] per match: how many of its live
//!   subscribers (status received, not ended) last saw each seq, so the minimum moves in O(1)
//!   per delivery.
//! - Shards report their minimum per match whenever it changes (threads directly, worker
//!   processes as a `{"frontier":..}` line); the coordinator keeps them on a [`Board`], whose
//!   frontier of a match is the minimum over shards, and which wakes the publisher's loop.
//! - A match with no live subscriber left has no frontier: nothing is waited for.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Default window W.
pub const DEFAULT_WINDOW: u64 = 64;

/// A shard's value for a match with no live subscriber.
pub const NO_LIVE: u64 = u64::MAX;

/// Largest spread of seqs a tracker keeps (a server sending absurd seqs cannot make the bench
/// allocate without bound; a subscriber beyond it stays at the edge).
const MAX_SPAN: u64 = 1 << 20;

/// May the event with seq `seq` be published, given the match's frontier (`None`: no live
/// subscriber) and the window `w`?
pub fn allowed(seq: u64, frontier: Option<u64>, w: u64) -> bool {
    match frontier {
        None => true,
        Some(f) => seq <= f.saturating_add(w),
    }
}

/// The minimum of the last seqs of a set of subscribers whose seqs only grow.
#[derive(Debug, Clone, Default)]
pub struct MinTracker {
    /// The seq of `counts[0]`.
    base: u64,
    /// Subscribers at `base + i`.
    counts: VecDeque<u32>,
    live: u32,
}

impl MinTracker {
    /// A subscriber joins at `seq`; returns the seq it is recorded at (the same, unless it
    /// lies absurdly far from the others: then the nearest edge of [`MAX_SPAN`]). The caller
    /// keeps the recorded seq for [`MinTracker::remove`] and [`MinTracker::advance`].
    pub fn add(&mut self, seq: u64) -> u64 {
        if self.live == 0 {
            self.base = seq;
            self.counts.clear();
        }
        let mut seq = seq;
        if seq < self.base {
            let missing = (self.base - seq).min(MAX_SPAN);
            for _ in 0..missing {
                self.counts.push_front(0);
            }
            self.base -= missing;
            seq = self.base;
        }
        let at = (seq - self.base).min(MAX_SPAN);
        if self.counts.len() <= at as usize {
            self.counts.resize(at as usize + 1, 0);
        }
        self.counts[at as usize] += 1;
        self.live += 1;
        self.base + at
    }

    /// The subscriber recorded at `seq` leaves.
    pub fn remove(&mut self, seq: u64) {
        let Some(at) = seq.checked_sub(self.base) else {
            return;
        };
        match self.counts.get_mut(at as usize) {
            Some(c) if *c > 0 => *c -= 1,
            _ => return,
        }
        self.live -= 1;
        while self.counts.front() == Some(&0) {
            self.counts.pop_front();
            self.base += 1;
        }
    }

    /// The subscriber recorded at `from` has now seen `to`; returns where it is recorded.
    pub fn advance(&mut self, from: u64, to: u64) -> u64 {
        if to == from {
            return from;
        }
        let at = self.add(to);
        self.remove(from);
        at
    }

    /// The smallest seq of a live subscriber, or `None` when none is live.
    pub fn min(&self) -> Option<u64> {
        (self.live > 0).then_some(self.base)
    }

    /// Live subscribers.
    pub fn live(&self) -> u32 {
        self.live
    }
}

/// The frontiers that every shard reported, per match, and the publisher's wake-up.
#[derive(Debug)]
pub struct Board {
    channels: usize,
    /// `shard * channels + channel`: the shard's minimum (0 until it reported, [`NO_LIVE`]).
    cells: Vec<AtomicU64>,
    /// Bumped by every report.
    generation: AtomicU64,
    waker: OnceLock<Arc<mio::Waker>>,
}

impl Board {
    /// A board for `shards` shards and `channels` matches.
    pub fn new(shards: usize, channels: usize) -> Board {
        Board {
            channels,
            cells: (0..shards * channels).map(|_| AtomicU64::new(0)).collect(),
            generation: AtomicU64::new(0),
            waker: OnceLock::new(),
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.cells.len() / self.channels.max(1)
    }

    /// Wakes this waker whenever a frontier changes (set once, by the publisher's loop).
    pub fn set_waker(&self, waker: Arc<mio::Waker>) {
        let _ = self.waker.set(waker);
    }

    /// Shard `shard` reports `(channel, minimum or NO_LIVE)` pairs.
    pub fn report(&self, shard: usize, changes: &[(u32, u64)]) {
        for &(channel, value) in changes {
            if let Some(cell) = self.cells.get(shard * self.channels + channel as usize) {
                cell.store(value, Ordering::Release);
            }
        }
        if !changes.is_empty() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            if let Some(w) = self.waker.get() {
                let _ = w.wake();
            }
        }
    }

    /// How many reports came so far (a change means some subscriber moved).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The frontier of `channel`: the minimum over shards, `None` when no shard has a live
    /// subscriber on it.
    pub fn frontier(&self, channel: usize) -> Option<u64> {
        let min = (0..self.shards())
            .map(|s| self.cells[s * self.channels + channel].load(Ordering::Acquire))
            .min()
            .unwrap_or(NO_LIVE);
        (min != NO_LIVE).then_some(min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_published_while_a_subscriber_is_more_than_w_behind() {
        // (seq to publish, slowest live subscriber's last seq, W, allowed)
        let cases: [(u64, Option<u64>, u64, bool); 10] = [
            (2, Some(1), 1, true),    // the first event, everyone has the status (seq 1)
            (3, Some(1), 1, false),   // W = 1: event 3 waits for everyone to have event 2
            (3, Some(2), 1, true),    //
            (66, Some(1), 64, false), // 64 events in flight already
            (65, Some(1), 64, true),  //
            (66, Some(2), 64, true),  //
            (100, Some(35), 64, false),
            (99, Some(35), 64, true),
            (1000, None, 8, true), // no live subscriber: nothing to wait for
            (u64::MAX, Some(u64::MAX - 1), 64, true),
        ];
        for (seq, frontier, w, want) in cases {
            assert_eq!(allowed(seq, frontier, w), want, "{seq} {frontier:?} {w}");
        }
    }

    #[test]
    fn the_tracker_follows_the_slowest_live_subscriber() {
        let mut t = MinTracker::default();
        assert_eq!(t.min(), None);
        for _ in 0..3 {
            assert_eq!(t.add(1), 1);
        }
        assert_eq!((t.min(), t.live()), (Some(1), 3));
        assert_eq!(t.advance(1, 2), 2);
        t.advance(1, 2);
        assert_eq!(t.min(), Some(1));
        t.advance(1, 5); // a gap: it skipped 2..4
        assert_eq!(t.min(), Some(2));
        t.advance(2, 3);
        t.advance(2, 6);
        assert_eq!(t.min(), Some(3));
        t.remove(3); // the slowest one ended
        assert_eq!((t.min(), t.live()), (Some(5), 2));
        t.remove(5);
        t.remove(6);
        assert_eq!(t.min(), None);
        t.remove(6); // unknown: ignored
        assert_eq!(t.live(), 0);
        t.add(9);
        t.add(4); // below the base
        assert_eq!(t.min(), Some(4));
        t.remove(4);
        assert_eq!(t.min(), Some(9));
    }

    #[test]
    fn the_tracker_bounds_absurd_seqs() {
        let mut t = MinTracker::default();
        let low = t.add(1);
        let high = t.add(u64::MAX);
        assert_eq!(high, 1 + MAX_SPAN);
        assert!(t.counts.len() <= MAX_SPAN as usize + 1);
        t.remove(low);
        assert_eq!(t.min(), Some(high));
        t.remove(high);
        assert_eq!(t.min(), None);
        assert_eq!(t.add(1 << 40), 1 << 40);
        assert_eq!(t.add(0), (1 << 40) - MAX_SPAN);
    }

    #[test]
    fn the_board_takes_the_minimum_over_shards() {
        let b = Board::new(2, 3);
        assert_eq!(b.shards(), 2);
        assert_eq!(b.frontier(0), Some(0)); // nobody reported: hold everything back
        b.report(0, &[(0, 5), (1, NO_LIVE), (2, NO_LIVE)]);
        b.report(1, &[(0, 7), (1, 3), (2, NO_LIVE)]);
        assert_eq!(b.frontier(0), Some(5));
        assert_eq!(b.frontier(1), Some(3));
        assert_eq!(b.frontier(2), None);
        b.report(0, &[(0, NO_LIVE)]);
        assert_eq!(b.frontier(0), Some(7));
    }
}
