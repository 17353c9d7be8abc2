//! The settings of `tuning/` against what N subscribers need: every key of the server
//! profile (`tuning/sysctl.conf`, built into the binary, so a change there shows here), the
//! unit's `LimitNOFILE` (`tuning/matchstream.service`) and the load generator's port range
//! (`tuning/sysctl-loadgen.conf`). A key whose need grows with N gets the value N needs and
//! whether tuning/'s value covers it; the others apply as they are (tuning/README.md, "The
//! settings, why, and how to verify them", says why each).

use crate::modes::advise::words::int;

/// The server profile.
pub const SYSCTL_CONF: &str = include_str!("../../../../tuning/sysctl.conf");
/// The load-generator profile.
pub const LOADGEN_CONF: &str = include_str!("../../../../tuning/sysctl-loadgen.conf");
/// The systemd unit.
pub const SERVICE: &str = include_str!("../../../../tuning/matchstream.service");

/// The largest listen backlog matchstream asks for (`--backlog`, default 65535).
pub const BACKLOG: u64 = 65535;

/// The `key = value` lines of a sysctl.d file, in order.
pub fn settings(conf: &str) -> Vec<(String, String)> {
    conf.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The `LimitNOFILE=` of a unit file.
pub fn limit_nofile(unit: &str) -> Option<u64> {
    unit.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .and_then(|v| v.trim().parse().ok())
}

/// Source ports per (source address, destination) of a `ip_local_port_range` value.
pub fn port_count(range: &str) -> Option<u64> {
    let mut it = range.split_whitespace().map(str::parse::<u64>);
    let (lo, hi) = (it.next()?.ok()?, it.next()?.ok()?);
    (hi >= lo).then(|| hi - lo + 1)
}

/// One setting: tuning/'s value and what N needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Setting {
    /// The sysctl key, or `LimitNOFILE`.
    pub key: String,
    /// The file of tuning/ that sets it.
    pub file: String,
    /// Its value there.
    pub tuning: String,
    /// What N needs (null: not N-dependent, or the figure it derives from is missing).
    pub needed: Option<u64>,
    /// Whether tuning/'s value covers `needed` (null without a need).
    pub enough: Option<bool>,
    /// How the need is computed (empty for a value that does not grow with N: it applies as
    /// it is).
    pub why: String,
}

/// What the settings need to hold: one node's subscribers and what they cost the kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Subscribers one node holds (all N when the number of nodes is unknown).
    pub per_node: u64,
    /// Descriptors a node keeps for itself (listeners, store, publishers).
    pub reserve: u64,
    /// Whether the load generator's connections end on this host too.
    pub clients_here: bool,
    /// Kernel TCP socket buffers of one node's host, in pages: what `tcp_mem` counts (the
    /// sockets' slab objects are outside it; null when not measured).
    pub kernel_pages: Option<u64>,
    /// All subscribers (the load generator opens one connection each).
    pub total: u64,
}

/// Every setting of the server profile, then `LimitNOFILE` and the load generator's port
/// range, against `load`.
pub fn against(load: &Load) -> Vec<Setting> {
    let mut out: Vec<Setting> = settings(SYSCTL_CONF)
        .into_iter()
        .map(|(key, value)| need(&key, &value, load))
        .collect();
    let unit = limit_nofile(SERVICE);
    let files = load.per_node + load.reserve;
    out.push(Setting {
        key: "LimitNOFILE".into(),
        file: "tuning/matchstream.service".into(),
        tuning: unit.map_or("?".into(), |v| v.to_string()),
        needed: Some(files),
        enough: unit.map(|v| v >= files),
        why: format!(
            "{} + {} reserve, ≤ fs.nr_open",
            int(load.per_node),
            load.reserve
        ),
    });
    if let Some((_, range)) = settings(LOADGEN_CONF)
        .into_iter()
        .find(|(k, _)| k == "net.ipv4.ip_local_port_range")
    {
        let ports = port_count(&range).unwrap_or(0).max(1);
        out.push(Setting {
            key: "net.ipv4.ip_local_port_range".into(),
            file: "tuning/sysctl-loadgen.conf".into(),
            tuning: range,
            needed: None,
            enough: None,
            why: format!(
                "{} source ports per (source address, stream port): {} connections need {} \
                 such pairs (--source-ips, or more stream ports)",
                int(ports),
                int(load.total),
                int(load.total.div_ceil(ports))
            ),
        });
    }
    out
}

