//! Server configuration: a TOML file with documented defaults, every option
//! also settable on the command line or through the environment
//! (`IRONSEAL_*`). Precedence: command line > environment > file > default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ironseal_ca_core::constraints::{GeneralSubtree, NameConstraints};
use ironseal_ca_core::csr::LeafKey;
use ironseal_ca_core::issuance::Eku;
use ironseal_ca_core::keys::KeyAlgorithm;
use ironseal_ca_core::profile::{CertProfile, DeviceOptions, ProfileKind, SanKind, SpiffeOptions};
use serde::Deserialize;

use crate::client_cert::{CertRule, CertRuleFileConfig};
use crate::rate_limits::{Limit, Rate};

/// Options of `ironseal serve`. Each is optional here so that the file and
/// the defaults can fill what the command line leaves out.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, env = "IRONSEAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: database, sealed CA keys, root.pem. Created on first start.
    #[arg(long, env = "IRONSEAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTPS listener for ACME and the admin API (default 127.0.0.1:14000).
    #[arg(long, env = "IRONSEAL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Plain HTTP listener for CA certificates, CRLs and OCSP (default 127.0.0.1:14080).
    #[arg(long, env = "IRONSEAL_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Host names (or IP literals) the HTTPS certificate covers; the first is
    /// used in URLs when a request's Host header is not one of them.
    #[arg(long = "hostname", env = "IRONSEAL_HOSTNAMES", value_delimiter = ',')]
    pub hostnames: Vec<String>,
    /// Base URL put into certificates for the plain-HTTP endpoints
    /// (AIA caIssuers, CRL distribution point). Default http://<first hostname>:<http port>.
    #[arg(long, env = "IRONSEAL_HTTP_PUBLIC_URL")]
    pub http_public_url: Option<String>,
    /// File holding the 32-byte key-encryption key (base64), mode 0600.
    /// Default <data-dir>.kek (beside the data directory, not in it),
    /// created on first start. IRONSEAL_KEK (base64) wins if set.
    #[arg(long, env = "IRONSEAL_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
    /// Accept a key-encryption key file inside the data directory or the
    /// backup directory, where every copy of them would carry it (refused
    /// by default).
    #[arg(long)]
    pub allow_kek_in_data_dir: bool,
    /// Key algorithm for the CAs created on first start: p256, p384, rsa3072, rsa4096, ed25519.
    #[arg(long, env = "IRONSEAL_CA_KEY_ALGORITHM")]
    pub ca_key_algorithm: Option<KeyAlgorithm>,
    /// Permitted subtree for the issuing CA created on first start
    /// (RFC 5280 §4.2.1.10), e.g. `dns:example.com`, `ip:10.0.0.0/8`. Repeatable.
    #[arg(long = "ca-permit", env = "IRONSEAL_CA_PERMIT", value_delimiter = ',')]
    pub ca_permit: Vec<GeneralSubtree>,
    /// Excluded subtree for the issuing CA created on first start. Repeatable.
    #[arg(
        long = "ca-exclude",
        env = "IRONSEAL_CA_EXCLUDE",
        value_delimiter = ','
    )]
    pub ca_exclude: Vec<GeneralSubtree>,
    /// Lifetime of issued leaf certificates, in days (default 90).
    #[arg(long, env = "IRONSEAL_LEAF_LIFETIME_DAYS")]
    pub leaf_lifetime_days: Option<u32>,
    /// CRL partitions per CA (default 1 = one full CRL). Each certificate
    /// names its shard; do not change while such certificates are valid.
    #[arg(long, env = "IRONSEAL_CRL_SHARDS")]
    pub crl_shards: Option<u32>,
    /// Retry-After of renewalInfo responses, in seconds (default 21600).
    #[arg(long, env = "IRONSEAL_ARI_RETRY_AFTER_SECS")]
    pub ari_retry_after_secs: Option<u64>,
    /// Whether newAccount requires an external account binding (RFC 8555
    /// §7.3.4): auto (when any EAB key exists), always or never.
    #[arg(long, env = "IRONSEAL_EXTERNAL_ACCOUNT_REQUIRED")]
    pub external_account_required: Option<EabPolicy>,
    /// Log format: human or json.
    #[arg(long, env = "IRONSEAL_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// PEM bundle of the CA certificates trusted for admin API client
    /// certificates; unset: no client-certificate authentication.
    #[arg(long, env = "IRONSEAL_ADMIN_CLIENT_CA")]
    pub admin_client_ca: Option<PathBuf>,
    /// Role of admin client certificates, `ROLE=KIND:VALUE` with KIND one
    /// of sha256, subject_cn, san_uri, san_dns, san_email (repeatable;
    /// replaces the file's `[[admin_client_certs]]`). First match wins.
    #[arg(
        long = "admin-client-cert",
        env = "IRONSEAL_ADMIN_CLIENT_CERTS",
        value_delimiter = ','
    )]
    pub admin_client_certs: Vec<CertRule>,
    /// Non-public address ranges challenge validation may connect to, in
    /// CIDR form (e.g. `10.0.0.0/8`); default none: public addresses only.
    #[arg(
        long = "validation-allow-address",
        env = "IRONSEAL_VALIDATION_ALLOW_ADDRESSES",
        value_delimiter = ','
    )]
    pub validation_allow_addresses: Vec<ipnet::IpNet>,
    /// Directory that online backups (`ironseal backup`) are written to
    /// (default `<data-dir>/backups`).
    #[arg(long, env = "IRONSEAL_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// A hosts(5) file whose names challenge validation resolves from it
    /// before DNS (e.g. /etc/hosts for internal names); its addresses may be
    /// dialled. Default none: DNS only.
    #[arg(long = "validation-hosts", env = "IRONSEAL_VALIDATION_HOSTS")]
    pub validation_hosts: Option<PathBuf>,
    /// Validations run at once; more wait for a slot (default 64).
    #[arg(long, env = "IRONSEAL_VALIDATION_MAX_CONCURRENT")]
    pub validation_max_concurrent: Option<usize>,
    /// TEST ONLY: send every challenge DNS lookup to this resolver (ip:port).
    #[arg(long, env = "IRONSEAL_TEST_DNS_RESOLVER")]
    pub test_dns_resolver: Option<SocketAddr>,
    /// TEST ONLY: connect to this port for http-01 instead of 80.
    #[arg(long, env = "IRONSEAL_TEST_HTTP01_PORT")]
    pub test_http01_port: Option<u16>,
    /// TEST ONLY: connect to this port for tls-alpn-01 instead of 443.
    #[arg(long, env = "IRONSEAL_TEST_TLSALPN01_PORT")]
    pub test_tlsalpn01_port: Option<u16>,
}

/// When newAccount requires an external account binding (RFC 8555 §7.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum EabPolicy {
    /// Required as soon as any tenant has an EAB key.
    #[default]
    Auto,
    /// Always required (a new server accepts no account until an EAB key exists).
    Always,
    /// Never required (a binding, when sent, still binds the account to its tenant).
    Never,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// The configuration file's shape. Every field has a default.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub hostnames: Option<Vec<String>>,
    pub http_public_url: Option<String>,
    pub kek_file: Option<PathBuf>,
    /// Accept a KEK file inside the data or backup directory.
    pub allow_kek_in_data_dir: Option<bool>,
    pub ca_key_algorithm: Option<KeyAlgorithm>,
    pub leaf_lifetime_days: Option<u32>,
    pub log_format: Option<LogFormat>,
    pub storage: StorageFileConfig,
    pub ca: CaFileConfig,
    pub crl: CrlFileConfig,
    pub acme: AcmeFileConfig,
    pub limits: LimitsFileConfig,
    pub validation: ValidationFileConfig,
    pub ocsp: OcspFileConfig,
    pub metrics: MetricsFileConfig,
    pub audit: AuditFileConfig,
    pub testing: TestingFileConfig,
    /// `[[profiles]]`: issuance profiles offered to ACME clients.
    pub profiles: Vec<ProfileFileConfig>,
    /// CA bundle trusted for admin client certificates.
    pub admin_client_ca: Option<PathBuf>,
    /// `[[admin_client_certs]]`: certificate identity → role.
    pub admin_client_certs: Vec<CertRuleFileConfig>,
    /// `[scep]`: the SCEP front end.
    pub scep: crate::scep::config::ScepFileConfig,
    /// `[est]`: EST labels (RFC 7030).
    pub est: crate::est::config::EstFileConfig,
}

