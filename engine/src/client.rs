//! A small blocking HTTP/1.1 client over `std::net::TcpStream`: what `replay`, `watch`, `demo`
//! and the end-to-end tests use to talk to the API (SPEC §4).
//!
//! One keep-alive connection is reused for every request; when the server has closed it in
//! the meantime (idle timeout, restart), the request is sent once more on a fresh connection,
//! but only if not a single byte of the answer had arrived, so nothing is ever applied twice
//! by a retry of a request the server answered. Responses are framed by `Content-Length`
//! (or by the connection closing); chunked bodies are refused, since the API never sends them.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

/// How long connecting, and each read or write, may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response head accepted, in bytes.
const MAX_HEAD: usize = 64 * 1024;

/// Largest response body accepted, in bytes (a long match's history stays far below).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Most response headers parsed.
const MAX_HEADERS: usize = 64;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A blocking HTTP/1.1 client for one server (`http://host:port`).
pub struct HttpClient {
    /// `http://host:port`, for messages.
    base: String,
    /// `host:port` as given (brackets kept for IPv6): the `Host` header and connect target.
    authority: String,
    /// Bearer token sent with every request, if any.
    token: Option<String>,
    /// The keep-alive connection, when one is open.
    conn: Option<Conn>,
}

impl std::fmt::Debug for HttpClient {
    /// Shows the server and whether a token is set, never the token itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// An open connection and the bytes read past the last response.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A response: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body (empty for 204, 304 and 1xx).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "response {} is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }

    /// What the server said went wrong: the `error` of a `{"error": ...}` body, else the body
    /// as text, else the status.
    pub fn error_text(&self) -> String {
        let from_json = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned));
        match from_json {
            Some(reason) => format!("{} {reason}", self.status),
            None => {
                let text = String::from_utf8_lossy(&self.body);
                let text = text.trim();
                if text.is_empty() {
                    format!("status {}", self.status)
                } else {
                    format!("{} {text}", self.status)
                }
            }
        }
    }
}

