//! N ironseal replicas on one PostgreSQL behind HAProxy, on loopback
//! (issue 11, "Proof with real parts"): the world of
//! `conformance/tests/scale_out.rs`.
//!
//! - **Its own PostgreSQL cluster** ([`PgCluster`], `scripts/pg-throwaway.sh`),
//!   never the shared `IRONSEAL_TEST_PG_URL` one: the test restarts it
//!   (`pg_ctl restart`) under load.
//! - **Replicas**: one [`Server`] each, own data directory, the same
//!   key-encryption key file (`--kek-file`), the same `[storage] url`.
//!   The first starts alone (it bootstraps the CA hierarchy), then the
//!   others. They all listen on the **same port** on different loopback
//!   addresses (127.0.0.2, 127.0.0.3, …) and HAProxy listens on that
//!   port on 127.0.0.1: ironseal builds its ACME URLs from the request's
//!   Host header only when the port in it is its own listener's
//!   (`AppState::base_url_for`), so a client's `Host: localhost:P` yields
//!   URLs that lead back through the balancer. Their plain-HTTP listeners
//!   (OCSP, CRLs, metrics) stay on their own ports on 127.0.0.1; the URLs
//!   put into certificates (`--http-public-url`) name the balancer's
//!   plain-HTTP front end.
//! - **HAProxy** ([`Haproxy`]), HTTP mode: it terminates TLS with a
//!   certificate for `localhost` / `127.0.0.1` issued by the replicas'
//!   own CA through the admin API (so clients keep trusting `root.pem`)
//!   and re-encrypts to each replica's HTTPS listener, verifying it
//!   against `root.pem`. `balance roundrobin` picks a server per request
//!   (not per connection), so one client's consecutive requests land on
//!   different replicas; [`Replicas::acme_requests`] reads each replica's
//!   `ironseal_acme_requests_total` to prove it. A plain-HTTP front end
//!   balances OCSP, CRL and CA-certificate fetches the same way.

#![allow(
    clippy::unwrap_used,
    reason = "test harness: a panic is a test failure"
)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::challtestsrv::ChallTestSrv;
use crate::server::{workspace_root, Server};
use crate::{net, pg, pki, proc};

/// `/usr/lib/postgresql/15/bin`, where `scripts/pg-throwaway.sh` finds `pg_ctl`.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throwaway PostgreSQL cluster owned by one test
/// (`scripts/pg-throwaway.sh start`), stopped and removed on drop.
pub struct PgCluster {
    /// The cluster directory (`data/`, `port`, `server.log`).
    pub dir: PathBuf,
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub admin_url: String,
}

impl PgCluster {
    /// `initdb` + `pg_ctl start` on a free port (installs PostgreSQL 15
    /// with apt when missing, as the script does).
    pub fn start() -> Result<PgCluster, String> {
        let script = workspace_root().join("scripts/pg-throwaway.sh");
        let o = proc::run(
            {
                let mut c = Command::new(&script);
                c.arg("start");
                c
            },
            Duration::from_secs(300),
        );
        if !o.success() {
            return Err(format!("pg-throwaway.sh start: {}", o.describe()));
        }
        let dir = PathBuf::from(o.stdout.trim());
        let port = std::fs::read_to_string(dir.join("port"))
            .map_err(|e| format!("{}/port: {e}", dir.display()))?;
        Ok(PgCluster {
            admin_url: format!("postgres://postgres@127.0.0.1:{}/postgres", port.trim()),
            dir,
        })
    }

