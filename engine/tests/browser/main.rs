//! The live page (SPEC §8) in a real headless Chromium: the match page follows a match as it
//! is posted, resumes after its node restarts with nothing lost or shown twice, and the match
//! list and the operations panel show the node's live figures.
//!
//! With `MATCHSTREAM_SCREENSHOTS=<dir>` the tests also save the screenshots of docs/ there
//! (`scripts/screenshots` does that).

#[path = "../common/mod.rs"]
mod common;
mod webdriver;

use std::time::Duration;

use common::{sample_bodies, serve_at, subscribe, TestServer};
use matchstream_protocol::{Match, MatchId};
use serde_json::Value;
use webdriver::Browser;

/// What a test prints when the page does not get where it should.
const DESCRIBE: &str = "return {debug: window.matchstream, conn: document.getElementById('conn')?.textContent, \
     banner: document.getElementById('banner')?.textContent, \
     score: [document.getElementById('home-score')?.textContent, document.getElementById('visit-score')?.textContent]};";

/// The seqs the timeline shows, top (newest) first.
const TIMELINE: &str =
    "return [...document.querySelectorAll('#timeline li')].map(li => Number(li.dataset.seq));";

/// A bound on a delivery that takes milliseconds when the page works: what it catches is an
/// event never shown (a lost wake-up, a dropped frame), not slowness.
const SHOWN_WITHIN: Duration = Duration::from_secs(1);

fn screenshot(browser: &mut Browser, name: &str) {
    if let Some(dir) = std::env::var_os("MATCHSTREAM_SCREENSHOTS") {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, browser.screenshot()).expect("write screenshot");
        eprintln!("saved {}", path.display());
    }
}

fn theme(browser: &mut Browser, theme: &str) {
    browser.eval(&format!(
        "localStorage.setItem('matchstream-theme', '{theme}'); location.reload(); return true;"
    ));
}

/// Waits until the page has taken in the match's status (and is following the match, or has
/// seen it end).
fn wait_for_status(browser: &mut Browser) {
    browser.wait_for(
        "the match's status",
        "return window.matchstream && window.matchstream.statuses > 0 && \
         ['live', 'ended'].includes(document.getElementById('conn').dataset.state) && \
         document.getElementById('home-code').textContent !== '···';",
        Duration::from_secs(10),
        DESCRIBE,
    );
}

/// Waits until the page shows event `seq` and the score of `state`; returns how long it took.
fn wait_for_event(browser: &mut Browser, seq: u64, state: &Match) -> Duration {
    let script = format!(
        "const li = document.querySelector('#timeline li[data-seq=\"{seq}\"]'); \
         return li !== null && document.getElementById('home-score').textContent === '{}' && \
         document.getElementById('visit-score').textContent === '{}';",
        state.home_score, state.visit_score
    );
    browser
        .wait_for(
            &format!("event {seq}"),
            &script,
            Duration::from_secs(10),
            DESCRIBE,
        )
        .1
}

fn seqs(v: Value) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_u64().expect("seq"))
        .collect()
}

fn text(browser: &mut Browser, id: &str) -> String {
    let v = browser.eval(&format!(
        "return document.getElementById('{id}').textContent;"
    ));
    v.as_str().unwrap_or_default().to_owned()
}

