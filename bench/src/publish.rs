//! The fanout publisher: the bench as the watcher of every match (or the publisher of every
//! Redis channel), a [`Source`] for the request loop.
//!
//! Slot `k` of `P` owns matches `k, k+P, k+2P, ...` and posts their events in rounds: event
//! `j` of each of its matches, then `j+1`, ... With `--rate R` (events per second per match),
//! event `j` of match `m` of `M` is due `(j + m/M)/R` seconds after the start: the matches'
//! events are spread evenly over each period instead of arriving in bursts of M (real matches
//! do not score in step); with `max`, as fast as replies come. After the last round, one `stop` per match. Each event carries its send time, taken
//! just before the request is written: in a matchstream comment `t=<ns since the epoch>`
//! (padded to `--payload` bytes), in a Redis payload `<seq> c <ns> <padding>`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use matchstream_protocol::api::posted_event_body;
use matchstream_protocol::{EventKind, PostedEvent};

use crate::framing::STAMP_PREFIX;
use crate::httpc::{write_request, Url};
use crate::latency::Latency;
use crate::requests::{ErrorKind, Next, Reply, Source};
use crate::resp;
use crate::subscribe::realtime_ns;

/// Where events are published.
#[derive(Debug, Clone)]
pub enum Sink {
    /// `POST /1/match/<id>/events` with this token.
    Matchstream {
        /// The API.
        api: Url,
        /// The watcher's token.
        token: String,
    },
    /// `PUBLISH <channel> <payload>` of this many bytes.
    Redis {
        /// Payload size in bytes.
        payload: usize,
    },
}

/// What publishing did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Published {
    /// Events (not counting stops) the server accepted.
    pub events_ok: u64,
    /// Requests refused, by status.
    pub refused: BTreeMap<String, u64>,
    /// Requests that got no answer, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Round trip of the publishing requests.
    pub latency: crate::latency::Summary,
    /// Seconds from the first request to the last answer.
    pub seconds: f64,
    /// Accepted events per second.
    pub events_per_second: f64,
}

/// The publisher.
#[derive(Debug)]
pub struct Publisher<'a> {
    sink: Sink,
    channels: &'a [String],
    events: u64,
    rate: Option<f64>,
    slots: usize,
    comment_len: usize,
    start: Instant,
    /// Per slot: the round and the position in its matches.
    cursor: Vec<(u64, usize)>,
    /// Per slot: whether its request in flight is a stop.
    stopping: Vec<bool>,
    latency: Latency,
    out: Published,
    last_answer: Instant,
}

impl<'a> Publisher<'a> {
    /// A publisher of `events` events (plus a stop) to each of `channels` over `slots`
    /// connections, at `rate` per second per channel (None = max); matchstream comments are
    /// padded to `comment_len` bytes.
    pub fn new(
        sink: Sink,
        channels: &'a [String],
        events: u64,
        rate: Option<f64>,
        slots: usize,
        comment_len: usize,
    ) -> Publisher<'a> {
        let slots = slots.clamp(1, channels.len().max(1));
        let now = Instant::now();
        Publisher {
            sink,
            channels,
            events,
            rate,
            slots,
            comment_len,
            start: now,
            cursor: vec![(0, 0); slots],
            stopping: vec![false; slots],
            latency: Latency::new(),
            out: Published::default(),
            last_answer: now,
        }
    }

    /// Connections to use.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Marks the start (the rate's clock).
    pub fn begin(&mut self) {
        self.start = Instant::now();
        self.last_answer = self.start;
    }

    /// What was published.
    pub fn finish(mut self) -> Published {
        self.out.latency = self.latency.summary();
        self.out.seconds = self.last_answer.duration_since(self.start).as_secs_f64();
        self.out.events_per_second = self.out.events_ok as f64 / self.out.seconds.max(1e-9);
        self.out
    }

    fn owned(&self, slot: usize) -> usize {
        (self.channels.len() - slot).div_ceil(self.slots)
    }
}

/// The comment text of a measured matchstream event sent at `ns`, padded to `len` bytes.
pub fn comment(ns: u64, len: usize) -> String {
    let mut c = format!("{STAMP_PREFIX}{ns:019} ");
    while c.len() < len {
        c.push('x');
    }
    c
}

