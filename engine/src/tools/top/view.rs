//! How a [`Frame`] is drawn with ratatui: a title line, the cores of every node, the nodes'
//! process, store thread and Redis feed, the busiest matches, the nodes that did not answer.
//! The live view draws it on the terminal; `--once` draws it into an off-screen buffer of a
//! fixed width and prints that buffer's text ([`text`]): the same frame, no escape codes.

use ratatui::backend::TestBackend;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Terminal;

use crate::stats::histogram::Bound;

use super::frame::{CoreRow, Frame};

/// Columns of the cores table.
const CORE_COLUMNS: [(&str, u16); 9] = [
    ("NODE / CORE", 22),
    ("PORT", 5),
    ("SUBS", 9),
    ("DELIV/S", 10),
    ("BUS PEAK", 8),
    ("QUEUED", 10),
    ("SLOW", 6),
    ("CPU%", 6),
    ("FLUSH p99", 10),
];

/// Columns of the nodes' table (process and store thread).
const NODE_COLUMNS: [(&str, u16); 9] = [
    ("NODE", 22),
    ("RSS", 9),
    ("FILES", 13),
    ("STORE Q", 7),
    ("Q PEAK", 6),
    ("BATCH/S", 7),
    ("OPS/BATCH", 9),
    ("COMMIT p50", 10),
    ("COMMIT p99", 10),
];

/// Columns of the feeds' table.
const FEED_COLUMNS: [(&str, u16); 5] = [
    ("REDIS FEED", 22),
    ("EVENTS/S", 9),
    ("LAG", 9),
    ("LAG p99", 9),
    ("GAP FILLS", 9),
];

/// Width of the text `--once` prints: the widest table (the nodes', 101 columns with its
/// spacing), whole.
pub const TEXT_WIDTH: u16 = 101;

/// Draws `model` on `f`'s whole area under `title`.
pub fn draw(f: &mut ratatui::Frame, model: &Frame, title: &str) {
    let sections = sections(model);
    let mut constraints: Vec<Constraint> = sections
        .iter()
        .map(|s| Constraint::Length(s.height()))
        .collect();
    constraints.push(Constraint::Min(0));
    let areas = Layout::vertical(constraints).split(f.area());
    for (section, area) in sections.into_iter().zip(areas.iter()) {
        section.render(f, *area, title);
    }
}

/// Lines [`draw`] needs.
pub fn height(model: &Frame) -> u16 {
    sections(model).iter().map(Section::height).sum()
}

/// The frame as plain text, [`TEXT_WIDTH`] wide, trailing spaces trimmed.
pub fn text(model: &Frame, title: &str) -> String {
    let h = height(model).max(1);
    // An off-screen backend: neither making nor drawing on it can fail.
    let Ok(mut terminal) = Terminal::new(TestBackend::new(TEXT_WIDTH, h));
    let Ok(_) = terminal.draw(|f| draw(f, model, title));
    buffer_text(terminal.backend().buffer())
}

