//! What a shard of subscribers is asked to do ([`Plan`], sent whole to worker processes as
//! JSON) and what it reports ([`Outcome`], merged across shards: counts add up, histograms
//! merge exactly).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::figures::latency::Latency;
use crate::net::{Api, SourceIps};
use crate::subscribers::outcome::{FailureCounts, Order};
use crate::wire::decode::Protocol;

/// Where the subscribers connect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// Ask `GET /1/checkin` of this API, once per subscriber.
    Checkin(Api),
    /// Connect straight to these addresses, subscriber `i` to `addrs[i % len]`.
    Direct(Vec<SocketAddr>),
    /// Open the match's event stream (`GET /1/match/<id>/stream`) on these nodes' APIs,
    /// subscriber `i` on `apis[i % len]`, with no checkin (`fanout --transport sse`).
    Sse(Vec<Api>),
}

impl Target {
    /// Where the subscribers go, in words: `checkin via http://host:port`, the stream
    /// addresses, or `sse via http://host:port[,...]`.
    pub fn describe(&self) -> String {
        let list = |items: Vec<String>| items.join(",");
        match self {
            Target::Checkin(api) => format!("checkin via http://{}", api.url.host_header()),
            Target::Direct(addrs) => list(addrs.iter().map(ToString::to_string).collect()),
            Target::Sse(apis) => format!(
                "sse via {}",
                list(
                    apis.iter()
                        .map(|a| format!("http://{}{}", a.url.host_header(), a.url.prefix()))
                        .collect()
                )
            ),
        }
    }
}

/// Rounds of resumes (`soak`): each round, a share of the shard's streaming subscribers,
/// picked at random, disconnect and reconnect with `SINCE:<the last seq received whole>`
/// (version 2), their seq count going on across the reconnection.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resume {
    /// Milliseconds between rounds; the first round comes one period after every attempt of
    /// the shard has ended (its `Ready`).
    pub every_ms: u64,
    /// Percent of the shard's subscribers each round picks (of those streaming then).
    pub percent: f64,
    /// Milliseconds over which a round's resumes are spread evenly (0: all at once).
    pub spread_ms: u64,
    /// Seed of the picks; each shard mixes in the index of its first subscriber.
    pub seed: u64,
}

/// One shard's share of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// The protocol.
    pub protocol: Protocol,
    /// Where to connect.
    pub target: Target,
    /// Match ids (or Redis channels): subscriber `i` watches `channels[i % len]`.
    pub channels: Vec<String>,
    /// User ids are `<user_prefix><i>`.
    pub user_prefix: String,
    /// Global index of this shard's first subscriber.
    pub first: u64,
    /// Subscribers in this shard.
    pub count: u64,
    /// Most subscribers attempting at once.
    pub concurrency: u64,
    /// Bound of one checkin and of one connect, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Bound of the whole shard, in milliseconds.
    pub time_limit_ms: u64,
    /// Source addresses to rotate over.
    pub source_ips: Option<SourceIps>,
    /// Rounds of resumes, if any (`soak`).
    #[serde(default)]
    pub resume: Option<Resume>,
}

/// What a shard measured; shards merge into one.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Subscribers planned.
    pub planned: u64,
    /// Subscribers whose status arrived.
    pub connected: u64,
    /// Subscribers that ended well.
    pub ok: u64,
    /// Subscribers that failed.
    pub failed: u64,
    /// Failures by kind.
    pub failures: FailureCounts,
    /// `ERROR:` lines by reason.
    pub error_lines: BTreeMap<String, u64>,
    /// Framing violations by description.
    pub framing: BTreeMap<String, u64>,
    /// Measured (stamped) frames received.
    pub delivered: u64,
    /// Bytes the subscribers read: every answer head, status, event, keep-alive and error.
    #[serde(default)]
    pub bytes_received: u64,
    /// Frames whose seq was not above the last one seen.
    pub duplicated: u64,
    /// Frames whose seq skipped ahead (a gap at that moment).
    pub out_of_order: u64,
    /// Checkin round trips.
    pub checkin: Latency,
    /// Connect latency (connect call to established).
    pub connect: Latency,
    /// Time to status (connect call to complete status frame).
    pub status: Latency,
    /// Delivery latency (stamped POST time to complete frame).
    pub delivery: Latency,
    /// Realtime (ns since the epoch) of the first and last measured delivery.
    pub first_delivery_ns: u64,
    /// See `first_delivery_ns`.
    pub last_delivery_ns: u64,
    /// Most connections open at once.
    pub peak_open: u64,
    /// Connections open when every attempt had ended.
    pub open_at_ready: u64,
    /// Growth of the shard process's RSS from start to that moment, in bytes.
    pub rss_growth_bytes: u64,
    /// Seconds the shard ran.
    pub seconds: f64,
    /// CPU seconds of the shard's thread once every attempt had ended.
    #[serde(default)]
    pub cpu_at_ready: f64,
    /// CPU seconds of the shard's thread at its end.
    #[serde(default)]
    pub cpu_at_end: f64,
    /// Resumes done: a subscriber disconnected and sent its `SINCE` command again.
    #[serde(default)]
    pub resumes: u64,
}