    /// A new database `name` on this cluster; returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        pg::psql(&self.admin_url, &format!("CREATE DATABASE {name}"));
        pg::with_database(&self.admin_url, name)
    }

    /// `pg_ctl restart -m fast`: every connection is closed, the server is
    /// down for a moment and comes back on the same port (pg_ctl reuses
    /// the options of the last start).
    pub fn restart(&self) -> Result<(), String> {
        self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "restart"])
    }

    /// Sets a server parameter (`ALTER SYSTEM`) and reloads the configuration.
    pub fn set(&self, name: &str, value: &str) {
        pg::psql(
            &self.admin_url,
            &format!("ALTER SYSTEM SET {name} = '{value}'"),
        );
        pg::psql(&self.admin_url, "SELECT pg_reload_conf()");
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The server log (`log_statement` output goes here).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = self.dir.join("data");
        let log = self.log_path();
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(Path::new(PG_BIN).join("pg_ctl"));
            c
        } else {
            Command::new(Path::new(PG_BIN).join("pg_ctl"))
        };
        // -l: the restarted server must not inherit our output pipes.
        c.arg("-D").arg(&data).arg("-l").arg(&log).args(args);
        let o = proc::run(c, Duration::from_secs(90));
        if o.success() {
            Ok(())
        } else {
            Err(format!("pg_ctl {args:?}: {}", o.describe()))
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut c = Command::new(workspace_root().join("scripts/pg-throwaway.sh"));
        c.arg("stop").arg(&self.dir);
        let _ = proc::run(c, Duration::from_secs(60));
    }
}

fn is_root() -> bool {
    proc::run(
        {
            let mut c = Command::new("id");
            c.arg("-u");
            c
        },
        Duration::from_secs(10),
    )
    .stdout
    .trim()
        == "0"
}

/// HAProxy in front of the replicas (see the module docs).
pub struct Haproxy {
    /// The configuration file it runs with (shown in docs/scale-out.md).
    pub config: PathBuf,
    guard: proc::Guard,
}

impl Haproxy {
    pub fn log_tail(&self, max: usize) -> String {
        self.guard.log_tail(max)
    }
    pub fn log_path(&self) -> &Path {
        self.guard.log_path()
    }
}

/// The HAProxy configuration for `replicas` (HTTPS on `port`, each
/// replica at `<ip>:port`; plain HTTP on `http_port`, each replica at
/// `127.0.0.1:<its http port>`). `pem` is the front end's certificate,
/// chain and key; `root` verifies the replicas.
pub fn haproxy_config(
    port: u16,
    http_port: u16,
    pem: &Path,
    root: &Path,
    replicas: &[(Ipv4Addr, u16)],
) -> String {
    let mut c = format!(
        "# HAProxy in front of {n} ironseal replicas (conformance/src/replicas.rs).
global
    log stdout format raw local0 info
    maxconn 2000

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    # A connection a dead replica refused is retried on another one;
    # a request it had already received is not (the client retries).
    retries 2
    option redispatch 1

# ACME and the admin API: TLS terminated here, re-encrypted to the
# replicas (verified against the CA's root). Every request is balanced on
# its own; the Host header passes through unchanged.
frontend acme
    bind 127.0.0.1:{port} ssl crt {pem} alpn http/1.1
    default_backend ironseal_https

backend ironseal_https
    balance roundrobin
    option httpchk
    http-check send meth GET uri /directory ver HTTP/1.1 hdr Host localhost:{port}
    http-check expect status 200
    default-server ssl verify required ca-file {root} sni str(localhost) verifyhost localhost check inter 500ms fall 2 rise 2
",
        n = replicas.len(),
        pem = pem.display(),
        root = root.display(),
    );
    for (i, (ip, _)) in replicas.iter().enumerate() {
        c.push_str(&format!("    server r{i} {ip}:{port}\n"));
    }
    c.push_str(&format!(
        "
# CA certificates, CRLs, OCSP: plain HTTP (RFC 5280 §4.2.1.13, RFC 6960
# over HTTP), any replica answers.
frontend pki
    bind 127.0.0.1:{http_port}
    default_backend ironseal_http

backend ironseal_http
    balance roundrobin
    option httpchk
    http-check send meth GET uri /metrics ver HTTP/1.1 hdr Host 127.0.0.1
    default-server check inter 500ms fall 2 rise 2
"
    ));
    for (i, (_, hp)) in replicas.iter().enumerate() {
        c.push_str(&format!("    server r{i} 127.0.0.1:{hp}\n"));
    }
    c
}

