//! Progress of long command-line work (bulk revocation, backup, restore):
//! one line on the terminal, rewritten in place at most five times a
//! second, with items done, rate and time left when the total is known.
//!
//! Shown only when stderr is a terminal and the log format is not JSON
//! (`--log-format json` / `IRONSEAL_LOG_FORMAT=json`): scripts, pipes and
//! log collectors see nothing of it. The final summary a command prints is
//! separate and always printed.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Least time between two redraws.
const REDRAW: Duration = Duration::from_millis(200);

/// A progress line on stderr (or nothing, see the module docs).
pub struct Progress {
    label: &'static str,
    unit: &'static str,
    total: Option<u64>,
    started: Instant,
    last_draw: Option<Instant>,
    shown: bool,
}

/// Whether progress is shown: stderr is a terminal and the log format (the
/// `IRONSEAL_LOG_FORMAT` variable or a `--log-format` value) is not JSON.
pub fn enabled(log_format_json: bool) -> bool {
    !log_format_json
        && std::env::var("IRONSEAL_LOG_FORMAT").map_or(true, |v| !v.eq_ignore_ascii_case("json"))
        && std::io::stderr().is_terminal()
}

impl Progress {
    /// Starts a progress line for `label` counting `unit`s, out of `total`
    /// when known. `show` comes from [`enabled`].
    pub fn new(
        label: &'static str,
        unit: &'static str,
        total: Option<u64>,
        show: bool,
    ) -> Progress {
        Progress {
            label,
            unit,
            total,
            started: Instant::now(),
            last_draw: None,
            shown: show,
        }
    }

    /// Reports `done` units; redraws if enough time has passed.
    pub fn update(&mut self, done: u64) {
        if !self.shown {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < REDRAW)
        {
            return;
        }
        self.last_draw = Some(now);
        let line = render(
            self.label,
            self.unit,
            done,
            self.total,
            self.started.elapsed(),
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// Draws the last state and ends the line.
    pub fn finish(mut self, done: u64) {
        if self.shown {
            self.last_draw = None;
            self.update(done);
            eprintln!();
        }
    }
}

/// `label: 1,234 / 10,000 serials (12%), 410/s, 21 s left`.
pub fn render(label: &str, unit: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if unit.is_empty() {
        // Nothing to count: how long it has been running.
        return format!("{label}: {secs:.0} s");
    }
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let mut s = format!("{label}: {done}");
    if let Some(t) = total {
        let pct = done.saturating_mul(100).checked_div(t).unwrap_or(100);
        s.push_str(&format!(" / {t} {unit} ({pct}%)"));
    } else {
        s.push_str(&format!(" {unit}"));
    }
    s.push_str(&format!(", {rate:.0}/s"));
    match total {
        Some(t) if rate > 0.0 && done < t => {
            let left = (t - done) as f64 / rate;
            s.push_str(&format!(", {left:.0} s left"));
        }
        _ => s.push_str(&format!(", {secs:.0} s")),
    }
    s
}

/// A reader that counts the bytes read through it, for a progress line over
/// a file's bytes: [`CountingReader::new`] returns the reader and a shared
/// count to read while it is consumed.
pub struct CountingReader<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R> CountingReader<R> {
    /// Wraps `inner`; the cell holds the bytes read so far.
    pub fn new(inner: R) -> (CountingReader<R>, std::rc::Rc<std::cell::Cell<u64>>) {
        let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
        (
            CountingReader {
                inner,
                read: read.clone(),
            },
            read,
        )
    }
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_count_rate_and_time_left() {
        let s = render(
            "revoking",
            "serials",
            250,
            Some(1000),
            Duration::from_secs(5),
        );
        assert_eq!(s, "revoking: 250 / 1000 serials (25%), 50/s, 15 s left");
        let s = render("restoring", "bytes", 10, None, Duration::from_secs(2));
        assert_eq!(s, "restoring: 10 bytes, 5/s, 2 s");
        let s = render("backup", "", 3, None, Duration::from_secs(3));
        assert_eq!(s, "backup: 3 s");
    }
}
