//! `ironseal admin ...`: a command-line client of the admin API over HTTPS,
//! authenticated with an API key, a TLS client certificate, or both (the
//! server then goes by the key).
//! Prints the server's JSON answers (pretty) on stdout; on an HTTP error
//! prints the error document on stderr and exits 1 (2 for usage, connection
//! or TLS problems).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

/// Most serials sent in one bulk revocation call (the server's limit).
const BULK_CHUNK: usize = 10_000;

/// `ironseal admin` options and subcommands.
#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

/// How to reach and authenticate to a server's admin API (`ironseal admin`,
/// `ironseal backup`).
#[derive(Args)]
pub struct ConnArgs {
    /// Base URL of the server's HTTPS listener.
    #[arg(
        long,
        env = "IRONSEAL_URL",
        default_value = "https://localhost:14000",
        global = true
    )]
    url: String,
    /// Admin API key (`isk_...`).
    #[arg(long, env = "IRONSEAL_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// PEM file with a client certificate (and any intermediates after it)
    /// for servers configured with `admin_client_ca`; needs --client-key.
    #[arg(
        long,
        env = "IRONSEAL_CLIENT_CERT",
        global = true,
        requires = "client_key"
    )]
    client_cert: Option<PathBuf>,
    /// PEM file with the private key of --client-cert (PKCS#8, SEC1 or PKCS#1).
    #[arg(
        long,
        env = "IRONSEAL_CLIENT_KEY",
        global = true,
        requires = "client_cert"
    )]
    client_key: Option<PathBuf>,
    /// PEM file with the root certificate that signed the server's certificate.
    #[arg(
        long,
        env = "IRONSEAL_CA_CERT",
        default_value = "./data/root.pem",
        global = true
    )]
    ca_cert: PathBuf,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Show the key in use and its role.
    Whoami,
    /// Manage API keys (admin role).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Look at or act on one certificate.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Write a consistent backup of the store on the server (admin role);
    /// prints where. Same as `ironseal backup`.
    Backup,
    /// Revoke many certificates: serials (hex) one per line from a file or stdin.
    RevokeBulk {
        /// File with serials, `-` for stdin.
        #[arg(long, default_value = "-")]
        file: PathBuf,
        /// RFC 5280 reason name (e.g. keyCompromise) or code.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// The CA hierarchy.
    Cas {
        #[command(subcommand)]
        command: CasCommand,
    },
    /// Tenants: name policy, profiles, and their ACME EAB keys.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// ACME external account binding keys of a tenant (RFC 8555 §7.3.4).
    Eab {
        #[command(subcommand)]
        command: EabCommand,
    },
    /// EST users for HTTP Basic authentication (RFC 7030 §3.2.3).
    EstUsers {
        #[command(subcommand)]
        command: EstUsersCommand,
    },
    /// One-time SCEP challenge passwords (shown once, single use).
    ScepChallenges {
        #[command(subcommand)]
        command: ScepChallengesCommand,
    },
    /// Requests held for approval (two-person integrity).
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Read the audit log.
    Audit {
        /// Entries with a sequence number greater than this.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many entries (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Verify the whole hash chain and its MACs (not only the page);
        /// exit 3 if broken.
        #[arg(long)]
        verify: bool,
        /// With --verify: also check the log against this signed checkpoint
        /// file (one checkpoint, or the JSON lines of `[audit]
        /// checkpoint_file`, of which the last counts): its signature, and
        /// that the log still reaches its entry with the same hash.
        #[arg(long, requires = "verify")]
        checkpoint: Option<PathBuf>,
        /// PEM public key the checkpoint must be signed with (kept from an
        /// earlier checkpoint); default: the key the server reports.
        #[arg(long, requires = "checkpoint")]
        checkpoint_key: Option<PathBuf>,
    },
    /// Sign a checkpoint of the audit log's head now (written to
    /// `[audit] checkpoint_file` on the server if set, and printed).
    AuditCheckpoint {
        /// Also write the checkpoint to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; its secret is shown once.
    Create {
        #[arg(long)]
        name: String,
        /// admin, operator or auditor.
        #[arg(long)]
        role: String,
        /// Scope the key to one tenant (operator and auditor keys).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List keys.
    List,
    /// Disable a key.
    Delete { id: String },
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Create a tenant with the names its credentials may yield.
    Create {
        /// Tenant id: a-z, 0-9 and '-'.
        id: String,
        /// Human-readable name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// Allowed DNS suffix; `*.example.com` also allows wildcards (repeatable).
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// Allowed IP range in CIDR form (repeatable).
        #[arg(long = "ip")]
        ip: Vec<String>,
        /// Allowed URI prefix, e.g. spiffe://td/ns/a (repeatable).
        #[arg(long = "uri")]
        uri: Vec<String>,
        /// Allowed email domain; `.example.com` for subdomains (repeatable).
        #[arg(long = "email")]
        email: Vec<String>,
        /// Profile the tenant may use (repeatable; default: the default profile).
        #[arg(long = "profile")]
        profiles: Vec<String>,
        /// Do not check CAA (RFC 8659) for this tenant's validations
        /// (internal zones without CAA records).
        #[arg(long = "no-caa")]
        no_caa: bool,
    },
    /// List tenants.
    List,
    /// Show a tenant and its EAB keys.
    Show { id: String },
    /// Disable a tenant: its credentials stop working (one-way).
    Disable { id: String },
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// List held requests, oldest first.
    List {
        /// pending, approved or rejected (default: all).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one request and its outcome.
    Show { id: String },
    /// Approve: the certificate is issued at once. You must not be the requester.
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject: nothing is issued; the client is told it was rejected.
    Reject {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Subcommand)]
enum EabCommand {
    /// Create an EAB key for a tenant; the HMAC key is shown once.
    Create {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
    },
    /// List a tenant's EAB keys.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Disable an EAB key (one-way).
    Disable { kid: String },
}

#[derive(Subcommand)]
enum ScepChallengesCommand {
    /// Create a one-time SCEP challenge; it is shown once.
    Create {
        /// The tenant whose names policy applies to the CSR.
        #[arg(long)]
        tenant: Option<String>,
        /// The SCEP path it may be used on (default: any dynamic path).
        #[arg(long)]
        path: Option<String>,
        /// Minutes until it expires (default 60, at most 10080).
        #[arg(long)]
        expires_in_minutes: Option<u32>,
    },
    /// List one-time SCEP challenges (of one tenant), never their passwords.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Withdraw a one-time SCEP challenge (by its id) before it is used.
    Delete {
        /// The challenge's id (`sc_…`, from `list`).
        id: String,
    },
}

#[derive(Subcommand)]
enum EstUsersCommand {
    /// Create an EST user; without --password-file a password is
    /// generated and shown once.
    Create {
        /// The user name the device sends.
        #[arg(long)]
        username: String,
        /// The tenant whose EST labels it may use.
        #[arg(long)]
        tenant: Option<String>,
        /// Read the password from this file (`-`: stdin), first line.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List EST users (of one tenant).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Disable an EST user (one-way).
    Disable { username: String },
}

#[derive(Subcommand)]
enum CertCommand {
    /// Issue from a PKCS#10 request (PEM file); profiles that require
    /// approval return the held request instead.
    Issue {
        /// The CSR file (PEM), `-` for stdin.
        #[arg(long)]
        csr: PathBuf,
        #[arg(long)]
        profile: Option<String>,
        /// Issue for this tenant (unscoped keys).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show a certificate by serial (hex).
    Show { serial: String },
    /// Ask ARI clients to renew this certificate now.
    RenewEarly { serial: String },
    /// Revoke a certificate.
    Revoke {
        serial: String,
        /// RFC 5280 reason name (e.g. keyCompromise) or code.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum CasCommand {
    /// List CAs.
    List,
    /// Create a CA (admin): a new root, or an intermediate under --parent.
    Create {
        /// Subject commonName.
        #[arg(long)]
        name: String,
        /// Id of the parent CA; without it a self-signed root is created.
        #[arg(long)]
        parent: Option<String>,
        /// p256, p384, rsa3072, rsa4096 or ed25519.
        #[arg(long, default_value = "p256")]
        algorithm: String,
        /// Validity in days from now (an intermediate's must end before its parent's).
        #[arg(long)]
        validity_days: u32,
        /// basicConstraints pathLenConstraint; absent: unlimited.
        #[arg(long)]
        path_len: Option<u8>,
        /// certificatePolicies OID (repeatable).
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Permitted subtree, e.g. dns:example.com or ip:10.0.0.0/8 (repeatable).
        #[arg(long = "permit")]
        permitted: Vec<String>,
        /// Excluded subtree, same forms (repeatable).
        #[arg(long = "exclude")]
        excluded: Vec<String>,
    },
    /// Make an intermediate the CA that signs new ACME leaves (admin); the
    /// previous issuing CA becomes retiring.
    Activate { id: String },
    /// Set a CA's status (admin): active, retiring or retired.
    Status { id: String, status: String },
    /// Cross-sign CA <id> by CA --by (admin): chains through <id> gain an
    /// alternate through --by.
    CrossSign {
        id: String,
        /// Id of the cross-signing CA.
        #[arg(long)]
        by: String,
        /// Validity of the cross certificate in days from now (clamped
        /// into the cross-signer's).
        #[arg(long, default_value_t = 365)]
        validity_days: u32,
    },
    /// Rotate intermediate <id>'s key (admin): a successor "… G2" with the
    /// same profile under the same parent; --activate hands it issuance.
    Rollover {
        id: String,
        /// Make the successor the issuing CA at once.
        #[arg(long)]
        activate: bool,
    },
    /// Show one CA (a pending CA includes its request, csrPem).
    Show { id: String },
    /// Start an intermediate for an offline or external root to sign
    /// (admin): the key is made and sealed here; prints the pending CA and
    /// writes its PKCS#10 request to --out.
    Csr {
        /// Subject commonName.
        #[arg(long)]
        name: String,
        /// p256, p384, rsa3072, rsa4096 or ed25519.
        #[arg(long, default_value = "p256")]
        algorithm: String,
        /// basicConstraints pathLenConstraint to ask for.
        #[arg(long)]
        path_len: Option<u8>,
        /// certificatePolicies OID to ask for (repeatable).
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Permitted subtree to ask for (repeatable).
        #[arg(long = "permit")]
        permitted: Vec<String>,
        /// Excluded subtree to ask for (repeatable).
        #[arg(long = "exclude")]
        excluded: Vec<String>,
        /// Where to write the request (PEM).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import the certificate an external issuer signed for pending CA
    /// <id> (admin).
    ImportSigned {
        id: String,
        /// The signed CA certificate, PEM.
        #[arg(long)]
        cert: PathBuf,
    },
    /// Register a CA certificate whose key stays outside ironseal, e.g. an
    /// offline root (admin).
    RegisterExternal {
        /// A label.
        #[arg(long)]
        name: String,
        /// The CA certificate, PEM.
        #[arg(long)]
        cert: PathBuf,
    },
    /// Bring an existing CA and its private key under management (admin).
    Import {
        /// A label.
        #[arg(long)]
        name: String,
        /// The CA certificate, PEM.
        #[arg(long)]
        cert: PathBuf,
        /// Its private key, PEM (PKCS#8, SEC1 or PKCS#1, unencrypted).
        #[arg(long)]
        key: PathBuf,
    },
}

/// A PEM file's text, or a usage failure naming the file.
fn read_pem(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file).map_err(|e| Failure::Local(format!("{}: {e}", file.display())))
}

/// A reason as the API takes it: a number stays a number.
fn reason_value(s: &str) -> Value {
    match s.parse::<u8>() {
        Ok(n) => json!(n),
        Err(_) => json!(s),
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

struct Api {
    base: String,
    /// None: authenticate with the client certificate alone.
    key: Option<String>,
    client: HttpsClient,
}

/// A client certificate chain and its key, read from PEM files.
struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    fn load(cert: &Path, key: &Path) -> Result<ClientIdentity, String> {
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| format!("reading {}: {e}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("parsing {}: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("no certificates in {}", cert.display()));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("reading the private key {}: {e}", key.display()))?;
        Ok(ClientIdentity { chain, key })
    }
}

fn tls_client(ca_cert: &Path, identity: Option<ClientIdentity>) -> Result<HttpsClient, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_cert)
        .map_err(|e| format!("reading {}: {e}", ca_cert.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("parsing {}: {e}", ca_cert.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("adding root from {}: {e}", ca_cert.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificates in {}", ca_cert.display()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots);
    let tls = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|e| format!("client certificate and key: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

enum Failure {
    /// The server answered with an error status.
    Http(u16, String),
    /// Usage, connection, TLS.
    Local(String),
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(&url)
            .header("accept", "application/json");
        if let Some(key) = &self.key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let payload = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .map_err(|e| Failure::Local(format!("bad request for {url}: {e}")))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| Failure::Local(format!("{method} {url}: {}", error_chain(&e))))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::Local(format!("{method} {url}: reading the answer: {e}")))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !(200..300).contains(&status) {
            return Err(Failure::Http(status, text));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Local(format!("{method} {url}: answer is not JSON ({e}): {text}"))
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Serials from a file or stdin: one per line, blank lines and `#`
/// comments skipped.
/// A text file, or stdin for `-`.
fn read_text(file: &Path) -> Result<String, String> {
    if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
    }
}

fn read_serials(file: &Path) -> Result<Vec<String>, String> {
    let text = read_text(file)?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Percent-encodes a path segment (serials and ids are plain, but be safe).
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn run_command(api: &Api, command: AdminCommand) -> Result<(Value, bool), Failure> {
    let v = match command {
        AdminCommand::Whoami => api.call("GET", "/admin/v1/whoami", None).await?,
        AdminCommand::Keys { command } => match command {
            KeysCommand::Create { name, role, tenant } => {
                let mut body = json!({"name": name, "role": role});
                if let Some(t) = tenant {
                    body["tenant"] = Value::String(t);
                }
                api.call("POST", "/admin/v1/keys", Some(body)).await?
            }
            KeysCommand::List => api.call("GET", "/admin/v1/keys", None).await?,
            KeysCommand::Delete { id } => {
                api.call("DELETE", &format!("/admin/v1/keys/{}", seg(&id)), None)
                    .await?
            }
        },
        AdminCommand::Tenants { command } => match command {
            TenantsCommand::Create {
                id,
                name,
                dns,
                ip,
                uri,
                email,
                profiles,
                no_caa,
            } => {
                let mut body = json!({
                    "id": id,
                    "names": {"dns": dns, "ip": ip, "uri": uri, "email": email},
                });
                if no_caa {
                    body["caa"] = Value::Bool(false);
                }
                if let Some(n) = name {
                    body["name"] = Value::String(n);
                }
                if !profiles.is_empty() {
                    body["profiles"] = json!(profiles);
                }
                api.call("POST", "/admin/v1/tenants", Some(body)).await?
            }
            TenantsCommand::List => api.call("GET", "/admin/v1/tenants", None).await?,
            TenantsCommand::Show { id } => {
                api.call("GET", &format!("/admin/v1/tenants/{}", seg(&id)), None)
                    .await?
            }
            TenantsCommand::Disable { id } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/tenants/{}/disable", seg(&id)),
                    None,
                )
                .await?
            }
        },
        AdminCommand::Eab { command } => match command {
            EabCommand::Create { tenant } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/tenants/{}/eab-keys", seg(&tenant)),
                    None,
                )
                .await?
            }
            EabCommand::List { tenant } => {
                api.call(
                    "GET",
                    &format!("/admin/v1/tenants/{}/eab-keys", seg(&tenant)),
                    None,
                )
                .await?
            }
            EabCommand::Disable { kid } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/eab-keys/{}/disable", seg(&kid)),
                    None,
                )
                .await?
            }
        },
        AdminCommand::EstUsers { command } => match command {
            EstUsersCommand::Create {
                username,
                tenant,
                password_file,
            } => {
                let mut body = json!({ "username": username });
                if let Some(t) = tenant {
                    body["tenant"] = Value::String(t);
                }
                if let Some(f) = password_file {
                    let text = read_text(&f).map_err(Failure::Local)?;
                    let pw = text.lines().next().unwrap_or_default().to_string();
                    body["password"] = Value::String(pw);
                }
                api.call("POST", "/admin/v1/est-users", Some(body)).await?
            }
            EstUsersCommand::List { tenant } => {
                let q = tenant
                    .map(|t| format!("?tenant={}", seg(&t)))
                    .unwrap_or_default();
                api.call("GET", &format!("/admin/v1/est-users{q}"), None)
                    .await?
            }
            EstUsersCommand::Disable { username } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/est-users/{}/disable", seg(&username)),
                    None,
                )
                .await?
            }
        },
        AdminCommand::ScepChallenges { command } => match command {
            ScepChallengesCommand::Create {
                tenant,
                path,
                expires_in_minutes,
            } => {
                let mut body = json!({});
                if let Some(t) = tenant {
                    body["tenant"] = Value::String(t);
                }
                if let Some(p) = path {
                    body["path"] = Value::String(p);
                }
                if let Some(m) = expires_in_minutes {
                    body["expiresInMinutes"] = json!(m);
                }
                api.call("POST", "/admin/v1/scep-challenges", Some(body))
                    .await?
            }
            ScepChallengesCommand::List { tenant } => {
                let q = tenant
                    .map(|t| format!("?tenant={}", seg(&t)))
                    .unwrap_or_default();
                api.call("GET", &format!("/admin/v1/scep-challenges{q}"), None)
                    .await?
            }
            ScepChallengesCommand::Delete { id } => {
                api.call(
                    "DELETE",
                    &format!("/admin/v1/scep-challenges/{}", seg(&id)),
                    None,
                )
                .await?
            }
        },
        AdminCommand::Approvals { command } => match command {
            ApprovalsCommand::List { status } => {
                let q = status
                    .map(|s| format!("?status={}", seg(&s)))
                    .unwrap_or_default();
                api.call("GET", &format!("/admin/v1/approvals{q}"), None)
                    .await?
            }
            ApprovalsCommand::Show { id } => {
                api.call("GET", &format!("/admin/v1/approvals/{}", seg(&id)), None)
                    .await?
            }
            ApprovalsCommand::Approve { id, comment } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/approvals/{}/approve", seg(&id)),
                    Some(json!({"comment": comment})),
                )
                .await?
            }
            ApprovalsCommand::Reject { id, comment } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/approvals/{}/reject", seg(&id)),
                    Some(json!({"comment": comment})),
                )
                .await?
            }
        },
        AdminCommand::Cert { command } => match command {
            CertCommand::Issue {
                csr,
                profile,
                tenant,
            } => {
                let pem = read_text(&csr).map_err(Failure::Local)?;
                let mut body = json!({ "csrPem": pem });
                if let Some(p) = profile {
                    body["profile"] = Value::String(p);
                }
                if let Some(t) = tenant {
                    body["tenant"] = Value::String(t);
                }
                api.call("POST", "/admin/v1/certificates", Some(body))
                    .await?
            }
            CertCommand::Show { serial } => {
                api.call(
                    "GET",
                    &format!("/admin/v1/certificates/{}", seg(&serial)),
                    None,
                )
                .await?
            }
            CertCommand::RenewEarly { serial } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/certificates/{}/renew-early", seg(&serial)),
                    None,
                )
                .await?
            }
            CertCommand::Revoke { serial, reason } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/certificates/{}/revoke", seg(&serial)),
                    Some(json!({"reason": reason_value(&reason)})),
                )
                .await?
            }
        },
        AdminCommand::RevokeBulk { file, reason } => {
            let serials = read_serials(&file).map_err(Failure::Local)?;
            if serials.is_empty() {
                return Err(Failure::Local("no serials given".into()));
            }
            let mut results = Vec::new();
            let mut revoked = 0u64;
            let mut shown = crate::progress::Progress::new(
                "revoking",
                "serials",
                Some(serials.len() as u64),
                crate::progress::enabled(false),
            );
            let mut done = 0u64;
            for chunk in serials.chunks(BULK_CHUNK) {
                let v = api
                    .call(
                        "POST",
                        "/admin/v1/revocations",
                        Some(json!({"serials": chunk, "reason": reason_value(&reason)})),
                    )
                    .await?;
                revoked += v["revoked"].as_u64().unwrap_or(0);
                if let Some(r) = v["results"].as_array() {
                    results.extend(r.iter().cloned());
                }
                done += chunk.len() as u64;
                shown.update(done);
            }
            shown.finish(done);
            json!({"reason": reason, "revoked": revoked, "results": results})
        }
        AdminCommand::Backup => {
            let mut shown = crate::progress::Progress::new(
                "backup (on the server)",
                "",
                None,
                crate::progress::enabled(false),
            );
            let started = std::time::Instant::now();
            let call = api.call("POST", "/admin/v1/backups", None);
            tokio::pin!(call);
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            let v = loop {
                tokio::select! {
                    r = &mut call => break r?,
                    _ = tick.tick() => shown.update(started.elapsed().as_secs()),
                }
            };
            shown.finish(started.elapsed().as_secs());
            v
        }
        AdminCommand::Cas { command } => match command {
            CasCommand::List => api.call("GET", "/admin/v1/cas", None).await?,
            CasCommand::Create {
                name,
                parent,
                algorithm,
                validity_days,
                path_len,
                policies,
                permitted,
                excluded,
            } => {
                let mut body = json!({
                    "name": name,
                    "algorithm": algorithm,
                    "validityDays": validity_days,
                    "policies": policies,
                });
                if let Some(p) = parent {
                    body["parent"] = json!(p);
                }
                if let Some(p) = path_len {
                    body["pathLen"] = json!(p);
                }
                if !permitted.is_empty() || !excluded.is_empty() {
                    body["nameConstraints"] = json!({"permitted": permitted, "excluded": excluded});
                }
                api.call("POST", "/admin/v1/cas", Some(body)).await?
            }
            CasCommand::Activate { id } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/cas/{}/activate", seg(&id)),
                    None,
                )
                .await?
            }
            CasCommand::Status { id, status } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/cas/{}/status", seg(&id)),
                    Some(json!({ "status": status })),
                )
                .await?
            }
            CasCommand::CrossSign {
                id,
                by,
                validity_days,
            } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/cas/{}/cross-sign", seg(&id)),
                    Some(json!({ "by": by, "validityDays": validity_days })),
                )
                .await?
            }
            CasCommand::Rollover { id, activate } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/cas/{}/rollover", seg(&id)),
                    Some(json!({ "activate": activate })),
                )
                .await?
            }
            CasCommand::Show { id } => {
                api.call("GET", &format!("/admin/v1/cas/{}", seg(&id)), None)
                    .await?
            }
            CasCommand::Csr {
                name,
                algorithm,
                path_len,
                policies,
                permitted,
                excluded,
                out,
            } => {
                let mut body = json!({
                    "name": name,
                    "algorithm": algorithm,
                    "policies": policies,
                });
                if let Some(p) = path_len {
                    body["pathLen"] = json!(p);
                }
                if !permitted.is_empty() || !excluded.is_empty() {
                    body["nameConstraints"] = json!({"permitted": permitted, "excluded": excluded});
                }
                let v = api.call("POST", "/admin/v1/cas/csr", Some(body)).await?;
                if let Some(out) = out {
                    let pem = v["csrPem"].as_str().ok_or_else(|| {
                        Failure::Local("the answer carries no csrPem".to_string())
                    })?;
                    std::fs::write(&out, pem)
                        .map_err(|e| Failure::Local(format!("{}: {e}", out.display())))?;
                }
                v
            }
            CasCommand::ImportSigned { id, cert } => {
                api.call(
                    "POST",
                    &format!("/admin/v1/cas/{}/certificate", seg(&id)),
                    Some(json!({ "certificatePem": read_pem(&cert)? })),
                )
                .await?
            }
            CasCommand::RegisterExternal { name, cert } => {
                api.call(
                    "POST",
                    "/admin/v1/cas/external",
                    Some(json!({ "name": name, "certificatePem": read_pem(&cert)? })),
                )
                .await?
            }
            CasCommand::Import { name, cert, key } => {
                api.call(
                    "POST",
                    "/admin/v1/cas/import",
                    Some(json!({
                        "name": name,
                        "certificatePem": read_pem(&cert)?,
                        "privateKeyPem": read_pem(&key)?,
                    })),
                )
                .await?
            }
        },
        AdminCommand::Audit {
            after,
            limit,
            verify,
            checkpoint,
            checkpoint_key,
        } => {
            let mut path = format!("/admin/v1/audit?after={after}&limit={limit}");
            if verify {
                path.push_str("&verify=full");
            }
            let mut v = api.call("GET", &path, None).await?;
            let mut broken = verify && v["verify"]["ok"] != json!(true);
            if let Some(file) = checkpoint {
                let verdict = check_checkpoint(api, &v, &file, checkpoint_key.as_deref()).await?;
                broken |= verdict["ok"] != json!(true);
                v["verify"]["checkpoint"] = verdict;
            }
            return Ok((v, broken));
        }
        AdminCommand::AuditCheckpoint { out } => {
            let v = api
                .call("POST", "/admin/v1/audit/checkpoints", Some(json!({})))
                .await?;
            if let Some(out) = out {
                let text = serde_json::to_string(&v)
                    .map_err(|e| Failure::Local(format!("checkpoint: {e}")))?;
                std::fs::write(&out, format!("{text}\n"))
                    .map_err(|e| Failure::Local(format!("{}: {e}", out.display())))?;
            }
            v
        }
    };
    Ok((v, false))
}

