//! The match table's own paths: a gap, a snapshot merged into a known match, `SINCE` past the
//! end and on an ended match. Subscribers are outboxes on one end of a socket pair; what they
//! were sent is read from the other end.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;

use matchstream_protocol::frame::{render_event, render_status, Version};
use matchstream_protocol::script::{parse_script, SAMPLE};
use matchstream_protocol::state::apply;
use matchstream_protocol::{Event, EventData, EventKind, Match};

use super::*;
use crate::outbox::{End, Outbox};
use crate::stats::CoreStats;

/// The sample match, created (not started).
fn created() -> Match {
    let script = parse_script(SAMPLE).expect("sample parses");
    Match::create(
        script.new_match,
        1_315_000_000_000,
        matchstream_protocol::Incarnation::UNSET,
    )
}

fn event(m: &Match, seq: u64, kind: EventKind) -> Event {
    Event {
        match_id: m.id.clone(),
        seq,
        timestamp_ms: 1_315_000_000_000 + seq * 1000,
        kind,
        data: EventData {
            comment: (kind == EventKind::Comment).then(|| format!("comment {seq}")),
            ..EventData::default()
        },
    }
}

/// A table holding `m` after `events` (seq 1 is `start`, then comments).
fn table_with(events: usize) -> (Fanout, Match, Vec<Arc<Event>>) {
    let mut m = created();
    let mut history = Vec::new();
    for seq in 1..=events as u64 {
        let kind = if seq == 1 {
            EventKind::Start
        } else {
            EventKind::Comment
        };
        let e = event(&m, seq, kind);
        apply(&mut m, &e);
        history.push(Arc::new(e));
    }
    let record = MatchRecord {
        state: Arc::new(m.clone()),
        history: history.clone(),
    };
    (Fanout::new(&[record]), m, history)
}

fn subscriber(encoding: impl Into<Encoding>) -> (Rc<Outbox>, UnixStream) {
    let (a, b) = UnixStream::pair().expect("pair");
    b.set_nonblocking(true).expect("nonblocking");
    let out = Outbox::new(
        a.into(),
        encoding.into(),
        1 << 20,
        Arc::new(CoreStats::default()),
    );
    (Rc::new(out), b)
}

/// What the subscriber has been sent so far.
fn received(peer: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = peer.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn frames(events: &[&Event], version: Version) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        render_event(e, version, &mut out);
    }
    out
}

/// Applies an event as the bus would bring it, and sends what it queued.
fn deliver(table: &mut Fanout, m: &mut Match, e: &Event) {
    apply(m, e);
    let stats = CoreStats::default();
    table.apply(
        BusMsg::Event {
            event: Arc::new(e.clone()),
            state: Arc::new(m.clone()),
        },
        &stats,
    );
    while table.flush(256) {}
}

#[test]
fn since_past_the_end_of_a_live_match_sends_nothing_then_every_new_event() {
    let (mut table, mut m, _) = table_with(3);
    let (out, mut peer) = subscriber(Version::V2);
    let id = m.id.clone();
    assert_eq!(
        table.subscribe(id.as_str(), &out, Some(10)),
        Some(Subscribed::Live)
    );
    out.flush();
    assert!(
        received(&mut peer).is_empty(),
        "nothing stored after seq 10"
    );
    let e4 = event(&m, 4, EventKind::Comment);
    deliver(&mut table, &mut m, &e4);
    assert_eq!(received(&mut peer), frames(&[&e4], Version::V2));
}

#[test]
fn since_on_an_ended_match_sends_the_rest_and_ends() {
    let (mut table, mut m, history) = table_with(4);
    let stop = event(&m, 5, EventKind::Stop);
    deliver(&mut table, &mut m, &stop);
    let (out, mut peer) = subscriber(Version::V2);
    assert_eq!(
        table.subscribe(m.id.as_str(), &out, Some(2)),
        Some(Subscribed::Done)
    );
    assert_eq!(out.end(), Some(End::Finished));
    out.flush();
    assert_eq!(
        received(&mut peer),
        frames(&[&history[2], &history[3], &stop], Version::V2)
    );
    // Past the end of an ended match: nothing, and the end.
    let (out, mut peer) = subscriber(Version::V2);
    assert_eq!(
        table.subscribe(m.id.as_str(), &out, Some(5)),
        Some(Subscribed::Done)
    );
    out.flush();
    assert!(received(&mut peer).is_empty());
}

