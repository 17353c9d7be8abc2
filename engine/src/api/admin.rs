//! The operations endpoints (SPEC §9): `GET /healthz` and `GET /readyz` for load balancers and
//! supervisors, and `POST /1/admin/drain` (the watcher token) to drain the node before it is
//! taken down ([`crate::drain`]).
//!
//! Policy: a probe costs no store round trip and takes no lock a core could wait on; it reads
//! the node's flags ([`crate::health`], [`crate::drain::Drain`]). `/healthz` says the process
//! serves HTTP (200 whatever the store or a drain); `/readyz` says whether new clients should
//! be sent here: 503 with the reason while the node drains (first) or its store is
//! unreachable.

use matchstream_http::Response;

use super::error;
use crate::drain::{self, Trigger};
use crate::shard::Shard;

/// Answers of health probes are never cached by a proxy on the way.
fn no_store(response: Response) -> Response {
    response.with_header("Cache-Control", "no-store")
}

/// `GET /healthz`: 200 while the process serves.
pub fn healthz() -> Response {
    no_store(Response::json(200, br#"{"status":"ok"}"#.to_vec()))
}

/// `GET /readyz`: 200 when the store is reachable and the node is not draining, else 503
/// with the reason.
pub fn readyz(shard: &Shard) -> Response {
    let node = &shard.node;
    let problem = if node.drain.is_draining() {
        Some(drain::REASON)
    } else {
        node.store_health.problem()
    };
    no_store(match problem {
        None => Response::json(200, br#"{"status":"ready"}"#.to_vec()),
        Some(reason) => error(503, reason),
    })
}

/// `POST /1/admin/drain` (authorized by the caller): begins the node's drain, or says that it
/// drains already; 202 either way.
pub fn drain(shard: &Shard) -> Response {
    let begun = shard
        .node
        .drain
        .begin(shard.config.drain_timeout, Trigger::Request);
    if !begun.already {
        log::info!(target: "matchstream::drain",
            "drain requested through the API (core {}): stopping within {:?}", shard.core, begun.exit_within);
    }
    let body = Drained {
        node: &shard.node.node_id,
        already_draining: begun.already,
        exit_within_ms: u64::try_from(begun.exit_within.as_millis()).unwrap_or(u64::MAX),
    };
    Response::json(202, serde_json::to_vec(&body).unwrap_or_default())
}

/// The body of the answer to `POST /1/admin/drain`.
#[derive(serde::Serialize)]
struct Drained<'a> {
    /// The node's id.
    node: &'a str,
    /// A drain was under way already (this request changed nothing).
    already_draining: bool,
    /// The longest, in milliseconds, until the node stops.
    exit_within_ms: u64,
}
