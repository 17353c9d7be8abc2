//! matchstream's protocol: everything about matches that involves no I/O.
//!
//! Module map:
//! - [`model`]: ids, teams, players, periods, event kinds, events, match state (SPEC §2);
//! - [`error`]: why a value of the model was refused;
//! - [`incarnation`]: which history of a match a seq belongs to;
//! - [`state`]: validation of posted events and the state transitions they cause;
//! - [`frame`]: rendering of status and event frames for stream versions 1 and 2 (SPEC §3);
//! - [`sse`]: the same stream as server-sent events for browsers (SPEC §8), and their parser;
//! - [`encoding`]: a subscriber's encoding (v1, v2 or SSE), one way to ask for its bytes;
//! - [`command`]: the stream command line a subscriber sends;
//! - [`api`]: the JSON shapes of the HTTP API (SPEC §4);
//! - [`codec`]: lossless JSON encoding of matches and events for stores;
//! - [`script`]: the match-script format that `matchstream replay` plays.
#![warn(missing_docs)]

pub mod api;
pub mod codec;
pub mod command;
pub mod encoding;
pub mod error;
pub mod frame;
pub mod incarnation;
pub mod model;
pub mod script;
pub mod sse;
pub mod state;

pub use incarnation::Incarnation;
pub use model::*;

#[cfg(test)]
mod testdata;