#[test]
fn without_since_the_status_comes_first_then_live_events_once_each() {
    let (mut table, mut m, _) = table_with(2);
    let (v1, mut peer1) = subscriber(Version::V1);
    let (v2, mut peer2) = subscriber(Version::V2);
    for out in [&v1, &v2] {
        assert_eq!(
            table.subscribe(m.id.as_str(), out, None),
            Some(Subscribed::Live)
        );
        out.flush();
    }
    let mut status1 = Vec::new();
    render_status(&m, Version::V1, &mut status1);
    let mut status2 = Vec::new();
    render_status(&m, Version::V2, &mut status2);
    assert_eq!(received(&mut peer1), status1);
    assert_eq!(received(&mut peer2), status2);
    let e3 = event(&m, 3, EventKind::Comment);
    deliver(&mut table, &mut m, &e3);
    // The same event again (a feed's retry) is not sent twice.
    let stats = CoreStats::default();
    table.apply(
        BusMsg::Event {
            event: Arc::new(e3.clone()),
            state: Arc::new(m.clone()),
        },
        &stats,
    );
    while table.flush(256) {}
    assert_eq!(received(&mut peer1), frames(&[&e3], Version::V1));
    assert_eq!(received(&mut peer2), frames(&[&e3], Version::V2));
}

#[test]
fn a_snapshot_of_a_known_match_delivers_only_the_events_it_lacked() {
    let (mut table, mut m, mut history) = table_with(2);
    let (out, mut peer) = subscriber(Version::V2);
    table.subscribe(m.id.as_str(), &out, Some(2));
    out.flush();
    assert!(received(&mut peer).is_empty());
    for seq in 3..=5 {
        let e = event(&m, seq, EventKind::Comment);
        apply(&mut m, &e);
        history.push(Arc::new(e));
    }
    let stats = CoreStats::default();
    table.apply(
        BusMsg::Snapshot(MatchRecord {
            state: Arc::new(m.clone()),
            history: history.clone(),
        }),
        &stats,
    );
    while table.flush(256) {}
    let want: Vec<&Event> = history[2..].iter().map(|e| &**e).collect();
    assert_eq!(received(&mut peer), frames(&want, Version::V2));
    let view = table.get(m.id.as_str()).expect("view");
    assert_eq!(view.last_seq(), 5);
    assert_eq!(*view.state, m);
}

#[test]
fn an_event_past_a_gap_is_delivered_and_a_resume_finds_events_by_seq() {
    let (mut table, mut m, history) = table_with(2);
    let (out, mut peer) = subscriber(Version::V2);
    table.subscribe(m.id.as_str(), &out, Some(2));
    let e5 = event(&m, 5, EventKind::Comment);
    deliver(&mut table, &mut m, &e5);
    assert_eq!(received(&mut peer), frames(&[&e5], Version::V2));
    // A late event behind the gap is not delivered out of order.
    let e3 = event(&m, 3, EventKind::Comment);
    deliver(&mut table, &mut m, &e3);
    assert!(received(&mut peer).is_empty());
    let view = table.get(m.id.as_str()).expect("view");
    assert_eq!(view.last_seq(), 5);
    let seqs = |since| -> Vec<u64> { view.since(since).iter().map(|e| e.event.seq).collect() };
    assert_eq!(seqs(0), vec![1, 2, 5]);
    assert_eq!(seqs(2), vec![5]);
    assert_eq!(seqs(3), vec![5], "SINCE inside the gap starts after it");
    assert!(seqs(5).is_empty());
    assert_eq!(history.len(), 2);
}

#[test]
fn a_cancelled_match_ends_its_subscribers_and_leaves_the_table() {
    let (mut table, m, _) = table_with(2);
    let (out, _peer) = subscriber(Version::V1);
    table.subscribe(m.id.as_str(), &out, None);
    let stats = CoreStats::default();
    let before = table.listing();
    table.apply(BusMsg::Cancelled(m.id.clone()), &stats);
    assert_eq!(out.end(), Some(End::Cancelled));
    assert!(table.get(m.id.as_str()).is_none());
    assert_ne!(table.listing(), before, "the listing is rendered again");
}

