//! The arithmetic of `advise`: from what was asked ([`Ask`]: N subscribers, R events/s per
//! match, M matches) and what was measured ([`Measured`]) to what it needs ([`Advice`]):
//! nodes by open files, cores by CPU per delivery, memory in user space and in the kernel
//! (slab objects and socket buffers), Redis operations, the settings of tuning/, and for
//! every figure not measured the run that measures it. Pure: no file, no clock, so the tests
//! check exact numbers.

use crate::modes::advise::recorded::{Figure, KernelFigure, Measured};
use crate::modes::advise::tuning::{self, Load, Setting};

/// What was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    /// N.
    pub subscribers: u64,
    /// R, events per second per match.
    pub events_per_s: f64,
    /// M.
    pub matches: u64,
    /// The load generator's connections end on the nodes' hosts too (both ends on loopback).
    pub clients_here: bool,
    /// `--open-files-limit`, instead of the reports' environment.
    pub open_files_limit: Option<u64>,
    /// Descriptors a node keeps for itself.
    pub reserve: u64,
    /// The share of its cores a node may use (0.7: run at ≤ 70 % CPU).
    pub headroom: f64,
}

/// Script commands per event: the APPLY script's GET seq, GET incarnation, RPUSH history,
/// SET state, SET seq and PUBLISH (engine/src/store/redis.rs).
pub const SCRIPT_COMMANDS: u64 = 6;

/// Subscribers of a measurement `advise` suggests (a node of this machine holds them).
const MEASURE_SUBSCRIBERS: u64 = 15_000;

/// What N subscribers need.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Advice {
    /// N.
    pub subscribers: u64,
    /// R.
    pub events_per_second_per_match: f64,
    /// M.
    pub matches: u64,
    /// Whether the load generator's end counts too.
    pub clients_on_this_host: bool,
    /// N × R.
    pub deliveries_per_second: f64,
    /// R × M: events published.
    pub events_per_second: f64,
    /// The reports read: `[file, command]`.
    pub reports: Vec<(String, String)>,
    /// Nodes by open files (null: the limit is unknown).
    pub nodes: Option<Nodes>,
    /// Cores by CPU per delivery (null: not measured).
    pub cores: Option<Cores>,
    /// Memory.
    pub memory: Memory,
    /// Redis operations.
    pub redis: Redis,
    /// tuning/'s settings against one node's load.
    pub tuning: Vec<Setting>,
    /// Figures not measured, with the run that measures each.
    pub missing: Vec<Missing>,
    /// What the reports did not give, and why.
    pub notes: Vec<String>,
}

/// Nodes by open files.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Nodes {
    /// The open-files limit used.
    pub limit: Figure,
    /// Descriptors a node keeps for itself.
    pub reserve: u64,
    /// Subscribers one node may hold: limit − reserve.
    pub capacity: u64,
    /// ceil(N / capacity).
    pub nodes: u64,
    /// ceil(N / nodes): what each node holds.
    pub per_node: u64,
    /// tuning/'s `LimitNOFILE`, and the nodes it would take.
    pub unit_limit: Option<(u64, u64)>,
}

/// Cores by CPU per delivery.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cores {
    /// Server CPU seconds per million deliveries.
    pub per_million: Figure,
    /// Cores busy at N × R: deliveries/s × per_million / 1e6.
    pub busy: f64,
    /// The share of a core used at most.
    pub headroom: f64,
    /// busy / headroom.
    pub cores: f64,
    /// cores / nodes (null without nodes).
    pub per_node: Option<f64>,
    /// CPUs of the machine that measured.
    pub measured_on: Option<Figure>,
    /// ceil(cores / its CPUs): nodes on hosts like it (null when its CPUs are unknown).
    pub nodes_by_cpu: Option<u64>,
}

/// Memory.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Memory {
    /// Server user space: bytes per subscriber × N.
    pub user: Option<Part>,
    /// The kernel's, for the connections.
    pub kernel: Kernel,
    /// user + kernel, all nodes (null unless user, slab and buffers are all known).
    pub total_bytes: Option<f64>,
    /// The same per node (null without nodes).
    pub per_node_bytes: Option<f64>,
}

/// Server user space.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Part {
    /// Bytes per subscriber.
    pub per: Figure,
    /// × N.
    pub bytes: f64,
}

