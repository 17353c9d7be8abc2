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
                outcome::track(&mut sub.last_seq, seq, &mut self.out);
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