/// Checks the log (`audit`: the answer of a `verify=full` call) against
/// the checkpoint in `file`: its signature under `pinned` (a PEM file) or
/// the server's checkpoint key, then that the log reaches the checkpoint's
/// entry and that entry has the checkpoint's hash. Together with the full
/// verification (hashes, links and MACs up to the head), a log rewritten or
/// cut before the checkpoint fails. Returns `{seq, ok, error}`.
async fn check_checkpoint(
    api: &Api,
    audit: &Value,
    file: &Path,
    pinned: Option<&Path>,
) -> Result<Value, Failure> {
    use ironseal_storage::audit_checkpoint::spki_from_pem;
    use ironseal_storage::{AuditHead, Checkpoint};
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Local(format!("{}: {e}", file.display())))?;
    let cp =
        Checkpoint::parse(&text).map_err(|e| Failure::Local(format!("{}: {e}", file.display())))?;
    let seq = cp.checkpoint.seq;
    let verdict = |r: Result<(), String>| {
        json!({
            "seq": seq,
            "hash": cp.checkpoint.hash,
            "at": serde_json::to_value(&cp.checkpoint).map(|b| b["at"].clone()).ok(),
            "ok": r.is_ok(),
            "error": r.err(),
        })
    };
    let key_pem = match pinned {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| Failure::Local(format!("{}: {e}", p.display())))?,
        None => audit["verify"]["checkpointKey"]
            .as_str()
            .ok_or_else(|| {
                Failure::Local(
                    "the server reports no checkpoint key (a server without audit keys?)".into(),
                )
            })?
            .to_string(),
    };
    let key = spki_from_pem(&key_pem)
        .ok_or_else(|| Failure::Local("the checkpoint key is not a PEM public key".into()))?;
    if let Err(e) = cp.verify_signature(&key) {
        return Ok(verdict(Err(e.to_string())));
    }
    let head: Option<AuditHead> = serde_json::from_value(audit["head"].clone()).unwrap_or(None);
    let entry_hash = if seq == 0 || head.as_ref().is_none_or(|h| h.seq < seq) {
        None
    } else {
        let page = api
            .call(
                "GET",
                &format!("/admin/v1/audit?after={}&limit=1", seq - 1),
                None,
            )
            .await?;
        page["entries"]
            .as_array()
            .and_then(|a| a.first())
            .filter(|e| e["seq"] == json!(seq))
            .and_then(|e| e["entryHash"].as_str())
            .map(str::to_string)
    };
    Ok(verdict(
        cp.matches(head.as_ref(), entry_hash.as_deref())
            .map_err(|e| e.to_string()),
    ))
}

