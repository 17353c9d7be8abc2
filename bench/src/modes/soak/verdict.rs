//! `soak`'s verdict, from plain figures: which sample is the RSS reference, whether the end's
//! RSS stayed within the tolerance of it, and every reason the run fails (loss, duplicates,
//! disorder, failed subscribers and ERROR lines, publishing, the RSS).

use serde::Serialize;

use crate::modes::soak::samples::Sample;

/// Runs shorter than the reference time plus this take a short warm-up instead.
const SHORT_MARGIN_S: f64 = 60.0;
/// The longest warm-up of a short run, in seconds.
const MAX_WARMUP_S: f64 = 60.0;

/// When the reference sample is taken: `(seconds after the first publish, short run)`. A run
/// of at least `reference_s` plus a minute takes `reference_s`; a shorter one a warm-up of a
/// quarter of the run, at most a minute.
pub fn reference_time(duration_s: f64, reference_s: f64) -> (f64, bool) {
    if duration_s >= reference_s + SHORT_MARGIN_S {
        (reference_s, false)
    } else {
        ((duration_s / 4.0).min(MAX_WARMUP_S), true)
    }
}

/// The RSS comparison of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RssCheck {
    /// Seconds after the first publish the reference was taken.
    pub reference_s: f64,
    /// The reference's RSS, KiB.
    pub reference_kib: u64,
    /// Whether the run was too short for the reference time asked and took the first sample
    /// after a warm-up instead.
    pub short_run: bool,
    /// Seconds after the first publish of the last sample (the end).
    pub end_s: f64,
    /// The end's RSS, KiB.
    pub end_kib: u64,
    /// end / reference.
    pub ratio: f64,
    /// Whether |end − reference| is within the tolerance.
    pub within: bool,
    /// The RSS growth from the reference to the end per event published in between, bytes
    /// (null when none was): growth that follows the events is the history the server keeps,
    /// growth that does not is something else.
    pub bytes_per_event: Option<f64>,
    /// The tolerance, percent of the reference.
    pub tolerance_percent: f64,
}

/// Compares the last sample's RSS with the reference's: the first sample at or after
/// [`reference_time`]. `None` when no sample follows the reference (too short a run, or no
/// RSS read).
pub fn rss_check(
    samples: &[Sample],
    duration_s: f64,
    reference_s: f64,
    tolerance_percent: f64,
) -> Option<RssCheck> {
    let (at, short_run) = reference_time(duration_s, reference_s);
    let i = samples.iter().position(|s| s.time_s >= at - 1e-9)?;
    let (reference, end) = (samples[i], *samples.last()?);
    if i + 1 == samples.len() || reference.rss_kib == 0 {
        return None;
    }
    let ratio = end.rss_kib as f64 / reference.rss_kib as f64;
    let events = end
        .events_published
        .saturating_sub(reference.events_published);
    let growth = (end.rss_kib as f64 - reference.rss_kib as f64) * 1024.0;
    Some(RssCheck {
        reference_s: reference.time_s,
        reference_kib: reference.rss_kib,
        short_run,
        end_s: end.time_s,
        end_kib: end.rss_kib,
        ratio,
        within: (ratio - 1.0).abs() * 100.0 <= tolerance_percent,
        bytes_per_event: (events > 0).then(|| growth / events as f64),
        tolerance_percent,
    })
}

/// What the verdict is made of.
#[derive(Debug, Clone, Default)]
pub struct Figures<'a> {
    /// Subscribers planned.
    pub subscribers: u64,
    /// Subscribers whose status arrived.
    pub connected: u64,
    /// Subscribers that failed (an ERROR line, a reset, a closed connection, a timeout...).
    pub failed: u64,
    /// `ERROR:` lines, all reasons.
    pub error_lines: u64,
    /// Deliveries missing.
    pub lost: u64,
    /// Deliveries received twice.
    pub duplicated: u64,
    /// Deliveries ahead of a missing one.
    pub out_of_order: u64,
    /// The RSS comparison (`None`: none could be made).
    pub rss: Option<&'a RssCheck>,
    /// The publisher's problems (refused, unanswered, missed rate).
    pub publishing: Vec<String>,
    /// Why the run ended early, if it did.
    pub interrupted: Option<String>,
}

