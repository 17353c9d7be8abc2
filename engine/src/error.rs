//! The engine's error type: each variant carries the context needed to act on it, and the
//! error that caused it as its source (`main` prints the chain: `{e:#}`).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::RedisUrl;
use crate::store::StoreError;

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
    /// The store could not be opened or read.
    #[error("cannot open store {spec}")]
    Store {
        /// The store spec as configured, a Redis password redacted (`StoreSpec`'s `Display`).
        spec: String,
        /// The cause.
        source: StoreError,
    },
    /// A Redis URL is unusable.
    #[error("bad redis url {url}")]
    RedisUrl {
        /// The URL as configured (shown without its password).
        url: RedisUrl,
        /// The cause.
        source: redis::RedisError,
    },
    /// A background thread (store, feed, registry) could not be started.
    #[error("cannot start thread {name}")]
    Thread {
        /// The thread's name.
        name: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An executor could not be started.
    #[error("cannot start core {core}")]
    Executor {
        /// Which core.
        core: usize,
        /// The cause (glommio's error as an `io::Error`, which is `Sync`, unlike glommio's own).
        source: std::io::Error,
    },
    /// An executor ended before it was ready (it logged why, if it could).
    #[error("cannot start core {core}: core stopped while starting")]
    CoreStopped {
        /// Which core.
        core: usize,
    },
    /// The generated watcher token could not be written to its file.
    #[error("cannot write the watcher token to {}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The watcher token could not be read from its file (--token-file), or the file holds
    /// no usable token.
    #[error("cannot read the watcher token from {}", path.display())]
    ReadTokenFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A configuration value is unusable.
    #[error("bad configuration: {0}")]
    Config(String),
}