/// One `[[profiles]]` entry (draft-ietf-acme-profiles). Values are checked
/// in [`Config::resolve`] so that errors name the offending field.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileFileConfig {
    pub name: Option<String>,
    pub description: Option<String>,
    pub lifetime_days: Option<u32>,
    pub ekus: Option<Vec<String>>,
    pub key_types: Option<Vec<String>>,
    pub ca: Option<String>,
    pub requires_approval: Option<bool>,
    /// `tls` (default), `device` or `spiffe`.
    pub kind: Option<String>,
    /// Alternative to `lifetime_days` for short-lived certificates.
    pub lifetime_minutes: Option<u32>,
    /// Device profiles: copy the CSR subject (default true).
    pub subject_from_csr: Option<bool>,
    /// Device profiles: SAN kinds copied from the CSR (default dns, email, uri).
    pub allowed_sans: Option<Vec<String>>,
    /// Device profiles: allow the Microsoft SID URI SAN (default false).
    pub allow_sid: Option<bool>,
}

/// A CSR key kind a profile may accept (defined in the CA core).
pub use ironseal_ca_core::profile::KeyType;

fn parse_eku(s: &str) -> Option<Eku> {
    match s {
        "serverAuth" => Some(Eku::ServerAuth),
        "clientAuth" => Some(Eku::ClientAuth),
        _ => None,
    }
}

/// A resolved issuance profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub lifetime: Duration,
    pub ekus: Vec<Eku>,
    pub key_types: Vec<KeyType>,
    /// CA id to issue from; `None` = the active issuing CA.
    pub ca: Option<String>,
    /// Hold each request for a second person's approval before signing.
    pub requires_approval: bool,
    /// Certificate shape (TLS, device, SPIFFE).
    pub kind: ProfileKind,
}

impl Profile {
    /// The CA-core profile this configured profile stands for.
    pub fn to_cert_profile(&self) -> CertProfile {
        CertProfile {
            name: self.name.clone(),
            kind: self.kind.clone(),
            lifetime: time::Duration::seconds(
                i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX),
            ),
            key_types: self.key_types.clone(),
            ekus: self.ekus.clone(),
            ca: self.ca.clone(),
            requires_approval: self.requires_approval,
        }
    }

    /// The built-in profile used when none is configured.
    fn builtin_default(lifetime: Duration) -> Profile {
        Profile {
            name: "default".to_string(),
            description: "TLS server and client certificate, the configured leaf lifetime"
                .to_string(),
            lifetime,
            ekus: vec![Eku::ServerAuth, Eku::ClientAuth],
            key_types: KeyType::ALL.to_vec(),
            ca: None,
            requires_approval: false,
            kind: ProfileKind::Tls,
        }
    }

    /// Whether a CSR key of this kind may be certified under the profile.
    pub fn allows_key(&self, key: LeafKey) -> bool {
        self.key_types.contains(&KeyType::of(key))
    }

    /// The allowed key kinds, comma-separated, for error messages.
    pub fn key_types_list(&self) -> String {
        self.key_types
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn resolve(index: usize, p: &ProfileFileConfig) -> Result<Profile, ConfigError> {
        let at = |field: &str| format!("profiles[{index}].{field}");
        let name = p
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| ConfigError::Invalid(format!("{} is required", at("name"))))?;
        let at = |field: &str| format!("profiles[{index}] ({name:?}).{field}");
        let kind = match p.kind.as_deref().unwrap_or("tls") {
            "tls" => ProfileKind::Tls,
            "spiffe" => ProfileKind::Spiffe(SpiffeOptions::default()),
            "device" => {
                let mut o = DeviceOptions::default();
                if let Some(v) = p.subject_from_csr {
                    o.subject_from_csr = v;
                }
                if let Some(v) = p.allow_sid {
                    o.allow_sid = v;
                }
                if let Some(list) = &p.allowed_sans {
                    o.allowed_sans.clear();
                    for k in list {
                        let kind = SanKind::parse(k).ok_or_else(|| {
                            ConfigError::Invalid(format!(
                                "{}: unknown value {k:?} (expected dns, ip, email or uri)",
                                at("allowed_sans")
                            ))
                        })?;
                        if !o.allowed_sans.contains(&kind) {
                            o.allowed_sans.push(kind);
                        }
                    }
                }
                ProfileKind::Device(o)
            }
            other => {
                return Err(ConfigError::Invalid(format!(
                    "{}: unknown value {other:?} (expected tls, device or spiffe)",
                    at("kind")
                )))
            }
        };
        if !matches!(kind, ProfileKind::Device(_)) {
            for (field, set) in [
                ("subject_from_csr", p.subject_from_csr.is_some()),
                ("allowed_sans", p.allowed_sans.is_some()),
                ("allow_sid", p.allow_sid.is_some()),
            ] {
                if set {
                    return Err(ConfigError::Invalid(format!(
                        "{} applies to kind = \"device\" only",
                        at(field)
                    )));
                }
            }
        }
        let lifetime_secs: u64 = match (p.lifetime_days, p.lifetime_minutes) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(format!(
                    "{} and {} are mutually exclusive",
                    at("lifetime_days"),
                    at("lifetime_minutes")
                )))
            }
            (Some(d), None) => {
                if d == 0 || d > 825 {
                    return Err(ConfigError::Invalid(format!(
                        "{} must be between 1 and 825, got {d}",
                        at("lifetime_days")
                    )));
                }
                u64::from(d) * 86_400
            }
            (None, Some(m)) => {
                if m == 0 || m > 825 * 1440 {
                    return Err(ConfigError::Invalid(format!(
                        "{} must be between 1 and {}, got {m}",
                        at("lifetime_minutes"),
                        825 * 1440
                    )));
                }
                u64::from(m) * 60
            }
            (None, None) => match kind {
                ProfileKind::Spiffe(_) => 3600,
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "{} (or {}) is required",
                        at("lifetime_days"),
                        at("lifetime_minutes")
                    )))
                }
            },
        };
        let mut ekus = Vec::new();
        let default_ekus: Vec<String> = kind
            .default_ekus()
            .iter()
            .map(|e| match e {
                Eku::ServerAuth => "serverAuth".to_string(),
                Eku::ClientAuth => "clientAuth".to_string(),
            })
            .collect();
        let eku_names: &[String] = match (&p.ekus, &kind) {
            (Some(v), _) => v,
            (None, ProfileKind::Tls) => &[],
            (None, _) => &default_ekus,
        };
        for e in eku_names {
            let eku = parse_eku(e).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "{}: unknown value {e:?} (expected serverAuth or clientAuth)",
                    at("ekus")
                ))
            })?;
            if !ekus.contains(&eku) {
                ekus.push(eku);
            }
        }
        if ekus.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{} must name at least one of serverAuth, clientAuth",
                at("ekus")
            )));
        }
        let key_types = match &p.key_types {
            None => KeyType::ALL.to_vec(),
            Some(list) => {
                let mut out = Vec::new();
                for k in list {
                    let kt = KeyType::parse(k).ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "{}: unknown value {k:?} (expected p256, p384, rsa or ed25519)",
                            at("key_types")
                        ))
                    })?;
                    if !out.contains(&kt) {
                        out.push(kt);
                    }
                }
                if out.is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "{} must not be empty",
                        at("key_types")
                    )));
                }
                out
            }
        };
        if let Some(ca) = &p.ca {
            if ca.trim().is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{} must not be empty",
                    at("ca")
                )));
            }
        }
        Ok(Profile {
            description: p.description.clone().unwrap_or_else(|| name.clone()),
            name,
            lifetime: Duration::from_secs(lifetime_secs),
            ekus,
            key_types,
            ca: p.ca.clone(),
            requires_approval: p.requires_approval.unwrap_or(false),
            kind,
        })
    }
}

/// `[ca]` section: the hierarchy created on first start.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CaFileConfig {
    /// Name constraints of the issuing CA (`permitted`, `excluded`).
    pub name_constraints: Option<NameConstraints>,
}

