//! What the kernel says about processes and TCP: a process's RSS and CPU time from
//! `/proc/<pid>/{status,stat}`, its open files and their limit (`/proc/<pid>/{fd,limits}`), the
//! bench's own CPU time (getrusage of itself and its waited-for
//! workers), the `TcpExt` counters of `/proc/net/netstat` whose deltas explain failures
//! (accept-queue overflows, TCP memory pressure), the kernel's TCP socket memory
//! (`/proc/net/sockstat`) and its slab memory (`/proc/meminfo`).

use std::collections::BTreeMap;

/// The `TcpExt` counters a ramp step reports (deltas over the step).
pub const NETSTAT_KEYS: [&str; 7] = [
    "ListenOverflows",
    "ListenDrops",
    "TCPMemoryPressures",
    "TCPAbortOnMemory",
    "TCPReqQFullDrop",
    "TCPReqQFullDoCookies",
    "TCPBacklogDrop",
];

/// Resident set size of process `pid` (`self` for this one), in bytes.
pub fn rss_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Files process `pid` has open: the entries of `/proc/<pid>/fd` (a walk: 19,000 entries
/// take a few milliseconds, fine every few seconds, not in a hot loop).
pub fn open_files(pid: u32) -> Option<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(dir.count() as u64)
}

/// The soft open-files limit of process `pid` (`Max open files` in `/proc/<pid>/limits`;
/// `None` when unreadable or unlimited).
pub fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User plus system CPU seconds of process `pid` so far.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU seconds (user + system) of this process and of its children that have been waited for.
pub fn own_cpu_seconds() -> f64 {
    fn usage(who: libc::c_int) -> f64 {
        // SAFETY: an all-zero rusage is valid; getrusage writes into the one we own.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::getrusage(who, &mut u) } != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    }
    usage(libc::RUSAGE_SELF) + usage(libc::RUSAGE_CHILDREN)
}

/// CPU seconds (user + system) of the calling thread.
pub fn thread_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage writes into the one we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU seconds (user + system) of this process alone (all its threads).
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage writes into the one we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// The machine's CPU time so far, from the first line of `/proc/stat`: ticks idle (idle and
/// iowait) and ticks in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// Idle and iowait ticks, every CPU together.
    pub idle: u64,
    /// Every tick of every CPU.
    pub total: u64,
}

impl MachineTicks {
    /// Reads `/proc/stat` (zero when unreadable).
    pub fn now() -> MachineTicks {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_proc_stat(&t))
            .unwrap_or_default()
    }

    /// The share of the machine idle between `before` and this reading (`None` when nothing
    /// was counted between them).
    pub fn idle_since(&self, before: &MachineTicks) -> Option<f64> {
        let total = self.total.checked_sub(before.total)?;
        let idle = self.idle.checked_sub(before.idle)?;
        (total > 0).then(|| idle as f64 / total as f64)
    }
}

/// Parses the `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal ...
pub fn parse_proc_stat(text: &str) -> Option<MachineTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    // guest and guest_nice (9th, 10th) are already counted in user and nice.
    let total = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some(MachineTicks { idle, total })
}

/// CPUs this process may run on (its affinity mask; 1 if unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The command line of process `pid` (empty if unreadable).
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether process `pid` exists (its `/proc/PID/stat` is readable).
pub fn process_exists(pid: u32) -> bool {
    cpu_seconds(&pid.to_string()).is_some()
}

/// The `TcpExt` counters of `/proc/net/netstat` (empty if unreadable).
pub fn netstat() -> BTreeMap<String, u64> {
    std::fs::read_to_string("/proc/net/netstat")
        .map(|t| parse_netstat(&t))
        .unwrap_or_default()
}

/// Parses the `TcpExt:` name line and value line.
pub fn parse_netstat(text: &str) -> BTreeMap<String, u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return BTreeMap::new();
    };
    names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .filter_map(|(n, v)| Some((n.to_owned(), v.parse().ok()?)))
        .collect()
}

