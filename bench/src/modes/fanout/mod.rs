//! `fanout`: the benchmark for performance engineers. N subscribers (version 2 on a stream
//! port, or server-sent events on the API port: `--transport`, see
//! [`crate::modes::fanout::transport`]) spread over M matches that the bench creates, starts
//! and plays as their watcher: E comment events per match under one flow control
//! ([`crate::publisher::flow`]: paced at R per second per match, or `max` with a window of W
//! events ahead of the slowest subscriber), then a stop. The same publisher loop
//! ([`crate::publisher::pipeline`]) drives matchstream and every baseline (`--baseline
//! redis://..`, `--baseline nats://..`, see [`crate::modes::fanout::baseline`]), pipelining its
//! publishes. Every event carries its stamp, so every subscriber in every worker process
//! measures each delivery's latency from the frame alone; per subscriber the v2 seq (an SSE
//! event's `id`) is tracked to count duplicates and gaps. `--runs K` repeats the whole
//! measurement with fresh matches (see [`crate::modes::fanout::runs`] for the tables), and the
//! bench exits non-zero on any loss, failure, refused publish, missed rate or broken
//! `--fail-on` criterion.

use anyhow::{bail, Context};
use matchstream_client::HttpClient;
use matchstream_protocol::frame::{render_event, Version};
use matchstream_protocol::{Event, EventData, EventKind, MatchId};

use crate::net::{self, Api};
use crate::publisher::flow::Flow;
use crate::publisher::publish::{self, Sink};
use crate::subscribers::plan::Target;
use crate::{figures, preflight, watcher};

pub mod baseline;
pub mod measure;
pub mod measured;
pub mod options;
pub mod report;
pub mod runs;
pub mod thresholds;
pub mod transport;

use baseline::Baseline;
use measure::Shape;
use measured::Figures;
pub use options::{Options, Rate, LONG_ABOUT};
pub use report::{FlowControl, Report, ServerProcess};
use runs::SystemRuns;
use transport::{SseVsTcp, Transport};

/// What every run of an invocation shares.
struct Setup<'a> {
    opts: &'a Options,
    /// The node under test.
    api: Api,
    /// Redis and NATS, run in the same shape after matchstream.
    baselines: Vec<Baseline>,
    /// matchstream's transports, in the order they run, and where each one's subscribers
    /// connect.
    transports: Vec<(Transport, Target)>,
    flow: Flow,
    /// Bytes of a measured event's v2 frame: the baselines' payload size.
    frame_bytes: usize,
}

