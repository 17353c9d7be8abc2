//! matchstream's client side: the one blocking client of the HTTP API and the one
//! match-script player, shared by the engine's tools (`matchstream demo|replay|watch`), the
//! bench's control work and the end-to-end tests. Dependencies point one way: protocol ←
//! http ← client ← engine, bench.
//!
//! Module map:
//! - [`url`]: [`Url`], the API's address (`http://host[:port][/prefix]`);
//! - [`request`]: [`write_request`], the bytes of one request (also written by the bench's
//!   non-blocking load loops);
//! - [`http_client`]: [`HttpClient`], one keep-alive connection with a bearer token, and its
//!   [`HttpResponse`] with JSON helpers; response heads are read by
//!   [`matchstream_http::parse_response_head`];
//! - [`api`]: the API's calls as typed methods of [`HttpClient`] (checkin, create and cancel a
//!   match, post an event);
//! - [`player`]: load a match script, create its match, post its steps with scaled pauses.
//!
//! ```no_run
//! use matchstream_client::{player, HttpClient};
//!
//! let mut client = HttpClient::new("http://127.0.0.1:8888")?.with_token("secret");
//! let script = player::load_script("sample")?;
//! let id = player::play(&mut client, &script, 4.0, |e| println!("seq {}", e.seq))?;
//! client.cancel_match(&id)?;
//! # Ok::<(), anyhow::Error>(())
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod http_client;
pub mod player;
pub mod request;
pub mod url;

#[cfg(test)]
mod testing;

pub use api::{match_id, Checkin};
pub use http_client::{connect, HttpClient, HttpResponse, TIMEOUT};
pub use request::{write_request, USER_AGENT};
pub use url::Url;
