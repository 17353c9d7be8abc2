//! Command line and configuration: one [`Config`] for the server, with environment twins
//! (SPEC §5), plus the arguments of `demo`, `replay`, `watch`, `drain` and `top`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;

/// matchstream: streams live sports-match events to very many TCP subscribers.
#[derive(Debug, Parser)]
#[command(name = "matchstream", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,

    /// How log lines on stderr look: `text` (`[time LEVEL target] message key=value ...`) or
    /// `json` (one object per line: ts, level, target, msg and the same key-value pairs).
    /// RUST_LOG chooses what is logged (info by default).
    #[arg(
        long,
        global = true,
        env = "MATCHSTREAM_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: stream ports (one per core), the HTTP API, the store.
    Serve(Config),
    /// Run a server that plays the sample match in a loop, and print how to watch it.
    Demo(DemoArgs),
    /// Register a match script through the HTTP API (the original's fake_watcher).
    Replay(ReplayArgs),
    /// Watch a match in the terminal: the score and every event in words, as it happens.
    ///
    /// Checks in through the API and follows the match on a stream port (protocol version 2
    /// by default), or with --sse on the API port's event stream, what browsers read. It
    /// prints a score line and each event with its minute of play, e.g. `67' GOAL tig — Luna
    /// (7) · elp 0-2 tig`. Minutes are counted from the server's timestamps of kick-off, the
    /// end of half-time and the start of extra time, read from the match's history when the
    /// watch starts; before kick-off, or if those are unknown, an event shows its time of day
    /// (HH:MM:SS, UTC) instead, and HT during half-time. On a terminal the score line stays at
    /// the bottom. --raw prints the frames (or SSE events) as they arrive instead.
    ///
    /// A lost stream (closed before `stop`, reset, too slow, server shutting down, node
    /// draining) is resumed after the last event printed — checking in again for a stream
    /// port (possibly another node), the same --url with --sse — so nothing is printed twice
    /// or missed; version 1 cannot resume. It gives up after 8 attempts in a row that bring
    /// nothing (pauses from 100 ms doubling to 2 s). Exits 0 when the match has ended.
    Watch(WatchArgs),
    /// Drain a node before taking it down: POST /1/admin/drain with the watcher token.
    ///
    /// The node leaves checkin and the cluster registry at once, sends its v2 and SSE
    /// subscribers `ERROR: node draining` (they check in again and resume on another node),
    /// keeps its v1 subscribers until their matches end or its --drain-timeout, then exits 0.
    /// GET /readyz answers 503 meanwhile. Draining a node that drains already is harmless.
    /// Prints the node's answer; with --wait, returns only once the node has stopped.
    Drain(DrainArgs),
    /// A live view of a node, or with Redis of every node of the cluster, like top.
    ///
    /// Refreshed every second from each node's GET /1/stats: per node and core the
    /// subscribers, deliveries/s, the bus depth's peak over the last 1-2 s, bytes queued for
    /// subscribers, slow cut-offs, CPU % and publish->flush p99; per node its memory, open
    /// files, store thread (queue, batches/s, ops per batch, commit p50/p99) and Redis feed
    /// (events/s, lag, gap fills); the busiest matches. The other nodes are those the --url
    /// node lists in its /1/stats `cluster` (with Redis). q, Esc or Ctrl-C quits. --once
    /// prints one frame as plain text (from two answers a second apart) and exits 0.
    Top(TopArgs),
}

/// Where matches and events are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// In memory only: lost at exit (tests, benchmarks).
    Memory,
    /// Durable in a local directory (redb).
    Embedded(PathBuf),
    /// A Redis server shared by many nodes.
    Redis(RedisUrl),
}

