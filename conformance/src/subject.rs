//! The ACME server under the real-client tests (certbot, lego), chosen at
//! runtime by `IRONSEAL_TEST_SUBJECT` (`ironseal`, the default, or
//! `pebble`), and their per-test environment. For ironseal it is the one
//! [`crate::server::Server`] handle; Pebble is started here.

use crate::challtestsrv::ChallTestSrv;
use crate::client::{self, ClientConfig, HttpClient};
use crate::{net, proc, server};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Ironseal,
    Pebble,
}

impl Subject {
    pub fn from_env() -> Subject {
        match std::env::var("IRONSEAL_TEST_SUBJECT").as_deref() {
            Err(_) | Ok("") | Ok("ironseal") => Subject::Ironseal,
            Ok("pebble") => Subject::Pebble,
            Ok(other) => panic!("IRONSEAL_TEST_SUBJECT={other:?}: expected `ironseal` or `pebble`"),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Subject::Ironseal => "ironseal",
            Subject::Pebble => "pebble",
        }
    }
}

/// The running ACME server under test, subject-neutral.
pub struct AcmeServer {
    pub subject: Subject,
    /// ACME directory URL.
    pub directory_url: String,
    /// Trust root for the server's own HTTPS (REQUESTS_CA_BUNDLE, LEGO_CA_CERTIFICATES).
    pub tls_root: PathBuf,
    /// Root CA that issued the leaf certificates' chains.
    pub issuing_root: PathBuf,
    /// Port the server's VA uses for http-01 / tls-alpn-01 validation.
    pub http01_port: u16,
    pub tlsalpn01_port: u16,
    /// ironseal admin API key.
    pub admin_key: Option<String>,
    /// Base URL of the server (https://localhost:PORT).
    pub base_url: String,
    /// Pebble management API base URL.
    pub pebble_mgmt_url: Option<String>,
    pub directory: serde_json::Value,
    process: Process,
}

/// What runs behind an [`AcmeServer`].
enum Process {
    Ironseal(Box<server::Server>),
    Pebble(proc::Guard),
}

impl AcmeServer {
    pub fn log_tail(&self, max: usize) -> String {
        match &self.process {
            // The handle keeps its own (6000-byte) tail.
            Process::Ironseal(s) => s.log_tail(),
            Process::Pebble(g) => g.log_tail(max),
        }
    }

    /// The ironseal handle (restart, ports, data dir); `None` for Pebble.
    pub fn ironseal(&mut self) -> Option<&mut server::Server> {
        match &mut self.process {
            Process::Ironseal(s) => Some(s),
            Process::Pebble(_) => None,
        }
    }

    /// A client trusting the server's TLS root.
    pub fn client(&self) -> HttpClient {
        HttpClient::new(ClientConfig::trusting(&self.tls_root))
            .unwrap_or_else(|e| panic!("HTTP client: {e}"))
    }

    /// The directory's `renewalInfo` URL, if the server offers ARI.
    pub fn renewal_info_url(&self) -> Option<String> {
        self.directory
            .get("renewalInfo")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// GET the ARI resource for `cert_id` (RFC 9773 §4.1).
    pub fn renewal_info(&self, cert_id: &str) -> Result<RenewalInfo, String> {
        let base = self.renewal_info_url().ok_or("server has no renewalInfo")?;
        let url = format!("{}/{cert_id}", base.trim_end_matches('/'));
        let r = self.client().get_blocking(&url)?;
        if r.status != 200 {
            return Err(format!("GET {url}: {}", r.describe()));
        }
        let v = r.try_json()?;
        let w = v
            .get("suggestedWindow")
            .ok_or_else(|| format!("no suggestedWindow in {v}"))?;
        let parse = |k: &str| -> Result<time::OffsetDateTime, String> {
            let s = w
                .get(k)
                .and_then(|x| x.as_str())
                .ok_or_else(|| format!("no {k} in {v}"))?;
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("bad {k} {s:?}: {e}"))
        };
        Ok(RenewalInfo {
            start: parse("start")?,
            end: parse("end")?,
            retry_after: r.header("Retry-After"),
            raw: v.clone(),
        })
    }

    /// Asks the server to make ARI suggest renewing this certificate now.
    /// `Err` with a reason when the subject cannot do that.
    pub fn mark_renew_early(&self, serial_hex: &str) -> Result<(), String> {
        match self.subject {
            Subject::Ironseal => {
                let key = self.admin_key.as_deref().ok_or("no admin key")?;
                let url = format!(
                    "{}/admin/v1/certificates/{serial_hex}/renew-early",
                    self.base_url
                );
                let auth = format!("Bearer {key}");
                let r = self.client().request_blocking(
                    "POST",
                    &url,
                    &[("Authorization", &auth)],
                    Vec::new(),
                )?;
                if r.status == 200 {
                    Ok(())
                } else {
                    Err(format!("POST {url}: {}", r.describe()))
                }
            }
            Subject::Pebble => {
                Err("Pebble 2.4 has no ARI and no /set-renewal-info/ management endpoint".into())
            }
        }
    }