/// The [`NETSTAT_KEYS`] deltas from `before` to `after`.
pub fn netstat_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    NETSTAT_KEYS
        .iter()
        .map(|k| {
            let d = after
                .get(*k)
                .unwrap_or(&0)
                .saturating_sub(*before.get(*k).unwrap_or(&0));
            ((*k).to_owned(), d)
        })
        .collect()
}

/// The kernel's TCP socket memory in bytes: the `mem` field (pages) of the `TCP:` line of
/// `/proc/net/sockstat` times the page size. Machine-wide: every TCP socket of the host, both
/// ends of a loopback connection included (`None` if unreadable).
pub fn tcp_socket_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    Some(parse_sockstat_tcp_pages(&text)? * page_size())
}

/// The `mem` field (pages) of the `TCP:` line of a `/proc/net/sockstat` text.
pub fn parse_sockstat_tcp_pages(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "mem")?;
    words.next()?.parse().ok()
}

/// The kernel's slab memory in bytes: the `Slab:` line (kB) of `/proc/meminfo`, world-readable.
/// Machine-wide: every socket's `struct sock`, inode, dentry, file and epoll item is there,
/// outside `tcp_mem` (`None` if unreadable).
pub fn slab_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    Some(parse_meminfo_kib(&text, "Slab")? * 1024)
}

/// The value (kB) of line `key` of a `/proc/meminfo` text.
pub fn parse_meminfo_kib(text: &str, key: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.split_once(':').is_some_and(|(k, _)| k == key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// RSS and CPU of the processes given by `--server-pid`, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerSample {
    /// Summed RSS in bytes.
    pub rss_bytes: u64,
    /// Summed CPU seconds.
    pub cpu_seconds: f64,
}

/// CPU seconds of every thread of the processes `pids`, keyed by thread id (threads that
/// cannot be read are left out). The busiest thread's share tells a single-threaded server
/// that is saturated (Redis at one core of many) from one that is idle.
pub fn server_thread_cpu_seconds(pids: &[u32]) -> BTreeMap<u64, f64> {
    let mut out = BTreeMap::new();
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let name = task.file_name();
            let Some(tid) = name.to_str().and_then(|t| t.parse::<u64>().ok()) else {
                continue;
            };
            if let Some(secs) = cpu_seconds(&format!("{pid}/task/{tid}")) {
                out.insert(tid, secs);
            }
        }
    }
    out
}

/// The largest CPU-seconds increase of one thread between two
/// samples (threads that appeared in between count from 0); see [`server_thread_cpu_seconds`].
pub fn busiest_thread_delta(before: &BTreeMap<u64, f64>, after: &BTreeMap<u64, f64>) -> f64 {
    after
        .iter()
        .map(|(tid, secs)| secs - before.get(tid).copied().unwrap_or(0.0))
        .fold(0.0, f64::max)
}