/// A Redis URL (`redis://[user][:password@]host:port[/db]`) whose password never shows: its
/// `Display` and `Debug` write `***` in the password's place, so error bodies, log lines and
/// stats built from it are safe to show. Only [`RedisUrl::expose`] gives the raw URL, to
/// connect with.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Wraps a URL as configured.
    pub fn new(url: impl Into<String>) -> RedisUrl {
        RedisUrl(url.into())
    }

    /// The URL with its password: only for opening a client, never for display.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The password, if the URL carries one (for tests and scrubbing).
    pub fn password(&self) -> Option<&str> {
        let (_, _, userinfo) = self.split()?;
        userinfo.split_once(':').map(|(_, pw)| pw)
    }

    /// Splits off the user info: (`scheme://`, the rest after `@`, the user info).
    fn split(&self) -> Option<(&str, &str, &str)> {
        let start = self.0.find("://")? + 3;
        let rest = &self.0[start..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let at = rest[..authority_end].rfind('@')?;
        Some((&self.0[..start], &rest[at + 1..], &rest[..at]))
    }
}

impl std::fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.split() {
            Some((scheme, host, userinfo)) => match userinfo.split_once(':') {
                Some((user, _)) => write!(f, "{scheme}{user}:***@{host}"),
                None => write!(f, "{scheme}{userinfo}@{host}"),
            },
            None => f.write_str(&self.0),
        }
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<StoreSpec, String> {
        if s == "memory" {
            Ok(StoreSpec::Memory)
        } else if let Some(dir) = s.strip_prefix("embedded:") {
            if dir.is_empty() {
                return Err("embedded: needs a directory, e.g. embedded:./data".into());
            }
            Ok(StoreSpec::Embedded(PathBuf::from(dir)))
        } else if s.starts_with("redis://") {
            Ok(StoreSpec::Redis(RedisUrl::new(s)))
        } else {
            Err(format!(
                "unknown store {s:?}: use memory, embedded:<dir> or redis://host:port[/db]"
            ))
        }
    }
}

impl std::fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory"),
            StoreSpec::Embedded(dir) => write!(f, "embedded:{}", dir.display()),
            StoreSpec::Redis(url) => url.fmt(f),
        }
    }
}

