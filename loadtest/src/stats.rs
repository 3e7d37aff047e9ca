//! Counts and latency distributions, merged from every connection, and the
//! summary printed at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Failures shown in full in the summary; the rest are only counted.
const KEPT_FAILURES: usize = 10;

/// What one connection saw.
pub struct Stats {
    pub requests: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub integrity_failures: u64,
    pub abandoned: u64,
    pub bytes: u64,
    /// Microseconds from sending to the end of the body (or abandonment).
    pub latency: Histogram<u64>,
    /// Microseconds from sending to the first body byte.
    pub ttfb: Histogram<u64>,
    pub failures: Vec<String>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            requests: 0,
            errors: BTreeMap::new(),
            integrity_failures: 0,
            abandoned: 0,
            bytes: 0,
            latency: histogram(),
            ttfb: histogram(),
            failures: Vec::new(),
        }
    }
}

/// Microseconds from 1 to one hour, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 3_600_000_000)
}

impl Stats {
    pub fn record_latency(&mut self, latency: Duration) {
        let _ = self.latency.record(micros(latency));
    }

    pub fn record_ttfb(&mut self, ttfb: Duration) {
        let _ = self.ttfb.record(micros(ttfb));
    }

    pub fn error(&mut self, kind: &'static str, detail: String) {
        *self.errors.entry(kind).or_default() += 1;
        self.keep(detail);
    }

    pub fn integrity_failure(&mut self, detail: String) {
        self.integrity_failures += 1;
        self.keep(detail);
    }

    fn keep(&mut self, detail: String) {
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(detail);
        }
    }

    pub fn merge(&mut self, other: Stats) {
        self.requests += other.requests;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.integrity_failures += other.integrity_failures;
        self.abandoned += other.abandoned;
        self.bytes += other.bytes;
        let _ = self.latency.add(&other.latency);
        let _ = self.ttfb.add(&other.ttfb);
        for failure in other.failures {
            self.keep(failure);
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Whether every request was answered right.
    pub fn passed(&self) -> bool {
        self.error_count() == 0 && self.integrity_failures == 0
    }
}

/// The run as a whole.
pub struct Summary {
    pub url: String,
    pub pattern: String,
    pub concurrency: usize,
    pub elapsed: Duration,
    pub object_size: u64,
    pub verified_against: Option<String>,
    pub stats: Stats,
}

/// Milliseconds at the usual quantiles of a histogram of microseconds.
fn quantiles(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    if h.is_empty() {
        return json!({ "p50": null, "p90": null, "p99": null, "max": null, "mean": null });
    }
    json!({
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "max": ms(h.max()),
        "mean": h.mean().round() / 1000.0,
    })
}

impl Summary {
    fn seconds(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn to_json(&self) -> Value {
        let s = &self.stats;
        json!({
            "url": self.url,
            "pattern": self.pattern,
            "concurrency": self.concurrency,
            "duration_secs": (self.seconds() * 1000.0).round() / 1000.0,
            "object_size": self.object_size,
            "verified_against": self.verified_against,
            "requests": s.requests,
            "errors": s.error_count(),
            "errors_by_kind": s.errors,
            "integrity_failures": s.integrity_failures,
            "abandoned": s.abandoned,
            "bytes": s.bytes,
            "rps": (s.requests as f64 / self.seconds() * 10.0).round() / 10.0,
            "bytes_per_sec": (s.bytes as f64 / self.seconds()).round(),
            "latency_ms": quantiles(&s.latency),
            "ttfb_ms": quantiles(&s.ttfb),
            "failures": s.failures,
            "passed": s.passed(),
        })
    }

    pub fn to_text(&self) -> String {
        let s = &self.stats;
        let secs = self.seconds();
        let mut out = String::new();
        let _ = writeln!(out, "{} ({} bytes)", self.url, self.object_size);
        let _ = writeln!(
            out,
            "pattern {}, {} connections, {:.1} s, bytes checked against {}",
            self.pattern,
            self.concurrency,
            secs,
            self.verified_against
                .as_deref()
                .unwrap_or("the other responses")
        );
        let _ = writeln!(
            out,
            "requests     {:>10}   {:.1}/s ({} abandoned early on purpose)",
            s.requests,
            s.requests as f64 / secs,
            s.abandoned
        );
        let _ = writeln!(
            out,
            "bytes        {:>10}   {:.1} MiB/s",
            s.bytes,
            s.bytes as f64 / secs / (1024.0 * 1024.0)
        );
        let kinds: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            out,
            "errors       {:>10}   {}",
            s.error_count(),
            if kinds.is_empty() {
                String::new()
            } else {
                kinds.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "integrity    {:>10}   wrong bytes",
            s.integrity_failures
        );
        for (name, h) in [("latency ms", &s.latency), ("ttfb ms", &s.ttfb)] {
            if h.is_empty() {
                continue;
            }
            let ms = |us: u64| us as f64 / 1000.0;
            let _ = writeln!(
                out,
                "{name:<12} p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.9)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max())
            );
        }
        for failure in &s.failures {
            let _ = writeln!(out, "  failure: {failure}");
        }
        let _ = writeln!(
            out,
            "{}",
            if s.passed() {
                "PASS: every answer right"
            } else {
                "FAIL"
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_and_merge() {
        let mut a = Stats {
            requests: 3,
            bytes: 3000,
            ..Stats::default()
        };
        a.record_latency(Duration::from_millis(2));
        a.record_ttfb(Duration::from_millis(1));
        let mut b = Stats {
            requests: 1,
            abandoned: 1,
            ..Stats::default()
        };
        b.error("status", "status 200".into());
        b.integrity_failure("bytes 0-1 differ".into());
        b.record_latency(Duration::from_millis(10));
        a.merge(b);
        assert!(!a.passed());
        let summary = Summary {
            url: "http://x/a.mp4".into(),
            pattern: "uniform".into(),
            concurrency: 2,
            elapsed: Duration::from_secs(2),
            object_size: 100,
            verified_against: None,
            stats: a,
        };
        let json = summary.to_json();
        assert_eq!(json["requests"], 4);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["errors_by_kind"]["status"], 1);
        assert_eq!(json["integrity_failures"], 1);
        assert_eq!(json["rps"], 2.0);
        assert_eq!(json["bytes_per_sec"], 1500.0);
        assert_eq!(json["latency_ms"]["max"], 10.007);
        assert_eq!(json["ttfb_ms"]["p50"], 1.0);
        assert_eq!(json["passed"], false);
        let text = summary.to_text();
        assert!(
            text.contains("errors                1   status 1"),
            "{text}"
        );
        assert!(text.ends_with("FAIL\n"), "{text}");
    }
}
