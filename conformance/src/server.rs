//! The one handle on an ironseal server under test: the real release binary
//! on loopback with free ports, restartable on the same data dir and ports,
//! with extra `serve` flags and an optional config file. Every test — the
//! hand-rolled ACME cases, the certbot / lego runs, the admin, OCSP/CRL,
//! hierarchy and crash tests, and the SCEP / EST tests to come — starts its
//! server through [`Server`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;

use crate::client::{ClientConfig, HttpClient};
use crate::{net, proc};

/// Workspace root (parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// `conformance/scripts/<name>`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// The ironseal binary: `IRONSEAL_BIN`, else `$CARGO_TARGET_DIR/release/ironseal`
/// if that exists, else `<workspace>/target/release/ironseal`. Never built here.
pub fn ironseal_bin() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("IRONSEAL_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("IRONSEAL_BIN={} does not exist", p.display()))
        };
    }
    let mut tried = Vec::new();
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        let p = PathBuf::from(t).join("release/ironseal");
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    let p = workspace_root().join("target/release/ironseal");
    if p.is_file() {
        return Ok(p);
    }
    tried.push(p);
    Err(format!(
        "ironseal binary not found (tried {tried:?}). Build it first with \
         `cargo build --release -p ironseal`, or set IRONSEAL_BIN, or run the suite \
         against Pebble with IRONSEAL_TEST_SUBJECT=pebble"
    ))
}

/// A fresh admin API key for `IRONSEAL_INITIAL_ADMIN_KEY`.
fn random_admin_key() -> String {
    let mut k = [0u8; 18];
    aws_lc_rs::rand::fill(&mut k).unwrap_or_else(|e| panic!("random: {e}"));
    format!("isk_test_{}", B64.encode(k))
}

/// An ironseal server on loopback. Ports, data dir and admin key are fixed
/// when the handle is made, so [`Server::restart`] comes back at the same
/// URLs on the same state. Dropping the handle kills the process.
pub struct Server {
    /// `--data-dir`.
    pub data: PathBuf,
    /// Where the logs go (`ironseal-<start>.log`).
    pub work: PathBuf,
    /// Address of the HTTPS listener: 127.0.0.1 unless a test puts
    /// several replicas on one port behind a load balancer (127.0.0.2, …;
    /// see [`crate::replicas`]). Other than 127.0.0.1 it is added to the
    /// hostnames and used in [`Server::base_url`].
    pub listen_ip: std::net::Ipv4Addr,
    /// HTTPS listener (ACME, admin API).
    pub port: u16,
    /// Plain HTTP listener (CA certificates, CRLs, OCSP, metrics).
    pub http_port: u16,
    /// `--http-public-url` (AIA, CRL DP) when set; else
    /// [`Server::http_base_url`]. Replicas behind a load balancer name
    /// the balancer's plain-HTTP front end here.
    pub http_public_url: Option<String>,
    /// Where the VA sends http-01 and tls-alpn-01 validation.
    pub h01_port: u16,
    pub alpn_port: u16,
    /// Fake DNS resolver (`pebble-challtestsrv`) the VA asks, if any.
    pub dns_addr: Option<String>,
    /// The first admin API key (`IRONSEAL_INITIAL_ADMIN_KEY`); set it
    /// empty before the first start to have the server generate one.
    pub admin_key: String,
    /// How many times the binary has been started.
    pub starts: u32,
    /// Extra `ironseal serve` arguments, appended after the harness's own.
    pub extra: Vec<String>,
    /// `--config <file>` when set (see [`Server::set_config`]).
    pub config: Option<PathBuf>,
    /// `--ari-retry-after-secs` when set (the server's default otherwise).
    pub ari_retry_after_secs: Option<u32>,
    /// `--log-format`: `json` (the default here) or `human`.
    pub log_format: &'static str,
    guard: Option<proc::Guard>,
}

impl Server {
    /// A handle with fresh ports and key; data under `work/ironseal-data`.
    /// Nothing runs until [`Server::start`].
    pub fn new(work: &Path, dns_addr: &str) -> Server {
        let mut s = Server::without_dns(work);
        s.dns_addr = Some(dns_addr.to_string());
        s
    }

