//! A real headless Chromium driven over the W3C WebDriver protocol by Debian's
//! `chromedriver` (packages `chromium` and `chromium-driver`; scripts/test installs them).
//! Only what the live page's tests need: open a page, run a script in it, take a screenshot.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use matchstream_client::HttpClient;
use serde_json::{json, Value};

/// Where Debian puts the two programs.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one browser session in it; both end on drop.
pub struct Browser {
    driver: Child,
    client: HttpClient,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium of `width` × `height` CSS
    /// pixels in it. Panics, naming the package to install, when either is missing.
    pub fn open(width: u32, height: u32) -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: apt-get install {package} (scripts/test installs it)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // It prints "... was started successfully on port N." once it listens.
        let stdout = driver.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("started successfully") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = driver.kill();
            panic!("chromedriver did not start within 30 s");
        }
        let mut client = HttpClient::new(&format!("http://127.0.0.1:{port}")).expect("client");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let r = client
            .post_json("/session", capabilities.to_string().as_bytes())
            .expect("new session");
        let v = r.json().expect("json");
        let Some(session) = v["value"]["sessionId"].as_str().map(str::to_owned) else {
            let _ = driver.kill();
            panic!("no browser session: {v}");
        };
        Browser {
            driver,
            client,
            session,
        }
    }

    fn command(&mut self, path: &str, body: Value) -> Value {
        let path = format!("/session/{}/{path}", self.session);
        let r = self
            .client
            .post_json(&path, body.to_string().as_bytes())
            .expect("webdriver");
        let v = r.json().expect("json");
        assert_eq!(r.status, 200, "{path}: {v}");
        v["value"].clone()
    }

    /// Opens `url` and waits for its document to load.
    pub fn goto(&mut self, url: &str) {
        self.command("url", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `return` gives its value) in the page.
    pub fn eval(&mut self, script: &str) -> Value {
        self.command("execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Runs `script` every 10 ms until it returns something other than `null` or `false`,
    /// for at most `limit`; returns the value and how long it took. Panics after `limit`,
    /// with the last value and what `describe` returns then.
    pub fn wait_for(
        &mut self,
        what: &str,
        script: &str,
        limit: Duration,
        describe: &str,
    ) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let v = self.eval(script);
            if !v.is_null() && v != Value::Bool(false) {
                return (v, started.elapsed());
            }
            if started.elapsed() > limit {
                let state = self.eval(describe);
                panic!("waited {limit:?} for {what}; the page: {state}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A PNG of the window.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let path = format!("/session/{}/screenshot", self.session);
        let r = self.client.get(&path).expect("screenshot");
        let v = r.json().expect("json");
        let data = v["value"].as_str().expect("base64 png");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = self.client.delete(&path);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
