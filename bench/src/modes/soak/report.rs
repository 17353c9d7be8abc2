//! What a `soak` reports: its shape, every sample, the RSS comparison, the deliveries
//! (lost, duplicated, out of order) across the resumes, publishing, and the verdict; as a table
//! and as the `--json` report.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::figures::latency::Summary;
use crate::figures::report::{self, BenchCost, Table};
use crate::modes::soak::samples::{clock, mib, Sample};
use crate::modes::soak::verdict::RssCheck;
use crate::publisher::publish::Published;

/// The resumes asked for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResumeShape {
    /// Percent of the subscribers each round resumes.
    pub percent: f64,
    /// Seconds between rounds.
    pub every_seconds: f64,
    /// Seconds a round's resumes are spread over.
    pub spread_seconds: f64,
    /// Seed of the picks.
    pub seed: u64,
}

/// The figures of a `soak`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// N.
    pub subscribers: u64,
    /// M.
    pub matches: u64,
    /// R, events per second per match.
    pub rate_per_match: f64,
    /// Minutes of publishing asked for.
    pub minutes: f64,
    /// Events per match (R × the minutes), a stop after them.
    pub events_per_match: u64,
    /// The resumes asked for.
    pub resume: ResumeShape,
    /// Seconds between samples.
    pub sample_every_seconds: f64,
    /// The server's pid.
    pub server_pid: u32,
    /// Its command line (`/proc/PID/cmdline`, tokens hidden).
    pub server_command: Vec<String>,
    /// Its soft open-files limit when the run started.
    pub server_open_files_limit: Option<u64>,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// The end's RSS against the reference's (null: no sample after the reference).
    pub rss: Option<RssCheck>,
    /// The server's RSS once every subscriber had left, KiB.
    pub rss_after_kib: u64,
    /// Subscribers whose status arrived.
    pub connected: u64,
    /// Subscribers that failed.
    pub failed: u64,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// `ERROR:` lines by reason.
    pub error_lines: BTreeMap<String, u64>,
    /// Framing violations by description.
    pub framing: BTreeMap<String, u64>,
    /// connected × events per match.
    pub expected: u64,
    /// Stamped events received (duplicates included).
    pub delivered: u64,
    /// expected − (delivered − duplicated).
    pub lost: u64,
    /// Events whose seq was not above the last one its subscriber had seen.
    pub duplicated: u64,
    /// Events whose seq skipped ahead.
    pub out_of_order: u64,
    /// Resumes done (SINCE commands sent on a new connection).
    pub resumes: u64,
    /// Delivery latency, from each event's scheduled time.
    pub latency: Summary,
    /// What publishing did.
    pub publish: Published,
    /// The CSV written, if any.
    pub csv: Option<String>,
    /// The chart written, if any.
    pub chart: Option<String>,
    /// What the bench cost.
    pub bench: BenchCost,
    /// Why the soak failed (empty: it passed; the exit status is 1 unless empty).
    pub problems: Vec<String>,
}

impl Report {
    /// Why the soak failed.
    pub fn problems(&self) -> Vec<String> {
        self.problems.clone()
    }

