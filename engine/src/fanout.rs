//! The per-core match table: each core's copy of every match (state, history, rendered
//! frames) and its local subscribers, and the fanout of committed events to them.
//!
//! A core renders each event once per encoding when it arrives from the bus and shares the
//! bytes among all its subscribers ([`Outbox`]): the TCP frames (v1, v2) at once, the SSE event
//! when the first SSE subscriber asks for it, so a node without browsers pays nothing for them. The table is also the core's read
//! model: the API answers match, list and history requests from it without touching the store.
//! Subscribers whose stream ended are dropped from the table on the next event of their match
//! or by the periodic [`Fanout::sweep`], which also finds idle subscribers whose peer has gone
//! (a subscriber has no task reading its socket), and queues the keep-alive comment of SSE
//! subscribers that have had nothing sent for a while.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use matchstream_protocol::api::{match_body, write_history};
use matchstream_protocol::encoding::Encoding;
use matchstream_protocol::sse::KEEPALIVE;
use matchstream_protocol::{Event, EventKind, Match, MatchId, Period};

use crate::bus::{BusMsg, MatchRecord};
use crate::outbox::{End, Frame, Outbox};
use crate::stats::CoreStats;

/// Events at the end of each match's history whose frames a core keeps rendered: the live
/// fanout and the resumes of clients that dropped a moment ago share them. Older events keep
/// only the event; a resume that reaches back that far has their frames rendered again.
/// (Every core holds every match's history: kept frames cost about 250 bytes per event per
/// core, which a long match on many cores would otherwise hold for good.)
pub const RECENT_FRAMES: usize = 64;

/// One stored event with, while it is recent, its frames.
pub struct Entry {
    /// The event.
    pub event: Arc<Event>,
    /// The frames per encoding ([`slot`]): v1 and v2 rendered on arrival, SSE when an SSE
    /// subscriber first needs it, all dropped once the event is no longer among the last
    /// [`RECENT_FRAMES`] of its match.
    frames: RefCell<[Option<Frame>; 3]>,
    /// Among the last [`RECENT_FRAMES`]: frames rendered are kept.
    recent: Cell<bool>,
}

impl Entry {
    fn new(event: Arc<Event>, recent: bool) -> Entry {
        let mut frames = [None, None, None];
        if recent {
            for encoding in [Encoding::V1, Encoding::V2] {
                frames[slot(encoding)] = Some(frame_of(|out| encoding.render_event(&event, out)));
            }
        }
        Entry {
            event,
            frames: RefCell::new(frames),
            recent: Cell::new(recent),
        }
    }

    /// The frame for `encoding`: the shared rendering while the event is recent (the SSE one
    /// made on first use), a new one otherwise.
    pub fn frame(&self, encoding: Encoding) -> Frame {
        let mut frames = self.frames.borrow_mut();
        let cached = &mut frames[slot(encoding)];
        if let Some(frame) = cached {
            return frame.clone();
        }
        let frame = frame_of(|out| encoding.render_event(&self.event, out));
        if self.recent.get() {
            *cached = Some(frame.clone());
        }
        frame
    }

    /// Appends the frame for `encoding` to `out` (a resume's piece), rendering it into `out`
    /// when it is not kept.
    pub fn write_frame(&self, encoding: Encoding, out: &mut Vec<u8>) {
        match &self.frames.borrow()[slot(encoding)] {
            Some(frame) => out.extend_from_slice(frame),
            None => encoding.render_event(&self.event, out),
        }
    }

    /// True while the event is recent (its frames are kept).
    pub fn is_rendered(&self) -> bool {
        self.recent.get()
    }

    /// Drops the frames of an event that is no longer recent.
    fn forget_frames(&self) {
        self.recent.set(false);
        self.frames.replace([None, None, None]);
    }
}

/// The place of `encoding` in per-encoding arrays.
fn slot(encoding: Encoding) -> usize {
    match encoding {
        Encoding::V1 => 0,
        Encoding::V2 => 1,
        Encoding::Sse => 2,
    }
}

fn frame_of(render: impl FnOnce(&mut Vec<u8>)) -> Frame {
    let mut out = Vec::with_capacity(128);
    render(&mut out);
    Rc::from(out)
}

