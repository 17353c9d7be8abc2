//! The flow control of `fanout`, one for every system measured (SPEC §7): which event of which
//! match goes out next, and when. The same [`Schedule`] drives matchstream's POSTs, Redis's
//! PUBLISHes and NATS's PUBs; the publisher never waits for an answer before the next publish.
//!
//! - **Paced** (`--rate R`, events per second per match): event k of match m of M is due at
//!   `t0 + (k + m/M) / R` (the matches' events spread evenly over each period rather than in
//!   bursts of M; with one match, `t0 + k/R`). It is stamped with that *scheduled* time, so a
//!   publisher (or a server) that falls behind shows as latency instead of hiding it
//!   (coordinated omission).
//! - **Window** (`--rate max --window W`): event k of a match goes as soon as every live
//!   subscriber of that match has received event k − W ([`crate::publisher::window::allowed`]); it is
//!   stamped with its actual send time.
//!
//! Events are numbered per match from 0: first `--warmup` unmeasured events, then the measured
//! ones, then one stop. Their seqs follow a started match's: the start is 1, event k is
//! `k + 2`.

use std::time::{Duration, Instant};

use crate::publisher::window;
use crate::wire::payload::Kind;

/// The seq of event 0 (the match's start is seq 1).
pub const FIRST_SEQ: u64 = 2;

/// How events are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flow {
    /// R events per second per match, stamped with their scheduled time.
    Paced {
        /// Events per second per match.
        rate: f64,
    },
    /// Event k once every live subscriber has event k − W, stamped with the send time.
    Window {
        /// W.
        window: u64,
    },
}

impl Flow {
    /// How the report names it.
    pub fn describe(&self) -> String {
        match self {
            Flow::Paced { rate } => format!(
                "paced: event k of each match at t0 + k/{rate} s, pipelined, latency from the \
                 scheduled send time"
            ),
            Flow::Window { window } => format!(
                "window W={window}: event k once every live subscriber has event k-{window}, \
                 pipelined, latency from the actual send time"
            ),
        }
    }

    /// `paced` or `window`.
    pub fn mode(&self) -> &'static str {
        match self {
            Flow::Paced { .. } => "paced",
            Flow::Window { .. } => "window",
        }
    }
}

/// One publish the schedule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// The match (channel) index.
    pub channel: usize,
    /// The event's number in its match (0-based, warm-up included; the stop is last).
    pub index: u64,
    /// Its seq.
    pub seq: u64,
    /// What it is.
    pub kind: Kind,
    /// The stamp it carries (ns since the Unix epoch): scheduled (paced) or actual (window).
    pub stamp_ns: u64,
    /// When it was due (paced), or when it was released (window).
    pub due: Instant,
}

/// What the publisher should do after asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Nothing is due before this instant.
    Until(Instant),
    /// Every match waits for its subscribers (the board wakes the loop).
    Frontier,
    /// Every event and stop has been handed out.
    Done,
}

/// The publishing order of one run.
#[derive(Debug)]
pub struct Schedule {
    flow: Flow,
    channels: usize,
    warmup: u64,
    /// Events per match, warm-up included (the stop is number `total`).
    total: u64,
    t0: Instant,
    t0_ns: u64,
    /// Paced: the next (event, match).
    cursor: (u64, usize),
    /// Window: each match's next event number (`total + 1` once its stop went).
    next: Vec<u64>,
    /// Window: where the next scan starts, so no match is always served first.
    rotate: usize,
    /// Publishes handed out so far.
    handed: u64,
}

impl Schedule {
    /// A schedule of `warmup` + `events` events and a stop for each of `channels` matches.
    pub fn new(flow: Flow, channels: usize, warmup: u64, events: u64) -> Schedule {
        let now = Instant::now();
        Schedule {
            flow,
            channels: channels.max(1),
            warmup,
            total: warmup + events,
            t0: now,
            t0_ns: crate::figures::latency::realtime_ns(),
            cursor: (0, 0),
            next: vec![0; channels.max(1)],
            rotate: 0,
            handed: 0,
        }
    }

    /// Matches.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Events (warm-up included, stops not) the whole schedule publishes.
    pub fn planned_events(&self) -> u64 {
        self.total * self.channels as u64
    }

    /// Publishes (stops included) not handed out yet.
    pub fn remaining(&self) -> u64 {
        (self.total + 1) * self.channels as u64 - self.handed
    }

    /// Paced: the last event's (not the stop's) offset from t0.
    pub fn last_event_offset(&self) -> Duration {
        self.offset(self.total.saturating_sub(1), self.channels - 1)
    }

