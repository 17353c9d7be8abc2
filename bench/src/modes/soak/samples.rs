//! `soak`'s samples of the server while it publishes: one every `--sample-every` seconds from
//! the first publish, taken on a thread of their own ([`Sampler`]), each printed as a progress
//! line and written at once as a CSV row (so a run cut short keeps what it sampled), and at
//! the end drawn as an SVG chart with [`crate::figures::chart`].

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::figures::chart::{self, Axis, Chart, Series};
use crate::figures::progress::Live;
use crate::figures::sysstat;

/// The CSV's header line.
pub const CSV_HEADER: &str =
    "time_s,rss_kib,open_files,subscribers_connected,events_published,resumes_so_far";

/// One sample of the server and the load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds after the first publish (the sample's scheduled time).
    pub time_s: f64,
    /// The server's resident set (VmRSS), KiB.
    pub rss_kib: u64,
    /// Files the server has open (entries of /proc/PID/fd).
    pub open_files: u64,
    /// Subscribers with an open stream: open connections less resumes under way.
    pub subscribers_connected: u64,
    /// Events written to the server so far.
    pub events_published: u64,
    /// Resumes done so far.
    pub resumes_so_far: u64,
}

impl Sample {
    /// Its CSV row (no line end).
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{},{}",
            self.time_s,
            self.rss_kib,
            self.open_files,
            self.subscribers_connected,
            self.events_published,
            self.resumes_so_far
        )
    }
}

/// What the sampler reads and where it writes.
pub struct Sources {
    /// The server's pid.
    pub pid: u32,
    /// The shards' live counters.
    pub lives: Vec<Arc<Live>>,
    /// Events written so far (the publisher's counter).
    pub sent: Arc<AtomicU64>,
    /// The first publish.
    pub t0: Instant,
    /// Between samples.
    pub every: Duration,
    /// Samples are taken while less than this has passed since `t0` (the publishing time).
    pub until: Duration,
    /// The CSV file (its header already written).
    pub csv: Option<File>,
    /// Print a line per sample on stderr.
    pub print: bool,
    /// Subscribers planned and events planned, for the progress line.
    pub planned: (u64, u64),
    /// When the RSS reference is taken (seconds after t0), for the progress line.
    pub reference_s: f64,
}

/// The sampling thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<anyhow::Result<Vec<Sample>>>,
}

impl Sampler {
    /// Starts sampling.
    pub fn start(sources: Sources) -> anyhow::Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || sample_loop(sources, &flag))
            .context("starting the sampler")?;
        Ok(Sampler { stop, thread })
    }

    /// Stops sampling (at once, if it is waiting for the next sample) and returns the samples.
    pub fn finish(self) -> anyhow::Result<Vec<Sample>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => anyhow::bail!("the sampler panicked"),
        }
    }
}