/// The kernel's memory for the connections: each socket's slab objects (`struct sock`,
/// inode, dentry, file, epoll items) and its TCP buffers. Only the buffers count against
/// `tcp_mem`; the slab, most of it, is outside.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Kernel {
    /// Ends counted per subscriber: 1, or 2 with the load generator on the same host.
    pub ends: u64,
    /// Slab objects (null: not measured).
    pub slab: Option<KernelPart>,
    /// TCP socket buffers (null: not measured).
    pub buffers: Option<KernelPart>,
    /// slab + buffers (null unless both are known).
    pub bytes: Option<f64>,
    /// `tcp_mem` of one node's host in pages, from the buffers alone: ceil(buffers' per_end
    /// × ends × per node / 4096) (null without buffers).
    pub pages_per_node: Option<u64>,
}

/// One part of the kernel's memory.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KernelPart {
    /// As measured.
    pub per: KernelFigure,
    /// Bytes per connection at one end.
    pub per_end: f64,
    /// per_end × ends × N.
    pub bytes: f64,
}

/// Redis operations per second.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Redis {
    /// R × M: one EVALSHA per event (history, state, seq, PUBLISH).
    pub script_calls_per_second: f64,
    /// × [`SCRIPT_COMMANDS`]: the commands those scripts run.
    pub script_commands_per_second: f64,
    /// R × M × nodes: messages pub/sub delivers to the nodes' feeds (null without nodes).
    pub messages_per_second: Option<f64>,
}

/// A figure not measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Missing {
    /// The figure.
    pub figure: String,
    /// What it is needed for.
    pub for_what: String,
    /// The command that measures it.
    pub command: String,
}

/// Bytes of a page in `tcp_mem`.
pub const PAGE: f64 = 4096.0;

/// What N subscribers need, from what was measured.
pub fn advise(ask: &Ask, m: &Measured) -> Advice {
    let n = ask.subscribers;
    let deliveries = n as f64 * ask.events_per_s;
    let events = ask.events_per_s * ask.matches as f64;
    let mut missing = Vec::new();

    let limit = match ask.open_files_limit {
        Some(l) => Some(Figure::new(
            l as f64,
            "--open-files-limit",
            "the command line",
            0,
        )),
        None => m.open_files_hard.clone(),
    };
    let nodes = limit.map(|limit| {
        let capacity = (limit.value as u64).saturating_sub(ask.reserve).max(1);
        let nodes = n.div_ceil(capacity).max(1);
        let unit = tuning::limit_nofile(tuning::SERVICE).map(|u| {
            let cap = u.saturating_sub(ask.reserve).max(1);
            (u, n.div_ceil(cap).max(1))
        });
        Nodes {
            limit,
            reserve: ask.reserve,
            capacity,
            nodes,
            per_node: n.div_ceil(nodes),
            unit_limit: unit,
        }
    });
    if nodes.is_none() {
        missing.push(Missing {
            figure: "open-files limit".into(),
            for_what: "nodes (any report records it; or give --open-files-limit L, the \
                       server's: systemctl show -p LimitNOFILE matchstream)"
                .into(),
            command: clients_command(ask),
        });
    }
    let node_count = nodes.as_ref().map(|x| x.nodes);
    let per_node = nodes.as_ref().map_or(n, |x| x.per_node);

    let cores = m.cpu_per_million.clone().map(|per_million| {
        let busy = deliveries * per_million.value / 1e6;
        let cores = busy / ask.headroom;
        Cores {
            per_million,
            busy,
            headroom: ask.headroom,
            cores,
            per_node: node_count.map(|k| cores / k as f64),
            nodes_by_cpu: m
                .cores
                .as_ref()
                .filter(|c| c.value >= 1.0)
                .map(|c| up(cores / c.value)),
            measured_on: m.cores.clone(),
        }
    });
    if cores.is_none() {
        missing.push(Missing {
            figure: "server CPU seconds per million deliveries".into(),
            for_what: "cores".into(),
            command: fanout_command(ask),
        });
    }

    let user = m.user_bytes_per_subscriber.clone().map(|per| Part {
        bytes: per.value * n as f64,
        per,
    });
    if user.is_none() {
        missing.push(Missing {
            figure: "server bytes per subscriber".into(),
            for_what: "memory, user space".into(),
            command: fanout_command(ask),
        });
    }
    let ends = if ask.clients_here { 2 } else { 1 };
    let part = |per: &Option<KernelFigure>| {
        per.clone().map(|per| {
            let per_end = per.per_end();
            KernelPart {
                bytes: per_end * ends as f64 * n as f64,
                per_end,
                per,
            }
        })
    };
    let (slab, buffers) = (
        part(&m.slab_bytes_per_connection),
        part(&m.socket_bytes_per_connection),
    );
    if slab.is_none() {
        missing.push(Missing {
            figure: "kernel slab bytes per connection".into(),
            for_what: "memory, kernel slab".into(),
            command: clients_command(ask),
        });
    }
    if buffers.is_none() {
        missing.push(Missing {
            figure: "kernel socket bytes per connection".into(),
            for_what: "memory, kernel socket buffers, and net.ipv4.tcp_mem".into(),
            command: clients_command(ask),
        });
    }
    let kernel = Kernel {
        ends,
        bytes: slab
            .as_ref()
            .zip(buffers.as_ref())
            .map(|(s, b)| s.bytes + b.bytes),
        // tcp_mem counts socket buffers only: the slab is not in it.
        pages_per_node: buffers
            .as_ref()
            .map(|b| up(b.per_end * ends as f64 * per_node as f64 / PAGE)),
        slab,
        buffers,
    };
    let total_bytes = user.as_ref().zip(kernel.bytes).map(|(u, k)| u.bytes + k);
    let memory = Memory {
        per_node_bytes: total_bytes.zip(node_count).map(|(t, k)| t / k as f64),
        total_bytes,
        user,
        kernel,
    };

    let redis = Redis {
        script_calls_per_second: events,
        script_commands_per_second: events * SCRIPT_COMMANDS as f64,
        messages_per_second: node_count.map(|k| events * k as f64),
    };
    let tuning = tuning::against(&Load {
        per_node,
        reserve: ask.reserve,
        clients_here: ask.clients_here,
        kernel_pages: memory.kernel.pages_per_node,
        total: n,
    });
    Advice {
        subscribers: n,
        events_per_second_per_match: ask.events_per_s,
        matches: ask.matches,
        clients_on_this_host: ask.clients_here,
        deliveries_per_second: deliveries,
        events_per_second: events,
        reports: m.reports.clone(),
        nodes,
        cores,
        memory,
        redis,
        tuning,
        missing: merged(missing),
        notes: m.notes.clone(),
    }
}

