//! matchstream-bench: the load tools of matchstream (the seed's stages 1–2 and the fanout
//! benchmark), shaped like oha: each subcommand is a library call `run(&Options) -> Report`
//! that the binary prints as a table and, with `--json`, writes as a report opening with
//! its environment.
//!
//! Module map:
//! - subcommands: [`clients`] (the user simulator), [`http`] (the ApacheBench script),
//!   [`fanout`] (+ [`measure`] one run of one system, [`baseline`] Redis and NATS side by
//!   side, [`runs`] repeated runs and their tables, [`thresholds`] `--fail-on`), [`ramp`]
//!   (stage 2, + [`diagnose`] naming failures, [`chart`]);
//! - flow control of fanout, one for every system: [`flow`] (paced schedule or window),
//!   [`window`] (the slowest live subscriber per match, shared by every shard);
//! - load loops (mio, one thread each, no thread per connection): [`subscribe`] (subscribers,
//!   given a [`plan`], decoding with [`decode`]), [`requests`] (request/response slots of
//!   `http`) and [`pipeline`] (fanout's pipelined publisher, writing what [`publish`] encodes);
//! - spreading: [`shards`] (worker processes beyond the open-files limit), [`net`] (source
//!   addresses, non-blocking connects, error kinds);
//! - protocol checking: [`framing`] (the stream protocol), [`resp`] (Redis), [`nats`] (NATS),
//!   [`httpc`] (HTTP responses of the load loops), [`outcome`] (how a subscriber ends, seq order);
//! - [`preflight`]: what is refused before any load starts; [`interrupt`]: Ctrl-C for a
//!   partial report;
//! - the watcher: [`watcher`] (unique matches, scripts renamed, played with
//!   [`matchstream_client`], whose blocking client does all the control work);
//! - figures: [`latency`] (hdrhistogram), [`report`] (JSON documents, tables, the bench's own
//!   cost), [`env`](mod@env) (the environment), [`sysstat`] (/proc figures), [`progress`] (live line);
//! - [`cli`]: the command line.

#![warn(missing_docs)]

pub mod baseline;
pub mod chart;
pub mod cli;
pub mod clients;
pub mod compare;
pub mod decode;
pub mod diagnose;
pub mod env;
pub mod fanout;
pub mod flow;
pub mod framing;
pub mod http;
pub mod httpc;
pub mod interrupt;
pub mod latency;
pub mod measure;
pub mod nats;
pub mod net;
pub mod outcome;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod publish;
pub mod ramp;
pub mod report;
pub mod requests;
pub mod resp;
pub mod runs;
pub mod shards;
pub mod subscribe;
pub mod sysstat;
pub mod thresholds;
pub mod watcher;
pub mod window;
