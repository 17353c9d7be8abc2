//! matchstream's engine: a thread-per-core io_uring server streaming live match events.
//!
//! Module map (data flow: watcher → [`api`] → [`store`] thread → [`bus`] → every core's
//! [`fanout`] → each subscriber's [`outbox`] → socket):
//! - [`config`]: command line and environment; [`error`]: the engine's error type;
//! - [`server`]: start-up and shutdown of a node ([`server::start`] → [`server::ServerHandle`]);
//! - [`shard`]: one core's state; [`tasks`]: its connection tasks, which shutdown waits for;
//!   [`latch`]: its shutdown signal; [`listener`]: listening sockets and accept loops;
//! - [`session`]: a subscriber's handshake; [`replay`]: a resume's backlog, streamed in
//!   bounded pieces before the subscriber joins the fanout; [`outbox`]: its queue of shared frames and its
//!   socket, with [`outbox::tend`], the task that comes back only for a full socket or last
//!   words; [`linger`]: refusing a connection with an answer and a clean close (handshake
//!   errors, the API's 503 at its connection cap);
//! - [`fanout`]: the per-core match table and event fanout; [`bus`]: cross-core channels;
//!   [`incarnation`]: drawing incarnations, and refusing a resume against another history;
//! - [`store`]: the store interface, its thread and backends (memory, embedded, Redis);
//! - [`cluster`]: many nodes on one Redis: the shared key layout, the node's feed of events,
//!   the node registry;
//! - [`api`]: the HTTP API; [`checkin`]: where checkin sends a subscriber; [`stats`]: live
//!   counters; [`limits`]: host limits at start; [`signals`]: termination signals;
//!   [`token`]: the generated watcher token and its 0600 file;
//! - operations: [`drain`]: leaving the cluster before a stop; [`health`]: whether the
//!   store is reachable, for `GET /readyz`;
//! - [`tools`]: the client-side subcommands (`demo`, `replay`, `watch`, `drain`, `top`), on
//!   [`matchstream_client`].

pub mod api;
pub mod bus;
pub mod checkin;
pub mod cluster;
pub mod config;
pub mod drain;
pub mod error;
pub mod fanout;
pub mod health;
pub mod incarnation;
pub mod latch;
pub mod limits;
pub mod linger;
pub mod listener;
pub mod logging;
pub mod outbox;
pub mod replay;
pub mod server;
pub mod session;
pub mod shard;
pub mod signals;
pub mod stats;
pub mod store;
pub mod tasks;
pub mod token;
pub mod tools;

pub use config::Config;
pub use error::Error;
pub use server::{start, ServerHandle};
