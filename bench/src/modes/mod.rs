//! The subcommands, one room each (as mini-redis keeps its commands in `cmd/`): its options,
//! its long `--help` text, its `run` and its report. They share the measuring code of the
//! crate's other rooms; `ramp` also runs `http` and `clients` as its phases; `soak` runs
//! `fanout`'s publisher and subscribers for half an hour, with resumes; `advise` reads the
//! others' reports and measures nothing.

pub mod advise;
pub mod clients;
pub mod compare;
pub mod fanout;
pub mod http;
pub mod ramp;
pub mod soak;
