//! Outgoing sockets: non-blocking connects from rotating source addresses, the open-files
//! limit, and the classification of socket errors into the kinds the reports count.
//!
//! One source address has about 28 000 ephemeral ports per destination (the default
//! `ip_local_port_range`), so a run of more connections binds each socket to the next address
//! of `--source-ips` (e.g. `127.0.0.2-127.0.0.254`) before connecting. `IP_BIND_ADDRESS_NO_PORT`
//! tells the kernel to pick the port at `connect` time, when it knows the whole 4-tuple, instead
//! of reserving a port per address at `bind` time.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;

use anyhow::{bail, Context};
use matchstream_client::Url;
use socket2::{Domain, Protocol, Socket, Type};

/// The API under test: its URL, and the address its host resolved to, once, at the start of
/// a run (every load connection goes there, in this process and in the workers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Api {
    /// The URL as given (`Host` header, path prefix).
    pub url: Url,
    /// Its host's first address.
    pub addr: SocketAddr,
}

impl Api {
    /// Parses `http://host:port[/prefix]` (or a bare `host:port`) and resolves the host.
    pub fn parse(text: &str) -> anyhow::Result<Api> {
        let url = Url::parse(text)?;
        let addr = url.socket_addrs()?[0];
        Ok(Api { url, addr })
    }
}

/// File descriptors a process keeps for itself (stdio, epoll, pipes, control connections)
/// when it computes how many connections it may open.
pub const RESERVED_FDS: u64 = 128;

/// The source addresses of `--source-ips`, used in turn.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceIps(Vec<Ipv4Addr>);

impl SourceIps {
    /// Parses `A-B` (an inclusive range of IPv4 addresses), `A,B,C`, or a single address.
    pub fn parse(spec: &str) -> anyhow::Result<SourceIps> {
        let mut out = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((a, b)) = part.split_once('-') {
                let a: Ipv4Addr = a
                    .trim()
                    .parse()
                    .with_context(|| format!("bad address {a:?}"))?;
                let b: Ipv4Addr = b
                    .trim()
                    .parse()
                    .with_context(|| format!("bad address {b:?}"))?;
                let (a, b) = (u32::from(a), u32::from(b));
                if b < a || b - a > 1 << 20 {
                    bail!("bad address range {part:?}");
                }
                out.extend((a..=b).map(Ipv4Addr::from));
            } else {
                out.push(
                    part.parse()
                        .with_context(|| format!("bad address {part:?}"))?,
                );
            }
        }
        if out.is_empty() {
            bail!("--source-ips names no address");
        }
        Ok(SourceIps(out))
    }

    /// The address for the `i`th connection.
    pub fn pick(&self, i: u64) -> IpAddr {
        IpAddr::V4(self.0[(i % self.0.len() as u64) as usize])
    }

    /// How many addresses there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for a parsed list; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Starts a non-blocking connect to `addr`, from `source` if given (port chosen at connect).
/// The connect completes later: the socket turns writable, then [`connect_result`] tells how.
pub fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<mio::net::TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    if let Some(ip) = source {
        bind_no_port(&socket)?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(socket.into()))
}

/// After a connecting socket turned writable (or readable): `Ok(true)` once connected,
/// `Ok(false)` for a spurious wake-up, `Err` with the reason the connect failed.
pub fn connect_result(stream: &mio::net::TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

fn bind_no_port(socket: &Socket) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd, a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What kind of trouble a socket error is, as the reports count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    /// `ECONNREFUSED`: nothing listens, or the listener's queue refused us.
    Refused,
    /// `ETIMEDOUT` (the kernel gave up retrying SYNs).
    TimedOut,
    /// `ECONNRESET` / `EPIPE`: the peer reset the connection.
    Reset,
    /// A limit of the bench's own machine: `EMFILE`, `ENFILE`, `EADDRNOTAVAIL` (no free
    /// ephemeral port), `ENOBUFS`, `ENOMEM`.
    BenchLimit,
    /// Anything else.
    Other,
}

/// Classifies an I/O error.
pub fn classify(e: &io::Error) -> IoKind {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => IoKind::Refused,
        Some(libc::ETIMEDOUT) => IoKind::TimedOut,
        Some(libc::ECONNRESET) | Some(libc::EPIPE) | Some(libc::ECONNABORTED) => IoKind::Reset,
        Some(libc::EMFILE)
        | Some(libc::ENFILE)
        | Some(libc::EADDRNOTAVAIL)
        | Some(libc::ENOBUFS)
        | Some(libc::ENOMEM) => IoKind::BenchLimit,
        _ => IoKind::Other,
    }
}

/// The open-files limit `(soft, hard)` of this process.
pub fn nofile() -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        (r.rlim_cur, r.rlim_max)
    } else {
        (1024, 1024)
    }
}

/// Raises the soft open-files limit to the hard one (children inherit it); returns the soft
/// limit found before.
pub fn raise_nofile() -> u64 {
    let (soft, hard) = nofile();
    if soft < hard {
        let r = libc::rlimit {
            rlim_cur: hard as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct we own. Failure leaves the old limit in force.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
    }
    soft
}

/// How many connections one process may hold at once: the soft open-files limit less
/// [`RESERVED_FDS`] and `transient` (descriptors open only for a while, e.g. checkins).
pub fn connections_per_process(transient: u64) -> u64 {
    nofile().0.saturating_sub(RESERVED_FDS + transient).max(16)
}

/// Resolves `host:port` (an IP literal or a name) to its first address.
pub fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address")))
}

/// `host:port` (a `--targets` entry) to an address.
pub fn parse_target(t: &str) -> anyhow::Result<SocketAddr> {
    let (host, port) = t
        .rsplit_once(':')
        .with_context(|| format!("target {t:?}: expected host:port"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("target {t:?}: bad port"))?;
    resolve(host, port).with_context(|| format!("resolving {t}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ips_parse_ranges_and_lists() {
        let r = SourceIps::parse("127.0.0.2-127.0.0.254").expect("range");
        assert_eq!(r.len(), 253);
        assert_eq!(r.pick(0), "127.0.0.2".parse::<IpAddr>().expect("ip"));
        assert_eq!(r.pick(253), "127.0.0.2".parse::<IpAddr>().expect("ip"));
        let l = SourceIps::parse("127.0.0.3, 127.0.0.4").expect("list");
        assert_eq!(l.pick(1), "127.0.0.4".parse::<IpAddr>().expect("ip"));
        assert!(SourceIps::parse("127.0.0.9-127.0.0.2").is_err());
        assert!(SourceIps::parse("").is_err());
        assert!(SourceIps::parse("nope").is_err());
    }

    #[test]
    fn a_source_address_is_used_for_the_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let source: IpAddr = "127.0.0.7".parse().expect("ip");
        let stream = connect(addr, Some(source)).expect("connect");
        let (_accepted, peer) = listener.accept().expect("accept");
        assert_eq!(peer.ip(), source);
        drop(stream);
    }

    #[test]
    fn refused_connects_are_classified() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let stream = connect(SocketAddr::from(([127, 0, 0, 1], port)), None).expect("socket");
        let mut result = Ok(false);
        for _ in 0..200 {
            result = connect_result(&stream);
            if !matches!(result, Ok(false)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let e = result.expect_err("refused");
        assert_eq!(classify(&e), IoKind::Refused);
    }
}