impl Outcome {
    /// Counts a frame's place in its subscriber's seqs ([`crate::subscribers::outcome::track`]):
    /// a duplicate or a gap.
    pub fn count(&mut self, order: Order) {
        match order {
            Order::Duplicate => self.duplicated += 1,
            Order::Gap => self.out_of_order += 1,
            Order::First | Order::Next => {}
        }
    }

    /// Deliveries missing from `expected`: expected − (delivered − duplicated). A duplicate
    /// does not make up for a missing delivery.
    pub fn lost(&self, expected: u64) -> u64 {
        expected.saturating_sub(self.delivered.saturating_sub(self.duplicated))
    }

    /// The bench's RSS growth per connection open once every attempt had ended (none below
    /// 100 connections: too few to tell).
    pub fn rss_per_connection(&self) -> Option<f64> {
        (self.open_at_ready >= 100)
            .then(|| self.rss_growth_bytes as f64 / self.open_at_ready as f64)
    }

    /// Adds another shard's figures.
    pub fn merge(&mut self, o: &Outcome) {
        self.planned += o.planned;
        self.connected += o.connected;
        self.ok += o.ok;
        self.failed += o.failed;
        for (k, v) in &o.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.error_lines {
            *self.error_lines.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.framing {
            *self.framing.entry(k.clone()).or_default() += v;
        }
        self.delivered += o.delivered;
        self.bytes_received += o.bytes_received;
        self.duplicated += o.duplicated;
        self.out_of_order += o.out_of_order;
        self.checkin.merge(&o.checkin);
        self.connect.merge(&o.connect);
        self.status.merge(&o.status);
        self.delivery.merge(&o.delivery);
        if o.first_delivery_ns > 0
            && (self.first_delivery_ns == 0 || o.first_delivery_ns < self.first_delivery_ns)
        {
            self.first_delivery_ns = o.first_delivery_ns;
        }
        self.last_delivery_ns = self.last_delivery_ns.max(o.last_delivery_ns);
        self.peak_open += o.peak_open;
        self.open_at_ready += o.open_at_ready;
        self.rss_growth_bytes += o.rss_growth_bytes;
        self.seconds = self.seconds.max(o.seconds);
        self.cpu_at_ready += o.cpu_at_ready;
        self.cpu_at_end += o.cpu_at_end;
        self.resumes += o.resumes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::outcome::track;

    #[test]
    fn seqs_are_counted_across_resumes() {
        // One subscriber's sessions: the first opens with its status (seq 1), each later one
        // was resumed with SINCE:<the last seq it had whole>; events are seqs 2..=6 (5
        // expected). (sessions, SINCE sent at each resume, duplicated, out of order, lost)
        type Case = (&'static [&'static [u64]], &'static [u64], u64, u64, u64);
        let cases: [Case; 6] = [
            (&[&[1, 2, 3], &[4, 5, 6]], &[3], 0, 0, 0),
            (&[&[1, 2, 3], &[], &[4, 5, 6]], &[3, 3], 0, 0, 0), // nothing new, then more
            (&[&[1, 2, 3], &[3, 4, 5, 6]], &[3], 1, 0, 0),      // the last one again
            (&[&[1, 2, 3], &[5, 6]], &[3], 0, 1, 1),            // one skipped: lost
            (&[&[1, 2, 3], &[2, 3, 4], &[5, 6]], &[3, 4], 2, 0, 0), // SINCE ignored
            (&[&[1], &[2, 3, 4, 5, 6]], &[1], 0, 0, 0),         // resumed before any event
        ];
        for (sessions, sinces, dup, gaps, lost) in cases {
            let mut out = Outcome::default();
            let mut last = 0;
            let mut sent = Vec::new();
            for (i, session) in sessions.iter().enumerate() {
                if i > 0 {
                    sent.push(last); // what the resumed command carries
                }
                for &seq in *session {
                    out.count(track(&mut last, seq));
                    out.delivered += u64::from(seq > 1); // the status is no delivery
                }
            }
            assert_eq!(sent, sinces, "{sessions:?}");
            let got = (out.duplicated, out.out_of_order, out.lost(5));
            assert_eq!(got, (dup, gaps, lost), "{sessions:?}");
        }
    }

    #[test]
    fn merged_shards_add_their_delivery_counts() {
        let shard = |delivered, duplicated, out_of_order| Outcome {
            delivered,
            duplicated,
            out_of_order,
            ..Outcome::default()
        };
        let mut all = shard(10, 1, 2);
        all.merge(&shard(20, 3, 4));
        all.merge(&shard(5, 0, 1));
        assert_eq!(
            (all.delivered, all.duplicated, all.out_of_order),
            (35, 4, 7)
        );
    }
}
