//! The SCEP RA certificate (RFC 8894 §2.1.1, §3.5.1): an RSA-2048 key
//! (SCEP key transport needs RSA whatever the CA's key is) with
//! keyUsage digitalSignature + keyEncipherment, issued by the issuing CA
//! through the authority (`server:scep-ra` in the audit log) at first
//! start, kept in the store (setting [`settings::SCEP_RA`], the key sealed
//! under the KEK) so every replica presents the same one, and renewed by
//! the housekeeping tick once two thirds of its life are gone.
//!
//! Creation and renewal are compare-and-swaps on the setting's version:
//! of replicas that issue at once, one stores its certificate and the
//! others load it (their own certificates stay unused in the store, like
//! any issued certificate). An older data directory's `scep-ra.der` and
//! `scep-ra.key.sealed` are imported once when the store has no RA, then
//! renamed to `*.imported`. Other replicas pick a new RA up through the
//! change poll ([`reload`]).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use ironseal_ca_core::issuance::Eku;
use ironseal_ca_core::profile::{DeviceOptions, ProfileKind};
use ironseal_ca_core::sealed::{open, seal, Kek};
use ironseal_protocol::scep::RaKey;
use time::{Duration, OffsetDateTime};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ironseal_storage::settings;

use crate::authority::{self, IssuanceRequest, ProfileChoice, Requester, ServerPurpose, Validity};
use crate::config::{Config, KeyType, Profile};
use crate::state::AppState;

/// Lifetime of an RA certificate (capped by the issuer's notAfter).
const LIFETIME: Duration = Duration::days(365);
/// AEAD associated data of the sealed RA key.
const AAD: &[u8] = b"ironseal scep-ra key";

/// The RA identity in use.
pub struct Ra {
    /// Certificate and key.
    pub key: RaKey,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    /// The store setting's version this RA was read from or written as.
    version: u64,
}

/// The RA as stored: certificate and sealed key, base64 in JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRa {
    cert: String,
    sealed_key: String,
}

/// The current RA, replaced on renewal; empty until first issued.
#[derive(Default)]
pub struct RaSlot(RwLock<Option<Arc<Ra>>>);

impl std::fmt::Debug for RaSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RaSlot")
    }
}

impl RaSlot {
    /// The RA now in use.
    pub fn get(&self) -> Option<Arc<Ra>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Why the RA could not be loaded or issued.
#[derive(Debug, thiserror::Error)]
#[error("SCEP RA certificate: {0}")]
pub struct RaError(String);

fn err(e: impl std::fmt::Display) -> RaError {
    RaError(e.to_string())
}

fn paths(config: &Config) -> (PathBuf, PathBuf) {
    (
        config.data_dir.join("scep-ra.der"),
        config.data_dir.join("scep-ra.key.sealed"),
    )
}

/// An RA from its certificate and sealed key; `None` (logged) if unusable.
fn unseal(kek: &Kek, cert: &[u8], sealed: &[u8], version: u64) -> Option<Ra> {
    let pkcs8 = open(kek, sealed, AAD)
        .map_err(|e| tracing::warn!(error = %e, "cannot open the sealed SCEP RA key"))
        .ok()?;
    let key = RaKey::new(cert, &pkcs8)
        .map_err(|e| tracing::warn!(error = %e, "stored SCEP RA unusable"))
        .ok()?;
    Some(Ra {
        key,
        not_before: ironseal_ca_core::cert::cert_not_before(cert).ok()?,
        not_after: ironseal_ca_core::cert::cert_not_after(cert).ok()?,
        version,
    })
}

fn encode(cert: &[u8], sealed: &[u8]) -> Result<Vec<u8>, RaError> {
    serde_json::to_vec(&StoredRa {
        cert: B64.encode(cert),
        sealed_key: B64.encode(sealed),
    })
    .map_err(err)
}

/// The RA in the store, if any: `Ok(None)` when there is none,
/// `Ok(Some(None))` when the stored one is unusable.
async fn load_stored(state: &AppState) -> Result<Option<Option<Ra>>, RaError> {
    let Some(rec) = state
        .store
        .get_setting(settings::SCEP_RA)
        .await
        .map_err(err)?
    else {
        return Ok(None);
    };
    let stored: StoredRa = serde_json::from_slice(&rec.value).map_err(err)?;
    let cert = B64.decode(stored.cert).map_err(err)?;
    let sealed = B64.decode(stored.sealed_key).map_err(err)?;
    Ok(Some(unseal(&state.kek, &cert, &sealed, rec.version)))
}

/// Imports an older data directory's RA files into the store if it has
/// no RA yet (another replica's wins), then renames them `*.imported`.
async fn import_files(state: &AppState) -> Result<(), RaError> {
    let (cert_path, key_path) = paths(&state.config);
    let (Ok(cert), Ok(sealed)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) else {
        return Ok(());
    };
    if unseal(&state.kek, &cert, &sealed, 0).is_some()
        && state
            .store
            .put_setting(settings::SCEP_RA, &encode(&cert, &sealed)?, None)
            .await
            .map_err(err)?
            .is_some()
    {
        tracing::info!("imported the SCEP RA certificate and key into the store");
    }
    for p in [&cert_path, &key_path] {
        let mut done = p.clone().into_os_string();
        done.push(".imported");
        std::fs::rename(p, &done).map_err(err)?;
    }
    Ok(())
}

fn put(state: &AppState, ra: Ra) {
    *state.scep_ra.0.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(ra));
}

