//! The endpoints of SPEC §4: public reads answered from the core's own match table, watcher
//! writes sent to the store thread, checkin from the per-core load counters; and the start of
//! a match's event stream (SPEC §8, [`super::stream`]); the live page's files
//! ([`super::pages`]).

use std::rc::Rc;
use std::sync::LazyLock;

use matchstream_http::{query_param, Method, Params, Request, Response, RouteError, Router};
use matchstream_protocol::api::{parse_new_match, parse_posted_event, stored_event_body};
use matchstream_protocol::MatchId;

use super::pages::{self, Page};
use super::stream::{self, Plan};
use super::{admin, error, read, Local};
use crate::checkin::{self, Target};
use crate::shard::Shard;
use crate::stats::requests::Route;
use crate::stats::{metrics_text, stats_json};
use crate::store::StoreError;

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Checkin,
    Matches,
    Match,
    History,
    Stream,
    Stats,
    Metrics,
    CreateMatch,
    PostEvent,
    CancelMatch,
    User,
    Page(Page),
    Asset,
    Healthz,
    Readyz,
    Drain,
}

static ROUTER: LazyLock<Router<Endpoint>> = LazyLock::new(|| {
    let mut r = Router::new();
    r.add(Method::Get, "/1/checkin", Endpoint::Checkin)
        .add(Method::Get, "/1/matches", Endpoint::Matches)
        .add(Method::Post, "/1/matches", Endpoint::CreateMatch)
        .add(Method::Get, "/1/match/:id", Endpoint::Match)
        .add(Method::Delete, "/1/match/:id", Endpoint::CancelMatch)
        .add(Method::Get, "/1/match/:id/history", Endpoint::History)
        .add(Method::Get, "/1/match/:id/stream", Endpoint::Stream)
        .add(Method::Post, "/1/match/:id/events", Endpoint::PostEvent)
        .add(Method::Get, "/1/users/:id", Endpoint::User)
        .add(Method::Get, "/1/stats", Endpoint::Stats)
        .add(Method::Get, "/metrics", Endpoint::Metrics)
        .add(Method::Get, "/", Endpoint::Page(Page::Matches))
        .add(Method::Get, "/match/:id", Endpoint::Page(Page::Match))
        .add(Method::Get, "/ops", Endpoint::Page(Page::Ops))
        .add(Method::Get, "/web/:file", Endpoint::Asset)
        .add(Method::Get, "/healthz", Endpoint::Healthz)
        .add(Method::Get, "/readyz", Endpoint::Readyz)
        .add(Method::Post, "/1/admin/drain", Endpoint::Drain);
    r
});

/// What a request gets.
pub enum Answer {
    /// A response, written in order with the connection's other answers.
    Reply(Response),
    /// An event stream: the connection leaves the request loop for the match's fanout.
    Stream(Plan),
}

impl Endpoint {
    /// The route requests to this endpoint are counted under.
    fn route(self) -> Route {
        match self {
            Endpoint::Checkin => Route::Checkin,
            Endpoint::Matches => Route::Matches,
            Endpoint::Match => Route::Match,
            Endpoint::History => Route::History,
            Endpoint::Stream => Route::Stream,
            Endpoint::Stats => Route::Stats,
            Endpoint::Metrics => Route::Metrics,
            Endpoint::CreateMatch => Route::CreateMatch,
            Endpoint::PostEvent => Route::PostEvent,
            Endpoint::CancelMatch => Route::CancelMatch,
            Endpoint::User => Route::User,
            Endpoint::Page(_) => Route::Page,
            Endpoint::Asset => Route::Asset,
            Endpoint::Healthz => Route::Healthz,
            Endpoint::Readyz => Route::Readyz,
            Endpoint::Drain => Route::Drain,
        }
    }
}

/// Answers one request, and counts it by route and status on the core's counters.
pub async fn handle(shard: &Rc<Shard>, req: &Request, local: Local<'_>) -> Answer {
    let (endpoint, params) = match decide(shard, req, &local) {
        Decided::Now(response) => return Answer::Reply(response),
        Decided::Later(endpoint, params) => (endpoint, params),
    };
    let answer = respond_later(shard, req, endpoint, &params).await;
    let status = match &answer {
        Answer::Reply(response) => response.status,
        Answer::Stream(_) => 200,
    };
    shard.stats.count_request(endpoint.route(), status);
    answer
}

