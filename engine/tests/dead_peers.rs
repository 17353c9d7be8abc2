//! Every subscriber's connection (a stream port's, or an API connection that became an event
//! stream) carries its own dead-peer detection (tuning/README.md, "Dead peers"): keepalive
//! after at most 300 s of silence and a `TCP_USER_TIMEOUT`, whatever the host's
//! `net.ipv4.tcp_keepalive_*`. A plain API connection does not need it (it is closed when idle). The server runs in this process, so the test finds
//! the server's end of its own connections among the process's descriptors and reads the
//! options back with getsockopt.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use common::{read_until, subscribe, TestServer};
use matchstream_engine::listener::{
    KEEPALIVE_IDLE_SECS, KEEPALIVE_INTERVAL_SECS, KEEPALIVE_PROBES, USER_TIMEOUT_MS,
};

/// An IPv4 address of a socket (`getsockname` or `getpeername`), or None.
fn address(
    fd: RawFd,
    get: unsafe extern "C" fn(
        libc::c_int,
        *mut libc::sockaddr,
        *mut libc::socklen_t,
    ) -> libc::c_int,
) -> Option<u16> {
    // SAFETY: an all-zero sockaddr_in is a valid value to be overwritten.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `addr`.
    let rc = unsafe { get(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut len) };
    (rc == 0 && libc::c_int::from(addr.sin_family) == libc::AF_INET)
        .then(|| u16::from_be(addr.sin_port))
}

/// The server's descriptors for the connection from local port `peer` to port `port`.
fn server_ends(port: u16, peer: u16) -> Vec<RawFd> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")
        .expect("fd list")
        .flatten()
    {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        if address(fd, libc::getsockname) == Some(port)
            && address(fd, libc::getpeername) == Some(peer)
        {
            found.push(fd);
        }
    }
    found
}

/// Waits until the server has accepted the connection of `client` to `port` and set its
/// options (the descriptor exists a moment before the accept loop gets to them): returns its
/// server ends once keepalive is on for every one, or after 10 s whatever there is, for the
/// assertions to fail on.
fn accepted(port: u16, client: &TcpStream) -> Vec<RawFd> {
    let peer = client.local_addr().expect("local addr").port();
    let started = Instant::now();
    loop {
        let fds = server_ends(port, peer);
        let set = |fd: &RawFd| option(*fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE) == 1;
        if !fds.is_empty() && (fds.iter().all(set) || started.elapsed() > Duration::from_secs(10)) {
            return fds;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server never accepted port {peer} -> {port}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One integer socket option.
fn option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
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
    assert_eq!(rc, 0, "getsockopt {name} on fd {fd}");
    value
}

/// Asserts the dead-peer options on every server end of a connection.
fn assert_dead_peer_options(what: &str, fds: &[RawFd]) {
    for &fd in fds {
        let idle = option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE);
        assert_eq!(
            option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            1,
            "{what}"
        );
        assert!(idle <= 300, "{what}: keepalive idle {idle} s");
        assert_eq!(idle, KEEPALIVE_IDLE_SECS, "{what}");
        assert_eq!(
            option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
            KEEPALIVE_INTERVAL_SECS,
            "{what}"
        );
        assert_eq!(
            option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
            KEEPALIVE_PROBES,
            "{what}"
        );
        let user_timeout = option(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT);
        assert_eq!(
            i64::from(user_timeout),
            i64::from(USER_TIMEOUT_MS),
            "{what}"
        );
        assert!(user_timeout > 0, "{what}: no TCP_USER_TIMEOUT");
    }
}

#[test]
fn subscribers_get_keepalive_and_a_user_timeout_and_plain_api_clients_do_not() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();

    // A subscriber on each core's port, past its handshake: its socket now lives in an
    // outbox (a duplicate of the accepted descriptor, with the same options).
    for &port in &server.ports {
        let mut s = subscribe(port, &format!("VERSION:2:CONNECT:u{port}:MATCH:{id}"));
        let status = read_until(&mut s, b"\n\r\n");
        assert!(status.ends_with(b"\n\r\n"));
        assert_dead_peer_options(&format!("subscriber on {port}"), &accepted(port, &s));
    }

    // An API connection that became an event stream: a subscriber, held as long.
    let mut sse = TcpStream::connect(server.api).expect("connect api");
    write!(sse, "GET /1/match/{id}/stream HTTP/1.1\r\nHost: t\r\n\r\n").expect("request");
    let head = read_until(&mut sse, b"\n\n");
    assert!(
        head.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert_dead_peer_options("sse stream", &accepted(server.api.port(), &sse));

    // A plain API connection is spared the five system calls (issue 14): it asks and goes, and
    // idle it is closed after --http-idle-ms anyway. TCP_NODELAY is set once its first answer
    // is sent (it stays open): checked after a second answer.
    let mut api = TcpStream::connect(server.api).expect("connect api");
    for _ in 0..2 {
        write!(api, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").expect("request");
        let answer = read_until(&mut api, br#"{"status":"ok"}"#);
        assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    let peer = api.local_addr().expect("local addr").port();
    let ends = server_ends(server.api.port(), peer);
    assert!(!ends.is_empty(), "the server's end of the api connection");
    for fd in ends {
        assert_eq!(
            option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            0,
            "api connection"
        );
        assert_eq!(
            option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY),
            1,
            "api connection"
        );
    }

    // A connection still in its handshake (no command line yet).
    let mut early = TcpStream::connect(("127.0.0.1", server.ports[0])).expect("connect");
    assert_dead_peer_options("handshake", &accepted(server.ports[0], &early));
    early
        .set_read_timeout(Some(Duration::from_millis(10)))
        .expect("timeout");
    let _ = early.read(&mut [0u8; 16]);
}
