//! What `fanout` publishes, per system: the bytes of each publish ([`Sink`]) and what
//! publishing did ([`Published`]). When each publish goes is [`crate::publisher::flow`]'s business; the
//! loop that writes them pipelined and reads the answers is [`crate::publisher::pipeline`].
//!
//! Every event carries its stamp (scheduled send time when paced, actual send time with the
//! window): in a matchstream comment `t=<ns since the epoch>` (padded to `--payload` bytes;
//! warm-up events say `w=` instead, so no subscriber measures them), in a Redis or NATS
//! payload `<seq> <c|w|s> <ns> <padding>` as long as matchstream's frame.

use std::collections::BTreeMap;

use matchstream_client::{write_request, Url};
use matchstream_protocol::api::posted_event_body;
use matchstream_protocol::{EventKind, PostedEvent};

use crate::figures::latency::Summary;
use crate::publisher::flow::Publish;
use crate::wire::framing::STAMP_PREFIX;
use crate::wire::payload::{self, Kind};
use crate::wire::{nats, resp};

/// Prefix of a warm-up event's comment (not a stamp: not measured).
pub const WARMUP_PREFIX: &str = "w=";

/// Where events are published, and how.
#[derive(Debug, Clone)]
pub enum Sink {
    /// `POST /1/match/<id>/events` with this token.
    Matchstream {
        /// The API.
        api: Url,
        /// The watcher's token.
        token: String,
        /// Comment length (`--payload`).
        comment_len: usize,
    },
    /// `PUBLISH <channel> <payload>`.
    Redis {
        /// Payload size in bytes.
        payload: usize,
    },
    /// `PUB <subject> <payload>` (verbose: every PUB answered `+OK`).
    Nats {
        /// Payload size in bytes.
        payload: usize,
    },
}

impl Sink {
    /// Appends what opens a publishing connection; true if it is answered like a publish.
    pub fn handshake(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Sink::Nats { .. } => {
                nats::connect(true, "matchstream-bench-pub", out);
                true
            }
            Sink::Matchstream { .. } | Sink::Redis { .. } => false,
        }
    }

    /// Appends the request publishing `p` on `channel`.
    pub fn encode(&self, channel: &str, p: &Publish, out: &mut Vec<u8>) {
        match self {
            Sink::Matchstream {
                api,
                token,
                comment_len,
            } => {
                let mut e = PostedEvent::new(if p.kind == Kind::Stop {
                    EventKind::Stop
                } else {
                    EventKind::Comment
                });
                match p.kind {
                    Kind::Measured => e.comment = Some(comment(p.stamp_ns, *comment_len)),
                    Kind::Warmup => e.comment = Some(warmup_comment(p.stamp_ns, *comment_len)),
                    Kind::Stop => {}
                }
                let path = format!("{}/1/match/{channel}/events", api.prefix());
                let body = posted_event_body(&e);
                write_request(
                    "POST",
                    api.host_header(),
                    &path,
                    Some(token),
                    Some(&body),
                    true,
                    out,
                );
            }
            Sink::Redis { payload: size } => {
                let data = payload::encode(p.seq, p.kind, p.stamp_ns, *size);
                resp::command(&[b"PUBLISH", channel.as_bytes(), &data], out);
            }
            Sink::Nats { payload: size } => {
                let data = payload::encode(p.seq, p.kind, p.stamp_ns, *size);
                nats::publish(channel, &data, out);
            }
        }
    }
}

/// The comment text of a measured matchstream event stamped `ns`, padded to `len` bytes.
pub fn comment(ns: u64, len: usize) -> String {
    pad(format!("{STAMP_PREFIX}{ns:019} "), len)
}

/// The comment of a warm-up event: as long as a measured one, but no stamp.
pub fn warmup_comment(ns: u64, len: usize) -> String {
    pad(format!("{WARMUP_PREFIX}{ns:019} "), len)
}

fn pad(mut c: String, len: usize) -> String {
    while c.len() < len {
        c.push('x');
    }
    c
}

/// What publishing did in one run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Published {
    /// Events written to the server (warm-up included, stops not).
    pub events_sent: u64,
    /// Events the server accepted (201, a PUBLISH's integer, NATS `+OK`).
    pub events_ok: u64,
    /// Stops the server accepted.
    pub stops_ok: u64,
    /// Publishes refused, by status (HTTP code, `error` for a RESP or NATS error reply).
    pub refused: BTreeMap<String, u64>,
    /// Publishes that got no answer, by kind (`reset`, `closed_early`, `timeout`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Events and stops never written (time limit, a stalled window).
    pub unsent: u64,
    /// Paced: R × M events per second; null with the window.
    pub target_events_per_second: Option<f64>,
    /// Events per second achieved: paced, the target scaled by the share of events written
    /// and by the schedule's span over the span it took (t0 to the last event written, less
    /// the least delay any event had: a constant delay is latency, a growing one is a missed
    /// rate); with the window, events written over the time from t0 to the last one.
    pub achieved_events_per_second: f64,
    /// Paced: achieved as a percentage of the target.
    pub achieved_percent: Option<f64>,
    /// Events per second the server accepted: like `achieved_events_per_second`, with the
    /// times the answers were read.
    pub accepted_events_per_second: f64,
    /// Paced: accepted as a percentage of the target.
    pub accepted_percent: Option<f64>,
    /// Paced: the most any event was written after its scheduled time, in ms.
    pub max_lag_ms: f64,
    /// Paced: the most any event's answer came after its scheduled time, in ms.
    pub max_answer_lag_ms: f64,
    /// Publish round trip: request written to its answer read.
    pub latency: Summary,
    /// Seconds from t0 to the last event written.
    pub seconds: f64,
    /// Why publishing stopped early, if it did.
    pub stalled: Option<String>,
}

