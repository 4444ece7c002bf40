//! The SCEP RA certificate (RFC 8894 §2.1.1, §3.5.1): an RSA-2048 key
//! (SCEP key transport needs RSA whatever the CA's key is) with
//! keyUsage digitalSignature + keyEncipherment, issued by the issuing CA
//! through the authority (`server:scep-ra` in the audit log) at first
//! start, kept in the data directory (the key sealed under the KEK) and
//! renewed by the housekeeping tick once two thirds of its life are gone.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use ironseal_ca_core::issuance::Eku;
use ironseal_ca_core::profile::{DeviceOptions, ProfileKind};
use ironseal_ca_core::sealed::{open, seal, Kek};
use ironseal_protocol::scep::RaKey;
use time::{Duration, OffsetDateTime};

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
    issuer_id: String,
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

fn load(config: &Config, kek: &Kek) -> Option<Ra> {
    let (cert_path, key_path) = paths(config);
    let cert = std::fs::read(cert_path).ok()?;
    let sealed = std::fs::read(key_path).ok()?;
    let pkcs8 = open(kek, &sealed, AAD)
        .map_err(|e| tracing::warn!(error = %e, "cannot open the sealed SCEP RA key"))
        .ok()?;
    let key = RaKey::new(&cert, &pkcs8)
        .map_err(|e| tracing::warn!(error = %e, "stored SCEP RA unusable"))
        .ok()?;
    Some(Ra {
        key,
        not_before: ironseal_ca_core::cert::cert_not_before(&cert).ok()?,
        not_after: ironseal_ca_core::cert::cert_not_after(&cert).ok()?,
        issuer_id: String::new(),
    })
}

/// Makes sure a valid RA is in `state.scep_ra`: loads the stored one at
/// first call, issues a new one when none is stored or two thirds of its
/// life have passed. Returns whether a new certificate was issued.
pub fn ensure(state: &AppState, now: OffsetDateTime) -> Result<bool, RaError> {
    if !state.config.scep.enabled {
        return Ok(false);
    }
    let current = match state.scep_ra.get() {
        Some(c) => Some(c),
        None => load(&state.config, &state.kek).map(Arc::new),
    };
    if let Some(c) = &current {
        let due = now >= c.not_before + (c.not_after - c.not_before) * 2 / 3;
        if !due {
            *state.scep_ra.0.write().unwrap_or_else(|e| e.into_inner()) = current.clone();
            return Ok(false);
        }
    }
    let ra = issue(state, now)?;
    tracing::info!(issuer = %ra.issuer_id, not_after = %ra.not_after, "SCEP RA certificate issued");
    *state.scep_ra.0.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(ra));
    Ok(true)
}

fn issue(state: &AppState, now: OffsetDateTime) -> Result<Ra, RaError> {
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

    let cas = state.ca_set();
    let issuer = &cas.active.issuer;
    let mut req = IssuanceRequest::new(
        Requester::Server(ServerPurpose::ScepRa),
        csr.der().to_vec(),
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
        store: state.store.as_ref(),
        cas: &cas,
    };
    let issued = authority::issue_blocking(&ctx, &req, now)
        .map_err(err)?
        .record;

    let sealed = seal(&state.kek, &pkcs8, AAD, rand::random()).map_err(err)?;
    let (cert_path, key_path) = paths(&state.config);
    write_atomic(&key_path, &sealed)?;
    write_atomic(&cert_path, &issued.der)?;
    Ok(Ra {
        key: RaKey::new(&issued.der, &pkcs8).map_err(err)?,
        not_before: issued.not_before,
        not_after: issued.not_after,
        issuer_id: issuer.id().to_string(),
    })
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), RaError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
