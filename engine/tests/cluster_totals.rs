//! Cluster-wide totals (issue 15, SPEC §9): any node's `GET /1/stats` and `/metrics` answer
//! "how many are watching, all nodes together" — every node's subscribers and deliveries per
//! second, summed — from the figures each node publishes with its heartbeat. Real nodes on a
//! real redis-server, real subscribers.

mod common;

use std::net::TcpStream;

use common::*;
use serde_json::Value;

fn stats(node: &TestServer) -> Value {
    node.reader()
        .get("/1/stats")
        .expect("stats")
        .json()
        .expect("json")
}

fn metrics(node: &TestServer) -> String {
    let r = node.reader().get("/metrics").expect("metrics");
    String::from_utf8(r.body).expect("utf-8")
}

fn watch(port: u16, id: &str) -> TcpStream {
    let mut s = subscribe(port, &format!("VERSION:2:CONNECT:t:MATCH:{id}"));
    read_until(&mut s, b"\n\r\n");
    s
}

#[test]
fn every_node_reports_the_clusters_subscribers_and_deliveries() {
    let redis = RedisServer::start();
    let (a, b) = (redis.node(), redis.node());
    let (id, _) = a.create_sample();
    wait_until("node b knows the match", || {
        b.reader()
            .get(&format!("/1/match/{id}"))
            .is_ok_and(|r| r.status == 200)
    });
    // 3 subscribers on node a, 2 on node b, over both cores of each.
    let mut watchers = Vec::new();
    for (node, port) in [(&a, 0), (&a, 1), (&a, 0), (&b, 0), (&b, 1)] {
        watchers.push(watch(node.ports[port], id.as_str()));
    }
    let id_of = |node: &TestServer| stats(node)["node_id"].as_str().expect("id").to_owned();
    let (a_id, b_id) = (id_of(&a), id_of(&b));
    for (node, own, other, own_subs, other_subs) in
        [(&a, &a_id, &b_id, 3, 2), (&b, &b_id, &a_id, 2, 3)]
    {
        wait_until("the heartbeats carried every node's subscribers", || {
            let t = &stats(node)["cluster_totals"];
            t["nodes"] == 2 && t["subscribers"] == 5
        });
        let t = stats(node)["cluster_totals"].clone();
        assert_eq!(t["by_node"][0]["node"], own.as_str(), "{t}");
        assert_eq!(t["by_node"][0]["subscribers"], own_subs, "{t}");
        assert_eq!(t["by_node"][1]["node"], other.as_str(), "{t}");
        assert_eq!(t["by_node"][1]["subscribers"], other_subs, "{t}");
        let line = format!("matchstream_cluster_subscribers{{node=\"{own}\"}} 5\n");
        assert!(metrics(node).contains(&line), "{line}");
        assert!(metrics(node).contains(&format!("matchstream_cluster_nodes{{node=\"{own}\"}} 2\n")));
    }

    // A match being played: both nodes deliver to their subscribers, and each reports the
    // cluster's deliveries per second as the sum of its own and the other's.
    let (status, answer) = a.post_event(&id, r#"{"kind":"start"}"#);
    assert_eq!(status, 201, "{answer}");
    let mut posted = 0;
    wait_until("deliveries per second on both nodes, summed", || {
        if posted < 200 {
            let body = format!(r#"{{"kind":"comment","comment":"c{posted}"}}"#);
            let (status, answer) = a.post_event(&id, &body);
            assert_eq!(status, 201, "{answer}");
            posted += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let t = stats(&a)["cluster_totals"].clone();
        let each: Vec<f64> = (0..2)
            .map(|i| {
                t["by_node"][i]["deliveries_per_second"]
                    .as_f64()
                    .unwrap_or(0.0)
            })
            .collect();
        let total = t["deliveries_per_second"].as_f64().unwrap_or(0.0);
        each.iter().all(|d| *d > 0.0) && (total - each.iter().sum::<f64>()).abs() < 1e-6
    });
    drop(watchers);
}

#[test]
fn a_lone_nodes_totals_are_its_own() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let _watchers: Vec<TcpStream> = server
        .ports
        .iter()
        .map(|p| watch(*p, id.as_str()))
        .collect();
    wait_until("both subscribers counted", || {
        stats(&server)["cluster_totals"]["subscribers"] == 2
    });
    let t = stats(&server)["cluster_totals"].clone();
    assert_eq!(t["nodes"], 1, "{t}");
    assert_eq!(t["subscribers"], 2, "{t}");
    assert_eq!(t["by_node"].as_array().map(Vec::len), Some(1), "{t}");
    let own = stats(&server)["node_id"].as_str().expect("id").to_owned();
    assert!(metrics(&server).contains(&format!(
        "matchstream_cluster_subscribers{{node=\"{own}\"}} 2\n"
    )));
}