/// The server's configuration. Every flag has an environment twin.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Cores (executors) to run, each pinned, each with its own stream port; 0 = every core
    /// this process may use.
    #[arg(long, env = "MATCHSTREAM_CORES", default_value_t = 0)]
    pub cores: usize,

    /// Address of the HTTP API, shared by every core (SO_REUSEPORT). Port 0 = any free port.
    #[arg(long, env = "MATCHSTREAM_API", default_value = "0.0.0.0:8888")]
    pub api: SocketAddr,

    /// First stream port: core i listens on PORT+i. 0 = any free port per core.
    #[arg(long, env = "MATCHSTREAM_STREAM_PORT", default_value_t = 9100)]
    pub stream_port: u16,

    /// The host that checkin sends clients to for this node's stream ports. Without it, this
    /// node's own checkin answers with the address the request came in on, and with a Redis
    /// store the node advertises the address its API listens on to the other nodes' checkins:
    /// 127.0.0.1 when that is a wildcard such as 0.0.0.0 (a warning at start), which reaches it
    /// only from its own host. Set it when nodes run on more than one host.
    #[arg(long, env = "MATCHSTREAM_ADVERTISE")]
    pub advertise: Option<String>,

    /// Where matches live: embedded:<dir> (durable, default), memory, or
    /// redis://host:port[/db] (many nodes).
    #[arg(long, env = "MATCHSTREAM_STORE", default_value = "embedded:./data")]
    pub store: StoreSpec,

    /// Bearer token watchers must send to write. Default: a random one, new at every start,
    /// written to a file only its owner can read (mode 0600) whose path the start-up log
    /// names: `<dir>/token` with the embedded store, else
    /// `$XDG_RUNTIME_DIR/matchstream-<API port>.token` (the system's temp directory when that
    /// is unset); the file is removed at a clean stop. Never logged.
    #[arg(long, env = "MATCHSTREAM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// A file holding the watcher token (surrounding whitespace ignored), read once at start:
    /// keeps the token out of the environment and the process list. Not together with
    /// --token. Without either, a systemd credential named `token`
    /// (`$CREDENTIALS_DIRECTORY/token`, from the unit's `LoadCredential=token:...`, tuning/)
    /// is read the same way, if there is one.
    #[arg(long, env = "MATCHSTREAM_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,

    /// This node's id in stats and the cluster registry (default: hostname and API port).
    #[arg(long, env = "MATCHSTREAM_NODE_ID")]
    pub node_id: Option<String>,

    /// Listen backlog of every listener (the kernel caps it at net.core.somaxconn).
    #[arg(long, env = "MATCHSTREAM_BACKLOG", default_value_t = 65535)]
    pub backlog: u32,

    /// Most unsent bytes queued for one subscriber before it is cut off as too slow (a
    /// `SINCE` backlog is sent in pieces of half of it and never counts against it).
    #[arg(long, env = "MATCHSTREAM_MAX_QUEUE", default_value_t = 256 * 1024)]
    pub max_queue: usize,

    /// Milliseconds a new stream connection may take to send its command line.
    #[arg(long, env = "MATCHSTREAM_COMMAND_TIMEOUT_MS", default_value_t = 10_000)]
    pub command_timeout_ms: u64,

    /// Milliseconds a client may take to send one whole HTTP request once it started.
    #[arg(long, env = "MATCHSTREAM_HTTP_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_timeout_ms: u64,

    /// Milliseconds an idle keep-alive HTTP connection is kept open.
    #[arg(long, env = "MATCHSTREAM_HTTP_IDLE_MS", default_value_t = 60_000)]
    pub http_idle_ms: u64,

    /// Milliseconds an HTTP answer may wait for the client to take any of it: a write that
    /// makes no progress that long closes the connection (a client that never reads is let
    /// go, its buffers freed). Any progress starts the wait again. 0 counts as 1.
    #[arg(
        long,
        env = "MATCHSTREAM_HTTP_WRITE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub http_write_timeout_ms: u64,

    /// Most HTTP API connections open at once on this node, all cores together; a connection
    /// above it is answered `503 too many connections` and closed. Each holds a file
    /// descriptor and at worst 64 KiB of answers plus one answer and one request (docs/api.md):
    /// the default is 1% of a tuned node's open files (tuning/), and far more than checkins
    /// need (one short request per subscriber).
    #[arg(
        long,
        env = "MATCHSTREAM_MAX_API_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_api_connections: u64,

    /// Milliseconds without anything sent after which an SSE stream (GET
    /// /1/match/<id>/stream) gets a keep-alive comment line, so that proxies do not close it as
    /// idle; checked at the core's sweep of its subscribers (every 5 s), so the comment comes up
    /// to 5 s later. 0 = no keep-alive.
    #[arg(long, env = "MATCHSTREAM_SSE_KEEPALIVE_MS", default_value_t = 15_000)]
    pub sse_keepalive_ms: u64,

    /// Milliseconds subscribers get to receive the shutdown notice before the server exits.
    /// SIGTERM or SIGINT first drains the node within it (as POST /1/admin/drain does, v1
    /// subscribers kept until their matches end), then stops; the last words of a stop after
    /// that drain get at least 1 s. A second signal cuts the drain short.
    #[arg(long, env = "MATCHSTREAM_SHUTDOWN_GRACE_MS", default_value_t = 5_000)]
    pub shutdown_grace_ms: u64,

    /// Longest a drain (POST /1/admin/drain, `matchstream drain`) keeps the node's v1
    /// subscribers, who cannot resume elsewhere, waiting for their matches to end before it
    /// stops the node and exits 0; v2 and SSE subscribers are sent to other nodes at once. A
    /// number with a unit: ms, s, m or h (a bare number is seconds), e.g. 90s, 10m.
    #[arg(
        long,
        env = "MATCHSTREAM_DRAIN_TIMEOUT",
        default_value = "10m",
        value_parser = parse_duration
    )]
    pub drain_timeout: Duration,

    /// Do not pin executors to CPUs (useful when several servers share a small machine).
    #[arg(long, env = "MATCHSTREAM_NO_PIN")]
    pub no_pin: bool,

    /// Log one line per API request at info level, target `matchstream::access`: method,
    /// path (without the query), status, bytes of the answer, microseconds from the whole
    /// request to its answer rendered, peer. Headers (the token among them) are never logged.
    #[arg(long, env = "MATCHSTREAM_ACCESS_LOG")]
    pub access_log: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            cores: 0,
            api: SocketAddr::from(([0, 0, 0, 0], 8888)),
            stream_port: 9100,
            advertise: None,
            store: StoreSpec::Embedded(PathBuf::from("./data")),
            token: None,
            token_file: None,
            node_id: None,
            backlog: 65535,
            max_queue: 256 * 1024,
            command_timeout_ms: 10_000,
            http_timeout_ms: 10_000,
            http_idle_ms: 60_000,
            http_write_timeout_ms: 10_000,
            max_api_connections: 10_000,
            sse_keepalive_ms: 15_000,
            shutdown_grace_ms: 5_000,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            no_pin: false,
            access_log: false,
        }
    }
}