#[test]
fn the_match_page_shows_each_posted_event_within_a_second() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let mut browser = Browser::open(1400, 1000);
    browser.goto(&format!("http://{}/match/{id}", server.api));
    wait_for_status(&mut browser);
    assert_eq!(text(&mut browser, "home-code"), "ELP");
    assert_eq!(text(&mut browser, "visit-code"), "TIG");
    assert_eq!(text(&mut browser, "period"), "not started");

    let bodies = sample_bodies();
    let mut slowest = Duration::ZERO;
    for (i, body) in bodies.iter().enumerate() {
        let (status, answer) = server.post_event(&id, std::str::from_utf8(body).expect("utf-8"));
        assert_eq!(status, 201, "{answer}");
        let state = server.state(&id);
        let took = wait_for_event(&mut browser, i as u64 + 1, &state);
        assert!(took < SHOWN_WITHIN, "event {} took {took:?} to show", i + 1);
        slowest = slowest.max(took);
        if i == 19 && std::env::var_os("MATCHSTREAM_SCREENSHOTS").is_some() {
            // Mid-match, in the dark theme, once the arrival highlight has faded.
            browser
                .eval("document.documentElement.setAttribute('data-theme', 'dark'); return true;");
            std::thread::sleep(Duration::from_secs(2));
            screenshot(&mut browser, "live-match.png");
        }
    }
    eprintln!("slowest event to show: {slowest:?}");
    let end = server.state(&id);
    let n = bodies.len() as u64;
    assert_eq!(
        seqs(browser.eval(TIMELINE)),
        (1..=n).rev().collect::<Vec<_>>()
    );
    let received = seqs(browser.eval("return window.matchstream.received;"));
    assert_eq!(
        received,
        (1..=n).collect::<Vec<_>>(),
        "every event came once, in order"
    );
    assert_eq!(text(&mut browser, "home-score"), end.home_score.to_string());
    assert_eq!(
        text(&mut browser, "visit-score"),
        end.visit_score.to_string()
    );
    assert_eq!(text(&mut browser, "period"), "full time");
    // The stream ended after stop; the page does not reopen it.
    browser.wait_for(
        "the ended badge",
        "return document.getElementById('conn').dataset.state === 'ended';",
        Duration::from_secs(10),
        DESCRIBE,
    );
    // The rosters are the node's (a red card or a substitution changed them).
    let home: Vec<u64> = seqs(browser.eval(
        "return [...document.querySelectorAll('#home-roster li')].map(li => Number(li.dataset.number));",
    ));
    let want: Vec<u64> = end
        .home_players
        .iter()
        .map(|p| u64::from(p.number))
        .collect();
    assert_eq!(home, want);
    // The words of a goal, as `matchstream watch` prints them.
    let goal = browser.eval(
        "const li = document.querySelector('#timeline li[data-kind=\"goal\"]'); \
         return li.querySelector('.kind').textContent + ' ' + li.querySelector('.detail').textContent;",
    );
    assert!(
        goal.as_str().is_some_and(|g| g.starts_with("GOAL · ")),
        "{goal}"
    );
    // Opened again once the match has ended: all of it, from the history, and no stream left
    // open (the node answers the browser's reconnect with 204).
    theme(&mut browser, "light");
    wait_for_status(&mut browser);
    assert_eq!(
        seqs(browser.eval(TIMELINE)),
        (1..=n).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        text(&mut browser, "visit-score"),
        end.visit_score.to_string()
    );
    browser.wait_for(
        "the ended badge after a reload",
        "return document.getElementById('conn').dataset.state === 'ended';",
        Duration::from_secs(10),
        DESCRIBE,
    );
    // The theme switch's choice holds over the system's (headless Chromium is light): the
    // light palette now, the dark one when the switch says dark.
    let background = "return getComputedStyle(document.body).backgroundColor;";
    assert_eq!(browser.eval(background), "rgb(244, 246, 248)");
    std::thread::sleep(Duration::from_millis(500));
    screenshot(&mut browser, "live-match-light.png");
    browser.eval("document.documentElement.setAttribute('data-theme', 'dark'); return true;");
    assert_eq!(browser.eval(background), "rgb(13, 17, 23)");
}