/// The missing figures, one entry per command (one run measures them all): `a, b and c`.
fn merged(missing: Vec<Missing>) -> Vec<Missing> {
    let mut groups: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for m in missing {
        match groups.iter_mut().find(|g| g.0 == m.command) {
            Some(g) => {
                g.1.push(m.figure);
                g.2.push(m.for_what);
            }
            None => groups.push((m.command, vec![m.figure], vec![m.for_what])),
        }
    }
    groups
        .into_iter()
        .map(|(command, mut figures, for_what)| {
            let last = figures.pop().unwrap_or_default();
            let figure = match figures.is_empty() {
                true => last,
                false => format!("{} and {last}", figures.join(", ")),
            };
            Missing {
                figure,
                for_what: for_what.join("; "),
                command,
            }
        })
        .collect()
}

/// `x` rounded up, ignoring the last bits of a double (70 / 0.7 is 100.00000000000001).
fn up(x: f64) -> u64 {
    (x - 1e-9).ceil().max(0.0) as u64
}

/// The fanout run that measures CPU per delivery and memory per subscriber.
pub fn fanout_command(ask: &Ask) -> String {
    format!(
        "matchstream-bench fanout --api URL --token T --subscribers {} --events 200 --rate {} \
         --runs 5 --server-pid PID --json fanout.json",
        ask.subscribers.min(MEASURE_SUBSCRIBERS),
        ask.events_per_s
    )
}

