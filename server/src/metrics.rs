//! Prometheus metrics in the text exposition format, served on the plain
//! HTTP listener at /metrics. Counters and fixed-bucket histograms, no
//! external dependency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram upper bounds in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    counters: BTreeMap<&'static str, u64>,
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    flush: Histogram,
}

/// Process-wide metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Increments a named event counter (`ironseal_<name>_total`).
    pub fn inc(&self, name: &'static str) {
        self.with(|i| *i.counters.entry(name).or_default() += 1);
    }

    /// Records one ACME request's route, status and latency.
    pub fn observe_acme(&self, route: &'static str, status: u16, took: Duration) {
        self.with(|i| {
            *i.requests.entry((route, status)).or_default() += 1;
            i.latency
                .entry(route)
                .or_default()
                .observe(took.as_secs_f64());
        });
    }

    /// Records one store flush (durability wait).
    pub fn observe_flush(&self, took: Duration) {
        self.with(|i| i.flush.observe(took.as_secs_f64()));
    }

    /// Renders all metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        self.with(|i| {
            let mut out = String::new();
            for (name, v) in &i.counters {
                let _ = writeln!(out, "# TYPE ironseal_{name}_total counter");
                let _ = writeln!(out, "ironseal_{name}_total {v}");
            }
            let _ = writeln!(out, "# TYPE ironseal_acme_requests_total counter");
            for ((route, status), v) in &i.requests {
                let _ = writeln!(
                    out,
                    "ironseal_acme_requests_total{{route=\"{route}\",status=\"{status}\"}} {v}"
                );
            }
            let _ = writeln!(
                out,
                "# TYPE ironseal_acme_request_duration_seconds histogram"
            );
            for (route, h) in &i.latency {
                h.render(
                    &mut out,
                    "ironseal_acme_request_duration_seconds",
                    &format!("route=\"{route}\""),
                );
            }
            let _ = writeln!(
                out,
                "# TYPE ironseal_store_flush_duration_seconds histogram"
            );
            i.flush
                .render(&mut out, "ironseal_store_flush_duration_seconds", "");
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.inc("orders_created");
        m.inc("orders_created");
        m.observe_acme("new-order", 201, Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("ironseal_orders_created_total 2"), "{text}");
        assert!(
            text.contains("route=\"new-order\",status=\"201\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "ironseal_acme_request_duration_seconds_bucket{route=\"new-order\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("ironseal_acme_request_duration_seconds_bucket{route=\"new-order\",le=\"0.0025\"} 0"), "{text}");
    }
}
