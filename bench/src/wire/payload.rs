//! The baselines' payload, Redis and NATS alike: `<seq> <kind> <t_ns> <padding>`, as long as
//! matchstream's frame. `kind` is `c` for a measured event (`t_ns` its stamp: scheduled or
//! actual send time), `w` for a warm-up event (not measured) and `s` for the final stop, so a
//! baseline subscriber is accounted for exactly like a matchstream one.

use matchstream_protocol::EventKind;

use crate::wire::framing::{Frame, Violation};

/// The first `N` bytes of a payload arriving in pieces (the baselines' decoders keep only the
/// prefix they parse, whatever the payload's length): a fixed array, no allocation.
#[derive(Debug, Clone, Copy)]
pub struct Capture<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Capture<N> {
    /// Empty; `N` must fit the one-byte length.
    pub const fn new() -> Self {
        assert!(N <= u8::MAX as usize);
        Capture {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Keeps as much of `data` as there is room for.
    pub fn keep(&mut self, data: &[u8]) {
        let at = usize::from(self.len);
        let n = data.len().min(N - at);
        self.bytes[at..at + n].copy_from_slice(&data[..n]);
        self.len += n as u8;
    }

    /// What was kept.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Forgets what was kept (a new payload starts).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<const N: usize> Default for Capture<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Published but not measured (`--warmup`).
    Warmup,
    /// Measured: its subscribers record its latency.
    Measured,
    /// The match's stop.
    Stop,
}

/// A baseline payload of `size` bytes (at least the prefix) for event `seq` stamped `sent_ns`.
pub fn encode(seq: u64, kind: Kind, sent_ns: u64, size: usize) -> Vec<u8> {
    let mut p = match kind {
        Kind::Stop => format!("{seq} s 0 "),
        Kind::Warmup => format!("{seq} w {sent_ns} "),
        Kind::Measured => format!("{seq} c {sent_ns} "),
    }
    .into_bytes();
    if p.len() < size {
        p.resize(size, b'x');
    }
    p
}

/// The facts of a baseline payload (its first bytes suffice: `<seq> <kind> <t_ns> `).
pub fn parse(text: &[u8]) -> Result<Frame, Violation> {
    const BAD: Violation = Violation::BadFraming("a baseline payload of the wrong shape");
    let s = std::str::from_utf8(text).map_err(|_| BAD)?;
    let mut parts = s.split(' ');
    let seq: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or(BAD)?;
    let (kind, measured) = match parts.next() {
        Some("c") => (EventKind::Comment, true),
        Some("w") => (EventKind::Comment, false),
        Some("s") => (EventKind::Stop, false),
        _ => return Err(BAD),
    };
    let sent: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or(BAD)?;
    Ok(Frame {
        kind,
        seq: Some(seq),
        sent_ns: measured.then_some(sent),
        period: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_keeps_the_first_bytes_of_pieces() {
        let mut c = Capture::<5>::new();
        c.keep(b"ab");
        c.keep(b"cdef");
        c.keep(b"gh");
        assert_eq!(c.as_slice(), b"abcde");
        c.clear();
        c.keep(b"z");
        assert_eq!(c.as_slice(), b"z");
    }

    #[test]
    fn payloads_say_what_is_measured() {
        let p = |k, ns| parse(&encode(7, k, ns, 40)).expect("valid");
        let m = p(Kind::Measured, 123);
        assert_eq!(
            (m.kind, m.seq, m.sent_ns),
            (EventKind::Comment, Some(7), Some(123))
        );
        let w = p(Kind::Warmup, 123);
        assert_eq!(
            (w.kind, w.seq, w.sent_ns),
            (EventKind::Comment, Some(7), None)
        );
        let s = p(Kind::Stop, 0);
        assert_eq!((s.kind, s.sent_ns), (EventKind::Stop, None));
        assert_eq!(encode(7, Kind::Measured, 5, 0), b"7 c 5 ");
        assert_eq!(encode(7, Kind::Measured, 5, 10), b"7 c 5 xxxx");
        assert!(parse(b"7 q 5 ").is_err());
        assert!(parse(b"x c 5 ").is_err());
    }
}