/// The default KEK file: beside the data directory, named after it
/// (`data` → `data.kek`, `/var/lib/ironseal` → `/var/lib/ironseal.kek`),
/// so that a copy or backup of the data directory never carries the key
/// that unseals the CA keys in it, while a first start needs no setup.
pub fn default_kek_file(data_dir: &std::path::Path) -> Result<PathBuf, ConfigError> {
    let abs = std::path::absolute(data_dir)
        .map_err(|e| ConfigError::Invalid(format!("data directory {}: {e}", data_dir.display())))?;
    // `data` stays relative (`data.kek`, as the operator wrote it); `.`
    // and the like become absolute, so the file never lands inside.
    let base = if data_dir.file_name().is_some() {
        data_dir
    } else {
        abs.as_path()
    };
    match abs.file_name().and_then(|n| n.to_str()) {
        Some(name) if name != ".." => Ok(base.with_file_name(format!("{name}.kek"))),
        _ => Err(ConfigError::Invalid(format!(
            "cannot place the key-encryption key beside the data directory {}; set kek_file \
             (--kek-file, IRONSEAL_KEK_FILE) or IRONSEAL_KEK",
            data_dir.display()
        ))),
    }
}

/// `[audit]` section: signed checkpoints of the audit log's head (see
/// [`crate::audit_keys`]).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuditFileConfig {
    /// File each checkpoint is appended to (one JSON line); default none:
    /// checkpoints go to the log only.
    pub checkpoint_file: Option<PathBuf>,
    /// Seconds between periodic checkpoints (taken only when the head
    /// moved); 0 turns them off. Default 3600.
    pub checkpoint_interval_secs: Option<u64>,
}

/// `[crl]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CrlFileConfig {
    /// CRL partitions per CA (Boulder-style sharding with a critical IDP).
    pub shards: Option<u32>,
    /// From this many revocations on, a CRL rebuild logs its stages (human
    /// log format only). Default 50,000.
    pub stage_log_entries: Option<usize>,
}

/// Default of `[storage] lease_ttl_secs`.
pub const DEFAULT_LEASE_TTL_SECS: u64 = 60;

/// `[storage]` section: where and how state is kept. `backend = "sled"`
/// (the default) keeps the store in `data_dir/db`; `backend = "postgres"`
/// keeps it in the PostgreSQL database `url` names (docs/storage-postgres.md).
#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StorageFileConfig {
    pub data_dir: Option<PathBuf>,
    /// Where `POST /admin/v1/backups` writes; default `<data_dir>/backups`.
    pub backup_dir: Option<PathBuf>,
    pub backend: Option<StorageBackendName>,
    /// libpq connection string, e.g.
    /// `postgres://ironseal@db1,db2/ironseal?target_session_attrs=read-write`.
    pub url: Option<String>,
    pub pool_size: Option<usize>,
    /// PostgreSQL: how often each replica polls the change generations
    /// (milliseconds, default 1000; docs/storage-postgres.md).
    pub change_poll_ms: Option<u64>,
    /// Lifetime of the leases replicas take in the store (processing of
    /// orders and authorizations, CRLs, OCSP responders); renewed while the
    /// work runs. Default 60 s.
    pub lease_ttl_secs: Option<u64>,
    /// This process's holder id in leases; default: random at start.
    pub replica_id: Option<String>,
}

impl std::fmt::Debug for StorageFileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("StorageFileConfig")
            .field("data_dir", &self.data_dir)
            .field("backup_dir", &self.backup_dir)
            .field("backend", &self.backend)
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("change_poll_ms", &self.change_poll_ms)
            .field("lease_ttl_secs", &self.lease_ttl_secs)
            .field("replica_id", &self.replica_id)
            .finish()
    }
}

/// `[storage] change_poll_ms` when not set.
pub const DEFAULT_CHANGE_POLL_MS: u64 = 1000;

/// `[storage] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackendName {
    Sled,
    Postgres,
}

/// Where the store lives (resolved `[storage]`).
#[derive(Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// sled in `data_dir/db`.
    Sled,
    /// PostgreSQL.
    Postgres {
        /// libpq connection string (may carry a password: never logged).
        url: String,
        /// Most pooled connections.
        pool_size: usize,
    },
}

impl std::fmt::Debug for StorageBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageBackend::Sled => f.write_str("Sled"),
            StorageBackend::Postgres { pool_size, .. } => f
                .debug_struct("Postgres")
                .field("url", &"<redacted>")
                .field("pool_size", pool_size)
                .finish(),
        }
    }
}

impl StorageFileConfig {
    /// Checks the backend settings: `url` is required by, and only
    /// accepted with, `backend = "postgres"`.
    fn resolve_backend(&self) -> Result<StorageBackend, ConfigError> {
        match (self.backend.unwrap_or(StorageBackendName::Sled), &self.url) {
            (StorageBackendName::Sled, None)
                if self.pool_size.is_none() && self.change_poll_ms.is_none() =>
            {
                Ok(StorageBackend::Sled)
            }
            (StorageBackendName::Sled, _) => Err(ConfigError::Invalid(
                "[storage] url, pool_size and change_poll_ms need backend = \"postgres\"".into(),
            )),
            (StorageBackendName::Postgres, None) => Err(ConfigError::Invalid(
                "[storage] backend = \"postgres\" needs url = \"postgres://...\"".into(),
            )),
            (StorageBackendName::Postgres, Some(url)) => {
                let pool_size = self
                    .pool_size
                    .unwrap_or(ironseal_storage::PG_DEFAULT_POOL_SIZE);
                if pool_size == 0 {
                    return Err(ConfigError::Invalid(
                        "[storage] pool_size must be at least 1".into(),
                    ));
                }
                Ok(StorageBackend::Postgres {
                    url: url.clone(),
                    pool_size,
                })
            }
        }
    }

    /// `change_poll_ms`, checked: 50 ms to 60 s.
    fn change_poll(&self) -> Result<std::time::Duration, ConfigError> {
        let ms = self.change_poll_ms.unwrap_or(DEFAULT_CHANGE_POLL_MS);
        if !(50..=60_000).contains(&ms) {
            return Err(ConfigError::Invalid(format!(
                "[storage] change_poll_ms must be 50 to 60000, not {ms}"
            )));
        }
        Ok(std::time::Duration::from_millis(ms))
    }
}

/// `[acme]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeFileConfig {
    pub terms_of_service: Option<String>,
    pub website: Option<String>,
    pub caa_identities: Option<Vec<String>>,
    pub ari_retry_after_secs: Option<u64>,
    pub order_lifetime_hours: Option<u32>,
    pub authz_lifetime_days: Option<u32>,
    /// Expired orders and authorizations are deleted this long after they
    /// expire (default 24).
    pub purge_after_hours: Option<u32>,
    /// Minutes between purge runs (default 60; 0: never purge).
    pub purge_interval_minutes: Option<u32>,
    pub external_account_required: Option<EabPolicy>,
}

/// `[limits]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsFileConfig {
    pub max_body_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub header_read_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_body_requests: Option<usize>,
    pub new_orders_per_account_per_minute: Option<u32>,
    /// Unfinished (pending or ready), unexpired orders one account may hold.
    pub max_pending_orders_per_account: Option<u32>,
    /// Pending, unexpired authorizations one account may hold.
    pub max_pending_authzs_per_account: Option<u32>,
    pub new_orders_per_tenant_per_minute: Option<u32>,
    pub new_orders_per_ip_per_minute: Option<u32>,
    pub new_accounts_per_ip_per_hour: Option<u32>,
    pub failed_validations_per_account_per_hour: Option<u32>,
    pub failed_validations_per_tenant_per_hour: Option<u32>,
    pub failed_validations_per_ip_per_hour: Option<u32>,
}

/// `[validation]` section: challenge validation limits.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationFileConfig {
    /// CIDR ranges of non-public addresses validation may dial.
    pub allow_addresses: Option<Vec<ipnet::IpNet>>,
    pub max_concurrent: Option<usize>,
    /// hosts(5) file consulted before DNS (opt-in).
    pub hosts_file: Option<PathBuf>,
    /// Check CAA (RFC 8659) when a DNS name is validated (default true).
    pub caa: Option<bool>,
}