/// The answer to a request that needs no wait — the public reads, the pages, health, and every
/// request that is not routed — counted by route and status; `None` for the rest (writes,
/// which wait for the store, and event streams), which [`handle`] answers.
/// Reads the core's latest state.
pub fn answer_now(shard: &Rc<Shard>, req: &Request, local: &Local<'_>) -> Option<Response> {
    match decide(shard, req, local) {
        Decided::Now(response) => Some(response),
        Decided::Later(..) => None,
    }
}

/// A request routed once: answered now (and counted), or an endpoint that waits or streams.
enum Decided {
    Now(Response),
    Later(Endpoint, Params),
}

fn decide(shard: &Rc<Shard>, req: &Request, local: &Local<'_>) -> Decided {
    let (route, response) = match ROUTER.route(req.method, &req.path) {
        Ok((endpoint, params)) => match read_now(shard, req, local, endpoint, &params) {
            Some(response) => (endpoint.route(), response),
            None => return Decided::Later(endpoint, params),
        },
        Err(RouteError::NotFound) => (Route::Other, error(404, "no such path")),
        Err(RouteError::MethodNotAllowed(allow)) => (
            Route::Other,
            error(405, "method not allowed").with_header("Allow", allow.to_string()),
        ),
    };
    shard.stats.count_request(route, response.status);
    Decided::Now(response)
}

/// The answer of an endpoint that answers at once, or `None` for one that waits or streams.
fn read_now(
    shard: &Rc<Shard>,
    req: &Request,
    local: &Local<'_>,
    endpoint: Endpoint,
    params: &Params,
) -> Option<Response> {
    let id = params.get("id").unwrap_or_default();
    Some(match endpoint {
        Endpoint::Checkin => read(checkin(shard, local)),
        Endpoint::Matches => read(matches(shard)),
        Endpoint::Match => read(one_match(shard, id)),
        Endpoint::History => read(history(shard, id, req.query.as_deref())),
        Endpoint::Stats => read(Response::json(200, stats_json(&shard.node))),
        Endpoint::Page(which) => pages::page(which),
        Endpoint::Asset => pages::asset(params.get("file").unwrap_or_default()),
        Endpoint::Metrics => {
            Response::text(200, metrics_text(&shard.node)).with_header("Cache-Control", "no-store")
        }
        Endpoint::Healthz => admin::healthz(),
        Endpoint::Readyz => admin::readyz(shard),
        Endpoint::Stream
        | Endpoint::User
        | Endpoint::CreateMatch
        | Endpoint::PostEvent
        | Endpoint::CancelMatch
        | Endpoint::Drain => return None,
    })
}

/// The answer of an endpoint [`read_now`] leaves: a stream, or a watcher's call.
async fn respond_later(
    shard: &Rc<Shard>,
    req: &Request,
    endpoint: Endpoint,
    params: &Params,
) -> Answer {
    let id = params.get("id").unwrap_or_default();
    if let Endpoint::Stream = endpoint {
        return match stream::open(shard, id, req) {
            Ok(plan) => Answer::Stream(plan),
            Err(answer) => Answer::Reply(answer),
        };
    }
    // Watchers only: the visit counts are not public (not in the product spec).
    if let Err(denied) = authorize(shard, req) {
        return Answer::Reply(denied);
    }
    Answer::Reply(match endpoint {
        Endpoint::User => user(shard, id).await,
        Endpoint::Drain => admin::drain(shard),
        Endpoint::CreateMatch => create_match(shard, &req.body).await,
        Endpoint::PostEvent => post_event(shard, id, &req.body).await,
        Endpoint::CancelMatch => cancel_match(shard, id).await,
        _ => error(404, "no such path"),
    })
}