/// The default of `--drain-timeout`: long enough for most of a match's v1 watchers to see
/// it end, short enough for a deploy to go on.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// Parses a duration: a whole number with a unit, `ms`, `s`, `m` or `h` (`1500ms`, `90s`,
/// `10m`, `1h`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("{text:?}: use a whole number with ms, s, m or h, e.g. 90s or 10m");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(bad()),
    };
    ms.map(Duration::from_millis).ok_or_else(bad)
}

/// `matchstream drain`.
#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// The node's HTTP API.
    #[arg(long, env = "MATCHSTREAM_URL", default_value = "http://127.0.0.1:8888")]
    pub url: String,

    /// The watcher's bearer token (the node's --token).
    #[arg(long, env = "MATCHSTREAM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Wait until the node has stopped (its API no longer answers), at most as long as the
    /// node says its drain may take plus 30 s.
    #[arg(long)]
    pub wait: bool,
}

/// `matchstream top`.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// A node's HTTP API; the other nodes of its cluster are found from its /1/stats.
    #[arg(long, env = "MATCHSTREAM_URL", default_value = "http://127.0.0.1:8888")]
    pub url: String,

    /// Print one frame as plain text, without escape codes, and exit.
    #[arg(long)]
    pub once: bool,
}

/// The name of the systemd credential holding the watcher token (`LoadCredential=token:...`).
pub const CREDENTIAL: &str = "token";

impl Config {
    /// Reads the watcher token from its file before the server starts, and clears
    /// `token_file` (a second call does nothing): `--token-file`, or else, when no `--token`
    /// is given either, the systemd credential `token` ([`CREDENTIAL`] in the directory
    /// `$CREDENTIALS_DIRECTORY` names) if that file exists. See
    /// [`Config::load_token_file_from`].
    pub fn load_token_file(&mut self) -> Result<(), crate::Error> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        self.load_token_file_from(credentials.as_deref())
    }

    /// [`Config::load_token_file`] with the credentials directory given: the file's content
    /// without surrounding whitespace, which must be one word of printable ASCII (what a
    /// client can send after `Bearer`). Refused when `--token` is set too (clap refuses the
    /// pair on the command line, this catches a `Config` built in code); an explicit token
    /// or file wins over the credential.
    pub fn load_token_file_from(
        &mut self,
        credentials: Option<&std::path::Path>,
    ) -> Result<(), crate::Error> {
        if self.token.is_none() && self.token_file.is_none() {
            self.token_file = credentials
                .map(|dir| dir.join(CREDENTIAL))
                .filter(|path| path.is_file());
        }
        let Some(path) = self.token_file.take() else {
            return Ok(());
        };
        let invalid = |why: &str| crate::Error::ReadTokenFile {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned()),
        };
        if self.token.is_some() {
            return Err(invalid("a token was given with --token as well: give one"));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|source| crate::Error::ReadTokenFile {
                path: path.clone(),
                source,
            })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(invalid("the file is empty"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "the token must be one word of printable ASCII characters",
            ));
        }
        self.token = Some(token.to_owned());
        Ok(())
    }
}

/// `matchstream demo`: a server plus a loop playing the sample match.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The server's configuration (same flags as `serve`).
    #[command(flatten)]
    pub server: Config,

    /// Speed factor for the script's pauses (2 = twice as fast).
    #[arg(long, default_value_t = 4.0)]
    pub speed: f64,

    /// Play the match this many times, then exit (0 = forever).
    #[arg(long, default_value_t = 0)]
    pub rounds: u64,
}

