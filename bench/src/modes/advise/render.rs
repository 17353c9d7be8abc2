//! `advise` as text: each number with the formula that makes it and, on a `from` line, the
//! measured figure it derives from and the report it came from; then tuning/'s settings,
//! the figures not measured with the commands that measure them, and notes.

use std::fmt::Write as _;

use crate::figures::report::Table;
use crate::modes::advise::need::{Advice, KernelPart, SCRIPT_COMMANDS};
use crate::modes::advise::recorded::Figure;
use crate::modes::advise::words::{bytes, int, num, plural};

/// The advice as printed.
pub fn text(a: &Advice) -> String {
    let mut out = String::new();
    let w = &mut out;
    let matches = plural(a.matches, "match", "matches");
    say(
        w,
        "",
        &format!(
            "advise: {} subscribers receiving {} events/s each ({matches}, {} events/s \
             published)",
            int(a.subscribers),
            num(a.events_per_second_per_match),
            num(a.events_per_second)
        ),
    );
    say(
        w,
        "",
        &format!(
            "deliveries/s: {} = {} subscribers × {} events/s",
            num(a.deliveries_per_second),
            int(a.subscribers),
            num(a.events_per_second_per_match)
        ),
    );
    let reports: Vec<String> = a
        .reports
        .iter()
        .map(|(f, c)| format!("{f} ({c})"))
        .collect();
    let reports = match reports.is_empty() {
        true => "none".to_owned(),
        false => reports.join(", "),
    };
    say(w, "", &format!("reports: {reports}"));
    nodes(w, a);
    cores(w, a);
    memory(w, a);
    redis(w, a);
    settings(w, a);
    if !a.missing.is_empty() {
        say(
            w,
            "\n",
            "not measured (run these on this machine, then pass their --json with --report):",
        );
        for m in &a.missing {
            say(w, "  ", &format!("{} (for {}):", m.figure, m.for_what));
            let _ = writeln!(w, "    {}", m.command);
        }
    }
    if !a.notes.is_empty() {
        say(w, "\n", "notes:");
        for n in &a.notes {
            say(w, "  ", &format!("- {n}"));
        }
    }
    out
}

/// A `from` line: the measured figure and its report.
fn from(w: &mut String, f: &Figure) {
    say(w, "    ", &format!("from {}", f.source(&num(f.value))));
}

fn nodes(w: &mut String, a: &Advice) {
    let Some(n) = &a.nodes else {
        let text = format!(
            "nodes: unknown (no open-files limit: see \"not measured\"); the settings below \
             are for one node holding all {}",
            int(a.subscribers)
        );
        say(w, "\n", &text);
        return;
    };
    let text = format!(
        "nodes: {} ({} subscribers each) = ceil({} subscribers / {} per node)",
        int(n.nodes),
        int(n.per_node),
        int(a.subscribers),
        int(n.capacity)
    );
    say(w, "\n", &text);
    let text = format!(
        "{} per node = open-files limit {} − reserve {}",
        int(n.capacity),
        num(n.limit.value),
        int(n.reserve)
    );
    say(w, "  ", &text);
    from(w, &n.limit);
    if let Some((limit, nodes)) = n.unit_limit {
        let text = format!(
            "ops: raise the server's LimitNOFILE as tuning/matchstream.service does ({}: {} \
             by open files), fs.nr_open at least as high (tuning/README.md, \"Installing the \
             service and the limits\")",
            int(limit),
            plural(nodes, "node", "nodes")
        );
        say(w, "  ", &text);
    }
}

fn cores(w: &mut String, a: &Advice) {
    let Some(c) = &a.cores else {
        say(w, "\n", "cores: unknown (see \"not measured\")");
        return;
    };
    let text = format!(
        "cores: {} = {} deliveries/s × {} CPU s per million / 1e6 / {} (run at ≤ {} % CPU; \
         {} busy)",
        num(c.cores),
        num(a.deliveries_per_second),
        num(c.per_million.value),
        num(c.headroom),
        num(c.headroom * 100.0),
        num(c.busy)
    );
    say(w, "\n", &text);
    if let Some(per_node) = c.per_node {
        say(w, "  ", &format!("{} per node", num(per_node)));
    }
    from(w, &c.per_million);
    if let (Some(m), Some(k)) = (&c.measured_on, c.nodes_by_cpu) {
        let text = format!(
            "on hosts like the measuring one ({}): {} by CPU = ceil({} / {})",
            plural(m.value as u64, "core", "cores"),
            plural(k, "node", "nodes"),
            num(c.cores),
            num(m.value)
        );
        say(w, "  ", &text);
        from(w, m);
    }
}