    /// The table printed at the end.
    pub fn table(&self) -> String {
        let mut t = Table::kv("soak");
        t.row([
            "shape".into(),
            format!(
                "{} subscribers over {} matches, {} events/s each for {} min ({} events per \
                 match)",
                self.subscribers,
                self.matches,
                self.rate_per_match,
                self.minutes,
                self.events_per_match
            ),
        ]);
        t.row([
            "resumes".into(),
            format!(
                "{} % every {} s, spread over {} s (seed {}): {} done",
                self.resume.percent,
                self.resume.every_seconds,
                self.resume.spread_seconds,
                self.resume.seed,
                self.resumes
            ),
        ]);
        t.row([
            "server".into(),
            format!(
                "pid {}, open-files limit {}",
                self.server_pid,
                self.server_open_files_limit
                    .map_or("unknown".into(), |l| l.to_string())
            ),
        ]);
        self.sample_rows(&mut t);
        t.row([
            "deliveries".into(),
            format!(
                "expected {}, delivered {}, lost {}, duplicated {}, out of order {}",
                self.expected, self.delivered, self.lost, self.duplicated, self.out_of_order
            ),
        ]);
        t.row([
            "subscribers".into(),
            format!(
                "connected {}, failed {} ({})",
                self.connected,
                self.failed,
                report::counts(&self.failures)
            ),
        ]);
        if !self.error_lines.is_empty() {
            t.row(["error lines".into(), report::counts(&self.error_lines)]);
        }
        if !self.framing.is_empty() {
            t.row(["framing errors".into(), report::counts(&self.framing)]);
        }
        report::latency_rows(&mut t, "delivery latency", &self.latency);
        t.row([
            "published".into(),
            format!(
                "{} events ({} accepted, {} stops), achieved {:.1} of {:.1} events/s",
                self.publish.events_sent,
                self.publish.events_ok,
                self.publish.stops_ok,
                self.publish.achieved_events_per_second,
                self.publish.target_events_per_second.unwrap_or(0.0)
            ),
        ]);
        for (name, path) in [("csv", &self.csv), ("chart", &self.chart)] {
            if let Some(p) = path {
                t.row([name.to_owned(), p.clone()]);
            }
        }
        t.row(["bench".into(), report::cost_line(&self.bench)]);
        let mut out = t.render();
        out.push_str(&report::result_lines(&self.problems));
        out
    }

    /// The samples' rows: how many, open files, RSS at the reference and at the end.
    fn sample_rows(&self, t: &mut Table) {
        let open = self.samples.iter().map(|s| s.open_files);
        t.row([
            "samples".into(),
            format!(
                "{} every {} s; server open files {}..{}",
                self.samples.len(),
                self.sample_every_seconds,
                open.clone().min().unwrap_or(0),
                open.max().unwrap_or(0)
            ),
        ]);
        match &self.rss {
            Some(r) => {
                let short = if r.short_run {
                    " (a short run: the first sample after its warm-up, not 5 min)"
                } else {
                    ""
                };
                t.row([
                    "rss reference".into(),
                    format!(
                        "{} at {}{short}",
                        mib(r.reference_kib),
                        clock(r.reference_s)
                    ),
                ]);
                t.row([
                    "rss end".into(),
                    format!(
                        "{} at {}: {:.3} x the reference ({:+.2} %, tolerance ±{} %)",
                        mib(r.end_kib),
                        clock(r.end_s),
                        r.ratio,
                        (r.ratio - 1.0) * 100.0,
                        r.tolerance_percent
                    ),
                ]);
                if let Some(b) = r.bytes_per_event {
                    t.row([
                        "rss growth".into(),
                        format!("{b:.0} B per event published after the reference"),
                    ]);
                }
            }
            None => t.row(["rss", "no comparison (no sample after the reference)"]),
        }
        t.row([
            "rss after".into(),
            format!("{} once every subscriber had left", mib(self.rss_after_kib)),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_states_the_comparison_and_the_result() {
        let mut r = Report {
            subscribers: 200,
            matches: 2,
            rss: Some(RssCheck {
                reference_s: 30.0,
                reference_kib: 102_400,
                short_run: true,
                end_s: 110.0,
                end_kib: 103_424,
                ratio: 1.01,
                within: true,
                bytes_per_event: Some(512.0),
                tolerance_percent: 5.0,
            }),
            ..Report::default()
        };
        let text = r.table();
        assert!(text.contains("100.0 MiB at 0:30 (a short run"), "{text}");
        assert!(text.contains("1.010 x the reference (+1.00 %"), "{text}");
        assert!(text.contains("512 B per event published"), "{text}");
        assert!(text.ends_with("result: PASS\n"), "{text}");
        r.problems = vec!["3 events lost".into()];
        let text = r.table();
        assert!(text.contains("result: FAIL (1 problem(s))\n  - 3 events lost"));
    }
}
