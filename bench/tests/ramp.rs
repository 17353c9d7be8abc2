//! `ramp` against the real server up to N=64: a table per step, the JSON report and the
//! SVG chart beside it.

mod common;

use common::{bench, Server, TOKEN};

#[test]
fn a_ramp_to_64_writes_its_table_json_and_chart() {
    let server = Server::start();
    let url = server.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("ramp.json");
    let json_arg = json.to_str().expect("utf-8").to_owned();
    let run = bench(&[
        "ramp", "--api", &url, "--token", TOKEN, "--start", "16", "--max", "64", "--speed", "400",
        "--json", &json_arg,
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    let steps = doc["report"]["steps"].as_array().expect("steps");
    let ns: Vec<u64> = steps.iter().filter_map(|s| s["n"].as_u64()).collect();
    assert_eq!(ns, [16, 32, 64], "{}", run.stdout);
    for s in steps {
        assert_eq!(s["failure"], serde_json::Value::Null, "{s}");
        assert_eq!(s["clients"]["ok"], s["n"]);
        assert_eq!(s["both_clients"]["ok"], s["n"]);
        assert_eq!(s["http"]["ok"], s["n"]);
        assert!(s["kernel"]["both"]["ListenOverflows"].is_u64());
    }
    assert_eq!(doc["report"]["highest_clean_n"], 64);
    let chart = dir.path().join("ramp.svg");
    let svg = std::fs::read_to_string(&chart).expect("chart beside the json");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");
    assert!(
        run.stdout.contains("no failure up to --max"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("both"), "{}", run.stdout);
}
