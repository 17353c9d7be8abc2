//! The reports `advise` reads: `--json` documents of this bench (schema 2), refused with a
//! clear error when a file is missing, not JSON, of another schema or of a command that
//! measures nothing advise uses; and the figures taken from them ([`Measured`]), each with
//! the field and the file it came from.
//!
//! Only the fields used are read, so a report trimmed to them (the tests' fixtures) reads as
//! well as a whole one: the environment's `open_files` is [`OpenFiles`], a fanout run's
//! `server` is [`ServerFigures`], a soak's `samples` are [`Sample`]s (the types the bench
//! writes them with); the soak report, which the bench never reads back, is read as JSON
//! values.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;

use crate::figures::env::OpenFiles;
use crate::figures::report::SCHEMA;
use crate::modes::advise::words::{int, plural};
use crate::modes::fanout::measured::ServerFigures;
use crate::modes::fanout::runs::median;
use crate::modes::soak::samples::Sample;

/// The commands whose reports `advise` reads.
pub const COMMANDS: [&str; 4] = ["clients", "fanout", "ramp", "soak"];

/// A measured figure and where it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figure {
    /// The value.
    pub value: f64,
    /// What it is, named as in the report (`environment.open_files.hard`, ...).
    pub field: String,
    /// How it was taken (`median of 5 runs, 15,000 subscribers`), or empty.
    pub how: String,
    /// The report file.
    pub file: String,
    /// Subscribers or clients of the measurement it came from: of several reports, the
    /// figure measured at the largest scale is taken (0: not about them, or an upper bound
    /// that any measurement replaces).
    pub scale: u64,
}

impl Figure {
    /// A figure read from `file`.
    pub fn new(value: f64, field: impl Into<String>, file: &str, scale: u64) -> Figure {
        Figure {
            value,
            field: field.into(),
            how: String::new(),
            file: file.to_owned(),
            scale,
        }
    }

    /// The same, saying how it was taken.
    pub fn how(mut self, how: impl Into<String>) -> Figure {
        self.how = how.into();
        self
    }

    /// `file: field = value (how)`, for a `from` line.
    pub fn source(&self, value: &str) -> String {
        let how = if self.how.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.how)
        };
        format!("{}: {} = {value}{how}", self.file, self.field)
    }
}

/// Kernel memory per connection as a `clients` run measured it: slab objects or socket
/// buffers ([`Kernel`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KernelFigure {
    /// The report's `kernel_slab_bytes_per_connection` or
    /// `kernel_socket_bytes_per_connection`.
    pub measured: Figure,
    /// Whether the clients ran on the server's host (a loopback target): the figure then
    /// holds both ends of each connection.
    pub both_ends: bool,
}

impl KernelFigure {
    /// Bytes per connection at one end: half the figure when it held both.
    pub fn per_end(&self) -> f64 {
        if self.both_ends {
            self.measured.value / 2.0
        } else {
            self.measured.value
        }
    }
}

/// Everything `advise` can use from the reports given.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Measured {
    /// The files read, in order, with their command.
    pub reports: Vec<(String, String)>,
    /// The open-files hard limit of the machine that measured (first report's).
    pub open_files_hard: Option<Figure>,
    /// CPUs of that machine.
    pub cores: Option<Figure>,
    /// Server CPU seconds per million deliveries (fanout, matchstream over TCP, median).
    pub cpu_per_million: Option<Figure>,
    /// Server user-space bytes per subscriber (fanout median, else a soak's upper bound).
    pub user_bytes_per_subscriber: Option<Figure>,
    /// Kernel slab memory per connection (clients, or a ramp step's clients).
    pub slab_bytes_per_connection: Option<KernelFigure>,
    /// Kernel socket buffer memory per connection (clients, or a ramp step's clients).
    pub socket_bytes_per_connection: Option<KernelFigure>,
    /// Why a report given did not yield a figure one would expect from it.
    pub notes: Vec<String>,
}

