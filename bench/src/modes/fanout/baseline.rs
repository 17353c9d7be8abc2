//! The baselines of `fanout`: Redis pub/sub (`redis://host:port`) and NATS core pub/sub
//! (`nats://host:port`), each run in the same shape as matchstream (N subscribers over M
//! channels or subjects, payloads as long as matchstream's frame, the same events, the same
//! flow control driving the same publisher loop), spoken on raw sockets by the same loops.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::publisher::publish::Sink;
use crate::wire::decode::Protocol;

/// Which system a baseline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// Redis pub/sub.
    Redis,
    /// NATS core.
    Nats,
}

/// A baseline given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// The system.
    pub system: System,
    /// The URL as given.
    pub url: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Server pids to sample (`--baseline-pid`, in the order of the baselines).
    pub pids: Vec<u32>,
}

impl Baseline {
    /// Parses `redis://host[:port]` or `nats://host[:port]`.
    pub fn parse(url: &str) -> anyhow::Result<Baseline> {
        let (system, addr) = if url.starts_with("redis://") {
            (System::Redis, parse_redis_url(url)?)
        } else if url.starts_with("nats://") {
            (System::Nats, crate::wire::nats::parse_url(url)?)
        } else {
            bail!("{url}: a baseline is redis://host:port or nats://host:port");
        };
        Ok(Baseline {
            system,
            url: url.to_owned(),
            addr,
            pids: Vec::new(),
        })
    }

    /// Parses every `--baseline` and pairs the `--baseline-pid`s with them in order.
    pub fn parse_all(urls: &[String], pids: &[u32]) -> anyhow::Result<Vec<Baseline>> {
        if pids.len() > urls.len() {
            bail!(
                "{} --baseline-pid for {} --baseline: give at most one pid per baseline, in the \
                 same order",
                pids.len(),
                urls.len()
            );
        }
        let mut out = urls
            .iter()
            .map(|u| Baseline::parse(u))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (b, pid) in out.iter_mut().zip(pids) {
            b.pids.push(*pid);
        }
        Ok(out)
    }

    /// `redis` or `nats`.
    pub fn name(&self) -> &'static str {
        match self.system {
            System::Redis => "redis",
            System::Nats => "nats",
        }
    }

    /// The subscribers' protocol.
    pub fn protocol(&self) -> Protocol {
        match self.system {
            System::Redis => Protocol::Redis,
            System::Nats => Protocol::Nats,
        }
    }

    /// The publisher's sink, payloads of `payload` bytes.
    pub fn sink(&self, payload: usize) -> Sink {
        match self.system {
            System::Redis => Sink::Redis { payload },
            System::Nats => Sink::Nats { payload },
        }
    }

    /// The channels (Redis) or subjects (NATS) of run `run`.
    pub fn channels(&self, run: &str, matches: u64) -> Vec<String> {
        (0..matches)
            .map(|i| match self.system {
                System::Redis => format!("matchstream-bench:{run}:m{i}"),
                System::Nats => format!("matchstream-bench.{run}.m{i}"),
            })
            .collect()
    }

    /// Pre-flight: the server answers a ping within `timeout`.
    pub fn ping(&self, timeout: Duration) -> anyhow::Result<()> {
        let what = format!("the {} baseline at {}", self.name(), self.url);
        let mut s = TcpStream::connect_timeout(&self.addr, timeout)
            .with_context(|| format!("{what} does not answer"))?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let (request, want): (&[u8], &[u8]) = match self.system {
            System::Redis => (b"PING\r\n", b"+PONG\r\n"),
            System::Nats => (b"CONNECT {\"verbose\":false}\r\nPING\r\n", b"PONG\r\n"),
        };
        s.write_all(request)
            .with_context(|| format!("writing to {what}"))?;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(want.len()).any(|w| w == want) {
            let n = s
                .read(&mut buf)
                .with_context(|| format!("{what} did not answer PING"))?;
            if n == 0 || got.len() > 64 * 1024 {
                bail!(
                    "{what} did not answer PING (it said {:?})",
                    String::from_utf8_lossy(&got[..got.len().min(200)])
                );
            }
            got.extend_from_slice(&buf[..n]);
            if got.starts_with(b"-") {
                bail!(
                    "{what} refused PING: {}",
                    String::from_utf8_lossy(&got[..got.len().min(200)]).trim()
                );
            }
        }
        Ok(())
    }
}

/// Parses `redis://host:port` (no auth, no db: pub/sub ignores the db).
pub fn parse_redis_url(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("redis://")
        .with_context(|| format!("{url}: expected redis://host:port"))?;
    let rest = rest.split('/').next().unwrap_or(rest);
    if rest.contains('@') {
        bail!("{url}: the baseline does not authenticate");
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().with_context(|| format!("{url}: bad port"))?),
        None => (rest, 6379),
    };
    crate::net::resolve(host, port).with_context(|| format!("resolving {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_urls_parse() {
        let r = Baseline::parse("redis://127.0.0.1:6380").expect("url");
        assert_eq!(
            (r.system, r.addr.port(), r.name()),
            (System::Redis, 6380, "redis")
        );
        assert_eq!(
            parse_redis_url("redis://127.0.0.1").expect("url").port(),
            6379
        );
        let n = Baseline::parse("nats://127.0.0.1").expect("url");
        assert_eq!((n.system, n.addr.port()), (System::Nats, 4222));
        assert!(Baseline::parse("http://127.0.0.1").is_err());
        assert!(Baseline::parse("redis://u:p@127.0.0.1").is_err());
    }

    #[test]
    fn pids_pair_with_baselines_in_order() {
        let urls = vec![
            "redis://127.0.0.1:1".to_owned(),
            "nats://127.0.0.1:2".to_owned(),
        ];
        let all = Baseline::parse_all(&urls, &[10]).expect("parse");
        assert_eq!(all[0].pids, [10]);
        assert!(all[1].pids.is_empty());
        assert!(Baseline::parse_all(&urls[..1], &[1, 2]).is_err());
    }

    #[test]
    fn channels_are_unique_per_run() {
        let r = Baseline::parse("redis://127.0.0.1:1").expect("url");
        let n = Baseline::parse("nats://127.0.0.1:1").expect("url");
        assert_eq!(
            r.channels("abc", 2),
            ["matchstream-bench:abc:m0", "matchstream-bench:abc:m1"]
        );
        assert_eq!(n.channels("abc", 1), ["matchstream-bench.abc.m0"]);
    }

    #[test]
    fn a_baseline_that_is_down_is_refused_before_the_load() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let b = Baseline::parse(&format!("redis://127.0.0.1:{port}")).expect("url");
        let e = b.ping(Duration::from_secs(2)).expect_err("down");
        assert!(format!("{e:#}").contains("does not answer"), "{e:#}");
    }
}