/// What `key` needs (tuning/ sets it to `value`).
fn need(key: &str, value: &str, load: &Load) -> Setting {
    let s = load.per_node;
    let subs = int(s);
    let both = if load.clients_here { 2 } else { 1 };
    let (needed, why): (Option<u64>, String) = match key {
        "net.core.somaxconn" | "net.ipv4.tcp_max_syn_backlog" => (
            Some(s.min(BACKLOG)),
            format!("{subs} reconnecting at once (≤ --backlog {BACKLOG})"),
        ),
        "net.ipv4.tcp_mem" => match load.kernel_pages {
            Some(p) => (
                Some(p),
                "2nd value (pressure) ≥ kernel socket buffers (the slab is outside tcp_mem)".into(),
            ),
            None => (
                None,
                "2nd value (pressure) ≥ kernel socket buffers: not measured".into(),
            ),
        },
        "net.ipv4.tcp_max_orphans" => {
            (Some(s), format!("{subs} closed at once when a match stops"))
        }
        "net.ipv4.tcp_max_tw_buckets" => {
            (Some(s), format!("{subs} TIME-WAITs for 60 s after a match"))
        }
        "fs.file-max" => (
            Some(both * s + load.reserve),
            if load.clients_here {
                format!(
                    "{subs} + {} reserve + the load generator's {subs}",
                    load.reserve
                )
            } else {
                format!("{subs} subscribers + {} reserve", load.reserve)
            },
        ),
        "fs.nr_open" => (Some(s + load.reserve), "≥ LimitNOFILE".into()),
        "net.netfilter.nf_conntrack_max" => (
            Some(2 * both * s),
            "connections + TIME-WAITs, if loaded".into(),
        ),
        "net.netfilter.nf_conntrack_buckets" => (
            Some((2 * both * s).div_ceil(4)),
            "nf_conntrack_max / 4".into(),
        ),
        _ => (None, String::new()),
    };
    let tuned = if key == "net.ipv4.tcp_mem" {
        value.split_whitespace().nth(1)
    } else {
        value.split_whitespace().next()
    }
    .and_then(|v| v.parse::<u64>().ok());
    Setting {
        key: key.to_owned(),
        file: "tuning/sysctl.conf".into(),
        tuning: value.to_owned(),
        enough: needed.zip(tuned).map(|(n, t)| t >= n),
        needed,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(per_node: u64) -> Load {
        Load {
            per_node,
            reserve: 500,
            clients_here: false,
            kernel_pages: Some(5000),
            total: 1_000_000,
        }
    }

    #[test]
    fn the_tuning_files_are_read() {
        let s = settings(SYSCTL_CONF);
        assert!(
            s.iter().any(|(k, v)| k == "fs.nr_open" && v == "1048576"),
            "{s:?}"
        );
        assert!(s.iter().all(|(k, _)| !k.starts_with('#')));
        assert_eq!(limit_nofile(SERVICE), Some(1_048_576));
        assert_eq!(port_count("1024 65535"), Some(64_512));
        assert_eq!(port_count("60999 32768"), None);
        assert_eq!(
            settings("# c\n\na.b = 1 2\n; x\nc=3\n"),
            [
                ("a.b".to_owned(), "1 2".to_owned()),
                ("c".to_owned(), "3".to_owned())
            ]
        );
    }

    #[test]
    fn needs_grow_with_a_nodes_subscribers() {
        let rows = against(&load(19_231));
        let row = |k: &str| rows.iter().find(|r| r.key == k).expect("present").clone();
        assert_eq!(row("fs.nr_open").needed, Some(19_731));
        assert_eq!(row("fs.file-max").needed, Some(19_731));
        assert_eq!(row("net.ipv4.tcp_max_orphans").needed, Some(19_231));
        assert_eq!(row("net.core.somaxconn").needed, Some(19_231));
        assert_eq!(row("net.ipv4.tcp_mem").needed, Some(5000));
        assert_eq!(row("net.ipv4.tcp_mem").enough, Some(true));
        assert_eq!(row("LimitNOFILE").needed, Some(19_731));
        assert_eq!(row("LimitNOFILE").file, "tuning/matchstream.service");
        assert_eq!(row("net.ipv4.tcp_syncookies").needed, None);
        assert!(row("net.ipv4.ip_local_port_range")
            .why
            .contains("16 such pairs"));
        assert_eq!(row("net.ipv4.tcp_syncookies").why, "");
    }

    #[test]
    fn a_million_on_one_node_fits_tuning_and_more_does_not() {
        let mut l = load(1_000_000);
        l.clients_here = true;
        let rows = against(&l);
        let row = |k: &str| rows.iter().find(|r| r.key == k).expect("present").clone();
        assert_eq!(row("fs.nr_open").enough, Some(true));
        assert_eq!(row("fs.file-max").needed, Some(2_000_500));
        assert_eq!(row("fs.file-max").enough, Some(true));
        assert_eq!(row("net.core.somaxconn").needed, Some(65_535));
        let more = against(&Load {
            per_node: 1_100_000,
            ..l
        });
        let row = |k: &str| more.iter().find(|r| r.key == k).expect("present").clone();
        assert_eq!(row("fs.nr_open").enough, Some(false));
        assert_eq!(row("LimitNOFILE").enough, Some(false));
    }
}