/// The test's world: fake DNS, its own PostgreSQL, N replicas, HAProxy.
/// Field order is drop order: the balancer, the replicas, the database,
/// the DNS, then the directory (kept when the test failed).
pub struct Replicas {
    pub lb: Haproxy,
    pub replicas: Vec<Server>,
    pub pg: PgCluster,
    /// The ironseal database's URL.
    pub db_url: String,
    pub dns: ChallTestSrv,
    /// The shared key-encryption key file.
    pub kek: PathBuf,
    /// HTTPS port of the balancer and of every replica (on its own address).
    pub port: u16,
    /// The balancer's plain-HTTP port.
    pub http_port: u16,
    /// Where every replica sends http-01 validation (one responder serves all).
    pub h01_port: u16,
    pub dir: tempfile::TempDir,
}

/// `n` addresses 127.0.0.2.. on which `port` is free, plus 127.0.0.1.
fn port_free_on(port: u16, n: usize) -> bool {
    (1..=n + 1).all(|i| TcpListener::bind((Ipv4Addr::new(127, 0, 0, i as u8), port)).is_ok())
}

impl Replicas {
    /// Starts everything; `config` is extra TOML appended after the
    /// `[storage]` section every replica gets.
    pub fn start(name: &str, n: usize, extra_toml: &str) -> Replicas {
        assert!(n >= 1);
        let dir = tempfile::Builder::new()
            .prefix(&format!("ironseal-{name}-"))
            .tempdir()
            .expect("tempdir");
        let dns = ChallTestSrv::start(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let pg = PgCluster::start().unwrap_or_else(|e| panic!("{e}"));
        let db_url = pg.create_database("ironseal");
        let port = (0..50)
            .map(|_| net::free_tcp_port())
            .find(|p| port_free_on(*p, n))
            .expect("a port free on 127.0.0.1..=127.0.0.n+1");
        let http_port = net::free_tcp_port();
        let h01_port = net::free_tcp_port();
        let alpn_port = net::free_tcp_port();
        let kek = dir.path().join("shared.kek");
        let toml = format!(
            "[storage]\nbackend = \"postgres\"\nurl = \"{db_url}\"\npool_size = 8\n{extra_toml}"
        );
        let mut replicas = Vec::with_capacity(n);
        for i in 0..n {
            let work = dir.path().join(format!("replica-{i}"));
            std::fs::create_dir_all(&work).unwrap();
            let mut s = Server::new(&work, &dns.dns_addr());
            s.listen_ip = Ipv4Addr::new(127, 0, 0, i as u8 + 2);
            s.port = port;
            s.h01_port = h01_port;
            s.alpn_port = alpn_port;
            s.http_public_url = Some(format!("http://127.0.0.1:{http_port}"));
            s.set_config(&toml);
            s.extra = vec!["--kek-file".into(), kek.display().to_string()];
            // The first replica bootstraps the CA hierarchy; the others
            // find it in the database.
            s.start();
            replicas.push(s);
        }
        let lb = start_haproxy(dir.path(), &replicas, port, http_port);
        let r = Replicas {
            lb,
            replicas,
            pg,
            db_url,
            dns,
            kek,
            port,
            http_port,
            h01_port,
            dir,
        };
        r.wait_lb_ready();
        eprintln!(
            "[{name}] {n} replicas behind HAProxy at {} work dir {}",
            r.directory_url(),
            r.dir.path().display()
        );
        r
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The ACME directory through the balancer.
    pub fn directory_url(&self) -> String {
        format!("https://localhost:{}/directory", self.port)
    }

    /// The balancer's plain-HTTP base URL (what certificates name).
    pub fn http_base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `root.pem`: trusted for the balancer's and the replicas' HTTPS.
    pub fn root(&self) -> PathBuf {
        self.replicas[0].root()
    }

    /// The first replica's admin API key (the bootstrap key).
    pub fn admin_key(&self) -> &str {
        &self.replicas[0].admin_key
    }

    /// `psql` on the ironseal database.
    pub fn psql(&self, sql: &str) -> String {
        pg::psql(&self.db_url, sql)
    }

    /// The sum of `ironseal_acme_requests_total` of replica `i` (of one
    /// `route` label, e.g. `new-nonce`, when given), from its own
    /// `/metrics` (not through the balancer).
    pub fn acme_requests(&self, i: usize, route: Option<&str>) -> Result<u64, String> {
        let prefix = match route {
            Some(r) => format!("ironseal_acme_requests_total{{route=\"{r}\","),
            None => "ironseal_acme_requests_total{".to_string(),
        };
        let url = format!("{}/metrics", self.replicas[i].http_base_url());
        let r = crate::client::get(&url, None)?;
        if r.status != 200 {
            return Err(format!("GET {url}: {}", r.describe()));
        }
        Ok(String::from_utf8_lossy(&r.body)
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64)
    }

    /// The running replicas' indexes.
    pub fn alive(&self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|i| self.replicas[*i].is_running())
            .collect()
    }

    /// Every replica's log tail, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for (i, r) in self.replicas.iter().enumerate() {
            s.push_str(&format!("--- replica {i} ---\n{}\n", r.log_tail()));
        }
        s.push_str(&format!("--- haproxy ---\n{}\n", self.lb.log_tail(3000)));
        s
    }

    fn wait_lb_ready(&self) {
        let url = self.directory_url();
        let root = self.root();
        let mut last = String::new();
        let ok = proc::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
            match crate::client::get(&url, Some(&root)) {
                Ok(r) if r.status == 200 => Some(()),
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
        assert!(
            ok.is_some(),
            "HAProxy at {url} not ready: {last}\n{}",
            self.lb.log_tail(4000)
        );
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("IRONSEAL_KEEP_TMP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("[conformance] kept work dir {}", self.dir.path().display());
        }
    }
}

