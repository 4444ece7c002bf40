//! First start and every start: open the data directory, the key-encryption
//! key, the store; create the root and issuing CA when there are none;
//! unseal the CA keys; create the first admin API key; issue the HTTPS
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
use ironseal_ca_core::hierarchy::{
    create_intermediate, create_root, CaProfile, Issuer, IssuerUrls,
};
use ironseal_ca_core::keys::CaKey;
use ironseal_ca_core::sealed::{open, seal, Kek};
use ironseal_ca_core::serial::Serial;
use ironseal_storage::{CaRecord, CaStatus, SledStore, Store};
use time::OffsetDateTime;

use crate::config::Config;
use crate::state::{new_id, CaSet, IssuingCa};

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

/// Loads the key-encryption key: `IRONSEAL_KEK` (base64, 32 bytes) if set,
/// else the KEK file, which is created with mode 0600 on first start and
/// must not be readable by group or others.
pub fn load_kek(config: &Config) -> Result<Kek, BootError> {
    if let Ok(b64) = std::env::var("IRONSEAL_KEK") {
        return Kek::from_base64(b64.trim())
            .map_err(|e| BootError::Kek(format!("IRONSEAL_KEK: {e}")));
    }
    let path = &config.kek_file;
    if !path.exists() {
        let key: [u8; 32] = rand::random();
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err(path))?;
        f.write_all(STANDARD.encode(key).as_bytes())
            .map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
        tracing::warn!(path = %path.display(), "created a new key-encryption key; keep it apart from backups of the data directory");
    }
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(BootError::Kek(format!(
            "{} is readable by group or others (mode {:o}); run chmod 600 on it",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    Kek::from_base64(text.trim()).map_err(|e| BootError::Kek(format!("{}: {e}", path.display())))
}

/// Opens the store in the data directory.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, BootError> {
    let store = SledStore::open(&config.data_dir.join("db"))?;
    Ok(Arc::new(store))
}

/// The URLs put into certificates this CA signs: its own certificate (AIA
/// caIssuers) and its CRL (CRL distribution point), over plain HTTP.
fn urls_for(config: &Config, ca_id: &str) -> IssuerUrls {
    let base = &config.http_public_url;
    IssuerUrls {
        ca_issuers: Some(format!("{base}/ca/{ca_id}.der")),
        ocsp: Some(format!("{base}/ocsp")),
        crl: Some(format!("{base}/crl/{ca_id}.crl")),
    }
}

/// Creates a root and an issuing intermediate (pathLen 0) when the store has
/// no CA yet. Keys are sealed with the KEK, bound to the CA id.
pub fn ensure_hierarchy(config: &Config, store: &dyn Store, kek: &Kek) -> Result<bool, BootError> {
    if !store.list_cas()?.is_empty() {
        return Ok(false);
    }
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
    let (root_key, root_der) = create_root(&root_profile, Serial::from_random(rand::random()))?;
    let root_sealed = seal(
        kek,
        root_key.pkcs8_der(),
        root_id.as_bytes(),
        rand::random(),
    )?;
    let root_issuer = Issuer::new(
        root_id.clone(),
        root_der.clone(),
        root_key,
        urls_for(config, &root_id),
    )?;

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
    let (int_key, int_der) = create_intermediate(
        &int_profile,
        Serial::from_random(rand::random()),
        &root_issuer,
    )?;

    let int_sealed = seal(kek, int_key.pkcs8_der(), int_id.as_bytes(), rand::random())?;
    for (id, name, parent, der, sealed) in [
        (
            &root_id,
            &root_profile.common_name,
            None,
            root_der,
            root_sealed,
        ),
        (
            &int_id,
            &int_profile.common_name,
            Some(root_id.clone()),
            int_der,
            int_sealed,
        ),
    ] {
        store.put_ca(&CaRecord {
            id: id.clone(),
            name: name.clone(),
            parent_id: parent,
            cert_der: der,
            sealed_key: sealed,
            algorithm: alg,
            status: CaStatus::Active,
            created_at: now,
        })?;
    }
    store.flush()?;
    tracing::info!(root = %root_id, issuing = %int_id, algorithm = %alg, "created CA hierarchy");
    Ok(true)
}

/// Unseals every CA and picks the active issuing CA: the newest active CA
/// with a parent (an intermediate).
pub fn load_cas(config: &Config, store: &dyn Store, kek: &Kek) -> Result<CaSet, BootError> {
    let records = store.list_cas()?;
    let mut by_id = HashMap::new();
    let mut root_pem = String::new();
    let mut der_by_id = HashMap::new();
    for r in &records {
        der_by_id.insert(r.id.clone(), (r.cert_der.clone(), r.parent_id.clone()));
    }
    let mut active: Option<(&CaRecord, Arc<IssuingCa>)> = None;
    for r in &records {
        let pkcs8 = open(kek, &r.sealed_key, r.id.as_bytes()).map_err(|e| BootError::CaRecord {
            id: r.id.clone(),
            why: format!("cannot unseal the key ({e}); is this the right key-encryption key?"),
        })?;
        let key = CaKey::from_pkcs8_der(&pkcs8)?;
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
        let mut cur = Some(r.id.clone());
        while let Some(id) = cur {
            let Some((der, parent)) = der_by_id.get(&id) else {
                break;
            };
            if parent.is_none() {
                break;
            }
            chain.push_str(&pem_encode("CERTIFICATE", der));
            cur = parent.clone();
        }
        if r.parent_id.is_none() && root_pem.is_empty() {
            root_pem = pem_encode("CERTIFICATE", &r.cert_der);
        }
        let ca = Arc::new(IssuingCa {
            issuer,
            chains: vec![chain],
        });
        if r.parent_id.is_some() && r.status == CaStatus::Active {
            let newer = active
                .as_ref()
                .is_none_or(|(a, _)| r.created_at >= a.created_at);
            if newer {
                active = Some((r, ca.clone()));
            }
        }
        by_id.insert(r.id.clone(), ca);
    }
    let (_, active) = active.ok_or_else(|| BootError::CaRecord {
        id: "-".into(),
        why: "no active issuing CA in the store".into(),
    })?;
    Ok(CaSet {
        active,
        by_id,
        root_pem,
    })
}

/// Writes root.pem into the data directory so clients can trust it.
pub fn write_root(config: &Config, cas: &CaSet) -> Result<(), BootError> {
    let path = config.data_dir.join("root.pem");
    fs::write(&path, cas.root_pem.as_bytes()).map_err(io_err(&path))?;
    Ok(())
}

/// The first admin API key: from `IRONSEAL_INITIAL_ADMIN_KEY` or random,
/// stored only as its SHA-256 (mode 0600 file) and shown once.
pub fn ensure_admin_key(config: &Config) -> Result<([u8; 32], Option<String>), BootError> {
    let path = config.data_dir.join("admin-key.sha256");
    if path.exists() {
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let bytes = hex::decode(text.trim())
            .map_err(|_| BootError::Kek(format!("{} is not hex", path.display())))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| BootError::Kek(format!("{} is not a SHA-256", path.display())))?;
        return Ok((arr, None));
    }
    let key = match std::env::var("IRONSEAL_INITIAL_ADMIN_KEY") {
        Ok(k) if k.len() >= 16 => k,
        Ok(_) => {
            return Err(BootError::Kek(
                "IRONSEAL_INITIAL_ADMIN_KEY must be at least 16 characters".into(),
            ))
        }
        Err(_) => {
            let b: [u8; 24] = rand::random();
            format!("isk_{}", hex::encode(b))
        }
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let mut arr = [0u8; 32];
    arr.copy_from_slice(digest.as_ref());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all(hex::encode(arr).as_bytes())
        .map_err(io_err(&path))?;
    f.sync_all().map_err(io_err(&path))?;
    Ok((arr, Some(key)))
}

/// Issues the HTTPS listener's certificate for the configured hostnames
/// from the active issuing CA (fresh key each start, recorded in the store
/// like any certificate) and builds the rustls server configuration.
pub fn tls_config(
    config: &Config,
    store: &dyn Store,
    cas: &CaSet,
) -> Result<rustls::ServerConfig, BootError> {
    use ironseal_ca_core::csr::{check_csr, CsrPolicy};
    use ironseal_ca_core::names::SubjectName;
    let key = rcgen::KeyPair::generate().map_err(|e| BootError::Tls(e.to_string()))?;
    let mut names = Vec::new();
    let mut sans = Vec::new();
    for h in &config.hostnames {
        match h.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                names.push(SubjectName::Ip(ip));
                sans.push(rcgen::SanType::IpAddress(ip));
            }
            Err(_) => {
                names.push(SubjectName::Dns(h.to_ascii_lowercase()));
                sans.push(rcgen::SanType::DnsName(
                    h.to_ascii_lowercase()
                        .try_into()
                        .map_err(|_| BootError::Tls(format!("bad hostname {h:?}")))?,
                ));
            }
        }
    }
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = sans;
    let csr = params
        .serialize_request(&key)
        .map_err(|e| BootError::Tls(e.to_string()))?;
    let checked =
        check_csr(csr.der(), &CsrPolicy::default()).map_err(|e| BootError::Tls(e.to_string()))?;
    let now = OffsetDateTime::now_utc();
    let serial = Serial::from_random(rand::random());
    let issuer = &cas.active.issuer;
    let not_after = (now + time::Duration::days(90)).min(issuer.not_after());
    let issued = ironseal_ca_core::issuance::issue_leaf(
        issuer,
        &checked,
        &names,
        serial.clone(),
        now - time::Duration::minutes(5),
        not_after,
    )
    .map_err(|e| match e {
        ironseal_ca_core::error::CaError::NameConstraintViolation { name, reason } => {
            BootError::Tls(format!(
                "the HTTPS certificate for {name} cannot be issued: {reason}; \
             permit the server's --hostname values in the issuing CA's name constraints"
            ))
        }
        other => BootError::Ca(other),
    })?;
    store.insert_certificate(&ironseal_storage::CertificateRecord {
        serial: serial.to_hex(),
        issuer_id: issuer.id().to_string(),
        account_id: "ironseal-https-listener".into(),
        order_id: String::new(),
        der: issued.der.clone(),
        not_before: issued.not_before,
        not_after: issued.not_after,
        public_key_sha256: crate::state::sha256_hex(&checked.public_key_bits),
        identifiers: Vec::new(),
        revocation: None,
        replaced_by: None,
        renew_early: false,
    })?;
    store.flush()?;
    let mut chain = vec![rustls_pki_types::CertificateDer::from(issued.der)];
    chain.push(rustls_pki_types::CertificateDer::from(
        issuer.cert_der().to_vec(),
    ));
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| BootError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
