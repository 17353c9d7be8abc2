//! How one simulated subscriber ends: the failure kinds the reports count, and the rule that
//! decides success from what the subscriber saw (fake_client's rule: the server hung up after
//! a complete `stop` frame, or right after the status of a match that is not live).

use std::collections::BTreeMap;

use matchstream_protocol::EventKind;

use crate::net::IoKind;
use crate::wire::framing::{Frame, Violation};

/// Why a subscriber failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// The connect was refused (`ECONNREFUSED`).
    ConnectRefused,
    /// The connect did not complete within `--connect-timeout` (or the kernel gave up).
    ConnectTimeout,
    /// The connect failed otherwise.
    ConnectError,
    /// Connected, but no status frame within the connect timeout (the server accepted late
    /// or not at all: a full accept queue completes handshakes the server never picks up).
    StatusTimeout,
    /// A limit of the bench's own machine (open files, ephemeral ports, buffers).
    BenchLimit,
    /// `GET /1/checkin` failed (refused, error status, unreadable answer, timeout).
    CheckinFailed,
    /// The server hung up between frames before `stop`.
    ClosedEarly,
    /// The server hung up inside a frame.
    IncompleteEvent,
    /// The stream broke the framing (see [`crate::wire::framing`]).
    BadFraming,
    /// The server sent `ERROR: <reason>`.
    ErrorLine,
    /// The connection was reset.
    Reset,
    /// The run's time limit passed first.
    Timeout,
}

impl Failure {
    /// Every kind, in report order.
    pub const ALL: [Failure; 12] = [
        Failure::ConnectRefused,
        Failure::ConnectTimeout,
        Failure::ConnectError,
        Failure::StatusTimeout,
        Failure::BenchLimit,
        Failure::CheckinFailed,
        Failure::ClosedEarly,
        Failure::IncompleteEvent,
        Failure::BadFraming,
        Failure::ErrorLine,
        Failure::Reset,
        Failure::Timeout,
    ];

    /// The key in JSON reports.
    pub fn key(self) -> &'static str {
        match self {
            Failure::ConnectRefused => "connect_refused",
            Failure::ConnectTimeout => "connect_timeout",
            Failure::ConnectError => "connect_error",
            Failure::StatusTimeout => "status_timeout",
            Failure::BenchLimit => "bench_limit",
            Failure::CheckinFailed => "checkin_failed",
            Failure::ClosedEarly => "closed_early",
            Failure::IncompleteEvent => "incomplete_event",
            Failure::BadFraming => "bad_framing",
            Failure::ErrorLine => "error_line",
            Failure::Reset => "reset",
            Failure::Timeout => "timeout",
        }
    }

    /// The kind of a failed connect.
    pub fn of_connect(kind: IoKind) -> Failure {
        match kind {
            IoKind::Refused => Failure::ConnectRefused,
            IoKind::TimedOut => Failure::ConnectTimeout,
            IoKind::BenchLimit => Failure::BenchLimit,
            IoKind::Reset => Failure::Reset,
            IoKind::Other => Failure::ConnectError,
        }
    }
}

/// Counts of failures by kind, keyed by [`Failure::key`].
pub type FailureCounts = BTreeMap<String, u64>;

/// Adds one failure of `kind` to `counts`.
pub fn count(counts: &mut FailureCounts, kind: Failure) {
    *counts.entry(kind.key().to_owned()).or_default() += 1;
}

/// How a frame's seq compares with the highest one its subscriber saw before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The first seq the subscriber sees.
    First,
    /// The next one.
    Next,
    /// Not above the highest seen: counted as duplicated.
    Duplicate,
    /// Beyond the next one (a gap at that moment): counted as out of order.
    Gap,
}

/// Classifies `seq` after `last` (the highest seq seen, 0 for none).
pub fn order(last: u64, seq: u64) -> Order {
    if last == 0 {
        Order::First
    } else if seq <= last {
        Order::Duplicate
    } else if seq > last + 1 {
        Order::Gap
    } else {
        Order::Next
    }
}

/// Classifies `seq` after `last`, the highest seq the subscriber has seen, which it raises;
/// the caller counts a duplicate or a gap. `last` outlives a subscriber's connections: a
/// session resumed with `SINCE:<last>` goes on counting from it, so a resume that repeats an
/// event shows as duplicated and one that skips an event as out of order (and lost).
pub fn track(last: &mut u64, seq: u64) -> Order {
    let order = order(*last, seq);
    *last = (*last).max(seq);
    order
}

/// What one subscriber has seen of its session so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// A status frame arrived.
    pub status: bool,
    /// The status said the match is live (a stop will follow).
    pub live: bool,
    /// A complete `stop` frame arrived.
    pub stop: bool,
}