/// Runs `fanout` (and its baselines), `--runs` times.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    if opts.subscribers == 0 || opts.matches == 0 || opts.events == 0 || opts.runs == 0 {
        bail!("--subscribers, --matches, --events and --runs must be at least 1");
    }
    if opts.rate == Rate::Max && opts.window == 0 {
        bail!("--window must be at least 1 (W = 0 would never publish)");
    }
    let api = Api::parse(&opts.api)?;
    let baselines = Baseline::parse_all(&opts.baselines, &opts.baseline_pids)?;
    let transports = opts.transports();
    check_transports(opts, &transports, &baselines)?;
    let transports = transports
        .into_iter()
        .map(|t| Ok((t, target(opts, &api, t)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    preflight(opts, &api, &baselines, &transports)?;
    let setup = Setup {
        opts,
        transports,
        flow: opts.flow(),
        frame_bytes: frame_size(opts.warmup + opts.events + 1, opts.payload),
        api,
        baselines,
    };
    let servers = servers(opts, &setup.baselines);
    let mut client = HttpClient::for_url(setup.api.url.clone()).with_token(&opts.token);
    let mut all: Vec<Vec<Figures>> =
        vec![Vec::new(); setup.transports.len() + setup.baselines.len()];
    let mut warnings = Vec::new();
    let mut interrupted = None;
    for k in 1..=opts.runs {
        if crate::interrupt::requested() {
            break;
        }
        run_once(&setup, &mut client, k, &mut all, &mut warnings)?;
        if crate::interrupt::requested() {
            interrupted = Some(k);
        }
    }
    let systems = systems(&setup, all);
    let problems = problems(opts, interrupted, &systems, setup.transports.len());
    let sse_vs_tcp = sse_vs_tcp(&systems);
    warnings.extend(sse_vs_tcp.as_ref().and_then(SseVsTcp::warning));
    for s in &systems {
        for f in &s.runs {
            warnings.extend(f.warnings());
            if f.idle_but_slow {
                warnings.push(runs::idle_but_slow_line(f));
            }
            if f.starved {
                warnings.push(runs::starved_line(f));
            }
        }
    }
    if let Some(path) = &opts.hgrm {
        write_hgrms(path, &systems)?;
    }
    let report = Report {
        subscribers: opts.subscribers,
        matches: opts.matches,
        events: opts.events,
        warmup: opts.warmup,
        rate: opts.rate.to_string(),
        flow_control: flow_control(opts, setup.flow),
        transports: setup
            .transports
            .iter()
            .map(|(t, _)| t.name().to_owned())
            .collect(),
        frame_bytes: setup.frame_bytes,
        sse_frame_bytes: setup
            .transports
            .iter()
            .any(|(t, _)| *t == Transport::Sse)
            .then(|| transport::sse_frame_size(opts.warmup + opts.events + 1, opts.payload)),
        runs: opts.runs,
        cores: figures::sysstat::cores(),
        servers,
        systems,
        sse_vs_tcp,
        problems,
        warnings,
    };
    if let Some(path) = &opts.csv {
        std::fs::write(path, report.csv())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// Where matchstream's subscribers connect over `transport`: TCP, checkin or `--targets`;
/// SSE, the API of `--api` or those of `--sse-targets` (with `--api`'s path prefix).
fn target(opts: &Options, api: &Api, transport: Transport) -> anyhow::Result<Target> {
    match transport {
        Transport::Tcp if opts.targets.is_empty() => Ok(Target::Checkin(api.clone())),
        Transport::Tcp => Ok(Target::Direct(
            opts.targets
                .iter()
                .map(|t| net::parse_target(t))
                .collect::<anyhow::Result<_>>()?,
        )),
        Transport::Sse if opts.sse_targets.is_empty() => Ok(Target::Sse(vec![api.clone()])),
        Transport::Sse => Ok(Target::Sse(
            opts.sse_targets
                .iter()
                .map(|t| {
                    net::parse_target(t)?;
                    Api::parse(&format!("http://{t}{}", api.url.prefix()))
                        .with_context(|| format!("--sse-targets {t}"))
                })
                .collect::<anyhow::Result<_>>()?,
        )),
    }
}

/// Refuses transports that do not go with the other options: a baseline needs matchstream's
/// TCP run to be compared with; `--targets` are stream ports (TCP only); `--sse-targets`
/// are for SSE.
fn check_transports(
    opts: &Options,
    transports: &[Transport],
    baselines: &[Baseline],
) -> anyhow::Result<()> {
    let tcp = transports.contains(&Transport::Tcp);
    let sse = transports.contains(&Transport::Sse);
    if !tcp && !baselines.is_empty() {
        bail!(
            "--transport sse with --baseline: the Redis and NATS baselines are TCP pub/sub and \
             have no SSE run to compare with; use --transport tcp,sse (the baselines then run \
             beside matchstream's TCP run) or leave out --baseline"
        );
    }
    if !tcp && !opts.targets.is_empty() {
        bail!(
            "--targets names stream ports, which only --transport tcp uses; SSE subscribers \
             open their streams on --api or on --sse-targets"
        );
    }
    if !sse && !opts.sse_targets.is_empty() {
        bail!("--sse-targets is for --transport sse (or tcp,sse)");
    }
    Ok(())
}

/// The server processes to sample, and their command lines.
fn servers(opts: &Options, baselines: &[Baseline]) -> Vec<ServerProcess> {
    std::iter::once(("matchstream", &opts.server_pids))
        .chain(baselines.iter().map(|b| (b.name(), &b.pids)))
        .flat_map(|(system, pids)| {
            pids.iter().map(move |&pid| ServerProcess {
                system: system.to_owned(),
                pid,
                command: figures::env::redact(figures::sysstat::cmdline(pid)),
            })
        })
        .collect()
}

/// Run `k`: matchstream over each transport on fresh matches (deleted afterwards unless
/// `--keep-matches`), then each baseline; each system's figures go to its list in `all`.
fn run_once(
    setup: &Setup<'_>,
    client: &mut HttpClient,
    k: u32,
    all: &mut [Vec<Figures>],
    warnings: &mut Vec<String>,
) -> anyhow::Result<()> {
    let opts = setup.opts;
    for (i, (transport, target)) in setup.transports.iter().enumerate() {
        if i > 0 && crate::interrupt::requested() {
            return Ok(());
        }
        let run = watcher::run_id();
        let ids = watcher::create_started(client, &run, opts.matches)
            .with_context(|| format!("creating the matches of run {k} ({})", transport.system()))?;
        let channels: Vec<String> = ids.iter().map(MatchId::to_string).collect();
        let m = measure::measure(&Shape {
            opts,
            system: transport.system(),
            run: (k, opts.runs),
            protocol: transport.protocol(),
            target: target.clone(),
            channels,
            sink: Sink::Matchstream {
                api: setup.api.url.clone(),
                token: opts.token.clone(),
                comment_len: opts.payload,
            },
            publish_addr: setup.api.addr,
            pids: &opts.server_pids,
            user_prefix: format!("b{run}f"),
            flow: setup.flow,
        });
        if !opts.keep_matches {
            if let Err(e) = watcher::cancel_all(client, &ids) {
                warnings.push(format!(
                    "run {k} ({}): deleting its matches: {e:#}",
                    transport.system()
                ));
            }
        }
        all[i].push(m?);
    }
    let run = watcher::run_id();
    let first = setup.transports.len();
    for (i, b) in setup.baselines.iter().enumerate() {
        if crate::interrupt::requested() {
            break;
        }
        let f = measure::measure(&Shape {
            opts,
            system: b.name(),
            run: (k, opts.runs),
            protocol: b.protocol(),
            target: Target::Direct(vec![b.addr]),
            channels: b.channels(&run, opts.matches),
            sink: b.sink(setup.frame_bytes),
            publish_addr: b.addr,
            pids: &b.pids,
            user_prefix: String::new(),
            flow: setup.flow,
        })
        .with_context(|| format!("the {} baseline, run {k}", b.name()))?;
        all[first + i].push(f);
    }
    Ok(())
}

/// Every system's runs and medians, matchstream first (over each transport); systems without
/// a single run (interrupted before theirs) are left out.
fn systems(setup: &Setup<'_>, mut all: Vec<Vec<Figures>>) -> Vec<SystemRuns> {
    let keep = all.iter().take_while(|r| !r.is_empty()).count().max(1);
    all.truncate(keep);
    let targets = setup
        .transports
        .iter()
        .map(|(t, target)| match t {
            Transport::Tcp => (setup.api.url.to_string(), t.name()),
            Transport::Sse => (target.describe(), t.name()),
        })
        .chain(setup.baselines.iter().map(|b| (b.url.clone(), "tcp")))
        .collect::<Vec<_>>();
    all.into_iter()
        .zip(targets)
        .map(|(runs, (target, transport))| SystemRuns::new(runs, target, transport))
        .collect()
}

/// SSE against TCP, when both ran.
fn sse_vs_tcp(systems: &[SystemRuns]) -> Option<SseVsTcp> {
    let find = |t: Transport| systems.iter().find(|s| s.system == t.system());
    Some(SseVsTcp::new(find(Transport::Tcp)?, find(Transport::Sse)?))
}

/// Why the invocation fails: an interruption, every run's problems, and the `--fail-on`
/// criteria each matchstream run (the first `matchstream` systems, one per transport) breaks.
fn problems(
    opts: &Options,
    interrupted: Option<u32>,
    systems: &[SystemRuns],
    matchstream: usize,
) -> Vec<String> {
    let mut problems: Vec<String> = interrupted
        .map(|k| {
            format!(
                "interrupted (Ctrl-C) in run {k} of {}: this report is partial",
                opts.runs
            )
        })
        .into_iter()
        .collect();
    problems.extend(
        systems
            .iter()
            .flat_map(|s| s.runs.iter().flat_map(Figures::problems)),
    );
    if let Some(criteria) = &opts.fail_on {
        for s in systems.iter().take(matchstream) {
            for f in &s.runs {
                problems.extend(criteria.check(f));
            }
        }
    }
    problems
}

/// The flow control as the report states it.
fn flow_control(opts: &Options, flow: Flow) -> FlowControl {
    FlowControl {
        mode: flow.mode().to_owned(),
        rate_per_match: match flow {
            Flow::Paced { rate } => Some(rate),
            Flow::Window { .. } => None,
        },
        window: match flow {
            Flow::Window { window } => Some(window),
            Flow::Paced { .. } => None,
        },
        publishers: opts
            .publishers
            .unwrap_or(32)
            .clamp(1, opts.matches.max(1) as usize),
        description: flow.describe(),
    }
}

fn write_hgrms(path: &std::path::Path, systems: &[SystemRuns]) -> anyhow::Result<()> {
    for (i, s) in systems.iter().enumerate() {
        let file = if i == 0 {
            path.to_path_buf()
        } else {
            let stem = path
                .file_stem()
                .map_or("latency".into(), |s| s.to_string_lossy());
            path.with_file_name(format!("{stem}-{}.hgrm", s.system))
        };
        std::fs::write(&file, s.merged().hgrm())
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// Bytes of the v2 frame of a measured event with seq `seq` and a comment of `len` bytes.
pub fn frame_size(seq: u64, len: usize) -> usize {
    let Ok(match_id) = MatchId::parse("a-b-2011-09-13") else {
        return 0;
    };
    let event = Event {
        match_id,
        seq,
        timestamp_ms: 1_700_000_000_000,
        kind: EventKind::Comment,
        data: EventData {
            comment: Some(publish::comment(1_700_000_000_000_000_000, len)),
            ..EventData::default()
        },
    };
    let mut out = Vec::new();
    render_event(&event, Version::V2, &mut out);
    out.len()
}

/// Everything `fanout` needs before its load starts: its output paths can be written, its
/// pids and source addresses exist, the API, every other node SSE subscribers go to and
/// every baseline answer.
fn preflight(
    opts: &Options,
    api: &Api,
    baselines: &[Baseline],
    transports: &[(Transport, Target)],
) -> anyhow::Result<()> {
    preflight::output(&opts.output)?;
    if let Some(p) = &opts.hgrm {
        preflight::writable(p, "--hgrm")?;
    }
    if let Some(p) = &opts.csv {
        preflight::writable(p, "--csv")?;
    }
    preflight::pids(&opts.server_pids, "--server-pid")?;
    preflight::pids(&opts.baseline_pids, "--baseline-pid")?;
    if let Some(ips) = &opts.spread.source_ips {
        preflight::source_ips(ips)?;
    }
    preflight::api(api)?;
    for (_, target) in transports {
        if let Target::Sse(apis) = target {
            for other in apis.iter().filter(|a| *a != api) {
                preflight::api(other)?;
            }
        }
    }
    for b in baselines {
        b.ping(preflight::PROBE)?;
    }
    Ok(())
}
