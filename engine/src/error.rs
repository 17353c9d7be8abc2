//! The engine's error type: each variant carries the context needed to act on it.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open store {spec}: {reason}")]
    Store {
        /// The store spec as configured.
        spec: String,
        /// What went wrong.
        reason: String,
    },
    /// An executor could not be started.
    #[error("cannot start core {core}: {reason}")]
    Executor {
        /// Which core.
        core: usize,
        /// What went wrong.
        reason: String,
    },
    /// A configuration value is unusable.
    #[error("bad configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