/// Samples every pid (those that cannot be read count 0).
pub fn sample_servers(pids: &[u32]) -> ServerSample {
    pids.iter().fold(ServerSample::default(), |acc, pid| {
        let p = pid.to_string();
        ServerSample {
            rss_bytes: acc.rss_bytes + rss_bytes(&p).unwrap_or(0),
            cpu_seconds: acc.cpu_seconds + cpu_seconds(&p).unwrap_or(0.0),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_gives_the_tcp_pages() {
        let text = "sockets: used 276\nTCP: inuse 263 orphan 105 tw 104120 alloc 263 mem 84\n\
                    UDP: inuse 0 mem 7\n";
        assert_eq!(parse_sockstat_tcp_pages(text), Some(84));
        assert_eq!(parse_sockstat_tcp_pages("UDP: inuse 0 mem 7\n"), None);
        assert_eq!(parse_sockstat_tcp_pages("TCP: inuse 3 mem x\n"), None);
        assert!(tcp_socket_memory_bytes().is_some());
    }

    #[test]
    fn meminfo_gives_the_slab() {
        let text = "MemTotal:       24598952 kB\nSlab:             411960 kB\n\
                    SReclaimable:     201212 kB\n";
        assert_eq!(parse_meminfo_kib(text, "Slab"), Some(411_960));
        assert_eq!(parse_meminfo_kib(text, "SReclaimable"), Some(201_212));
        assert_eq!(parse_meminfo_kib(text, "Sla"), None);
        assert_eq!(parse_meminfo_kib("Slab: x kB\n", "Slab"), None);
        assert!(slab_bytes().is_some());
    }

    #[test]
    fn machine_ticks_count_idle_and_iowait_of_the_cpu_line() {
        let text =
            "cpu  408902 452803 222647 17703 16775 0 24260 14296 7 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let t = parse_proc_stat(text).expect("parses");
        assert_eq!(t.idle, 17703 + 16775);
        assert_eq!(
            t.total,
            408902 + 452803 + 222647 + 17703 + 16775 + 24260 + 14296
        );
        let later = MachineTicks {
            idle: t.idle + 10,
            total: t.total + 100,
        };
        assert_eq!(later.idle_since(&t), Some(0.1));
        assert_eq!(t.idle_since(&t), None);
        assert_eq!(parse_proc_stat("intr 1 2\n"), None);
    }

    #[test]
    fn netstat_parses_and_deltas() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                    TcpExt: 0 5 7\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        let before = parse_netstat(text);
        assert_eq!(before.get("ListenDrops"), Some(&7));
        let mut after = before.clone();
        after.insert("ListenOverflows".into(), 9);
        let d = netstat_delta(&before, &after);
        assert_eq!(d.get("ListenOverflows"), Some(&4));
        assert_eq!(d.get("TCPMemoryPressures"), Some(&0));
    }

    #[test]
    fn the_busiest_thread_is_the_largest_increase() {
        let before: BTreeMap<u64, f64> = [(1, 5.0), (2, 1.0)].into();
        // Thread 2 ran 2.5 s, thread 1 only 0.5 s, thread 3 (new) 1.0 s.
        let after: BTreeMap<u64, f64> = [(1, 5.5), (2, 3.5), (3, 1.0)].into();
        assert_eq!(busiest_thread_delta(&before, &after), 2.5);
        assert_eq!(busiest_thread_delta(&after, &after), 0.0);
    }

    #[test]
    fn own_threads_are_readable() {
        let pid = std::process::id();
        let threads = server_thread_cpu_seconds(&[pid]);
        assert!(threads.contains_key(&u64::from(pid)), "{threads:?}");
        assert!(server_thread_cpu_seconds(&[u32::MAX]).is_empty());
    }

    #[test]
    fn own_process_figures_are_readable() {
        let pid = std::process::id();
        assert!(
            open_files(pid).is_some_and(|n| n >= 3),
            "stdin, stdout, stderr at least"
        );
        assert!(open_files_limit(pid).is_some_and(|n| n > 0));
        assert!(open_files(u32::MAX).is_none());
        assert!(rss_bytes("self").is_some_and(|b| b > 0));
        assert!(cpu_seconds("self").is_some());
    }

    #[test]
    fn own_cpu_seconds_count_this_process_and_its_children() {
        // CPU burnt by this thread shows in the figure (at least what the thread counted).
        let (start, thread_start) = (own_cpu_seconds(), thread_cpu_seconds());
        let mut x = 0u64;
        while thread_cpu_seconds() - thread_start < 0.05 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let burnt = thread_cpu_seconds() - thread_start;
        let grown = own_cpu_seconds() - start;
        assert!(grown >= burnt - 0.002, "grew {grown} s for {burnt} s burnt");
        // So does a child's, once waited for, which the process's own figure lacks.
        let (start, process_start) = (own_cpu_seconds(), process_cpu_seconds());
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done"])
            .status()
            .expect("run sh");
        assert!(status.success());
        let children = (own_cpu_seconds() - start) - (process_cpu_seconds() - process_start);
        assert!(children >= 0.03, "a child's {children} s");
    }
}
