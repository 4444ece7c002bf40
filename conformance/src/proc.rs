//! Subprocesses with bounded waits. Long-running daemons live in a [`Guard`]
//! that kills them on drop; one-shot commands go through [`run`], which kills
//! the child when its time limit passes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A spawned daemon, killed (and reaped) when dropped.
pub struct Guard {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Guard {
    /// Spawns `cmd` with stdout and stderr both appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Guard, String> {
        let out = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("dup log fd: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Guard {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `max` bytes of the daemon's log, for failure messages.
    pub fn log_tail(&self, max: usize) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        if s.len() <= max {
            s
        } else {
            let mut start = s.len() - max;
            while !s.is_char_boundary(start) {
                start += 1;
            }
            format!("...{}", &s[start..])
        }
    }

    /// Asks the daemon to exit (SIGTERM, sent with `kill`), waits up to
    /// `grace`, then SIGKILLs it; reaped either way.
    pub fn terminate(&mut self, grace: Duration) {
        if let Some(c) = self.child.as_mut() {
            let mut k = Command::new("kill");
            k.args(["-TERM", &c.id().to_string()]);
            let _ = run(k, Duration::from_secs(5));
            let _ = wait_for(grace, Duration::from_millis(20), || {
                c.try_wait().ok().flatten()
            });
        }
        // Drop sends SIGKILL if it is still running and reaps it.
        if let Some(mut c) = self.child.take() {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }

    /// `Some(status)` if the daemon has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            // Bounded reap: kill() sent SIGKILL, so wait() returns promptly.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Result of a one-shot command.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    /// `None` when the command was killed at its time limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.map(|s| s.success()).unwrap_or(false)
    }
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }
    /// stdout and stderr together, for searching.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    /// A readable dump for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            match self.status {
                Some(s) => s.to_string(),
                None => "KILLED (time limit)".to_string(),
            },
            self.stdout,
            self.stderr
        )
    }
    /// Panics with the full output unless the command succeeded.
    #[track_caller]
    pub fn expect_success(&self, what: &str) -> &Self {
        assert!(self.success(), "{what} failed:\n{}", self.describe());
        self
    }
}

fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, killing it after `limit`. Output goes through
/// temporary files so a chatty child can never block on a full pipe.
pub fn run(mut cmd: Command, limit: Duration) -> Output {
    let line = cmdline(&cmd);
    let fail = |msg: String| Output {
        cmdline: line.clone(),
        status: None,
        stdout: String::new(),
        stderr: msg,
    };
    let (Ok(out), Ok(err)) = (tempfile::tempfile(), tempfile::tempfile()) else {
        return fail("cannot create temp files".into());
    };
    let (Ok(out2), Ok(err2)) = (out.try_clone(), err.try_clone()) else {
        return fail("cannot dup temp files".into());
    };
    cmd.stdin(Stdio::null()).stdout(out2).stderr(err2);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("spawn failed: {e}")),
    };
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(25)),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Output {
        cmdline: line,
        status,
        stdout: read_all(out),
        stderr: read_all(err),
    }
}

fn read_all(mut f: File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut v = Vec::new();
    let _ = f.seek(SeekFrom::Start(0));
    let _ = f.read_to_end(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

/// Polls `f` every `every` until it returns `Some`, or gives up after `limit`.
pub fn wait_for<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}
