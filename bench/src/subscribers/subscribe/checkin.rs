//! A subscriber's checkin (`GET /1/checkin`) and the stream connect it leads to.

use std::io::{self, Read, Write};
use std::time::Instant;

use matchstream_client::{write_request, Checkin};
use mio::net::TcpStream;

use super::{Phase, Shard};
use crate::net;
use crate::net::Api;
use crate::subscribers::outcome::Failure;
use crate::subscribers::plan::Target;
use crate::wire::http::{Response, ResponseParser};

impl Shard<'_> {
    /// Drives a checkin; on its answer, starts the stream connect.
    pub(super) fn checkin(
        &mut self,
        key: usize,
        buf: &mut [u8],
    ) -> Result<(), Result<(), Failure>> {
        let fail = Err(Err(Failure::CheckinFailed));
        let Some(sub) = self.subs.get_mut(key) else {
            return Ok(());
        };
        let Phase::Checkin { parser, sent } = &mut sub.phase else {
            return Ok(());
        };
        if !*sent {
            let Target::Checkin(api) = &self.plan.target else {
                return fail;
            };
            match send(&sub.stream, api, &mut self.scratch) {
                Ok(true) => *sent = true,
                Ok(false) => return Ok(()),
                Err(()) => return fail,
            }
        }
        let response = match read_answer(&mut sub.stream, parser, buf) {
            Ok(Some(response)) => response,
            Ok(None) => return Ok(()),
            Err(()) => return fail,
        };
        let addr = match serde_json::from_slice::<Checkin>(&response.body) {
            Ok(a) if response.status == 200 => net::resolve(&a.host, a.port).ok(),
            _ => None,
        };
        let Some(addr) = addr else {
            return fail;
        };
        let elapsed = sub.t0.elapsed();
        let index = sub.index;
        self.out.checkin.record(elapsed);
        let stream = self
            .connect_as(addr, index, key)
            .map_err(|e| Err(Failure::of_connect(net::classify(&e))))?;
        self.switch(key, stream, Phase::Connecting, Instant::now());
        Ok(())
    }
}

/// Sends the checkin request once the connect has completed: `Ok(false)` while it has not.
fn send(stream: &TcpStream, api: &Api, scratch: &mut Vec<u8>) -> Result<bool, ()> {
    match net::connect_result(stream) {
        Ok(true) => {}
        Ok(false) => return Ok(false),
        Err(_) => return Err(()),
    }
    scratch.clear();
    let path = format!("{}/1/checkin", api.url.prefix());
    write_request(
        "GET",
        api.url.host_header(),
        &path,
        None,
        None,
        false,
        scratch,
    );
    // A request of a hundred bytes to a fresh socket: it fits its send buffer whole.
    let mut stream = stream;
    if stream.write(scratch).ok() != Some(scratch.len()) {
        return Err(());
    }
    Ok(true)
}

/// Reads what has arrived of the answer: `Ok(None)` until it is whole.
fn read_answer(
    stream: &mut TcpStream,
    parser: &mut ResponseParser,
    buf: &mut [u8],
) -> Result<Option<Response>, ()> {
    loop {
        match stream.read(buf) {
            Ok(0) => return parser.eof().map(Some).ok_or(()),
            Ok(n) => match parser.feed(&buf[..n]) {
                Ok(Some(r)) => return Ok(Some(r)),
                Ok(None) => {}
                Err(_) => return Err(()),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}
