//! The authority's signatures that make CAs: self-signed roots and
//! subordinate CA certificates (RFC 5280 §3.2, §4.2.1.9), cross
//! certificates, and the PKCS#10 request (RFC 2986) of an intermediate
//! whose key waits for an external issuer. The first start's hierarchy,
//! `POST /admin/v1/cas`, cross-signing and rollover all come here.
//!
//! A signature comes back as a [`Signed`] value that is of no use until
//! [`Signed::record`] has stored the CA records it belongs to and the audit
//! entry that names it: no CA certificate leaves the authority unrecorded.
//! Changes without a signature (imports, activation, status) are recorded
//! with [`record_change`], so every change to the hierarchy leaves one
//! audit entry written right after its records.

use ironseal_ca_core::error::CaError;
use ironseal_ca_core::hierarchy::{self, CaProfile, Issuer};
use ironseal_ca_core::hierarchy_ops;
use ironseal_ca_core::keys::CaKey;
use ironseal_ca_core::serial::Serial;
use ironseal_storage::{AuditEvent, CaUpdate, CaWrite, Store, StoreError};
use time::OffsetDateTime;

use super::IssuingCa;

/// The CA certificate to sign.
pub enum CaCertificate<'a> {
    /// A self-signed root with a fresh key.
    Root {
        /// Name, key algorithm, validity, constraints.
        profile: &'a CaProfile,
    },
    /// A subordinate CA with a fresh key, certified by `parent`. The
    /// parent's path length and name constraints are checked before
    /// anything is signed.
    Subordinate {
        /// Name, key algorithm, validity, constraints.
        profile: &'a CaProfile,
        /// The certifying CA.
        parent: &'a Issuer,
    },
}

/// A signature made with a CA key, not yet in the audit log. Read it with
/// [`Signed::get`] to build the records it belongs to, then hand it to
/// [`Signed::record`], which returns the value.
#[must_use = "a CA signature must be recorded with Signed::record"]
pub struct Signed<T> {
    value: T,
    /// What was signed, for the audit entry.
    what: String,
}

impl<T> Signed<T> {
    /// The signed value, to build the records from.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// Stores `change` with its audit entry (the change's summary plus
    /// what was signed) in one atomic write, and returns the signed value. The caller
    /// makes both durable (flush or group commit) before answering.
    pub async fn record(
        self,
        store: &dyn Store,
        actor: &str,
        change: &CaChange<'_>,
    ) -> Result<T, StoreError> {
        write(store, actor, change, Some(&self.what)).await?;
        Ok(self.value)
    }
}

/// Records that change the hierarchy, and what the audit log says of them:
/// stored together with the audit entry in one atomic write
/// ([`CaWrite`]), each record compare-and-swapped against the version the
/// change was computed from, so two replicas changing the same CA at once
/// cannot both win (the loser gets `StoreError::Conflict`).
pub struct CaChange<'a> {
    /// The CA records to store: new ones ([`CaUpdate::create`]) or changed
    /// ones with the version they were read as ([`CaUpdate::replace`]).
    pub records: Vec<CaUpdate>,
    /// The CA that issues from now on, if the change moves issuance.
    pub issuing_pin: Option<String>,
    /// The audit action (`ca.create`, `ca.cross-sign`, ...).
    pub action: &'a str,
    /// A short, secret-free summary.
    pub summary: String,
}

/// Records a change that involved no signature (an import, an activation,
/// a status change): the records and its audit entry, in one write.
pub async fn record_change(
    store: &dyn Store,
    actor: &str,
    change: &CaChange<'_>,
) -> Result<(), StoreError> {
    write(store, actor, change, None).await
}

async fn write(
    store: &dyn Store,
    actor: &str,
    change: &CaChange<'_>,
    signed: Option<&str>,
) -> Result<(), StoreError> {
    let summary = match signed {
        Some(what) if change.summary.is_empty() => what.to_string(),
        Some(what) => format!("{} signed=[{what}]", change.summary),
        None => change.summary.clone(),
    };
    store
        .record_ca_change(&CaWrite {
            records: change.records.clone(),
            issuing_pin: change.issuing_pin.clone(),
            audit: AuditEvent {
                at: OffsetDateTime::now_utc(),
                actor: actor.into(),
                action: change.action.into(),
                summary,
                outcome: None,
            },
        })
        .await?;
    Ok(())
}

/// Generates a CA key and signs its certificate: self-signed for a root,
/// by the parent's key for a subordinate. Returns the key and the
/// certificate (DER).
pub fn sign_ca(cert: CaCertificate<'_>) -> Result<Signed<(CaKey, Vec<u8>)>, CaError> {
    let serial = Serial::from_random(rand::random());
    let (key, der, by) = match cert {
        CaCertificate::Root { profile } => {
            let (key, der) = hierarchy::create_root(profile, serial.clone())?;
            (key, der, "self".to_string())
        }
        CaCertificate::Subordinate { profile, parent } => {
            let (key, der) = hierarchy::create_intermediate(profile, serial.clone(), parent)?;
            (key, der, parent.id().to_string())
        }
    };
    Ok(Signed {
        what: format!("ca-certificate serial={} by={by}", serial.to_hex()),
        value: (key, der),
    })
}

