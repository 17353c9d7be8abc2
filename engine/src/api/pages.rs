//! The live page (SPEC §8): plain HTML, CSS and JavaScript built into the binary from
//! `engine/web/`, served by every node on its API port. Nothing is fetched from elsewhere
//! (the Content-Security-Policy says so to the browser too); the pages read the node's own
//! public API: `/1/matches` and `/1/match/<id>` for the list, `/1/match/<id>/stream` (SSE)
//! and `/1/match/<id>/history` for a match, `/1/stats` for the operations panel.
//!
//! - `GET /` the matches with their live scores;
//! - `GET /match/<id>` a match: scoreboard, rosters, a timeline that grows as events arrive;
//! - `GET /ops` the operations panel, refreshed every second;
//! - `GET /web/<file>` the stylesheet and scripts those pages load.

use matchstream_http::Response;

use super::error;

/// One file of the page.
struct File {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The pages, by the route that serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `GET /`.
    Matches,
    /// `GET /match/<id>` (the page finds the id in its own address).
    Match,
    /// `GET /ops`.
    Ops,
}

const INDEX: File = File {
    name: "index.html",
    content_type: HTML,
    body: include_bytes!("../../web/index.html"),
};
const MATCH: File = File {
    name: "match.html",
    content_type: HTML,
    body: include_bytes!("../../web/match.html"),
};
const OPS: File = File {
    name: "ops.html",
    content_type: HTML,
    body: include_bytes!("../../web/ops.html"),
};

/// What `/web/<file>` serves.
const ASSETS: [File; 5] = [
    File {
        name: "live.css",
        content_type: CSS,
        body: include_bytes!("../../web/live.css"),
    },
    File {
        name: "common.js",
        content_type: JS,
        body: include_bytes!("../../web/common.js"),
    },
    File {
        name: "matches.js",
        content_type: JS,
        body: include_bytes!("../../web/matches.js"),
    },
    File {
        name: "match.js",
        content_type: JS,
        body: include_bytes!("../../web/match.js"),
    },
    File {
        name: "ops.js",
        content_type: JS,
        body: include_bytes!("../../web/ops.js"),
    },
];

/// The browser may load and connect to this node only; no inline script or style, no frames.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

fn serve(file: &File) -> Response {
    let mut response = Response {
        content_type: Some(file.content_type),
        body: file.body.into(),
        ..Response::new(200)
    }
    // The files change only with the binary; a browser asks again each time (no stale script
    // after an upgrade), and they are small.
    .with_header("Cache-Control", "no-cache")
    .with_header("X-Content-Type-Options", "nosniff");
    if file.content_type == HTML {
        response = response
            .with_header("Content-Security-Policy", POLICY)
            .with_header("Referrer-Policy", "no-referrer");
    }
    response
}

/// The answer to a page's route.
pub fn page(which: Page) -> Response {
    serve(match which {
        Page::Matches => &INDEX,
        Page::Match => &MATCH,
        Page::Ops => &OPS,
    })
}

/// The answer to `GET /web/<name>`: the file, or 404 `no such file`.
pub fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|f| f.name == name) {
        Some(file) => serve(file),
        None => error(404, "no such file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_file_a_page_loads_is_served() {
        for html in [&INDEX, &MATCH, &OPS] {
            let text = std::str::from_utf8(html.body).expect("utf-8");
            for (at, _) in text.match_indices("/web/") {
                let rest = &text[at + "/web/".len()..];
                let name = &rest[..rest.find('"').expect("quoted")];
                let r = asset(name);
                assert_eq!(r.status, 200, "{} loads /web/{name}", html.name);
            }
        }
        // The scripts import each other by the same paths.
        for file in &ASSETS {
            let text = std::str::from_utf8(file.body).expect("utf-8");
            for (at, _) in text.match_indices("from \"/web/") {
                let rest = &text[at + "from \"/web/".len()..];
                let name = &rest[..rest.find('"').expect("quoted")];
                assert_eq!(asset(name).status, 200, "{} imports /web/{name}", file.name);
            }
        }
    }

    #[test]
    fn pages_carry_their_type_and_policy() {
        let r = page(Page::Match);
        assert_eq!(r.content_type, Some(HTML));
        assert_eq!(&*r.body, MATCH.body);
        assert_eq!(header(&r, "Content-Security-Policy"), Some(POLICY));
        let css = asset("live.css");
        assert_eq!(css.content_type, Some(CSS));
        assert_eq!(header(&css, "Content-Security-Policy"), None);
        assert_eq!(header(&css, "X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(asset("match.js").content_type, Some(JS));
        assert_eq!(asset("nope.js").status, 404);
        assert_eq!(asset("../Cargo.toml").status, 404);
    }

    #[test]
    fn nothing_is_fetched_from_elsewhere() {
        for file in [&INDEX, &MATCH, &OPS].into_iter().chain(&ASSETS) {
            let text = std::str::from_utf8(file.body).expect("utf-8");
            for outside in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(outside), "{} names {outside}", file.name);
            }
        }
    }
}
