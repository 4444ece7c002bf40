//! The HTTPS listener's own certificate, for the configured hostnames,
//! issued from the issuing CA and served through a rustls certificate
//! resolver so that it can be replaced without a restart:
//!
//! * renewed once two thirds of its lifetime have passed (a server that
//!   runs longer than the certificate's 90 days keeps a valid one);
//! * re-issued when `activate` hands issuance to a CA under the root that
//!   clients already trust (`root.pem`), so the retiring CA stops signing
//!   for the listener too.
//!
//! A new issuing CA under a different root is only taken at the next
//! start, when `root.pem` changes with it: switching live would break
//! every client that trusts the old root. Until then renewals stay with a
//! CA of the served root when one can sign, and a warning says a restart
//! is due.

use std::sync::{Arc, RwLock};

use ironseal_ca_core::issuance::Eku;
use ironseal_ca_core::names::SubjectName;
use ironseal_storage::Store;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

use crate::authority::{
    self, ErrorKind, IssuanceRequest, ProfileChoice, Requester, ServerPurpose, Validity,
};
use crate::authority::{CaSet, IssuingCa};
use crate::bootstrap::{listener_names, BootError};
use crate::config::{Config, KeyType, Profile};

/// Lifetime of a listener certificate (capped by the issuer's notAfter).
const LIFETIME: Duration = Duration::days(90);

/// One issued listener certificate.
struct Current {
    key: Arc<CertifiedKey>,
    issuer_id: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

/// The certificate the HTTPS listener presents; see the module docs.
pub struct ListenerCert {
    current: RwLock<Current>,
}

impl std::fmt::Debug for ListenerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.current.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("ListenerCert")
            .field("issuer_id", &c.issuer_id)
            .field("not_after", &c.not_after)
            .finish()
    }
}

/// Why [`ListenerCert::refresh`] replaced the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// Two thirds of its lifetime had passed.
    Renewed,
    /// Issuance moved to another CA under the served root.
    NewIssuer,
}

impl ListenerCert {
    /// Issues the first certificate from the issuing CA of `cas`.
    pub async fn issue(
        config: &Config,
        store: &Arc<dyn Store>,
        cas: &CaSet,
    ) -> Result<Self, BootError> {
        let current =
            issue_from(config, store, cas, &cas.active, OffsetDateTime::now_utc()).await?;
        Ok(ListenerCert {
            current: RwLock::new(current),
        })
    }

    /// The issuer id and notAfter of the certificate now served.
    pub fn status(&self) -> (String, OffsetDateTime) {
        let c = self.current.read().unwrap_or_else(|e| e.into_inner());
        (c.issuer_id.clone(), c.not_after)
    }

    /// Replaces the certificate when it is due (two thirds of its life
    /// gone) or when issuance moved to another CA under the served root;
    /// `Ok(None)` when nothing had to change. Issues from the issuing CA
    /// if it chains to the served root, else (due only) from the current
    /// issuer if it can still sign, with a warning that a restart will
    /// switch roots.
    pub async fn refresh(
        &self,
        config: &Config,
        store: &Arc<dyn Store>,
        cas: &CaSet,
        now: OffsetDateTime,
    ) -> Result<Option<Refreshed>, BootError> {
        let (issuer_id, not_before, not_after) = {
            let c = self.current.read().unwrap_or_else(|e| e.into_inner());
            (c.issuer_id.clone(), c.not_before, c.not_after)
        };
        let due = now >= not_before + (not_after - not_before) * 2 / 3;
        let moved = cas.active.issuer.id() != issuer_id;
        let same_root = cas.active_root_pem == cas.root_pem;
        let (signer, why) = if moved && same_root {
            (cas.active.clone(), Refreshed::NewIssuer)
        } else if due && same_root {
            (cas.active.clone(), Refreshed::Renewed)
        } else if due {
            tracing::warn!(
                issuing = %cas.active.issuer.id(),
                "the issuing CA chains to another root than root.pem; the HTTPS \
                 certificate is renewed from its current CA until a restart switches roots"
            );
            match cas.by_id.get(&issuer_id) {
                Some(ca) => (ca.clone(), Refreshed::Renewed),
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        let next = issue_from(config, store, cas, &signer, now).await?;
        tracing::info!(
            issuer = %next.issuer_id,
            not_after = %next.not_after,
            reason = ?why,
            "HTTPS listener certificate replaced"
        );
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(Some(why))
    }
}

impl ResolvesServerCert for ListenerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let c = self.current.read().unwrap_or_else(|e| e.into_inner());
        Some(c.key.clone())
    }
}

