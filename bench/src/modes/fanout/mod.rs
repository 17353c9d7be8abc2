//! `fanout`: the benchmark for performance engineers. N subscribers (version 2) spread over
//! M matches that the bench creates, starts and plays as their watcher: E comment events per
//! match under one flow control ([`crate::publisher::flow`]: paced at R per second per match, or `max`
//! with a window of W events ahead of the slowest subscriber), then a stop. The same
//! publisher loop ([`crate::publisher::pipeline`]) drives matchstream and every baseline
//! (`--baseline redis://..`, `--baseline nats://..`, see [`crate::modes::fanout::baseline`]), pipelining its
//! publishes. Every event carries its stamp, so every subscriber in every worker process
//! measures each delivery's latency from the frame alone; per subscriber the v2 seq is
//! tracked to count duplicates and gaps. `--runs K` repeats the whole measurement with fresh
//! matches (see [`crate::modes::fanout::runs`] for the tables), and the bench exits non-zero on any loss,
//! failure, refused publish, missed rate or broken `--fail-on` criterion.

use anyhow::{bail, Context};
use matchstream_client::HttpClient;
use matchstream_protocol::frame::{render_event, Version};
use matchstream_protocol::{Event, EventData, EventKind, MatchId};

use crate::net::{self, Api};
use crate::publisher::flow::Flow;
use crate::publisher::publish::{self, Sink};
use crate::subscribers::plan::Target;
use crate::wire::decode::Protocol;
use crate::{figures, preflight, watcher};

pub mod baseline;
pub mod measure;
pub mod measured;
pub mod options;
pub mod report;
pub mod runs;
pub mod thresholds;

use baseline::Baseline;
use measure::Shape;
use measured::Figures;
pub use options::{Options, Rate, LONG_ABOUT};
pub use report::{FlowControl, Report, ServerProcess};
use runs::SystemRuns;

/// What every run of an invocation shares.
struct Setup<'a> {
    opts: &'a Options,
    /// The node under test.
    api: Api,
    /// Redis and NATS, run in the same shape after matchstream.
    baselines: Vec<Baseline>,
    /// Where matchstream's subscribers connect.
    target: Target,
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
    preflight(opts, &api, &baselines)?;
    let setup = Setup {
        opts,
        target: target(opts, &api)?,
        flow: opts.flow(),
        frame_bytes: frame_size(opts.warmup + opts.events + 1, opts.payload),
        api,
        baselines,
    };
    let servers = servers(opts, &setup.baselines);
    let mut client = HttpClient::for_url(setup.api.url.clone()).with_token(&opts.token);
    let mut all: Vec<Vec<Figures>> = vec![Vec::new(); 1 + setup.baselines.len()];
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
    let problems = problems(opts, interrupted, &systems);
    for s in &systems {
        for f in &s.runs {
            warnings.extend(f.warnings());
            if f.idle_but_slow {
                warnings.push(runs::idle_but_slow_line(f));
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
        frame_bytes: setup.frame_bytes,
        runs: opts.runs,
        cores: figures::sysstat::cores(),
        servers,
        systems,
        problems,
        warnings,
    };
    if let Some(path) = &opts.csv {
        std::fs::write(path, report.csv())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// Where matchstream's subscribers connect: checkin, or `--targets`.
fn target(opts: &Options, api: &Api) -> anyhow::Result<Target> {
    if opts.targets.is_empty() {
        return Ok(Target::Checkin(api.clone()));
    }
    Ok(Target::Direct(
        opts.targets
            .iter()
            .map(|t| net::parse_target(t))
            .collect::<anyhow::Result<_>>()?,
    ))
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

/// Run `k`: matchstream on fresh matches (deleted afterwards unless `--keep-matches`), then
/// each baseline; each system's figures go to its list in `all`.
fn run_once(
    setup: &Setup<'_>,
    client: &mut HttpClient,
    k: u32,
    all: &mut [Vec<Figures>],
    warnings: &mut Vec<String>,
) -> anyhow::Result<()> {
    let opts = setup.opts;
    let run = watcher::run_id();
    let ids = watcher::create_started(client, &run, opts.matches)
        .with_context(|| format!("creating the matches of run {k}"))?;
    let channels: Vec<String> = ids.iter().map(MatchId::to_string).collect();
    let m = measure::measure(&Shape {
        opts,
        system: "matchstream",
        run: (k, opts.runs),
        protocol: Protocol::Stream { version: 2 },
        target: setup.target.clone(),
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
            warnings.push(format!("run {k}: deleting its matches: {e:#}"));
        }
    }
    all[0].push(m?);
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
        all[1 + i].push(f);
    }
    Ok(())
}

/// Every system's runs and medians, matchstream first; systems without a single run
/// (interrupted before theirs) are left out.
fn systems(setup: &Setup<'_>, mut all: Vec<Vec<Figures>>) -> Vec<SystemRuns> {
    let keep = all.iter().take_while(|r| !r.is_empty()).count().max(1);
    all.truncate(keep);
    let targets = std::iter::once(setup.api.url.to_string())
        .chain(setup.baselines.iter().map(|b| b.url.clone()))
        .collect::<Vec<_>>();
    all.into_iter()
        .zip(targets)
        .map(|(runs, target)| SystemRuns::new(runs, target))
        .collect()
}

/// Why the invocation fails: an interruption, every run's problems, and the `--fail-on`
/// criteria each matchstream run breaks.
fn problems(opts: &Options, interrupted: Option<u32>, systems: &[SystemRuns]) -> Vec<String> {
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
        for f in &systems[0].runs {
            problems.extend(criteria.check(f));
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
/// pids and source addresses exist, the API and every baseline answer.
fn preflight(opts: &Options, api: &Api, baselines: &[Baseline]) -> anyhow::Result<()> {
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
    for b in baselines {
        b.ping(preflight::PROBE)?;
    }
    Ok(())
}
