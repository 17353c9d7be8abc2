//! matchstream-bench: the load tools of matchstream (the seed's stages 1–2 and the fanout
//! benchmark), shaped like oha: each subcommand is a library call `run(&Options) -> Report`
//! that the binary prints as a table and, with `--json`, writes as a report opening with
//! its environment.
//!
//! Module map:
//! - subcommands: [`clients`] (the user simulator), [`http`] (the ApacheBench script),
//!   [`fanout`] (+ [`baseline`], Redis pub/sub side by side), [`ramp`] (stage 2, +
//!   [`diagnose`] naming failures, [`chart`]);
//! - load loops (mio, one thread each, no thread per connection): [`subscribe`] (subscribers,
//!   given a [`plan`]) and [`requests`] (request/response slots), fed by [`publish`] for
//!   fanout;
//! - spreading: [`shards`] (worker processes beyond the open-files limit), [`net`] (source
//!   addresses, non-blocking connects, error kinds);
//! - protocol checking: [`framing`] (the stream protocol), [`resp`] (Redis), [`httpc`] (HTTP
//!   responses), [`outcome`] (how a subscriber ends);
//! - the watcher: [`api`] (blocking API client), [`watcher`] (unique matches, scripts, play);
//! - figures: [`latency`] (hdrhistogram), [`report`] (JSON documents, tables, the bench's own
//!   cost), [`env`](mod@env) (the environment), [`sysstat`] (/proc figures), [`progress`] (live line);
//! - [`cli`]: the command line.

#![warn(missing_docs)]

pub mod api;
pub mod baseline;
pub mod chart;
pub mod cli;
pub mod clients;
pub mod diagnose;
pub mod env;
pub mod fanout;
pub mod framing;
pub mod http;
pub mod httpc;
pub mod latency;
pub mod net;
pub mod outcome;
pub mod plan;
pub mod progress;
pub mod publish;
pub mod ramp;
pub mod report;
pub mod requests;
pub mod resp;
pub mod shards;
pub mod subscribe;
pub mod sysstat;
pub mod watcher;