#[test]
fn only_recent_events_keep_their_frames_and_old_ones_render_the_same_bytes() {
    let total = RECENT_FRAMES + 40;
    let (mut table, mut m, history) = table_with(total);
    let view = table.get(m.id.as_str()).expect("view");
    // Loaded from the store: only the newest keep frames.
    let kept: Vec<bool> = view.history.iter().map(Entry::is_rendered).collect();
    assert_eq!(kept.iter().filter(|k| **k).count(), RECENT_FRAMES);
    assert!(kept[total - RECENT_FRAMES..].iter().all(|k| *k));
    for (entry, event) in view.history.iter().zip(&history) {
        for version in [Version::V1, Version::V2] {
            let want = frames(&[event], version);
            assert_eq!(&entry.frame(version.into())[..], &want[..]);
            let mut out = b"before".to_vec();
            entry.write_frame(version.into(), &mut out);
            assert_eq!(&out[6..], &want[..]);
        }
    }
    // Each live event pushes the oldest kept one out.
    let e = event(&m, total as u64 + 1, EventKind::Comment);
    deliver(&mut table, &mut m, &e);
    let view = table.get(m.id.as_str()).expect("view");
    let kept = view.history.iter().filter(|e| e.is_rendered()).count();
    assert_eq!(kept, RECENT_FRAMES);
    assert!(view.history.last().expect("last").is_rendered());
    assert!(!view.history[total - RECENT_FRAMES].is_rendered());
}

#[test]
fn sse_subscribers_share_the_fanout_and_their_frames_are_rendered_only_for_them() {
    let (mut table, mut m, history) = table_with(2);
    let id = m.id.clone();
    assert!(
        table.get(id.as_str()).expect("view").history[0]
            .frames
            .borrow()[slot(Encoding::Sse)]
        .is_none(),
        "no SSE subscriber, no SSE rendering"
    );
    let (tcp, mut tcp_peer) = subscriber(Version::V2);
    let (sse, mut sse_peer) = subscriber(Encoding::Sse);
    let (resumed, mut resumed_peer) = subscriber(Encoding::Sse);
    table.subscribe(id.as_str(), &tcp, None);
    table.subscribe(id.as_str(), &sse, None);
    table.subscribe(id.as_str(), &resumed, Some(1));
    for out in [&tcp, &sse, &resumed] {
        out.flush();
    }
    let mut status = Vec::new();
    render_status(&m, Version::V2, &mut status);
    assert_eq!(received(&mut tcp_peer), status);
    let mut status = Vec::new();
    matchstream_protocol::sse::render_status(&m, &mut status);
    assert_eq!(received(&mut sse_peer), status);
    let mut backlog = Vec::new();
    matchstream_protocol::sse::render_event(&history[1], &mut backlog);
    assert_eq!(received(&mut resumed_peer), backlog);
    let e3 = event(&m, 3, EventKind::Comment);
    apply(&mut m, &e3);
    table.apply(
        BusMsg::Event {
            event: Arc::new(e3.clone()),
            state: Arc::new(m.clone()),
        },
        &CoreStats::default(),
    );
    let shared = table.get(id.as_str()).expect("view").history[2]
        .frame(Encoding::Sse)
        .clone();
    let mut want = Vec::new();
    matchstream_protocol::sse::render_event(&e3, &mut want);
    assert_eq!(&shared[..], &want[..]);
    assert_eq!(
        Rc::strong_count(&shared),
        4,
        "one rendering, queued for both SSE subscribers (the table's, this test's, two queues)"
    );
    while table.flush(256) {}
    assert_eq!(Rc::strong_count(&shared), 2, "sent, the queues let go");
    assert_eq!(received(&mut sse_peer), want);
    assert_eq!(received(&mut resumed_peer), want);
    assert_eq!(received(&mut tcp_peer), frames(&[&e3], Version::V2));
}