/// Issues a listener certificate (fresh P-256 key, made on a blocking
/// thread) for the configured hostnames from `ca`, records it in the store
/// like any certificate, and returns it with `ca`'s chain.
async fn issue_from(
    config: &Config,
    store: &Arc<dyn Store>,
    cas: &CaSet,
    ca: &IssuingCa,
    now: OffsetDateTime,
) -> Result<Current, BootError> {
    let tls = |e: &dyn std::fmt::Display| BootError::Tls(e.to_string());
    let names = listener_names(config);
    let sans = names
        .iter()
        .map(|n| match n {
            SubjectName::Ip(ip) => Ok(rcgen::SanType::IpAddress(*ip)),
            SubjectName::Dns(h) => h
                .clone()
                .try_into()
                .map(rcgen::SanType::DnsName)
                .map_err(|_| BootError::Tls(format!("bad hostname {h:?}"))),
            SubjectName::Uri(_) | SubjectName::Email(_) => {
                Err(BootError::Tls(format!("listener name {n} is not a host")))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = sans;
    let (key, csr_der) = tokio::task::spawn_blocking(move || {
        let key = rcgen::KeyPair::generate()?;
        let csr = params.serialize_request(&key)?;
        Ok::<_, rcgen::Error>((key, csr.der().to_vec()))
    })
    .await
    .map_err(|e| tls(&e))?
    .map_err(|e| tls(&e))?;
    let issuer = &ca.issuer;
    let not_after = (now + LIFETIME).min(issuer.not_after());
    let mut req = IssuanceRequest::new(Requester::Server(ServerPurpose::Listener), csr_der, names);
    req.profile = ProfileChoice::Builtin(Box::new(Profile {
        name: "server-listener".into(),
        description: "the HTTPS listener's own certificate".into(),
        lifetime: LIFETIME.unsigned_abs(),
        ekus: vec![Eku::ServerAuth],
        key_types: vec![KeyType::P256],
        ca: None,
        requires_approval: false,
        kind: ironseal_ca_core::profile::ProfileKind::Tls,
    }));
    req.validity = Validity {
        not_before: Some(now - Duration::minutes(5)),
        not_after: Some(not_after),
    };
    req.signing_ca = Some(issuer.id().to_string());
    let ctx = authority::Ctx { config, store, cas };
    let issued = authority::issue_own(&ctx, &req, now)
        .await
        .map_err(|e| match e.kind {
            ErrorKind::RejectedName => BootError::Tls(format!(
                "the HTTPS certificate cannot be issued: {}; \
             permit the server's --hostname values in the issuing CA's name constraints",
                e.detail
            )),
            _ => BootError::Tls(format!("the HTTPS certificate cannot be issued: {e}")),
        })?;
    let issued = issued.record;
    let mut chain = vec![CertificateDer::from(issued.der)];
    chain.extend(ca.chain_der.iter().map(|d| CertificateDer::from(d.clone())));
    let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing =
        rustls::crypto::aws_lc_rs::sign::any_supported_type(&key_der).map_err(|e| tls(&e))?;
    Ok(Current {
        key: Arc::new(CertifiedKey::new(chain, signing)),
        issuer_id: issuer.id().to_string(),
        not_before: issued.not_before,
        not_after: issued.not_after,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::bootstrap::{ensure_hierarchy, load_cas};
    use crate::config::ServeArgs;
    use ironseal_ca_core::sealed::Kek;
    use ironseal_storage::MemoryStore;

    #[tokio::test]
    async fn renewed_after_two_thirds_of_its_life_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::resolve(&ServeArgs {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        ensure_hierarchy(&config, &store, &kek).await.unwrap();
        let cas = load_cas(&config, store.as_ref(), &kek, true).await.unwrap();
        let lc = ListenerCert::issue(&config, &store, &cas).await.unwrap();
        let (issuer, first_na) = lc.status();
        assert_eq!(issuer, cas.active.issuer.id());
        let now = OffsetDateTime::now_utc();
        let life = first_na - (now - Duration::minutes(5));
        // Early in its life: kept.
        assert_eq!(lc.refresh(&config, &store, &cas, now).await.unwrap(), None);
        assert_eq!(
            lc.refresh(&config, &store, &cas, now + life / 2)
                .await
                .unwrap(),
            None
        );
        // Two thirds on: a new certificate from the issuing CA, recorded
        // in the store like any other.
        let later = now + life * 2 / 3 + Duration::minutes(10);
        assert_eq!(
            lc.refresh(&config, &store, &cas, later).await.unwrap(),
            Some(Refreshed::Renewed)
        );
        let (issuer, na) = lc.status();
        assert_eq!(issuer, cas.active.issuer.id());
        assert!(na > first_na, "{na} after {first_na}");
        let served = lc.current.read().unwrap().key.cert[0].to_vec();
        let serial = ironseal_ca_core::cert::cert_serial(&served)
            .unwrap()
            .to_hex();
        let record = store.get_certificate(&serial).await.unwrap().unwrap();
        assert_eq!(record.der, served);
        assert_eq!(record.not_after, na);
        // Fresh again: kept.
        assert_eq!(
            lc.refresh(&config, &store, &cas, later).await.unwrap(),
            None
        );
    }
}
