//! The store: where matches, events and user visits live, behind one interface.
//!
//! A [`Store`] is a blocking object driven by one store thread ([`service`]); cores never call
//! it directly. The thread hands it batches of operations so that a backend can commit many
//! writes with one transaction and one fsync (group commit). Backends:
//! - [`memory`]: nothing persisted, for tests and benchmarks;
//! - [`embedded`]: durable on local disk (redb), the default;
//! - [`redis`]: `redis://...`, shared by many nodes (with [`crate::cluster`]'s feed).
//!
//! [`catalog`] is the in-memory write model (validation, seq assignment, state) that the
//! memory and embedded backends share.

pub mod catalog;
pub mod embedded;
pub mod memory;
pub mod redis;
pub mod service;

use std::collections::HashMap;
use std::sync::Arc;

use matchstream_protocol::state::EventError;
use matchstream_protocol::{Event, Incarnation, Match, MatchId, NewMatch, PostedEvent};

use crate::bus::MatchRecord;

pub use service::{StoreHandle, StoreService};

/// One operation the store thread asks a backend to carry out.
#[derive(Debug, Clone)]
pub enum Op {
    /// Create a match (409 if it exists).
    Create {
        /// What the watcher sent.
        new: NewMatch,
        /// Creation time, ms since the epoch.
        now_ms: u64,
        /// The new match's incarnation ([`crate::incarnation::draw`]).
        incarnation: Incarnation,
    },
    /// Validate and append an event: assign the next seq, update the state.
    Apply {
        /// The match.
        id: MatchId,
        /// The event as posted.
        event: PostedEvent,
        /// Server time for the event's timestamp, ms since the epoch.
        now_ms: u64,
    },
    /// Cancel a match: remove it and its history.
    Cancel {
        /// The match.
        id: MatchId,
    },
    /// Add `count` to a user's visit count.
    Visit {
        /// The user id.
        user: String,
        /// How many connects to add.
        count: u64,
    },
    /// Read a user's visit count.
    GetVisits {
        /// The user id.
        user: String,
    },
}

/// What a successful [`Op`] produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The match was created.
    Created(Arc<Match>),
    /// The event was stored; `state` is the match after it.
    Applied {
        /// The stored event.
        event: Arc<Event>,
        /// The match state after the event.
        state: Arc<Match>,
    },
    /// The match was cancelled.
    Cancelled(MatchId),
    /// Visits recorded.
    Visited,
    /// A user's visit count.
    Visits(u64),
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such match.
    #[error("unknown match {0}")]
    NotFound(MatchId),
    /// The match exists already.
    #[error("match {0} exists already")]
    Exists(MatchId),
    /// The event was refused by validation.
    #[error("{}", .0.reason())]
    Invalid(EventError),
    /// The backend could not be reached or failed to commit; nothing was stored. The text
    /// is what clients are told (503): rendered once, it is cloned to every op of a batch.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A backend answered an op with another op's kind of outcome (a bug; 500).
    #[error("unexpected store answer")]
    Unexpected,
}

impl StoreError {
    /// The HTTP status that fits.
    pub fn status(&self) -> u16 {
        match self {
            StoreError::NotFound(_) => 404,
            StoreError::Exists(_) => 409,
            StoreError::Invalid(e) => e.status(),
            StoreError::Unavailable(_) => 503,
            StoreError::Unexpected => 500,
        }
    }
}

/// A backend. Blocking; only the store thread calls it.
pub trait Store: Send {
    /// Loads every match with its history (at start, to seed the cores' views).
    fn load(&mut self) -> Result<Vec<MatchRecord>, StoreError>;

    /// Carries out `ops` in order, each seeing the effects of the ones before it, and makes
    /// the successful ones durable before returning (one commit for the whole batch). Returns
    /// one result per op, in the same order, each of its op's kind (`Create` → `Created`,
    /// `Apply` → `Applied`, `Cancel` → `Cancelled`, `Visit` → `Visited`, `GetVisits` →
    /// `Visits`). If the commit fails, every write op of the batch
    /// fails with [`StoreError::Unavailable`] and the store is as before the batch.
    fn execute(&mut self, ops: Vec<Op>) -> Vec<Result<Outcome, StoreError>>;

    /// A one-line description for logs (`embedded:/var/lib/matchstream`).
    fn describe(&self) -> String;

    /// True when the store thread publishes committed changes on the bus itself; false for a
    /// store whose changes reach the bus another way (Redis: the node's feed).
    fn publishes_on_bus(&self) -> bool {
        true
    }
}

/// Visit counts as loaded or kept in memory.
pub type Visits = HashMap<String, u64>;
