//! Reports: the JSON document every subcommand writes with `--json` (the environment first,
//! then the command and its figures; the schema is in bench/README.md), the bench's own cost
//! that every report states, and the plain-text tables printed at the end of a run.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::figures::env::Environment;
use crate::figures::latency::Summary;

/// Version of the JSON schema (bench/README.md); bumped when a field changes meaning.
/// 2: fanout reports every run of every system (`systems`), the flow control, problems.
pub const SCHEMA: u32 = 2;

/// A JSON report: `{"environment":{..},"schema":2,"command":"..","report":{..}}`.
#[derive(Debug, Serialize)]
pub struct Document<'a, R: Serialize> {
    /// Where and how the figures were taken (always the first key).
    pub environment: &'a Environment,
    /// [`SCHEMA`].
    pub schema: u32,
    /// The subcommand: `clients`, `http`, `fanout` or `ramp`.
    pub command: &'a str,
    /// The figures.
    pub report: &'a R,
}

/// Writes `report` as a JSON document to `path`.
pub fn write_json<R: Serialize>(
    path: &Path,
    environment: &Environment,
    command: &str,
    report: &R,
) -> anyhow::Result<()> {
    let doc = Document {
        environment,
        schema: SCHEMA,
        command,
        report,
    };
    let mut text = serde_json::to_vec_pretty(&doc).context("serializing the report")?;
    text.push(b'\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// What running the load cost the bench itself, which shares the machine with the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct BenchCost {
    /// CPU seconds (user + system) of the bench and its worker processes over the run.
    pub cpu_seconds: f64,
    /// Shards the connections were spread over.
    pub shards: usize,
    /// Whether the shards were worker processes (else threads of the bench).
    pub worker_processes: bool,
    /// Growth of the bench's RSS per connection open when all had connected, in bytes
    /// (the bench's own memory per connection; kernel socket buffers not included).
    pub rss_bytes_per_connection: Option<f64>,
}

/// A plain-text table: a header row and rows of cells, numbers right-aligned.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Right-align numeric cells (off for key/value tables whose values are prose).
    numeric_right: bool,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            numeric_right: true,
        }
    }

    /// A two-column key/value table titled `title`, every cell left-aligned.
    pub fn kv(title: &str) -> Table {
        Table {
            header: vec![title.to_owned(), String::new()],
            rows: Vec::new(),
            numeric_right: false,
        }
    }

    /// The same table with every cell left-aligned (for cells that mix numbers and prose).
    pub fn left_aligned(mut self) -> Table {
        self.numeric_right = false;
        self
    }

    /// Appends a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Renders the table.
    pub fn render(&self) -> String {
        let cols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut width = vec![0; cols];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in row.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |row: &[String], out: &mut String| {
            for (i, w) in width.iter().enumerate() {
                let c = row.get(i).map_or("", String::as_str);
                let numeric = self.numeric_right && i > 0 && looks_numeric(c);
                let sep = if i == 0 { "" } else { "  " };
                let _ = if numeric {
                    write!(out, "{sep}{c:>w$}")
                } else {
                    write!(out, "{sep}{c:<w$}")
                };
            }
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('\n');
        };
        if !self.header.is_empty() {
            line(&self.header, &mut out);
            let total: usize = width.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }
}

fn looks_numeric(c: &str) -> bool {
    let c = c.trim_end_matches(['%', 's', 'x']).trim_end_matches(" ms");
    !c.is_empty()
        && c.chars()
            .all(|ch| ch.is_ascii_digit() || matches!(ch, '.' | '-' | '+' | ','))
}

/// `part / whole` in percent (100 for an empty whole).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Milliseconds with a precision that suits their size.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Rows `p50 … max` of a latency summary, titled `name`, appended to a two-column table.
pub fn latency_rows(t: &mut Table, name: &str, s: &Summary) {
    t.row([
        name.to_owned(),
        format!(
            "p50 {}  p90 {}  p95 {}  p99 {}  p99.9 {}  p99.99 {}  max {} ms  (n={})",
            ms(s.p50_ms),
            ms(s.p90_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            ms(s.p99_9_ms),
            ms(s.p99_99_ms),
            ms(s.max_ms),
            s.count
        ),
    ]);
}

/// `k1 3, k2 1` for a count map (or `none`).
pub fn counts<'a>(map: impl IntoIterator<Item = (&'a String, &'a u64)>) -> String {
    let parts: Vec<String> = map
        .into_iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The last lines of a table: `result: PASS`, or `result: FAIL (n problem(s))` and a line per
/// problem.
pub fn result_lines(problems: &[String]) -> String {
    if problems.is_empty() {
        return "result: PASS\n".into();
    }
    let mut out = format!("result: FAIL ({} problem(s))\n", problems.len());
    for p in problems {
        let _ = writeln!(out, "  - {p}");
    }
    out
}

/// The bench's cost as one line.
pub fn cost_line(c: &BenchCost) -> String {
    let per_conn = c
        .rss_bytes_per_connection
        .map_or(String::new(), |b| format!(", {b:.0} B RSS per connection"));
    format!(
        "{:.2} CPU s over {} {}{}",
        c.cpu_seconds,
        c.shards,
        match (c.worker_processes, c.shards) {
            (true, 1) => "worker process",
            (true, _) => "worker processes",
            (false, 1) => "thread",
            (false, _) => "threads",
        },
        per_conn
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_numbers_right() {
        let mut t = Table::new(["figure", "value"]);
        t.row(["ok", "10"]);
        t.row(["requests/s", "12345.6"]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "figure      value");
        assert_eq!(lines[2], "ok               10");
        assert_eq!(lines[3], "requests/s  12345.6");
    }

    #[test]
    fn counts_skip_zeros() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("connect_refused".to_owned(), 2);
        m.insert("reset".to_owned(), 0);
        assert_eq!(counts(&m), "connect refused 2");
        assert_eq!(counts(&std::collections::BTreeMap::new()), "none");
    }
}
