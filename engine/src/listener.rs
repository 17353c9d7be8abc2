//! Listening sockets: built with socket2 (SO_REUSEADDR, backlog, SO_REUSEPORT for the API
//! port shared by every core) and a core's accept loop, which spawns one task per connection
//! after setting its options: no Nagle delay on every connection; keepalive and a user timeout
//! to find dead peers on a stream port's connections, which live as long as a match. An API
//! connection gets those only if it becomes a subscriber ([`crate::api::stream`]): most ask one
//! thing and go, and five `setsockopt`s each were a measurable share of a short request's
//! cost (issue 14).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{future, FutureExt};
use glommio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::Error;
use crate::shard::Shard;

/// Binds a listening socket; `reuse_port` lets every core bind the same API port.
pub fn bind(
    addr: SocketAddr,
    backlog: u32,
    reuse_port: bool,
) -> Result<std::net::TcpListener, Error> {
    let context = |e: std::io::Error| Error::Bind { addr, source: e };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(context)?;
    socket.set_reuse_address(true).map_err(context)?;
    if reuse_port {
        socket.set_reuse_port(true).map_err(context)?;
    }
    socket.bind(&addr.into()).map_err(context)?;
    socket
        .listen(i32::try_from(backlog).unwrap_or(i32::MAX))
        .map_err(context)?;
    Ok(socket.into())
}

/// Binds one core's listener of the API port: shared by every core (`SO_REUSEPORT`), handing
/// over connections once they have sent something ([`defer_accept`]).
pub fn bind_api(addr: SocketAddr, backlog: u32) -> Result<std::net::TcpListener, Error> {
    let listener = bind(addr, backlog, true)?;
    defer_accept(&listener);
    Ok(listener)
}

/// Seconds the kernel holds an API connection that has sent nothing before handing it to
/// `accept` all the same (`TCP_DEFER_ACCEPT`, nginx's `listen ... deferred`).
const DEFER_ACCEPT_SECS: libc::c_int = 1;

/// The API listener hands over a connection when its first bytes have arrived, not at the
/// handshake: a core accepts and answers a new connection in one wake instead of waking once
/// for the accept and once more for the request (issue 14; bench/RESULTS.md, "HTTP reads
/// against nginx"). A client that connects and says nothing is seen about a second later, and
/// `--http-idle-ms` runs from then. Best effort: a kernel without it accepts as before.
fn defer_accept(listener: &std::net::TcpListener) {
    // SAFETY: setsockopt on our open socket with a c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&DEFER_ACCEPT_SECS as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        log::debug!(target: "matchstream::listener",
            "no TCP_DEFER_ACCEPT on the API port: {}", std::io::Error::last_os_error());
    }
}

/// Hands a bound std listener to the current glommio executor.
pub fn adopt(listener: std::net::TcpListener) -> TcpListener {
    // SAFETY: the fd is a listening TCP socket whose ownership moves into glommio here.
    unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

/// Idle seconds before the first keepalive probe on an accepted connection: at most 300, under
/// the 350 s after which cloud load balancers and NAT gateways drop an idle flow without a
/// word, so a quiet match's subscribers keep their path open and a vanished one is noticed.
pub const KEEPALIVE_IDLE_SECS: libc::c_int = 240;
/// Seconds between unanswered keepalive probes.
pub const KEEPALIVE_INTERVAL_SECS: libc::c_int = 30;
/// Unanswered probes before the kernel closes the connection.
pub const KEEPALIVE_PROBES: libc::c_int = 4;
/// How long sent data may stay unacknowledged before the kernel closes the connection
/// (`TCP_USER_TIMEOUT`), in milliseconds: keepalive does not probe while data is in flight,
/// and without it a peer that vanished mid-send is retried for about 15 minutes
/// (`tcp_retries2`). Equal to the keepalive schedule (240 s + 4 × 30 s), because the kernel
/// also applies it to keepalive: shorter, one lost probe would close an idle connection.
pub const USER_TIMEOUT_MS: libc::c_uint = 360_000;

/// Sets one integer socket option.
fn set_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt with a pointer to a local int of the size we pass; a bad fd is an
    // error return, not undefined behaviour.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the kernel find a dead peer on an accepted connection (host gone, cable cut, NAT
/// state lost: no FIN, no RST) by itself, whatever the host's `net.ipv4.tcp_keepalive_*`:
/// keepalive probes after [`KEEPALIVE_IDLE_SECS`] of silence, and [`USER_TIMEOUT_MS`] for
/// data that is never acknowledged. The socket is then closed and the subscriber's slot freed
/// at the next write or sweep (tuning/README.md, "Dead peers").
pub fn detect_dead_peers(fd: RawFd) -> io::Result<()> {
    set_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set_option(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPIDLE,
        KEEPALIVE_IDLE_SECS,
    )?;
    set_option(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        KEEPALIVE_INTERVAL_SECS,
    )?;
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, KEEPALIVE_PROBES)?;
    let user_timeout = libc::c_int::try_from(USER_TIMEOUT_MS).unwrap_or(libc::c_int::MAX);
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, user_timeout)
}