    /// Pebble only: revocation status from the management API
    /// (`/cert-status-by-serial/<hex>`), e.g. "Valid" or "Revoked".
    pub fn pebble_cert_status(&self, serial_hex: &str) -> Result<String, String> {
        let base = self.pebble_mgmt_url.as_deref().ok_or("not pebble")?;
        let r = self
            .client()
            .get_blocking(&format!("{base}/cert-status-by-serial/{serial_hex}"))?;
        let v = r.try_json()?;
        v.get("Status")
            .and_then(|s| s.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("no Status in {v}"))
    }
}

#[derive(Debug, Clone)]
pub struct RenewalInfo {
    pub start: time::OffsetDateTime,
    pub end: time::OffsetDateTime,
    pub retry_after: Option<String>,
    pub raw: serde_json::Value,
}

/// Everything one test needs: a temp dir, fake DNS, and the server.
/// Dropping it kills both daemons.
pub struct TestEnv {
    pub subject: Subject,
    // Field order matters for drop: server first, then DNS, then the dir.
    pub server: AcmeServer,
    pub dns: ChallTestSrv,
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn start() -> TestEnv {
        Self::start_with(&[])
    }

    /// Like [`TestEnv::start`], passing `extra` arguments to `ironseal serve`
    /// (Pebble ignores them; tests that need them skip Pebble).
    pub fn start_with(extra: &[&str]) -> TestEnv {
        let subject = Subject::from_env();
        let dir = tempfile::Builder::new()
            .prefix(&format!("ironseal-conf-{}-", subject.name()))
            .tempdir()
            .expect("tempdir");
        let dns = ChallTestSrv::start(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let server = match subject {
            Subject::Ironseal => start_ironseal(dir.path(), &dns, extra),
            Subject::Pebble => start_pebble(dir.path(), &dns),
        }
        .unwrap_or_else(|e| panic!("starting {}: {e}", subject.name()));
        eprintln!(
            "[conformance] subject={} directory={} workdir={}",
            subject.name(),
            server.directory_url,
            dir.path().display()
        );
        TestEnv {
            subject,
            server,
            dns,
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Prints a skip notice. Only Pebble runs may skip: for ironseal this panics.
    #[track_caller]
    pub fn skip(&self, what: &str, why: &str) {
        match self.subject {
            Subject::Pebble => eprintln!("[conformance] SKIPPED for pebble: {what}: {why}"),
            Subject::Ironseal => panic!("{what} cannot be skipped for ironseal: {why}"),
        }
    }

    /// Checks an issued chain file (see [`crate::certs::check_issued`]) with the
    /// pkilint findings tolerated for this subject: none for ironseal; for
    /// Pebble 2.4 its known defect of asserting keyEncipherment in EC leaves.
    #[track_caller]
    pub fn check_issued(&self, chain: &Path, names: &[&str]) -> PathBuf {
        let tolerated: &[&str] = match self.subject {
            Subject::Ironseal => &[],
            Subject::Pebble => PEBBLE_KNOWN_LINT_FINDINGS,
        };
        crate::certs::check_issued(
            chain,
            names,
            &self.server.issuing_root,
            &self.path().join("checks"),
            tolerated,
        )
    }

    /// The certificate (ARI `cert_id`, serial in hex) is revoked as far as
    /// the subject can tell: for ironseal, ARI's suggestedWindow has ended;
    /// Pebble 2.4 has no ARI, so its management API must say "Revoked".
    #[track_caller]
    pub fn assert_revoked(&self, cert_id: &str, serial_hex: &str) {
        match self.subject {
            Subject::Ironseal => {
                let ri = self
                    .server
                    .renewal_info(cert_id)
                    .unwrap_or_else(|e| panic!("{e}\n{}", self.server_log()));
                let now = time::OffsetDateTime::now_utc();
                assert!(
                    ri.end < now,
                    "revoked certificate: ARI suggestedWindow.end must be in the past: {}",
                    ri.raw
                );
            }
            Subject::Pebble => {
                self.skip(
                    "ARI check after revocation",
                    "the directory has no renewalInfo (Pebble 2.4 predates ARI)",
                );
                let st = self
                    .server
                    .pebble_cert_status(serial_hex)
                    .expect("pebble cert-status-by-serial");
                assert_eq!(st, "Revoked", "pebble management API status");
            }
        }
    }

    /// Extra context for assertion failures: the server's log tail.
    pub fn server_log(&self) -> String {
        format!(
            "--- {} log (tail) ---\n{}",
            self.subject.name(),
            self.server.log_tail(6000)
        )
    }
}

/// pkilint codes Pebble 2.4 is known to trip (fixed in later Pebble releases);
/// reported, not failed, for the Pebble subject only.
pub const PEBBLE_KNOWN_LINT_FINDINGS: &[&str] = &["pkix.key_usage_value_prohibited_for_ec"];

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("IRONSEAL_KEEP_TMP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("[conformance] kept work dir {}", self.dir.path().display());
        }
    }
}

fn wait_directory(
    guard: &mut proc::Guard,
    url: &str,
    ca: &Path,
) -> Result<serde_json::Value, String> {
    let mut last = String::new();
    let got = proc::wait_for(Duration::from_secs(30), Duration::from_millis(150), || {
        if let Some(st) = guard.exited() {
            last = format!("server exited early: {st}");
            return Some(None);
        }
        match client::get(url, Some(ca)) {
            Ok(r) if r.status == 200 => match r.try_json() {
                Ok(v) => Some(Some(v)),
                Err(e) => {
                    last = e;
                    None
                }
            },
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
    match got {
        Some(Some(v)) => Ok(v),
        _ => Err(format!(
            "directory {url} not ready: {last}\n--- {} log ---\n{}",
            guard.name(),
            guard.log_tail(6000)
        )),
    }
}

fn start_ironseal(work: &Path, dns: &ChallTestSrv, extra: &[&str]) -> Result<AcmeServer, String> {
    let mut srv = server::Server::new(work, &dns.dns_addr());
    srv.extra = extra.iter().map(|s| s.to_string()).collect();
    srv.try_start()?;
    let root = srv.root();
    let directory_url = srv.directory_url();
    let directory = client::get(&directory_url, Some(&root))?.try_json()?;
    Ok(AcmeServer {
        subject: Subject::Ironseal,
        directory_url,
        tls_root: root.clone(),
        issuing_root: root,
        http01_port: srv.h01_port,
        tlsalpn01_port: srv.alpn_port,
        admin_key: Some(srv.admin_key.clone()),
        base_url: srv.base_url(),
        pebble_mgmt_url: None,
        directory,
        process: Process::Ironseal(Box::new(srv)),
    })
}

/// Pebble's Debian package ships no test certificates, so we make a
/// throwaway TLS CA and a localhost certificate with openssl.
fn make_pebble_tls(work: &Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let d = work.join("pebble-tls");
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let ca_key = d.join("ca.key");
    let ca = d.join("ca.pem");
    let key = d.join("key.pem");
    let csr = d.join("csr.pem");
    let cert = d.join("cert.pem");
    let ext = d.join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n",
    )
    .map_err(|e| e.to_string())?;
    let t = Duration::from_secs(30);
    let mut c = Command::new("openssl");
    c.args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
    ])
    .args(["-subj", "/CN=ironseal conformance pebble TLS CA"])
    .arg("-keyout")
    .arg(&ca_key)
    .arg("-out")
    .arg(&ca);
    let o = proc::run(c, t);
    if !o.success() {
        return Err(o.describe());
    }
    let mut c = Command::new("openssl");
    c.args([
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=localhost",
    ])
    .arg("-keyout")
    .arg(&key)
    .arg("-out")
    .arg(&csr);
    let o = proc::run(c, t);
    if !o.success() {
        return Err(o.describe());
    }
    let mut c = Command::new("openssl");
    c.args(["x509", "-req", "-days", "2", "-set_serial", "1"])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert);
    let o = proc::run(c, t);
    if !o.success() {
        return Err(o.describe());
    }
    Ok((ca, cert, key))
}