/// A report as read: its command, the environment's fields used, the report as JSON.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The file.
    pub path: PathBuf,
    /// `clients`, `fanout`, `ramp` or `soak`.
    pub command: String,
    /// The environment's fields used.
    pub machine: Machine,
    /// The `report` object.
    pub report: Value,
}

/// The environment's fields `advise` uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Machine {
    /// CPUs the bench could use.
    pub cores: usize,
    /// The bench's open-files limit.
    pub open_files: OpenFiles,
}

/// Reads and checks one report.
pub fn load(path: &Path) -> anyhow::Result<Recorded> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(path, &text)
}

/// Checks one report's text (`path` names it in errors).
pub fn parse(path: &Path, text: &str) -> anyhow::Result<Recorded> {
    let name = path.display();
    let doc: Value = serde_json::from_str(text)
        .with_context(|| format!("{name} is not JSON (a --json report of matchstream-bench)"))?;
    let Some(schema) = doc.get("schema") else {
        bail!("{name} is not a matchstream-bench report: it has no \"schema\"");
    };
    if schema.as_u64() != Some(u64::from(SCHEMA)) {
        bail!(
            "{name} has schema {schema}; advise reads schema {SCHEMA} (bench/README.md, \
             \"JSON reports (schema 2)\"): measure again with this bench"
        );
    }
    let command = doc.get("command").and_then(Value::as_str).unwrap_or("");
    if !COMMANDS.contains(&command) {
        bail!(
            "{name} is a {:?} report; advise reads the reports of {}",
            command,
            COMMANDS.join(", ")
        );
    }
    let machine: Machine = doc
        .get("environment")
        .map(Machine::deserialize)
        .transpose()
        .with_context(|| format!("{name}: its \"environment\""))?
        .with_context(|| format!("{name} has no \"environment\""))?;
    let report = doc
        .get("report")
        .filter(|r| r.is_object())
        .cloned()
        .with_context(|| format!("{name} has no \"report\" object"))?;
    Ok(Recorded {
        path: path.to_owned(),
        command: command.to_owned(),
        machine,
        report,
    })
}

/// The figures of every report, the one measured at the largest scale where several give it.
pub fn measure(recorded: &[Recorded]) -> anyhow::Result<Measured> {
    let mut m = Measured::default();
    for r in recorded {
        let file = r.path.display().to_string();
        m.reports.push((file.clone(), r.command.clone()));
        if m.open_files_hard.is_none() {
            let hard = r.machine.open_files.hard as f64;
            m.open_files_hard = Some(Figure::new(hard, "environment.open_files.hard", &file, 0));
            let cores = r.machine.cores as f64;
            m.cores = Some(Figure::new(cores, "environment.cores", &file, 0));
        } else if m.open_files_hard.as_ref().map(|f| f.value)
            != Some(r.machine.open_files.hard as f64)
        {
            m.notes.push(format!(
                "{file} was measured with another open-files limit ({}): the first report's \
                 is used",
                r.machine.open_files.hard
            ));
        }
        let context = || format!("{file}: its {} report", r.command);
        match r.command.as_str() {
            "fanout" => fanout(&r.report, &file, &mut m).with_context(context)?,
            "clients" => {
                let c = ClientsView::deserialize(&r.report).with_context(context)?;
                for kind in Kernel::BOTH {
                    clients(&c, kind, kind.field(), &file, &mut m);
                }
            }
            "ramp" => {
                let ramp = RampView::deserialize(&r.report).with_context(context)?;
                for kind in Kernel::BOTH {
                    let step = ramp
                        .steps
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| kind.of(&s.clients).is_some())
                        .max_by_key(|(_, s)| s.clients.connected);
                    match step {
                        Some((i, s)) => clients(
                            &s.clients,
                            kind,
                            &format!("steps[{i}].clients.{}", kind.field()),
                            &file,
                            &mut m,
                        ),
                        None => m
                            .notes
                            .push(format!("{file}: no ramp step recorded {}", kind.field())),
                    }
                }
            }
            "soak" => soak(&r.report, &file, &mut m).with_context(context)?,
            _ => {}
        }
    }
    Ok(m)
}

