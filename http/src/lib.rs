//! HTTP/1.1 for matchstream: on the server side incremental request parsing, responses and
//! routing; on the client side incremental parsing of response heads.
//!
//! The crate does no I/O: every function works on byte slices, so the engine owns the
//! sockets and buffers and this crate stays fully unit-testable. It knows nothing about the
//! application.
//!
//! # Module map
//!
//! - [`request`]: [`parse_request`] turns the start of a read buffer into a [`Request`]
//!   ([`Parsed::Complete`], with the bytes `consumed`) or asks for more ([`Parsed::Partial`]),
//!   enforcing [`Limits`]. Bodies are framed by `Content-Length` only.
//! - [`method`]: [`Method`] and [`MethodSet`] (the allocation-free value of an `Allow` header).
//! - [`error`]: [`ParseError`], each variant with its status code and a short reason;
//!   [`ResponseError`] for response heads.
//! - [`response`]: [`Response`] and its serialization with [`Response::write_to`].
//! - [`router`]: [`Router`] maps method + path pattern (`/1/match/:id`) to a handler value.
//! - [`query`]: [`query::query_param`] and [`query::percent_decode`].
//! - [`response_head`]: the client side: [`parse_response_head`] reads a response's status,
//!   body framing ([`Framing`]: `Content-Length`, none, or until the close; chunked is refused)
//!   and keep-alive from the start of a read buffer, or asks for more
//!   ([`ParsedHead::Partial`]), within [`ResponseLimits`].
//!
//! # Example
//!
//! ```
//! use matchstream_http::{parse_request, Limits, Method, Parsed, Response, RouteError, Router};
//!
//! #[derive(Clone, Copy)]
//! enum Endpoint { History }
//!
//! let mut router = Router::new();
//! router.add(Method::Get, "/1/match/:id/history", Endpoint::History);
//!
//! let mut input = b"GET /1/match/7/history?since=3 HTTP/1.1\r\n\r\n\
//!     GET /x HTTP/1.1\r\n\r\n".to_vec();
//! let mut output = Vec::new();
//! let limits = Limits::default();
//! while let Ok(Parsed::Complete { request, consumed }) = parse_request(&input, &limits) {
//!     input.drain(..consumed);
//!     let response = match router.route(request.method, &request.path) {
//!         Ok((Endpoint::History, params)) => {
//!             let since = request.query.as_deref()
//!                 .and_then(|q| matchstream_http::query::query_param(q, "since"));
//!             let body = format!("{{\"id\":\"{}\",\"since\":{}}}",
//!                 params.get("id").unwrap_or_default(), since.unwrap_or_default());
//!             Response::json(200, body.into_bytes())
//!         }
//!         Err(RouteError::MethodNotAllowed(allow)) => {
//!             Response::new(405).with_header("Allow", allow.to_string())
//!         }
//!         Err(RouteError::NotFound) => Response::text(404, "not found"),
//!     };
//!     response.write_to(&mut output, request.keep_alive, request.method == Method::Head);
//! }
//! assert!(input.is_empty());
//! let output = String::from_utf8(output).expect("ascii");
//! assert!(output.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(output.contains("{\"id\":\"7\",\"since\":3}HTTP/1.1 404 Not Found\r\n"));
//! ```
#![warn(missing_docs)]

pub mod error;
mod fields;
pub mod method;
pub mod query;
pub mod request;
pub mod response;
pub mod response_head;
pub mod router;

pub use error::ResponseError;
pub use method::MethodSet;
pub use query::{percent_decode, query_param};
pub use request::{parse_request, Limits, Method, ParseError, Parsed, Request};
pub use response::{reason_phrase, Body, Response};
pub use response_head::{parse_response_head, Framing, ParsedHead, ResponseHead, ResponseLimits};
pub use router::{Params, RouteError, Router};