fn start_pebble(work: &Path, dns: &ChallTestSrv) -> Result<AcmeServer, String> {
    let bin = std::env::var("IRONSEAL_PEBBLE").unwrap_or_else(|_| "pebble".into());
    let (tls_ca, cert, key) = make_pebble_tls(work)?;
    let port = net::free_tcp_port();
    let mgmt = net::free_tcp_port();
    let p1 = net::free_tcp_port();
    let p2 = net::free_tcp_port();
    let cfg = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": cert,
            "privateKey": key,
            "httpPort": p1,
            "tlsPort": p2,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let cfg_path = work.join("pebble-config.json");
    std::fs::write(&cfg_path, cfg.to_string()).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.arg("-config")
        .arg(&cfg_path)
        .arg("-dnsserver")
        .arg(dns.dns_addr())
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0");
    let mut guard = proc::Guard::spawn("pebble", cmd, &work.join("pebble.log"))?;
    let base_url = format!("https://localhost:{port}");
    let directory_url = format!("{base_url}/dir");
    let directory = wait_directory(&mut guard, &directory_url, &tls_ca)?;
    let mgmt_url = format!("https://localhost:{mgmt}");
    let r = client::get(&format!("{mgmt_url}/roots/0"), Some(&tls_ca))?;
    if r.status != 200 || !r.text().contains("BEGIN CERTIFICATE") {
        return Err(format!("pebble /roots/0: {}", r.describe()));
    }
    let issuing_root = work.join("pebble-root.pem");
    std::fs::write(&issuing_root, &r.body).map_err(|e| e.to_string())?;
    Ok(AcmeServer {
        subject: Subject::Pebble,
        directory_url,
        tls_root: tls_ca,
        issuing_root,
        http01_port: p1,
        tlsalpn01_port: p2,
        admin_key: None,
        base_url,
        pebble_mgmt_url: Some(mgmt_url),
        directory,
        process: Process::Pebble(guard),
    })
}
