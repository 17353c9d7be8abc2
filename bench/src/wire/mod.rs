//! What the load speaks and checks on the wire, with no I/O: the matchstream stream protocol
//! ([`framing`], the checker of every frame) and its server-sent events twin on the API port
//! ([`sse`], the checker of every event and the request that opens a stream), Redis
//! ([`resp`]) and NATS ([`nats`]) for the baselines and their common [`payload`], all decoded
//! alike for a subscriber by [`decode`]; and HTTP responses as the non-blocking load loops
//! read them ([`http`]).

pub mod decode;
pub mod framing;
pub mod http;
pub mod nats;
pub mod payload;
pub mod resp;
pub mod sse;
