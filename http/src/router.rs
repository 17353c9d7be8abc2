//! A small router: method plus path pattern (`/1/match/:id/history`) to a handler value.

use std::fmt;

use crate::method::{Method, MethodSet};

/// Maps (method, path) to a handler value `H` (the engine uses a small `Copy` enum of endpoints).
///
/// Patterns are like `"/1/match/:id/history"`: segments are split on `'/'`, a segment beginning
/// with `':'` captures one non-empty path segment, any other segment matches literally, and the
/// segment count must match exactly (so `/a/` does not match `/a`). Captured values are raw:
/// percent-decoding is not applied (see [`crate::query::percent_decode`]). Routes are tried in
/// the order they were added. A `HEAD` request with no `HEAD` route falls back to the `GET`
/// route (answer it with `head_only`). Routes for [`Method::Other`] never match.
///
/// ```
/// use matchstream_http::{Method, RouteError, Router};
///
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// enum Endpoint { History, Create }
///
/// let mut router = Router::new();
/// router
///     .add(Method::Get, "/1/match/:id/history", Endpoint::History)
///     .add(Method::Post, "/1/match", Endpoint::Create);
///
/// let (endpoint, params) = router.route(Method::Get, "/1/match/42/history").expect("routed");
/// assert_eq!(endpoint, Endpoint::History);
/// assert_eq!(params.get("id"), Some("42"));
///
/// match router.route(Method::Delete, "/1/match") {
///     Err(RouteError::MethodNotAllowed(allow)) => assert_eq!(allow.to_string(), "POST"),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(router.route(Method::Get, "/nope").err(), Some(RouteError::NotFound));
/// ```
#[derive(Debug, Clone)]
pub struct Router<H> {
    routes: Vec<Route<H>>,
    /// The most segments of any pattern: a path with more matches none.
    longest: usize,
}

#[derive(Debug, Clone)]
struct Route<H> {
    method: Method,
    /// The pattern's segments, split once when the route is added (the path is split once per
    /// request, never once per route: issue 14).
    segments: Vec<Segment>,
    handler: H,
}

/// One segment of a pattern.
#[derive(Debug, Clone, Copy)]
enum Segment {
    /// Matches itself.
    Literal(&'static str),
    /// Matches one non-empty segment, captured under this name.
    Param(&'static str),
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Router {
            routes: Vec::new(),
            longest: 0,
        }
    }
}

/// The most segments a path is split into: past it, it matches no pattern (patterns are
/// shorter). Splitting stops there, so a long path costs no more.
const MAX_SEGMENTS: usize = 16;

impl<H: Copy> Router<H> {
    /// An empty router.
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds a route. `pattern` must start with `'/'`; other patterns never match, and so does
    /// one of more than 16 segments.
    pub fn add(&mut self, method: Method, pattern: &'static str, handler: H) -> &mut Self {
        debug_assert!(
            pattern.starts_with('/'),
            "route pattern {pattern:?} must start with '/'"
        );
        let segments: Vec<Segment> = match segments(pattern) {
            Some(split) => split
                .map(|w| match w.strip_prefix(':') {
                    Some(name) => Segment::Param(name),
                    None => Segment::Literal(w),
                })
                .collect(),
            None => Vec::new(),
        };
        if !segments.is_empty() && segments.len() <= MAX_SEGMENTS {
            self.longest = self.longest.max(segments.len());
            self.routes.push(Route {
                method,
                segments,
                handler,
            });
        }
        self
    }

    /// Finds the handler for `method` and `path` (a path without query, as in
    /// [`crate::Request::path`]) and the captured parameters.
    ///
    /// [`RouteError::NotFound`] when no pattern matches the path;
    /// [`RouteError::MethodNotAllowed`] with the methods that would match (for the `Allow`
    /// header) when the path matches but not the method.
    pub fn route(&self, method: Method, path: &str) -> Result<(H, Params), RouteError> {
        let mut split = [""; MAX_SEGMENTS];
        let mut count = 0;
        if let Some(parts) = segments(path) {
            for part in parts {
                if count == self.longest {
                    return Err(RouteError::NotFound);
                }
                split[count] = part;
                count += 1;
            }
        }
        let got = &split[..count];
        let mut allowed = MethodSet::new();
        let mut get_fallback = None;
        for route in self.routes.iter().filter(|r| matches(&r.segments, got)) {
            if route.method == method && method != Method::Other {
                return Ok((route.handler, capture(&route.segments, got)));
            }
            if method == Method::Head && route.method == Method::Get && get_fallback.is_none() {
                get_fallback = Some(route);
            }
            allowed.insert(route.method);
        }
        if let Some(route) = get_fallback {
            return Ok((route.handler, capture(&route.segments, got)));
        }
        if allowed.is_empty() {
            return Err(RouteError::NotFound);
        }
        if allowed.contains(Method::Get) {
            allowed.insert(Method::Head);
        }
        Err(RouteError::MethodNotAllowed(allowed))
    }
}

/// Why [`Router::route`] found no handler. Never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// No pattern matches the path (404).
    NotFound,
    /// The path matches, but only for these methods (405); `to_string()` gives the `Allow` value.
    MethodNotAllowed(MethodSet),
}

