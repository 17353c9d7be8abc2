//! API requests by route and status: a table of relaxed counters per core, written by the
//! core that answered (no lock), summed over the cores when read.
//!
//! Routes are the API's endpoints by name, not paths (a path names a match: counting by path
//! would grow without bound); statuses are the ones the API answers with ([`STATUSES`]). A
//! request is counted once answered by the router's endpoints, its answer's status decided;
//! a request that never parsed (400, 408, 413, 431 from the parser, 503 at the connection
//! cap) is not: those show in `http_requests` and the `http` figures of `/1/stats` only.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// An endpoint of the API, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /1/checkin`.
    Checkin,
    /// `GET /1/matches`.
    Matches,
    /// `POST /1/matches`.
    CreateMatch,
    /// `GET /1/match/<id>`.
    Match,
    /// `DELETE /1/match/<id>`.
    CancelMatch,
    /// `GET /1/match/<id>/history`.
    History,
    /// `GET /1/match/<id>/stream`.
    Stream,
    /// `POST /1/match/<id>/events`.
    PostEvent,
    /// `GET /1/users/<id>`.
    User,
    /// `GET /1/stats`.
    Stats,
    /// `GET /metrics`.
    Metrics,
    /// `GET /`, `/match/<id>`, `/ops`.
    Page,
    /// `GET /web/<file>`.
    Asset,
    /// `GET /healthz`.
    Healthz,
    /// `GET /readyz`.
    Readyz,
    /// `POST /1/admin/drain`.
    Drain,
    /// No endpoint: an unknown path (404) or a method the path does not take (405).
    Other,
}

impl Route {
    /// Every route, in the order `/1/stats` lists them.
    pub const ALL: [Route; 17] = [
        Route::Checkin,
        Route::Matches,
        Route::CreateMatch,
        Route::Match,
        Route::CancelMatch,
        Route::History,
        Route::Stream,
        Route::PostEvent,
        Route::User,
        Route::Stats,
        Route::Metrics,
        Route::Page,
        Route::Asset,
        Route::Healthz,
        Route::Readyz,
        Route::Drain,
        Route::Other,
    ];

    /// The route's name in `/1/stats` and the `route` label of `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Route::Checkin => "checkin",
            Route::Matches => "matches",
            Route::CreateMatch => "create_match",
            Route::Match => "match",
            Route::CancelMatch => "cancel_match",
            Route::History => "history",
            Route::Stream => "stream",
            Route::PostEvent => "post_event",
            Route::User => "user",
            Route::Stats => "stats",
            Route::Metrics => "metrics",
            Route::Page => "page",
            Route::Asset => "asset",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Drain => "drain",
            Route::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The statuses the API's endpoints answer with; any other is counted as status 0.
pub const STATUSES: [u16; 15] = [
    200, 201, 202, 204, 400, 401, 404, 405, 408, 409, 411, 413, 431, 500, 503,
];

/// Columns of the table: [`STATUSES`], then "another status".
const COLUMNS: usize = STATUSES.len() + 1;

/// One core's requests by route and status.
#[derive(Debug)]
pub struct Requests {
    counts: [[AtomicU64; COLUMNS]; Route::ALL.len()],
}

impl Default for Requests {
    fn default() -> Requests {
        Requests {
            counts: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

impl Requests {
    /// Counts a request to `route` answered with `status`.
    pub fn count(&self, route: Route, status: u16) {
        let column = STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(STATUSES.len());
        self.counts[route.index()][column].fetch_add(1, Relaxed);
    }

    /// Adds this table's counts into `into` (indexed as the table).
    fn add_to(&self, into: &mut [[u64; COLUMNS]; Route::ALL.len()]) {
        for (row, sums) in self.counts.iter().zip(into.iter_mut()) {
            for (c, sum) in row.iter().zip(sums.iter_mut()) {
                *sum += c.load(Relaxed);
            }
        }
    }
}

/// How many requests a route answered with a status, all cores together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCount {
    /// The route's name ([`Route::name`]).
    pub route: String,
    /// The status (0: one not in [`STATUSES`]).
    pub status: u16,
    /// Requests since start.
    pub count: u64,
}

/// The non-zero counts of every core's table, summed, in route then status order.
pub fn sum<'a>(tables: impl IntoIterator<Item = &'a Requests>) -> Vec<RequestCount> {
    let mut sums = [[0u64; COLUMNS]; Route::ALL.len()];
    for t in tables {
        t.add_to(&mut sums);
    }
    let mut out = Vec::new();
    for (route, row) in Route::ALL.iter().zip(sums) {
        for (column, count) in row.into_iter().enumerate() {
            if count > 0 {
                out.push(RequestCount {
                    route: route.name().to_owned(),
                    status: STATUSES.get(column).copied().unwrap_or(0),
                    count,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_listed_in_their_declared_order() {
        for (i, r) in Route::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.name());
        }
    }

    #[test]
    fn requests_are_summed_over_cores_by_route_and_status() {
        let (a, b) = (Requests::default(), Requests::default());
        a.count(Route::PostEvent, 201);
        b.count(Route::PostEvent, 201);
        b.count(Route::PostEvent, 409);
        a.count(Route::Other, 404);
        a.count(Route::Checkin, 299);
        let got = sum([&a, &b]);
        let want = [
            ("checkin", 0, 1),
            ("post_event", 201, 2),
            ("post_event", 409, 1),
            ("other", 404, 1),
        ];
        let got: Vec<(&str, u16, u64)> = got
            .iter()
            .map(|c| (c.route.as_str(), c.status, c.count))
            .collect();
        assert_eq!(got, want);
    }
}