fn authorize(shard: &Shard, req: &Request) -> Result<(), Response> {
    let Some(value) = req.authorization.as_deref() else {
        return Err(error(401, "missing bearer token").with_header("WWW-Authenticate", "Bearer"));
    };
    let token = value.strip_prefix("Bearer ").unwrap_or("").trim();
    if constant_time_eq(token.as_bytes(), shard.token.as_bytes()) {
        Ok(())
    } else {
        Err(error(401, "wrong bearer token").with_header("WWW-Authenticate", "Bearer"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn checkin(shard: &Shard, local: &Local<'_>) -> Response {
    let (host, port) = match checkin::pick(&shard.node) {
        Target::Remote { host, port } => (host, port),
        Target::Local(core) => {
            let port = shard.node.stream_ports.get(core).copied().unwrap_or(0);
            let host = match &shard.config.advertise {
                Some(h) => h.clone(),
                None => local
                    .get()
                    .map_or_else(|| "127.0.0.1".to_owned(), |a| a.ip().to_string()),
            };
            (host, port)
        }
        Target::Nowhere => return error(503, crate::drain::REASON),
    };
    let body = serde_json::to_vec(&Checkin { host: &host, port }).unwrap_or_default();
    Response::json(200, body)
}

/// The body of `GET /1/checkin`.
#[derive(serde::Serialize)]
struct Checkin<'a> {
    host: &'a str,
    port: u16,
}

fn matches(shard: &Rc<Shard>) -> Response {
    shard.sync();
    let body = shard.fanout.borrow().listing();
    Response::json(200, body)
}

fn one_match(shard: &Rc<Shard>, id: &str) -> Response {
    shard.sync();
    let fanout = shard.fanout.borrow();
    let Some(view) = fanout.get(id) else {
        return error(404, "unknown match");
    };
    Response::json(200, view.json())
}

fn history(shard: &Rc<Shard>, id: &str, query: Option<&str>) -> Response {
    let since = match query.and_then(|q| query_param(q, "since")) {
        None => 0,
        Some(s) => match s.parse::<u64>() {
            Ok(n) => n,
            Err(_) => return error(400, "since must be a non-negative integer"),
        },
    };
    shard.sync();
    let fanout = shard.fanout.borrow();
    let Some(view) = fanout.get(id) else {
        return error(404, "unknown match");
    };
    if since == 0 {
        Response::json(200, view.history_json())
    } else {
        Response::json(200, view.history_json_since(since))
    }
}

/// `GET /1/users/<id>`: a user's visit count, from the store.
async fn user(shard: &Shard, id: &str) -> Response {
    match shard.store.visits(id).await {
        Ok(n) => Response::json(
            200,
            serde_json::json!({"user": id, "visits": n})
                .to_string()
                .into_bytes(),
        ),
        Err(e) => store_error(&e),
    }
}

async fn create_match(shard: &Shard, body: &[u8]) -> Response {
    let new = match parse_new_match(body) {
        Ok(new) => new,
        Err(e) => return error(400, &e.0),
    };
    match shard.store.create(new, now_ms()).await {
        Ok(m) => Response::json(
            201,
            serde_json::json!({"id": m.id.as_str()})
                .to_string()
                .into_bytes(),
        )
        .with_header("Location", format!("/1/match/{}", m.id)),
        Err(e) => store_error(&e),
    }
}

async fn post_event(shard: &Shard, id: &str, body: &[u8]) -> Response {
    let Ok(id) = MatchId::parse(id) else {
        return error(404, "unknown match");
    };
    let event = match parse_posted_event(body) {
        Ok(event) => event,
        Err(e) => return error(400, &e.0),
    };
    match shard.store.apply(id, event, now_ms()).await {
        Ok(event) => Response::json(201, stored_event_body(&event)),
        Err(e) => store_error(&e),
    }
}

async fn cancel_match(shard: &Shard, id: &str) -> Response {
    let Ok(id) = MatchId::parse(id) else {
        return error(404, "unknown match");
    };
    match shard.store.cancel(id).await {
        Ok(()) => Response::new(204),
        Err(e) => store_error(&e),
    }
}

/// The answer to a failed store call: its status, and its text as the reason.
fn store_error(e: &StoreError) -> Response {
    error(e.status(), &e.to_string())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