/// `[ocsp]` section: bounds on the OCSP responder's work (see
/// [`crate::ocsp`]).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OcspFileConfig {
    pub max_live_signing: Option<usize>,
    pub queue_wait_ms: Option<u64>,
    pub unknown_cache_secs: Option<u32>,
}

/// `[metrics]` section: where `/metrics` is served and who may read it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsFileConfig {
    /// A separate plain-HTTP listener for `/metrics` (and `/health`);
    /// set, `/metrics` leaves the main plain-HTTP listener.
    pub listen: Option<SocketAddr>,
    /// A file holding the bearer token `/metrics` then requires.
    pub bearer_token_file: Option<PathBuf>,
}

/// A secret that `Debug` never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// `[testing]` section: options that weaken validation for test setups.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TestingFileConfig {
    pub dns_resolver: Option<SocketAddr>,
    pub http01_port: Option<u16>,
    pub tlsalpn01_port: Option<u16>,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Where online backups are written (`[storage] backup_dir`).
    pub backup_dir: PathBuf,
    /// Where the store lives; the data directory still holds
    /// the files listed in docs/storage-postgres.md.
    pub storage: StorageBackend,
    /// PostgreSQL: how often the change generations are polled
    /// (`[storage] change_poll_ms`; see `crate::propagate`).
    pub change_poll: std::time::Duration,
    /// `[storage] lease_ttl_secs` (≥ 1 s).
    pub lease_ttl: Duration,
    /// `[storage] replica_id`; `None`: random at start.
    pub replica_id: Option<String>,
    pub listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub hostnames: Vec<String>,
    pub http_public_url: String,
    pub kek_file: PathBuf,
    /// `kek_file` is the default (no file key, flag or environment set it).
    pub kek_file_is_default: bool,
    /// `allow_kek_in_data_dir`: a KEK inside the data or backup directory
    /// is accepted.
    pub allow_kek_in_data_dir: bool,
    pub ca_key_algorithm: KeyAlgorithm,
    pub ca_name_constraints: NameConstraints,
    pub crl_shards: u32,
    /// `[crl] stage_log_entries`.
    pub crl_stage_log_entries: usize,
    /// `leaf_lifetime_days`: the lifetime of the built-in "default"
    /// profile; issuance uses [`Profile::lifetime`].
    #[allow(
        dead_code,
        reason = "kept for operators reading the resolved config and for tests; issuance reads it through the built-in profile"
    )]
    pub leaf_lifetime: Duration,
    pub log_format: LogFormat,
    pub terms_of_service: String,
    pub website: String,
    pub caa_identities: Vec<String>,
    pub external_account_required: EabPolicy,
    pub ari_retry_after: Duration,
    pub order_lifetime: Duration,
    pub authz_lifetime: Duration,
    /// `[acme] purge_after_hours`.
    pub purge_after: Duration,
    /// `[acme] purge_interval_minutes` (0: off).
    pub purge_interval_minutes: u32,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    /// A connection with nothing in flight this long is closed.
    pub idle_timeout: Duration,
    /// Open connections per listener.
    pub max_connections: usize,
    /// Open connections per client IP (IPv6 /64) per listener.
    pub max_connections_per_ip: usize,
    /// Requests with a body handled at once per listener.
    pub max_body_requests: usize,
    pub new_orders_per_account_per_minute: u32,
    /// `[limits] max_pending_orders_per_account` (≥ 1).
    pub max_pending_orders_per_account: u32,
    /// `[limits] max_pending_authzs_per_account` (≥ 1).
    pub max_pending_authzs_per_account: u32,
    pub new_orders_per_tenant_per_minute: u32,
    pub new_orders_per_ip_per_minute: u32,
    pub new_accounts_per_ip_per_hour: u32,
    pub failed_validations_per_account_per_hour: u32,
    pub failed_validations_per_tenant_per_hour: u32,
    pub failed_validations_per_ip_per_hour: u32,
    pub dns_resolver: Option<SocketAddr>,
    pub http01_port: u16,
    pub tlsalpn01_port: u16,
    /// Non-public ranges validation may connect to (besides public
    /// addresses); loopback is added when any test knob is set.
    pub validation_allow_addresses: Vec<ipnet::IpNet>,
    /// Concurrent validations (≥ 1).
    pub validation_max_concurrent: usize,
    /// `[validation] hosts_file`: its path and parsed names, read at start.
    pub validation_hosts: Option<(PathBuf, Arc<crate::validation::hosts_file::HostsFile>)>,
    /// `[validation] caa`: check CAA records (RFC 8659) when a DNS
    /// identifier is validated; tenants can opt out one by one.
    pub validation_caa: bool,
    /// `[ocsp]`: live signing bound, queue wait, `unknown` cache TTL.
    pub ocsp: crate::ocsp::OcspLimits,
    /// `[metrics] listen`: a separate listener for `/metrics`; `None`:
    /// `/metrics` is on the plain-HTTP listener.
    pub metrics_listen: Option<SocketAddr>,
    /// `[metrics] bearer_token_file`, read: the token `/metrics` requires.
    pub metrics_token: Option<Secret>,
    /// `[audit] checkpoint_file`: where checkpoints are appended.
    pub audit_checkpoint_file: Option<PathBuf>,
    /// `[audit] checkpoint_interval_secs`; `None`: no periodic checkpoints.
    pub audit_checkpoint_interval: Option<Duration>,
    /// Issuance profiles, in file order; never empty (the built-in
    /// "default" when none is configured).
    pub profiles: Vec<Profile>,
    /// CA bundle trusted for admin client certificates; `None`: client
    /// certificates are neither requested nor looked at.
    pub admin_client_ca: Option<PathBuf>,
    /// Certificate identity → role, first match wins; non-empty exactly
    /// when `admin_client_ca` is set.
    pub admin_client_certs: Vec<CertRule>,
    /// `[scep]`, see [`crate::scep::config`].
    pub scep: crate::scep::config::ScepConfig,
    /// `[est]`: EST labels; empty when EST is off.
    pub est: crate::est::config::EstConfig,
}