#[test]
fn the_sweep_sends_the_keepalive_to_quiet_sse_streams_only() {
    let (mut table, m, _) = table_with(1);
    let (tcp, mut tcp_peer) = subscriber(Version::V2);
    let (sse, mut sse_peer) = subscriber(Encoding::Sse);
    for out in [&tcp, &sse] {
        table.subscribe(m.id.as_str(), out, None);
        out.flush();
    }
    received(&mut tcp_peer);
    received(&mut sse_peer);
    let stats = CoreStats::default();
    let sweep = |table: &mut Fanout| {
        table.sweep(&stats, 2);
        while table.flush(256) {}
    };
    // Nothing sent for more than two sweeps: the third sends the comment.
    sweep(&mut table);
    sweep(&mut table);
    assert!(received(&mut sse_peer).is_empty());
    sweep(&mut table);
    assert_eq!(received(&mut sse_peer), b":\n\n");
    assert!(
        received(&mut tcp_peer).is_empty(),
        "TCP streams stay silent"
    );
    // The comment counts as output: the next one comes three sweeps later.
    sweep(&mut table);
    sweep(&mut table);
    assert!(received(&mut sse_peer).is_empty());
    sweep(&mut table);
    assert_eq!(received(&mut sse_peer), b":\n\n");
    // 0 turns it off.
    for _ in 0..5 {
        table.sweep(&stats, 0);
    }
    while table.flush(256) {}
    assert!(received(&mut sse_peer).is_empty());
}

#[test]
fn shutdown_notices_speak_each_subscribers_encoding() {
    let (mut table, m, _) = table_with(1);
    let (v1, mut v1_peer) = subscriber(Version::V1);
    let (sse, mut sse_peer) = subscriber(Encoding::Sse);
    for out in [&v1, &sse] {
        table.subscribe(m.id.as_str(), out, None);
        out.flush();
    }
    received(&mut v1_peer);
    received(&mut sse_peer);
    table.apply(BusMsg::Shutdown, &CoreStats::default());
    while table.flush(256) {}
    assert_eq!(received(&mut v1_peer), b"ERROR: server shutting down\r\n");
    assert_eq!(
        received(&mut sse_peer),
        b"event: error\ndata: {\"error\":\"server shutting down\"}\n\n"
    );
}

#[test]
fn the_live_matches_gauge_counts_matches_with_subscribers_on_table_changes() {
    let (mut table, m, _) = table_with(1);
    let stats = CoreStats::default();
    let (out, _peer) = subscriber(Version::V2);
    table.subscribe(m.id.as_str(), &out, None);
    // Another match appears (a table change): one of the two has a subscriber.
    let mut other = created();
    other.id = matchstream_protocol::MatchId::parse("abc-zed-2011-09-10").expect("id");
    table.apply(BusMsg::Created(Arc::new(other.clone())), &stats);
    assert_eq!(stats.snapshot().live_matches, 1);
    let (out2, _peer2) = subscriber(Version::V2);
    table.subscribe(other.id.as_str(), &out2, None);
    table.sweep(&stats, 0);
    assert_eq!(stats.snapshot().live_matches, 2);
    table.apply(BusMsg::Cancelled(other.id.clone()), &stats);
    assert_eq!(stats.snapshot().live_matches, 1);
}

#[test]
fn flush_writes_to_at_most_max_subscribers_and_says_whether_any_wait() {
    let (mut table, mut m, _) = table_with(1);
    let subs: Vec<_> = (0..3).map(|_| subscriber(Version::V2)).collect();
    for (out, _) in &subs {
        table.subscribe(m.id.as_str(), out, Some(1));
    }
    assert!(
        !table.has_dirty(),
        "subscribing queues nothing for the table's flush"
    );
    // Two events before the flush: each subscriber is touched twice, written to once.
    let (e2, e3) = (
        event(&m, 2, EventKind::Comment),
        event(&m, 3, EventKind::Comment),
    );
    for e in [&e2, &e3] {
        apply(&mut m, e);
        table.apply(
            BusMsg::Event {
                event: Arc::new(e.clone()),
                state: Arc::new(m.clone()),
            },
            &CoreStats::default(),
        );
    }
    assert!(table.has_dirty(), "the events queued frames");
    let want = frames(&[&e2, &e3], Version::V2);
    let served = |subs: &mut Vec<(Rc<Outbox>, UnixStream)>| {
        subs.iter_mut()
            .map(|(_, peer)| received(peer))
            .filter(|got| *got == want)
            .count()
    };
    let mut subs = subs;
    assert!(table.flush(2), "one subscriber is left");
    assert_eq!(served(&mut subs), 2);
    assert!(table.has_dirty());
    assert!(!table.flush(2), "none left");
    assert_eq!(served(&mut subs), 1);
    assert!(!table.has_dirty());
    assert!(!table.flush(2), "nothing to do");
}

