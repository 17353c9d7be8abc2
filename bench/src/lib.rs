//! matchstream-bench: the load tools of matchstream (the seed's stages 1–2 and the fanout
//! benchmark), shaped like oha: each subcommand is a library call `run(&Options) -> Report`
//! that the binary prints as a table and, with `--json`, writes as a report opening with
//! its environment.
//!
//! Module map, one room per concern (the arrows point down this list, never back up):
//! - [`cli`]: the command line, dispatching to a mode; [`options`]: the flags every mode shares;
//! - [`modes`]: one room per subcommand, each with its options, `--help` text and `run`:
//!   `clients` (the user simulator), `http` (the ApacheBench script), `fanout` (the benchmark
//!   for performance engineers, with its runs, baselines and `--fail-on`), `ramp` (stage 2,
//!   naming failures), `soak` (half an hour with resumes, the server's RSS sampled), `compare`,
//!   `advise` (stage 5: what N subscribers need, from the others' reports);
//! - [`watcher`]: the bench as a match's watcher (unique matches, scripts, playing them with
//!   [`matchstream_client`], whose blocking client does all the control work);
//! - [`subscribers`]: the subscriber side of every mode: the mio loop, shards over threads
//!   and worker processes, their plan and outcome;
//! - [`publisher`]: fanout's publishing, one flow control for every system: when (schedule,
//!   window of the slowest subscriber), what (per system) and the pipelined loop;
//! - [`requests`]: the request/response slots of `http`;
//! - [`wire`]: what the load speaks and checks: the stream framing, Redis, NATS, HTTP
//!   responses, the baselines' payload;
//! - [`figures`]: latency histograms, reports and tables, the environment, /proc figures,
//!   the live progress line, the ramp's chart;
//! - [`preflight`]: what is refused before any load starts; [`interrupt`]: Ctrl-C for a
//!   partial report; [`net`]: sockets, source addresses, the API's address, error kinds.

#![warn(missing_docs)]

pub mod cli;
pub mod figures;
pub mod interrupt;
pub mod modes;
pub mod net;
pub mod options;
pub mod preflight;
pub mod publisher;
pub mod requests;
pub mod subscribers;
pub mod watcher;
pub mod wire;
