//! Running a command on a pseudo-terminal (`script` from util-linux), where
//! ironseal's progress lines may be drawn (they never are on a pipe).

use std::process::Command;
use std::time::Duration;

use crate::proc;

/// Runs the shell command line `line` under `script -qec` with `env` set
/// and `IRONSEAL_LOG_FORMAT` removed unless `env` sets it; waits at most
/// two minutes.
pub fn run_on_pty(line: &str, env: &[(&str, &str)]) -> proc::Output {
    let mut c = Command::new("script");
    c.args(["-qec", line, "/dev/null"])
        .env_remove("IRONSEAL_LOG_FORMAT");
    for (k, v) in env {
        c.env(k, v);
    }
    proc::run(c, Duration::from_secs(120))
}
