//! What the enrolment benchmark drivers (`bench_est`, `bench_scep`) share:
//! the per-client tally, CPU time read from `/proc`, and the report lines
//! (`RESULT name=… rate=… …`) the bench scripts parse.

use std::time::Duration;

/// utime + stime of `pid` in seconds (`/proc/<pid>/stat` fields 14 and
/// 15, in USER_HZ = 100 ticks on Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The `p` quantile (0..=1) of sorted latencies, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// CPU seconds of a process before and after the timed part.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSpan {
    pub before: Option<f64>,
    pub after: Option<f64>,
}

impl CpuSpan {
    /// Milliseconds per event over the span.
    fn per(&self, events: usize) -> Option<f64> {
        match (self.before, self.after) {
            (Some(a), Some(b)) if events > 0 => Some((b - a) * 1000.0 / events as f64),
            _ => None,
        }
    }
}

/// Enrolments counted by one client, then by all of them.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: usize,
    pub bad: usize,
    pub errors: usize,
    pub first_problem: Option<String>,
    pub latencies: Vec<Duration>,
}

impl Tally {
    /// Adds another client's counts.
    pub fn absorb(&mut self, other: Tally) {
        self.ok += other.ok;
        self.bad += other.bad;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        if self.first_problem.is_none() {
            self.first_problem = other.first_problem;
        }
    }

    /// Prints the human line, the driver's CPU (when measured), the first
    /// problem and the `RESULT` line; `Err` when any enrolment failed.
    pub fn report(
        &mut self,
        name: &str,
        clients: usize,
        elapsed: Duration,
        server: CpuSpan,
        driver: CpuSpan,
    ) -> Result<(), String> {
        self.latencies.sort();
        let rate = self.ok as f64 / elapsed.as_secs_f64();
        let (p50, p99, max) = (
            percentile(&self.latencies, 0.50),
            percentile(&self.latencies, 0.99),
            percentile(&self.latencies, 1.0),
        );
        let cpu_ms = server.per(self.ok);
        // A refused request may cost the server most of an enrolment (a
        // peer that fails after decrypting): CPU per request too.
        let requests = self.ok + self.bad + self.errors;
        let cpu_request_ms = server.per(requests);
        // The driver's own CPU over the timed part: on shared cores it is
        // what the server could not have.
        let client_ms = driver.per(self.ok);
        println!(
            "{name}: {} enrolments ok, {} refused, {} transport errors, {clients} clients in {:.2} s → {rate:.0} enrolments/s; latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms{}",
            self.ok,
            self.bad,
            self.errors,
            elapsed.as_secs_f64(),
            cpu_ms
                .map(|c| format!("; server CPU {c:.2} ms/enrolment"))
                .unwrap_or_default()
        );
        if let (Some(c), true) = (cpu_request_ms, requests != self.ok) {
            println!("{name}: server CPU {c:.2} ms/request (refused ones included)");
        }
        if let Some(c) = client_ms {
            println!("{name}: driver CPU {c:.2} ms/enrolment");
        }
        if let Some(p) = &self.first_problem {
            println!("first problem: {p}");
        }
        let fmt = |v: Option<f64>| v.map(|c| format!("{c:.3}")).unwrap_or_else(|| "n/a".into());
        println!(
            "RESULT name={name} rate={rate:.0} ok={} bad={} errors={} p50_ms={p50:.2} p99_ms={p99:.2} cpu_ms_per_enrolment={} cpu_ms_per_request={} client_cpu_ms_per_enrolment={}",
            self.ok,
            self.bad,
            self.errors,
            fmt(cpu_ms),
            fmt(cpu_request_ms),
            fmt(client_ms)
        );
        if self.bad + self.errors > 0 {
            return Err("some enrolments failed".into());
        }
        Ok(())
    }
}