#[test]
fn the_sweep_drops_ended_subscribers_and_those_whose_peer_left_and_counts_them() {
    let (mut table, m, _) = table_with(1);
    let (live, _live_peer) = subscriber(Version::V2);
    let (gone, gone_peer) = subscriber(Version::V2);
    let (ended, _ended_peer) = subscriber(Version::V1);
    for out in [&live, &gone, &ended] {
        table.subscribe(m.id.as_str(), out, Some(1));
    }
    drop(gone_peer);
    ended.finish(End::TooSlow);
    let stats = CoreStats::default();
    assert_eq!(table.sweep(&stats, 0), 2);
    assert_eq!(gone.end(), Some(End::PeerGone));
    assert_eq!(live.end(), None);
    let view = table.get(m.id.as_str()).expect("view");
    assert_eq!(view.subscriber_count(), 1);
    assert_eq!(table.sweep(&stats, 0), 0, "nothing more to drop");
}

#[test]
fn a_v2_subscriber_of_a_match_not_started_gets_its_status_then_the_start() {
    let (mut table, mut m, _) = table_with(0);
    let (v1, mut v1_peer) = subscriber(Version::V1);
    let (v2, mut v2_peer) = subscriber(Version::V2);
    assert_eq!(
        table.subscribe(m.id.as_str(), &v1, None),
        Some(Subscribed::Done),
        "v1 gets the status and the end"
    );
    assert_eq!(
        table.subscribe(m.id.as_str(), &v2, None),
        Some(Subscribed::Live)
    );
    for out in [&v1, &v2] {
        out.flush();
    }
    let status = |m: &Match, version| {
        let mut out = Vec::new();
        render_status(m, version, &mut out);
        out
    };
    assert_eq!(received(&mut v1_peer), status(&m, Version::V1));
    assert_eq!(received(&mut v2_peer), status(&m, Version::V2));
    // The match's first event, into an empty history.
    let start = event(&m, 1, EventKind::Start);
    deliver(&mut table, &mut m, &start);
    assert_eq!(received(&mut v2_peer), frames(&[&start], Version::V2));
    assert!(received(&mut v1_peer).is_empty());
    assert_eq!(table.get(m.id.as_str()).expect("view").last_seq(), 1);
}

#[test]
fn the_renderings_of_a_match_follow_its_state() {
    let (mut table, mut m, history) = table_with(2);
    let history_json = |events: &[&Event]| {
        let mut out = Vec::new();
        matchstream_protocol::api::write_history(events, &mut out);
        out
    };
    let check = |table: &Fanout, m: &Match, events: &[&Event]| {
        let view = table.get(m.id.as_str()).expect("view");
        for version in [Version::V1, Version::V2] {
            let mut want = Vec::new();
            render_status(m, version, &mut want);
            assert_eq!(&view.status_frame(version.into())[..], &want[..]);
        }
        let mut want = Vec::new();
        matchstream_protocol::sse::render_status(m, &mut want);
        assert_eq!(&view.status_frame(Encoding::Sse)[..], &want[..]);
        assert_eq!(
            &view.json()[..],
            &matchstream_protocol::api::match_body(m)[..]
        );
        assert_eq!(&view.history_json()[..], &history_json(events)[..]);
        assert_eq!(view.history_json_since(1), history_json(&events[1..]));
    };
    let mut events: Vec<&Event> = history.iter().map(|e| &**e).collect();
    check(&table, &m, &events);
    // Rendered once per state: a change renders them again.
    let e3 = event(&m, 3, EventKind::Comment);
    deliver(&mut table, &mut m, &e3);
    events.push(&e3);
    check(&table, &m, &events);
}
