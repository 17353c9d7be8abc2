//! Test helpers: a one-thread HTTP server answering with canned bytes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;

/// What the test server does with the next request.
pub enum Answer {
    /// Write these bytes and keep the connection.
    Keep(String),
    /// Write these bytes and close the connection.
    Close(String),
    /// Close the connection without answering.
    Hangup,
}

/// A one-thread server answering requests with canned answers, in order; it stops after
/// the last answer and reports the requests it read and how many connections it accepted.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    thread: JoinHandle<(Vec<String>, usize)>,
}

impl TestServer {
    pub fn start(answers: Vec<Answer>) -> TestServer {
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

    pub fn finish(self) -> (Vec<String>, usize) {
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

pub const OK: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                  Content-Length: 11\r\n\r\n{\"ok\":true}";