    /// Like [`Server::new`] with no fake DNS: for tests that never validate
    /// a challenge (start-up checks).
    pub fn without_dns(work: &Path) -> Server {
        let data = work.join("ironseal-data");
        std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("mkdir {}: {e}", data.display()));
        Server {
            data,
            work: work.to_path_buf(),
            listen_ip: std::net::Ipv4Addr::LOCALHOST,
            port: net::free_tcp_port(),
            http_port: net::free_tcp_port(),
            http_public_url: None,
            h01_port: net::free_tcp_port(),
            alpn_port: net::free_tcp_port(),
            dns_addr: None,
            admin_key: random_admin_key(),
            starts: 0,
            extra: Vec::new(),
            config: None,
            ari_retry_after_secs: None,
            log_format: "json",
            guard: None,
        }
    }

    /// Base URL of the HTTPS listener (`https://localhost:PORT`, or
    /// `https://<listen_ip>:PORT` when that is not 127.0.0.1).
    pub fn base_url(&self) -> String {
        if self.listen_ip == std::net::Ipv4Addr::LOCALHOST {
            format!("https://localhost:{}", self.port)
        } else {
            format!("https://{}:{}", self.listen_ip, self.port)
        }
    }
    /// Base URL of the plain HTTP listener (`http://127.0.0.1:PORT`).
    pub fn http_base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("{}/directory", self.base_url())
    }
    /// The key-encryption key file a start without `--kek-file` uses:
    /// beside the data dir, `<data dir>.kek` (never inside it).
    pub fn kek_path(&self) -> PathBuf {
        let name = self
            .data
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into());
        self.data.with_file_name(format!("{name}.kek"))
    }
    /// `root.pem` in the data dir: trust anchor of the listener and of every chain.
    pub fn root(&self) -> PathBuf {
        self.data.join("root.pem")
    }
    /// This start's log file.
    pub fn log_path(&self) -> PathBuf {
        self.work.join(format!("ironseal-{}.log", self.starts))
    }
    pub fn is_running(&self) -> bool {
        self.guard.is_some()
    }
    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.guard.as_ref().and_then(proc::Guard::pid)
    }

    /// An HTTP client trusting `root.pem` (HTTPS and plain HTTP).
    pub fn client(&self) -> HttpClient {
        HttpClient::new(self.client_config()).unwrap_or_else(|e| panic!("HTTP client: {e}"))
    }
    /// The configuration of [`Server::client`], to add a client certificate.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::trusting(&self.root())
    }

    /// Writes `toml` to a new file in the work dir and passes it as
    /// `--config` from the next start on.
    pub fn set_config(&mut self, toml: &str) -> PathBuf {
        let n = self.starts + 1;
        let p = self.work.join(format!("ironseal-config-{n}.toml"));
        std::fs::write(&p, toml).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        self.config = Some(p.clone());
        p
    }

    /// One HTTPS call to `path` (e.g. `/admin/v1/whoami`) with `Bearer key`
    /// (none when `key` is `None`) and an optional JSON body; blocking.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        json_body: Option<&str>,
    ) -> Result<crate::client::Response, String> {
        self.call_with(&self.client(), method, path, key, json_body)
    }

    /// [`Server::call`] through `client` (e.g. one presenting a client
    /// certificate: `HttpClient::new(srv.client_config().with_client_cert(..))`).
    pub fn call_with(
        &self,
        client: &HttpClient,
        method: &str,
        path: &str,
        key: Option<&str>,
        json_body: Option<&str>,
    ) -> Result<crate::client::Response, String> {
        let auth = key.map(|k| format!("Bearer {k}"));
        let mut headers = Vec::new();
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        if json_body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let url = format!("{}{path}", self.base_url());
        client.request_blocking(
            method,
            &url,
            &headers,
            json_body.unwrap_or("").as_bytes().to_vec(),
        )
    }

    /// The full `ironseal serve` command line of the next start.
    fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--listen")
            .arg(format!("{}:{}", self.listen_ip, self.port))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", self.http_port))
            // AIA / CRL DP URLs: the default base is http://localhost:P2, and
            // pkilint (python `validators`) rejects a dotless host as
            // pkix.invalid_uri_syntax; an IP literal is what a relying party
            // on loopback would use anyway.
            .arg("--http-public-url")
            .arg(
                self.http_public_url
                    .clone()
                    .unwrap_or_else(|| self.http_base_url()),
            )
            .args(["--hostname", "localhost", "--hostname", "127.0.0.1"])
            .args(
                (self.listen_ip != std::net::Ipv4Addr::LOCALHOST)
                    .then(|| ["--hostname".to_string(), self.listen_ip.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .arg("--test-http01-port")
            .arg(self.h01_port.to_string())
            .arg("--test-tlsalpn01-port")
            .arg(self.alpn_port.to_string())
            .args(["--log-format", self.log_format]);
        if let Some(d) = &self.dns_addr {
            cmd.arg("--test-dns-resolver").arg(d);
        }
        if let Some(s) = self.ari_retry_after_secs {
            cmd.arg("--ari-retry-after-secs").arg(s.to_string());
        }
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(&self.extra);
        // An empty key lets the server generate its own.
        if !self.admin_key.is_empty() {
            cmd.env("IRONSEAL_INITIAL_ADMIN_KEY", &self.admin_key);
        }
        cmd
    }

    /// Starts the binary and waits (30 s at most) until `root.pem` exists
    /// and the directory answers 200. `Err` with the log tail otherwise.
    pub fn try_start(&mut self) -> Result<(), String> {
        if self.guard.is_some() {
            return Err("server already running".into());
        }
        let bin = ironseal_bin()?;
        self.starts += 1;
        let mut g = proc::Guard::spawn("ironseal", self.command(&bin), &self.log_path())?;
        let root = self.root();
        let url = self.directory_url();
        let mut last = String::new();
        let ok = proc::wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
            if let Some(st) = g.exited() {
                last = format!("exited: {st}");
                return Some(false);
            }
            if !std::fs::read_to_string(&root)
                .map(|s| s.contains("END CERTIFICATE"))
                .unwrap_or(false)
            {
                last = format!("{} not written yet", root.display());
                return None;
            }
            match crate::client::get(&url, Some(&root)) {
                Ok(r) if r.status == 200 => Some(true),
                Ok(r) => {
                    last = format!("HTTP {}", r.status);
                    None
                }
                Err(e) => {
                    last = e;
                    None
                }
            }
        });
        if ok != Some(true) {
            return Err(format!(
                "ironseal not ready ({last})\n--- ironseal log ---\n{}",
                g.log_tail(6000)
            ));
        }
        self.guard = Some(g);
        Ok(())
    }

    /// [`Server::try_start`], panicking (a test failure) on error.
    #[track_caller]
    pub fn start(&mut self) {
        if let Err(e) = self.try_start() {
            panic!("{e}");
        }
    }

    /// Runs `serve` with the current flags as a one-shot command that is
    /// expected to refuse to start: its output once it exits, or killed
    /// after `limit` (then [`proc::Output::timed_out`] is true).
    pub fn run_until_exit(&mut self, limit: Duration) -> Result<proc::Output, String> {
        if self.guard.is_some() {
            return Err("server already running".into());
        }
        let bin = ironseal_bin()?;
        self.starts += 1;
        Ok(proc::run(self.command(&bin), limit))
    }

    /// SIGKILL and reap: the crash a power cut would be.
    pub fn kill9(&mut self) {
        // proc::Guard's Drop is Child::kill (SIGKILL) plus a bounded reap.
        self.guard.take();
    }

    /// SIGTERM, then (after 10 s) SIGKILL; reaped either way.
    pub fn stop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.terminate(Duration::from_secs(10));
        }
    }

    /// Stops (SIGTERM) and starts again on the same data dir and ports.
    #[track_caller]
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// The running process's log tail, else the last start's log file.
    pub fn log_tail(&self) -> String {
        self.guard
            .as_ref()
            .map(|g| g.log_tail(6000))
            .unwrap_or_else(|| std::fs::read_to_string(self.log_path()).unwrap_or_default())
    }
}
