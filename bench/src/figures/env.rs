//! The environment a report opens with: where and how the figures were taken (kernel, cores,
//! limits, the TCP sysctls that cap connection counts and connect rates, the bench's build
//! and source revision, its arguments), so that runs are compared only like with like.

use std::collections::BTreeMap;
use std::process::Command;

/// The sysctls recorded (the ones tuning/ sets and ramp failures point at).
pub const SYSCTLS: [&str; 13] = [
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_mem",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_abort_on_overflow",
    "net.ipv4.tcp_tw_reuse",
    "net.core.netdev_max_backlog",
    "fs.file-max",
    "fs.nr_open",
    "kernel.sched_autogroup_enabled",
];

/// The environment of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Environment {
    /// `matchstream-bench <version>`.
    pub tool: String,
    /// Start of the run, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_at: String,
    /// Host name.
    pub hostname: String,
    /// Kernel release and version (`uname -rv`).
    pub kernel: String,
    /// Machine architecture.
    pub arch: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// CPU model name.
    pub cpu_model: String,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// Open-files limit of the bench: soft as found, soft as raised, hard.
    pub open_files: OpenFiles,
    /// The [`SYSCTLS`] (value as the kernel prints it; absent if unreadable).
    pub sysctls: BTreeMap<String, String>,
    /// The rustc that built the bench.
    pub rustc: String,
    /// Source revision (`git rev-parse HEAD`), if the bench runs from a git checkout.
    pub git_sha: Option<String>,
    /// Uncommitted changes in that checkout.
    pub git_dirty: Option<bool>,
    /// The command line.
    pub args: Vec<String>,
    /// The bench's scheduler autogroup and its nice (`/proc/self/autogroup`, e.g.
    /// `/autogroup-152 nice -10`): with `kernel.sched_autogroup_enabled=1` sessions share the
    /// CPU equally whatever their processes' nice values.
    #[serde(default)]
    pub autogroup: Option<String>,
}

/// The open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenFiles {
    /// Soft limit when the bench started.
    pub soft_initial: u64,
    /// Soft limit after the bench raised it to the hard one.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

impl Environment {
    /// Captures the environment; `soft_initial` is what [`crate::net::raise_nofile`] found.
    pub fn capture(soft_initial: u64) -> Environment {
        let (soft, hard) = crate::net::nofile();
        let (git_sha, git_dirty) = git();
        Environment {
            tool: format!("matchstream-bench {}", env!("CARGO_PKG_VERSION")),
            started_at: utc_now(),
            hostname: read("/proc/sys/kernel/hostname").unwrap_or_default(),
            kernel: format!(
                "{} {}",
                read("/proc/sys/kernel/osrelease").unwrap_or_default(),
                read("/proc/sys/kernel/version").unwrap_or_default()
            ),
            arch: std::env::consts::ARCH.to_owned(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpu_model(),
            memory_bytes: mem_total(),
            open_files: OpenFiles {
                soft_initial,
                soft,
                hard,
            },
            sysctls: SYSCTLS
                .iter()
                .filter_map(|k| Some(((*k).to_owned(), sysctl(k)?)))
                .collect(),
            rustc: option_env!("MATCHSTREAM_BENCH_RUSTC")
                .unwrap_or("unknown")
                .to_owned(),
            git_sha,
            git_dirty,
            args: redact(std::env::args()),
            autogroup: read("/proc/self/autogroup"),
        }
    }

    /// The header lines printed above a table.
    pub fn describe(&self) -> String {
        let s = |k: &str| self.sysctls.get(k).map_or("?", String::as_str);
        format!(
            "{} on {} ({}, {} cores, {} GiB), kernel {}\n\
             open files {} (hard {}), somaxconn {}, tcp_max_syn_backlog {}, \
             ip_local_port_range {}, tcp_mem {}\n\
             git {}{}, {}; scheduler autogroup {}",
            self.tool,
            self.hostname,
            self.cpu_model,
            self.cores,
            self.memory_bytes >> 30,
            self.kernel.split_whitespace().next().unwrap_or(""),
            self.open_files.soft,
            self.open_files.hard,
            s("net.core.somaxconn"),
            s("net.ipv4.tcp_max_syn_backlog"),
            s("net.ipv4.ip_local_port_range"),
            s("net.ipv4.tcp_mem"),
            self.git_sha
                .as_deref()
                .map_or("unknown", |h| &h[..h.len().min(12)]),
            if self.git_dirty == Some(true) {
                " (dirty)"
            } else {
                ""
            },
            self.rustc,
            match (s("kernel.sched_autogroup_enabled"), &self.autogroup) {
                ("1", Some(group)) => group.as_str(),
                ("0", _) => "off",
                _ => "?",
            },
        )
    }
}

/// A sysctl's value by its dotted name.
pub fn sysctl(name: &str) -> Option<String> {
    read(&format!("/proc/sys/{}", name.replace('.', "/")))
}

fn read(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// `git rev-parse HEAD` in the working directory, else beside the executable.
fn git() -> (Option<String>, Option<bool>) {
    let mut dirs = vec![std::path::PathBuf::from(".")];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Into::into))
    {
        dirs.push(dir);
    }
    for dir in dirs {
        let out = Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["rev-parse", "HEAD"])
            .stderr(std::process::Stdio::null())
            .output();
        let Ok(out) = out else { return (None, None) };
        if !out.status.success() {
            continue;
        }
        let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let dirty = Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["status", "--porcelain", "--untracked-files=no"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| !o.stdout.is_empty());
        return (Some(sha), dirty);
    }
    (None, None)
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut out = Vec::new();
    matchstream_protocol::frame::format_timestamp(ms, &mut out);
    let text = String::from_utf8_lossy(&out).replacen(' ', "T", 1);
    format!("{text}Z")
}

/// Flags whose value is a secret, hidden in reports.
const SECRET_FLAGS: [&str; 5] = ["--token", "--requirepass", "--pass", "--password", "--auth"];

/// A command line with the values of secret flags (`--token T`, `--token=T`) replaced by
/// `***`, fit for a report.
pub fn redact(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut hide_next = false;
    for a in args {
        if hide_next {
            out.push("***".to_owned());
            hide_next = false;
            continue;
        }
        match a.split_once('=') {
            Some((flag, _)) if SECRET_FLAGS.contains(&flag) => out.push(format!("{flag}=***")),
            _ => {
                hide_next = SECRET_FLAGS.contains(&a.as_str());
                out.push(a);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_from_reports() {
        let args = [
            "fanout",
            "--token",
            "T0k3n",
            "--api",
            "x",
            "--token=abc",
            "--tokenish",
            "y",
        ];
        let got = redact(args.iter().map(|s| (*s).to_owned()));
        assert_eq!(
            got,
            [
                "fanout",
                "--token",
                "***",
                "--api",
                "x",
                "--token=***",
                "--tokenish",
                "y"
            ]
        );
    }

    #[test]
    fn the_environment_is_captured() {
        let e = Environment::capture(1024);
        assert!(e.cores >= 1);
        assert!(e.kernel.len() > 3, "{}", e.kernel);
        assert!(e.sysctls.contains_key("net.core.somaxconn"));
        assert_eq!(e.open_files.soft_initial, 1024);
        assert!(e.started_at.ends_with('Z') && e.started_at.contains('T'));
        assert!(e.describe().contains("somaxconn"));
    }
}