impl HttpClient {
    /// A client for `base_url`: `http://host[:port]` with an optional trailing `/` (port 80
    /// by default). No connection is made until the first request.
    pub fn new(base_url: &str) -> anyhow::Result<HttpClient> {
        let authority = parse_base_url(base_url)?;
        Ok(HttpClient {
            base: format!("http://{authority}"),
            authority,
            token: None,
            conn: None,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// `http://host:port`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET path` (path from the root, e.g. `/1/checkin`).
    pub fn get(&mut self, path: &str) -> anyhow::Result<HttpResponse> {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&mut self, path: &str, body: &[u8]) -> anyhow::Result<HttpResponse> {
        self.request("POST", path, Some(body))
    }

    /// `DELETE path`.
    pub fn delete(&mut self, path: &str) -> anyhow::Result<HttpResponse> {
        self.request("DELETE", path, None)
    }

    /// Sends one request, retrying once on a fresh connection if a reused one turned out
    /// to be closed before any of the answer arrived.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<HttpResponse> {
        let url = format!("{}{path}", self.base);
        if !path.starts_with('/') {
            bail!("{method} {url}: the path must start with /");
        }
        let request = self.encode(method, path, body);
        let result = match self.conn.take() {
            Some(conn) => match exchange(conn, &request) {
                Err(Failure::Stale(e)) => {
                    log::debug!(target: "matchstream::client",
                        "{method} {url}: kept-alive connection closed ({e}); reconnecting");
                    self.connect()
                        .and_then(|conn| exchange(conn, &request).map_err(Failure::into_error))
                }
                other => other.map_err(Failure::into_error),
            },
            None => self
                .connect()
                .and_then(|conn| exchange(conn, &request).map_err(Failure::into_error)),
        };
        let (response, conn) = result.with_context(|| format!("{method} {url}"))?;
        self.conn = conn;
        Ok(response)
    }

    /// The request's bytes.
    fn encode(&self, method: &str, path: &str, body: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
        out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\n").as_bytes());
        out.extend_from_slice(format!("Host: {}\r\n", self.authority).as_bytes());
        out.extend_from_slice(
            concat!(
                "User-Agent: matchstream/",
                env!("CARGO_PKG_VERSION"),
                "\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(b"Accept: application/json\r\n");
        if let Some(token) = &self.token {
            out.extend_from_slice(format!("Authorization: Bearer {token}\r\n").as_bytes());
        }
        if let Some(body) = body {
            out.extend_from_slice(b"Content-Type: application/json; charset=utf-8\r\n");
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(body) = body {
            out.extend_from_slice(body);
        }
        out
    }

    /// Opens a new connection (every resolved address in turn).
    fn connect(&self) -> anyhow::Result<Conn> {
        let addrs = self
            .authority
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {}", self.authority))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(TIMEOUT))?;
                    stream.set_write_timeout(Some(TIMEOUT))?;
                    // Requests are written whole: no reason to wait for more.
                    stream.set_nodelay(true)?;
                    return Ok(Conn {
                        stream,
                        buf: Vec::new(),
                    });
                }
                Err(e) => last = Some(anyhow!(e).context(format!("cannot connect to {addr}"))),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("{} resolves to no address", self.authority)))
    }
}

/// Checks a base URL and returns its `host:port`.
fn parse_base_url(url: &str) -> anyhow::Result<String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        bail!("{url}: https is not supported; the matchstream API speaks plain http://");
    }
    let Some(rest) = lower
        .strip_prefix("http://")
        .map(|_| &url["http://".len()..])
    else {
        bail!("{url}: expected a URL like http://127.0.0.1:8888");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        bail!("{url}: give only http://host:port, without a path");
    }
    if authority.contains('@') {
        bail!("{url}: user information in the URL is not supported");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or_else(|| anyhow!("{url}: unclosed [ in the host"))?;
        if inside.is_empty() {
            bail!("{url}: empty host");
        }
        match after {
            "" => (&authority[..inside.len() + 2], None),
            p => match p.strip_prefix(':') {
                Some(port) => (&authority[..inside.len() + 2], Some(port)),
                None => bail!("{url}: unexpected text after ]"),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        bail!("{url}: empty host");
    }
    let port: u16 = match port {
        None => 80,
        Some(p) => p
            .parse()
            .ok()
            .filter(|n| *n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| anyhow!("{url}: bad port {p:?}"))?,
    };
    Ok(format!("{host}:{port}"))
}

/// Why an exchange failed.
enum Failure {
    /// The connection was closed or reset before any of the answer arrived: on a reused
    /// connection, worth one more try.
    Stale(std::io::Error),
    /// Anything else.
    Other(anyhow::Error),
}

impl Failure {
    fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Stale(e) => anyhow!(e).context("the server closed the connection"),
            Failure::Other(e) => e,
        }
    }
}

/// Writes a request and reads its response; returns the connection when it may be reused.
fn exchange(mut conn: Conn, request: &[u8]) -> Result<(HttpResponse, Option<Conn>), Failure> {
    if let Err(e) = conn.stream.write_all(request) {
        return Err(if is_closed(&e) {
            Failure::Stale(e)
        } else {
            Failure::Other(anyhow!(e).context("cannot send the request"))
        });
    }
    let fresh = conn.buf.is_empty();
    let head = loop {
        if let Some(head) = parse_head(&conn.buf).map_err(Failure::Other)? {
            if (100..200).contains(&head.status) {
                // An interim answer (100 Continue): the real one follows.
                conn.buf.drain(..head.len);
                continue;
            }
            break head;
        }
        if conn.buf.len() > MAX_HEAD {
            return Err(Failure::Other(anyhow!(
                "response head larger than {MAX_HEAD} bytes"
            )));
        }
        match fill(&mut conn) {
            Ok(0) if fresh && conn.buf.is_empty() => {
                return Err(Failure::Stale(ErrorKind::UnexpectedEof.into()))
            }
            Ok(0) => {
                return Err(Failure::Other(anyhow!(
                    "the server closed the connection in the middle of the response head"
                )))
            }
            Ok(_) => {}
            Err(e) if fresh && conn.buf.is_empty() && is_closed(&e) => {
                return Err(Failure::Stale(e))
            }
            Err(e) => return Err(Failure::Other(read_error(e))),
        }
    };
    conn.buf.drain(..head.len);
    let body = match head.framing {
        Framing::Empty => Vec::new(),
        Framing::Length(n) => {
            if n > MAX_BODY {
                return Err(Failure::Other(anyhow!(
                    "response body of {n} bytes is larger than {MAX_BODY}"
                )));
            }
            while conn.buf.len() < n {
                match fill(&mut conn) {
                    Ok(0) => {
                        return Err(Failure::Other(anyhow!(
                            "the server closed the connection after {} of {n} body bytes",
                            conn.buf.len()
                        )))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Failure::Other(read_error(e))),
                }
            }
            conn.buf.drain(..n).collect()
        }
        Framing::UntilClose => {
            loop {
                match fill(&mut conn) {
                    Ok(0) => break,
                    Ok(_) if conn.buf.len() > MAX_BODY => {
                        return Err(Failure::Other(anyhow!(
                            "response body larger than {MAX_BODY} bytes"
                        )))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Failure::Other(read_error(e))),
                }
            }
            std::mem::take(&mut conn.buf)
        }
    };
    let reusable = head.keep_alive && head.framing != Framing::UntilClose;
    let response = HttpResponse {
        status: head.status,
        body,
    };
    Ok((response, reusable.then_some(conn)))
}

