//! A small blocking HTTP/1.1 client over `std::net::TcpStream`: what the engine's tools, the
//! bench's control work (creating and playing matches, checkin, pre-flight) and the
//! end-to-end tests use to talk to the API. Load is never sent through here: the bench's load
//! loops are non-blocking and write [`crate::write_request`]'s bytes themselves.
//!
//! One keep-alive connection is reused for every request; when the server has closed it in
//! the meantime (idle timeout, restart), the request is sent once more on a fresh connection,
//! but only if not a single byte of the answer had arrived, so nothing is ever applied twice
//! by a retry of a request the server answered. Response heads are read by
//! [`matchstream_http::parse_response_head`]; bodies are framed by `Content-Length` or by
//! the connection closing (chunked bodies are refused, since the API never sends them).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use matchstream_http::{parse_response_head, Framing, ParsedHead, ResponseHead, ResponseLimits};

use crate::request::write_request;
use crate::url::Url;

/// How long connecting, and each read or write, may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response head and body accepted (a long match's history stays far below).
const LIMITS: ResponseLimits = ResponseLimits {
    max_head_bytes: 64 * 1024,
    max_body: 64 * 1024 * 1024,
};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A blocking HTTP/1.1 client for one server.
pub struct HttpClient {
    /// Where the API is.
    url: Url,
    /// `http://host[:port][/prefix]`, for messages.
    base: String,
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
    /// A client for `base_url` (see [`Url::parse`]). No connection is made until the first
    /// request.
    pub fn new(base_url: &str) -> anyhow::Result<HttpClient> {
        Ok(HttpClient::for_url(Url::parse(base_url)?))
    }

    /// A client for an already parsed URL.
    pub fn for_url(url: Url) -> HttpClient {
        HttpClient {
            base: url.to_string(),
            url,
            token: None,
            conn: None,
        }
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// `http://host[:port][/prefix]`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The API's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `GET path` (path from the API's root, e.g. `/1/checkin`).
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
        let mut request = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
        let target = format!("{}{path}", self.url.prefix());
        let host = self.url.host_header();
        let token = self.token.as_deref();
        write_request(method, host, &target, token, body, true, &mut request);
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

    /// Opens a new connection.
    fn connect(&self) -> anyhow::Result<Conn> {
        let stream = connect(&self.url.authority())?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        // Requests are written whole: no reason to wait for more.
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }
}

/// Connects to `host:port` (every resolved address in turn, each within [`TIMEOUT`]). The
/// stream has no read or write timeout.
pub fn connect(target: &str) -> anyhow::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let addrs = target
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {target}"))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(anyhow!(e).context(format!("cannot connect to {addr}"))),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("{target} resolves to no address")))
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
    let head = read_head(&mut conn)?;
    conn.buf.drain(..head.len);
    let body = read_body(&mut conn, head.framing).map_err(Failure::Other)?;
    let response = HttpResponse {
        status: head.status,
        body,
    };
    Ok((response, head.keep_alive.then_some(conn)))
}

/// Reads up to the final response's head (past any interim `100 Continue`).
fn read_head(conn: &mut Conn) -> Result<ResponseHead, Failure> {
    let fresh = conn.buf.is_empty();
    loop {
        match parse_response_head(&conn.buf, &LIMITS) {
            Ok(ParsedHead::Complete(head)) if (100..200).contains(&head.status) => {
                // An interim answer: the real one follows.
                conn.buf.drain(..head.len);
                continue;
            }
            Ok(ParsedHead::Complete(head)) => return Ok(head),
            Ok(ParsedHead::Partial) => {}
            Err(e) => return Err(Failure::Other(anyhow!(e))),
        }
        match fill(conn) {
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
    }
}

/// Reads the body that follows a head, as `framing` delimits it.
fn read_body(conn: &mut Conn, framing: Framing) -> anyhow::Result<Vec<u8>> {
    match framing {
        Framing::Empty => Ok(Vec::new()),
        Framing::Length(n) => {
            while conn.buf.len() < n {
                match fill(conn) {
                    Ok(0) => bail!(
                        "the server closed the connection after {} of {n} body bytes",
                        conn.buf.len()
                    ),
                    Ok(_) => {}
                    Err(e) => return Err(read_error(e)),
                }
            }
            Ok(conn.buf.drain(..n).collect())
        }
        Framing::UntilClose => loop {
            match fill(conn) {
                Ok(0) => return Ok(std::mem::take(&mut conn.buf)),
                Ok(_) if conn.buf.len() > LIMITS.max_body => {
                    bail!("response body larger than {} bytes", LIMITS.max_body)
                }
                Ok(_) => {}
                Err(e) => return Err(read_error(e)),
            }
        },
    }
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

#[cfg(test)]
mod tests;
