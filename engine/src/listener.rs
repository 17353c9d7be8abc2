//! Listening sockets: built with socket2 (SO_REUSEADDR, backlog, SO_REUSEPORT for the API
//! port shared by every core) and a core's accept loop, which spawns one task per connection.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd};
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

/// Hands a bound std listener to the current glommio executor.
pub fn adopt(listener: std::net::TcpListener) -> TcpListener {
    // SAFETY: the fd is a listening TCP socket whose ownership moves into glommio here.
    unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

/// Turns on TCP keepalive, so a subscriber whose host vanished (no FIN, no RST) is found by
/// the kernel on the host's `net.ipv4.tcp_keepalive_*` schedule (see tuning/).
fn keepalive(stream: &TcpStream) {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a local int of the size we pass.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Accepts connections until shutdown, running `serve` on each in its own task. A panic in
/// a connection's task is caught and logged; it never takes the core down.
pub async fn accept_loop<F, Fut>(
    shard: Rc<Shard>,
    listener: TcpListener,
    what: &'static str,
    serve: F,
) where
    F: Fn(Rc<Shard>, TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
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
                keepalive(&stream);
                let fut = serve(shard.clone(), stream);
                let core = shard.core;
                glommio::spawn_local(async move {
                    if AssertUnwindSafe(fut).catch_unwind().await.is_err() {
                        log::error!(target: "matchstream::listener",
                            "a {what} connection task panicked on core {core}; the core goes on");
                    }
                })
                .detach();
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