    /// Sets t0: `t0` and the same instant on the realtime clock.
    pub fn start(&mut self, t0: Instant, t0_ns: u64) {
        self.t0 = t0;
        self.t0_ns = t0_ns;
    }

    /// t0.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// The flow.
    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// Paced: when event `index` of match `channel` is due, after t0.
    pub fn offset(&self, index: u64, channel: usize) -> Duration {
        match self.flow {
            Flow::Paced { rate } => {
                let spread = channel as f64 / self.channels as f64;
                Duration::from_secs_f64((index as f64 + spread) / rate.max(1e-9))
            }
            Flow::Window { .. } => Duration::ZERO,
        }
    }

    fn kind(&self, index: u64) -> Kind {
        if index == self.total {
            Kind::Stop
        } else if index < self.warmup {
            Kind::Warmup
        } else {
            Kind::Measured
        }
    }

    /// Appends to `out` up to `budget` publishes that may go at `now` (`now_ns` on the
    /// realtime clock), in order; `frontier(m)` is match m's frontier (window only).
    pub fn poll(
        &mut self,
        now: Instant,
        now_ns: u64,
        frontier: &dyn Fn(usize) -> Option<u64>,
        budget: usize,
        out: &mut Vec<Publish>,
    ) -> Wait {
        let before = out.len();
        let wait = match self.flow {
            Flow::Paced { .. } => self.poll_paced(now, budget, out),
            Flow::Window { window } => self.poll_window(now, now_ns, window, frontier, budget, out),
        };
        self.handed += (out.len() - before) as u64;
        wait
    }