/// Keeps `new` in `slot` unless what is there was measured at a larger scale.
fn keep(slot: &mut Option<Figure>, new: Figure) {
    if slot.as_ref().is_none_or(|old| new.scale > old.scale) {
        *slot = Some(new);
    }
}

#[derive(Deserialize)]
struct FanoutView {
    subscribers: u64,
    systems: Vec<SystemView>,
}

#[derive(Deserialize)]
struct SystemView {
    system: String,
    runs: Vec<RunView>,
}

#[derive(Deserialize)]
struct RunView {
    #[serde(default)]
    server: Option<ServerFigures>,
}

fn fanout(report: &Value, file: &str, m: &mut Measured) -> anyhow::Result<()> {
    let f = FanoutView::deserialize(report)?;
    let Some((i, system)) = f
        .systems
        .iter()
        .enumerate()
        .find(|(_, s)| s.system == "matchstream")
    else {
        m.notes.push(format!(
            "{}: no run of the system \"matchstream\" (over TCP)",
            file
        ));
        return Ok(());
    };
    let servers: Vec<&ServerFigures> = system
        .runs
        .iter()
        .filter_map(|r| r.server.as_ref())
        .collect();
    if servers.is_empty() {
        m.notes.push(format!(
            "{}: its matchstream runs have no server figures (run fanout with --server-pid)",
            file
        ));
        return Ok(());
    }
    let runs = format!(
        "median of {}, {} subscribers",
        plural(servers.len() as u64, "run", "runs"),
        int(f.subscribers)
    );
    let field = |what: &str| format!("systems[{i}].runs[].server.{what}");
    let cpu: Vec<f64> = servers
        .iter()
        .map(|s| s.cpu_seconds_per_million_deliveries)
        .collect();
    let cpu = median(&cpu);
    if cpu > 0.0 {
        let field = field("cpu_seconds_per_million_deliveries");
        keep(
            &mut m.cpu_per_million,
            Figure::new(cpu, field, file, f.subscribers).how(runs),
        );
    } else {
        m.notes.push(format!(
            "{file}: the server used no measurable CPU per delivery (too short a run)"
        ));
    }
    // Not the median: runs after the first on the same server reuse the memory the first
    // one grew, and measure (nearly) nothing. The run that started from the least RSS did
    // the growing.
    let freshest = servers
        .iter()
        .enumerate()
        .min_by_key(|(_, s)| s.rss_before)
        .map_or(0, |(k, _)| k);
    let bytes = servers[freshest].bytes_per_subscriber;
    if bytes > 0.0 {
        let field = field("bytes_per_subscriber");
        keep(
            &mut m.user_bytes_per_subscriber,
            Figure::new(bytes, field, file, f.subscribers).how(format!(
                "of the run with the least RSS before, {} of {}: later runs on the same \
                 server reuse its memory",
                freshest + 1,
                servers.len()
            )),
        );
    } else {
        m.notes.push(format!(
            "{file}: the server's RSS did not grow while its subscribers connected (a server \
             that held as many before reuses that memory): measure memory on a fresh server"
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ClientsView {
    connected: u64,
    target: String,
    #[serde(default)]
    kernel_socket_bytes_per_connection: Option<f64>,
    #[serde(default)]
    kernel_slab_bytes_per_connection: Option<f64>,
}

#[derive(Deserialize)]
struct RampView {
    steps: Vec<StepView>,
}

#[derive(Deserialize)]
struct StepView {
    clients: ClientsView,
}

/// The two kernel figures of a clients report: each connection's slab objects (outside
/// `tcp_mem`) and its socket buffers (what `tcp_mem` counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `kernel_slab_bytes_per_connection`.
    Slab,
    /// `kernel_socket_bytes_per_connection`.
    Buffers,
}

impl Kernel {
    /// Both, in the order advise prints them.
    pub const BOTH: [Kernel; 2] = [Kernel::Slab, Kernel::Buffers];

    /// The report's field.
    pub fn field(self) -> &'static str {
        match self {
            Kernel::Slab => "kernel_slab_bytes_per_connection",
            Kernel::Buffers => "kernel_socket_bytes_per_connection",
        }
    }

    fn of(self, c: &ClientsView) -> Option<f64> {
        match self {
            Kernel::Slab => c.kernel_slab_bytes_per_connection,
            Kernel::Buffers => c.kernel_socket_bytes_per_connection,
        }
    }

    fn slot(self, m: &mut Measured) -> &mut Option<KernelFigure> {
        match self {
            Kernel::Slab => &mut m.slab_bytes_per_connection,
            Kernel::Buffers => &mut m.socket_bytes_per_connection,
        }
    }

    /// Why a figure may have come out below zero.
    fn why_negative(self) -> &'static str {
        match self {
            Kernel::Slab => "the kernel reclaimed more of its caches than the connections took",
            Kernel::Buffers => "other sockets of the host freed memory",
        }
    }

    /// Why a clients run may have written null.
    fn why_null(self) -> &'static str {
        match self {
            Kernel::Slab => {
                "no /proc/meminfo, no client connected, the slab shrank meanwhile, or a bench \
                 from before the field"
            }
            Kernel::Buffers => {
                "no /proc/net/sockstat, no client connected, or a bench from before the field"
            }
        }
    }
}