/// Why a configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Merges command line (with environment) over the file over defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?
            }
            None => FileConfig::default(),
        };
        if let (Some(top), Some(nested)) = (&file.data_dir, &file.storage.data_dir) {
            if top != nested {
                return Err(ConfigError::Invalid(format!(
                    "data_dir ({}) and [storage] data_dir ({}) disagree; keep [storage] data_dir",
                    top.display(),
                    nested.display()
                )));
            }
        }
        let data_dir = args
            .data_dir
            .clone()
            .or(file.storage.data_dir.clone())
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("data"));
        let storage = file.storage.resolve_backend()?;
        let change_poll = file.storage.change_poll()?;
        let lease_ttl_secs = file
            .storage
            .lease_ttl_secs
            .unwrap_or(DEFAULT_LEASE_TTL_SECS);
        if lease_ttl_secs == 0 {
            return Err(ConfigError::Invalid(
                "[storage] lease_ttl_secs must be at least 1".into(),
            ));
        }
        let replica_id = file.storage.replica_id.clone();
        if let Some(id) = &replica_id {
            if id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(ConfigError::Invalid(
                    "[storage] replica_id must be 1 to 64 characters of A-Z a-z 0-9 - _ .".into(),
                ));
            }
        }
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 14000)));
        let http_listen = args
            .http_listen
            .or(file.http_listen)
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 14080)));
        let hostnames = if !args.hostnames.is_empty() {
            args.hostnames.clone()
        } else {
            file.hostnames
                .unwrap_or_else(|| vec!["localhost".to_string(), "127.0.0.1".to_string()])
        };
        let first_host = hostnames
            .first()
            .cloned()
            .ok_or_else(|| ConfigError::Invalid("at least one hostname is required".into()))?;
        let http_public_url = args
            .http_public_url
            .clone()
            .or(file.http_public_url)
            .unwrap_or_else(|| format!("http://{}:{}", url_host(&first_host), http_listen.port()));
        if !http_public_url.starts_with("http://") {
            return Err(ConfigError::Invalid(
                "http_public_url must be a plain http:// URL (RFC 5280 §4.2.1.13 CRL and AIA fetches are unauthenticated HTTP)".into(),
            ));
        }
        let kek_file_is_default = args.kek_file.is_none() && file.kek_file.is_none();
        let kek_file = match args.kek_file.clone().or(file.kek_file) {
            Some(f) => f,
            None => default_kek_file(&data_dir)?,
        };
        let allow_kek_in_data_dir =
            args.allow_kek_in_data_dir || file.allow_kek_in_data_dir.unwrap_or(false);
        let leaf_days = args
            .leaf_lifetime_days
            .or(file.leaf_lifetime_days)
            .unwrap_or(90);
        if leaf_days == 0 || leaf_days > 825 {
            return Err(ConfigError::Invalid(
                "leaf_lifetime_days must be between 1 and 825".into(),
            ));
        }
        if args.crl_shards.or(file.crl.shards) == Some(0) {
            return Err(ConfigError::Invalid("crl shards must be at least 1".into()));
        }
        let ca_name_constraints = if args.ca_permit.is_empty() && args.ca_exclude.is_empty() {
            file.ca.name_constraints.unwrap_or_default()
        } else {
            NameConstraints {
                permitted: args.ca_permit.clone(),
                excluded: args.ca_exclude.clone(),
            }
        };
        let leaf_lifetime = Duration::from_secs(u64::from(leaf_days) * 86_400);
        let profiles = if file.profiles.is_empty() {
            vec![Profile::builtin_default(leaf_lifetime)]
        } else {
            let mut out: Vec<Profile> = Vec::with_capacity(file.profiles.len());
            for (i, p) in file.profiles.iter().enumerate() {
                let resolved = Profile::resolve(i, p)?;
                if out.iter().any(|o| o.name == resolved.name) {
                    return Err(ConfigError::Invalid(format!(
                        "profiles[{i}].name: duplicate profile name {:?}",
                        resolved.name
                    )));
                }
                out.push(resolved);
            }
            out
        };
        let admin_client_ca = args.admin_client_ca.clone().or(file.admin_client_ca);
        let admin_client_certs = if args.admin_client_certs.is_empty() {
            file.admin_client_certs
                .iter()
                .enumerate()
                .map(|(i, e)| e.resolve(i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ConfigError::Invalid)?
        } else {
            args.admin_client_certs.clone()
        };
        match (&admin_client_ca, admin_client_certs.is_empty()) {
            (Some(ca), true) => {
                return Err(ConfigError::Invalid(format!(
                    "admin_client_ca {} is set but no admin_client_certs rule gives a role",
                    ca.display()
                )))
            }
            (None, false) => {
                return Err(ConfigError::Invalid(
                    "admin_client_certs rules need admin_client_ca (the CAs trusted for them)"
                        .into(),
                ))
            }
            _ => {}
        }
        let validation_allow_addresses = if args.validation_allow_addresses.is_empty() {
            file.validation.allow_addresses.unwrap_or_default()
        } else {
            args.validation_allow_addresses.clone()
        };
        let validation_max_concurrent = args
            .validation_max_concurrent
            .or(file.validation.max_concurrent)
            .unwrap_or(64);
        if validation_max_concurrent == 0 {
            return Err(ConfigError::Invalid(
                "validation max_concurrent must be at least 1".into(),
            ));
        }
        let validation_hosts = match args
            .validation_hosts
            .clone()
            .or(file.validation.hosts_file.clone())
        {
            None => None,
            Some(path) => {
                let hosts = crate::validation::hosts_file::HostsFile::load(&path)
                    .map_err(|e| ConfigError::Invalid(e.to_string()))?;
                Some((path, Arc::new(hosts)))
            }
        };
        let est = file
            .est
            .resolve(|p| profiles.iter().any(|x| x.name == p))
            .map_err(ConfigError::Invalid)?;
        let ocsp = crate::ocsp::OcspLimits {
            max_live_signing: match file.ocsp.max_live_signing {
                Some(0) => {
                    return Err(ConfigError::Invalid(
                        "[ocsp] max_live_signing must be at least 1".into(),
                    ))
                }
                Some(n) => n,
                None => crate::ocsp::default_max_live_signing(),
            },
            queue_wait: Duration::from_millis(file.ocsp.queue_wait_ms.unwrap_or(2000)),
            unknown_ttl: time::Duration::seconds(i64::from(
                file.ocsp.unknown_cache_secs.unwrap_or(60),
            )),
        };
        let metrics_token = match &file.metrics.bearer_token_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "[metrics] bearer_token_file {}: {e}",
                        path.display()
                    ))
                })?;
                let token = text.trim();
                if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ConfigError::Invalid(format!(
                        "[metrics] bearer_token_file {}: the token must be at least 16 printable ASCII characters",
                        path.display()
                    )));
                }
                Some(Secret(token.to_string()))
            }
        };
        let acme = file.acme;
        let limits = file.limits;
        let testing = file.testing;
        let backup_dir = args
            .backup_dir
            .clone()
            .or(file.storage.backup_dir.clone())
            .unwrap_or_else(|| data_dir.join("backups"));
        Ok(Config {
            http_public_url: http_public_url.trim_end_matches('/').to_string(),
            backup_dir,
            data_dir,
            storage,
            change_poll,
            lease_ttl: Duration::from_secs(lease_ttl_secs),
            replica_id,
            listen,
            http_listen,
            hostnames,
            kek_file,
            kek_file_is_default,
            allow_kek_in_data_dir,
            ca_key_algorithm: args
                .ca_key_algorithm
                .or(file.ca_key_algorithm)
                .unwrap_or(KeyAlgorithm::EcdsaP256),
            ca_name_constraints,
            crl_shards: args.crl_shards.or(file.crl.shards).unwrap_or(1),
            crl_stage_log_entries: file.crl.stage_log_entries.unwrap_or(50_000),
            leaf_lifetime,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            terms_of_service: acme
                .terms_of_service
                .unwrap_or_else(|| "https://ironseal.invalid/terms/v1".to_string()),
            website: acme
                .website
                .unwrap_or_else(|| "https://ironseal.invalid/".to_string()),
            caa_identities: acme.caa_identities.unwrap_or_default(),
            external_account_required: args
                .external_account_required
                .or(acme.external_account_required)
                .unwrap_or_default(),
            ari_retry_after: Duration::from_secs(
                args.ari_retry_after_secs
                    .or(acme.ari_retry_after_secs)
                    .unwrap_or(6 * 3600),
            ),
            order_lifetime: Duration::from_secs(
                u64::from(acme.order_lifetime_hours.unwrap_or(168)) * 3600,
            ),
            authz_lifetime: Duration::from_secs(
                u64::from(acme.authz_lifetime_days.unwrap_or(30)) * 86_400,
            ),
            purge_after: Duration::from_secs(
                u64::from(acme.purge_after_hours.unwrap_or(24)) * 3600,
            ),
            purge_interval_minutes: acme.purge_interval_minutes.unwrap_or(60),
            max_body_bytes: limits.max_body_bytes.unwrap_or(64 * 1024),
            request_timeout: Duration::from_secs(limits.request_timeout_secs.unwrap_or(30)),
            header_read_timeout: Duration::from_secs(limits.header_read_timeout_secs.unwrap_or(10)),
            idle_timeout: Duration::from_secs(limits.idle_timeout_secs.unwrap_or(60).max(1)),
            max_connections: limits.max_connections.unwrap_or(4096).max(1),
            max_connections_per_ip: limits.max_connections_per_ip.unwrap_or(256).max(1),
            max_body_requests: limits.max_body_requests.unwrap_or(256).max(1),
            new_orders_per_account_per_minute: limits
                .new_orders_per_account_per_minute
                .unwrap_or(6000),
            max_pending_orders_per_account: limits
                .max_pending_orders_per_account
                .unwrap_or(300)
                .max(1),
            max_pending_authzs_per_account: limits
                .max_pending_authzs_per_account
                .unwrap_or(1000)
                .max(1),
            new_orders_per_tenant_per_minute: limits
                .new_orders_per_tenant_per_minute
                .unwrap_or(30_000),
            new_orders_per_ip_per_minute: limits.new_orders_per_ip_per_minute.unwrap_or(100_000),
            new_accounts_per_ip_per_hour: limits.new_accounts_per_ip_per_hour.unwrap_or(10_000),
            failed_validations_per_account_per_hour: limits
                .failed_validations_per_account_per_hour
                .unwrap_or(300),
            failed_validations_per_tenant_per_hour: limits
                .failed_validations_per_tenant_per_hour
                .unwrap_or(3000),
            failed_validations_per_ip_per_hour: limits
                .failed_validations_per_ip_per_hour
                .unwrap_or(3000),
            dns_resolver: args.test_dns_resolver.or(testing.dns_resolver),
            http01_port: args.test_http01_port.or(testing.http01_port).unwrap_or(80),
            tlsalpn01_port: args
                .test_tlsalpn01_port
                .or(testing.tlsalpn01_port)
                .unwrap_or(443),
            validation_allow_addresses,
            validation_max_concurrent,
            validation_hosts,
            validation_caa: file.validation.caa.unwrap_or(true),
            ocsp,
            metrics_listen: file.metrics.listen,
            metrics_token,
            audit_checkpoint_file: file.audit.checkpoint_file.clone(),
            audit_checkpoint_interval: match file.audit.checkpoint_interval_secs.unwrap_or(3600) {
                0 => None,
                n => Some(Duration::from_secs(n)),
            },
            scep: crate::scep::config::resolve(&file.scep, &profiles)?,
            profiles,
            admin_client_ca,
            admin_client_certs,
            est,
        })
    }

    /// Where the KEK file was before it moved out of the data directory.
    pub fn legacy_kek_file(&self) -> PathBuf {
        self.data_dir.join("kek")
    }

    /// The profile called `name`, if configured.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The configured rate limits (see [`crate::rate_limits`]).
    pub fn rate_limits(&self) -> Vec<(Limit, Rate)> {
        vec![
            (
                Limit::NewAccountsPerIp,
                Rate::per_hour(self.new_accounts_per_ip_per_hour),
            ),
            (
                Limit::NewOrdersPerAccount,
                Rate::per_minute(self.new_orders_per_account_per_minute),
            ),
            (
                Limit::NewOrdersPerTenant,
                Rate::per_minute(self.new_orders_per_tenant_per_minute),
            ),
            (
                Limit::NewOrdersPerIp,
                Rate::per_minute(self.new_orders_per_ip_per_minute),
            ),
            (
                Limit::FailedValidationsPerAccount,
                Rate::per_hour(self.failed_validations_per_account_per_hour),
            ),
            (
                Limit::FailedValidationsPerTenant,
                Rate::per_hour(self.failed_validations_per_tenant_per_hour),
            ),
            (
                Limit::FailedValidationsPerIp,
                Rate::per_hour(self.failed_validations_per_ip_per_hour),
            ),
        ]
    }

    /// The profile of orders that name none: "default" if configured,
    /// otherwise the first configured profile.
    pub fn default_profile(&self) -> &Profile {
        self.profile("default").unwrap_or(&self.profiles[0])
    }

    /// The address policy of challenge validation: public addresses, the
    /// configured ranges, the addresses of the hosts file, and loopback
    /// when a test knob is set (test setups run their challenge responders
    /// on loopback).
    pub fn validation_address_policy(&self) -> crate::validation::AddressPolicy {
        let mut p =
            crate::validation::AddressPolicy::with_allowed(self.validation_allow_addresses.clone());
        if let Some((_, hosts)) = &self.validation_hosts {
            p = p.allow_hosts(&hosts.addresses());
        }
        if self.test_knobs().is_empty() {
            p
        } else {
            p.allow_loopback()
        }
    }

    /// The issuer domain names advertised as `caaIdentities` and accepted
    /// in CAA records: `[acme] caa_identities`, else the hostnames.
    pub fn effective_caa_identities(&self) -> &[String] {
        if self.caa_identities.is_empty() {
            &self.hostnames
        } else {
            &self.caa_identities
        }
    }

    /// True when any option that weakens validation for tests is set.
    pub fn test_knobs(&self) -> Vec<String> {
        let mut knobs = Vec::new();
        if let Some(r) = self.dns_resolver {
            knobs.push(format!("challenge DNS resolver overridden to {r}"));
        }
        if self.http01_port != 80 {
            knobs.push(format!("http-01 validated on port {}", self.http01_port));
        }
        if self.tlsalpn01_port != 443 {
            knobs.push(format!(
                "tls-alpn-01 validated on port {}",
                self.tlsalpn01_port
            ));
        }
        knobs
    }
}