/// A core's view of one match.
pub struct MatchView {
    /// The current state.
    pub state: Arc<Match>,
    /// Every event in seq order (`history[i].event.seq == i + 1` unless a gap was logged).
    pub history: Vec<Entry>,
    /// Renderings of the current state, made when first asked for and dropped on every change:
    /// the status frames (v1, v2, SSE, each when first asked for), the match's JSON, the
    /// whole history's JSON.
    status: RefCell<[Option<Frame>; 3]>,
    json: RefCell<Option<Rc<[u8]>>>,
    history_json: RefCell<Option<Rc<[u8]>>>,
    subscribers: Vec<Rc<Outbox>>,
}

impl MatchView {
    fn new(state: Arc<Match>, history: Vec<Arc<Event>>) -> MatchView {
        let old = history.len().saturating_sub(RECENT_FRAMES);
        MatchView {
            state,
            history: history
                .into_iter()
                .enumerate()
                .map(|(i, e)| Entry::new(e, i >= old))
                .collect(),
            status: RefCell::new([None, None, None]),
            json: RefCell::new(None),
            history_json: RefCell::new(None),
            subscribers: Vec::new(),
        }
    }

    /// The status frame of the current state in `encoding`, rendered once per state.
    pub fn status_frame(&self, encoding: Encoding) -> Frame {
        let mut cache = self.status.borrow_mut();
        cache[slot(encoding)]
            .get_or_insert_with(|| frame_of(|out| encoding.render_status(&self.state, out)))
            .clone()
    }

    /// The body of `GET /1/match/<id>`, rendered once per state.
    pub fn json(&self) -> Rc<[u8]> {
        let mut cache = self.json.borrow_mut();
        cache
            .get_or_insert_with(|| Rc::from(match_body(&self.state)))
            .clone()
    }

    /// The body of `GET /1/match/<id>/history` (the whole history), rendered once per event.
    pub fn history_json(&self) -> Rc<[u8]> {
        let mut cache = self.history_json.borrow_mut();
        cache
            .get_or_insert_with(|| Rc::from(self.history_json_since(0)))
            .clone()
    }

    /// The body of `GET /1/match/<id>/history?since=<seq>`: the events after `seq`, rendered
    /// on each call.
    pub fn history_json_since(&self, seq: u64) -> Vec<u8> {
        let events: Vec<_> = self.since(seq).iter().map(|e| &*e.event).collect();
        let mut out = Vec::with_capacity(64 + events.len() * 96);
        write_history(&events, &mut out);
        out
    }

    /// Drops the renderings of the state before a change.
    fn forget_renderings(&self) {
        self.status.replace([None, None, None]);
        self.json.replace(None);
        self.history_json.replace(None);
    }

    /// Events after `seq`. Found by seq, not by index, so a gap (logged where it arrived)
    /// never makes a resume skip or repeat an event.
    pub fn since(&self, seq: u64) -> &[Entry] {
        let start = self.history.partition_point(|e| e.event.seq <= seq);
        &self.history[start..]
    }

    /// The seq of the last event held (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.history.last().map_or(0, |e| e.event.seq)
    }

    /// Subscribers on this core (ended ones count until they are swept).
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }
}

/// How a subscription started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// The subscriber receives live events.
    Live,
    /// Everything was queued; the stream ends once it is sent (match not live).
    Done,
}

/// The per-core match table.
#[derive(Default)]
pub struct Fanout {
    views: HashMap<MatchId, MatchView>,
    dirty: std::collections::VecDeque<Rc<Outbox>>,
    tend: Vec<Rc<Outbox>>,
    listing: RefCell<Option<Rc<[u8]>>>,
    /// The node drains ([`BusMsg::Drain`] applied): subscribers that can resume elsewhere are
    /// sent away, now and when they subscribe.
    draining: bool,
}

impl Fanout {
    /// A table seeded with the store's matches.
    pub fn new(records: &[MatchRecord]) -> Fanout {
        let mut views = HashMap::with_capacity(records.len());
        for r in records {
            views.insert(
                r.state.id.clone(),
                MatchView::new(r.state.clone(), r.history.clone()),
            );
        }
        Fanout {
            views,
            ..Fanout::default()
        }
    }

    /// The view of a match.
    pub fn get(&self, id: &str) -> Option<&MatchView> {
        self.views.get(id)
    }

    /// The body of `GET /1/matches` (the match ids, sorted), rendered once per change of the
    /// table.
    pub fn listing(&self) -> Rc<[u8]> {
        let mut cache = self.listing.borrow_mut();
        cache
            .get_or_insert_with(|| {
                let mut ids: Vec<&str> = self.views.keys().map(MatchId::as_str).collect();
                ids.sort_unstable();
                Rc::from(serde_json::to_vec(&ids).unwrap_or_default())
            })
            .clone()
    }