/// Makes sure a valid RA is in `state.scep_ra`: loads the stored one
/// (importing older files first), issues a new one when none is stored or
/// two thirds of its life have passed. Returns whether this process's
/// certificate became the stored one.
pub async fn ensure(state: &AppState, now: OffsetDateTime) -> Result<bool, RaError> {
    if !state.config.scep.enabled {
        return Ok(false);
    }
    let mut stored = load_stored(state).await?;
    if stored.is_none() {
        import_files(state).await?;
        stored = load_stored(state).await?;
    }
    let expected = match &stored {
        None => None,
        Some(None) => {
            // Unusable (another KEK?): replace it, on its version.
            Some(
                state
                    .store
                    .get_setting(settings::SCEP_RA)
                    .await
                    .map_err(err)?
                    .map_or(0, |r| r.version),
            )
        }
        Some(Some(c)) => {
            let due = now >= c.not_before + (c.not_after - c.not_before) * 2 / 3;
            if !due {
                if state
                    .scep_ra
                    .get()
                    .is_none_or(|cur| cur.version != c.version)
                {
                    let Some(Some(ra)) = stored else {
                        return Ok(false);
                    };
                    put(state, ra);
                }
                return Ok(false);
            }
            Some(c.version)
        }
    };
    let (ra, cert, sealed) = issue(state, now).await?;
    let issuer = state.ca_set().active.issuer.id().to_string();
    match state
        .store
        .put_setting(settings::SCEP_RA, &encode(&cert, &sealed)?, expected)
        .await
        .map_err(err)?
    {
        Some(version) => {
            tracing::info!(issuer = %issuer, not_after = %ra.not_after, "SCEP RA certificate issued");
            put(state, Ra { version, ..ra });
            Ok(true)
        }
        None => {
            // Another replica stored its RA first: use that one.
            tracing::info!("another replica stored a new SCEP RA certificate first; using it");
            reload(state).await?;
            Ok(false)
        }
    }
}

/// Loads the stored RA if it differs from the one in use (the change poll
/// calls this when settings changed). Never issues.
pub async fn reload(state: &AppState) -> Result<(), RaError> {
    if !state.config.scep.enabled {
        return Ok(());
    }
    if let Some(Some(ra)) = load_stored(state).await? {
        if state
            .scep_ra
            .get()
            .is_none_or(|cur| cur.version != ra.version)
        {
            put(state, ra);
        }
    }
    Ok(())
}

/// A new RSA-2048 RA key (PKCS#8, wiped when dropped) and its PKCS#10
/// request. Slow (RSA key generation): call on a blocking thread.
fn new_key_and_request() -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), RaError> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(err)?;
    // Wiped when dropped (the signer's copy is wiped with it, see below).
    let pkcs8 = zeroize::Zeroizing::new(
        AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
            .map_err(err)?
            .as_ref()
            .to_vec(),
    );
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(err)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ironseal SCEP RA");
    let csr = params.serialize_request(&signer).map_err(err)?;
    Ok((pkcs8, csr.der().to_vec()))
}

/// Issues a new RA certificate; returns it with its DER and sealed key.
async fn issue(state: &AppState, now: OffsetDateTime) -> Result<(Ra, Vec<u8>, Vec<u8>), RaError> {
    let (pkcs8, csr_der) = tokio::task::spawn_blocking(new_key_and_request)
        .await
        .map_err(err)??;

    let cas = state.ca_set();
    let issuer = &cas.active.issuer;
    let mut req = IssuanceRequest::new(
        Requester::Server(ServerPurpose::ScepRa),
        csr_der,
        Vec::new(),
    );
    req.profile = ProfileChoice::Builtin(Box::new(Profile {
        name: "server-scep-ra".into(),
        description: "the SCEP RA certificate (RFC 8894 §2.1.1)".into(),
        lifetime: LIFETIME.unsigned_abs(),
        ekus: vec![Eku::ClientAuth],
        key_types: vec![KeyType::Rsa],
        ca: None,
        requires_approval: false,
        kind: ProfileKind::Device(DeviceOptions {
            subject_from_csr: true,
            allowed_sans: Vec::new(),
            allow_sid: false,
        }),
    }));
    req.validity = Validity {
        not_before: Some(now - Duration::minutes(5)),
        not_after: Some((now + LIFETIME).min(issuer.not_after())),
    };
    req.signing_ca = Some(issuer.id().to_string());
    let ctx = authority::Ctx {
        config: &state.config,
        store: &state.store,
        cas: &cas,
    };
    let issued = authority::issue_own(&ctx, &req, now)
        .await
        .map_err(err)?
        .record;

    let sealed = seal(&state.kek, &pkcs8, AAD, rand::random()).map_err(err)?;
    let ra = Ra {
        key: RaKey::new(&issued.der, &pkcs8).map_err(err)?,
        not_before: issued.not_before,
        not_after: issued.not_after,
        version: 0,
    };
    Ok((ra, issued.der, sealed))
}
