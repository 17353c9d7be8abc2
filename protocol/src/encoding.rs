//! How a subscriber's stream is written: the TCP stream protocol's frames (version 1 or 2,
//! [`crate::frame`]) or server-sent events ([`crate::sse`]). One enum, so the engine's fanout,
//! outboxes and replay treat every subscriber alike and ask it only for bytes.

use crate::frame::{self, Version};
use crate::model::{Event, Match};
use crate::sse;

/// A subscriber's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Stream protocol version 1 (the original's frames).
    V1,
    /// Stream protocol version 2 (frames with a `seq` line).
    V2,
    /// Server-sent events on the API port.
    Sse,
}

impl From<Version> for Encoding {
    fn from(v: Version) -> Encoding {
        match v {
            Version::V1 => Encoding::V1,
            Version::V2 => Encoding::V2,
        }
    }
}

impl Encoding {
    /// Every encoding.
    pub const ALL: [Encoding; 3] = [Encoding::V1, Encoding::V2, Encoding::Sse];

    /// Appends the bytes of a stored event.
    pub fn render_event(self, e: &Event, out: &mut Vec<u8>) {
        match self {
            Encoding::V1 => frame::render_event(e, Version::V1, out),
            Encoding::V2 => frame::render_event(e, Version::V2, out),
            Encoding::Sse => sse::render_event(e, out),
        }
    }

    /// Appends the bytes of the match's status.
    pub fn render_status(self, m: &Match, out: &mut Vec<u8>) {
        match self {
            Encoding::V1 => frame::render_status(m, Version::V1, out),
            Encoding::V2 => frame::render_status(m, Version::V2, out),
            Encoding::Sse => sse::render_status(m, out),
        }
    }

    /// Appends a stream's last words: `ERROR: <reason>\r\n` on TCP, an `error` event in SSE.
    ///
    /// ```
    /// use matchstream_protocol::encoding::Encoding;
    /// let mut tcp = Vec::new();
    /// Encoding::V2.render_error("too slow", &mut tcp);
    /// assert_eq!(tcp, b"ERROR: too slow\r\n");
    /// let mut sse = Vec::new();
    /// Encoding::Sse.render_error("too slow", &mut sse);
    /// assert_eq!(sse, b"event: error\ndata: {\"error\":\"too slow\"}\n\n");
    /// ```
    pub fn render_error(self, reason: &str, out: &mut Vec<u8>) {
        match self {
            Encoding::V1 | Encoding::V2 => frame::render_error(reason, out),
            Encoding::Sse => sse::render_error(reason, out),
        }
    }

    /// True when a subscriber stays for a match that has not started (every encoding but
    /// version 1, which closes after the status, as the original did).
    pub fn waits_for_start(self) -> bool {
        self != Encoding::V1
    }

    /// A short name for logs: `v1`, `v2`, `sse`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::V1 => "v1",
            Encoding::V2 => "v2",
            Encoding::Sse => "sse",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{seed_events, seed_started, SEED_V1, SEED_V2};

    #[test]
    fn tcp_encodings_are_the_frames_byte_for_byte() {
        for (encoding, want) in [(Encoding::V1, SEED_V1), (Encoding::V2, SEED_V2)] {
            let mut out = Vec::new();
            encoding.render_status(&seed_started(), &mut out);
            for e in seed_events() {
                encoding.render_event(&e, &mut out);
            }
            assert_eq!(String::from_utf8(out).expect("UTF-8"), want);
        }
    }

    #[test]
    fn sse_is_the_event_stream() {
        let e = &seed_events()[0];
        let mut via = Vec::new();
        Encoding::Sse.render_event(e, &mut via);
        let mut direct = Vec::new();
        sse::render_event(e, &mut direct);
        assert_eq!(via, direct);
        assert_eq!(Encoding::from(Version::V2), Encoding::V2);
        assert!(!Encoding::V1.waits_for_start() && Encoding::Sse.waits_for_start());
    }
}