    fn poll_paced(&mut self, now: Instant, budget: usize, out: &mut Vec<Publish>) -> Wait {
        let mut given = 0;
        loop {
            let (index, channel) = self.cursor;
            if index > self.total {
                return Wait::Done;
            }
            let offset = self.offset(index, channel);
            let due = self.t0 + offset;
            if due > now {
                return Wait::Until(due);
            }
            if given == budget {
                return Wait::Until(now);
            }
            out.push(Publish {
                channel,
                index,
                seq: FIRST_SEQ + index,
                kind: self.kind(index),
                stamp_ns: self.t0_ns + u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX),
                due,
            });
            given += 1;
            self.cursor = if channel + 1 == self.channels {
                (index + 1, 0)
            } else {
                (index, channel + 1)
            };
        }
    }

    fn poll_window(
        &mut self,
        now: Instant,
        now_ns: u64,
        w: u64,
        frontier: &dyn Fn(usize) -> Option<u64>,
        budget: usize,
        out: &mut Vec<Publish>,
    ) -> Wait {
        let mut given = 0;
        let mut pending = false;
        for i in 0..self.channels {
            let channel = (self.rotate + i) % self.channels;
            let f = frontier(channel);
            while self.next[channel] <= self.total {
                let index = self.next[channel];
                let seq = FIRST_SEQ + index;
                if !window::allowed(seq, f, w) {
                    pending = true;
                    break;
                }
                if given == budget {
                    self.rotate = channel;
                    return Wait::Until(now);
                }
                out.push(Publish {
                    channel,
                    index,
                    seq,
                    kind: self.kind(index),
                    stamp_ns: now_ns,
                    due: now,
                });
                given += 1;
                self.next[channel] += 1;
            }
        }
        self.rotate = (self.rotate + 1) % self.channels;
        if pending {
            Wait::Frontier
        } else {
            Wait::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Schedule, now: Instant, f: &dyn Fn(usize) -> Option<u64>) -> Vec<Publish> {
        let mut out = Vec::new();
        s.poll(now, 1_000, f, usize::MAX, &mut out);
        out
    }

    #[test]
    fn paced_events_are_due_at_t0_plus_k_over_r() {
        let mut s = Schedule::new(Flow::Paced { rate: 20.0 }, 1, 0, 5);
        let t0 = Instant::now();
        s.start(t0, 1_000_000_000);
        let none = |_: usize| Some(0);
        for k in 0..5u64 {
            let at = t0 + Duration::from_millis(50 * k);
            let got = drain(&mut s, at, &none);
            assert_eq!(got.len(), 1, "event {k}");
            assert_eq!(got[0].index, k);
            assert_eq!(got[0].seq, k + 2);
            assert_eq!(got[0].due, at);
            // Stamped with the scheduled time, whenever it is actually sent.
            assert_eq!(got[0].stamp_ns, 1_000_000_000 + k * 50_000_000);
            assert_eq!(got[0].kind, Kind::Measured);
        }
        // The stop is due one period after the last event.
        let mut out = Vec::new();
        match s.poll(t0, 0, &none, 10, &mut out) {
            Wait::Until(t) => assert_eq!(t - t0, Duration::from_millis(250)),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.remaining(), 1);
        assert_eq!(s.planned_events(), 5);
        assert_eq!(s.last_event_offset(), Duration::from_millis(200));
        let late = drain(&mut s, t0 + Duration::from_secs(9), &none);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].kind, Kind::Stop);
        assert_eq!(
            late[0].stamp_ns, 1_250_000_000,
            "late, but stamped when due"
        );
        assert_eq!(s.poll(t0, 0, &none, 10, &mut Vec::new()), Wait::Done);
        assert_eq!(s.remaining(), 0);
    }

    #[test]
    fn paced_matches_are_spread_over_the_period() {
        let mut s = Schedule::new(Flow::Paced { rate: 10.0 }, 4, 1, 1);
        let t0 = Instant::now();
        s.start(t0, 0);
        let none = |_: usize| None;
        // (offset from t0 in ms, publishes it releases as (channel, index, kind))
        type Step = (u64, &'static [(usize, u64, Kind)]);
        let steps: [Step; 5] = [
            (0, &[(0, 0, Kind::Warmup)]),
            (50, &[(1, 0, Kind::Warmup), (2, 0, Kind::Warmup)]),
            (99, &[(3, 0, Kind::Warmup)]),
            (100, &[(0, 1, Kind::Measured)]),
            (
                1000,
                &[
                    (1, 1, Kind::Measured),
                    (2, 1, Kind::Measured),
                    (3, 1, Kind::Measured),
                    (0, 2, Kind::Stop),
                    (1, 2, Kind::Stop),
                    (2, 2, Kind::Stop),
                    (3, 2, Kind::Stop),
                ],
            ),
        ];
        for (ms, want) in steps {
            let got: Vec<(usize, u64, Kind)> = drain(&mut s, t0 + Duration::from_millis(ms), &none)
                .iter()
                .map(|p| (p.channel, p.index, p.kind))
                .collect();
            assert_eq!(got, want, "at {ms} ms");
        }
    }

    #[test]
    fn the_window_holds_each_match_to_its_slowest_subscriber() {
        let mut s = Schedule::new(Flow::Window { window: 2 }, 2, 0, 4);
        let now = Instant::now();
        // (frontier of match 0, of match 1, seqs released for match 0, for match 1)
        type Step = (Option<u64>, Option<u64>, &'static [u64], &'static [u64]);
        let steps: [Step; 5] = [
            (Some(1), Some(1), &[2, 3], &[2, 3]), // everyone has the status (seq 1)
            (Some(2), Some(1), &[4], &[]),        // match 1's slowest has not moved
            (Some(2), Some(3), &[], &[4, 5]),
            (Some(6), Some(3), &[5, 6], &[]), // 6 is match 0's stop
            (Some(6), None, &[], &[6]),       // no live subscriber left on match 1
        ];
        for (i, (f0, f1, want0, want1)) in steps.into_iter().enumerate() {
            let frontier = move |m: usize| if m == 0 { f0 } else { f1 };
            let mut out = Vec::new();
            let wait = s.poll(now, 7, &frontier, usize::MAX, &mut out);
            for p in &out {
                assert_eq!(p.stamp_ns, 7, "stamped with the send time");
                let f = frontier(p.channel);
                assert!(window::allowed(p.seq, f, 2), "step {i}: {p:?} beyond {f:?}");
            }
            let seqs = |m: usize| -> Vec<u64> {
                out.iter()
                    .filter(|p| p.channel == m)
                    .map(|p| p.seq)
                    .collect()
            };
            assert_eq!(seqs(0), want0, "step {i}");
            assert_eq!(seqs(1), want1, "step {i}");
            let expect = if i == 4 { Wait::Done } else { Wait::Frontier };
            assert_eq!(wait, expect, "step {i}");
        }
    }

    #[test]
    fn a_budget_bounds_each_poll() {
        let mut s = Schedule::new(Flow::Window { window: 100 }, 3, 0, 10);
        let none = |_: usize| None;
        let now = Instant::now();
        let mut out = Vec::new();
        assert_eq!(s.poll(now, 0, &none, 5, &mut out), Wait::Until(now));
        assert_eq!(out.len(), 5);
        let mut rounds = 0;
        while s.poll(now, 0, &none, 5, &mut out) != Wait::Done {
            rounds += 1;
            assert!(rounds < 100);
        }
        assert_eq!(out.len(), 33); // 3 × (10 events + stop)
    }
}