impl Seen {
    /// Takes note of a complete frame.
    pub fn frame(&mut self, f: &Frame) {
        match f.kind {
            EventKind::Status if !self.status => {
                self.status = true;
                self.live = f.period.is_none_or(|p| p.is_live());
            }
            EventKind::Stop => self.stop = true,
            _ => {}
        }
    }

    /// The verdict when the server hung up; `checker` is the framing checker's `finish`.
    pub fn closed(&self, checker: Result<(), Violation>) -> Result<(), Failure> {
        match checker {
            Err(Violation::Incomplete) => return Err(Failure::IncompleteEvent),
            Err(Violation::BadFraming(_) | Violation::BadLine(_)) => {
                return Err(Failure::BadFraming)
            }
            Ok(()) => {}
        }
        if self.stop || (self.status && !self.live) {
            Ok(())
        } else {
            Err(Failure::ClosedEarly)
        }
    }

    /// The verdict when reading failed with `kind` (a reset after `stop` still counts as done).
    pub fn broken(&self, kind: IoKind) -> Result<(), Failure> {
        if self.stop {
            Ok(())
        } else if kind == IoKind::Reset {
            Err(Failure::Reset)
        } else {
            Err(Failure::ClosedEarly)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchstream_protocol::Period;

    fn frame(kind: EventKind, period: Option<Period>) -> Frame {
        Frame {
            kind,
            seq: None,
            sent_ns: None,
            period,
        }
    }

    #[test]
    fn verdicts_follow_fake_clients_rule() {
        let status = |p| frame(EventKind::Status, Some(p));
        type Case = (
            &'static str,
            Vec<Frame>,
            Result<(), Violation>,
            Result<(), Failure>,
        );
        let cases: Vec<Case> = vec![
            (
                "stop then close",
                vec![status(Period::First), frame(EventKind::Stop, None)],
                Ok(()),
                Ok(()),
            ),
            (
                "status of a match not started, then close",
                vec![status(Period::NotStarted)],
                Ok(()),
                Ok(()),
            ),
            (
                "status of an ended match, then close",
                vec![status(Period::Ended)],
                Ok(()),
                Ok(()),
            ),
            (
                "live match closed before stop",
                vec![status(Period::First), frame(EventKind::Goal, None)],
                Ok(()),
                Err(Failure::ClosedEarly),
            ),
            ("nothing at all", vec![], Ok(()), Err(Failure::ClosedEarly)),
            (
                "closed inside a frame",
                vec![status(Period::First)],
                Err(Violation::Incomplete),
                Err(Failure::IncompleteEvent),
            ),
            (
                "bad framing wins over a stop",
                vec![status(Period::First), frame(EventKind::Stop, None)],
                Err(Violation::BadFraming("x")),
                Err(Failure::BadFraming),
            ),
        ];
        for (name, frames, checker, want) in cases {
            let mut seen = Seen::default();
            frames.iter().for_each(|f| seen.frame(f));
            assert_eq!(seen.closed(checker), want, "{name}");
        }
    }

    #[test]
    fn seqs_are_counted_as_duplicates_or_gaps() {
        // (seqs one subscriber receives, duplicated, out of order)
        let cases: [(&[u64], u64, u64); 7] = [
            (&[1, 2, 3, 4], 0, 0),
            (&[5, 6], 0, 0), // joined late: the first seq is whatever it is
            (&[1, 2, 2, 3], 1, 0),
            (&[1, 3, 2, 4], 1, 1), // 3 skips 2 (a gap); 2 then is below the highest seen
            (&[1, 2, 5, 6, 7], 0, 1),
            (&[1, 1, 1], 2, 0),
            (&[3, 1, 2, 4], 2, 0),
        ];
        for (seqs, dup, gaps) in cases {
            let (mut last, mut d, mut g) = (0, 0, 0);
            for &s in seqs {
                match order(last, s) {
                    Order::Duplicate => d += 1,
                    Order::Gap => g += 1,
                    Order::First | Order::Next => {}
                }
                last = last.max(s);
            }
            assert_eq!((d, g), (dup, gaps), "{seqs:?}");
        }
    }

    #[test]
    fn resets_count_unless_the_match_was_over() {
        let mut seen = Seen::default();
        seen.frame(&frame(EventKind::Status, Some(Period::First)));
        assert_eq!(seen.broken(IoKind::Reset), Err(Failure::Reset));
        seen.frame(&frame(EventKind::Stop, None));
        assert_eq!(seen.broken(IoKind::Reset), Ok(()));
    }
}