    /// Applies one bus message; queues frames but does not send them ([`Fanout::flush`]).
    /// Returns how many events it queued for at least one subscriber (the events whose
    /// publish→flush latency the core then measures).
    pub fn apply(&mut self, msg: BusMsg, stats: &CoreStats) -> usize {
        let recount = !matches!(msg, BusMsg::Event { .. });
        let mut queued = 0;
        match msg {
            BusMsg::Created(state) => {
                self.listing.replace(None);
                self.views
                    .entry(state.id.clone())
                    .or_insert_with(|| MatchView::new(state, Vec::new()));
            }
            BusMsg::Event { event, state } => queued += usize::from(self.deliver(event, state)),
            BusMsg::Snapshot(record) => {
                let known = self.views.get(&record.state.id).map(MatchView::last_seq);
                match known {
                    None => {
                        self.listing.replace(None);
                        self.views.insert(
                            record.state.id.clone(),
                            MatchView::new(record.state, record.history),
                        );
                    }
                    Some(have) => {
                        for event in record.history.into_iter().filter(|e| e.seq > have) {
                            queued += usize::from(self.deliver(event, record.state.clone()));
                        }
                    }
                }
            }
            BusMsg::Cancelled(id) => self.end_match(&id, End::Cancelled),
            BusMsg::Withdrawn(id) => self.end_match(&id, End::Unavailable),
            BusMsg::Replaced(record) => {
                self.end_match(&record.state.id, End::HistoryChanged);
                self.views.insert(
                    record.state.id.clone(),
                    MatchView::new(record.state, record.history),
                );
            }
            BusMsg::Drain => self.drain(),
            BusMsg::Shutdown => {
                let notices = Encoding::ALL
                    .map(|e| frame_of(|out| e.render_error("server shutting down", out)));
                for view in self.views.values_mut() {
                    for sub in view.subscribers.drain(..) {
                        sub.push_final(notices[slot(sub.encoding)].clone());
                        sub.finish(End::Shutdown);
                        if sub.mark_dirty() {
                            self.dirty.push_back(sub);
                        }
                    }
                }
            }
        }
        // Not per event: that would scan every match on the hot path. Events change the gauge
        // only at `stop`, which the next sweep counts.
        if recount {
            self.count_live(stats);
        }
        queued
    }

    /// Starts the node's drain on this core: every subscriber that can resume elsewhere (v2,
    /// SSE) is ended with `node draining` (an abrupt end, as `too slow`: its queued frames are
    /// dropped, it resumes after the last one it received whole); v1 subscribers, who cannot
    /// resume, are kept until their match ends.
    fn drain(&mut self) {
        self.draining = true;
        let dirty = &mut self.dirty;
        for view in self.views.values_mut() {
            view.subscribers.retain(|sub| {
                if sub.end().is_some() {
                    return false; // ended already (swept late): it says its own last words
                }
                if stays_while_draining(sub.encoding) {
                    return true;
                }
                sub.finish(End::Draining);
                if sub.mark_dirty() {
                    dirty.push_back(sub.clone());
                }
                false
            });
        }
    }

    /// True once the node drains ([`BusMsg::Drain`]).
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Forgets a match and ends its subscribers with `end` (an abrupt end: its error line).
    fn end_match(&mut self, id: &MatchId, end: End) {
        self.listing.replace(None);
        if let Some(view) = self.views.remove(id) {
            for sub in view.subscribers {
                sub.finish(end);
                if sub.mark_dirty() {
                    self.dirty.push_back(sub);
                }
            }
        }
    }

    /// Sets the stats' count of matches with subscribers on this core, and publishes its
    /// busiest matches.
    fn count_live(&self, stats: &CoreStats) {
        let live = self
            .views
            .values()
            .filter(|v| v.subscriber_count() > 0)
            .count();
        stats.set_live_matches(live as u64);
        stats.publish_busiest(
            self.views
                .iter()
                .map(|(id, v)| (id.as_str(), v.subscriber_count())),
        );
    }

