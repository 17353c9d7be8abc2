//! `--fail-on`: pass/fail criteria for a CI job, as k6 thresholds are, e.g.
//! `p99<20ms,lost=0,errors<0.1%`. Each criterion is `<metric><op><value>[unit]`, checked
//! against every run of matchstream (a stall in any one run fails the job); the bench exits
//! non-zero naming each criterion a run broke.
//!
//! Metrics: `p50`, `p90`, `p95`, `p99`, `p99.9`, `max` (delivery latency; units `us`, `ms`
//! (the default), `s`); `lost`, `duplicated`, `out_of_order`, `over_100ms`, `over_1s`
//! (deliveries: a count, or with `%` a share of the expected deliveries); `failed`
//! (subscribers: a count, or a share of them); `errors` (publishes refused, unanswered or never
//! sent: a count, or a share of the planned publishes); `deliveries_per_second`; `achieved`
//! and `accepted` (paced: the rate the bench published at, and the rate the server answered
//! at, in % of the target). Operators: `<`, `<=`, `>`, `>=`, `=`.

use crate::modes::fanout::measured::Figures;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=` (or `==`)
    Eq,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()).max(1.0),
        }
    }
}

/// What a criterion measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency quantile (0..=1; 1 is the max), in ms.
    Latency(f64),
    /// A count of deliveries (`lost`, ...), by name.
    Deliveries(&'static str),
    /// Failed subscribers.
    Failed,
    /// Publishes refused, unanswered or never sent.
    Errors,
    /// Deliveries per second.
    Rate,
    /// Achieved publish rate, % of target.
    Achieved,
    /// Accepted (answered) publish rate, % of target.
    Accepted,
}

/// One criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// What it measures.
    pub metric: Metric,
    /// How it compares.
    pub op: Op,
    /// The bound (ms for latencies, a fraction in % when `percent`).
    pub value: f64,
    /// The bound is a percentage of a total.
    pub percent: bool,
    /// As written.
    pub text: String,
}

/// The criteria of one `--fail-on`.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria(pub Vec<Threshold>);

impl Criteria {
    /// Parses `--fail-on` (see [`parse`]).
    pub fn parse(spec: &str) -> Result<Criteria, String> {
        parse(spec).map(Criteria)
    }

    /// Why run `f` breaks the criteria (empty when it meets them all).
    pub fn check(&self, f: &Figures) -> Vec<String> {
        self.0.iter().filter_map(|t| t.check(f)).collect()
    }
}

/// Parses `--fail-on`: criteria separated by commas.
pub fn parse(spec: &str) -> Result<Vec<Threshold>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_one)
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| {
            if v.is_empty() {
                Err(format!("{spec:?}: no criterion"))
            } else {
                Ok(v)
            }
        })
}

fn parse_one(text: &str) -> Result<Threshold, String> {
    let at = text
        .find(['<', '>', '='])
        .ok_or_else(|| format!("{text:?}: expected <metric><op><value>, e.g. p99<20ms"))?;
    let (name, rest) = text.split_at(at);
    let (op, value) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("=", Op::Eq),
    ]
    .iter()
    .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.trim())))
    .ok_or_else(|| format!("{text:?}: bad operator"))?;
    let name = name.trim();
    let metric = match name {
        "p50" => Metric::Latency(0.5),
        "p90" => Metric::Latency(0.9),
        "p95" => Metric::Latency(0.95),
        "p99" => Metric::Latency(0.99),
        "p99.9" => Metric::Latency(0.999),
        "p99.99" => Metric::Latency(0.9999),
        "max" => Metric::Latency(1.0),
        "lost" => Metric::Deliveries("lost"),
        "duplicated" => Metric::Deliveries("duplicated"),
        "out_of_order" => Metric::Deliveries("out_of_order"),
        "over_100ms" => Metric::Deliveries("over_100ms"),
        "over_1s" => Metric::Deliveries("over_1s"),
        "failed" => Metric::Failed,
        "errors" => Metric::Errors,
        "deliveries_per_second" | "rate" => Metric::Rate,
        "achieved" => Metric::Achieved,
        "accepted" => Metric::Accepted,
        other => return Err(format!("{text:?}: unknown metric {other:?}")),
    };
    let (number, unit) = split_unit(value);
    let mut v: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: bad number {number:?}"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{text:?}: the bound must be a number >= 0"));
    }
    let mut percent = false;
    match (metric, unit) {
        (Metric::Latency(_), "" | "ms") => {}
        (Metric::Latency(_), "us") => v /= 1000.0,
        (Metric::Latency(_), "s") => v *= 1000.0,
        (Metric::Deliveries(_) | Metric::Failed | Metric::Errors, "%") => percent = true,
        (Metric::Achieved | Metric::Accepted, "%" | "") => percent = true,
        (_, "") => {}
        (_, u) => return Err(format!("{text:?}: unit {u:?} does not fit {name}")),
    }
    Ok(Threshold {
        metric,
        op,
        value: v,
        percent,
        text: text.to_owned(),
    })
}

fn split_unit(value: &str) -> (&str, &str) {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    (value[..end].trim(), value[end..].trim())
}

impl Threshold {
    /// The measured value this criterion compares, in its own terms.
    pub fn measure(&self, f: &Figures) -> f64 {
        let share = |n: u64, of: u64| 100.0 * n as f64 / of.max(1) as f64;
        match self.metric {
            Metric::Latency(q) if q >= 1.0 => f.latency.max_ms,
            Metric::Latency(_) => f.histogram.quantile_ms(self.quantile()),
            Metric::Deliveries(name) => {
                let n = match name {
                    "lost" => f.lost,
                    "duplicated" => f.duplicated,
                    "out_of_order" => f.out_of_order,
                    "over_100ms" => f.over_100ms,
                    _ => f.over_1s,
                };
                if self.percent {
                    share(n, f.expected)
                } else {
                    n as f64
                }
            }
            Metric::Failed if self.percent => share(f.failed, f.failed + f.connected),
            Metric::Failed => f.failed as f64,
            Metric::Errors => {
                let p = &f.publish;
                let n = p.refused.values().sum::<u64>() + p.errors.values().sum::<u64>() + p.unsent;
                if self.percent {
                    share(n, p.events_sent + p.unsent)
                } else {
                    n as f64
                }
            }
            Metric::Rate => f.deliveries_per_second,
            Metric::Achieved => f.publish.achieved_percent.unwrap_or(100.0),
            Metric::Accepted => f.publish.accepted_percent.unwrap_or(100.0),
        }
    }

    fn quantile(&self) -> f64 {
        match self.metric {
            Metric::Latency(q) => q,
            _ => 0.0,
        }
    }

    /// `None` if run `f` meets the criterion, else why not.
    pub fn check(&self, f: &Figures) -> Option<String> {
        let got = self.measure(f);
        if self.op.holds(got, self.value) {
            return None;
        }
        let unit = match (self.metric, self.percent) {
            (_, true) => " %",
            (Metric::Latency(_), _) => " ms",
            _ => "",
        };
        Some(format!(
            "{} run {}: --fail-on {} broken: {got:.3}{unit}",
            f.system, f.run, self.text
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_parse() {
        let t = parse("p99<20ms, lost=0 ,errors<0.1%").expect("valid");
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[0].metric, t[0].op, t[0].value),
            (Metric::Latency(0.99), Op::Lt, 20.0)
        );
        assert_eq!(
            (t[1].metric, t[1].op, t[1].value),
            (Metric::Deliveries("lost"), Op::Eq, 0.0)
        );
        assert_eq!(
            (t[2].metric, t[2].op, t[2].percent),
            (Metric::Errors, Op::Lt, true)
        );
        assert!((t[2].value - 0.1).abs() < 1e-12);
        // (text, metric, op, value in ms or units, percent)
        let cases: [(&str, Metric, Op, f64, bool); 8] = [
            ("p50<=1s", Metric::Latency(0.5), Op::Le, 1000.0, false),
            ("p99.9<500us", Metric::Latency(0.999), Op::Lt, 0.5, false),
            ("max<2000", Metric::Latency(1.0), Op::Lt, 2000.0, false),
            (
                "over_1s==0",
                Metric::Deliveries("over_1s"),
                Op::Eq,
                0.0,
                false,
            ),
            ("failed<1%", Metric::Failed, Op::Lt, 1.0, true),
            ("rate>=100000", Metric::Rate, Op::Ge, 100_000.0, false),
            ("achieved>99", Metric::Achieved, Op::Gt, 99.0, true),
            (
                "out_of_order=0",
                Metric::Deliveries("out_of_order"),
                Op::Eq,
                0.0,
                false,
            ),
        ];
        for (text, metric, op, value, percent) in cases {
            let t = &parse(text).expect(text)[0];
            assert_eq!((t.metric, t.op, t.percent), (metric, op, percent), "{text}");
            assert!((t.value - value).abs() < 1e-9, "{text}: {}", t.value);
        }
        for bad in [
            "", "p99", "p98<1ms", "p99<fast", "lost<2ms", "p99<-1ms", "p99!1", "rate>5%",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn criteria_check_a_run() {
        let mut f = Figures {
            system: "matchstream".into(),
            run: 3,
            expected: 1000,
            lost: 2,
            connected: 10,
            ..Figures::default()
        };
        for us in 1..=100 {
            f.histogram.record_us(us * 1000);
        }
        f.latency = f.histogram.summary();
        f.publish.refused.insert("404".into(), 1);
        f.publish.events_sent = 2000;
        let ok = |s: &str| parse(s).expect(s)[0].check(&f);
        assert_eq!(ok("p99<=100ms"), None);
        let broke = ok("p99<20ms").expect("broken");
        assert!(
            broke.starts_with("matchstream run 3: --fail-on p99<20ms broken: 99."),
            "{broke}"
        );
        assert!(ok("lost=0").is_some());
        assert_eq!(ok("lost<0.5%"), None); // 0.2 %
        assert!(ok("lost<0.1%").expect("broken").ends_with("0.200 %"));
        assert_eq!(ok("errors<0.1%"), None); // 1 of 2000
        assert!(ok("errors=0").is_some());
        assert_eq!(ok("max<101"), None);
        assert_eq!(ok("achieved>=95"), None); // no target: not judged
        let mut slow = f.clone();
        slow.publish.accepted_percent = Some(50.0);
        let t = parse("accepted>=95").expect("valid");
        assert!(t[0].check(&slow).expect("broken").ends_with("50.000 %"));
    }
}