impl Source for Publisher<'_> {
    fn next(&mut self, slot: usize, now: Instant, out: &mut Vec<u8>) -> Next {
        let (round, pos) = self.cursor[slot];
        if round > self.events {
            return Next::Done;
        }
        let m = slot + pos * self.slots;
        if let (Some(rate), true) = (self.rate, round < self.events) {
            let offset = m as f64 / self.channels.len() as f64;
            let due =
                self.start + Duration::from_secs_f64((round as f64 + offset) / rate.max(1e-9));
            if now < due {
                return Next::Wait(due);
            }
        }
        let channel = &self.channels[m];
        let stop = round == self.events;
        let ns = realtime_ns();
        match &self.sink {
            Sink::Matchstream { api, token } => {
                let mut e = PostedEvent::new(if stop {
                    EventKind::Stop
                } else {
                    EventKind::Comment
                });
                if !stop {
                    e.comment = Some(comment(ns, self.comment_len));
                }
                let path = format!("{}/1/match/{channel}/events", api.prefix);
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
            Sink::Redis { payload } => {
                // Seqs mirror a started match: 1 is the start, events 2..=E+1, stop E+2.
                let p = resp::payload(round + 2, stop, ns, *payload);
                resp::command(&[b"PUBLISH", channel.as_bytes(), &p], out);
            }
        }
        self.stopping[slot] = stop;
        let next = if pos + 1 >= self.owned(slot) {
            (round + 1, 0)
        } else {
            (round, pos + 1)
        };
        self.cursor[slot] = next;
        Next::Send
    }

    fn reply(&mut self, slot: usize, reply: &Reply, latency: Duration) {
        self.latency.record(latency);
        self.last_answer = Instant::now();
        let accepted = match self.sink {
            Sink::Matchstream { .. } => reply.status == 201,
            Sink::Redis { .. } => reply.status == 200,
        };
        if !accepted {
            *self
                .out
                .refused
                .entry(reply.status.to_string())
                .or_default() += 1;
        } else if !self.stopping[slot] {
            self.out.events_ok += 1;
        }
    }

    fn error(&mut self, _slot: usize, kind: ErrorKind, _latency: Duration) {
        self.last_answer = Instant::now();
        *self.out.errors.entry(kind.key().to_owned()).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_carry_a_parsable_stamp() {
        let c = comment(1_700_000_000_000_000_000, 40);
        assert_eq!(c.len(), 40);
        assert!(c.starts_with("t=1700000000000000000 x"));
        assert_eq!(comment(5, 0), "t=0000000000000000005 ");
    }

    #[test]
    fn every_match_gets_its_events_then_a_stop() {
        let channels: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
        let mut p = Publisher::new(Sink::Redis { payload: 10 }, &channels, 3, None, 2, 0);
        let mut sent: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        let mut buf = Vec::new();
        for slot in 0..p.slots() {
            loop {
                buf.clear();
                match p.next(slot, Instant::now(), &mut buf) {
                    Next::Send => {
                        let text = String::from_utf8_lossy(&buf).into_owned();
                        let parts: Vec<&str> = text.split("\r\n").collect();
                        let stop = parts[6].split(' ').nth(1) == Some("s");
                        sent.entry(parts[4].to_owned()).or_default().push(stop);
                    }
                    Next::Done => break,
                    Next::Wait(_) => panic!("no rate, no wait"),
                }
            }
        }
        assert_eq!(sent.len(), 5);
        for (ch, s) in sent {
            assert_eq!(s, [false, false, false, true], "{ch}");
        }
    }

    #[test]
    fn a_rate_spaces_the_rounds_and_spreads_the_matches() {
        let channels = vec!["m0".to_owned(), "m1".to_owned()];
        let mut p = Publisher::new(Sink::Redis { payload: 10 }, &channels, 3, Some(10.0), 1, 0);
        p.begin();
        let start = Instant::now();
        let mut buf = Vec::new();
        assert_eq!(p.next(0, start, &mut buf), Next::Send);
        // m1's first event is due half a period (50 ms) after m0's.
        match p.next(0, start, &mut buf) {
            Next::Wait(t) => {
                let after = t.duration_since(start);
                assert!(after > Duration::from_millis(40) && after <= Duration::from_millis(50));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            p.next(0, start + Duration::from_millis(60), &mut buf),
            Next::Send
        );
        match p.next(0, start + Duration::from_millis(60), &mut buf) {
            Next::Wait(t) => assert!(t.duration_since(start) >= Duration::from_millis(90)),
            other => panic!("{other:?}"),
        }
    }
}
