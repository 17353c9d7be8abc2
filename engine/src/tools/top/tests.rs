//! `matchstream top`'s frames from recorded `/1/stats` bodies: the figures it computes, and
//! the screen ratatui draws of them (on a `TestBackend`).

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::{json, Value};

use super::frame::Frame;
use super::sample::{Sample, Stats};
use super::view;
use crate::stats::histogram::{Bound, LAG_MS, LATENCY_US};

/// A latency histogram (µs bounds) of `values`.
fn histogram(bounds: &[u64], values: &[u64]) -> Value {
    let buckets: Vec<u64> = bounds
        .iter()
        .map(|b| values.iter().filter(|v| *v <= b).count() as u64)
        .collect();
    json!({"count": values.len(), "sum": values.iter().sum::<u64>(), "le": bounds, "buckets": buckets})
}

/// A recorded `/1/stats` of node `id` at the `n`-th second of a run: `per_second` frames
/// and events a second, `cpu` CPU seconds a second per core.
fn recorded(id: &str, n: u64, feed: bool) -> Value {
    let flush: Vec<u64> = (0..n * 10)
        .map(|i| if i % 10 == 9 { 4_000 } else { 300 })
        .collect();
    json!({
        "node_id": id,
        "api": "127.0.0.1:8888",
        "cores": [
            {"core": 0, "stream_port": 9100, "subscribers": 1200, "live_matches": 2,
             "frames_sent": 2400 * n, "bytes_sent": 0, "slow_disconnects": 3, "bus_depth": 1,
             "sessions_total": 1300, "http_requests": 10, "bus_depth_peak": 7,
             "bus_depth_peak_60s": 40, "queued_bytes": 12_800, "cpu_seconds": 0.25 * n as f64,
             "publish_to_flush_us": histogram(LATENCY_US, &flush)},
            {"core": 1, "stream_port": 9101, "subscribers": 800, "live_matches": 1,
             "frames_sent": 1600 * n, "bytes_sent": 0, "slow_disconnects": 0, "bus_depth": 0,
             "sessions_total": 800, "http_requests": 12, "bus_depth_peak": 2,
             "bus_depth_peak_60s": 9, "queued_bytes": 0, "cpu_seconds": 0.125 * n as f64,
             "publish_to_flush_us": histogram(LATENCY_US, &flush)}
        ],
        "process": {"rss_bytes": 96 << 20, "open_files": 2017, "open_files_limit": 1_048_576,
                    "cpu_seconds": 0.5 * n as f64},
        "http": {"connections": 1, "refused": 0, "write_timeouts": 0},
        "store_rejected": 0,
        "cluster": [],
        "store": {"queue_depth": 0, "queue_depth_peak": 3, "queue_depth_peak_60s": 5,
                  "batches": 4 * n, "ops": 10 * n, "last_batch_size": 2,
                  "batch_size": histogram(&[1, 2, 4], &[]),
                  "commit_us": histogram(LATENCY_US, &vec![800; 4 * n as usize])},
        "feed": if feed {
            json!({"events": 20 * n, "last_lag_ms": 3, "gap_fills": 1, "gap_filled_events": 2,
                   "lag_ms": histogram(LAG_MS, &vec![3; 20 * n as usize])})
        } else { Value::Null },
        "requests": [{"route": "stats", "status": 200, "count": n}],
        "busiest_matches": [{"match": "elp-tig-2011-09-10", "subscribers": 1500},
                            {"match": "rma-fcb-2011-09-10", "subscribers": 500}]
    })
}

fn sample(url: &str, at: Instant, body: &Value) -> Sample {
    let stats: Stats = serde_json::from_value(body.clone()).expect("recorded stats parse");
    Sample {
        url: url.into(),
        at,
        stats: Ok(stats),
    }
}

/// Two rounds a second apart of one node (no Redis).
fn one_node() -> Frame {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(1);
    let before = [sample("http://n1", t0, &recorded("n1:8888", 4, false))];
    let now = [sample("http://n1", t1, &recorded("n1:8888", 5, false))];
    Frame::between(&before, &now)
}

#[test]
fn rates_come_from_two_answers_and_gauges_from_the_last() {
    let f = one_node();
    let n = &f.nodes[0];
    assert_eq!(n.id, "n1:8888");
    assert_eq!(f.subscribers(), 2000);
    assert_eq!(f.deliveries(), Some(4000.0));
    assert_eq!(n.cores[0].deliveries, Some(2400.0));
    assert_eq!(n.cores[0].cpu, Some(25.0));
    assert_eq!(
        n.total.cpu,
        Some(50.0),
        "the process's CPU, not the cores' sum"
    );
    assert_eq!((n.cores[0].bus_peak, n.total.bus_peak), (7, 7));
    assert_eq!(n.total.queued_bytes, 12_800);
    assert_eq!(n.total.slow, 3);
    // Ten events a second, one in ten at 4 ms: p99 in the 5 ms bucket.
    assert_eq!(n.cores[0].flush_p99, Some(Bound::AtMost(5_000)));
    assert_eq!(n.store.batches, Some(4.0));
    assert_eq!(n.store.batch_size, Some(2.5));
    assert_eq!(
        n.store.commit,
        (Some(Bound::AtMost(1_000)), Some(Bound::AtMost(1_000)))
    );
    assert_eq!(n.feed, None);
    assert_eq!(f.matches[0], ("elp-tig-2011-09-10".to_owned(), 1500));
}