/// The clients run that measures kernel slab and socket buffer memory per connection.
pub fn clients_command(ask: &Ask) -> String {
    format!(
        "matchstream-bench clients --api URL --token T --play sample --speed 0 --n {} --json \
         clients.json",
        ask.subscribers.min(MEASURE_SUBSCRIBERS)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(n: u64) -> Ask {
        Ask {
            subscribers: n,
            events_per_s: 20.0,
            matches: 1,
            clients_here: false,
            open_files_limit: None,
            reserve: 500,
            headroom: 0.7,
        }
    }

    fn measured() -> Measured {
        let f = |v: f64, scale| Figure::new(v, "f", "r.json", scale);
        Measured {
            reports: vec![("r.json".into(), "fanout".into())],
            open_files_hard: Some(f(20_000.0, 0)),
            cores: Some(f(2.0, 0)),
            cpu_per_million: Some(f(3.5, 15_000)),
            user_bytes_per_subscriber: Some(f(553.0, 15_000)),
            slab_bytes_per_connection: Some(KernelFigure {
                measured: f(10_240.0, 15_000),
                both_ends: true,
            }),
            socket_bytes_per_connection: Some(KernelFigure {
                measured: f(1024.0, 15_000),
                both_ends: true,
            }),
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_million_at_20_per_second() {
        let a = advise(&ask(1_000_000), &measured());
        assert_eq!(a.deliveries_per_second, 20_000_000.0);
        assert_eq!(a.events_per_second, 20.0);
        let nodes = a.nodes.expect("present");
        assert_eq!(nodes.capacity, 19_500);
        assert_eq!(nodes.nodes, 52); // 1,000,000 / 19,500 = 51.28
        assert_eq!(nodes.per_node, 19_231);
        assert_eq!(nodes.unit_limit, Some((1_048_576, 1)));
        let cores = a.cores.expect("present");
        assert_eq!(cores.busy, 70.0); // 20e6 × 3.5 / 1e6
        assert!((cores.cores - 100.0).abs() < 1e-9, "{}", cores.cores);
        assert!((cores.per_node.expect("present") - 100.0 / 52.0).abs() < 1e-9);
        assert_eq!(cores.nodes_by_cpu, Some(50)); // 100 cores / 2 a host
        let user = a.memory.user.expect("present");
        assert_eq!(user.bytes, 553e6);
        let kernel = a.memory.kernel;
        assert_eq!(kernel.ends, 1);
        let slab = kernel.slab.expect("present");
        assert_eq!(slab.per_end, 5120.0); // loopback: both ends measured, one counted
        assert_eq!(slab.bytes, 5120e6);
        let buffers = kernel.buffers.expect("present");
        assert_eq!(buffers.per_end, 512.0);
        assert_eq!(buffers.bytes, 512e6);
        assert_eq!(kernel.bytes, Some(5632e6));
        // tcp_mem: the buffers alone, 19,231 × 512 / 4096 = 2403.9
        assert_eq!(kernel.pages_per_node, Some(2404));
        assert_eq!(a.memory.total_bytes, Some(6185e6)); // 553e6 + 5120e6 + 512e6
        assert_eq!(a.memory.per_node_bytes, Some(6185e6 / 52.0));
        assert_eq!(a.redis.script_calls_per_second, 20.0);
        assert_eq!(a.redis.script_commands_per_second, 120.0);
        assert_eq!(a.redis.messages_per_second, Some(1040.0));
        assert!(a.missing.is_empty(), "{:?}", a.missing);
    }

    #[test]
    fn clients_on_this_host_count_both_ends() {
        let mut q = ask(1_000_000);
        q.clients_here = true;
        q.matches = 10;
        let a = advise(&q, &measured());
        let kernel = a.memory.kernel;
        assert_eq!(kernel.ends, 2);
        assert_eq!(kernel.slab.expect("present").bytes, 10_240e6);
        assert_eq!(kernel.buffers.expect("present").bytes, 1024e6);
        assert_eq!(kernel.bytes, Some(11_264e6));
        assert_eq!(kernel.pages_per_node, Some(4808));
        assert_eq!(a.deliveries_per_second, 20_000_000.0); // N × R, whatever M
        assert_eq!(a.events_per_second, 200.0);
        assert_eq!(a.redis.messages_per_second, Some(200.0 * 52.0));
        let file_max = a
            .tuning
            .iter()
            .find(|s| s.key == "fs.file-max")
            .expect("present");
        assert_eq!(file_max.needed, Some(2 * 19_231 + 500));
    }

    fn tcp_mem(a: &Advice) -> Setting {
        a.tuning
            .iter()
            .find(|s| s.key == "net.ipv4.tcp_mem")
            .expect("present")
            .clone()
    }

    #[test]
    fn one_missing_figure_names_its_own_run() {
        let mut m = measured();
        m.socket_bytes_per_connection = None;
        let a = advise(&ask(1_000_000), &m);
        assert_eq!(a.missing.len(), 1);
        assert_eq!(a.missing[0].figure, "kernel socket bytes per connection");
        assert_eq!(
            a.missing[0].for_what,
            "memory, kernel socket buffers, and net.ipv4.tcp_mem"
        );
        assert_eq!((a.memory.kernel.bytes, a.memory.total_bytes), (None, None));
        assert!(a.memory.kernel.slab.is_some());
        let tcp_mem = tcp_mem(&a);
        assert_eq!((tcp_mem.needed, tcp_mem.enough), (None, None));
    }

    #[test]
    fn without_the_slab_figure_memory_is_incomplete_and_tcp_mem_still_sized() {
        let mut m = measured();
        m.slab_bytes_per_connection = None;
        let a = advise(&ask(1_000_000), &m);
        assert_eq!(a.missing.len(), 1);
        assert_eq!(a.missing[0].figure, "kernel slab bytes per connection");
        assert_eq!(a.missing[0].command, clients_command(&ask(1_000_000)));
        // No constant stands in for it.
        assert_eq!((a.memory.kernel.bytes, a.memory.total_bytes), (None, None));
        let buffers = a.memory.kernel.buffers.as_ref().expect("present");
        assert_eq!(buffers.bytes, 512e6);
        // tcp_mem holds socket buffers, never the slab.
        assert_eq!(tcp_mem(&a).needed, Some(2404));
        assert_eq!(a.memory.kernel.pages_per_node, Some(2404));
    }

    #[test]
    fn the_open_files_flag_wins_over_the_reports() {
        let mut q = ask(1_000_000);
        q.open_files_limit = Some(1_048_576);
        let a = advise(&q, &measured());
        let nodes = a.nodes.expect("present");
        assert_eq!(
            (nodes.capacity, nodes.nodes, nodes.per_node),
            (1_048_076, 1, 1_000_000)
        );
        assert_eq!(nodes.limit.field, "--open-files-limit");
        assert_eq!(a.cores.expect("present").per_node, Some(100.0));
    }

    #[test]
    fn without_reports_every_figure_is_missing_with_its_command() {
        let a = advise(&ask(1_000_000), &Measured::default());
        assert!(a.nodes.is_none() && a.cores.is_none());
        assert_eq!(a.memory.total_bytes, None);
        let figures: Vec<&str> = a.missing.iter().map(|x| x.figure.as_str()).collect();
        assert_eq!(
            figures,
            [
                "open-files limit, kernel slab bytes per connection and kernel socket bytes \
                 per connection",
                "server CPU seconds per million deliveries and server bytes per subscriber",
            ]
        );
        assert_eq!(
            a.missing[0].for_what,
            "nodes (any report records it; or give --open-files-limit L, the server's: \
             systemctl show -p LimitNOFILE matchstream); memory, kernel slab; memory, kernel \
             socket buffers, and net.ipv4.tcp_mem"
        );
        assert_eq!(
            a.missing[0].command,
            "matchstream-bench clients --api URL --token T --play sample --speed 0 --n 15000 \
             --json clients.json"
        );
        assert_eq!(
            a.missing[1].command,
            "matchstream-bench fanout --api URL --token T --subscribers 15000 --events 200 \
             --rate 20 --runs 5 --server-pid PID --json fanout.json"
        );
        assert_eq!(a.missing[1].for_what, "cores; memory, user space");
        // One node holding all N: the settings still say what that needs.
        let orphans = a
            .tuning
            .iter()
            .find(|s| s.key == "net.ipv4.tcp_max_orphans")
            .expect("present");
        assert_eq!(orphans.needed, Some(1_000_000));
        assert_eq!(a.redis.messages_per_second, None);
        assert_eq!(a.redis.script_calls_per_second, 20.0);
    }

    #[test]
    fn small_runs_suggest_measuring_at_their_own_size() {
        let mut q = ask(2_000);
        q.events_per_s = 0.5;
        let a = advise(&q, &Measured::default());
        assert!(a.missing[1]
            .command
            .contains("--subscribers 2000 --events 200 --rate 0.5 "));
        assert!(
            a.missing[0].command.contains("--n 2000 "),
            "{:?}",
            a.missing
        );
    }
}