/// Reads more bytes into the connection's buffer; `Ok(0)` at the end of the stream.
fn fill(conn: &mut Conn) -> std::io::Result<usize> {
    let start = conn.buf.len();
    conn.buf.resize(start + READ_CHUNK, 0);
    let result = loop {
        match conn.stream.read(&mut conn.buf[start..]) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    conn.buf.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}

/// True when `e` says the peer closed or reset the connection.
fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    )
}

/// A read error, saying so plainly when it is the timeout.
fn read_error(e: std::io::Error) -> anyhow::Error {
    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
        anyhow!("no answer within {} s", TIMEOUT.as_secs())
    } else {
        anyhow!(e).context("cannot read the response")
    }
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// Everything until the server closes.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    /// Bytes of the head, blank line included.
    len: usize,
    framing: Framing,
    /// Whether the connection may carry another request.
    keep_alive: bool,
}

/// Parses a response head: `Ok(None)` while it is incomplete.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => bail!("malformed response: {e}"),
    };
    let status = response.code.unwrap_or(0);
    // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes unless told.
    let mut keep_alive = response.version == Some(1);
    let mut length = None;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).unwrap_or("").trim();
            let n: usize = text
                .parse()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| anyhow!("malformed response: bad Content-Length {text:?}"))?;
            if length.is_some_and(|m| m != n) {
                bail!("malformed response: conflicting Content-Length headers");
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let value = String::from_utf8_lossy(h.value);
            if !value.trim().eq_ignore_ascii_case("identity") {
                bail!("unsupported response Transfer-Encoding {:?}", value.trim());
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in String::from_utf8_lossy(h.value).split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = if matches!(status, 100..=199 | 204 | 304) {
        Framing::Empty
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    /// What the test server does with the next request.
    enum Answer {
        /// Write these bytes and keep the connection.
        Keep(&'static str),
        /// Write these bytes and close the connection.
        Close(&'static str),
        /// Close the connection without answering.
        Hangup,
    }

    /// A one-thread server answering requests with canned answers, in order; it stops after
    /// the last answer and reports the requests it read and how many connections it accepted.
    struct TestServer {
        url: String,
        thread: JoinHandle<(Vec<String>, usize)>,
    }

    impl TestServer {
        fn start(answers: Vec<Answer>) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            let thread = std::thread::spawn(move || {
                let mut requests = Vec::new();
                let mut connections = 0;
                let mut answers = answers.into_iter().peekable();
                while answers.peek().is_some() {
                    let (mut stream, _) = listener.accept().expect("accept");
                    connections += 1;
                    let mut buf = Vec::new();
                    while let Some(request) = read_request(&mut stream, &mut buf) {
                        requests.push(request);
                        match answers.next() {
                            Some(Answer::Keep(bytes)) => {
                                stream.write_all(bytes.as_bytes()).expect("write");
                            }
                            Some(Answer::Close(bytes)) => {
                                stream.write_all(bytes.as_bytes()).expect("write");
                                break;
                            }
                            Some(Answer::Hangup) | None => break,
                        }
                        if answers.peek().is_none() {
                            break;
                        }
                    }
                }
                (requests, connections)
            });
            TestServer { url, thread }
        }

        fn finish(self) -> (Vec<String>, usize) {
            self.thread.join().expect("server thread")
        }
    }

    /// Reads one request (head and Content-Length body); `None` when the client closed.
    fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
                let length = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |h| {
                        std::str::from_utf8(h.value)
                            .expect("utf8")
                            .parse::<usize>()
                            .expect("length")
                    });
                if buf.len() >= n + length {
                    let request = String::from_utf8_lossy(&buf[..n + length]).into_owned();
                    buf.drain(..n + length);
                    return Some(request);
                }
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                      Content-Length: 11\r\n\r\n{\"ok\":true}";

    #[test]
    fn keep_alive_reuses_one_connection() {
        let server = TestServer::start(vec![Answer::Keep(OK), Answer::Keep(OK)]);
        let host = server.url.trim_start_matches("http://").to_owned();
        let mut client = HttpClient::new(&server.url).expect("client");
        for _ in 0..2 {
            let r = client.get("/1/checkin").expect("get");
            assert_eq!(r.status, 200);
            assert_eq!(r.json().expect("json")["ok"], true);
        }
        let (requests, connections) = server.finish();
        assert_eq!(connections, 1);
        assert!(requests[0].starts_with("GET /1/checkin HTTP/1.1\r\n"));
        assert!(requests[0].contains(&format!("\r\nHost: {host}\r\n")));
    }

    #[test]
    fn reconnects_once_when_the_server_closed_a_kept_connection() {
        // The first answer claims keep-alive, but the server closes right after it.
        let server = TestServer::start(vec![Answer::Close(OK), Answer::Keep(OK)]);
        let mut client = HttpClient::new(&server.url).expect("client");
        assert_eq!(client.get("/a").expect("first").status, 200);
        // Whether the close or the second request comes first, the client sees the
        // connection end before any answer and sends again on a new one.
        assert_eq!(client.get("/b").expect("second").status, 200);
        let (requests, connections) = server.finish();
        assert_eq!(connections, 2);
        assert!(requests[1].starts_with("GET /b "));
    }

    #[test]
    fn connection_close_is_honoured() {
        let close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
        let server = TestServer::start(vec![Answer::Keep(close), Answer::Keep(OK)]);
        let mut client = HttpClient::new(&server.url).expect("client");
        assert_eq!(client.get("/a").expect("first").body, b"hi");
        assert!(client.conn.is_none());
        assert_eq!(client.get("/b").expect("second").status, 200);
        assert_eq!(server.finish().1, 2);
    }

    #[test]
    fn a_fresh_connection_closed_unanswered_is_an_error_naming_the_url() {
        let server = TestServer::start(vec![Answer::Hangup]);
        let url = server.url.clone();
        let mut client = HttpClient::new(&url).expect("client");
        let err = client
            .post_json("/1/matches", b"{}")
            .expect_err("no answer");
        let text = format!("{err:#}");
        assert!(
            text.starts_with(&format!("POST {url}/1/matches: ")),
            "{text}"
        );
        assert!(text.contains("closed the connection"), "{text}");
        assert_eq!(server.finish().1, 1, "no retry on a fresh connection");
    }

    #[test]
    fn post_sends_token_type_length_and_body() {
        let created = "HTTP/1.1 201 Created\r\nContent-Length: 8\r\n\r\n{\"id\":1}";
        let server = TestServer::start(vec![Answer::Keep(created)]);
        let mut client = HttpClient::new(&format!("{}/", server.url))
            .expect("client")
            .with_token("s3cret");
        let r = client.post_json("/1/matches", b"{\"a\":1}").expect("post");
        assert_eq!(r.status, 201);
        assert!(r.is_success());
        let (requests, _) = server.finish();
        let req = &requests[0];
        assert!(req.starts_with("POST /1/matches HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("Authorization: Bearer s3cret\r\n"), "{req}");
        assert!(req.contains("Content-Type: application/json"), "{req}");
        assert!(req.contains("Content-Length: 7\r\n"), "{req}");
        assert!(req.ends_with("\r\n\r\n{\"a\":1}"), "{req}");
    }

    #[test]
    fn error_statuses_are_responses_with_their_reason() {
        let conflict = "HTTP/1.1 409 Conflict\r\nContent-Length: 25\r\n\r\n\
                        {\"error\":\"match exists\"}\n";
        let plain = "HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\n\r\nbad request\n";
        let server = TestServer::start(vec![Answer::Keep(conflict), Answer::Keep(plain)]);
        let mut client = HttpClient::new(&server.url).expect("client");
        let r = client.post_json("/1/matches", b"{}").expect("post");
        assert_eq!(r.status, 409);
        assert!(!r.is_success());
        assert_eq!(r.error_text(), "409 match exists");
        let r = client.get("/x").expect("get");
        assert_eq!(r.error_text(), "400 bad request");
        assert!(r.json().is_err());
        server.finish();
    }

    #[test]
    fn no_content_then_keep_alive() {
        let no_content = "HTTP/1.1 204 No Content\r\n\r\n";
        let server = TestServer::start(vec![Answer::Keep(no_content), Answer::Keep(OK)]);
        let mut client = HttpClient::new(&server.url).expect("client");
        let r = client.delete("/1/match/x").expect("delete");
        assert_eq!((r.status, r.body.len()), (204, 0));
        assert_eq!(r.error_text(), "status 204");
        assert_eq!(client.get("/y").expect("get").status, 200);
        let (requests, connections) = server.finish();
        assert_eq!(connections, 1);
        assert!(requests[0].starts_with("DELETE /1/match/x HTTP/1.1\r\n"));
    }

    #[test]
    fn a_body_without_length_runs_until_close() {
        let old = "HTTP/1.0 200 OK\r\n\r\nall of it";
        let server = TestServer::start(vec![Answer::Close(old)]);
        let mut client = HttpClient::new(&server.url).expect("client");
        assert_eq!(client.get("/").expect("get").body, b"all of it");
        assert!(client.conn.is_none());
        server.finish();
    }

    #[test]
    fn a_refused_connection_names_the_url() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let mut client = HttpClient::new(&url).expect("client");
        let text = format!("{:#}", client.get("/1/checkin").expect_err("refused"));
        assert!(
            text.starts_with(&format!("GET {url}/1/checkin: ")),
            "{text}"
        );
        assert!(text.contains("cannot connect"), "{text}");
    }

    #[test]
    fn base_urls() {
        let ok = [
            ("http://127.0.0.1:8888", "127.0.0.1:8888"),
            ("http://127.0.0.1:8888/", "127.0.0.1:8888"),
            ("HTTP://localhost:9", "localhost:9"),
            ("http://example.org", "example.org:80"),
            ("http://[::1]:8888/", "[::1]:8888"),
            ("http://[::1]", "[::1]:80"),
        ];
        for (url, authority) in ok {
            assert_eq!(parse_base_url(url).expect(url), authority, "{url}");
        }
        let bad = [
            ("https://127.0.0.1:8888", "https is not supported"),
            ("127.0.0.1:8888", "expected a URL like"),
            ("ftp://x", "expected a URL like"),
            ("http://", "empty host"),
            ("http://:80", "empty host"),
            ("http://h:0", "bad port"),
            ("http://h:99999", "bad port"),
            ("http://h:+80", "bad port"),
            ("http://h:80/1/matches", "without a path"),
            ("http://h:80?x", "without a path"),
            ("http://u@h:80", "user information"),
            ("http://[::1", "unclosed ["),
            ("http://[::1]x", "after ]"),
        ];
        for (url, why) in bad {
            let text = parse_base_url(url).expect_err(url).to_string();
            assert!(text.contains(why), "{url}: {text}");
        }
        assert_eq!(
            HttpClient::new("http://h:1/").expect("client").base_url(),
            "http://h:1"
        );
    }

    #[test]
    fn response_heads() {
        let head = |s: &str| parse_head(s.as_bytes());
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Len").expect("partial"),
            None
        );
        assert_eq!(
            head("HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nabcde").expect("head"),
            Some(Head {
                status: 201,
                len: 43,
                framing: Framing::Length(5),
                keep_alive: true
            })
        );
        let h = head("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n")
            .expect("head")
            .expect("complete");
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\n\r\n")
            .expect("head")
            .expect("complete");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n")
            .expect("head")
            .expect("complete");
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")
            .expect("head")
            .expect("complete");
        assert_eq!(h.framing, Framing::Empty);
        let refused = [
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "chunked",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "conflicting",
            ),
            ("SMTP ready\r\n\r\n", "malformed response"),
        ];
        for (text, why) in refused {
            let err = head(text).expect_err(text).to_string();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