#[test]
fn a_first_answer_alone_shows_gauges_and_no_rates() {
    let f = Frame::between(
        &[],
        &[sample(
            "http://n1",
            Instant::now(),
            &recorded("n1", 1, true),
        )],
    );
    let n = &f.nodes[0];
    assert_eq!(
        (n.total.subscribers, n.total.deliveries, n.total.cpu),
        (2000, None, None)
    );
    assert_eq!(n.store.batch_size, Some(2.0), "the last batch's size");
    assert_eq!(n.feed.as_ref().map(|f| f.events), Some(None));
}

#[test]
fn the_frame_is_drawn_with_every_figure_in_its_column() {
    let text = view::text(&one_node(), "matchstream top http://n1");
    let want = "\
matchstream top http://n1 · 1 node · 2 cores · 2,000 subscribers · 4000.0 deliveries/s

NODE / CORE             PORT      SUBS    DELIV/S BUS PEAK     QUEUED   SLOW   CPU%  FLUSH p99
n1:8888                          2,000     4000.0        7   12.5 KiB      3   50.0      <=5ms
  core 0                9100     1,200     2400.0        7   12.5 KiB      3   25.0      <=5ms
  core 1                9101       800     1600.0        2        0 B      0   12.5      <=5ms

NODE                         RSS         FILES STORE Q Q PEAK BATCH/S OPS/BATCH COMMIT p50 COMMIT p99
n1:8888                 96.0 MiB  2017/1048576       0      3     4.0       2.5      <=1ms      <=1ms

BUSIEST MATCHES                               SUBS
elp-tig-2011-09-10                           1,500
rma-fcb-2011-09-10                             500
";
    assert_eq!(text, want, "got:\n{text}");
    assert!(!text.contains('\u{1b}'), "no escape codes");
}

#[test]
fn a_cluster_shows_each_node_its_feed_and_the_nodes_that_did_not_answer() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(2);
    let before = [
        sample("http://a", t0, &recorded("a:8888", 2, true)),
        sample("http://b", t0, &recorded("b:8888", 2, true)),
    ];
    let mut now = vec![
        sample("http://a", t1, &recorded("a:8888", 4, true)),
        sample("http://b", t1, &recorded("b:8888", 4, true)),
    ];
    now.push(Sample {
        url: "http://c:8888".into(),
        at: t1,
        stats: Err("connection refused".into()),
    });
    let f = Frame::between(&before, &now);
    assert_eq!(f.nodes.len(), 2);
    assert_eq!(f.subscribers(), 4000);
    assert_eq!(
        f.matches[0],
        ("elp-tig-2011-09-10".to_owned(), 3000),
        "summed over nodes"
    );
    let feed = f.nodes[1].feed.clone().expect("b's feed");
    assert_eq!(feed.events, Some(20.0));
    assert_eq!(feed.lag_p99, Some(Bound::AtMost(5)));

    // Drawn on a terminal of 101 x 30, as the live view draws it.
    let mut terminal = Terminal::new(TestBackend::new(101, 30)).expect("terminal");
    terminal
        .draw(|frame| view::draw(frame, &f, "matchstream top http://a"))
        .expect("draw");
    let screen = view::buffer_text(terminal.backend().buffer());
    for line in [
        "matchstream top http://a · 2 nodes · 4 cores · 4,000 subscribers · 8000.0 deliveries/s",
        "a:8888                           2,000     4000.0        7   12.5 KiB      3   50.0      <=5ms",
        "b:8888                           2,000     4000.0        7   12.5 KiB      3   50.0      <=5ms",
        "REDIS FEED              EVENTS/S       LAG   LAG p99 GAP FILLS",
        "b:8888                      20.0       3ms     <=5ms         1",
        "elp-tig-2011-09-10                           3,000",
        "UNREACHABLE http://c:8888: connection refused",
    ] {
        assert!(screen.lines().any(|l| l == line), "{line:?} not in:\n{screen}");
    }
}

#[test]
fn stats_of_an_older_node_without_the_operations_figures_still_read() {
    let old = json!({"node_id": "old", "cores": [{"core": 0, "stream_port": 9100,
        "subscribers": 5, "frames_sent": 10}], "process": {"rss_bytes": 1}});
    let f = Frame::between(&[], &[sample("http://old", Instant::now(), &old)]);
    assert_eq!(f.subscribers(), 5);
    assert!(view::text(&f, "t").contains("BUSIEST MATCHES: none with subscribers"));
}

#[test]
fn numbers_read_as_people_write_them() {
    assert_eq!(view::count(0), "0");
    assert_eq!(view::count(999), "999");
    assert_eq!(view::count(1_234_567), "1,234,567");
    assert_eq!(view::bytes(512), "512 B");
    assert_eq!(view::bytes(3 << 20), "3.0 MiB");
    assert_eq!(view::latency_us(Some(Bound::AtMost(250))), "<=250us");
    assert_eq!(view::latency_us(Some(Bound::AtMost(2_500))), "<=2.5ms");
    assert_eq!(view::latency_us(Some(Bound::AtMost(1_000_000))), "<=1s");
    assert_eq!(view::latency_us(Some(Bound::Above(10_000_000))), ">10s");
    assert_eq!(view::latency_us(None), "-");
}