/// Takes figure `kind` of a clients run (`field`: where it is in the report), unless one
/// measured at a larger scale is already there.
fn clients(c: &ClientsView, kind: Kernel, field: &str, file: &str, m: &mut Measured) {
    let Some(value) = kind.of(c) else {
        m.notes
            .push(format!("{file}: {field} is null ({})", kind.why_null()));
        return;
    };
    if value < 0.0 {
        m.notes.push(format!(
            "{file}: {field} is {value:.0}: {} during the connect phase; measure again on a \
             quiet host",
            kind.why_negative()
        ));
        return;
    }
    let new = KernelFigure {
        measured: Figure::new(value, field, file, c.connected)
            .how(format!("{} clients connected", int(c.connected))),
        both_ends: is_loopback(&c.target),
    };
    let slot = kind.slot(m);
    if slot
        .as_ref()
        .is_none_or(|old| new.measured.scale > old.measured.scale)
    {
        *slot = Some(new);
    }
}

/// Whether a clients report's `target` is on this host (loopback).
fn is_loopback(target: &str) -> bool {
    ["127.", "localhost", "[::1]"]
        .iter()
        .any(|l| target.contains(l))
}

/// A soak's upper bound of user space per subscriber: the whole RSS at the reference sample
/// over the subscribers connected then (the node's fixed memory and history included; a
/// soak samples no RSS before its subscribers connect).
fn soak(report: &Value, file: &str, m: &mut Measured) -> anyhow::Result<()> {
    let samples: Vec<Sample> =
        serde_json::from_value(report["samples"].clone()).context("its \"samples\"")?;
    let reference = report["rss"]["reference_s"].as_f64();
    let sample = samples
        .iter()
        .find(|s| Some(s.time_s) == reference && s.subscribers_connected > 0);
    let Some(s) = sample else {
        m.notes.push(format!(
            "{}: no RSS reference sample with subscribers connected",
            file
        ));
        return Ok(());
    };
    let value = s.rss_kib as f64 * 1024.0 / s.subscribers_connected as f64;
    // A fanout's growth per subscriber is the better figure: the soak's, at scale 0, is kept
    // only without one (and any fanout replaces it).
    if m.user_bytes_per_subscriber.is_none() {
        keep(
            &mut m.user_bytes_per_subscriber,
            Figure::new(
                value,
                format!(
                    "samples[t={}].rss_kib × 1024 / subscribers_connected",
                    s.time_s
                ),
                file,
                0,
            )
            .how(format!(
                "an upper bound, the node's whole RSS over {} subscribers",
                int(s.subscribers_connected)
            )),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FANOUT: &str = include_str!("../../../tests/fixtures/fanout-15000.json");
    const CLIENTS: &str = include_str!("../../../tests/fixtures/clients-15000.json");
    const RAMP: &str = include_str!("../../../tests/fixtures/ramp.json");
    const SOAK: &str = include_str!("../../../tests/fixtures/soak.json");

    fn read(name: &str, text: &str) -> Recorded {
        parse(Path::new(name), text).expect("present")
    }

    fn measured(files: &[(&str, &str)]) -> Measured {
        let r: Vec<Recorded> = files.iter().map(|(n, t)| read(n, t)).collect();
        measure(&r).expect("present")
    }

    /// A report of `command` with this `report` object.
    fn doc(command: &str, report: &str) -> String {
        format!(
            r#"{{"environment":{{"cores":4,"open_files":{{"soft_initial":1024,"soft":65536,
            "hard":65536}}}},"schema":2,"command":"{command}","report":{report}}}"#
        )
    }

    #[test]
    fn what_is_not_a_report_is_refused_with_its_reason() {
        let cases = [
            (
                "not JSON",
                "matchstream 0.1.0\n".to_owned(),
                "x.json is not JSON",
            ),
            (
                "no schema",
                "{}".to_owned(),
                "x.json is not a matchstream-bench report",
            ),
            (
                "another schema",
                doc("fanout", "{}").replace("\"schema\":2", "\"schema\":1"),
                "x.json has schema 1; advise reads schema 2",
            ),
            (
                "a command advise cannot use",
                doc("http", "{}"),
                "x.json is a \"http\" report; advise reads the reports of clients, fanout, \
                 ramp, soak",
            ),
            (
                "no command",
                doc("fanout", "{}").replace("\"command\":\"fanout\",", ""),
                "x.json is a \"\" report",
            ),
            (
                "an environment without its limit",
                doc("fanout", "{}").replace("\"open_files\"", "\"files\""),
                "x.json: its \"environment\"",
            ),
            (
                "no report",
                doc("clients", "[]"),
                "x.json has no \"report\" object",
            ),
        ];
        for (name, text, want) in cases {
            let err = format!(
                "{:#}",
                parse(Path::new("x.json"), &text).expect_err("refused")
            );
            assert!(err.starts_with(want), "{name}: {err}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = format!(
            "{:#}",
            load(Path::new("/nonexistent/f.json")).expect_err("refused")
        );
        assert!(err.starts_with("reading /nonexistent/f.json: "), "{err}");
    }

    #[test]
    fn a_report_missing_a_used_field_is_named() {
        let r = read("c.json", &doc("clients", r#"{"connected":3}"#));
        let err = format!("{:#}", measure(&[r]).expect_err("refused"));
        assert!(
            err.starts_with("c.json: its clients report: missing field `target`"),
            "{err}"
        );
    }

    #[test]
    fn fanout_gives_the_median_cpu_and_the_largest_memory_of_matchstream() {
        let m = measured(&[("f.json", FANOUT)]);
        let cpu = m.cpu_per_million.expect("present");
        assert_eq!(cpu.value, 3.38); // runs 3.52, 3.38, 3.31, 3.40, 3.36; Redis's 3.51 not used
        assert_eq!(
            cpu.source("3.38"),
            "f.json: systems[0].runs[].server.cpu_seconds_per_million_deliveries = 3.38 \
             (median of 5 runs, 15,000 subscribers)"
        );
        // Runs 2-5 reused the memory run 1 grew on the same server.
        let user = m.user_bytes_per_subscriber.expect("present");
        assert_eq!(user.value, 552.96);
        assert!(user
            .how
            .starts_with("of the run with the least RSS before, 1 of 5"));
        let hard = m.open_files_hard.expect("present");
        assert_eq!(
            (hard.value, hard.field.as_str()),
            (20_000.0, "environment.open_files.hard")
        );
        assert_eq!(m.cores.expect("present").value, 2.0);
        assert_eq!(m.reports, [("f.json".to_owned(), "fanout".to_owned())]);
        assert!(m.notes.is_empty(), "{:?}", m.notes);
    }

    #[test]
    fn clients_on_loopback_measured_both_ends() {
        let m = measured(&[("c.json", CLIENTS)]);
        let k = m.socket_bytes_per_connection.expect("present");
        assert_eq!(k.measured.value, 1_048_576.0 / 15_000.0); // 256 pages over 15,000
        assert!(k.both_ends);
        assert_eq!(k.per_end(), 1_048_576.0 / 30_000.0);
        // The million run's slab growth, 9,597 MiB over 1,000,000 connections.
        let slab = m.slab_bytes_per_connection.expect("present");
        assert_eq!(slab.measured.value, 9_597.0 * 1_048_576.0 / 1e6);
        assert_eq!(slab.per_end(), 9_597.0 * 1_048_576.0 / 2e6);
        assert_eq!(slab.measured.field, "kernel_slab_bytes_per_connection");
        assert!(m.notes.is_empty(), "{:?}", m.notes);
        let remote = doc(
            "clients",
            r#"{"connected":10,"target":"10.0.0.5:9100","kernel_socket_bytes_per_connection":40,
            "kernel_slab_bytes_per_connection":5000}"#,
        );
        let m = measured(&[("r.json", &remote)]);
        for k in [&m.socket_bytes_per_connection, &m.slab_bytes_per_connection] {
            assert!(!k.as_ref().expect("present").both_ends);
        }
        assert_eq!(
            m.socket_bytes_per_connection.expect("present").per_end(),
            40.0
        );
        assert_eq!(
            m.slab_bytes_per_connection.expect("present").per_end(),
            5000.0
        );
    }

    #[test]
    fn a_ramp_gives_its_largest_step_with_each_figure() {
        let m = measured(&[("ramp.json", RAMP)]);
        let k = m.socket_bytes_per_connection.expect("present");
        assert_eq!(k.measured.value, 96.0);
        assert_eq!(
            k.measured.field,
            "steps[1].clients.kernel_socket_bytes_per_connection"
        );
        // Step 1 has no slab figure: step 0's is the largest that has one.
        let slab = m.slab_bytes_per_connection.expect("present");
        assert_eq!(slab.measured.value, 10_240.0);
        assert_eq!(
            slab.measured.field,
            "steps[0].clients.kernel_slab_bytes_per_connection"
        );
        let bare = doc("ramp", r#"{"steps":[]}"#);
        let m = measured(&[("bare.json", &bare)]);
        assert!(m.socket_bytes_per_connection.is_none() && m.slab_bytes_per_connection.is_none());
        assert_eq!(
            m.notes,
            [
                "bare.json: no ramp step recorded kernel_slab_bytes_per_connection",
                "bare.json: no ramp step recorded kernel_socket_bytes_per_connection"
            ]
        );
    }

    #[test]
    fn the_largest_measurement_wins() {
        for order in [
            [("c.json", CLIENTS), ("ramp.json", RAMP)],
            [("ramp.json", RAMP), ("c.json", CLIENTS)],
        ] {
            let m = measured(&order);
            for k in [m.socket_bytes_per_connection, m.slab_bytes_per_connection] {
                assert_eq!(k.expect("present").measured.file, "c.json");
            }
        }
    }

    #[test]
    fn a_soak_gives_an_upper_bound_only_without_a_fanout() {
        let m = measured(&[("soak.json", SOAK)]);
        let user = m.user_bytes_per_subscriber.expect("present");
        assert_eq!(user.value, 38_707.0 * 1024.0 / 19_000.0);
        assert_eq!(
            user.field,
            "samples[t=30].rss_kib × 1024 / subscribers_connected"
        );
        for order in [[("s", SOAK), ("f", FANOUT)], [("f", FANOUT), ("s", SOAK)]] {
            let m = measured(&order);
            assert_eq!(m.user_bytes_per_subscriber.expect("present").value, 552.96);
        }
    }

    /// A clients report with these two kernel figures (JSON values).
    fn clients_doc(socket: &str, slab: &str) -> String {
        doc(
            "clients",
            &format!(
                r#"{{"connected":10,"target":"x","kernel_socket_bytes_per_connection":{socket},
                "kernel_slab_bytes_per_connection":{slab}}}"#
            ),
        )
    }

    #[test]
    fn reports_that_measured_nothing_usable_say_why() {
        let cases = [
            (
                doc(
                    "fanout",
                    r#"{"subscribers":10,"systems":[{"system":"redis","runs":[]}]}"#,
                ),
                "no run of the system \"matchstream\"",
            ),
            (
                doc(
                    "fanout",
                    r#"{"subscribers":10,"systems":[{"system":"matchstream","runs":[{"server":null}]}]}"#,
                ),
                "run fanout with --server-pid",
            ),
            (
                clients_doc("null", "5000"),
                "kernel_socket_bytes_per_connection is null (no /proc/net/sockstat",
            ),
            (
                clients_doc("-410", "5000"),
                "kernel_socket_bytes_per_connection is -410: other sockets of the host freed \
                 memory",
            ),
            (
                clients_doc("40", "null"),
                "kernel_slab_bytes_per_connection is null (no /proc/meminfo, no client \
                 connected, the slab shrank",
            ),
            (
                clients_doc("40", "-3000"),
                "kernel_slab_bytes_per_connection is -3000: the kernel reclaimed more",
            ),
        ];
        for (text, want) in cases {
            let m = measured(&[("n.json", &text)]);
            let kernel = [&m.socket_bytes_per_connection, &m.slab_bytes_per_connection];
            assert!(m.cpu_per_million.is_none() && kernel.iter().any(|k| k.is_none()));
            assert_eq!(m.notes.len(), 1, "{:?}", m.notes);
            assert!(
                m.notes[0].starts_with("n.json: ") && m.notes[0].contains(want),
                "{:?}",
                m.notes
            );
        }
        // A warm server's RSS did not grow: its CPU is kept, its memory is not.
        let run = |rss: u64, bytes: f64| {
            format!(
                r#"{{"server":{{"pids":[7],"rss_before":{rss},"rss_connected":{rss},
                "bytes_per_subscriber":{bytes},"cpu_seconds_connecting":0.1,
                "cpu_seconds_publishing":0.4,"cpu_seconds_per_million_deliveries":4.2}}}}"#
            )
        };
        let warm = doc(
            "fanout",
            &format!(
                r#"{{"subscribers":100,"systems":[{{"system":"matchstream","runs":[{},{}]}}]}}"#,
                run(52_000_000, 0.0),
                run(52_400_000, 40.96)
            ),
        );
        let m = measured(&[("w.json", &warm)]);
        assert!(m.cpu_per_million.is_some() && m.user_bytes_per_subscriber.is_none());
        assert!(
            m.notes[0].contains("measure memory on a fresh server"),
            "{:?}",
            m.notes
        );
    }

    #[test]
    fn a_second_machine_is_noted() {
        let other = doc("clients", r#"{"connected":1,"target":"x"}"#);
        let m = measured(&[("c.json", CLIENTS), ("o.json", &other)]);
        assert_eq!(m.open_files_hard.expect("present").value, 20_000.0);
        assert!(m.notes[0].starts_with("o.json was measured with another open-files limit (65536)"));
    }
}
