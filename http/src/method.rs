//! HTTP request methods and a compact, allocation-free set of them (for `Allow` headers).

use std::fmt;

/// An HTTP request method. Methods this crate does not know map to [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `PATCH`
    Patch,
    /// Any other method token (e.g. `TRACE`, `CONNECT`, `BREW`). Never matched by a route.
    Other,
}

impl Method {
    /// Every method except [`Method::Other`], in canonical order.
    pub const KNOWN: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Options,
        Method::Patch,
    ];

    /// Maps a request-line method token (case-sensitive, as RFC 9110 requires) to a `Method`.
    ///
    /// ```
    /// use matchstream_http::Method;
    /// assert_eq!(Method::from_token("GET"), Method::Get);
    /// assert_eq!(Method::from_token("get"), Method::Other);
    /// ```
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }

    /// The method's token, e.g. `"GET"`. [`Method::Other`] yields `"OTHER"`.
    ///
    /// ```
    /// use matchstream_http::Method;
    /// assert_eq!(Method::Delete.as_str(), "DELETE");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Other => "OTHER",
        }
    }

    /// Whether a request with this method must carry a length (`POST`, `PUT`, `PATCH`).
    pub fn requires_length(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }

    fn bit(self) -> u8 {
        match self {
            Method::Get => 1,
            Method::Head => 1 << 1,
            Method::Post => 1 << 2,
            Method::Put => 1 << 3,
            Method::Delete => 1 << 4,
            Method::Options => 1 << 5,
            Method::Patch => 1 << 6,
            Method::Other => 0,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of known methods, stored as a bitmask (`Copy`, never allocates).
///
/// Its `Display` renders the value of an `Allow` header, in canonical order:
///
/// ```
/// use matchstream_http::{Method, MethodSet};
/// let mut set = MethodSet::new();
/// set.insert(Method::Post);
/// set.insert(Method::Get);
/// assert_eq!(set.to_string(), "GET, POST");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MethodSet(u8);

impl MethodSet {
    /// The empty set.
    pub const fn new() -> Self {
        MethodSet(0)
    }

    /// Adds `method`; inserting [`Method::Other`] has no effect.
    pub fn insert(&mut self, method: Method) {
        self.0 |= method.bit();
    }

    /// Whether `method` is in the set ([`Method::Other`] never is).
    pub fn contains(self, method: Method) -> bool {
        method.bit() != 0 && self.0 & method.bit() != 0
    }

    /// Whether the set holds no method.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members in canonical order (GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH).
    pub fn iter(self) -> impl Iterator<Item = Method> {
        Method::KNOWN.into_iter().filter(move |m| self.contains(*m))
    }
}

impl fmt::Display for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, method) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(method.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        for method in Method::KNOWN {
            assert_eq!(Method::from_token(method.as_str()), method, "{method:?}");
            assert_eq!(method.to_string(), method.as_str(), "{method:?}");
        }
    }

    #[test]
    fn unknown_and_lowercase_tokens_are_other() {
        let cases = [
            ("lowercase", "get"),
            ("trace", "TRACE"),
            ("custom", "BREW"),
            ("empty", ""),
        ];
        for (name, token) in cases {
            assert_eq!(Method::from_token(token), Method::Other, "{name}");
        }
    }

    #[test]
    fn method_set_behaviour() {
        struct Case {
            name: &'static str,
            insert: &'static [Method],
            display: &'static str,
        }
        let cases = [
            Case {
                name: "empty",
                insert: &[],
                display: "",
            },
            Case {
                name: "other is ignored",
                insert: &[Method::Other],
                display: "",
            },
            Case {
                name: "canonical order",
                insert: &[Method::Patch, Method::Get, Method::Head],
                display: "GET, HEAD, PATCH",
            },
            Case {
                name: "every method, each its own bit",
                insert: &Method::KNOWN,
                display: "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH",
            },
            Case {
                name: "duplicates collapse",
                insert: &[Method::Put, Method::Put],
                display: "PUT",
            },
        ];
        for case in cases {
            let mut set = MethodSet::new();
            for m in case.insert {
                set.insert(*m);
            }
            assert_eq!(set.to_string(), case.display, "{}", case.name);
            assert_eq!(set.is_empty(), case.display.is_empty(), "{}", case.name);
            assert!(!set.contains(Method::Other), "{}", case.name);
            for m in case.insert.iter().filter(|m| **m != Method::Other) {
                assert!(set.contains(*m), "{}", case.name);
            }
        }
    }
}