impl RouteError {
    /// The HTTP status code to answer with: 404 or 405.
    pub fn status(self) -> u16 {
        match self {
            RouteError::NotFound => 404,
            RouteError::MethodNotAllowed(_) => 405,
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NotFound => f.write_str("not found"),
            RouteError::MethodNotAllowed(_) => f.write_str("method not allowed"),
        }
    }
}

impl std::error::Error for RouteError {}

/// Parameters captured by a route's `:name` segments, in pattern order (values not decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(&'static str, String)>,
}

impl Params {
    /// The value captured for `name` (without the `':'`), if the pattern has that segment.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The (name, value) pairs in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.pairs.iter().map(|(n, v)| (*n, v.as_str()))
    }

    /// Number of captured parameters.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// The `'/'`-separated segments after the leading slash; None when there is no leading slash.
fn segments(s: &str) -> Option<std::str::Split<'_, char>> {
    s.strip_prefix('/').map(|rest| rest.split('/'))
}

/// Whether a path split into `got` matches a pattern's segments.
fn matches(want: &[Segment], got: &[&str]) -> bool {
    want.len() == got.len()
        && want.iter().zip(got).all(|(w, g)| match w {
            Segment::Literal(l) => l == g,
            Segment::Param(_) => !g.is_empty(),
        })
}