fn memory(w: &mut String, a: &Advice) {
    let m = &a.memory;
    let k = &m.kernel;
    let head = match (m.total_bytes, &m.user, &k.slab, &k.buffers) {
        (Some(t), Some(u), Some(slab), Some(buffers)) => {
            let per_node = m
                .per_node_bytes
                .map_or(String::new(), |p| format!("; {} per node", bytes(p)));
            format!(
                "memory: {} = user space {} + kernel slab {} + kernel socket buffers \
                 {}{per_node}",
                bytes(t),
                bytes(u.bytes),
                bytes(slab.bytes),
                bytes(buffers.bytes)
            )
        }
        _ => "memory: incomplete (see \"not measured\")".to_owned(),
    };
    say(w, "\n", &head);
    if let Some(u) = &m.user {
        let text = format!(
            "user space {} B = {} B per subscriber × {}",
            num(u.bytes),
            num(u.per.value),
            int(a.subscribers)
        );
        say(w, "  ", &text);
        from(w, &u.per);
    }
    let ends = match k.ends {
        1 => "1 end (the server's)",
        _ => "2 ends (server and load generator)",
    };
    if let Some(slab) = &k.slab {
        let what =
            "each socket's struct sock, inode, dentry, file and epoll items, outside tcp_mem";
        kernel_part(w, "kernel slab", "", slab, ends, a.subscribers, what);
    }
    if let Some(buffers) = &k.buffers {
        let pages = k.pages_per_node.map_or(String::new(), |p| {
            format!(" (tcp_mem: {} per node host)", plural(p, "page", "pages"))
        });
        let what = "TCP buffers at rest after the status frame: a fan-out burst queues more \
             (tuning/ sizes tcp_mem for 4 KiB a subscriber); tcp_mem is sized from these \
             alone, the slab is outside it";
        kernel_part(
            w,
            "kernel socket buffers",
            &pages,
            buffers,
            ends,
            a.subscribers,
            what,
        );
    }
}

/// One part of the kernel's memory: its sum, the figure it comes from, and what it counts.
fn kernel_part(
    w: &mut String,
    name: &str,
    suffix: &str,
    part: &KernelPart,
    ends: &str,
    subscribers: u64,
    what: &str,
) {
    let text = format!(
        "{name} {} B = {} B per connection end × {ends} × {}{suffix}",
        num(part.bytes),
        num(part.per_end),
        int(subscribers)
    );
    say(w, "  ", &text);
    from(w, &part.per.measured);
    let halved = if part.per.both_ends {
        "clients on loopback: both ends, half of it per end"
    } else {
        "clients on another host: their end"
    };
    say(w, "    ", &format!("{halved}; {what}"));
}

fn redis(w: &mut String, a: &Advice) {
    let r = &a.redis;
    let text = format!(
        "redis: {} script calls/s (EVALSHA) = {} events/s × {}: each writes history, state \
         and seq and PUBLISHes ({} commands/s, {SCRIPT_COMMANDS} a call)",
        num(r.script_calls_per_second),
        num(a.events_per_second_per_match),
        plural(a.matches, "match", "matches"),
        num(r.script_commands_per_second)
    );
    say(w, "\n", &text);
    let text = match (r.messages_per_second, &a.nodes) {
        (Some(m), Some(n)) => format!(
            "{} messages/s delivered by pub/sub = {} events/s × {} (every node's feed \
             receives every event)",
            num(m),
            num(a.events_per_second),
            plural(n.nodes, "node", "nodes")
        ),
        _ => format!(
            "messages delivered by pub/sub = {} events/s × nodes (nodes unknown)",
            num(a.events_per_second)
        ),
    };
    say(w, "  ", &text);
}

fn settings(w: &mut String, a: &Advice) {
    let text = format!(
        "tuning/ for {} subscribers a node (tuning/README.md says why each; tuning/check.sh \
         --target N checks a host):",
        a.nodes
            .as_ref()
            .map_or(int(a.subscribers), |n| int(n.per_node))
    );
    say(w, "\n", &text);
    let mut t = Table::new(["setting", "tuning/", "N needs", "why"]).left_aligned();
    let mut loadgen = Vec::new();
    for s in &a.tuning {
        let file = s.file.trim_start_matches("tuning/");
        if file == "sysctl-loadgen.conf" {
            loadgen.push(format!("{} = {} ({file}): {}", s.key, s.tuning, s.why));
            continue;
        }
        let need = match (s.needed, s.enough) {
            (Some(n), Some(true)) => format!("≥ {} ok", int(n)),
            (Some(n), Some(false)) => format!("≥ {} RAISE", int(n)),
            (Some(n), None) => format!("≥ {}", int(n)),
            (None, _) if s.why.is_empty() => "as is".into(),
            (None, _) => "-".into(),
        };
        let key = if file == "sysctl.conf" {
            s.key.clone()
        } else {
            format!("{} ({file})", s.key)
        };
        t.row([key, s.tuning.clone(), need, s.why.clone()]);
    }
    for line in t.render().lines() {
        let _ = writeln!(w, "  {line}");
    }
    for l in loadgen {
        say(w, "  ", &format!("load generator: {l}"));
    }
}

/// A line of prose wrapped at [`WIDTH`] columns, each line after the first indented two
/// more than `indent`; an indent of `"\n"` is a blank line before an unindented paragraph.
fn say(w: &mut String, indent: &str, text: &str) {
    let indent = match indent.strip_prefix('\n') {
        Some(rest) => {
            w.push('\n');
            rest
        }
        None => indent,
    };
    let mut line = indent.to_owned();
    let mut empty = true;
    for word in text.split(' ') {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            let _ = writeln!(w, "{line}");
            line = format!("{indent}  ");
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    let _ = writeln!(w, "{line}");
}

/// Columns prose is wrapped at.
const WIDTH: usize = 100;
