//! Rounds of resumes (`soak`): every period after the shard is ready, a share of its
//! streaming subscribers, picked at random, disconnect and reconnect with
//! `SINCE:<last seq received whole>`, their turns spread evenly over part of the period.
//!
//! A resumed subscriber keeps what it has seen (its `last_seq`, the status it had, its place
//! in its match's tracker): only its connection, decoder and phase are new, so its seq count
//! goes on across the reconnection and an event the resume loses or repeats shows as out of
//! order or duplicated. The new connection is opened before the old one is closed (the bench
//! briefly holds both; the server sees a close and a connect at the same moment). A resume is
//! done once its `SINCE` command is wholly sent; one whose connection fails ends its
//! subscriber as failed, like any other connection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Phase, Shard, Sub};
use crate::subscribers::plan::Resume;
use crate::wire::decode::Decoder;

/// The resume rounds of one shard.
#[derive(Debug)]
pub(super) struct Rounds {
    every: Duration,
    percent: f64,
    spread: Duration,
    /// The picks' random state (splitmix64).
    rng: u64,
    /// When the next round picks.
    next: Instant,
    /// Picked subscribers waiting for their turn, in turn order: (when, key, index).
    pending: VecDeque<(Instant, usize, u64)>,
}

impl Rounds {
    /// The rounds of the shard whose first subscriber is `first`, ready at `ready`.
    pub(super) fn new(r: &Resume, first: u64, ready: Instant) -> Rounds {
        let every = Duration::from_millis(r.every_ms.max(1));
        let mut rng = r.seed ^ first.wrapping_mul(0xd134_2543_de82_ef95);
        splitmix64(&mut rng);
        Rounds {
            every,
            percent: r.percent,
            spread: Duration::from_millis(r.spread_ms),
            rng,
            next: ready + every,
            pending: VecDeque::new(),
        }
    }
}

/// Whether subscriber `s` is streaming: its command sent, its status seen, no stop yet.
fn streaming(s: &Sub) -> bool {
    matches!(s.phase, Phase::Reading) && s.seen.status && !s.seen.stop
}

impl Shard<'_> {
    /// Picks a round when one is due, and resumes the picked subscribers whose turn came.
    pub(super) fn resume_due(&mut self, now: Instant) {
        let Some(mut rounds) = self.rounds.take() else {
            return;
        };
        if now >= rounds.next {
            rounds.next += rounds.every;
            if rounds.next <= now {
                // Far behind (a stalled loop): the next round a whole period from now.
                rounds.next = now + rounds.every;
            }
            let mut candidates: Vec<(usize, u64)> = self
                .subs
                .iter()
                .filter(|(_, s)| streaming(s))
                .map(|(key, s)| (key, s.index))
                .collect();
            let k = round_size(candidates.len(), rounds.percent);
            pick(&mut rounds.rng, &mut candidates, k);
            for (i, &(key, index)) in candidates[..k].iter().enumerate() {
                let at = now + rounds.spread.mul_f64(i as f64 / k as f64);
                rounds.pending.push_back((at, key, index));
            }
        }
        while let Some(&(at, key, index)) = rounds.pending.front() {
            if at > now {
                break;
            }
            rounds.pending.pop_front();
            self.resume(key, index, now);
        }
        self.rounds = Some(rounds);
    }

    /// Disconnects subscriber `key` (if it is still `index` and streaming) and reconnects it
    /// with `SINCE:<its last seq>`.
    fn resume(&mut self, key: usize, index: u64, now: Instant) {
        match self.subs.get(key) {
            Some(s) if s.index == index && streaming(s) => {}
            _ => return,
        }
        let (stream, phase) = match self.open(index, key) {
            Ok(opened) => opened,
            Err(kind) => return self.end(key, Err(kind)),
        };
        // The old connection closes here: the disconnection.
        self.switch(key, stream, phase, now);
        let protocol = self.plan.protocol;
        if let Some(sub) = self.subs.get_mut(key) {
            sub.decoder = Decoder::resumed(protocol);
            sub.resumed = true;
        }
        self.resuming += 1;
    }
}

/// How many of `streaming` subscribers a round of `percent` picks (rounded, at most all).
fn round_size(streaming: usize, percent: f64) -> usize {
    let k = (streaming as f64 * percent.clamp(0.0, 100.0) / 100.0).round();
    (k as usize).min(streaming)
}

/// Moves `k` of `items`, picked uniformly at random, to its front (a partial Fisher–Yates
/// shuffle).
fn pick<T>(rng: &mut u64, items: &mut [T], k: usize) {
    let n = items.len();
    for i in 0..k.min(n) {
        let j = i + (splitmix64(rng) % (n - i) as u64) as usize;
        items.swap(i, j);
    }
}

/// The next number of a splitmix64 sequence whose state is `state`.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_picks_its_share() {
        // (streaming, percent, picked)
        let cases = [
            (19_000, 5.0, 950),
            (200, 5.0, 10),
            (10, 5.0, 1), // 0.5 rounds up
            (9, 5.0, 0),
            (0, 5.0, 0),
            (7, 100.0, 7),
            (7, 250.0, 7),
            (7, -1.0, 0),
        ];
        for (n, pct, want) in cases {
            assert_eq!(round_size(n, pct), want, "{n} at {pct} %");
        }
    }

    #[test]
    fn picks_are_distinct_and_follow_the_seed() {
        let pick_with = |seed: u64| {
            let mut rng = seed;
            let mut items: Vec<u32> = (0..1000).collect();
            pick(&mut rng, &mut items, 50);
            let mut chosen = items[..50].to_vec();
            chosen.sort_unstable();
            chosen
        };
        let a = pick_with(7);
        let mut distinct = a.clone();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            50,
            "no subscriber is picked twice in a round"
        );
        assert!(a.iter().all(|&i| i < 1000));
        assert_eq!(a, pick_with(7), "the same seed picks the same");
        assert_ne!(a, pick_with(8), "another seed picks others");
        // Over many rounds every subscriber gets picked about as often as any other.
        let mut rng = 1;
        let mut times = [0u32; 100];
        for _ in 0..2000 {
            let mut items: Vec<usize> = (0..100).collect();
            pick(&mut rng, &mut items, 5);
            items[..5].iter().for_each(|&i| times[i] += 1);
        }
        let (lo, hi) = (times.iter().min(), times.iter().max());
        assert!(
            lo >= Some(&60) && hi <= Some(&140),
            "{lo:?}..{hi:?} of 100 expected"
        );
    }
}