/// A buffer's lines as text, trailing spaces trimmed, trailing empty lines dropped.
pub fn buffer_text(buffer: &ratatui::buffer::Buffer) -> String {
    let width = usize::from(buffer.area.width.max(1));
    let mut lines: Vec<String> = buffer
        .content()
        .chunks(width)
        .map(|row| {
            row.iter()
                .map(|c| c.symbol())
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// A part of the screen.
enum Section {
    Title(String),
    Blank,
    Table(Vec<(&'static str, u16)>, Vec<Row<'static>>),
    Lines(Vec<String>),
}

impl Section {
    fn height(&self) -> u16 {
        let n = match self {
            Section::Title(_) | Section::Blank => 1,
            Section::Table(_, rows) => rows.len() + 1,
            Section::Lines(lines) => lines.len(),
        };
        u16::try_from(n).unwrap_or(u16::MAX)
    }

    fn render(self, f: &mut ratatui::Frame, area: Rect, title: &str) {
        match self {
            Section::Title(summary) => {
                let line = Line::from(format!("{title} · {summary}")).style(bold());
                f.render_widget(Paragraph::new(line), area);
            }
            Section::Blank => {}
            Section::Table(columns, rows) => {
                let header = Row::new(
                    columns
                        .iter()
                        .enumerate()
                        .map(|(i, (name, _))| cell(name, i > 0)),
                )
                .style(bold());
                let widths = columns.iter().map(|(_, w)| Constraint::Length(*w));
                f.render_widget(Table::new(rows, widths).header(header), area);
            }
            Section::Lines(lines) => {
                let text: Vec<Line> = lines.into_iter().map(Line::from).collect();
                f.render_widget(Paragraph::new(text), area);
            }
        }
    }
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

/// A cell, right-aligned for numbers.
fn cell(text: &str, right: bool) -> Cell<'static> {
    let line = Line::from(text.to_owned());
    Cell::from(if right {
        line.alignment(Alignment::Right)
    } else {
        line
    })
}

fn row(cells: Vec<String>) -> Row<'static> {
    Row::new(
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| cell(c, i > 0))
            .collect::<Vec<_>>(),
    )
}

fn sections(model: &Frame) -> Vec<Section> {
    let cores: usize = model.nodes.iter().map(|n| n.cores.len()).sum();
    let summary = format!(
        "{} {} · {cores} {} · {} subscribers · {} deliveries/s",
        model.nodes.len(),
        plural(model.nodes.len(), "node", "nodes"),
        plural(cores, "core", "cores"),
        count(model.subscribers()),
        per_second(model.deliveries()),
    );
    let mut out = vec![Section::Title(summary), Section::Blank];
    let mut rows = Vec::new();
    for node in &model.nodes {
        rows.push(core_row(node.id.clone(), &node.total).style(bold()));
        for c in &node.cores {
            rows.push(core_row(format!("  core {}", c.core.unwrap_or(0)), c));
        }
    }
    out.push(Section::Table(CORE_COLUMNS.to_vec(), rows));
    out.push(Section::Blank);
    let rows = model
        .nodes
        .iter()
        .map(|n| {
            let s = &n.store;
            row(vec![
                n.id.clone(),
                bytes(n.rss_bytes),
                format!("{}/{}", n.open_files.0, n.open_files.1),
                s.queue_depth.to_string(),
                s.queue_peak.to_string(),
                per_second(s.batches),
                s.batch_size.map_or_else(dash, |b| format!("{b:.1}")),
                latency_us(s.commit.0),
                latency_us(s.commit.1),
            ])
        })
        .collect();
    out.push(Section::Table(NODE_COLUMNS.to_vec(), rows));
    let feeds: Vec<Row> = model
        .nodes
        .iter()
        .filter_map(|n| {
            let f = n.feed.as_ref()?;
            Some(row(vec![
                n.id.clone(),
                per_second(f.events),
                lag(f.last_lag_ms),
                latency_us(f.lag_p99.map(ms_to_us)),
                f.gap_fills.to_string(),
            ]))
        })
        .collect();
    if !feeds.is_empty() {
        out.push(Section::Blank);
        out.push(Section::Table(FEED_COLUMNS.to_vec(), feeds));
    }
    out.push(Section::Blank);
    let matches: Vec<Row> = model
        .matches
        .iter()
        .map(|(id, n)| row(vec![id.clone(), count(*n)]))
        .collect();
    if matches.is_empty() {
        out.push(Section::Lines(vec![
            "BUSIEST MATCHES: none with subscribers".into(),
        ]));
    } else {
        out.push(Section::Table(
            vec![("BUSIEST MATCHES", 40), ("SUBS", 9)],
            matches,
        ));
    }
    if !model.unreachable.is_empty() {
        out.push(Section::Blank);
        out.push(Section::Lines(
            model
                .unreachable
                .iter()
                .map(|(url, why)| format!("UNREACHABLE {url}: {why}"))
                .collect(),
        ));
    }
    out
}

fn core_row(name: String, c: &CoreRow) -> Row<'static> {
    row(vec![
        name,
        if c.port == 0 {
            String::new()
        } else {
            c.port.to_string()
        },
        count(c.subscribers),
        per_second(c.deliveries),
        c.bus_peak.to_string(),
        bytes(c.queued_bytes),
        count(c.slow),
        c.cpu.map_or_else(dash, |p| format!("{p:.1}")),
        latency_us(c.flush_p99),
    ])
}

fn dash() -> String {
    "-".into()
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `12.5`, or `-` before a second sample.
fn per_second(v: Option<f64>) -> String {
    v.map_or_else(dash, |v| format!("{v:.1}"))
}

/// `512 B`, `12.0 KiB`, `3.5 MiB`, `1.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A lag in milliseconds: `7ms`, `2.5s`.
fn lag(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        duration_us(ms.saturating_mul(1000))
    }
}

fn ms_to_us(b: Bound) -> Bound {
    match b {
        Bound::AtMost(ms) => Bound::AtMost(ms.saturating_mul(1000)),
        Bound::Above(ms) => Bound::Above(ms.saturating_mul(1000)),
    }
}

/// A quantile's bucket: `<=250us`, `<=2.5ms`, `<=1s`, `>10s`; `-` when nothing was counted.
pub fn latency_us(b: Option<Bound>) -> String {
    match b {
        None => dash(),
        Some(Bound::AtMost(us)) => format!("<={}", duration_us(us)),
        Some(Bound::Above(us)) => format!(">{}", duration_us(us)),
    }
}

fn duration_us(us: u64) -> String {
    let (v, unit) = match us {
        0..1_000 => return format!("{us}us"),
        1_000..1_000_000 => (us as f64 / 1e3, "ms"),
        _ => (us as f64 / 1e6, "s"),
    };
    if v.fract() == 0.0 {
        format!("{v:.0}{unit}")
    } else {
        format!("{v:.1}{unit}")
    }
}