#[test]
fn the_match_page_resumes_after_its_node_restarts_with_nothing_lost_or_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("embedded:{}", dir.path().display());
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let mut node = serve_at(&api, &["--store", &store]);
    let mut client = node.client();
    let script = matchstream_protocol::script::parse_script(matchstream_protocol::script::SAMPLE)
        .expect("sample");
    let id = client
        .create_match(&script.new_match)
        .expect("create")
        .expect("new");
    let bodies = sample_bodies();
    let post = |client: &mut matchstream_client::HttpClient, id: &MatchId, body: &[u8]| {
        let r = client
            .post_json(&format!("/1/match/{id}/events"), body)
            .expect("post");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    };
    for body in &bodies[..5] {
        post(&mut client, &id, body);
    }
    let mut browser = Browser::open(1400, 1000);
    browser.goto(&format!("http://{api}/match/{id}"));
    wait_for_status(&mut browser);
    for body in &bodies[5..12] {
        post(&mut client, &id, body);
    }
    let state = common::state(&mut client, &id);
    wait_for_event(&mut browser, 12, &state);

    // Kill the node (no goodbye on the stream), and start it again on the same store.
    let _ = node.child.kill();
    let _ = node.child.wait();
    browser.wait_for(
        "the page to notice the drop",
        "return document.getElementById('conn').dataset.state === 'reconnecting';",
        Duration::from_secs(10),
        DESCRIBE,
    );
    let node = serve_at(&api, &["--store", &store]);
    let mut client = node.client();
    for body in &bodies[12..] {
        post(&mut client, &id, body);
    }
    let end = common::state(&mut client, &id);
    let n = bodies.len() as u64;
    // The browser retries on its own schedule (3 s in Chromium), the page after that: 30 s is
    // a bound on a resume that never comes, not on how fast it comes.
    browser.wait_for(
        "the page to resume and show every event",
        &format!("return document.querySelector('#timeline li[data-seq=\"{n}\"]') !== null;"),
        Duration::from_secs(30),
        DESCRIBE,
    );
    assert_eq!(
        seqs(browser.eval(TIMELINE)),
        (1..=n).rev().collect::<Vec<_>>()
    );
    // What the node sent, duplicates included: the resume sent nothing twice.
    let received = seqs(browser.eval("return window.matchstream.received;"));
    assert_eq!(
        received,
        (6..=n).collect::<Vec<_>>(),
        "live events, each once"
    );
    assert_eq!(text(&mut browser, "home-score"), end.home_score.to_string());
    assert_eq!(
        text(&mut browser, "visit-score"),
        end.visit_score.to_string()
    );
    assert_eq!(text(&mut browser, "period"), "full time");
}

#[test]
fn the_match_list_shows_live_scores() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let other = {
        let body = br#"{"home":"boc","visit":"riv","start_date":"2011-10-02","stadium":"La Bombonera","home_players":[],"visit_players":[]}"#;
        let r = server
            .watcher()
            .post_json("/1/matches", body)
            .expect("create");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        "boc-riv-2011-10-02"
    };
    let mut browser = Browser::open(1400, 900);
    browser.goto(&format!("http://{}/", server.api));
    let card = |id: &str| {
        format!(
            "const a = document.querySelector('.card[data-id=\"{id}\"]'); \
             return a && [a.querySelector('.score').textContent, a.querySelector('.period').textContent, \
             a.querySelector('.period').classList.contains('live')];"
        )
    };
    let (v, _) = browser.wait_for(
        "both matches",
        &card(other),
        Duration::from_secs(10),
        "return document.body.innerText;",
    );
    assert_eq!(v, serde_json::json!(["–", "not started", false]));
    for body in &sample_bodies()[..7] {
        let (status, answer) = server.post_event(&id, std::str::from_utf8(body).expect("utf-8"));
        assert_eq!(status, 201, "{answer}");
    }
    let state = server.state(&id);
    let want = serde_json::json!([
        format!("{} – {}", state.home_score, state.visit_score),
        "first half",
        true
    ]);
    // The list reads every 2 s: 20 s bounds a refresh that never comes.
    browser.wait_for(
        "the live score",
        &format!(
            "const v = (() => {{ {} }})(); return JSON.stringify(v) === '{}';",
            card(id.as_str()),
            want
        ),
        Duration::from_secs(20),
        "return document.body.innerText;",
    );
    // Live first.
    let order =
        browser.eval("return [...document.querySelectorAll('.card')].map(a => a.dataset.id);");
    assert_eq!(order, serde_json::json!([id.as_str(), other]));
}

