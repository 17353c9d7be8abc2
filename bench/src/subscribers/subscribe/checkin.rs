//! A subscriber's checkin (`GET /1/checkin`) and the stream connect it leads to.

use std::io::{self, Read, Write};
use std::time::Instant;

use matchstream_client::{write_request, Checkin};
use mio::{Interest, Token};

use super::{Phase, Shard, Stage};
use crate::net;
use crate::subscribers::outcome::Failure;
use crate::subscribers::plan::Target;

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
            match net::connect_result(&sub.stream) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(_) => return fail,
            }
            let Target::Checkin(api) = &self.plan.target else {
                return fail;
            };
            self.scratch.clear();
            let path = format!("{}/1/checkin", api.url.prefix());
            write_request(
                "GET",
                api.url.host_header(),
                &path,
                None,
                None,
                false,
                &mut self.scratch,
            );
            // A request of a hundred bytes to a fresh socket: it fits its send buffer whole.
            if sub.stream.write(&self.scratch).ok() != Some(self.scratch.len()) {
                return fail;
            }
            *sent = true;
        }
        let response = loop {
            match sub.stream.read(buf) {
                Ok(0) => match parser.eof() {
                    Some(r) => break r,
                    None => return fail,
                },
                Ok(n) => match parser.feed(&buf[..n]) {
                    Ok(Some(r)) => break r,
                    Ok(None) => {}
                    Err(_) => return fail,
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return fail,
            }
        };
        let addr = match serde_json::from_slice::<Checkin>(&response.body) {
            Ok(a) if response.status == 200 => net::resolve(&a.host, a.port).ok(),
            _ => None,
        };
        let Some(addr) = addr else {
            return fail;
        };
        let elapsed = sub.t0.elapsed();
        self.out.checkin.record(elapsed);
        let source = self.plan.source_ips.as_ref().map(|s| s.pick(sub.index));
        let mut stream =
            net::connect(addr, source).map_err(|e| Err(Failure::of_connect(net::classify(&e))))?;
        let _ = self.poll.registry().deregister(&mut sub.stream);
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| Err(Failure::of_connect(net::classify(&e))))?;
        let now = Instant::now();
        sub.stream = stream;
        sub.phase = Phase::Connecting;
        sub.t0 = now;
        let index = sub.index;
        self.bound(key, index, now, Stage::Connect);
        Ok(())
    }
}