/// Collects the captures of a pattern already known to match the path split into `got`.
fn capture(want: &[Segment], got: &[&str]) -> Params {
    let pairs = want
        .iter()
        .zip(got)
        .filter_map(|(w, g)| match w {
            Segment::Param(name) => Some((*name, (*g).to_owned())),
            Segment::Literal(_) => None,
        })
        .collect();
    Params { pairs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ep {
        Root,
        Health,
        List,
        Create,
        Show,
        Update,
        History,
        Event,
        Brew,
        Exact,
        HeadOnly,
    }

    fn router() -> Router<Ep> {
        let mut r = Router::new();
        r.add(Method::Get, "/", Ep::Root)
            .add(Method::Get, "/health", Ep::Health)
            .add(Method::Get, "/1/match", Ep::List)
            .add(Method::Post, "/1/match", Ep::Create)
            .add(Method::Get, "/1/match/:id", Ep::Show)
            .add(Method::Put, "/1/match/:id", Ep::Update)
            .add(Method::Get, "/1/match/:id/history", Ep::History)
            .add(Method::Get, "/1/match/:id/event/:seq", Ep::Event)
            .add(Method::Get, "/1/match/latest", Ep::Exact)
            .add(Method::Head, "/probe", Ep::HeadOnly)
            .add(Method::Other, "/teapot", Ep::Brew);
        r
    }

    #[test]
    fn a_pattern_of_more_than_16_segments_is_left_out_and_its_path_found_nowhere() {
        let long: &'static str = Box::leak("/a".repeat(17).into_boxed_str());
        let mut r = Router::new();
        r.add(Method::Get, long, Ep::Exact)
            .add(Method::Get, "/a", Ep::Health);
        assert_eq!(r.route(Method::Get, long).err(), Some(RouteError::NotFound));
        assert_eq!(r.route(Method::Get, "/a").map(|(e, _)| e), Ok(Ep::Health));
    }

    #[test]
    fn paths_longer_than_every_pattern_match_nothing_and_stop_being_split() {
        let r = router();
        let long = "/1".repeat(1000);
        assert_eq!(
            r.route(Method::Get, &long).err(),
            Some(RouteError::NotFound)
        );
        let longest = "/1/match/:id/history";
        let mut one = Router::new();
        one.add(Method::Get, longest, Ep::History);
        let (ep, params) = one
            .route(Method::Get, "/1/match/7/history")
            .expect("routed");
        assert_eq!((ep, params.get("id")), (Ep::History, Some("7")));
        for path in ["/1/match/7/history/x", "/1/match/7", "/1/match//history"] {
            assert_eq!(
                one.route(Method::Get, path).err(),
                Some(RouteError::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn matches_and_captures() {
        type Captures = &'static [(&'static str, &'static str)];
        let cases: [(&str, Method, &str, Ep, Captures); 10] = [
            ("root", Method::Get, "/", Ep::Root, &[]),
            ("literal", Method::Get, "/health", Ep::Health, &[]),
            (
                "same path other method",
                Method::Post,
                "/1/match",
                Ep::Create,
                &[],
            ),
            (
                "one capture",
                Method::Get,
                "/1/match/42",
                Ep::Show,
                &[("id", "42")],
            ),
            (
                "capture stays encoded",
                Method::Put,
                "/1/match/a%20b",
                Ep::Update,
                &[("id", "a%20b")],
            ),
            (
                "capture then literal",
                Method::Get,
                "/1/match/7/history",
                Ep::History,
                &[("id", "7")],
            ),
            (
                "two captures",
                Method::Get,
                "/1/match/7/event/3",
                Ep::Event,
                &[("id", "7"), ("seq", "3")],
            ),
            (
                "first added wins",
                Method::Get,
                "/1/match/latest",
                Ep::Show,
                &[("id", "latest")],
            ),
            (
                "head falls back to get",
                Method::Head,
                "/1/match/9",
                Ep::Show,
                &[("id", "9")],
            ),
            (
                "explicit head route",
                Method::Head,
                "/probe",
                Ep::HeadOnly,
                &[],
            ),
        ];
        let r = router();
        for (name, method, path, ep, params) in cases {
            match r.route(method, path) {
                Ok((got, got_params)) => {
                    assert_eq!(got, ep, "{name}");
                    assert_eq!(got_params.iter().collect::<Vec<_>>(), params, "{name}");
                    assert_eq!(got_params.len(), params.len(), "{name}");
                    assert_eq!(got_params.is_empty(), params.is_empty(), "{name}");
                    for (k, v) in params {
                        assert_eq!(got_params.get(k), Some(*v), "{name}");
                    }
                    assert_eq!(got_params.get("missing"), None, "{name}");
                }
                Err(e) => panic!("{name}: {e:?}"),
            }
        }
    }

    #[test]
    fn route_errors() {
        let cases: [(&str, Method, &str, &str); 11] = [
            ("unknown path", Method::Get, "/nope", "404"),
            ("trailing slash", Method::Get, "/health/", "404"),
            ("empty capture", Method::Get, "/1/match//history", "404"),
            (
                "too many segments",
                Method::Get,
                "/1/match/1/history/x",
                "404",
            ),
            ("too few segments", Method::Get, "/1", "404"),
            ("no leading slash", Method::Get, "health", "404"),
            (
                "other method route never matches",
                Method::Other,
                "/teapot",
                "404",
            ),
            (
                "method not allowed",
                Method::Delete,
                "/1/match",
                "GET, HEAD, POST",
            ),
            ("other on known path", Method::Other, "/health", "GET, HEAD"),
            ("head without get", Method::Get, "/probe", "HEAD"),
            (
                "put only capture route",
                Method::Patch,
                "/1/match/5",
                "GET, HEAD, PUT",
            ),
        ];
        let r = router();
        for (name, method, path, expected) in cases {
            let got = match r.route(method, path) {
                Ok((ep, _)) => panic!("{name}: routed to {ep:?}"),
                Err(RouteError::NotFound) => "404".to_owned(),
                Err(RouteError::MethodNotAllowed(allow)) => allow.to_string(),
            };
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn route_error_status() {
        let cases = [
            ("not found", RouteError::NotFound, 404),
            (
                "method not allowed",
                RouteError::MethodNotAllowed(MethodSet::new()),
                405,
            ),
        ];
        for (name, err, status) in cases {
            assert_eq!(err.status(), status, "{name}");
            assert_eq!(err.to_string(), name, "{name}");
        }
    }
}
