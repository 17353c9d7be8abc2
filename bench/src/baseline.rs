//! The Redis pub/sub baseline of `fanout`: the same shape (N subscribers over M channels via
//! `SUBSCRIBE`, payloads the size of matchstream's frame, E messages per channel at the same
//! rate, then a stop message) spoken in RESP on raw sockets by the same loops, and the
//! side-by-side rows of the two systems with their ratio.

use anyhow::{bail, Context};

use crate::fanout::{self, Figures, Options, Shape};
use crate::plan::{Protocol, Target};
use crate::publish::Sink;
use crate::report::ms;
use crate::requests::Codec;

/// Parses `redis://host:port` (no auth, no db: pub/sub ignores the db).
pub fn parse_url(url: &str) -> anyhow::Result<std::net::SocketAddr> {
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

/// Runs the baseline shape against the Redis at `url`.
pub fn run(opts: &Options, url: &str, run: &str, frame_bytes: usize) -> anyhow::Result<Figures> {
    let addr = parse_url(url)?;
    let channels = (0..opts.matches)
        .map(|i| format!("matchstream-bench:{run}:m{i}"))
        .collect();
    fanout::measure(&Shape {
        opts,
        system: "redis",
        protocol: Protocol::Redis,
        target: Target::Direct(vec![addr]),
        channels,
        sink: Sink::Redis {
            payload: frame_bytes,
        },
        codec: Codec::Resp,
        publish_addr: addr,
        pids: &opts.baseline_pids,
        user_prefix: String::new(),
    })
}

/// A row of the comparison: its name, how to read it, how to print it.
type Row = (&'static str, fn(&Figures) -> Option<f64>, fn(f64) -> String);

/// A figure per row: its name, one value per system, and the ratio of the first system's to
/// the second's when there are two.
pub fn rows(systems: &[&Figures]) -> Vec<Vec<String>> {
    let figures: [Row; 18] = [
        ("connected", |f| Some(f.connected as f64), int),
        ("failed", |f| Some(f.failed as f64), int),
        ("expected deliveries", |f| Some(f.expected as f64), int),
        ("delivered", |f| Some(f.delivered as f64), int),
        ("lost", |f| Some(f.lost as f64), int),
        ("duplicated", |f| Some(f.duplicated as f64), int),
        ("out of order", |f| Some(f.out_of_order as f64), int),
        ("deliveries/s", |f| Some(f.deliveries_per_second), int),
        ("latency p50 ms", |f| Some(f.latency.p50_ms), ms),
        ("latency p90 ms", |f| Some(f.latency.p90_ms), ms),
        ("latency p99 ms", |f| Some(f.latency.p99_ms), ms),
        ("latency p99.9 ms", |f| Some(f.latency.p99_9_ms), ms),
        ("latency max ms", |f| Some(f.latency.max_ms), ms),
        ("connect phase s", |f| Some(f.connect_seconds), secs),
        (
            "published events/s",
            |f| Some(f.publish.events_per_second),
            int,
        ),
        (
            "server bytes/subscriber",
            |f| f.server.as_ref().map(|s| s.bytes_per_subscriber),
            int,
        ),
        (
            "server CPU s/M deliveries",
            |f| {
                f.server
                    .as_ref()
                    .map(|s| s.cpu_seconds_per_million_deliveries)
            },
            secs,
        ),
        ("bench CPU s", |f| Some(f.bench.cpu_seconds), secs),
    ];
    figures
        .iter()
        .map(|(name, get, fmt)| {
            let values: Vec<Option<f64>> = systems.iter().map(|f| get(f)).collect();
            let mut row = vec![(*name).to_owned()];
            row.extend(values.iter().map(|v| v.map_or("-".into(), fmt)));
            if let [Some(a), Some(b)] = values[..] {
                row.push(if b != 0.0 {
                    format!("{:.2}x", a / b)
                } else {
                    "-".into()
                });
            } else if values.len() == 2 {
                row.push("-".into());
            }
            row
        })
        .collect()
}

fn int(v: f64) -> String {
    format!("{v:.0}")
}

fn secs(v: f64) -> String {
    format!("{v:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_parse() {
        assert_eq!(
            parse_url("redis://127.0.0.1:6380").expect("url").port(),
            6380
        );
        assert_eq!(parse_url("redis://127.0.0.1").expect("url").port(), 6379);
        assert!(parse_url("http://127.0.0.1").is_err());
        assert!(parse_url("redis://u:p@127.0.0.1").is_err());
    }

    #[test]
    fn rows_show_both_systems_and_their_ratio() {
        let a = Figures {
            system: "matchstream".into(),
            delivered: 200,
            ..Figures::default()
        };
        let b = Figures {
            system: "redis".into(),
            delivered: 100,
            ..Figures::default()
        };
        let rows = rows(&[&a, &b]);
        let delivered = rows.iter().find(|r| r[0] == "delivered").expect("row");
        assert_eq!(delivered[1..], ["200", "100", "2.00x"]);
        let single = super::rows(&[&a]);
        assert!(single.iter().all(|r| r.len() == 2));
    }
}