/// Runs `ironseal admin ...`.
/// `ironseal backup`: `ironseal admin backup`.
pub fn run_backup(conn: ConnArgs) -> ExitCode {
    run(AdminArgs {
        conn,
        command: AdminCommand::Backup,
    })
}

pub fn run(args: AdminArgs) -> ExitCode {
    let AdminArgs {
        conn: args,
        command,
    } = args;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let key = args
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let identity = match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(k)) => match ClientIdentity::load(cert, k) {
            Ok(id) => Some(id),
            Err(e) => {
                eprintln!("ironseal admin: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    if key.is_none() && identity.is_none() {
        eprintln!(
            "ironseal admin: no API key (--api-key or IRONSEAL_API_KEY) and no client \
             certificate (--client-cert and --client-key, or IRONSEAL_CLIENT_CERT and \
             IRONSEAL_CLIENT_KEY)"
        );
        return ExitCode::from(2);
    }
    let client = match tls_client(&args.ca_cert, identity) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ironseal admin: {e}");
            return ExitCode::from(2);
        }
    };
    let api = Api {
        base: args.url.clone(),
        key,
        client,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ironseal admin: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run_command(&api, command)) {
        Ok((v, broken)) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            );
            if broken {
                eprintln!("ironseal admin: the audit log does not verify");
                for why in [&v["verify"]["error"], &v["verify"]["checkpoint"]["error"]] {
                    if let Some(why) = why.as_str() {
                        eprintln!("ironseal admin: {why}");
                    }
                }
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(Failure::Http(status, body)) => {
            let pretty = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or(body);
            eprintln!("ironseal admin: HTTP {status}\n{pretty}");
            ExitCode::from(1)
        }
        Err(Failure::Local(e)) => {
            eprintln!("ironseal admin: {e}");
            ExitCode::from(2)
        }
    }
}
