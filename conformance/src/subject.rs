//! The server under test, chosen at runtime by `IRONSEAL_TEST_SUBJECT`
//! (`ironseal`, the default, or `pebble`), and the per-test environment.

use crate::challtestsrv::ChallTestSrv;
use crate::{http, net, proc};
use base64::Engine as _;
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

/// A running ACME server.
pub struct Server {
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
    guard: proc::Guard,
}

impl Server {
    pub fn log_tail(&self, max: usize) -> String {
        self.guard.log_tail(max)
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
        let r = http::get(&url, Some(&self.tls_root))?;
        if r.status != 200 {
            return Err(format!("GET {url}: HTTP {} {}", r.status, r.body));
        }
        let v = r.json()?;
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
                let r = http::request(
                    "POST",
                    &url,
                    Some(&self.tls_root),
                    &[("Authorization", &auth)],
                    None,
                )?;
                if r.status == 200 {
                    Ok(())
                } else {
                    Err(format!("POST {url}: HTTP {} {}", r.status, r.body))
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
        let r = http::get(
            &format!("{base}/cert-status-by-serial/{serial_hex}"),
            Some(&self.tls_root),
        )?;
        let v = r.json()?;
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
    pub server: Server,
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

fn random_token() -> String {
    let mut b = [0u8; 24];
    aws_lc_rs::rand::fill(&mut b).expect("random");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
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
        match http::get(url, Some(ca)) {
            Ok(r) if r.status == 200 => match r.json() {
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

fn start_ironseal(work: &Path, dns: &ChallTestSrv, extra: &[&str]) -> Result<Server, String> {
    let bin = ironseal_bin()?;
    let data = work.join("ironseal-data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let port = net::free_tcp_port();
    let http_port = net::free_tcp_port();
    let p1 = net::free_tcp_port();
    let p2 = net::free_tcp_port();
    let key = random_token();
    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{http_port}"))
        .args(["--hostname", "localhost", "--hostname", "127.0.0.1"])
        // pkilint's URI check wants a dotted host; an IP literal satisfies it.
        .arg("--http-public-url")
        .arg(format!("http://127.0.0.1:{http_port}"))
        .args(extra)
        .arg("--test-dns-resolver")
        .arg(dns.dns_addr())
        .arg("--test-http01-port")
        .arg(p1.to_string())
        .arg("--test-tlsalpn01-port")
        .arg(p2.to_string())
        .args(["--log-format", "json"])
        .env("IRONSEAL_INITIAL_ADMIN_KEY", &key);
    let mut guard = proc::Guard::spawn("ironseal", cmd, &work.join("ironseal.log"))?;
    let root = data.join("root.pem");
    let ok = proc::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        if guard.exited().is_some() {
            return Some(false);
        }
        let s = std::fs::read_to_string(&root).ok()?;
        s.contains("-----END CERTIFICATE-----").then_some(true)
    });
    if ok != Some(true) {
        return Err(format!(
            "{} never appeared\n--- ironseal log ---\n{}",
            root.display(),
            guard.log_tail(6000)
        ));
    }
    let base_url = format!("https://localhost:{port}");
    let directory_url = format!("{base_url}/directory");
    let directory = wait_directory(&mut guard, &directory_url, &root)?;
    Ok(Server {
        subject: Subject::Ironseal,
        directory_url,
        tls_root: root.clone(),
        issuing_root: root,
        http01_port: p1,
        tlsalpn01_port: p2,
        admin_key: Some(key),
        base_url,
        pebble_mgmt_url: None,
        directory,
        guard,
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

fn start_pebble(work: &Path, dns: &ChallTestSrv) -> Result<Server, String> {
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
    let r = http::get(&format!("{mgmt_url}/roots/0"), Some(&tls_ca))?;
    if r.status != 200 || !r.body.contains("BEGIN CERTIFICATE") {
        return Err(format!("pebble /roots/0: HTTP {} {}", r.status, r.body));
    }
    let issuing_root = work.join("pebble-root.pem");
    std::fs::write(&issuing_root, &r.body).map_err(|e| e.to_string())?;
    Ok(Server {
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
        guard,
    })
}
