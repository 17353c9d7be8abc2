//! Latency histograms: hdrhistogram in microseconds (1 µs to 1 h, 3 significant digits),
//! serialized whole (V2 format, base64) so that worker processes hand them to the coordinator,
//! which merges them exactly instead of averaging percentiles; and the realtime clock every
//! stamp is written with.

use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest value kept, in microseconds (one hour); larger values saturate.
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram (microseconds).
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Latency {
        Latency::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        // The bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low,
        // sigfig <= 5), so this cannot fail.
        match Histogram::new_with_bounds(1, MAX_US, 3) {
            Ok(h) => Latency(h),
            Err(e) => panic!("hdrhistogram refused constant bounds: {e:?}"),
        }
    }

    /// Records a duration.
    pub fn record(&mut self, d: Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(MAX_US));
    }

    /// Records a value in microseconds (0 counts as 1 µs).
    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(1, MAX_US));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Both histograms have the same bounds, so adding cannot fail; if it ever did, the
        // values are added one bucket at a time, saturating.
        if self.0.add(&other.0).is_err() {
            for v in other.0.iter_recorded() {
                self.0
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Forgets every value.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Values above `ms` milliseconds (to the histogram's precision, 3 significant digits: a
    /// value in the same bucket as the limit counts as not above it).
    pub fn count_above_ms(&self, ms: u64) -> u64 {
        let limit = ms.saturating_mul(1000);
        self.0.len() - self.0.count_between(0, limit).min(self.0.len())
    }

    /// The percentile distribution in HdrHistogram's text format (`.hgrm`, as wrk2 and
    /// HdrHistogram's own `outputPercentileDistribution` print it), values in milliseconds.
    pub fn hgrm(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
        if self.0.is_empty() {
            out.push_str("#[Mean    =        0.000, StdDeviation   =        0.000]\n");
            out.push_str("#[Max     =        0.000, Total count    =            0]\n");
            return out;
        }
        let mut total = 0u64;
        for v in self.0.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = v.value_iterated_to() as f64 / 1000.0;
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.3} {q:14.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.3} {q:14.12} {total:10}");
            }
        }
        let _ = writeln!(
            out,
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
            self.0.mean() / 1000.0,
            self.0.stdev() / 1000.0
        );
        let _ = writeln!(
            out,
            "#[Max     = {:12.3}, Total count    = {:12}]",
            self.0.max() as f64 / 1000.0,
            self.0.len()
        );
        let _ = writeln!(
            out,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            self.0.buckets(),
            // The counts array holds (buckets + 1) × sub-buckets / 2 slots.
            2 * self.0.distinct_values() / (self.0.buckets() as usize + 1)
        );
        out
    }

    /// The value at quantile `q` (0..=1) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    /// The summary printed in tables and written in reports.
    pub fn summary(&self) -> Summary {
        if self.0.is_empty() {
            return Summary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            count: self.0.len(),
            min_ms: ms(self.0.min()),
            mean_ms: self.0.mean() / 1000.0,
            p50_ms: self.quantile_ms(0.50),
            p90_ms: self.quantile_ms(0.90),
            p95_ms: self.quantile_ms(0.95),
            p99_ms: self.quantile_ms(0.99),
            p99_9_ms: self.quantile_ms(0.999),
            p99_99_ms: self.quantile_ms(0.9999),
            max_ms: ms(self.0.max()),
        }
    }
}

/// Percentiles of one latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Values recorded.
    pub count: u64,
    /// Smallest value.
    pub min_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    #[serde(default)]
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p99_9_ms: f64,
    /// 99.99th percentile.
    pub p99_99_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| serde::ser::Error::custom(format!("histogram: {e:?}")))?;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Latency, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| serde::de::Error::custom(format!("histogram: {e:?}")))?;
        let mut out = Latency::new();
        for v in h.iter_recorded() {
            out.0
                .saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
        Ok(out)
    }
}

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME, shared by every process of a run): the
/// clock every stamp is written with and every delivery's latency is read against.
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let mut l = Latency::new();
        for us in 1..=1000 {
            l.record_us(us * 1000);
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
        assert_eq!(Latency::new().summary(), Summary::default());
    }

    #[test]
    fn counts_above_a_threshold_and_hgrm_text() {
        let mut l = Latency::new();
        for ms in [1, 5, 50, 99, 100, 101, 250, 999, 1000, 1001, 4000] {
            l.record_us(ms * 1000);
        }
        assert_eq!(l.count_above_ms(100), 6);
        assert_eq!(l.count_above_ms(1000), 2);
        assert_eq!(l.count_above_ms(10_000), 0);
        assert_eq!(Latency::new().count_above_ms(1), 0);
        let text = l.hgrm();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(rows.len() > 5, "{text}");
        let last = rows.last().expect("rows");
        assert_eq!(last[1], "1.000000000000", "{text}");
        assert_eq!(last[2], "11");
        assert!((last[0].parse::<f64>().expect("value") - 4000.0).abs() < 4.0);
        assert!(text.contains("#[Max     =     4001."), "{text}");
        assert!(Latency::new().hgrm().contains("Total count"));
    }

    #[test]
    fn histograms_survive_json_and_merge_exactly() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for v in 0..500 {
            a.record_us(100 + v);
            b.record_us(10_000 + v);
        }
        let text = serde_json::to_string(&b).expect("serialize");
        let back: Latency = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back.count(), 500);
        a.merge(&back);
        assert_eq!(a.count(), 1000);
        assert!(a.quantile_ms(0.25) < 1.0);
        assert!(a.quantile_ms(0.75) > 9.9);
    }
}
