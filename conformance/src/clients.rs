//! The ACME clients: certbot (from the venv) and lego (Debian).

use crate::proc::{self, Output};
use crate::subject::TestEnv;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Per-command time limit for a client run.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(180);

/// The Python venv with certbot and pkilint: `IRONSEAL_VENV`, else `<workspace>/.venv`.
pub fn venv() -> PathBuf {
    std::env::var("IRONSEAL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::server::workspace_root().join(".venv"))
}

/// certbot with its own config/work/logs dirs under the test's tempdir.
pub struct Certbot {
    pub base: PathBuf,
    server: String,
    tls_root: PathBuf,
    dns_mgmt: String,
}

impl Certbot {
    pub fn new(env: &TestEnv, name: &str) -> Certbot {
        Certbot::at(
            &env.path().join(format!("certbot-{name}")),
            &env.server.directory_url,
            &env.server.tls_root,
            &env.dns.mgmt_url(),
        )
    }

    /// certbot under `base` for the directory at `directory_url` (e.g. a
    /// load balancer in front of replicas), trusting `tls_root` for HTTPS,
    /// with the fake DNS's management API at `dns_mgmt`.
    pub fn at(base: &Path, directory_url: &str, tls_root: &Path, dns_mgmt: &str) -> Certbot {
        let base = base.to_path_buf();
        std::fs::create_dir_all(&base).expect("mkdir");
        let bin = venv().join("bin/certbot");
        assert!(
            bin.is_file(),
            "{} missing: run scripts/install-test-deps.sh",
            bin.display()
        );
        Certbot {
            base,
            server: directory_url.to_string(),
            tls_root: tls_root.to_path_buf(),
            dns_mgmt: dns_mgmt.to_string(),
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.base.join("config")
    }

    /// `live/<cert-name>/<file>` (fullchain.pem, cert.pem, chain.pem, privkey.pem).
    pub fn live(&self, cert_name: &str, file: &str) -> PathBuf {
        self.config_dir().join("live").join(cert_name).join(file)
    }

    /// `renewal/<cert-name>.conf`.
    pub fn renewal_conf(&self, cert_name: &str) -> PathBuf {
        self.config_dir()
            .join("renewal")
            .join(format!("{cert_name}.conf"))
    }

    pub fn log_file(&self) -> PathBuf {
        self.base.join("logs/letsencrypt.log")
    }

    /// Runs `certbot <args> --config-dir .. --work-dir .. --logs-dir .. --server ..
    /// --non-interactive`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(venv().join("bin/certbot"));
        c.args(args)
            .arg("--config-dir")
            .arg(self.config_dir())
            .arg("--work-dir")
            .arg(self.base.join("work"))
            .arg("--logs-dir")
            .arg(self.base.join("logs"))
            .arg("--server")
            .arg(&self.server)
            .arg("--non-interactive")
            .env("REQUESTS_CA_BUNDLE", &self.tls_root)
            .env("IRONSEAL_CHALLTESTSRV_URL", &self.dns_mgmt);
        let o = proc::run(c, CLIENT_LIMIT);
        report(&o);
        o
    }

    /// `certonly` with account registration flags added.
    pub fn certonly(&self, args: &[&str]) -> Output {
        let mut a = vec![
            "certonly",
            "--agree-tos",
            "-m",
            "test@example.com",
            "--no-eff-email",
        ];
        a.extend_from_slice(args);
        self.run(&a)
    }
}

/// lego with its own --path under the test's tempdir.
pub struct Lego {
    pub path: PathBuf,
    server: String,
    tls_root: PathBuf,
    dns_mgmt: String,
}

impl Lego {
    pub fn new(env: &TestEnv, name: &str) -> Lego {
        Lego::at(
            &env.path().join(format!("lego-{name}")),
            &env.server.directory_url,
            &env.server.tls_root,
            &env.dns.mgmt_url(),
        )
    }

    /// lego with `--path path` for the directory at `directory_url`,
    /// trusting `tls_root`, with the fake DNS's management API at `dns_mgmt`.
    pub fn at(path: &Path, directory_url: &str, tls_root: &Path, dns_mgmt: &str) -> Lego {
        let path = path.to_path_buf();
        std::fs::create_dir_all(&path).expect("mkdir");
        Lego {
            path,
            server: directory_url.to_string(),
            tls_root: tls_root.to_path_buf(),
            dns_mgmt: dns_mgmt.to_string(),
        }
    }

    /// `certificates/<name>.crt` (leaf + issuer bundle). Wildcards are stored as `_.`.
    pub fn cert_file(&self, first_domain: &str) -> PathBuf {
        self.path
            .join("certificates")
            .join(format!("{}.crt", first_domain.replace('*', "_")))
    }

    /// `lego --server .. --accept-tos --email .. --path .. <global> <command> <command_args>`.
    pub fn run(&self, global: &[&str], command: &str, command_args: &[&str]) -> Output {
        let bin = std::env::var("IRONSEAL_LEGO").unwrap_or_else(|_| "lego".into());
        let mut c = Command::new(bin);
        c.arg("--server")
            .arg(&self.server)
            .args(["--accept-tos", "--email", "test@example.com"])
            .arg("--path")
            .arg(&self.path)
            .args(global)
            .arg(command)
            .args(command_args)
            .env("LEGO_CA_CERTIFICATES", &self.tls_root)
            .env("IRONSEAL_CHALLTESTSRV_URL", &self.dns_mgmt)
            .env("EXEC_PATH", crate::server::script("lego-dns-exec.sh"))
            .env("EXEC_PROPAGATION_TIMEOUT", "60")
            .env("EXEC_POLLING_INTERVAL", "1")
            // The exec provider solves names one after another with a pause
            // between them (default 60 s).
            .env("EXEC_SEQUENCE_INTERVAL", "1");
        let o = proc::run(c, CLIENT_LIMIT);
        report(&o);
        o
    }
}

/// True if the text names an ACME problem type (`urn:ietf:params:acme:error:...`).
pub fn acme_problem_types(text: &str) -> Vec<String> {
    let needle = "urn:ietf:params:acme:error:";
    let mut v: Vec<String> = text
        .match_indices(needle)
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-' || *c == '.')
                .collect::<String>()
                .trim_end_matches('.')
                .to_string()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// File modification-independent fingerprint: the file's bytes.
pub fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Logs a client run; with `IRONSEAL_CONF_VERBOSE` set, also its full output.
fn report(o: &Output) {
    eprintln!("[conformance] {} -> {:?}", o.cmdline, o.status);
    if std::env::var_os("IRONSEAL_CONF_VERBOSE").is_some() {
        eprintln!("{}", o.describe());
    }
}
