//! `soak` (issue 11, item 10): does a node hold steady under a long, steady load with
//! reconnections? N version 2 subscribers over M matches the bench creates and keeps live,
//! R paced events per second per match for the whole run (the publisher of `fanout`,
//! [`crate::publisher::pipeline`]), and every minute a share of the subscribers, picked at
//! random, disconnect and resume with `SINCE` ([`crate::subscribers::plan::Resume`]); every
//! subscriber counts lost, duplicated and out-of-order events across its reconnections. The
//! server's RSS and open files are sampled all along ([`samples`]); the verdict
//! ([`verdict`]) compares the end's RSS with the reference's (5 minutes in) and wants no event
//! lost, duplicated or out of order.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use matchstream_client::HttpClient;
use matchstream_protocol::MatchId;

use crate::figures::latency::realtime_ns;
use crate::figures::progress::{self, Live, Mode, Progress};
use crate::figures::report::BenchCost;
use crate::figures::{env, sysstat};
use crate::net::Api;
use crate::publisher::flow::{Flow, Schedule};
use crate::publisher::pipeline;
use crate::publisher::publish::{Published, Sink};
use crate::subscribers::plan::{Outcome, Plan, Resume, Target};
use crate::subscribers::shards::Shards;
use crate::wire::decode::Protocol;
use crate::{preflight, watcher};

pub mod options;
pub mod report;
pub mod samples;
pub mod verdict;

pub use options::{Options, LONG_ABOUT};
pub use report::Report;
use report::ResumeShape;
use samples::{Sample, Sampler, Sources};

/// Files the server keeps open besides its subscribers (listeners, rings, store, logs): the
/// engine's own reserve (`engine/src/limits.rs`).
const SERVER_RESERVE_FDS: u64 = 64;
/// The reply timeout of publishing connections.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long subscribers may wait for a stop whose publish was not acknowledged.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs a soak.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    validate(opts)?;
    let api = Api::parse(&opts.api)?;
    let files_limit = preflight(opts, &api)?;
    let seed = opts
        .seed
        .unwrap_or_else(|| realtime_ns() ^ u64::from(std::process::id()));
    let mut client = HttpClient::for_url(api.url.clone()).with_token(&opts.token);
    let run = watcher::run_id();
    let ids =
        watcher::create_started(&mut client, &run, opts.matches).context("creating the matches")?;
    let channels: Vec<String> = ids.iter().map(MatchId::to_string).collect();
    let soaked = soak(opts, &api, &channels, &format!("b{run}s"), seed);
    if !opts.keep_matches {
        if let Err(e) = watcher::cancel_all(&mut client, &ids) {
            eprintln!("matchstream-bench: warning: deleting the soak's matches: {e:#}");
        }
    }
    let mut report = soaked?;
    report.server_open_files_limit = files_limit;
    Ok(report)
}

/// Refuses options that cannot make a soak.
fn validate(opts: &Options) -> anyhow::Result<()> {
    if opts.subscribers == 0 || opts.matches == 0 {
        bail!("--subscribers and --matches must be at least 1");
    }
    if !(opts.rate > 0.0 && opts.rate.is_finite()) || opts.events_per_match() == 0 {
        bail!("--rate x --minutes must make at least one event per match");
    }
    if !(opts.sample_every > 0.0 && opts.resume_every > 0.0) {
        bail!("--sample-every and --resume-every must be positive");
    }
    if !(0.0..=100.0).contains(&opts.resume_percent) {
        bail!("--resume-percent must lie between 0 and 100");
    }
    Ok(())
}

