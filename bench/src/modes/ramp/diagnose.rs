//! Naming what failed in a ramp step, phase by phase, with what the kernel's TCP counters
//! of that phase say about the cause (accept queue overflow, SYN queue, TCP memory) and
//! whether the bench itself ran out of descriptors or ports.

use std::collections::BTreeMap;

use crate::figures::report;
use crate::modes::{clients, http};

/// A phase: its name and the reports it produced.
pub type Phase<'a> = (
    &'a str,
    Option<&'a http::Report>,
    Option<&'a clients::Report>,
);

/// Names what failed in a step, phase by phase, with what the kernel counters say.
pub fn judge(
    phases: &[Phase<'_>],
    kernel: &BTreeMap<String, BTreeMap<String, u64>>,
) -> Option<String> {
    let mut parts = Vec::new();
    for (name, h, c) in phases {
        let mut what = Vec::new();
        if let Some(h) = h.filter(|h| !h.clean()) {
            what.push(format!(
                "http {} of {} failed (non-2xx {}, {})",
                h.n - h.ok,
                h.n,
                h.non_2xx,
                report::counts(&h.errors)
            ));
        }
        if let Some(c) = c.filter(|c| c.failed > 0 || c.play_error.is_some()) {
            what.push(format!(
                "clients {} of {} failed ({})",
                c.failed,
                c.n,
                report::counts(&c.failures)
            ));
            if let Some(e) = &c.play_error {
                what.push(format!("playing the match failed: {e}"));
            }
        }
        if what.is_empty() {
            continue;
        }
        let counters = kernel.get(*name).cloned().unwrap_or_default();
        let mut text = format!("{name}: {}", what.join("; "));
        if let Some(hint) = hint(&counters, *c, *h) {
            text.push_str(&format!(" — {hint}"));
        }
        parts.push(text);
    }
    (!parts.is_empty()).then(|| parts.join(" | "))
}

/// What the kernel counters (and the failure kinds) say about the cause.
pub fn hint(
    k: &BTreeMap<String, u64>,
    c: Option<&clients::Report>,
    h: Option<&http::Report>,
) -> Option<String> {
    let get = |key: &str| k.get(key).copied().unwrap_or(0);
    let mut hints = Vec::new();
    let shown: Vec<String> = k
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k} +{v}"))
        .collect();
    if get("ListenOverflows") > 0 || get("ListenDrops") > 0 {
        hints.push("accept queue overflow: raise somaxconn / --backlog".to_owned());
    }
    if get("TCPReqQFullDrop") > 0 {
        hints.push("SYN queue full: raise tcp_max_syn_backlog or enable tcp_syncookies".into());
    }
    if get("TCPMemoryPressures") > 0 || get("TCPAbortOnMemory") > 0 {
        hints.push("TCP memory pressure: raise net.ipv4.tcp_mem".into());
    }
    let bench_limit = c.is_some_and(|c| c.failures.contains_key("bench_limit"))
        || h.is_some_and(|h| h.errors.contains_key("bench_limit"));
    if bench_limit {
        hints.push(
            "the bench ran out of local resources (open files or ephemeral ports): \
             use --source-ips, raise the open-files limit"
                .into(),
        );
    }
    if shown.is_empty() && hints.is_empty() {
        return None;
    }
    let mut out = String::new();
    if !shown.is_empty() {
        out.push_str(&format!("kernel: {}", shown.join(", ")));
    }
    if !hints.is_empty() {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&hints.join("; "));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn overflows_are_named_as_such() {
        let mut k = BTreeMap::new();
        k.insert("ListenOverflows".to_owned(), 12);
        k.insert("ListenDrops".to_owned(), 12);
        k.insert("TCPMemoryPressures".to_owned(), 0);
        let text = hint(&k, None, None).expect("hint");
        assert!(text.contains("ListenOverflows +12"), "{text}");
        assert!(text.contains("accept queue overflow: raise somaxconn / --backlog"));
        assert!(!text.contains("TCPMemoryPressures"));
        assert_eq!(hint(&BTreeMap::new(), None, None), None);
    }

    #[test]
    fn clean_phases_are_not_failures() {
        let h = http::Report {
            n: 10,
            ok: 10,
            ..http::Report::default()
        };
        assert_eq!(judge(&[("http", Some(&h), None)], &BTreeMap::new()), None);
        let bad = http::Report {
            n: 10,
            ok: 7,
            non_2xx: 3,
            ..http::Report::default()
        };
        let text = judge(&[("http", Some(&bad), None)], &BTreeMap::new()).expect("failure");
        assert!(
            text.starts_with("http: http 3 of 10 failed (non-2xx 3"),
            "{text}"
        );
    }
}
