//! A blocking client of the matchstream HTTP API for the bench's control work (creating and
//! playing matches, checkin, posting one event): one keep-alive connection, reopened when the
//! server closed it. Load is never sent through here; see [`crate::requests`] for that.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use matchstream_protocol::api::{new_match_body, posted_event_body};
use matchstream_protocol::{NewMatch, PostedEvent};

use crate::httpc::{write_request, ResponseParser, Url};

/// Largest answer body kept.
const KEEP_BODY: usize = 1 << 20;

/// A blocking API client.
#[derive(Debug)]
pub struct ApiClient {
    url: Url,
    token: Option<String>,
    stream: Option<TcpStream>,
    timeout: Duration,
}

/// Where checkin sends a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Checkin {
    /// Host to connect to.
    pub host: String,
    /// Stream port.
    pub port: u16,
}

impl ApiClient {
    /// A client of `url`, writing with `token` if given.
    pub fn new(url: &Url, token: Option<&str>) -> ApiClient {
        ApiClient {
            url: url.clone(),
            token: token.map(str::to_owned),
            stream: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// The API's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Sends one request and reads its answer: `(status, body)`. A keep-alive connection
    /// the server closed meanwhile is reopened once.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let path = format!("{}{path}", self.url.prefix);
        let mut req = Vec::new();
        write_request(
            method,
            self.url.host_header(),
            &path,
            self.token.as_deref(),
            body,
            true,
            &mut req,
        );
        let reused = self.stream.is_some();
        match self.exchange(&req) {
            Ok(r) => Ok(r),
            Err(_) if reused => {
                self.stream = None;
                self.exchange(&req)
            }
            Err(e) => Err(e),
        }
        .with_context(|| format!("{method} {path} on {}", self.url.addr))
    }

    fn exchange(&mut self, req: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let stream = match &mut self.stream {
            Some(s) => s,
            None => {
                let s = TcpStream::connect_timeout(&self.url.addr, self.timeout)
                    .context("connecting")?;
                s.set_read_timeout(Some(self.timeout))?;
                s.set_write_timeout(Some(self.timeout))?;
                s.set_nodelay(true)?;
                self.stream.insert(s)
            }
        };
        stream.write_all(req).context("sending")?;
        let mut parser = ResponseParser::new(KEEP_BODY);
        let mut buf = [0u8; 16 * 1024];
        let response = loop {
            let n = stream.read(&mut buf).context("reading")?;
            if n == 0 {
                match parser.eof() {
                    Some(r) => break r,
                    None => bail!("connection closed before the response was complete"),
                }
            }
            if let Some(r) = parser.feed(&buf[..n]).map_err(anyhow::Error::msg)? {
                break r;
            }
        };
        if response.close {
            self.stream = None;
        }
        Ok((response.status, response.body))
    }

    /// `GET /1/checkin`.
    pub fn checkin(&mut self) -> anyhow::Result<Checkin> {
        let (status, body) = self.request("GET", "/1/checkin", None)?;
        expect(status, 200, &body, "checkin")?;
        serde_json::from_slice(&body).context("checkin answer")
    }

    /// `POST /1/matches`; returns the new match's id.
    pub fn create_match(&mut self, m: &NewMatch) -> anyhow::Result<String> {
        let (status, body) = self.request("POST", "/1/matches", Some(&new_match_body(m)))?;
        expect(status, 201, &body, "creating a match")?;
        #[derive(serde::Deserialize)]
        struct Created {
            id: String,
        }
        let c: Created = serde_json::from_slice(&body).context("create answer")?;
        Ok(c.id)
    }

    /// `POST /1/match/<id>/events`; returns the stored event's seq.
    pub fn post_event(&mut self, id: &str, e: &PostedEvent) -> anyhow::Result<u64> {
        let path = format!("/1/match/{id}/events");
        let (status, body) = self.request("POST", &path, Some(&posted_event_body(e)))?;
        expect(
            status,
            201,
            &body,
            &format!("posting {} to {id}", e.kind.as_str()),
        )?;
        #[derive(serde::Deserialize)]
        struct Stored {
            seq: u64,
        }
        let s: Stored = serde_json::from_slice(&body).context("event answer")?;
        Ok(s.seq)
    }

    /// `DELETE /1/match/<id>` (404 counts as done).
    pub fn cancel_match(&mut self, id: &str) -> anyhow::Result<()> {
        let (status, body) = self.request("DELETE", &format!("/1/match/{id}"), None)?;
        if status != 204 && status != 404 {
            expect(status, 204, &body, "cancelling a match")?;
        }
        Ok(())
    }
}

fn expect(status: u16, want: u16, body: &[u8], what: &str) -> anyhow::Result<()> {
    if status == want {
        return Ok(());
    }
    let hint = if status == 401 {
        " (wrong or missing --token?)"
    } else {
        ""
    };
    bail!(
        "{what}: HTTP {status}{hint}: {}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    )
}
