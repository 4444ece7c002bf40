//! First start and every start: open the data directory, the key-encryption
//! key, the store; create the root and issuing CA when there are none;
//! unseal the CA keys; create (or import) the first admin API key; issue the HTTPS
//! listener's certificate from our own CA.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ironseal_ca_core::cert::pem_encode;
use ironseal_ca_core::hierarchy::{CaProfile, Issuer, IssuerUrls};
use ironseal_ca_core::keys::CaKey;
use ironseal_ca_core::sealed::{open, seal, Kek};
use ironseal_storage::{
    settings, ApiKeyRecord, ApiRole, AuditEvent, CaRecord, CaStatus, CaUpdate, CrossCert,
    PgOptions, PgStore, SledStore, Store,
};
use time::OffsetDateTime;

use crate::admin::auth::{generate_key, key_hash, INITIAL_KEY_ID};
use crate::authority::ca_ops::{self, CaChange};
use crate::authority::{CaSet, IssuingCa};
use crate::client_cert::ClientCertAuth;
use crate::config::{Config, StorageBackend};
use crate::ids::new_id;

/// Startup failures, each with what the operator should do.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("key-encryption key: {0}")]
    Kek(String),
    #[error("store: {0}")]
    Store(#[from] ironseal_storage::StoreError),
    #[error("CA: {0}")]
    Ca(#[from] ironseal_ca_core::error::CaError),
    #[error("CA {id}: {why}")]
    CaRecord { id: String, why: String },
    #[error("TLS: {0}")]
    Tls(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BootError + '_ {
    move |source| BootError::DataDir {
        path: path.display().to_string(),
        source,
    }
}

/// Creates the data directory (mode 0700) if needed.
pub fn prepare_data_dir(dir: &Path) -> Result<(), BootError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
    }
    Ok(())
}

/// `path` made absolute with symbolic links resolved as far as it exists
/// (the KEK file or a directory may not exist yet).
fn resolved(path: &Path) -> std::path::PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => resolved(parent).join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// Refuses a KEK file inside the data directory or the backup directory,
/// where every copy or backup of them would carry the key that unseals the
/// CA keys they hold (hardening, issue 10 item 7), unless
/// `allow_kek_in_data_dir` is set.
fn check_kek_place(config: &Config, path: &Path) -> Result<(), BootError> {
    if config.allow_kek_in_data_dir {
        return Ok(());
    }
    let kek = resolved(path);
    for (what, dir) in [
        ("data directory", &config.data_dir),
        ("backup directory", &config.backup_dir),
    ] {
        if kek.starts_with(resolved(dir)) {
            return Err(BootError::Kek(format!(
                "the key-encryption key file {} is inside the {what} {}, so every copy or \
                 backup of that directory would carry the key that unseals the CA keys. Move \
                 it out (e.g. `mv {} {}`) and set kek_file (--kek-file, IRONSEAL_KEK_FILE) \
                 to its new place, or pass it as IRONSEAL_KEK; to accept the risk, set \
                 allow_kek_in_data_dir = true (--allow-kek-in-data-dir)",
                path.display(),
                dir.display(),
                path.display(),
                default_place(config).display(),
            )));
        }
    }
    Ok(())
}

/// Where a KEK is best moved to: the configured file when it is outside,
/// else the default beside the data directory.
fn default_place(config: &Config) -> std::path::PathBuf {
    crate::config::default_kek_file(&config.data_dir)
        .unwrap_or_else(|_| std::path::PathBuf::from("/etc/ironseal/kek"))
}

