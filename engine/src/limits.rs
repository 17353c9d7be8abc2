//! Host limits that cap a node's capacity, read at start and logged with numbers (SPEC §5).
//!
//! What each warning means and how to raise the limit is explained in `tuning/README.md`.

/// Sockets and files the server keeps open besides subscribers (listeners, store, logs).
const RESERVED_FDS: u64 = 64;

/// The soft and hard open-files limits of this process.
pub fn open_files_limit() -> (u64, u64) {
    rlimit(libc::RLIMIT_NOFILE)
}

/// The soft and hard locked-memory limits (bytes) of this process.
pub fn memlock_limit() -> (u64, u64) {
    rlimit(libc::RLIMIT_MEMLOCK)
}

fn rlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(resource, &mut lim) } == 0 {
        (lim.rlim_cur, lim.rlim_max)
    } else {
        (0, 0)
    }
}

/// Raises the soft open-files limit to the hard limit; returns the new soft limit.
pub fn raise_open_files_limit() -> u64 {
    let (soft, hard) = open_files_limit();
    if soft < hard {
        let lim = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
            return hard;
        }
    }
    soft
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// `net.core.somaxconn`, the kernel's cap on any listen backlog.
pub fn somaxconn() -> Option<u64> {
    read_sysctl("/proc/sys/net/core/somaxconn")?.parse().ok()
}

/// `net.ipv4.ip_local_port_range` as (low, high).
pub fn local_port_range() -> Option<(u16, u16)> {
    let s = read_sysctl("/proc/sys/net/ipv4/ip_local_port_range")?;
    let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

/// `net.ipv4.ip_local_reserved_ports` as inclusive ranges ("8888,9100-9163").
pub fn reserved_ports() -> Vec<(u16, u16)> {
    read_sysctl("/proc/sys/net/ipv4/ip_local_reserved_ports")
        .map_or_else(Vec::new, |s| parse_port_list(&s))
}

fn parse_port_list(s: &str) -> Vec<(u16, u16)> {
    s.split(',')
        .filter_map(|part| {
            let part = part.trim();
            match part.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => part.parse().ok().map(|p| (p, p)),
            }
        })
        .collect()
}

/// Logs one warning per limit that caps capacity; returns the warnings (for tests).
pub fn check(backlog: u32, stream_ports: &[u16], api_port: u16) -> Vec<String> {
    let mut warnings = Vec::new();
    let (soft, hard) = open_files_limit();
    let capacity = soft.saturating_sub(RESERVED_FDS);
    log::info!(target: "matchstream::limits",
        "open-files limit {soft} (hard {hard}): room for about {capacity} subscribers and API connections");
    if soft < 100_000 {
        warnings.push(format!(
            "open-files limit is {soft} (hard {hard}): this node holds at most about {capacity} \
             subscribers; raise LimitNOFILE / ulimit -n (see tuning/)"
        ));
    }
    if let Some(max) = somaxconn() {
        if u64::from(backlog) > max {
            warnings.push(format!(
                "net.core.somaxconn is {max}, below the backlog {backlog}: the kernel caps every \
                 accept queue at {max}, so connect bursts above that are dropped or delayed \
                 (sysctl net.core.somaxconn={backlog})"
            ));
        }
    }
    if let Some((low, high)) = local_port_range() {
        let reserved = reserved_ports();
        let clash: Vec<u16> = stream_ports
            .iter()
            .copied()
            .chain(std::iter::once(api_port))
            .filter(|p| (low..=high).contains(p))
            .filter(|p| !reserved.iter().any(|(a, b)| (*a..=*b).contains(p)))
            .collect();
        if !clash.is_empty() {
            warnings.push(format!(
                "ports {clash:?} lie inside net.ipv4.ip_local_port_range {low}-{high}: outgoing \
                 connections may take them while the server is down; reserve them with \
                 net.ipv4.ip_local_reserved_ports"
            ));
        }
    }
    let (memlock, _) = memlock_limit();
    if memlock < 64 * 1024 * 1024 && memlock != libc::RLIM_INFINITY {
        log::info!(target: "matchstream::limits",
            "memlock limit {} KiB (io_uring rings on kernels before 5.12 count against it)", memlock / 1024);
    }
    for w in &warnings {
        log::warn!(target: "matchstream::limits", "{w}");
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read() {
        let (soft, hard) = open_files_limit();
        assert!(soft > 0 && soft <= hard);
        assert!(somaxconn().is_some());
        let (low, high) = local_port_range().expect("port range");
        assert!(low < high);
    }

    #[test]
    fn reserved_port_lists_parse() {
        assert_eq!(
            parse_port_list("8888,9100-9163"),
            vec![(8888, 8888), (9100, 9163)]
        );
        assert_eq!(parse_port_list(""), vec![]);
    }

    #[test]
    fn a_backlog_above_somaxconn_is_reported_with_numbers() {
        let max = somaxconn().expect("somaxconn");
        let warnings = check(u32::try_from(max + 1).unwrap_or(u32::MAX), &[], 1);
        assert!(warnings
            .iter()
            .any(|w| w.contains(&format!("somaxconn is {max}"))));
    }
}