/// `matchstream replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The match script (see protocol/scripts/elp-tig.match); `-` reads standard input,
    /// `sample` plays the built-in sample match.
    pub script: String,

    /// The server's HTTP API.
    #[arg(long, env = "MATCHSTREAM_URL", default_value = "http://127.0.0.1:8888")]
    pub url: String,

    /// The watcher's bearer token.
    #[arg(long, env = "MATCHSTREAM_TOKEN", hide_env_values = true)]
    pub token: String,

    /// Speed factor for the script's pauses (0 = no pauses).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,

    /// Replace the script's date (YYYY-MM-DD), to play the same script as a new match.
    #[arg(long)]
    pub date: Option<String>,

    /// Cancel the match first if it exists already.
    #[arg(long)]
    pub replace: bool,
}

/// `matchstream watch`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// The match id, e.g. elp-tig-2011-09-10.
    pub match_id: String,

    /// The server's HTTP API: checkin, the match's history, and with --sse the stream.
    #[arg(long, env = "MATCHSTREAM_URL", default_value = "http://127.0.0.1:8888")]
    pub url: String,

    /// The user id to connect as (stream ports only).
    #[arg(long, default_value = "watcher")]
    pub user: String,

    /// Protocol version on the stream port (1 or 2); version 1 cannot resume a lost stream.
    #[arg(long, default_value_t = 2)]
    pub version: u8,

    /// Watch over the API port's server-sent events (GET /1/match/<id>/stream, what browsers
    /// read) instead of a stream port; a stream silent for 60 s, keep-alives included, counts
    /// as lost.
    #[arg(long, conflicts_with = "version")]
    pub sse: bool,

    /// Print the frames (or the SSE events) as they arrive instead of the match in words.
    #[arg(long)]
    pub raw: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs_parse() {
        assert_eq!("memory".parse(), Ok(StoreSpec::Memory));
        assert_eq!(
            "embedded:/tmp/x".parse(),
            Ok(StoreSpec::Embedded(PathBuf::from("/tmp/x")))
        );
        assert_eq!(
            "redis://127.0.0.1:6379/1".parse(),
            Ok(StoreSpec::Redis(RedisUrl::new("redis://127.0.0.1:6379/1")))
        );
        assert!("embedded:".parse::<StoreSpec>().is_err());
        assert!("postgres://x".parse::<StoreSpec>().is_err());
    }

    #[test]
    fn redis_urls_show_no_password() {
        for (url, shown, password) in [
            ("redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379/1", None),
            (
                "redis://:s3cretpw@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
                Some("s3cretpw"),
            ),
            (
                "redis://bob:p@ss@h:1/2?x=@y",
                "redis://bob:***@h:1/2?x=@y",
                Some("p@ss"),
            ),
            ("redis://bob@h", "redis://bob@h", None),
        ] {
            let spec: StoreSpec = url.parse().expect("spec");
            assert_eq!(spec.to_string(), shown, "{url}");
            assert!(!format!("{spec:?}").contains("s3cret"), "{url}");
            let StoreSpec::Redis(u) = spec else {
                panic!("redis expected")
            };
            assert_eq!(u.expose(), url);
            assert_eq!(u.password(), password);
        }
    }

    #[test]
    fn a_token_file_gives_the_token_without_its_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "  s3cret-from-file\n").expect("write");
        let mut c = Config {
            token_file: Some(path.clone()),
            ..Config::default()
        };
        c.load_token_file_from(None).expect("loads");
        assert_eq!(c.token.as_deref(), Some("s3cret-from-file"));
        // The file is read once: loading again changes nothing.
        assert_eq!(c.token_file, None);
        std::fs::write(&path, "other\n").expect("rewrite");
        c.load_token_file_from(None).expect("nothing to load");
        assert_eq!(c.token.as_deref(), Some("s3cret-from-file"));
        let mut none = Config::default();
        none.load_token_file_from(None).expect("nothing to load");
        assert_eq!(none.token, None);
    }

    #[test]
    fn a_systemd_credential_gives_the_token_unless_one_is_given() {
        let creds = tempfile::tempdir().expect("tempdir");
        std::fs::write(creds.path().join(CREDENTIAL), "from-credential\n").expect("write");
        let mut c = Config::default();
        c.load_token_file_from(Some(creds.path())).expect("loads");
        assert_eq!(c.token.as_deref(), Some("from-credential"));

        // An explicit token, or token file, wins.
        let mut explicit = Config {
            token: Some("given".into()),
            ..Config::default()
        };
        explicit
            .load_token_file_from(Some(creds.path()))
            .expect("kept");
        assert_eq!(explicit.token.as_deref(), Some("given"));
        let file = creds.path().join("other");
        std::fs::write(&file, "from-file").expect("write");
        let mut from_file = Config {
            token_file: Some(file),
            ..Config::default()
        };
        from_file
            .load_token_file_from(Some(creds.path()))
            .expect("file");
        assert_eq!(from_file.token.as_deref(), Some("from-file"));

        // No credential named token, or no credentials at all: nothing (a generated token).
        let empty = tempfile::tempdir().expect("tempdir");
        for dir in [Some(empty.path()), None] {
            let mut none = Config::default();
            none.load_token_file_from(dir).expect("nothing");
            assert_eq!(none.token, None);
        }
    }

    #[test]
    fn a_bad_token_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n \n").expect("write");
        let spaced = dir.path().join("spaced");
        std::fs::write(&spaced, "two words\n").expect("write");
        let missing = dir.path().join("missing");
        for (path, token, why) in [
            (&empty, None, "empty"),
            (&spaced, None, "one word"),
            (&missing, None, "No such file"),
            (&empty, Some("t"), "--token"),
        ] {
            let mut c = Config {
                token: token.map(str::to_owned),
                token_file: Some(path.clone()),
                ..Config::default()
            };
            let e = c.load_token_file_from(None).expect_err("refused");
            let text = format!("{e}: {}", std::error::Error::source(&e).expect("cause"));
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(why), "{text}");
        }
    }

    #[test]
    fn token_and_token_file_exclude_each_other() {
        let both =
            Cli::try_parse_from(["matchstream", "serve", "--token", "a", "--token-file", "/x"]);
        assert!(both.is_err());
        let cli = Cli::parse_from(["matchstream", "serve", "--token-file", "/run/t"]);
        let Command::Serve(c) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(c.token_file, Some(PathBuf::from("/run/t")));
    }

    #[test]
    fn serve_defaults_match_the_spec() {
        let cli = Cli::parse_from(["matchstream", "serve"]);
        let Command::Serve(c) = cli.command else {
            panic!("serve expected")
        };
        let d = Config::default();
        assert_eq!(c.api, d.api);
        assert_eq!(c.stream_port, 9100);
        assert_eq!(c.store, d.store);
        assert_eq!(c.backlog, 65535);
        assert_eq!(c.max_queue, d.max_queue);
        assert_eq!(c.http_write_timeout_ms, d.http_write_timeout_ms);
        assert_eq!(c.max_api_connections, d.max_api_connections);
        assert_eq!(c.sse_keepalive_ms, d.sse_keepalive_ms);
        assert_eq!(c.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
    }

    #[test]
    fn durations_parse_with_their_unit() {
        #[rustfmt::skip]
        let cases = [
            ("ms", "1500ms", Ok(Duration::from_millis(1500))),
            ("seconds", "90s", Ok(Duration::from_secs(90))),
            ("bare seconds", "45", Ok(Duration::from_secs(45))),
            ("minutes", "10m", Ok(Duration::from_secs(600))),
            ("hours", "2h", Ok(Duration::from_secs(7200))),
            ("zero", "0s", Ok(Duration::ZERO)),
            ("spaces", " 5 m ", Ok(Duration::from_secs(300))),
        ];
        for (name, text, want) in cases {
            assert_eq!(parse_duration(text), want, "{name}");
        }
        for bad in [
            "",
            "m",
            "1.5s",
            "-1s",
            "10d",
            "5 minutes",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
