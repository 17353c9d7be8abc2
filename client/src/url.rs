//! The API's address as users give it: `http://host[:port][/prefix]`, or a bare
//! `host:port`. Plain HTTP only (the API speaks no TLS). Parsing checks the text; resolving
//! the host is left to the moment of connecting, so that a name with several addresses can
//! be tried address by address.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, bail, Context};

/// A parsed API URL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Url {
    /// The `Host` header's value: the host as written (brackets kept for IPv6), with
    /// `:port` unless the port is 80.
    host_header: String,
    /// The port (80 when not given).
    port: u16,
    /// A path prefix put before every request's path, without a trailing `/` (usually empty).
    prefix: String,
}

impl Url {
    /// Parses `http://host[:port][/prefix]` (scheme in any case, a trailing `/` allowed) or a
    /// bare `host:port[/prefix]`.
    pub fn parse(url: &str) -> anyhow::Result<Url> {
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                bail!("{url}: https is not supported; the matchstream API speaks plain http://")
            }
            Some(_) => bail!("{url}: expected a URL like http://127.0.0.1:8888"),
            None => url,
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains(['?', '#']) || path.contains(['?', '#']) {
            bail!("{url}: give only http://host:port, without a query");
        }
        if authority.contains('@') {
            bail!("{url}: user information in the URL is not supported");
        }
        let (host, port) = split_authority(url, authority)?;
        if host.is_empty() {
            bail!("{url}: empty host");
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse()
                .ok()
                .filter(|n| *n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| anyhow!("{url}: bad port {p:?}"))?,
        };
        Ok(Url {
            host_header: if port == 80 {
                host.to_owned()
            } else {
                format!("{host}:{port}")
            },
            port,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path prefix (empty, or `/something` without a trailing `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `host:port` (brackets kept for IPv6): what to connect to.
    pub fn authority(&self) -> String {
        if self.port == 80 {
            format!("{}:80", self.host_header)
        } else {
            self.host_header.clone()
        }
    }

    /// The `Host` header's value: the host, with its port unless 80.
    pub fn host_header(&self) -> &str {
        &self.host_header
    }

    /// The addresses the host resolves to, in the resolver's order.
    pub fn socket_addrs(&self) -> anyhow::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = self
            .authority()
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {}", self.authority()))?
            .collect();
        if addrs.is_empty() {
            bail!("{} resolves to no address", self.authority());
        }
        Ok(addrs)
    }
}

impl std::fmt::Display for Url {
    /// `http://host[:port][/prefix]`, without a trailing slash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.host_header, self.prefix)
    }
}

/// Splits `host[:port]`, `[v6][:port]` into the host (brackets kept) and the port's text.
fn split_authority<'a>(
    url: &str,
    authority: &'a str,
) -> anyhow::Result<(&'a str, Option<&'a str>)> {
    let Some(v6) = authority.strip_prefix('[') else {
        return Ok(match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        });
    };
    let (inside, after) = v6
        .split_once(']')
        .ok_or_else(|| anyhow!("{url}: unclosed [ in the host"))?;
    if inside.is_empty() {
        bail!("{url}: empty host");
    }
    let host = &authority[..inside.len() + 2];
    match after {
        "" => Ok((host, None)),
        p => match p.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None => bail!("{url}: unexpected text after ]"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        // (as given, its display, host header, authority)
        let ok = [
            (
                "http://127.0.0.1:8888",
                "http://127.0.0.1:8888",
                "127.0.0.1:8888",
                "127.0.0.1:8888",
            ),
            (
                "http://127.0.0.1:8888/",
                "http://127.0.0.1:8888",
                "127.0.0.1:8888",
                "127.0.0.1:8888",
            ),
            (
                "HTTP://localhost:9",
                "http://localhost:9",
                "localhost:9",
                "localhost:9",
            ),
            (
                "http://example.org",
                "http://example.org",
                "example.org",
                "example.org:80",
            ),
            (
                "http://[::1]:8888/",
                "http://[::1]:8888",
                "[::1]:8888",
                "[::1]:8888",
            ),
            ("http://[::1]", "http://[::1]", "[::1]", "[::1]:80"),
            (
                "127.0.0.1:9/api/",
                "http://127.0.0.1:9/api",
                "127.0.0.1:9",
                "127.0.0.1:9",
            ),
            ("h:80/a/b", "http://h/a/b", "h", "h:80"),
        ];
        for (text, shown, host, authority) in ok {
            let url = Url::parse(text).expect(text);
            assert_eq!(url.to_string(), shown, "{text}");
            assert_eq!(url.host_header(), host, "{text}");
            assert_eq!(url.authority(), authority, "{text}");
        }
        let u = Url::parse("127.0.0.1:9/api/").expect("bare");
        assert_eq!((u.port(), u.prefix()), (9, "/api"));
    }

    #[test]
    fn bad_urls_say_why() {
        let bad = [
            ("https://127.0.0.1:8888", "https is not supported"),
            ("ftp://x", "expected a URL like"),
            ("http://", "empty host"),
            ("http://:80", "empty host"),
            ("http://h:0", "bad port"),
            ("http://h:99999", "bad port"),
            ("http://h:+80", "bad port"),
            ("http://127.0.0.1:x", "bad port"),
            ("http://h:80?x", "without a query"),
            ("http://h:80/a#b", "without a query"),
            ("http://u@h:80", "user information"),
            ("http://[::1", "unclosed ["),
            ("http://[]:80", "empty host"),
            ("http://[::1]x", "after ]"),
        ];
        for (url, why) in bad {
            let text = Url::parse(url).expect_err(url).to_string();
            assert!(text.contains(why), "{url}: {text}");
        }
    }

    #[test]
    fn hosts_resolve_when_asked() {
        let url = Url::parse("http://127.0.0.1:8888").expect("url");
        assert_eq!(
            url.socket_addrs().expect("addrs"),
            ["127.0.0.1:8888".parse::<SocketAddr>().expect("addr")]
        );
        let v6 = Url::parse("http://[::1]:9").expect("url");
        assert_eq!(v6.socket_addrs().expect("addrs")[0].port(), 9);
    }
}