impl Published {
    /// Problems with this publishing, as sentences (empty when all went well).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let refused: u64 = self.refused.values().sum();
        if refused > 0 {
            out.push(format!(
                "{refused} publishes refused ({})",
                crate::figures::report::counts(&self.refused)
            ));
        }
        let errors: u64 = self.errors.values().sum();
        if errors > 0 {
            out.push(format!(
                "{errors} publishes unanswered ({})",
                crate::figures::report::counts(&self.errors)
            ));
        }
        if self.unsent > 0 {
            out.push(format!("{} publishes never sent", self.unsent));
        }
        if let Some(why) = &self.stalled {
            out.push(format!("publishing stopped: {why}"));
        }
        let Some(target) = self.target_events_per_second else {
            return out;
        };
        if let Some(pct) = self.achieved_percent.filter(|p| *p < 95.0) {
            out.push(format!(
                "the publisher achieved {:.1} of {target:.1} events/s ({pct:.1} %, below 95 %; \
                 it fell {:.0} ms behind its schedule)",
                self.achieved_events_per_second, self.max_lag_ms
            ));
        }
        out
    }

    /// What is worth a warning without failing the run: the server answering slower than the
    /// schedule (its delay shows in the latencies, measured from the scheduled times; make it
    /// fail with `--fail-on accepted>=95`).
    pub fn warnings(&self) -> Vec<String> {
        match (self.target_events_per_second, self.accepted_percent) {
            (Some(target), Some(pct)) if pct < 95.0 => vec![format!(
                "the server accepted {:.1} of {target:.1} events/s ({pct:.1} %; its answers fell \
                 {:.0} ms behind the schedule)",
                self.accepted_events_per_second, self.max_answer_lag_ms
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn publish(kind: Kind, seq: u64) -> Publish {
        Publish {
            channel: 0,
            index: seq - 2,
            seq,
            kind,
            stamp_ns: 1_700_000_000_000_000_000,
            due: Instant::now(),
        }
    }

    #[test]
    fn comments_carry_a_parsable_stamp() {
        let c = comment(1_700_000_000_000_000_000, 40);
        assert_eq!(c.len(), 40);
        assert!(c.starts_with("t=1700000000000000000 x"));
        assert_eq!(comment(5, 0), "t=0000000000000000005 ");
        assert_eq!(warmup_comment(5, 0).len(), comment(5, 0).len());
        assert!(!warmup_comment(5, 0).starts_with(STAMP_PREFIX));
    }

    #[test]
    fn each_system_gets_its_request() {
        let api = Url::parse("http://127.0.0.1:8888").expect("url");
        let m = Sink::Matchstream {
            api,
            token: "T".into(),
            comment_len: 0,
        };
        let mut out = Vec::new();
        m.encode("a-b-2011-09-13", &publish(Kind::Measured, 2), &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("POST /1/match/a-b-2011-09-13/events HTTP/1.1\r\n"));
        assert!(text.contains("t=1700000000000000000"), "{text}");
        let mut out = Vec::new();
        m.encode("a-b-2011-09-13", &publish(Kind::Stop, 9), &mut out);
        assert!(String::from_utf8_lossy(&out).contains("stop"));
        assert!(!m.handshake(&mut Vec::new()));

        let mut out = Vec::new();
        Sink::Redis { payload: 30 }.encode("ch", &publish(Kind::Warmup, 3), &mut out);
        assert!(out.starts_with(b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$30\r\n3 w 17"));

        let n = Sink::Nats { payload: 30 };
        let mut out = Vec::new();
        n.encode("ch", &publish(Kind::Measured, 4), &mut out);
        assert!(out.starts_with(b"PUB ch 30\r\n4 c 17"));
        assert!(out.ends_with(b"x\r\n"));
        let mut out = Vec::new();
        assert!(n.handshake(&mut out));
        assert!(out.starts_with(b"CONNECT {\"verbose\":true"));
    }

    #[test]
    fn problems_name_refusals_errors_and_a_missed_rate() {
        assert!(Published::default().problems().is_empty());
        let mut p = Published {
            target_events_per_second: Some(100.0),
            achieved_events_per_second: 94.0,
            achieved_percent: Some(94.0),
            accepted_percent: Some(90.0),
            ..Published::default()
        };
        p.refused.insert("404".into(), 3);
        p.errors.insert("reset".into(), 1);
        let text = p.problems().join("; ");
        assert!(text.contains("3 publishes refused (404 3)"), "{text}");
        assert!(text.contains("1 publishes unanswered"), "{text}");
        assert!(text.contains("below 95 %"), "{text}");
        assert!(text.contains("the publisher achieved"), "{text}");
        p.achieved_percent = Some(95.0);
        assert!(!p.problems().join(";").contains("below"));
        let warned = p.warnings().join("; ");
        assert!(
            warned.contains("the server accepted 0.0 of 100.0"),
            "{warned}"
        );
        p.accepted_percent = Some(99.0);
        assert!(p.warnings().is_empty());
    }
}