/// Issues the balancer's certificate (`localhost`, `127.0.0.1`) through
/// the first replica's admin API, writes HAProxy's PEM (certificate,
/// chain, key) and configuration, starts it.
fn start_haproxy(work: &Path, replicas: &[Server], port: u16, http_port: u16) -> Haproxy {
    let d = work.join("haproxy");
    std::fs::create_dir_all(&d).unwrap();
    let (key, csr) = pki::openssl_key_and_csr(
        &d,
        "lb",
        "/CN=localhost",
        &["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    );
    let body = serde_json::json!({ "csrPem": std::fs::read_to_string(&csr).unwrap() }).to_string();
    let r = replicas[0]
        .call(
            "POST",
            "/admin/v1/certificates",
            Some(&replicas[0].admin_key),
            Some(&body),
        )
        .unwrap_or_else(|e| panic!("admin issue for HAProxy: {e}"));
    assert_eq!(r.status, 201, "admin issue for HAProxy: {}", r.describe());
    let v: Value = r.json();
    let pem = d.join("lb.pem");
    std::fs::write(
        &pem,
        format!(
            "{}{}{}",
            v["certificatePem"].as_str().unwrap(),
            v["chainPem"].as_str().unwrap(),
            std::fs::read_to_string(&key).unwrap()
        ),
    )
    .unwrap();
    let backends: Vec<(Ipv4Addr, u16)> = replicas
        .iter()
        .map(|s| (s.listen_ip, s.http_port))
        .collect();
    let config = d.join("haproxy.cfg");
    std::fs::write(
        &config,
        haproxy_config(port, http_port, &pem, &replicas[0].root(), &backends),
    )
    .unwrap();
    let check = proc::run(
        {
            let mut c = Command::new("haproxy");
            c.arg("-c").arg("-f").arg(&config);
            c
        },
        Duration::from_secs(30),
    );
    check.expect_success("haproxy -c (scripts/install-test-deps.sh installs haproxy)");
    let mut c = Command::new("haproxy");
    // -db: foreground, no daemon; logs to stdout (the guard's log file).
    c.arg("-db").arg("-f").arg(&config);
    let guard =
        proc::Guard::spawn("haproxy", c, &d.join("haproxy.log")).unwrap_or_else(|e| panic!("{e}"));
    Haproxy { config, guard }
}
