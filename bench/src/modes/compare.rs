//! `matchstream-bench compare A.json B.json`: the figures of two reports side by side, only
//! those that differ, with B's change relative to A; and a warning for every difference in
//! the environments (machine, kernel, sysctls, revision) or the arguments, which make the two
//! figures not comparable.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

use crate::figures::report::Table;

/// Options of `compare`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The first report (--json of any subcommand).
    pub a: PathBuf,
    /// The second report, of the same subcommand.
    pub b: PathBuf,
    /// Show every figure, also those equal in both.
    #[arg(long)]
    pub all: bool,
}

fn load(path: &PathBuf) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a JSON report", path.display()))
}

/// Numeric leaves of `v` as `(path, value)`, skipping per-run details and histograms.
pub fn numbers(v: &Value, path: &str, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.push((path.to_owned(), f));
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                if k == "runs" && v.is_array() {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                numbers(v, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let name = v
                    .get("system")
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_owned);
                numbers(v, &format!("{path}[{name}]"), out);
            }
        }
        _ => {}
    }
}

/// Differences between two environments (and argument lists) that make figures not
/// comparable, as sentences.
pub fn environment_warnings(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let (ea, eb) = (&a["environment"], &b["environment"]);
    for key in [
        "hostname",
        "kernel",
        "arch",
        "cores",
        "cpu_model",
        "memory_bytes",
        "rustc",
        "git_sha",
        "git_dirty",
        "open_files",
        "sysctls",
    ] {
        if ea[key] != eb[key] {
            out.push(format!(
                "environments differ in {key}: {} vs {}",
                ea[key], eb[key]
            ));
        }
    }
    let args = |e: &Value| -> Vec<String> {
        let list: Vec<String> = e["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // The report paths differ by design.
        let mut kept = Vec::new();
        let mut skip = false;
        for x in list {
            if skip {
                skip = false;
                continue;
            }
            if x == "--json" || x == "--hgrm" {
                skip = true;
                continue;
            }
            if x.starts_with("--json=") || x.starts_with("--hgrm=") {
                continue;
            }
            kept.push(x);
        }
        kept
    };
    let servers = |d: &Value| -> Vec<Value> {
        d["report"]["servers"]
            .as_array()
            .map(|s| s.iter().map(|p| p["command"].clone()).collect())
            .unwrap_or_default()
    };
    if servers(a) != servers(b) {
        out.push(format!(
            "server command lines differ: {:?} vs {:?}",
            servers(a),
            servers(b)
        ));
    }
    if args(ea) != args(eb) {
        out.push(format!(
            "arguments differ: {:?} vs {:?}",
            args(ea).join(" "),
            args(eb).join(" ")
        ));
    }
    out
}

/// Runs `compare`; prints the table, returns no problems (a comparison does not fail).
pub fn run(opts: &Options) -> anyhow::Result<Vec<String>> {
    let (a, b) = (load(&opts.a)?, load(&opts.b)?);
    if a["command"] != b["command"] {
        bail!(
            "{} is a {} report, {} a {} report",
            opts.a.display(),
            a["command"],
            opts.b.display(),
            b["command"]
        );
    }
    print!("{}", render(&a, &b, opts.all));
    Ok(Vec::new())
}

/// The comparison as text.
pub fn render(a: &Value, b: &Value, all: bool) -> String {
    let (mut na, mut nb) = (Vec::new(), Vec::new());
    numbers(&a["report"], "", &mut na);
    numbers(&b["report"], "", &mut nb);
    let mut t = Table::new(["figure", "A", "B", "B vs A"]);
    for (path, va) in &na {
        let vb = nb.iter().find(|(p, _)| p == path).map(|(_, v)| *v);
        let change = match vb {
            Some(vb) if *va != 0.0 => format!("{:+.1}%", (vb - va) / va.abs() * 100.0),
            Some(vb) if vb == *va => "=".into(),
            Some(_) => "new".into(),
            None => "gone".into(),
        };
        if !all && vb == Some(*va) {
            continue;
        }
        t.row([
            path.clone(),
            format!("{va}"),
            vb.map_or("-".into(), |v| format!("{v}")),
            change,
        ]);
    }
    let mut out = format!("compare: {} reports\n", a["command"]);
    for w in environment_warnings(a, b) {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push('\n');
    out.push_str(&t.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(host: &str, args: &[&str], p99: f64, rate: f64) -> Value {
        json!({
            "environment": {"hostname": host, "kernel": "6.1", "cores": 2, "args": args},
            "schema": 2,
            "command": "fanout",
            "report": {
                "subscribers": 100,
                "systems": [
                    {"system": "matchstream", "runs": [{"p": 1}], "median": {"p99_ms": p99}},
                    {"system": "redis", "runs": [], "median": {"p99_ms": 2.0}}
                ],
                "rate": "max",
                "flow_control": {"window": rate}
            }
        })
    }

    #[test]
    fn differences_show_with_their_change() {
        let a = doc("h1", &["fanout", "--json", "a.json"], 10.0, 64.0);
        let b = doc("h1", &["fanout", "--json", "b.json"], 15.0, 64.0);
        let text = render(&a, &b, false);
        assert!(!text.contains("warning"), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("systems[matchstream].median.p99_ms"))
            .expect("the p99 line");
        assert!(line.ends_with("+50.0%"), "{line}");
        assert!(
            !text.contains("subscribers"),
            "equal figures are left out: {text}"
        );
        assert!(render(&a, &b, true).contains("subscribers"));
        assert!(!text.contains("runs"), "{text}");
    }

    #[test]
    fn different_machines_and_arguments_are_warned_about() {
        let a = doc("h1", &["fanout", "--rate", "max"], 10.0, 64.0);
        let b = doc("h2", &["fanout", "--rate", "10"], 10.0, 8.0);
        let w = environment_warnings(&a, &b).join("\n");
        assert!(w.contains("hostname"), "{w}");
        assert!(w.contains("arguments differ"), "{w}");
    }
}
