//! The client-side subcommands of the `matchstream` binary, each talking to a server through
//! the HTTP API with [`matchstream_client`]: [`demo`] (a server of its own, playing the sample
//! match in a loop), [`replay`] (play a match script as its watcher), [`watch`] (a terminal
//! subscriber), [`drain`] (drain a node before taking it down) and [`top`] (a live view of
//! a node or a cluster). Their arguments are in [`crate::config`].

pub mod demo;
pub mod drain;
pub mod replay;
pub mod top;
pub mod watch;
