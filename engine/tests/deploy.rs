//! `deploy/` against a live node: every metric and label that the Grafana dashboard
//! (`deploy/grafana/matchstream.json`) and the Prometheus alert rules
//! (`deploy/prometheus/alerts.yml`) name must be in a real node's `GET /metrics`, so a
//! renamed metric breaks this test instead of an ops team's panel or page. Where promtool is
//! installed (Debian's `prometheus` package; `scripts/test` installs it on machines where
//! that starts no service), `promtool check rules` and `promtool test rules` run too.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::TestServer;

const DASHBOARD: &str = include_str!("../../deploy/grafana/matchstream.json");
const ALERTS: &str = include_str!("../../deploy/prometheus/alerts.yml");

/// Series Prometheus makes itself for every target: not in /metrics.
const PROMETHEUS_SERIES: [&str; 1] = ["up"];
/// Labels Prometheus adds to every series it scrapes: not in /metrics.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];
/// PromQL functions and aggregations the files may use (and Grafana's `label_values`).
const FUNCTIONS: [&str; 26] = [
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "topk",
    "bottomk",
    "quantile",
    "rate",
    "irate",
    "increase",
    "deriv",
    "delta",
    "predict_linear",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
    "histogram_quantile",
    "vector",
    "absent",
    "absent_over_time",
    "clamp_min",
    "clamp_max",
    "label_values",
    "abs",
];
/// PromQL keywords after which a parenthesised list of label names follows.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Binary operators and modifiers spelled as words.
const KEYWORDS: [&str; 5] = ["and", "or", "unless", "bool", "offset"];

/// What a PromQL expression names: metrics and labels.
#[derive(Debug, Default)]
struct Names {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

/// Reads the metric and label names out of a PromQL expression (or a Grafana variable query
/// such as `label_values(metric{job=~"$job"}, node)`). A hand-written scanner, enough for
/// these files: strings and range selectors are skipped, identifiers inside `{...}` before an
/// operator are labels, so are those in `by (...)`-style lists, and `label_values`' second
/// argument; a word followed by `(` or in [`FUNCTIONS`] is a function.
fn names(expr: &str, names: &mut Names) {
    let b = expr.as_bytes();
    let mut i = 0;
    let mut in_braces = false;
    let mut label_list_next = false;
    let mut in_label_list = false;
    let mut label_values_depth: Option<usize> = None;
    let mut depth = 0usize;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'[' => {
                while i < b.len() && b[i] != b']' {
                    i += 1;
                }
                i += 1;
            }
            b'{' => {
                in_braces = true;
                i += 1;
            }
            b'}' => {
                in_braces = false;
                i += 1;
            }
            b'(' => {
                depth += 1;
                if label_list_next {
                    in_label_list = true;
                    label_list_next = false;
                }
                i += 1;
            }
            b')' => {
                in_label_list = false;
                if label_values_depth == Some(depth) {
                    label_values_depth = None;
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'$' => {
                // A Grafana variable ($node, $__rate_interval, ${datasource}).
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == b'.' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                let next = expr[i..].trim_start().bytes().next();
                let after_comma = expr[..start].trim_end().ends_with(',');
                if in_braces || in_label_list {
                    names.labels.insert(word.to_owned());
                } else if LABEL_LISTS.contains(&word) {
                    // `group_left` may stand without a list.
                    label_list_next = next == Some(b'(');
                } else if KEYWORDS.contains(&word) {
                } else if word == "label_values" {
                    label_values_depth = Some(depth + 1);
                } else if label_values_depth == Some(depth) && after_comma {
                    names.labels.insert(word.to_owned());
                } else if FUNCTIONS.contains(&word) {
                } else if next == Some(b'(') {
                    panic!("unknown function {word:?} in {expr:?}: add it to FUNCTIONS");
                } else {
                    names.metrics.insert(word.to_owned());
                }
            }
            _ => i += 1,
        }
    }
}

/// Every PromQL expression of the dashboard: panel targets and variable queries.
fn dashboard_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// Every rule's expression: the rules file keeps each on one `expr:` line.
fn rule_exprs() -> Vec<String> {
    let exprs: Vec<String> = ALERTS
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| e.trim().to_owned())
        .collect();
    let rules = ALERTS
        .lines()
        .filter(|l| l.trim().starts_with("- alert:"))
        .count();
    assert_eq!(
        exprs.len(),
        rules,
        "every rule needs its expression on one `expr:` line"
    );
    assert!(exprs.iter().all(|e| !e.is_empty() && e != "|" && e != ">"));
    exprs
}