/// Everything refused before any load, and the server's open-files limit: it must hold every
/// subscriber beside the server's reserve.
fn preflight(opts: &Options, api: &Api) -> anyhow::Result<Option<u64>> {
    preflight::output(&opts.output)?;
    for (path, flag) in [(opts.csv.clone(), "--csv"), (opts.chart_path(), "--chart")] {
        if let Some(p) = path {
            preflight::writable(&p, flag)?;
        }
    }
    preflight::pids(&[opts.server_pid], "--server-pid")?;
    if let Some(ips) = &opts.spread.source_ips {
        preflight::source_ips(ips)?;
    }
    preflight::api(api)?;
    let limit = sysstat::open_files_limit(opts.server_pid);
    if let Some(l) = limit {
        let needed = opts.subscribers + SERVER_RESERVE_FDS;
        if l < needed {
            bail!(
                "the server's open-files limit is {l}, below the {needed} files {} subscribers \
                 and its reserve of {SERVER_RESERVE_FDS} need: raise it (ulimit -n, \
                 LimitNOFILE) or lower --subscribers",
                opts.subscribers
            );
        }
    }
    Ok(limit)
}

/// The soak proper, on matches already created: connect, publish while sampling, stop,
/// collect, judge.
fn soak(
    opts: &Options,
    api: &Api,
    channels: &[String],
    user_prefix: &str,
    seed: u64,
) -> anyhow::Result<Report> {
    let cpu_start = sysstat::own_cpu_seconds();
    let started = Instant::now();
    let duration = opts.duration();
    let limit = started + duration + Duration::from_secs_f64(opts.timeout.max(1.0));
    let resume = Resume {
        every_ms: millis(opts.resume_every),
        percent: opts.resume_percent,
        spread_ms: millis(opts.resume_spread()),
        seed,
    };
    let plan = Plan {
        protocol: Protocol::Stream { version: 2 },
        target: Target::Checkin(api.clone()),
        channels: channels.to_vec(),
        user_prefix: user_prefix.to_owned(),
        first: 0,
        count: opts.subscribers,
        concurrency: opts.c.max(1),
        connect_timeout_ms: opts.spread.connect_timeout_ms(),
        time_limit_ms: limit.saturating_duration_since(started).as_millis() as u64,
        source_ips: opts.spread.source_ips.clone(),
        resume: Some(resume.clone()),
    };
    let mut shards = Shards::start(&plan, opts.spread.workers)?;
    let lives = shards.lives();
    let connecting = show(opts, &lives, "connecting");
    let ready = shards.wait_ready(limit) && !crate::interrupt::requested();
    connecting.finish();
    let sent = Arc::new(AtomicU64::new(0));
    let (published, samples) = if ready {
        publish(opts, api, channels, &shards, &sent, limit)?
    } else {
        (Ok(Published::default()), Vec::new())
    };
    let until = match &published {
        Ok(p) if ready && p.stalled.is_none() && p.unsent == 0 => {
            if p.stops_ok < channels.len() as u64 {
                limit.min(Instant::now() + STOP_GRACE)
            } else {
                limit
            }
        }
        _ => {
            shards.abort();
            limit
        }
    };
    let (shard_count, processes) = shards.describe();
    let ending = show(
        opts,
        &lives,
        "stops published, waiting for the subscribers to end",
    );
    let outcome = shards.finish(until);
    ending.finish();
    let rss_after_kib = sysstat::rss_bytes(&opts.server_pid.to_string()).unwrap_or(0) / 1024;
    let (published, outcome) = (published?, outcome?);
    let mut report = figures(opts, &outcome, published, samples);
    report.resume = ResumeShape {
        percent: resume.percent,
        every_seconds: opts.resume_every,
        spread_seconds: opts.resume_spread(),
        seed,
    };
    report.rss_after_kib = rss_after_kib;
    report.bench = BenchCost {
        cpu_seconds: sysstat::own_cpu_seconds() - cpu_start,
        shards: shard_count,
        worker_processes: processes,
        rss_bytes_per_connection: outcome.rss_per_connection(),
    };
    if let Some(path) = opts.chart_path() {
        let title = format!(
            "matchstream soak: {} subscribers, {} matches at {}/s, {} % resumed every {} s",
            opts.subscribers, opts.matches, opts.rate, opts.resume_percent, opts.resume_every
        );
        std::fs::write(&path, samples::render_chart(&title, &report.samples))
            .with_context(|| format!("writing {}", path.display()))?;
        report.chart = Some(path.display().to_string());
    }
    Ok(report)
}

