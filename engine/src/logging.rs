//! Log lines on stderr, as text (the default) or as one JSON object per line
//! (`--log-format json`), with the same fields either way: time (UTC, milliseconds), level,
//! target, message, and the record's key-value pairs (the access log's `method`, `path`,
//! `status`, ...). `RUST_LOG` chooses what is logged (`info` by default).
//!
//! ```text
//! [2026-12-03T08:40:00.123Z INFO  matchstream::access] GET /1/matches method=GET path=/1/matches status=200 bytes=2 us=41 peer=127.0.0.1:50514
//! {"ts":"2026-12-03T08:40:00.123Z","level":"INFO","target":"matchstream::access","msg":"GET /1/matches","method":"GET","path":"/1/matches","status":200,"bytes":2,"us":41,"peer":"127.0.0.1:50514"}
//! ```

use std::io::Write;

use log::kv::{self, VisitSource};
use serde_json::Value;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL target] message key=value ...`
    #[default]
    Text,
    /// One JSON object per line: `ts`, `level`, `target`, `msg`, then the key-value pairs.
    Json,
}

/// Starts logging to stderr in `format`.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    builder.format(move |buf, record| {
        let ts = buf.timestamp_millis().to_string();
        let pairs = pairs(record.key_values());
        let line = match format {
            LogFormat::Text => text_line(
                &ts,
                record.level(),
                record.target(),
                &record.args().to_string(),
                &pairs,
            ),
            LogFormat::Json => json_line(
                &ts,
                record.level(),
                record.target(),
                &record.args().to_string(),
                &pairs,
            ),
        };
        writeln!(buf, "{line}")
    });
    builder.init();
}

/// A record's key-value pairs, in order, as JSON values (numbers and booleans stay so).
fn pairs(source: &dyn kv::Source) -> Vec<(String, Value)> {
    struct Collect(Vec<(String, Value)>);
    impl<'kvs> VisitSource<'kvs> for Collect {
        fn visit_pair(
            &mut self,
            key: kv::Key<'kvs>,
            value: kv::Value<'kvs>,
        ) -> Result<(), kv::Error> {
            let json = if let Some(n) = value.to_u64() {
                Value::from(n)
            } else if let Some(n) = value.to_i64() {
                Value::from(n)
            } else if let Some(b) = value.to_bool() {
                Value::from(b)
            } else {
                Value::from(value.to_string())
            };
            self.0.push((key.as_str().to_owned(), json));
            Ok(())
        }
    }
    let mut collect = Collect(Vec::new());
    let _ = source.visit(&mut collect);
    collect.0
}

/// A text line: `[ts LEVEL target] msg key=value ...` (a value with a space or a quote is
/// quoted as JSON).
pub fn text_line(
    ts: &str,
    level: log::Level,
    target: &str,
    msg: &str,
    pairs: &[(String, Value)],
) -> String {
    let mut line = format!("[{ts} {level:<5} {target}] {msg}");
    for (key, value) in pairs {
        let shown = match value {
            Value::String(s) if s.is_empty() || s.contains([' ', '"', '=']) => value.to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        line.push(' ');
        line.push_str(key);
        line.push('=');
        line.push_str(&shown);
    }
    line
}

/// A JSON line: `{"ts", "level", "target", "msg", <pairs>...}`. A pair named like one of the
/// four fields does not replace it.
pub fn json_line(
    ts: &str,
    level: log::Level,
    target: &str,
    msg: &str,
    pairs: &[(String, Value)],
) -> String {
    let mut line = String::with_capacity(128 + msg.len());
    let mut seen: Vec<&str> = Vec::with_capacity(4 + pairs.len());
    line.push('{');
    let fixed = [
        ("ts", Value::from(ts)),
        ("level", Value::from(level.as_str())),
        ("target", Value::from(target)),
        ("msg", Value::from(msg)),
    ];
    let all = fixed
        .iter()
        .map(|(k, v)| (*k, v))
        .chain(pairs.iter().map(|(k, v)| (k.as_str(), v)));
    for (key, value) in all {
        if seen.contains(&key) {
            continue;
        }
        if !seen.is_empty() {
            line.push(',');
        }
        seen.push(key);
        line.push_str(&Value::from(key).to_string());
        line.push(':');
        line.push_str(&value.to_string());
    }
    line.push('}');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Vec<(String, Value)> {
        vec![
            ("method".into(), "GET".into()),
            ("path".into(), "/1/matches".into()),
            ("status".into(), 200.into()),
            ("peer".into(), "127.0.0.1:5".into()),
        ]
    }

    #[test]
    fn a_text_line_has_the_fields_then_the_pairs() {
        let line = text_line(
            "2026-12-03T08:40:00.123Z",
            log::Level::Info,
            "matchstream::access",
            "GET /1/matches",
            &access(),
        );
        assert_eq!(
            line,
            "[2026-12-03T08:40:00.123Z INFO  matchstream::access] GET /1/matches \
             method=GET path=/1/matches status=200 peer=127.0.0.1:5"
        );
        let quoted = text_line(
            "t",
            log::Level::Warn,
            "x",
            "m",
            &[("why".into(), "a b".into())],
        );
        assert_eq!(quoted, "[t WARN  x] m why=\"a b\"");
    }

    #[test]
    fn a_json_line_is_one_object_with_the_same_fields() {
        let line = json_line(
            "2026-12-03T08:40:00.123Z",
            log::Level::Warn,
            "matchstream::server",
            "a \"quoted\"\nmessage",
            &[access(), vec![("msg".into(), "not this".into())]].concat(),
        );
        assert!(!line.contains('\n'), "one line: {line}");
        assert_eq!(
            line,
            r#"{"ts":"2026-12-03T08:40:00.123Z","level":"WARN","target":"matchstream::server","msg":"a \"quoted\"\nmessage","method":"GET","path":"/1/matches","status":200,"peer":"127.0.0.1:5"}"#
        );
    }

    #[test]
    fn pairs_keep_numbers_as_numbers() {
        struct Three;
        impl kv::Source for Three {
            fn visit<'kvs>(
                &'kvs self,
                visitor: &mut dyn VisitSource<'kvs>,
            ) -> Result<(), kv::Error> {
                visitor.visit_pair("n".into(), 7u64.into())?;
                visitor.visit_pair("ok".into(), true.into())?;
                visitor.visit_pair("s".into(), "x".into())
            }
        }
        assert_eq!(
            pairs(&Three),
            vec![
                ("n".to_owned(), Value::from(7u64)),
                ("ok".to_owned(), Value::from(true)),
                ("s".to_owned(), Value::from("x")),
            ]
        );
    }
}