/// Which port a listener serves: what its connections are, and so which options they get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// A stream port: every connection is a subscriber, set up to find a dead peer.
    Stream,
    /// The API port: requests, most of them short; a stream request sets its own options.
    Api,
}

impl Port {
    /// The name the logs use.
    pub fn name(self) -> &'static str {
        match self {
            Port::Stream => "stream",
            Port::Api => "api",
        }
    }
}

/// [`detect_dead_peers`] on a subscriber's connection; a failure is logged at debug (the
/// connection still works, it is only found dead later).
pub fn watch_for_dead_peer(stream: &TcpStream, core: usize, what: &str) {
    if let Err(e) = detect_dead_peers(stream.as_raw_fd()) {
        log::debug!(target: "matchstream::listener",
            "core {core}: cannot set keepalive options on a {what} connection: {e}");
    }
}

/// Runs a connection's task on this core; a panic in it is caught and logged, it never takes
/// the core down.
pub fn spawn_connection(core: usize, what: &'static str, task: impl Future<Output = ()> + 'static) {
    glommio::spawn_local(async move {
        if AssertUnwindSafe(task).catch_unwind().await.is_err() {
            log::error!(target: "matchstream::listener",
                "a {what} connection task panicked on core {core}; the core goes on");
        }
    })
    .detach();
}

/// Accepts connections until shutdown, running `serve` on each in its own task. A panic in
/// a connection's task is caught and logged; it never takes the core down.
pub async fn accept_loop<F, Fut>(shard: Rc<Shard>, listener: TcpListener, port: Port, serve: F)
where
    F: Fn(Rc<Shard>, TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let what = port.name();
    let mut last_error_logged: Option<std::time::Instant> = None;
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            shard.shutdown.wait().await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                if port == Port::Stream {
                    watch_for_dead_peer(&stream, shard.core, what);
                }
                spawn_connection(shard.core, what, serve(shard.clone(), stream));
            }
            Some(Err(e)) => {
                // Typically EMFILE at the open-files limit: say so at most once a second and
                // give closing connections a moment instead of spinning on the error.
                if last_error_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    log::warn!(target: "matchstream::listener",
                        "core {} cannot accept {what} connections: {e}", shard.core);
                    last_error_logged = Some(std::time::Instant::now());
                }
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    log::debug!(target: "matchstream::listener", "core {} stopped accepting {what}", shard.core);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one integer socket option back.
    fn get_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt into a local int whose size we pass.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt {name}: {}", io::Error::last_os_error());
        value
    }

    #[test]
    fn an_accepted_socket_reads_back_every_dead_peer_option() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let _client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        let fd = accepted.as_raw_fd();
        assert_eq!(get_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
        detect_dead_peers(fd).expect("options set");
        assert_eq!(get_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        let idle = get_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE);
        assert_eq!(idle, KEEPALIVE_IDLE_SECS);
        assert!(idle <= 300, "keepalive idle {idle} s is over 300 s");
        assert_eq!(get_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 30);
        assert_eq!(get_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 4);
        assert_eq!(
            get_option(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
            360_000
        );
    }

    #[test]
    fn the_user_timeout_covers_the_whole_keepalive_schedule() {
        let schedule = KEEPALIVE_IDLE_SECS + KEEPALIVE_INTERVAL_SECS * KEEPALIVE_PROBES;
        assert_eq!(i64::from(USER_TIMEOUT_MS), i64::from(schedule) * 1000);
    }

    #[test]
    fn a_closed_descriptor_is_an_error_not_a_crash() {
        assert!(detect_dead_peers(-1).is_err());
    }
}