fn sample_loop(mut src: Sources, stop: &AtomicBool) -> anyhow::Result<Vec<Sample>> {
    let mut samples: Vec<Sample> = Vec::new();
    for k in 0u32.. {
        let offset = src.every * k;
        if offset >= src.until {
            break;
        }
        let at = src.t0 + offset;
        while !stop.load(Ordering::Relaxed) && Instant::now() < at {
            std::thread::park_timeout(at.saturating_duration_since(Instant::now()));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let s = take(&src, offset.as_secs_f64());
        if let Some(f) = &mut src.csv {
            writeln!(f, "{}", s.csv_row())
                .and_then(|()| f.flush())
                .context("writing a CSV row")?;
        }
        if src.print {
            let reference = samples
                .iter()
                .find(|r| r.time_s >= src.reference_s - 1e-9)
                .copied();
            eprintln!("{}", line(&src, &s, reference));
        }
        samples.push(s);
    }
    Ok(samples)
}

/// Samples the server and the load now, `time_s` after the first publish.
fn take(src: &Sources, time_s: f64) -> Sample {
    let live = Live::sum(&src.lives);
    Sample {
        time_s,
        rss_kib: sysstat::rss_bytes(&src.pid.to_string()).unwrap_or(0) / 1024,
        open_files: sysstat::open_files(src.pid).unwrap_or(0),
        subscribers_connected: live.open.saturating_sub(live.resuming),
        events_published: src.sent.load(Ordering::Relaxed),
        resumes_so_far: live.resumes,
    }
}

/// The progress line of sample `s`; `reference` is the RSS reference once it was taken.
fn line(src: &Sources, s: &Sample, reference: Option<Sample>) -> String {
    let live = Live::sum(&src.lives);
    let rss = match reference {
        Some(r) if r.rss_kib > 0 && r.time_s < s.time_s => format!(
            "{} ({:+.1} % on {})",
            mib(s.rss_kib),
            (s.rss_kib as f64 / r.rss_kib as f64 - 1.0) * 100.0,
            clock(r.time_s)
        ),
        _ => mib(s.rss_kib),
    };
    format!(
        "soak {}/{}: server rss {rss}, open files {}, subscribers connected {}/{}, \
         published {}/{}, resumes {}, delivered {}, failed {}",
        clock(s.time_s),
        clock(src.until.as_secs_f64()),
        s.open_files,
        s.subscribers_connected,
        src.planned.0,
        s.events_published,
        src.planned.1,
        s.resumes_so_far,
        live.delivered,
        live.failed
    )
}

/// `312.4 MiB`.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `m:ss`.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// Creates the CSV file with its header.
pub fn create_csv(path: &std::path::Path) -> anyhow::Result<File> {
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{CSV_HEADER}").with_context(|| format!("writing {}", path.display()))?;
    Ok(f)
}

/// The SVG chart of the samples: RSS (MiB, left axis), open files and subscribers connected
/// (right axis) over time.
pub fn render_chart(title: &str, samples: &[Sample]) -> String {
    let values = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
    let series = [
        Series {
            name: "server RSS (MiB, left)",
            color: "#c0392b",
            right_axis: false,
            values: values(|s| s.rss_kib as f64 / 1024.0),
        },
        Series {
            name: "server open files (right)",
            color: "#1f5fbf",
            right_axis: true,
            values: values(|s| s.open_files as f64),
        },
        Series {
            name: "subscribers connected (right)",
            color: "#2a9d4b",
            right_axis: true,
            values: values(|s| s.subscribers_connected as f64),
        },
    ];
    let xs: Vec<u64> = samples.iter().map(|s| s.time_s.round() as u64).collect();
    chart::render(&Chart {
        title,
        x_label: "seconds since the first publish",
        xs: &xs,
        left: Axis::auto(" MiB"),
        right: Axis::auto(""),
        series: &series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_header() {
        let s = Sample {
            time_s: 10.0,
            rss_kib: 320_512,
            open_files: 19_046,
            subscribers_connected: 19_000,
            events_published: 400,
            resumes_so_far: 950,
        };
        assert_eq!(s.csv_row(), "10,320512,19046,19000,400,950");
        assert_eq!(
            CSV_HEADER.split(',').count(),
            s.csv_row().split(',').count()
        );
        assert_eq!(
            Sample { time_s: 2.5, ..s }.csv_row().split(',').next(),
            Some("2.5")
        );
    }

    #[test]
    fn clocks_and_sizes_read_well() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(1790.0), "29:50");
        assert_eq!(clock(65.4), "1:05");
        assert_eq!(mib(320_512), "313.0 MiB");
    }

    #[test]
    fn the_chart_draws_every_sample() {
        let samples: Vec<Sample> = (0..12)
            .map(|i| Sample {
                time_s: f64::from(i) * 10.0,
                rss_kib: 300 * 1024,
                open_files: 19_050,
                subscribers_connected: 19_000,
                ..Sample::default()
            })
            .collect();
        let svg = render_chart("soak", &samples);
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(
            svg.contains(">110</text>"),
            "the last sample's time labels the axis"
        );
        assert!(svg.contains(" MiB</text>") && svg.contains(">20000</text>"));
    }
}