/// Publishes R events per second per match for the run's duration, then a stop each, while
/// the sampler samples; the publisher's figures and the samples.
fn publish(
    opts: &Options,
    api: &Api,
    channels: &[String],
    shards: &Shards,
    sent: &Arc<AtomicU64>,
    limit: Instant,
) -> anyhow::Result<(anyhow::Result<Published>, Vec<Sample>)> {
    let flow = Flow::Paced { rate: opts.rate };
    let mut schedule = Schedule::new(flow, channels.len(), 0, opts.events_per_match());
    let t0 = Instant::now();
    schedule.start(t0, realtime_ns());
    let duration = opts.duration().as_secs_f64();
    let sampler = Sampler::start(Sources {
        pid: opts.server_pid,
        lives: shards.lives(),
        sent: sent.clone(),
        t0,
        every: Duration::from_secs_f64(opts.sample_every),
        until: opts.duration(),
        csv: opts.csv.as_deref().map(samples::create_csv).transpose()?,
        print: opts.output.mode() != Mode::Off,
        planned: (opts.subscribers, opts.events_per_match() * opts.matches),
        reference_s: verdict::reference_time(duration, opts.reference_minutes * 60.0).0,
    })?;
    let published = pipeline::run(
        &pipeline::Options {
            addr: api.addr,
            connections: opts.publishers.unwrap_or(32).clamp(1, channels.len()),
            reply_timeout: REPLY_TIMEOUT,
            stall_timeout: REPLY_TIMEOUT,
            limit,
        },
        &Sink::Matchstream {
            api: api.url.clone(),
            token: opts.token.clone(),
            comment_len: opts.payload,
        },
        channels,
        &mut schedule,
        &shards.board(),
        sent,
    );
    Ok((published, sampler.finish()?))
}

/// The report's figures from the subscribers' outcome, the publisher's and the samples.
fn figures(opts: &Options, o: &Outcome, published: Published, samples: Vec<Sample>) -> Report {
    let expected = o.connected * opts.events_per_match();
    let duration = opts.duration().as_secs_f64();
    let rss = verdict::rss_check(
        &samples,
        duration,
        opts.reference_minutes * 60.0,
        opts.rss_tolerance,
    );
    let mut report = Report {
        subscribers: opts.subscribers,
        matches: opts.matches,
        rate_per_match: opts.rate,
        minutes: opts.minutes,
        events_per_match: opts.events_per_match(),
        sample_every_seconds: opts.sample_every,
        server_pid: opts.server_pid,
        server_command: env::redact(sysstat::cmdline(opts.server_pid)),
        samples,
        connected: o.connected,
        failed: o.failed,
        failures: o.failures.clone(),
        error_lines: o.error_lines.clone(),
        framing: o.framing.clone(),
        expected,
        delivered: o.delivered,
        lost: o.lost(expected),
        duplicated: o.duplicated,
        out_of_order: o.out_of_order,
        resumes: o.resumes,
        latency: o.delivery.summary(),
        csv: opts.csv.as_ref().map(|p| p.display().to_string()),
        ..Report::default()
    };
    report.problems = verdict::problems(&verdict::Figures {
        subscribers: opts.subscribers,
        connected: o.connected,
        failed: o.failed,
        error_lines: o.error_lines.values().sum(),
        lost: report.lost,
        duplicated: o.duplicated,
        out_of_order: o.out_of_order,
        rss: rss.as_ref(),
        publishing: published.problems(),
        interrupted: crate::interrupt::requested().then(|| "interrupted (Ctrl-C)".to_owned()),
    });
    report.rss = rss;
    report.publish = published;
    report
}

/// A progress line while the subscribers connect or end (the samples print their own).
fn show(opts: &Options, lives: &[Arc<Live>], what: &'static str) -> Progress {
    let lives = lives.to_vec();
    let n = opts.subscribers;
    Progress::start(opts.output.mode(), move |t| {
        let s = Live::sum(&lives);
        format!(
            "soak {what} {}: connected {}/{n}, failed {}, open {}",
            progress::secs(t),
            s.connected,
            s.failed,
            s.open
        )
    })
}

fn millis(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0).round() as u64
}
