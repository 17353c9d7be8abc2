//! What a subscriber's bytes mean, per protocol: the matchstream stream (the framing checker,
//! [`crate::wire::framing`]), its browser twin over HTTP (the event-stream checker,
//! [`crate::wire::sse`]), Redis pushes ([`crate::wire::resp`]) or NATS messages
//! ([`crate::wire::nats`]), all yielding the same [`Item`]s so that every subscriber is
//! accounted for alike.

use matchstream_protocol::frame::Version;

use crate::wire::framing::{FrameChecker, Item, Violation};
use crate::wire::nats::MsgDecoder;
use crate::wire::resp::PushDecoder;
use crate::wire::sse::SseChecker;

/// What the subscribers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Protocol {
    /// The matchstream stream protocol, version 1 or 2.
    Stream {
        /// 1 or 2.
        version: u8,
    },
    /// Server-sent events: `GET /1/match/<id>/stream` on the API port (`fanout --transport
    /// sse`).
    Sse,
    /// Redis pub/sub (a baseline).
    Redis,
    /// NATS core pub/sub (a baseline).
    Nats,
}

/// One subscriber's decoder.
#[derive(Debug)]
pub enum Decoder {
    /// The stream protocol.
    Stream(FrameChecker),
    /// The event stream.
    Sse(SseChecker),
    /// Redis pub/sub.
    Redis(PushDecoder),
    /// NATS core.
    Nats(MsgDecoder),
}

impl Decoder {
    /// The decoder for `protocol`.
    pub fn new(protocol: Protocol) -> Decoder {
        match protocol {
            Protocol::Stream { version } => Decoder::Stream(FrameChecker::new(if version == 1 {
                Version::V1
            } else {
                Version::V2
            })),
            Protocol::Sse => Decoder::Sse(SseChecker::new()),
            Protocol::Redis => Decoder::Redis(PushDecoder::default()),
            Protocol::Nats => Decoder::Nats(MsgDecoder::default()),
        }
    }

    /// The decoder of a stream session resumed with `SINCE` (an event stream with
    /// `Last-Event-ID`): no status first; the baselines have no resume, so theirs is
    /// [`Decoder::new`]'s.
    pub fn resumed(protocol: Protocol) -> Decoder {
        match protocol {
            Protocol::Stream { version } if version >= 2 => {
                Decoder::Stream(FrameChecker::resumed(Version::V2))
            }
            Protocol::Sse => Decoder::Sse(SseChecker::resumed()),
            other => Decoder::new(other),
        }
    }

    /// Decodes the next bytes.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Item>) -> Result<(), Violation> {
        match self {
            Decoder::Stream(c) => c.feed(data, out),
            Decoder::Sse(c) => c.feed(data, out).map_err(Violation::from),
            Decoder::Redis(d) => d.feed(data, out),
            Decoder::Nats(d) => d.feed(data, out),
        }
    }

    /// The connection ended: fine between frames, [`Violation::Incomplete`] inside one.
    pub fn finish(&self) -> Result<(), Violation> {
        match self {
            Decoder::Stream(c) => c.finish(),
            Decoder::Sse(c) => c.finish(),
            Decoder::Redis(d) if d.idle() => Ok(()),
            Decoder::Nats(d) if d.idle() => Ok(()),
            Decoder::Redis(_) | Decoder::Nats(_) => Err(Violation::Incomplete),
        }
    }

    /// Server pings to answer (NATS), taken.
    pub fn take_pings(&mut self) -> u16 {
        match self {
            Decoder::Nats(d) => d.take_pings(),
            Decoder::Stream(_) | Decoder::Sse(_) | Decoder::Redis(_) => 0,
        }
    }
}
