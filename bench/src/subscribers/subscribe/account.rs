//! What a subscriber's frames mean for the figures: the status that makes it live, every
//! measured delivery's latency from its stamp, duplicates and gaps by seq, and the window's
//! view of it (its match's [`MinTracker`](crate::publisher::window::MinTracker), reported to the
//! publisher whenever a match's slowest live subscriber moves).

use matchstream_protocol::EventKind;
use slab::Slab;

use super::{Shard, Signal, Sub};
use crate::figures::latency::realtime_ns;
use crate::publisher::window::NO_LIVE;
use crate::subscribers::outcome::{self, Failure};
use crate::wire::decode::Protocol;
use crate::wire::framing::Item;

impl Shard<'_> {
    /// Signals the matches whose smallest live seq changed since the last report.
    pub(super) fn report_frontiers(&mut self, signal: &mut dyn FnMut(Signal<'_>)) {
        self.changes.clear();
        for &c in &self.dirty_list {
            let c = c as usize;
            self.dirty[c] = false;
            let now = self.trackers[c].min().unwrap_or(NO_LIVE);
            if now != self.reported[c] {
                self.reported[c] = now;
                self.changes.push((c as u32, now));
            }
        }
        self.dirty_list.clear();
        if !self.changes.is_empty() {
            signal(Signal::Frontier(&self.changes));
        }
    }

    pub(super) fn touch(&mut self, channel: usize) {
        if !self.dirty[channel] {
            self.dirty[channel] = true;
            self.dirty_list.push(channel as u32);
        }
    }

    /// Accounts for the items of one read.
    pub(super) fn account(
        &mut self,
        key: usize,
        items: &[Item],
    ) -> Result<(), Result<(), Failure>> {
        if items.is_empty() {
            return Ok(());
        }
        let now_ns = realtime_ns();
        let channel = self.channel_of(key_index(&self.subs, key));
        let Some(sub) = self.subs.get_mut(key) else {
            return Ok(());
        };
        let before = sub.last_seq;
        let was_live = sub.seen.status;
        let mut verdict = Ok(());
        for item in items {
            let f = match item {
                Item::Frame(f) => f,
                Item::Error(reason) => {
                    *self.out.error_lines.entry(reason.clone()).or_default() += 1;
                    verdict = Err(Err(Failure::ErrorLine));
                    break;
                }
            };
            let first_status = f.kind == EventKind::Status && !sub.seen.status;
            sub.seen.frame(f);
            if first_status {
                self.attempting = self.attempting.saturating_sub(1);
                self.out.connected += 1;
                self.out.status.record(sub.t0.elapsed());
            }
            if let Some(seq) = f.seq {
                self.out.count(outcome::track(&mut sub.last_seq, seq));
            }
            if let Some(sent) = f.sent_ns {
                self.out.delivered += 1;
                let us = now_ns.saturating_sub(sent) / 1000;
                self.out.delivery.record_us(us);
                self.recent.record_us(us);
                if self.out.first_delivery_ns == 0 {
                    self.out.first_delivery_ns = now_ns;
                }
                self.out.last_delivery_ns = self.out.last_delivery_ns.max(now_ns);
            }
            if f.kind == EventKind::Stop
                && matches!(self.plan.protocol, Protocol::Redis | Protocol::Nats)
            {
                // Redis and NATS never hang up on a subscriber: the stop message ends it.
                verdict = Err(Ok(()));
                break;
            }
        }
        // The window's view of this subscriber: live from its status on, at its last seq.
        if sub.seen.status && (!was_live || sub.last_seq != before) {
            let tracker = &mut self.trackers[channel];
            sub.tracked = if was_live {
                tracker.advance(sub.tracked, sub.last_seq)
            } else {
                tracker.add(sub.last_seq)
            };
            self.touch(channel);
        }
        verdict
    }
}

fn key_index(subs: &Slab<Sub>, key: usize) -> u64 {
    subs.get(key).map_or(0, |s| s.index)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Instant;

    use matchstream_protocol::{EventKind, Period};

    use super::super::{Phase, Shard, Sub};
    use crate::figures::progress::Live;
    use crate::subscribers::outcome::Seen;
    use crate::subscribers::plan::{Plan, Target};
    use crate::wire::decode::{Decoder, Protocol};
    use crate::wire::framing::{Frame, Item};

    fn frame(kind: EventKind, seq: u64) -> Item {
        Item::Frame(Frame {
            kind,
            seq: Some(seq),
            sent_ns: None,
            period: (kind == EventKind::Status).then_some(Period::First),
        })
    }

    #[test]
    fn duplicates_and_gaps_are_counted_per_frame() {
        let plan = Plan {
            protocol: Protocol::Stream { version: 2 },
            target: Target::Direct(vec!["127.0.0.1:1".parse().expect("addr")]),
            channels: vec!["a-b-2011-09-13".into()],
            user_prefix: "u".into(),
            first: 0,
            count: 1,
            concurrency: 1,
            connect_timeout_ms: 1000,
            time_limit_ms: 1000,
            source_ips: None,
            resume: None,
        };
        let live = Live::default();
        let mut shard = Shard::new(&plan, &live, Instant::now()).expect("shard");
        // The subscriber needs a socket; nothing is read from it here.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let stream =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let key = shard.subs.insert(Sub {
            index: 0,
            stream: mio::net::TcpStream::from_std(stream),
            phase: Phase::Reading,
            t0: Instant::now(),
            seen: Seen::default(),
            decoder: Decoder::new(plan.protocol),
            last_seq: 0,
            tracked: 0,
            resumed: false,
        });
        let goal = |seq| frame(EventKind::Goal, seq);
        // (frames of one read, duplicated and out of order so far)
        let reads: [(Vec<Item>, u64, u64); 3] = [
            (vec![frame(EventKind::Status, 1), goal(2), goal(3)], 0, 0),
            // 3 again, then 5 skips 4, then 4 is below the highest seen.
            (vec![goal(3), goal(5), goal(4)], 2, 1),
            (vec![goal(6), goal(9), goal(9), goal(10)], 3, 2),
        ];
        for (i, (items, duplicated, out_of_order)) in reads.into_iter().enumerate() {
            assert_eq!(shard.account(key, &items), Ok(()), "read {i}");
            assert_eq!(
                (shard.out.duplicated, shard.out.out_of_order),
                (duplicated, out_of_order),
                "after read {i}"
            );
        }
        assert_eq!(shard.out.connected, 1);
        assert_eq!(shard.subs[key].last_seq, 10);
    }
}