/// Every reason the run fails; empty: it passed.
pub fn problems(f: &Figures<'_>) -> Vec<String> {
    let mut out: Vec<String> = f.interrupted.iter().cloned().collect();
    if f.connected < f.subscribers {
        out.push(format!(
            "{} of {} subscribers connected",
            f.connected, f.subscribers
        ));
    }
    let counts = [
        (f.lost, "events lost"),
        (f.duplicated, "events duplicated"),
        (f.out_of_order, "events out of order"),
        (f.failed, "subscribers failed"),
        (f.error_lines, "ERROR lines received"),
    ];
    out.extend(
        counts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}")),
    );
    out.extend(f.publishing.iter().cloned());
    match f.rss {
        None => out.push(
            "no RSS comparison: no sample after the reference (run longer, or sample more \
             often)"
                .into(),
        ),
        Some(r) if !r.within => out.push(format!(
            "server RSS at the end ({} KiB at {:.0} s) is {:+.1} % of the reference ({} KiB at \
             {:.0} s), beyond ±{} %",
            r.end_kib,
            r.end_s,
            (r.ratio - 1.0) * 100.0,
            r.reference_kib,
            r.reference_s,
            r.tolerance_percent
        )),
        Some(_) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rss: &[u64], every: f64) -> Vec<Sample> {
        rss.iter()
            .enumerate()
            .map(|(i, &rss_kib)| Sample {
                time_s: i as f64 * every,
                rss_kib,
                events_published: i as u64 * 100,
                ..Sample::default()
            })
            .collect()
    }

    #[test]
    fn the_reference_is_five_minutes_in_unless_the_run_is_short() {
        // (run seconds, reference asked, reference taken, short)
        let cases = [
            (1800.0, 300.0, 300.0, false),
            (360.0, 300.0, 300.0, false),
            (359.0, 300.0, 60.0, true), // a quarter of the run, at most a minute
            (120.0, 300.0, 30.0, true),
            (20.0, 300.0, 5.0, true),
            (200.0, 300.0, 50.0, true), // a quarter of the run
        ];
        for (run, asked, want, short) in cases {
            let got = reference_time(run, asked);
            assert!(
                (got.0 - want).abs() < 1e-9 && got.1 == short,
                "{run} s: {got:?}"
            );
        }
    }

    #[test]
    fn the_end_is_compared_with_the_reference() {
        // 30 minutes sampled every 10 s: the reference is the sample at 300 s (index 30).
        let mut rss = vec![100_000; 180];
        rss[30] = 200_000;
        rss[179] = 209_000; // +4.5 %
        let s = samples(&rss, 10.0);
        let r = rss_check(&s, 1800.0, 300.0, 5.0).expect("a check");
        assert_eq!((r.reference_s, r.reference_kib), (300.0, 200_000));
        assert_eq!((r.end_s, r.end_kib), (1790.0, 209_000));
        assert!(r.within && !r.short_run, "{r:?}");
        // 9,000 KiB over 149 samples of 100 events each.
        let per_event = r.bytes_per_event.expect("events were published");
        assert!(
            (per_event - 9_000.0 * 1024.0 / 14_900.0).abs() < 1e-6,
            "{per_event}"
        );
        // +5.5 % and −5.5 % are both beyond 5 %.
        for end in [211_000, 189_000] {
            let mut rss = rss.clone();
            rss[179] = end;
            let r = rss_check(&samples(&rss, 10.0), 1800.0, 300.0, 5.0).expect("a check");
            assert!(!r.within, "{end}: {r:?}");
        }
    }

    #[test]
    fn a_short_run_takes_the_first_sample_after_its_warm_up() {
        // 2 minutes sampled every 10 s: warm-up 30 s, so the sample at 30 s.
        let s = samples(&[10, 20, 30, 40, 41, 42, 43, 44, 45, 46, 47, 41], 10.0);
        let r = rss_check(&s, 120.0, 300.0, 5.0).expect("a check");
        assert!(r.short_run);
        assert_eq!((r.reference_s, r.reference_kib, r.end_kib), (30.0, 40, 41));
        assert!(r.within);
        // No sample after the reference: no comparison.
        assert_eq!(rss_check(&s[..4], 120.0, 300.0, 5.0), None);
        assert_eq!(rss_check(&[], 120.0, 300.0, 5.0), None);
    }

    #[test]
    fn each_failure_is_a_reason() {
        let within = RssCheck {
            reference_s: 300.0,
            reference_kib: 100,
            short_run: false,
            end_s: 1790.0,
            end_kib: 104,
            ratio: 1.04,
            within: true,
            bytes_per_event: Some(2.0),
            tolerance_percent: 5.0,
        };
        let clean = Figures {
            subscribers: 10,
            connected: 10,
            rss: Some(&within),
            ..Figures::default()
        };
        assert!(problems(&clean).is_empty(), "{:?}", problems(&clean));
        let grown = RssCheck {
            end_kib: 110,
            ratio: 1.1,
            within: false,
            ..within.clone()
        };
        // (what went wrong, the reason named)
        let cases: Vec<(Figures<'_>, &str)> = vec![
            (
                Figures {
                    lost: 3,
                    ..clean.clone()
                },
                "3 events lost",
            ),
            (
                Figures {
                    duplicated: 1,
                    ..clean.clone()
                },
                "1 events duplicated",
            ),
            (
                Figures {
                    out_of_order: 2,
                    ..clean.clone()
                },
                "2 events out of order",
            ),
            (
                Figures {
                    failed: 1,
                    error_lines: 1,
                    ..clean.clone()
                },
                "1 ERROR lines received",
            ),
            (
                Figures {
                    connected: 9,
                    ..clean.clone()
                },
                "9 of 10 subscribers connected",
            ),
            (
                Figures {
                    rss: Some(&grown),
                    ..clean.clone()
                },
                "is +10.0 % of the reference",
            ),
            (
                Figures {
                    rss: None,
                    ..clean.clone()
                },
                "no RSS comparison",
            ),
            (
                Figures {
                    publishing: vec!["2 publishes refused (404 2)".into()],
                    ..clean.clone()
                },
                "publishes refused",
            ),
            (
                Figures {
                    interrupted: Some("interrupted (Ctrl-C)".into()),
                    ..clean.clone()
                },
                "interrupted",
            ),
        ];
        for (f, want) in cases {
            let p = problems(&f).join("; ");
            assert!(p.contains(want), "{want}: {p}");
        }
    }
}