#[test]
fn the_operations_panel_shows_the_nodes_figures_every_second() {
    let server = TestServer::start();
    let (id, _) = server.create_sample();
    let subscribers: Vec<_> = (0..6)
        .map(|i| {
            subscribe(
                server.ports[i % 2],
                &format!("VERSION:2:CONNECT:u{i}:MATCH:{id}"),
            )
        })
        .collect();
    common::wait_for_subscribers(&server, 6);
    let mut browser = Browser::open(1400, 1000);
    browser.goto(&format!("http://{}/ops", server.api));
    let figures = "return [document.getElementById('subscribers').textContent, \
         [...document.querySelectorAll('#cores tbody tr')].map(tr => tr.children[2].textContent)];";
    let (v, _) = browser.wait_for(
        "six subscribers",
        &format!("const v = (() => {{ {figures} }})(); return v[0] === '6' && v;"),
        Duration::from_secs(10),
        figures,
    );
    assert_eq!(v, serde_json::json!(["6", ["3", "3"]]));
    // Per core: its stream port.
    let ports = browser.eval("return [...document.querySelectorAll('#cores tbody tr')].map(tr => Number(tr.children[1].textContent));");
    assert_eq!(ports, serde_json::json!(server.ports));
    let limit = {
        let v = server
            .reader()
            .get("/1/stats")
            .expect("stats")
            .json()
            .expect("json");
        v["process"]["open_files_limit"].as_u64().expect("limit")
    };
    let files = browser.eval("return document.getElementById('files-sub').textContent;");
    assert!(
        files
            .as_str()
            .is_some_and(|f| f.contains(&format_count(limit))),
        "{files} names the limit {limit}"
    );
    // Events flow: deliveries per second show, and a new subscriber appears at the next read.
    for body in &sample_bodies()[..15] {
        let (status, answer) = server.post_event(&id, std::str::from_utf8(body).expect("utf-8"));
        assert_eq!(status, 201, "{answer}");
    }
    let extra = subscribe(server.ports[0], &format!("VERSION:2:CONNECT:u6:MATCH:{id}"));
    browser.wait_for(
        "seven subscribers",
        "return document.getElementById('subscribers').textContent === '7';",
        Duration::from_secs(10),
        figures,
    );
    browser.wait_for(
        "a chart of the last readings",
        "return document.getElementById('chart-subscribers-max').textContent === 'max 7';",
        Duration::from_secs(10),
        figures,
    );
    if std::env::var_os("MATCHSTREAM_SCREENSHOTS").is_some() {
        // A chart worth a picture: a minute of events to 7 subscribers.
        for body in &sample_bodies()[15..29] {
            std::thread::sleep(Duration::from_secs(2));
            server.post_event(&id, std::str::from_utf8(body).expect("utf-8"));
        }
        browser.eval("document.documentElement.setAttribute('data-theme', 'dark'); return true;");
        std::thread::sleep(Duration::from_millis(1500));
        screenshot(&mut browser, "live-ops.png");
    }
    drop((subscribers, extra));
}

/// A count as the page writes it (`toLocaleString("en-US")`): 20,000.
fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_operations_panel_lists_the_nodes_sharing_its_store() {
    let redis = common::RedisServer::start();
    let a = redis.node();
    let b = redis.node();
    let mut browser = Browser::open(1400, 1000);
    browser.goto(&format!("http://{}/ops", a.api));
    let rows = "return [...document.querySelectorAll('#cluster tbody tr')].map(tr => tr.children[1].textContent);";
    // Nodes learn of each other from their heartbeats: 20 s bounds one that never comes.
    let (v, _) = browser.wait_for(
        "both nodes",
        &format!("const v = (() => {{ {rows} }})(); return v.length === 2 && v;"),
        Duration::from_secs(20),
        rows,
    );
    // Each row's ports, in any order: this node's first, then the other's as its heartbeat
    // advertises them.
    let listed: Vec<Vec<String>> = v
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let mut ports: Vec<String> = row
                .as_str()
                .expect("text")
                .split(", ")
                .map(str::to_owned)
                .collect();
            ports.sort();
            ports
        })
        .collect();
    let mut own: Vec<String> = a.ports.iter().map(u16::to_string).collect();
    let mut other: Vec<String> = b.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    own.sort();
    other.sort();
    assert_eq!(listed, vec![own, other]);
    let alone = browser.eval("return document.getElementById('cluster-alone').hidden;");
    assert_eq!(alone, Value::Bool(true));
}