/// Loads the key-encryption key: `IRONSEAL_KEK` (base64, 32 bytes) if set,
/// else the KEK file, which is created with mode 0600 on first start and
/// must not be readable by group or others. The file must not be inside
/// the data or backup directory (see [`check_kek_place`]). The default
/// file is `<data-dir>.kek`; a data directory that still holds `kek` (the
/// default before) is refused with what to do, never given a second key.
pub fn load_kek(config: &Config) -> Result<Kek, BootError> {
    if let Ok(b64) = std::env::var("IRONSEAL_KEK") {
        return Kek::from_base64(b64.trim())
            .map_err(|e| BootError::Kek(format!("IRONSEAL_KEK: {e}")));
    }
    let mut path = config.kek_file.clone();
    let legacy = config.legacy_kek_file();
    if config.kek_file_is_default && !path.exists() && legacy.exists() {
        if config.allow_kek_in_data_dir {
            path = legacy;
        } else {
            return Err(BootError::Kek(format!(
                "the key-encryption key is at {legacy}, inside the data directory (the default \
                 of earlier versions), so every copy or backup of the data directory carries \
                 the key that unseals its CA keys. Move it out of the data directory and keep \
                 a backup of it elsewhere: `mv {legacy} {new}` (the new default place), or \
                 move it anywhere and set kek_file (--kek-file, IRONSEAL_KEK_FILE); to keep it \
                 where it is, set allow_kek_in_data_dir = true (--allow-kek-in-data-dir)",
                legacy = legacy.display(),
                new = path.display(),
            )));
        }
    }
    check_kek_place(config, &path)?;
    if !path.exists() {
        let key: [u8; 32] = rand::random();
        let cannot = |e: std::io::Error| {
            BootError::Kek(format!(
                "cannot create the key-encryption key {}: {e}; set IRONSEAL_KEK, or kek_file \
                 (--kek-file, IRONSEAL_KEK_FILE) to a writable place outside the data directory",
                path.display()
            ))
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(cannot)?;
        f.write_all(STANDARD.encode(key).as_bytes())
            .map_err(io_err(&path))?;
        f.sync_all().map_err(io_err(&path))?;
        let shown = resolved(&path);
        tracing::warn!(
            path = %shown.display(),
            "created a new key-encryption key, outside the data directory: back it up separately \
             (without it the CA keys cannot be unsealed; neither the data directory nor \
             `ironseal backup` contains it)"
        );
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!(
                "ironseal: created the key-encryption key {} (outside the data directory). \
                 Back it up separately: without it the CA keys cannot be unsealed.",
                shown.display()
            );
        }
    }
    let meta = fs::metadata(&path).map_err(io_err(&path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(BootError::Kek(format!(
            "{} is readable by group or others (mode {:o}); run chmod 600 on it",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let text = fs::read_to_string(&path).map_err(io_err(&path))?;
    Kek::from_base64(text.trim()).map_err(|e| BootError::Kek(format!("{}: {e}", path.display())))
}

/// Opens the configured store: sled in the data directory, or PostgreSQL
/// (connects and applies the schema migrations).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, BootError> {
    match &config.storage {
        StorageBackend::Sled => Ok(Arc::new(SledStore::open(&config.data_dir.join("db"))?)),
        StorageBackend::Postgres { url, pool_size } => {
            let store = PgStore::open(&PgOptions {
                url: url.clone(),
                pool_size: *pool_size,
                schema: None,
            })
            .await?;
            tracing::info!(
                pool_size,
                schema_version = PgStore::schema_version(),
                "store: PostgreSQL"
            );
            Ok(Arc::new(store))
        }
    }
}

/// The URLs put into certificates this CA signs: its own certificate (AIA
/// caIssuers) and its CRL (CRL distribution point), over plain HTTP.
pub(crate) fn urls_for(config: &Config, ca_id: &str) -> IssuerUrls {
    let base = &config.http_public_url;
    IssuerUrls {
        ca_issuers: Some(format!("{base}/ca/{ca_id}.der")),
        ocsp: Some(format!("{base}/ocsp")),
        crl: Some(format!("{base}/crl/{ca_id}.crl")),
    }
}

/// The audit actor of what the server does at its first start.
pub const BOOTSTRAP_ACTOR: &str = "server:bootstrap";

/// Creates a root and an issuing intermediate (pathLen 0) when the store has
/// no CA yet. Keys are sealed with the KEK, bound to the CA id. The keys
/// are generated on a blocking thread.
///
/// The root and the intermediate are two store writes (the intermediate
/// is signed with the recorded root). A first start that ended between
/// them (killed while the intermediate's key was generated) left a store
/// with a lone root and no issuing CA, on which no later start could run;
/// such a store now gets its issuing CA under that root
/// ([`lone_first_start_root`]).
pub async fn ensure_hierarchy(
    config: &Config,
    store: &Arc<dyn Store>,
    kek: &Kek,
) -> Result<bool, BootError> {
    let existing = store.list_cas().await?;
    let root_issuer = match existing.as_slice() {
        [] => record_first_root(config, store, kek).await?,
        [root] if lone_first_start_root(root) => {
            tracing::warn!(
                root = %root.id,
                "the first start ended after creating the root CA and before the issuing CA; creating the issuing CA now"
            );
            unsealed_root(config, kek, root)?
        }
        _ => return Ok(false),
    };
    let root_id = root_issuer.issuer.id().to_string();
    let int_id = record_first_issuing(config, store, kek, root_issuer).await?;
    crate::durability::flush(store).await?;
    tracing::info!(root = %root_id, issuing = %int_id, algorithm = %config.ca_key_algorithm, "created CA hierarchy");
    Ok(true)
}

/// Whether `ca`, the store's only CA, is a root left by an interrupted
/// first start: an active root whose key ironseal holds. (An imported
/// external root has no key here; a store with any other CA is not a
/// first start.)
fn lone_first_start_root(ca: &CaRecord) -> bool {
    ca.parent_id.is_none() && ca.status == CaStatus::Active && ca.status.has_key_and_cert()
}

/// The key of CA record `ca`, unsealed with the KEK it is bound to.
fn unseal_ca_key(kek: &Kek, ca: &CaRecord) -> Result<CaKey, BootError> {
    let pkcs8 = open(kek, &ca.sealed_key, ca.id.as_bytes()).map_err(|e| BootError::CaRecord {
        id: ca.id.clone(),
        why: format!("cannot unseal the key ({e}); is this the right key-encryption key?"),
    })?;
    Ok(CaKey::from_pkcs8_der(&pkcs8)?)
}

/// The stored root `ca` as an issuer, its key unsealed.
fn unsealed_root(config: &Config, kek: &Kek, ca: &CaRecord) -> Result<Arc<IssuingCa>, BootError> {
    Ok(Arc::new(IssuingCa {
        issuer: Issuer::new(
            ca.id.clone(),
            ca.cert_der.clone(),
            unseal_ca_key(kek, ca)?,
            urls_for(config, &ca.id),
        )?,
        chain_der: Vec::new(),
        chains: Vec::new(),
    }))
}

/// Signs and records the first start's root CA; returns it as an issuer.
async fn record_first_root(
    config: &Config,
    store: &Arc<dyn Store>,
    kek: &Kek,
) -> Result<Arc<IssuingCa>, BootError> {
    let now = OffsetDateTime::now_utc();
    let alg = config.ca_key_algorithm;
    let root_id = format!("root-{}", &new_id()[..8]).to_lowercase();
    let root_profile = CaProfile {
        common_name: format!("ironseal Root CA {}", &root_id[5..]),
        organization: Some("ironseal".to_string()),
        algorithm: alg,
        not_before: now - time::Duration::hours(1),
        not_after: now + time::Duration::days(365 * 20),
        path_len: None,
        ..Default::default()
    };
    // Both signatures (this and the issuing CA's) go through the authority
    // and are recorded (records plus one audit entry each) before the
    // hierarchy is used.
    let root_signed = ca_ops::sign_ca_off_worker(root_profile.clone(), None).await?;
    let (root_key, root_der) = root_signed.get();
    let root_sealed = seal(
        kek,
        root_key.pkcs8_der(),
        root_id.as_bytes(),
        rand::random(),
    )?;
    let root_record = CaRecord {
        id: root_id.clone(),
        name: root_profile.common_name.clone(),
        parent_id: None,
        cert_der: root_der.clone(),
        sealed_key: root_sealed,
        algorithm: Some(alg),
        status: CaStatus::Active,
        created_at: now,
        cross_certs: Vec::new(),
        csr_der: Vec::new(),
        predecessor_id: None,
    };
    let (root_key, root_der) = root_signed
        .record(
            store.as_ref(),
            BOOTSTRAP_ACTOR,
            &CaChange {
                records: vec![CaUpdate::create(root_record.clone())],
                issuing_pin: None,
                action: "ca.create",
                summary: format!(
                    "id={root_id} name={:?} parent=- algorithm={alg} first start",
                    root_profile.common_name
                ),
            },
        )
        .await?;
    Ok(Arc::new(IssuingCa {
        issuer: Issuer::new(
            root_id.clone(),
            root_der,
            root_key,
            urls_for(config, &root_id),
        )?,
        chain_der: Vec::new(),
        chains: Vec::new(),
    }))
}

/// Signs the first start's issuing CA under `root_issuer` and records it;
/// returns its id.
async fn record_first_issuing(
    config: &Config,
    store: &Arc<dyn Store>,
    kek: &Kek,
    root_issuer: Arc<IssuingCa>,
) -> Result<String, BootError> {
    let now = OffsetDateTime::now_utc();
    let alg = config.ca_key_algorithm;
    let root_id = root_issuer.issuer.id().to_string();
    let int_id = format!("int-{}", &new_id()[..8]).to_lowercase();
    let int_profile = CaProfile {
        common_name: format!("ironseal Issuing CA {}", &int_id[4..]),
        organization: Some("ironseal".to_string()),
        algorithm: alg,
        not_before: now - time::Duration::hours(1),
        not_after: now + time::Duration::days(365 * 8),
        path_len: Some(0),
        name_constraints: config.ca_name_constraints.clone(),
        ..Default::default()
    };
    let int_signed = ca_ops::sign_ca_off_worker(int_profile.clone(), Some(root_issuer)).await?;
    let (int_key, int_der) = int_signed.get();
    let int_sealed = seal(kek, int_key.pkcs8_der(), int_id.as_bytes(), rand::random())?;
    let int_record = CaRecord {
        id: int_id.clone(),
        name: int_profile.common_name.clone(),
        parent_id: Some(root_id.clone()),
        cert_der: int_der.clone(),
        sealed_key: int_sealed,
        algorithm: Some(alg),
        status: CaStatus::Active,
        created_at: now,
        cross_certs: Vec::new(),
        csr_der: Vec::new(),
        predecessor_id: None,
    };
    int_signed
        .record(
            store.as_ref(),
            BOOTSTRAP_ACTOR,
            &CaChange {
                records: vec![CaUpdate::create(int_record.clone())],
                issuing_pin: None,
                action: "ca.create",
                summary: format!(
                    "id={int_id} name={:?} parent={root_id} algorithm={alg} first start",
                    int_profile.common_name
                ),
            },
        )
        .await?;
    Ok(int_id)
}

/// Name of the file in older data directories that named the issuing CA
/// (the CA that signs new leaves). The pin now lives in the store
/// ([`ironseal_storage::settings::ISSUING_CA`]), so that `activate` through
/// any replica switches all; an existing file is imported once at start
/// ([`import_issuing_file`]) and renamed to `issuing-ca.imported`. Backups
/// and exports still carry the pin as a file of this name.
pub const ISSUING_FILE: &str = "issuing-ca";

/// The id in the issuing-CA file of the data directory, if there is one.
pub fn read_issuing_file(config: &Config) -> Option<String> {
    fs::read_to_string(config.data_dir.join(ISSUING_FILE))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The pinned issuing CA in the store, with the setting's version.
pub async fn read_issuing_pin(store: &dyn Store) -> Result<Option<(String, u64)>, BootError> {
    Ok(store
        .get_setting(settings::ISSUING_CA)
        .await?
        .map(|r| {
            (
                String::from_utf8_lossy(&r.value).trim().to_string(),
                r.version,
            )
        })
        .filter(|(id, _)| !id.is_empty()))
}

/// The pinned issuing CA: the store's pin, else (a data directory whose
/// file was not imported yet, e.g. an offline export) the file's.
pub async fn read_issuing(config: &Config, store: &dyn Store) -> Result<Option<String>, BootError> {
    Ok(match read_issuing_pin(store).await? {
        Some((id, _)) => Some(id),
        None => read_issuing_file(config),
    })
}

/// Imports an older data directory's issuing-CA file into the store, once:
/// only while the store has no pin (another replica's pin wins), then
/// renames the file to `issuing-ca.imported` so it is never read again.
pub async fn import_issuing_file(config: &Config, store: &dyn Store) -> Result<(), BootError> {
    let Some(id) = read_issuing_file(config) else {
        return Ok(());
    };
    if store
        .put_setting(settings::ISSUING_CA, id.as_bytes(), None)
        .await?
        .is_some()
    {
        tracing::info!(issuing = %id, "imported the issuing-CA file into the store");
    }
    let path = config.data_dir.join(ISSUING_FILE);
    let done = config.data_dir.join(format!("{ISSUING_FILE}.imported"));
    fs::rename(&path, &done).map_err(io_err(&path))?;
    Ok(())
}

/// Pins `id` as the issuing CA in the store (compare-and-swap, retried
/// against concurrent writers: the last write wins, as with the file).
pub async fn write_issuing(store: &dyn Store, id: &str) -> Result<(), BootError> {
    for _ in 0..16 {
        let expected = store
            .get_setting(settings::ISSUING_CA)
            .await?
            .map(|r| r.version);
        if store
            .put_setting(settings::ISSUING_CA, id.as_bytes(), expected)
            .await?
            .is_some()
        {
            return Ok(());
        }
    }
    Err(BootError::CaRecord {
        id: id.into(),
        why: "the issuing-CA pin kept changing under this write; try again".into(),
    })
}

/// Unseals every CA and picks the active issuing CA: the one the store's
/// issuing-CA pin names if that is an active intermediate; otherwise
/// (first start, stores from before the pin) the newest active CA with a
/// parent. With `repin` (at start) that choice is pinned when the store
/// has no pin yet (compare-and-swap: a pin another replica wrote first
/// stays), so that CAs created later through the admin API never take
/// over issuance until they are activated. Reloads after a change
/// (`repin` false) never write: a pin whose CA record is not yet visible
/// as active must not be overwritten by a replica that polled in between.
pub async fn load_cas(
    config: &Config,
    store: &dyn Store,
    kek: &Kek,
    repin: bool,
) -> Result<CaSet, BootError> {
    let records = store.list_cas().await?;
    let mut by_id = HashMap::new();
    let mut der_by_id = HashMap::new();
    let mut external_by_id = HashMap::new();
    for r in &records {
        // A pending CA has no certificate yet: not part of any chain.
        if r.status == CaStatus::Pending {
            continue;
        }
        der_by_id.insert(r.id.clone(), (r.cert_der.clone(), r.parent_id.clone()));
        if r.status == CaStatus::External {
            external_by_id.insert(r.id.clone(), r.cert_der.clone());
        }
    }
    let cross_by_id: HashMap<String, Vec<CrossCert>> = records
        .iter()
        .filter(|r| !r.cross_certs.is_empty())
        .map(|r| (r.id.clone(), r.cross_certs.clone()))
        .collect();
    let pin = read_issuing_pin(store).await?;
    let pinned = pin.as_ref().map(|(id, _)| id.clone());
    let mut pinned_ok = false;
    let mut active: Option<(&CaRecord, Arc<IssuingCa>)> = None;
    for r in &records {
        // Only CAs whose key and certificate ironseal holds can sign.
        if !r.status.has_key_and_cert() {
            continue;
        }
        let key = unseal_ca_key(kek, r)?;
        // Ancestors (parent first, root last) so issuance enforces every
        // CA's name constraints and path length (RFC 5280 §6.1).
        let mut ancestors = Vec::new();
        let mut up = r.parent_id.clone();
        while let Some(pid) = up {
            let Some((der, parent)) = der_by_id.get(&pid) else {
                break;
            };
            ancestors.push(der.clone());
            up = parent.clone();
        }
        let issuer = Issuer::new(
            r.id.clone(),
            r.cert_der.clone(),
            key,
            urls_for(config, &r.id),
        )?
        .with_ancestors(&ancestors)?;
        // Chain after a leaf of this CA: this CA and its ancestors, root excluded.
        let mut chain = String::new();
        let mut chain_der = Vec::new();
        let mut cur = Some(r.id.clone());
        while let Some(id) = cur {
            let Some((der, parent)) = der_by_id.get(&id) else {
                break;
            };
            if parent.is_none() {
                break;
            }
            chain.push_str(&pem_encode("CERTIFICATE", der));
            chain_der.push(der.clone());
            cur = parent.clone();
        }
        let mut chains = vec![chain];
        chains.extend(cross_chains(&r.id, &der_by_id, &cross_by_id));
        let ca = Arc::new(IssuingCa {
            issuer,
            chain_der,
            chains,
        });
        if r.parent_id.is_some() && r.status == CaStatus::Active && !pinned_ok {
            if pinned.as_deref() == Some(r.id.as_str()) {
                pinned_ok = true;
                active = Some((r, ca.clone()));
            } else {
                let newer = active
                    .as_ref()
                    .is_none_or(|(a, _)| r.created_at >= a.created_at);
                if newer {
                    active = Some((r, ca.clone()));
                }
            }
        }
        by_id.insert(r.id.clone(), ca);
    }
    let (active_record, active) = active.ok_or_else(|| BootError::CaRecord {
        id: "-".into(),
        why: "no active issuing CA in the store".into(),
    })?;
    if !pinned_ok {
        if let Some(p) = &pinned {
            tracing::warn!(named = %p, using = %active_record.id, "the CA named by the issuing-CA pin is not an active intermediate; using the newest active intermediate");
        }
        if repin {
            let expected = pin.as_ref().map(|(_, v)| *v);
            store
                .put_setting(settings::ISSUING_CA, active_record.id.as_bytes(), expected)
                .await?;
        }
    }
    // The root of the active issuing CA.
    let mut root_pem = String::new();
    let mut cur = Some(active_record.id.clone());
    while let Some(id) = cur {
        let Some((der, parent)) = der_by_id.get(&id) else {
            break;
        };
        if parent.is_none() {
            root_pem = pem_encode("CERTIFICATE", der);
        }
        cur = parent.clone();
    }
    Ok(CaSet {
        active,
        by_id,
        external_by_id,
        active_root_pem: root_pem.clone(),
        root_pem,
    })
}

/// Ids and parents of the CAs in the store.
type DerById = HashMap<String, (Vec<u8>, Option<String>)>;

/// The certificates of `id` and its ancestors, root excluded.
fn chain_up(id: &str, der_by_id: &DerById) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Some(id.to_string());
    while let Some(id) = cur {
        let Some((der, parent)) = der_by_id.get(&id) else {
            break;
        };
        if parent.is_none() || out.len() > 64 {
            break;
        }
        out.push(der.clone());
        cur = parent.clone();
    }
    out
}

/// Alternate chains after a leaf of CA `id`: for every CA on its path to
/// the root (itself included) that has a cross certificate, the default
/// chain up to that CA, then the cross certificate in place of the CA's own
/// certificate, then the cross-signer's ancestors (root excluded). One
/// substitution per chain; in store order.
fn cross_chains(
    id: &str,
    der_by_id: &DerById,
    cross_by_id: &HashMap<String, Vec<CrossCert>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut prefix: Vec<Vec<u8>> = Vec::new();
    let mut cur = Some(id.to_string());
    while let Some(cid) = cur {
        let Some((der, parent)) = der_by_id.get(&cid) else {
            break;
        };
        for cross in cross_by_id.get(&cid).into_iter().flatten() {
            if !der_by_id.contains_key(&cross.by) {
                continue;
            }
            let mut chain = String::new();
            for d in prefix
                .iter()
                .chain(std::iter::once(&cross.der))
                .chain(chain_up(&cross.by, der_by_id).iter())
            {
                chain.push_str(&pem_encode("CERTIFICATE", d));
            }
            out.push(chain);
        }
        if prefix.len() > 64 {
            break;
        }
        prefix.push(der.clone());
        cur = parent.clone();
    }
    out
}

/// File in the data directory that receives a generated first admin key.
pub const INITIAL_KEY_FILE: &str = "initial-admin-key";

/// Writes a generated first admin key to [`INITIAL_KEY_FILE`] (mode 0600,
/// never overwriting) and returns its path. The key never goes to the log
/// stream, where journald and log shippers would keep it.
pub fn write_initial_key(config: &Config, key: &str) -> Result<std::path::PathBuf, BootError> {
    let path = config.data_dir.join(INITIAL_KEY_FILE);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all(format!("{key}\n").as_bytes())
        .map_err(io_err(&path))?;
    f.sync_all().map_err(io_err(&path))?;
    Ok(path)
}

/// Writes root.pem into the data directory so clients can trust it.
pub fn write_root(config: &Config, cas: &CaSet) -> Result<(), BootError> {
    let path = config.data_dir.join("root.pem");
    fs::write(&path, cas.root_pem.as_bytes()).map_err(io_err(&path))?;
    Ok(())
}

/// The first admin API key, kept in the store as an admin-role key.
///
/// * The store has API keys already: nothing to do.
/// * An older data directory has `admin-key.sha256` (the key's SHA-256 in
///   hex): imported once as the admin key [`INITIAL_KEY_ID`], then the file
///   is renamed to `admin-key.sha256.imported` so that deleting the key
///   later through the API is not undone by the next start.
/// * Otherwise a new key: `IRONSEAL_INITIAL_ADMIN_KEY` (at least 16
///   characters; stored under [`INITIAL_KEY_ID`]) or a generated
///   `isk_<id>_<secret>`, returned so the caller can show it once.
///
/// Creation and import are recorded in the audit log (actor `system`).
pub async fn ensure_admin_key(
    config: &Config,
    store: &Arc<dyn Store>,
) -> Result<Option<String>, BootError> {
    let path = config.data_dir.join("admin-key.sha256");
    let now = OffsetDateTime::now_utc();
    let initial = |hash: String| ApiKeyRecord {
        id: INITIAL_KEY_ID.to_string(),
        name: "initial admin key".to_string(),
        role: ApiRole::Admin,
        secret_sha256: hash,
        created_at: now,
        created_by: "system".to_string(),
        disabled_at: None,
        tenant_id: None,
    };
    let audit = |action: &str, summary: String| AuditEvent {
        at: now,
        actor: "system".into(),
        action: action.into(),
        summary,
        outcome: None,
    };
    if path.exists() {
        if store.get_api_key(INITIAL_KEY_ID).await?.is_none() {
            let text = fs::read_to_string(&path).map_err(io_err(&path))?;
            let bytes = hex::decode(text.trim())
                .map_err(|_| BootError::Kek(format!("{} is not hex", path.display())))?;
            if bytes.len() != 32 {
                return Err(BootError::Kek(format!(
                    "{} is not a SHA-256",
                    path.display()
                )));
            }
            store.create_api_key(&initial(hex::encode(bytes))).await?;
            store
                .append_audit(&audit(
                    "admin-key.import",
                    format!("imported {} as admin key {INITIAL_KEY_ID}", path.display()),
                ))
                .await?;
            crate::durability::flush(store).await?;
            tracing::info!(file = %path.display(), "imported the admin API key into the store");
        }
        let done = config.data_dir.join("admin-key.sha256.imported");
        fs::rename(&path, &done).map_err(io_err(&path))?;
        return Ok(None);
    }
    if !store.list_api_keys().await?.is_empty() {
        return Ok(None);
    }
    let (record, key) = match std::env::var("IRONSEAL_INITIAL_ADMIN_KEY") {
        Ok(k) if k.len() >= 16 => (initial(key_hash(&k)), k),
        Ok(_) => {
            return Err(BootError::Kek(
                "IRONSEAL_INITIAL_ADMIN_KEY must be at least 16 characters".into(),
            ))
        }
        Err(_) => {
            let new = generate_key("initial admin key", ApiRole::Admin, "system", now);
            (new.record, new.key)
        }
    };
    store.create_api_key(&record).await?;
    store
        .append_audit(&audit(
            "admin-key.create",
            format!("created the first admin key {}", record.id),
        ))
        .await?;
    crate::durability::flush(store).await?;
    Ok(Some(key))
}

/// The names of the HTTPS listener's certificate: the configured hostnames.
pub fn listener_names(config: &Config) -> Vec<ironseal_ca_core::names::SubjectName> {
    use ironseal_ca_core::names::SubjectName;
    config
        .hostnames
        .iter()
        .map(|h| match h.parse::<std::net::IpAddr>() {
            Ok(ip) => SubjectName::Ip(ip),
            Err(_) => SubjectName::Dns(h.to_ascii_lowercase()),
        })
        .collect()
}

/// The certificates (DER) of every CA in the store: what the admin
/// client-certificate rules compare the client CA bundle against.
pub async fn own_ca_certs(store: &dyn Store) -> Result<Vec<Vec<u8>>, ironseal_storage::StoreError> {
    Ok(store
        .list_cas()
        .await?
        .into_iter()
        .map(|c| c.cert_der)
        .collect())
}

/// Admin client-certificate authentication, when `admin_client_ca` is
/// configured. Checked against every CA in the store (see
/// [`ClientCertAuth::new`]).
pub async fn client_cert_auth(
    config: &Config,
    store: &dyn Store,
) -> Result<Option<Arc<ClientCertAuth>>, BootError> {
    let Some(ca_file) = &config.admin_client_ca else {
        return Ok(None);
    };
    let own = own_ca_certs(store).await?;
    let auth = ClientCertAuth::new(ca_file, config.admin_client_certs.clone(), &own)
        .map_err(BootError::Tls)?;
    Ok(Some(Arc::new(auth)))
}

/// The rustls server configuration of the HTTPS listener: its
/// certificate comes from `listener` (issued from the issuing CA, renewed
/// live; see [`crate::listener_cert`]). With `client_auth`, the listener
/// asks every client for a certificate but requires none (RFC 8446
/// §4.3.2), so ACME clients are unaffected. `offer_client_auth` (EST is
/// configured) asks for client certificates even without `client_auth`.
pub fn tls_config(
    listener: Arc<crate::listener_cert::ListenerCert>,
    client_auth: Option<&ClientCertAuth>,
    offer_client_auth: bool,
) -> rustls::ServerConfig {
    let builder = rustls::ServerConfig::builder();
    let builder = match client_auth {
        Some(auth) => builder.with_client_cert_verifier(auth.tls_verifier()),
        None if offer_client_auth => {
            builder.with_client_cert_verifier(crate::client_cert::offer_only_verifier())
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(listener);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    cfg
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::admin::auth::authenticate;
    use crate::config::ServeArgs;
    use hyper::header::HeaderValue;
    use ironseal_storage::MemoryStore;

    fn config(dir: &Path) -> Config {
        Config::resolve(&ServeArgs {
            data_dir: Some(dir.to_path_buf()),
            ..Default::default()
        })
        .unwrap()
    }

    fn bearer(key: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Bearer {key}")).unwrap()
    }

    /// A store with two hierarchies: the second intermediate is newer.
    /// Returns the older and the newer intermediate's ids.
    async fn two_intermediates(
        cfg: &Config,
        store: &Arc<dyn Store>,
        kek: &Kek,
    ) -> (String, String) {
        ensure_hierarchy(cfg, store, kek).await.unwrap();
        let other: Arc<dyn Store> = Arc::new(MemoryStore::new());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        ensure_hierarchy(cfg, &other, kek).await.unwrap();
        for r in other.list_cas().await.unwrap() {
            store.put_ca(&r).await.unwrap();
        }
        let ints: Vec<String> = store
            .list_cas()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.parent_id.is_some())
            .map(|r| r.id)
            .collect();
        (ints[0].clone(), ints[1].clone())
    }

    /// A first start killed after recording the root and before the
    /// issuing CA left a lone root, on which no start could load an issuing
    /// CA; the next start creates the issuing CA under that root. A
    /// complete hierarchy is left alone.
    #[tokio::test]
    async fn an_interrupted_first_start_is_completed_at_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let root = record_first_root(&cfg, &store, &kek).await.unwrap();
        let root_id = root.issuer.id().to_string();
        assert!(
            load_cas(&cfg, store.as_ref(), &kek, true).await.is_err(),
            "a lone root has no issuing CA"
        );
        assert!(ensure_hierarchy(&cfg, &store, &kek).await.unwrap());
        let cas = load_cas(&cfg, store.as_ref(), &kek, true).await.unwrap();
        let records = store.list_cas().await.unwrap();
        assert_eq!(records.len(), 2);
        let issuing = records
            .iter()
            .find(|r| r.id == cas.active.issuer.id())
            .unwrap();
        assert_eq!(issuing.parent_id.as_deref(), Some(root_id.as_str()));
        assert!(!ensure_hierarchy(&cfg, &store, &kek).await.unwrap());
        assert_eq!(store.list_cas().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_older_data_directory_keeps_its_issuing_ca_pin() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (older, newer) = two_intermediates(&cfg, &store, &kek).await;
        // The file of a data directory from before the pin moved to the
        // store names the older intermediate, not the newest.
        std::fs::write(dir.path().join(ISSUING_FILE), format!("{older}\n")).unwrap();
        import_issuing_file(&cfg, store.as_ref()).await.unwrap();
        assert!(!dir.path().join(ISSUING_FILE).exists());
        assert!(dir.path().join("issuing-ca.imported").exists());
        assert_eq!(
            read_issuing(&cfg, store.as_ref()).await.unwrap().as_deref(),
            Some(older.as_str())
        );
        let cas = load_cas(&cfg, store.as_ref(), &kek, true).await.unwrap();
        assert_eq!(cas.active.issuer.id(), older);
        // Imported once: a later file does not override the store's pin.
        std::fs::write(dir.path().join(ISSUING_FILE), format!("{newer}\n")).unwrap();
        import_issuing_file(&cfg, store.as_ref()).await.unwrap();
        assert_eq!(
            load_cas(&cfg, store.as_ref(), &kek, true)
                .await
                .unwrap()
                .active
                .issuer
                .id(),
            older
        );
        // Activation writes the store's pin.
        write_issuing(store.as_ref(), &newer).await.unwrap();
        assert_eq!(
            load_cas(&cfg, store.as_ref(), &kek, false)
                .await
                .unwrap()
                .active
                .issuer
                .id(),
            newer
        );
    }

    #[tokio::test]
    async fn without_a_pin_the_newest_intermediate_is_pinned_at_start_only() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (_, newer) = two_intermediates(&cfg, &store, &kek).await;
        // A reload (another replica's change) never writes the pin.
        assert_eq!(
            load_cas(&cfg, store.as_ref(), &kek, false)
                .await
                .unwrap()
                .active
                .issuer
                .id(),
            newer
        );
        assert_eq!(read_issuing_pin(store.as_ref()).await.unwrap(), None);
        // A start pins its choice.
        load_cas(&cfg, store.as_ref(), &kek, true).await.unwrap();
        assert_eq!(
            read_issuing_pin(store.as_ref()).await.unwrap(),
            Some((newer, 1))
        );
    }

    #[tokio::test]
    async fn legacy_hash_file_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let legacy = "legacy-admin-key-0123456789";
        std::fs::write(dir.path().join("admin-key.sha256"), key_hash(legacy)).unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        assert_eq!(ensure_admin_key(&cfg, &store).await.unwrap(), None);
        let p = authenticate(store.as_ref(), Some(&bearer(legacy)))
            .await
            .unwrap();
        assert_eq!((p.id.as_str(), p.role), (INITIAL_KEY_ID, ApiRole::Admin));
        assert!(!dir.path().join("admin-key.sha256").exists());
        assert!(dir.path().join("admin-key.sha256.imported").exists());
        // Next start: nothing new, and a deleted key stays deleted (the
        // store keeps one admin key enabled, so another one exists first).
        store
            .create_api_key(&ApiKeyRecord {
                id: "second".into(),
                name: "second admin".into(),
                role: ApiRole::Admin,
                secret_sha256: key_hash("second-admin-key-0123456789"),
                created_at: OffsetDateTime::now_utc(),
                created_by: "test".into(),
                disabled_at: None,
                tenant_id: None,
            })
            .await
            .unwrap();
        store
            .disable_api_key(INITIAL_KEY_ID, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(ensure_admin_key(&cfg, &store).await.unwrap(), None);
        assert!(authenticate(store.as_ref(), Some(&bearer(legacy)))
            .await
            .is_err());
        assert_eq!(store.list_api_keys().await.unwrap().len(), 2);
        let log = store.audit_entries(0, 10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].action, "admin-key.import");
        assert_eq!(log[0].actor, "system");
    }

    #[tokio::test]
    async fn first_start_creates_an_admin_key() {
        if std::env::var_os("IRONSEAL_INITIAL_ADMIN_KEY").is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let key = ensure_admin_key(&cfg, &store).await.unwrap().unwrap();
        assert!(key.starts_with("isk_"));
        let p = authenticate(store.as_ref(), Some(&bearer(&key)))
            .await
            .unwrap();
        assert_eq!(p.role, ApiRole::Admin);
        // Shown once: the next start prints nothing.
        assert_eq!(ensure_admin_key(&cfg, &store).await.unwrap(), None);
        assert!(!store.list_api_keys().await.unwrap()[0]
            .secret_sha256
            .contains(&key));
    }

    /// Hardening (issue 10 item 7): the generated KEK lives beside the
    /// data directory; a KEK inside the data or backup directory is refused
    /// unless forced; the old `<data>/kek` layout is refused with what to do.
    #[test]
    fn kek_is_kept_out_of_the_data_directory() {
        if std::env::var_os("IRONSEAL_KEK").is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cfg = config(&data);
        assert_eq!(cfg.kek_file, dir.path().join("data.kek"));
        prepare_data_dir(&data).unwrap();
        load_kek(&cfg).unwrap();
        assert!(dir.path().join("data.kek").exists());
        assert!(!data.join("kek").exists());
        // The old layout: refused, no second key.
        fs::rename(dir.path().join("data.kek"), data.join("kek")).unwrap();
        let e = load_kek(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("inside the data directory") && e.contains("mv "),
            "{e}"
        );
        assert!(!dir.path().join("data.kek").exists());
        let forced = Config {
            allow_kek_in_data_dir: true,
            ..cfg.clone()
        };
        load_kek(&forced).unwrap();
        // Configured inside the data or backup directory.
        let inside = Config {
            kek_file: data.join("kek"),
            kek_file_is_default: false,
            ..cfg.clone()
        };
        let e = load_kek(&inside).unwrap_err().to_string();
        assert!(e.contains("inside the data directory"), "{e}");
        let backup = Config {
            backup_dir: dir.path().join("backups"),
            kek_file: dir.path().join("backups/k"),
            kek_file_is_default: false,
            ..cfg.clone()
        };
        let e = load_kek(&backup).unwrap_err().to_string();
        assert!(e.contains("inside the backup directory"), "{e}");
        // `.` as the data directory: the default is beside it, not in it.
        let dot = crate::config::default_kek_file(Path::new(".")).unwrap();
        assert!(dot.is_absolute() && !dot.starts_with(std::env::current_dir().unwrap()));
        assert!(crate::config::default_kek_file(Path::new("a/..")).is_err());
    }

    #[test]
    fn cross_chains_replace_the_cross_signed_ca() {
        // root1 <- a <- b; r2 (root) cross-signs a: chains of b and a gain
        // an alternate with the cross certificate in place of a.
        let mut ders: DerById = HashMap::new();
        ders.insert("root1".into(), (vec![1], None));
        ders.insert("a".into(), (vec![2], Some("root1".into())));
        ders.insert("b".into(), (vec![3], Some("a".into())));
        ders.insert("r2".into(), (vec![9], None));
        let mut cross = HashMap::new();
        cross.insert(
            "a".to_string(),
            vec![CrossCert {
                by: "r2".into(),
                der: vec![7],
            }],
        );
        let pem = |d: &[&[u8]]| {
            d.iter()
                .map(|d| pem_encode("CERTIFICATE", d))
                .collect::<String>()
        };
        assert_eq!(cross_chains("b", &ders, &cross), [pem(&[&[3], &[7]])]);
        assert_eq!(cross_chains("a", &ders, &cross), [pem(&[&[7]])]);
        assert!(cross_chains("root1", &ders, &cross).is_empty());
        assert!(cross_chains("r2", &ders, &cross).is_empty());
        // A cross-signer under an intermediate: its ancestors follow, root
        // excluded.
        ders.insert("r2i".into(), (vec![8], Some("r2".into())));
        cross.get_mut("a").unwrap()[0].by = "r2i".into();
        assert_eq!(cross_chains("b", &ders, &cross), [pem(&[&[3], &[7], &[8]])]);
        // A cross-signer missing from the store is skipped.
        cross.get_mut("a").unwrap()[0].by = "gone".into();
        assert!(cross_chains("b", &ders, &cross).is_empty());
    }
}