/// [`sign_ca`] on a blocking thread: key generation (slow for RSA) must
/// not hold an async worker. `parent`: the certifying CA of a
/// subordinate; `None` for a root.
pub async fn sign_ca_off_worker(
    profile: CaProfile,
    parent: Option<std::sync::Arc<IssuingCa>>,
) -> Result<Signed<(CaKey, Vec<u8>)>, CaError> {
    tokio::task::spawn_blocking(move || match &parent {
        None => sign_ca(CaCertificate::Root { profile: &profile }),
        Some(p) => sign_ca(CaCertificate::Subordinate {
            profile: &profile,
            parent: &p.issuer,
        }),
    })
    .await
    .map_err(|e| CaError::Key(format!("the key generation task failed: {e}")))?
}

/// Signs a cross certificate: CA `by` certifies the subject and key of
/// `subject_der` for `[not_before, not_after]`.
pub fn sign_cross(
    subject_der: &[u8],
    by: &Issuer,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Signed<Vec<u8>>, CaError> {
    let serial = Serial::from_random(rand::random());
    let der = hierarchy_ops::cross_sign(subject_der, by, serial.clone(), not_before, not_after)?;
    Ok(Signed {
        what: format!(
            "cross-certificate serial={} by={}",
            serial.to_hex(),
            by.id()
        ),
        value: der,
    })
}

/// [`sign_cross`] on a blocking thread.
pub async fn sign_cross_off_worker(
    subject_der: Vec<u8>,
    by: std::sync::Arc<IssuingCa>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Signed<Vec<u8>>, CaError> {
    tokio::task::spawn_blocking(move || sign_cross(&subject_der, &by.issuer, not_before, not_after))
        .await
        .map_err(|e| CaError::Encoding(format!("the signing task failed: {e}")))?
}

/// Signs the PKCS#10 request of a new intermediate with its own key (the
/// proof of possession an external issuer checks).
pub fn sign_ca_request(profile: &CaProfile, key: &CaKey) -> Result<Signed<Vec<u8>>, CaError> {
    let der = hierarchy_ops::intermediate_csr(profile, key)?;
    Ok(Signed {
        what: "certification-request".into(),
        value: der,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_ca_core::keys::KeyAlgorithm;
    use ironseal_storage::{CaRecord, CaStatus, MemoryStore};

    fn profile(name: &str, path_len: Option<u8>) -> CaProfile {
        let now = OffsetDateTime::now_utc();
        let mut p = CaProfile::new(
            name,
            KeyAlgorithm::EcdsaP256,
            now - time::Duration::hours(1),
            now + time::Duration::days(30),
        );
        p.path_len = path_len;
        p
    }

    fn record(id: &str, der: &[u8]) -> CaRecord {
        CaRecord {
            id: id.into(),
            name: id.into(),
            parent_id: None,
            cert_der: der.to_vec(),
            sealed_key: Vec::new(),
            algorithm: Some(KeyAlgorithm::EcdsaP256),
            status: CaStatus::Active,
            created_at: OffsetDateTime::now_utc(),
            cross_certs: Vec::new(),
            csr_der: Vec::new(),
            predecessor_id: None,
        }
    }

    #[tokio::test]
    async fn a_recorded_signature_leaves_its_records_and_one_audit_entry() {
        let store = MemoryStore::new();
        let p = profile("Test Root", None);
        let signed = sign_ca(CaCertificate::Root { profile: &p }).unwrap();
        let rec = record("root-1", &signed.get().1);
        let (_key, der) = signed
            .record(
                &store,
                "key:k1",
                &CaChange {
                    records: vec![CaUpdate::create(rec.clone())],
                    issuing_pin: None,
                    action: "ca.create",
                    summary: "id=root-1".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(store.get_ca("root-1").await.unwrap().unwrap().cert_der, der);
        let audit = store.audit_entries(0, 10).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].action, "ca.create");
        assert_eq!(audit[0].actor, "key:k1");
        assert!(
            audit[0].summary.contains("signed=[ca-certificate serial="),
            "{}",
            audit[0].summary
        );
    }

    #[tokio::test]
    async fn a_subordinate_outside_the_parents_path_length_is_not_signed() {
        let root_p = profile("Root", Some(0));
        let (key, der) = sign_ca(CaCertificate::Root { profile: &root_p })
            .unwrap()
            .record(
                &MemoryStore::new(),
                "system",
                &CaChange {
                    records: Vec::new(),
                    issuing_pin: None,
                    action: "ca.create",
                    summary: String::new(),
                },
            )
            .await
            .unwrap();
        let parent = Issuer::new("root-1".into(), der, key, Default::default()).unwrap();
        let int_p = profile("Int", Some(0));
        let res = sign_ca(CaCertificate::Subordinate {
            profile: &int_p,
            parent: &parent,
        });
        assert!(
            matches!(res, Err(CaError::PathLenExceeded { .. })),
            "{:?}",
            res.err()
        );
    }
}