/// Metric and label names in a node's /metrics (Prometheus text format).
fn exported(text: &str) -> Names {
    let mut out = Names::default();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        out.metrics.insert(line[..name_end].to_owned());
        if let (Some(open), Some(close)) = (line.find('{'), line.find('}')) {
            for pair in line[open + 1..close].split(',') {
                if let Some((label, _)) = pair.split_once('=') {
                    out.labels.insert(label.to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn dashboard_and_alert_rules_name_only_what_a_live_node_exports() {
    let server = TestServer::start();
    // A match and a subscriber, so every figure has moved at least once.
    let (id, _) = server.create_sample();
    let mut s = common::subscribe(server.ports[0], &format!("VERSION:2:CONNECT:u:MATCH:{id}"));
    let _ = common::read_until(&mut s, b"\n\r\n");
    let r = server.reader().get("/metrics").expect("metrics");
    assert_eq!(r.status, 200);
    let live = exported(&String::from_utf8_lossy(&r.body));
    assert!(live.metrics.len() > 10, "{:?}", live.metrics);

    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    let rules = rule_exprs();
    for (file, list) in [("dashboard", &exprs), ("alerts", &rules)] {
        let mut used = Names::default();
        for e in list.iter() {
            names(e, &mut used);
        }
        let unknown: Vec<_> = used
            .metrics
            .iter()
            .filter(|m| !live.metrics.contains(*m) && !PROMETHEUS_SERIES.contains(&m.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics a live node does not export: {unknown:?}\nexported: {:?}",
            live.metrics
        );
        let unknown: Vec<_> = used
            .labels
            .iter()
            .filter(|l| !live.labels.contains(*l) && !TARGET_LABELS.contains(&l.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names labels a live node does not export: {unknown:?}"
        );
        // The scanner found what the files are about (a broken scanner finds nothing).
        for m in [
            "matchstream_process_open_files",
            "matchstream_process_open_files_limit",
            "matchstream_bus_depth",
            "matchstream_slow_disconnects_total",
            "matchstream_subscribers",
            "matchstream_store_reachable",
        ] {
            assert!(used.metrics.contains(m), "{file} does not use {m}");
        }
        assert!(used.labels.contains("node"), "{file}: nothing per node");
    }
}

#[test]
fn the_scanner_tells_metrics_from_functions_and_labels() {
    let mut n = Names::default();
    names(
        r#"sum by (node) (rate(matchstream_frames_sent_total{node=~"$node"}[$__rate_interval])) / on (node) group_left max(a_b) > 0.01 * up"#,
        &mut n,
    );
    names(
        r#"label_values(matchstream_process_open_files{job=~"$job"}, node)"#,
        &mut n,
    );
    assert_eq!(
        n.metrics.into_iter().collect::<Vec<_>>(),
        [
            "a_b",
            "matchstream_frames_sent_total",
            "matchstream_process_open_files",
            "up"
        ]
    );
    assert_eq!(n.labels.into_iter().collect::<Vec<_>>(), ["job", "node"]);
}

#[test]
fn the_dashboard_has_every_view_the_issue_asks_for() {
    let d: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    assert_eq!(d["uid"], "matchstream");
    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().expect("id")), "duplicate id");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().expect("x"), g["w"].as_u64().expect("w"));
        assert!(x + w <= 24, "{} is wider than the grid", p["title"]);
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
            assert!(!p["targets"].as_array().expect("targets").is_empty());
            assert!(p["description"].as_str().is_some_and(|s| !s.is_empty()));
        }
    }
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in [
        "Per node",
        "Per core",
        "Subscribers per node",
        "Deliveries/s per node",
        "Bus depth per core",
        "Slow cut-offs per node",
        "Resident memory",
        "Open files vs limit",
        "Store reachable",
    ] {
        assert!(titles.contains(&want), "no panel {want:?} in {titles:?}");
    }
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(vars, ["datasource", "job", "node"]);
}

#[test]
fn promtool_accepts_and_tests_the_alert_rules() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus");
    if Command::new("promtool").arg("--version").output().is_err() {
        // Debian's `prometheus` package has it; scripts/test installs it where that package
        // cannot start a service (no systemd running), so CI always runs this part.
        println!("promtool not found: `promtool check rules` and `promtool test rules` skipped");
        return;
    }
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
