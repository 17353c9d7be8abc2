//! Pre-flight checks: what would make a run meaningless is refused before any load starts,
//! with the reason (exit status 2): a `--json`/`--hgrm` path that cannot be written (found
//! only after a long run otherwise), source addresses that are not on this host (they would
//! show as `bench_limit` failures), an API or a baseline that does not answer, a
//! `--server-pid` of no process (which would read as "0 B per subscriber").

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use matchstream_client::HttpClient;

use crate::net::{Api, SourceIps};
use crate::options::Output;

/// How long an API or baseline may take to answer a pre-flight probe.
pub const PROBE: Duration = Duration::from_secs(5);

/// A file the run will write at its end can be written now (the file is left as it was).
pub fn writable(path: &Path, flag: &str) -> anyhow::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("{flag} {}: cannot be written", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// The report paths of `output`.
pub fn output(output: &Output) -> anyhow::Result<()> {
    if let Some(p) = &output.json {
        writable(p, "--json")?;
    }
    Ok(())
}

/// Every source address is one this host can bind.
pub fn source_ips(ips: &SourceIps) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for i in 0..ips.len() as u64 {
        let ip = ips.pick(i);
        if !bindable(ip) {
            missing.push(ip.to_string());
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        bail!(
            "--source-ips: {} address(es) are not on this host ({}{}): add them (ip addr add \
             ... dev lo) or use 127.0.0.2-127.0.0.254",
            missing.len(),
            shown.join(", "),
            if missing.len() > 5 { ", ..." } else { "" }
        );
    }
    Ok(())
}

fn bindable(ip: IpAddr) -> bool {
    let Ok(s) = socket2::Socket::new(
        socket2::Domain::for_address(SocketAddr::new(ip, 0)),
        socket2::Type::STREAM,
        None,
    ) else {
        return false;
    };
    s.bind(&SocketAddr::new(ip, 0).into()).is_ok()
}

/// Every pid names a process we can sample.
pub fn pids(pids: &[u32], flag: &str) -> anyhow::Result<()> {
    for &pid in pids {
        if !crate::figures::sysstat::process_exists(pid) {
            bail!("{flag} {pid}: no such process (or /proc/{pid}/stat is unreadable)");
        }
    }
    Ok(())
}

/// The API answers `GET /1/matches` with 200.
pub fn api(api: &Api) -> anyhow::Result<()> {
    let s = std::net::TcpStream::connect_timeout(&api.addr, PROBE)
        .with_context(|| format!("the API at {} does not answer", api.addr))?;
    s.set_read_timeout(Some(PROBE))?;
    s.set_write_timeout(Some(PROBE))?;
    drop(s);
    let response = HttpClient::for_url(api.url.clone())
        .get("/1/matches")
        .with_context(|| format!("the API at {} does not answer", api.addr))?;
    if response.status != 200 {
        bail!(
            "the API at {} answered GET /1/matches with {}: {}",
            api.addr,
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_paths_are_refused_and_writable_ones_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = dir.path().join("r.json");
        writable(&fresh, "--json").expect("writable");
        assert!(!fresh.exists(), "a probe leaves no file behind");
        std::fs::write(&fresh, b"old").expect("write");
        writable(&fresh, "--json").expect("writable");
        assert_eq!(std::fs::read(&fresh).expect("read"), b"old");
        let missing = dir.path().join("no/such/dir/r.json");
        let e = writable(&missing, "--json").expect_err("no directory");
        assert!(format!("{e:#}").contains("--json"), "{e:#}");
    }

    #[test]
    fn addresses_not_on_the_host_are_refused() {
        source_ips(&SourceIps::parse("127.0.0.2-127.0.0.4").expect("ips")).expect("loopback");
        // TEST-NET-3 (RFC 5737) is never a local address.
        let e = source_ips(&SourceIps::parse("203.0.113.7,127.0.0.2").expect("ips"))
            .expect_err("not local");
        assert!(format!("{e:#}").contains("203.0.113.7"), "{e:#}");
    }

    #[test]
    fn pids_of_no_process_are_refused() {
        pids(&[std::process::id()], "--server-pid").expect("ourselves");
        let e = pids(&[u32::MAX - 7], "--server-pid").expect_err("no process");
        assert!(format!("{e:#}").contains("no such process"), "{e:#}");
    }

    #[test]
    fn an_api_that_does_not_answer_is_refused() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let url = Api::parse(&format!("http://127.0.0.1:{port}")).expect("url");
        let e = api(&url).expect_err("down");
        assert!(format!("{e:#}").contains("does not answer"), "{e:#}");
    }
}
