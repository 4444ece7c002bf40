//! Small HTTP(S) client over `curl`, with a time limit on every call.

use crate::proc;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(&self.body).map_err(|e| format!("bad JSON ({e}): {}", self.body))
    }
    /// Value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// One request. `cacert` is the trust root for https URLs.
pub fn request(
    method: &str,
    url: &str,
    cacert: Option<&Path>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Response, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let hdr_file = dir.path().join("headers");
    let body_file = dir.path().join("body");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "15",
        "--connect-timeout",
        "5",
        "-X",
        method,
    ])
    .arg("-D")
    .arg(&hdr_file)
    .arg("-o")
    .arg(&body_file)
    .args(["-w", "%{http_code}"]);
    if let Some(ca) = cacert {
        cmd.arg("--cacert").arg(ca);
    }
    for (k, v) in headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    if let Some(b) = body {
        cmd.arg("--data-binary").arg(b);
    }
    cmd.arg(url);
    let out = proc::run(cmd, Duration::from_secs(20));
    if !out.success() {
        return Err(format!("{method} {url}: {}", out.describe()));
    }
    let status: u16 = out
        .stdout
        .trim()
        .parse()
        .map_err(|_| format!("{method} {url}: bad status {:?}", out.stdout))?;
    Ok(Response {
        status,
        headers: std::fs::read_to_string(&hdr_file).unwrap_or_default(),
        body: std::fs::read_to_string(&body_file).unwrap_or_default(),
    })
}

pub fn get(url: &str, cacert: Option<&Path>) -> Result<Response, String> {
    request("GET", url, cacert, &[], None)
}

pub fn post_json(url: &str, cacert: Option<&Path>, body: &str) -> Result<Response, String> {
    request(
        "POST",
        url,
        cacert,
        &[("Content-Type", "application/json")],
        Some(body),
    )
}