/// Brackets IPv6 literals for use in a URL authority.
pub fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_p256() {
        let c = Config::resolve(&ServeArgs::default()).expect("defaults resolve");
        assert_eq!(c.listen.to_string(), "127.0.0.1:14000");
        assert_eq!(c.http_public_url, "http://localhost:14080");
        assert_eq!(c.ca_key_algorithm, KeyAlgorithm::EcdsaP256);
        assert_eq!(c.leaf_lifetime, Duration::from_secs(90 * 86_400));
        assert!(c.test_knobs().is_empty());
    }

    #[test]
    fn file_is_overridden_by_args() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "leaf_lifetime_days = 30\nlisten = \"127.0.0.1:9\"\n[testing]\nhttp01_port = 5002\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:10".parse().expect("addr")),
            ..Default::default()
        };
        let c = Config::resolve(&args).expect("resolve");
        assert_eq!(c.listen.port(), 10);
        assert_eq!(c.leaf_lifetime, Duration::from_secs(30 * 86_400));
        assert_eq!(c.http01_port, 5002);
        assert_eq!(c.test_knobs().len(), 1);
    }

    #[test]
    fn validation_hosts_file_is_read_at_start_and_widens_the_address_policy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "10.9.8.7 app.internal.test\n").expect("write");
        let conf = dir.path().join("c.toml");
        std::fs::write(
            &conf,
            format!(
                "[validation]\nhosts_file = {:?}\n",
                hosts.display().to_string()
            ),
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(conf),
            ..Default::default()
        };
        let c = Config::resolve(&args).expect("resolve");
        let policy = c.validation_address_policy();
        assert!(policy.check("10.9.8.7".parse().expect("ip")).is_ok());
        assert!(policy.check("10.9.8.8".parse().expect("ip")).is_err());
        // Not a test knob: loopback stays refused.
        assert!(policy.check("127.0.0.1".parse().expect("ip")).is_err());
        std::fs::write(&hosts, "app.internal.test 10.9.8.7\n").expect("write");
        let err = Config::resolve(&args).expect_err("bad hosts file");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn example_config_parses_to_the_defaults() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ironseal.example.toml");
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        let from_file = Config::resolve(&args).expect("docs/ironseal.example.toml must parse");
        let defaults = Config::resolve(&ServeArgs::default()).expect("defaults");
        assert_eq!(from_file.listen, defaults.listen);
        assert_eq!(from_file.http_listen, defaults.http_listen);
        assert_eq!(from_file.hostnames, defaults.hostnames);
        assert_eq!(from_file.leaf_lifetime, defaults.leaf_lifetime);
        assert_eq!(from_file.ari_retry_after, defaults.ari_retry_after);
        assert_eq!(from_file.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(
            from_file.new_orders_per_account_per_minute,
            defaults.new_orders_per_account_per_minute
        );
        assert_eq!(
            (
                from_file.max_pending_orders_per_account,
                from_file.max_pending_authzs_per_account
            ),
            (
                defaults.max_pending_orders_per_account,
                defaults.max_pending_authzs_per_account
            )
        );
        assert!(from_file.test_knobs().is_empty());
        assert_eq!(from_file.data_dir, defaults.data_dir);
        assert_eq!(from_file.rate_limits(), defaults.rate_limits());
        assert_eq!(from_file.scep, defaults.scep);
        assert_eq!(
            from_file.external_account_required,
            defaults.external_account_required
        );
    }

    #[test]
    fn metrics_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        let resolve = |text: &str| {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).expect("write");
            Config::resolve(&ServeArgs {
                config: Some(path),
                ..Default::default()
            })
        };
        let d = resolve("").expect("defaults");
        assert_eq!(d.metrics_listen, None);
        assert_eq!(d.metrics_token, None);
        let token = dir.path().join("token");
        std::fs::write(&token, "0123456789abcdef-token\n").expect("token");
        let c = resolve(&format!(
            "[metrics]\nlisten = \"127.0.0.1:9464\"\nbearer_token_file = {:?}\n",
            token.display().to_string()
        ))
        .expect("metrics");
        assert_eq!(
            c.metrics_listen,
            Some("127.0.0.1:9464".parse().expect("addr"))
        );
        assert_eq!(
            c.metrics_token,
            Some(Secret("0123456789abcdef-token".into()))
        );
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        std::fs::write(&token, "short").expect("token");
        let short = format!(
            "[metrics]\nbearer_token_file = {:?}\n",
            token.display().to_string()
        );
        assert!(resolve(&short).is_err());
        assert!(resolve("[metrics]\nbearer_token_file = \"/nonexistent/x\"\n").is_err());
    }

    #[test]
    fn ocsp_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        let resolve = |text: &str| {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).expect("write");
            Config::resolve(&ServeArgs {
                config: Some(path),
                ..Default::default()
            })
        };
        let d = resolve("").expect("defaults");
        assert!(d.ocsp.max_live_signing >= 2);
        assert_eq!(d.ocsp.queue_wait, Duration::from_secs(2));
        assert_eq!(d.ocsp.unknown_ttl, time::Duration::seconds(60));
        let c =
            resolve("[ocsp]\nmax_live_signing = 3\nqueue_wait_ms = 5\nunknown_cache_secs = 0\n")
                .expect("ocsp");
        assert_eq!(c.ocsp.max_live_signing, 3);
        assert_eq!(c.ocsp.queue_wait, Duration::from_millis(5));
        assert_eq!(c.ocsp.unknown_ttl, time::Duration::ZERO);
        assert!(resolve("[ocsp]\nmax_live_signing = 0\n").is_err());
        assert!(resolve("[ocsp]\nlive = 1\n").is_err());
    }

    #[test]
    fn storage_section_and_the_older_top_level_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let resolve = |text: &str| {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).expect("write");
            Config::resolve(&ServeArgs {
                config: Some(path),
                ..Default::default()
            })
        };
        let nested = resolve("[storage]\ndata_dir = \"/var/lib/a\"\n").expect("nested");
        assert_eq!(nested.data_dir, PathBuf::from("/var/lib/a"));
        let old = resolve("data_dir = \"/var/lib/b\"\n").expect("top level");
        assert_eq!(old.data_dir, PathBuf::from("/var/lib/b"));
        let same = resolve("data_dir = \"/x\"\n[storage]\ndata_dir = \"/x\"\n").expect("same");
        assert_eq!(same.data_dir, PathBuf::from("/x"));
        let err = resolve("data_dir = \"/x\"\n[storage]\ndata_dir = \"/y\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("disagree"), "{err}");
    }

    #[test]
    fn storage_backend_sled_or_postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let resolve = |text: &str| {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).expect("write");
            Config::resolve(&ServeArgs {
                config: Some(path),
                ..Default::default()
            })
        };
        let err = |text: &str| {
            resolve(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(resolve("").expect("default").storage, StorageBackend::Sled);
        assert_eq!(
            resolve("[storage]\nbackend = \"sled\"\n")
                .expect("sled")
                .storage,
            StorageBackend::Sled
        );
        let url =
            "postgres://ironseal:secret@db1:5432,db2:5432/ironseal?target_session_attrs=read-write";
        let pg = resolve(&format!(
            "[storage]\nbackend = \"postgres\"\nurl = \"{url}\"\npool_size = 4\n"
        ))
        .expect("postgres");
        assert_eq!(
            pg.storage,
            StorageBackend::Postgres {
                url: url.into(),
                pool_size: 4
            }
        );
        // The password never shows in a debug print of the config.
        assert!(!format!("{pg:?}").contains("secret"));
        let default_pool = resolve("[storage]\nbackend = \"postgres\"\nurl = \"postgres://h/d\"\n")
            .expect("default pool");
        assert!(
            matches!(default_pool.storage, StorageBackend::Postgres { pool_size, .. } if pool_size > 0)
        );
        assert!(err("[storage]\nbackend = \"postgres\"\n").contains("needs url"));
        assert!(err("[storage]\nurl = \"postgres://h/d\"\n").contains("need backend"));
        assert!(err(
            "[storage]\nbackend = \"postgres\"\nurl = \"postgres://h/d\"\npool_size = 0\n"
        )
        .contains("pool_size"));
        assert!(err("[storage]\nbackend = \"mysql\"\n").contains("unknown variant"));
        assert_eq!(
            default_pool.change_poll,
            std::time::Duration::from_millis(DEFAULT_CHANGE_POLL_MS)
        );
        let pg_poll =
            "[storage]\nbackend = \"postgres\"\nurl = \"postgres://h/d\"\nchange_poll_ms = ";
        assert_eq!(
            resolve(&format!("{pg_poll}250\n"))
                .expect("poll")
                .change_poll,
            std::time::Duration::from_millis(250)
        );
        assert!(err(&format!("{pg_poll}10\n")).contains("change_poll_ms must be 50 to 60000"));
        assert!(err("[storage]\nchange_poll_ms = 500\n").contains("need backend"));
    }

    #[test]
    fn lease_ttl_and_replica_id() {
        let c = resolve_text("").expect("defaults");
        assert_eq!(c.lease_ttl, Duration::from_secs(DEFAULT_LEASE_TTL_SECS));
        assert_eq!(c.replica_id, None);
        let c = resolve_text("[storage]\nlease_ttl_secs = 3\nreplica_id = \"ca-1.b_2\"\n")
            .expect("set");
        assert_eq!(c.lease_ttl, Duration::from_secs(3));
        assert_eq!(c.replica_id.as_deref(), Some("ca-1.b_2"));
        let err = |t: &str| {
            resolve_text(t)
                .map(|_| ())
                .expect_err("must be refused")
                .to_string()
        };
        assert!(err("[storage]\nlease_ttl_secs = 0\n").contains("lease_ttl_secs"));
        for bad in ["", "a b", "x/y", &"r".repeat(65)] {
            assert!(
                err(&format!("[storage]\nreplica_id = \"{bad}\"\n")).contains("replica_id"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn example_admin_client_certs_block_parses_when_uncommented() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ironseal.example.toml");
        let text = std::fs::read_to_string(path).expect("example");
        let keys = [
            "admin_client_ca =",
            "[[admin_client_certs]]",
            "subject_cn =",
            "san_uri =",
            "role =",
        ];
        let mut uncommented = 0;
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if keys.iter().any(|k| rest.starts_with(k)) => {
                    uncommented += 1;
                    format!("{rest}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect();
        assert_eq!(uncommented, 7, "the example's admin client block changed");
        let c = resolve_text(&text).expect("uncommented example must parse");
        assert!(c.admin_client_ca.is_some());
        let rules: Vec<String> = c
            .admin_client_certs
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            rules,
            [
                "operator=subject_cn:ops-laptop",
                "auditor=san_uri:spiffe://corp.example/audit"
            ]
        );
    }

    fn resolve_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).expect("write");
        Config::resolve(&ServeArgs {
            config: Some(path),
            ..Default::default()
        })
    }

    fn invalid_message(r: Result<Config, ConfigError>) -> String {
        match r {
            Err(ConfigError::Invalid(m)) => m,
            other => panic!("expected ConfigError::Invalid, got {other:?}"),
        }
    }

    #[test]
    fn builtin_default_profile_when_none_configured() {
        let c = Config::resolve(&ServeArgs::default()).expect("defaults");
        assert_eq!(c.profiles.len(), 1);
        let p = c.profile("default").expect("default profile");
        assert_eq!(p.lifetime, c.leaf_lifetime);
        assert_eq!(p.ekus, vec![Eku::ServerAuth, Eku::ClientAuth]);
        assert_eq!(p.key_types, KeyType::ALL.to_vec());
        assert_eq!(p.ca, None);
        assert_eq!(c.default_profile().name, "default");
        assert!(c.profile("nope").is_none());
    }

    #[test]
    fn profiles_parse() {
        let c = resolve_text(
            r#"
[[profiles]]
name = "tls-server"
description = "TLS servers"
lifetime_days = 30
ekus = ["serverAuth"]
key_types = ["p256"]

[[profiles]]
name = "client"
description = "Clients"
lifetime_days = 7
ekus = ["clientAuth"]
ca = "some-ca"
"#,
        )
        .expect("resolve");
        assert_eq!(c.profiles.len(), 2);
        let t = c.profile("tls-server").expect("tls-server");
        assert_eq!(t.description, "TLS servers");
        assert_eq!(t.lifetime, Duration::from_secs(30 * 86_400));
        assert_eq!(t.ekus, vec![Eku::ServerAuth]);
        assert_eq!(t.key_types, vec![KeyType::P256]);
        assert!(t.allows_key(LeafKey::EcdsaP256));
        assert!(!t.allows_key(LeafKey::Rsa { bits: 2048 }));
        let cl = c.profile("client").expect("client");
        assert_eq!(cl.ekus, vec![Eku::ClientAuth]);
        assert_eq!(cl.key_types, KeyType::ALL.to_vec());
        assert_eq!(cl.ca.as_deref(), Some("some-ca"));
        // No "default": the first configured profile is the default.
        assert!(c.profile("default").is_none());
        assert_eq!(c.default_profile().name, "tls-server");
    }

    #[test]
    fn configured_default_profile_wins() {
        let c = resolve_text(
            "[[profiles]]\nname = \"a\"\nlifetime_days = 1\nekus = [\"clientAuth\"]\n\
             [[profiles]]\nname = \"default\"\nlifetime_days = 2\nekus = [\"serverAuth\"]\n",
        )
        .expect("resolve");
        assert_eq!(c.default_profile().name, "default");
    }

    #[test]
    fn profile_kinds_parse() {
        let c = resolve_text(
            r#"
[[profiles]]
name = "devices"
kind = "device"
lifetime_days = 365
subject_from_csr = false
allowed_sans = ["email", "uri"]
allow_sid = true

[[profiles]]
name = "svid"
kind = "spiffe"

[[profiles]]
name = "short"
lifetime_minutes = 5
ekus = ["serverAuth"]
"#,
        )
        .expect("resolve");
        let d = c.profile("devices").expect("devices").to_cert_profile();
        assert_eq!(
            d.kind,
            ProfileKind::Device(DeviceOptions {
                subject_from_csr: false,
                allowed_sans: vec![SanKind::Email, SanKind::Uri],
                allow_sid: true,
            })
        );
        assert_eq!(d.ekus, vec![Eku::ClientAuth]);
        let s = c.profile("svid").expect("svid").to_cert_profile();
        assert_eq!(s.lifetime, time::Duration::hours(1));
        assert_eq!(s.ekus, vec![Eku::ServerAuth, Eku::ClientAuth]);
        let t = c.profile("short").expect("short");
        assert_eq!(t.kind, ProfileKind::Tls);
        assert_eq!(t.lifetime, Duration::from_secs(300));
        let bad = "[[profiles]]\nname = \"x\"\nkind = \"iot\"\nlifetime_days = 1\n";
        assert!(invalid_message(resolve_text(bad)).contains("kind"));
        let misplaced = "[[profiles]]\nname = \"x\"\nlifetime_days = 1\nekus = [\"serverAuth\"]\nallow_sid = true\n";
        assert!(invalid_message(resolve_text(misplaced)).contains("allow_sid"));
    }

    #[test]
    fn profile_validation_names_the_field() {
        let dup = "[[profiles]]\nname = \"x\"\nlifetime_days = 1\nekus = [\"serverAuth\"]\n\
                   [[profiles]]\nname = \"x\"\nlifetime_days = 2\nekus = [\"serverAuth\"]\n";
        assert!(invalid_message(resolve_text(dup)).contains("name"));
        for days in ["0", "826"] {
            let t = format!(
                "[[profiles]]\nname = \"x\"\nlifetime_days = {days}\nekus = [\"serverAuth\"]\n"
            );
            assert!(invalid_message(resolve_text(&t)).contains("lifetime_days"));
        }
        let no_life = "[[profiles]]\nname = \"x\"\nekus = [\"serverAuth\"]\n";
        assert!(invalid_message(resolve_text(no_life)).contains("lifetime_days"));
        let empty_ekus = "[[profiles]]\nname = \"x\"\nlifetime_days = 1\nekus = []\n";
        assert!(invalid_message(resolve_text(empty_ekus)).contains("ekus"));
        let bad_eku = "[[profiles]]\nname = \"x\"\nlifetime_days = 1\nekus = [\"codeSigning\"]\n";
        let m = invalid_message(resolve_text(bad_eku));
        assert!(m.contains("ekus") && m.contains("codeSigning"), "{m}");
        let bad_key = "[[profiles]]\nname = \"x\"\nlifetime_days = 1\nekus = [\"serverAuth\"]\nkey_types = [\"dsa\"]\n";
        let m = invalid_message(resolve_text(bad_key));
        assert!(m.contains("key_types") && m.contains("dsa"), "{m}");
        let no_name = "[[profiles]]\nlifetime_days = 1\nekus = [\"serverAuth\"]\n";
        assert!(invalid_message(resolve_text(no_name)).contains("name"));
        let unknown_key =
            "[[profiles]]\nname = \"x\"\nlifetime_days = 1\nekus = [\"serverAuth\"]\nfoo = 1\n";
        assert!(matches!(
            resolve_text(unknown_key),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn admin_client_certificates_parse() {
        use crate::client_cert::CertMatcher;
        use ironseal_storage::ApiRole;
        let c = resolve_text(
            r#"
admin_client_ca = "/etc/ironseal/admin-clients.pem"

[[admin_client_certs]]
subject_cn = "ops laptop"
role = "operator"

[[admin_client_certs]]
san_uri = "spiffe://corp/audit"
role = "auditor"
"#,
        )
        .expect("resolve");
        assert_eq!(
            c.admin_client_ca.as_deref(),
            Some(std::path::Path::new("/etc/ironseal/admin-clients.pem"))
        );
        assert_eq!(c.admin_client_certs.len(), 2);
        assert_eq!(c.admin_client_certs[0].role, ApiRole::Operator);
        assert_eq!(
            c.admin_client_certs[1].matcher,
            CertMatcher::SanUri("spiffe://corp/audit".into())
        );
        // Defaults: off.
        let d = Config::resolve(&ServeArgs::default()).expect("defaults");
        assert!(d.admin_client_ca.is_none() && d.admin_client_certs.is_empty());
    }

    #[test]
    fn admin_client_certificate_flags_replace_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "admin_client_ca = \"a.pem\"\n[[admin_client_certs]]\nsubject_cn = \"x\"\nrole = \"admin\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path),
            admin_client_ca: Some("b.pem".into()),
            admin_client_certs: vec!["auditor=san_dns:a.example".parse().expect("rule")],
            ..Default::default()
        };
        let c = Config::resolve(&args).expect("resolve");
        assert_eq!(c.admin_client_ca, Some(PathBuf::from("b.pem")));
        assert_eq!(
            c.admin_client_certs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["auditor=san_dns:a.example"]
        );
    }

    #[test]
    fn admin_client_certificate_options_come_in_pairs() {
        let m = invalid_message(resolve_text("admin_client_ca = \"a.pem\"\n"));
        assert!(m.contains("no admin_client_certs rule"), "{m}");
        let m = invalid_message(resolve_text(
            "[[admin_client_certs]]\nsubject_cn = \"x\"\nrole = \"admin\"\n",
        ));
        assert!(m.contains("need admin_client_ca"), "{m}");
        let m = invalid_message(resolve_text(
            "admin_client_ca = \"a.pem\"\n[[admin_client_certs]]\nrole = \"admin\"\n",
        ));
        assert!(m.contains("admin_client_certs[0] needs one of"), "{m}");
        let unknown = "admin_client_ca = \"a.pem\"\n[[admin_client_certs]]\nserial = \"01\"\nrole = \"admin\"\n";
        assert!(matches!(
            resolve_text(unknown),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lsiten = \"x\"\n").expect("write");
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(matches!(
            Config::resolve(&args),
            Err(ConfigError::Parse { .. })
        ));
    }
}