    /// Adds an event to its match and queues it for the match's subscribers; true if any
    /// subscriber got it.
    fn deliver(&mut self, event: Arc<Event>, state: Arc<Match>) -> bool {
        let Some(view) = self.views.get_mut(&event.match_id) else {
            // Created was not seen (cannot happen on one node: the store publishes in order).
            log::warn!(target: "matchstream::fanout",
                "event {} of unknown match {}: adopting its state", event.seq, event.match_id);
            self.listing.replace(None);
            self.views
                .insert(state.id.clone(), MatchView::new(state, Vec::new()));
            return false;
        };
        let last = view.last_seq();
        if event.seq <= last {
            return false; // already have it
        }
        if event.seq != last + 1 {
            log::warn!(target: "matchstream::fanout",
                "match {}: event {} arrived after {}: gap", event.match_id, event.seq, last);
        }
        let entry = Entry::new(event, true);
        let is_stop = entry.event.kind == EventKind::Stop;
        view.state = state;
        view.forget_renderings();
        let dirty = &mut self.dirty;
        let mut reached = false;
        view.subscribers.retain(|sub| {
            if sub.end().is_some() {
                return false;
            }
            reached = true;
            sub.push(entry.frame(sub.encoding));
            if is_stop {
                sub.finish(End::Finished);
            }
            if sub.mark_dirty() {
                dirty.push_back(sub.clone());
            }
            !is_stop
        });
        view.history.push(entry);
        if let Some(old) = view.history.len().checked_sub(RECENT_FRAMES + 1) {
            view.history[old].forget_frames();
        }
        reached
    }

    /// Sends what the last messages queued to up to `max` touched subscribers, one vectored
    /// write each; returns true while touched subscribers are left. Subscribers that now need
    /// a task (full socket, last words) are kept for [`Fanout::take_tend`].
    pub fn flush(&mut self, max: usize) -> bool {
        for _ in 0..max {
            let Some(sub) = self.dirty.pop_front() else {
                break;
            };
            sub.flush();
            if sub.wants_task() {
                self.tend.push(sub);
            }
        }
        !self.dirty.is_empty()
    }

    /// True when queued frames wait for a flush.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The subscribers the last flush left needing a task.
    pub fn take_tend(&mut self) -> Vec<Rc<Outbox>> {
        std::mem::take(&mut self.tend)
    }

    /// Drops ended subscribers from the table and ends those whose peer has gone; queues the
    /// keep-alive comment for SSE subscribers that had nothing sent for more than
    /// `keepalive_after` sweeps (0: never); returns how many were dropped. Run every few
    /// seconds: idle subscribers have no task that would notice a closed connection, and a
    /// timer per subscriber would cost more than this pass over them.
    pub fn sweep(&mut self, stats: &CoreStats, keepalive_after: u32) -> usize {
        let mut dropped = 0;
        let keepalive: Frame = Rc::from(KEEPALIVE);
        let dirty = &mut self.dirty;
        for view in self.views.values_mut() {
            let before = view.subscribers.len();
            view.subscribers.retain(|sub| {
                if sub.end().is_none() && sub.peer_gone() {
                    sub.finish(End::PeerGone);
                }
                if sub.end().is_some() {
                    return false;
                }
                if sub.encoding == Encoding::Sse && sub.quiet_for(keepalive_after) {
                    sub.push(keepalive.clone());
                    if sub.mark_dirty() {
                        dirty.push_back(sub.clone());
                    }
                }
                true
            });
            dropped += before - view.subscribers.len();
        }
        self.count_live(stats);
        dropped
    }

    /// Starts a subscription: queues the status (or, with `since`, every event after it)
    /// and registers the outbox for live events when the match is live, or (v2, SSE) not
    /// started.
    /// `None` when the match is unknown.
    pub fn subscribe(
        &mut self,
        id: &str,
        outbox: &Rc<Outbox>,
        since: Option<u64>,
    ) -> Option<Subscribed> {
        let view = self.views.get_mut(id)?;
        let encoding = outbox.encoding;
        if self.draining && !stays_while_draining(encoding) {
            // Sent away at once: a resume (what it is, or what it becomes) belongs elsewhere.
            outbox.finish(End::Draining);
            return Some(Subscribed::Done);
        }
        match since {
            Some(seq) => {
                for entry in view.since(seq) {
                    outbox.push(entry.frame(encoding));
                }
            }
            None => outbox.push(view.status_frame(encoding)),
        }
        let period = view.state.period;
        let stays = match period {
            Period::Ended => false,
            Period::NotStarted => encoding.waits_for_start(),
            _ => true,
        };
        if stays {
            view.subscribers.push(outbox.clone());
            Some(Subscribed::Live)
        } else {
            outbox.finish(End::Finished);
            Some(Subscribed::Done)
        }
    }
}

/// True for the subscribers a draining node keeps: version 1, which cannot resume elsewhere.
fn stays_while_draining(encoding: Encoding) -> bool {
    encoding == Encoding::V1
}

#[cfg(test)]
mod tests;
