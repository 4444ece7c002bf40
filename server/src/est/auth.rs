//! Who an EST client is (RFC 7030 §3.3.2 TLS client authentication; HTTP
//! Basic, RFC 7030 §3.2.3, is in [`super::basic`]):
//! a certificate ironseal issued (unexpired, unrevoked, per the store) or a
//! certificate chaining to the label's manufacturer CA (IEEE 802.1AR IDevID
//! style bootstrap). The TLS layer only proved possession of the leaf's key
//! (see [`crate::client_cert`]); the chain is judged here. A certificate
//! ironseal issued is looked up in the store on every request (revocation
//! must bite at once); a bootstrap chain is verified on the connection's
//! first request and remembered on the connection ([`VerifiedBootstrap`])
//! for as long as every certificate the client presented is within its
//! validity period.

use std::sync::Arc;

use der::{Decode, Encode};
use ironseal_storage::Store;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use x509_cert::Certificate;

use super::config::{EstAuth, EstLabel};
use super::error::EstError;
use crate::http::ConnMemo;

/// subjectAltName (RFC 5280 §4.2.1.6).
const OID_SAN: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.29.17");
/// PKCS#9 extensionRequest (RFC 2985 §5.4.2).
const OID_EXTENSION_REQUEST: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");

/// An authenticated EST client.
#[derive(Debug, Clone)]
pub struct Client {
    /// How it authenticated.
    pub method: EstAuth,
    /// Its leaf certificate (`None` for HTTP Basic).
    pub leaf: Option<Arc<Certificate>>,
    /// A short stable identity for audit (`<label>:<sha256 prefix>`).
    pub id: String,
}

/// The verifier of a label's `bootstrap_ca` (built once at start).
pub fn bootstrap_verifier(label: &EstLabel) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let Some(path) = &label.bootstrap_ca else {
        return Ok(None);
    };
    let shown = path.display();
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("est label {}: bootstrap_ca {shown}: {e}", label.label))?;
    for c in certs {
        let c = c.map_err(|e| format!("est label {}: bootstrap_ca {shown}: {e}", label.label))?;
        roots
            .add(c)
            .map_err(|e| format!("est label {}: bootstrap_ca {shown}: {e}", label.label))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "est label {}: bootstrap_ca {shown} holds no certificate",
            label.label
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map(|v| Some(v as Arc<dyn ClientCertVerifier>))
        .map_err(|e| format!("est label {}: bootstrap_ca {shown}: {e}", label.label))
}

/// Checks that `leaf` is a certificate ironseal issued, unrevoked and
/// within its validity at `now` (RFC 7030 §3.3.2, §4.2.2).
pub async fn issued_by_us(
    store: &dyn Store,
    leaf_der: &[u8],
    now: OffsetDateTime,
) -> Result<(), EstError> {
    let cert = Certificate::from_der(leaf_der).map_err(|e| {
        EstError::Unauthenticated(format!("client certificate is not valid DER: {e}"))
    })?;
    let serial = hex::encode(cert.tbs_certificate().serial_number().as_bytes());
    let record = store.get_certificate(&serial).await?;
    let Some(record) = record.filter(|r| r.der == leaf_der) else {
        return Err(EstError::Unauthenticated(
            "the client certificate was not issued by this CA".into(),
        ));
    };
    if record.revocation.is_some() {
        return Err(EstError::Forbidden(
            "the client certificate is revoked".into(),
        ));
    }
    if now < record.not_before || now > record.not_after {
        return Err(EstError::Forbidden(
            "the client certificate is expired or not yet valid".into(),
        ));
    }
    Ok(())
}

/// A client certificate chain verified against a label's bootstrap CA on
/// this connection, kept in the connection's [`ConnMemo`] so the later
/// requests of a kept-alive connection skip the signature check and path
/// building (RFC 7030 §3.3.2 authenticates the TLS client, and the
/// client's chain is fixed for the connection's life).
///
/// It is used only for the same label and the same verifier (a reloaded
/// `bootstrap_ca` is a new verifier), and only while `now` lies inside
/// every presented certificate's validity period: the verifier checked
/// each certificate of the path it built at the first request, and the
/// path uses only presented certificates and a trust anchor (whose own
/// validity WebPKI does not check), so the verdict holds for any time in
/// that window. The bootstrap verifier is built without CRLs, so there is
/// no revocation status that could change meanwhile.
pub struct VerifiedBootstrap {
    verifier: Arc<dyn ClientCertVerifier>,
    label: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    client: Client,
}

impl VerifiedBootstrap {
    fn applies(
        &self,
        label: &str,
        verifier: &Arc<dyn ClientCertVerifier>,
        now: OffsetDateTime,
    ) -> bool {
        self.label == label
            && Arc::ptr_eq(&self.verifier, verifier)
            && self.not_before <= now
            && now <= self.not_after
    }
}

/// The window in which every presented certificate is valid, or `None`
/// if one of them cannot be decoded (then nothing is remembered).
fn common_validity(chain: &[CertificateDer<'static>]) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let mut window: Option<(OffsetDateTime, OffsetDateTime)> = None;
    for der in chain {
        let cert = Certificate::from_der(der.as_ref()).ok()?;
        let v = cert.tbs_certificate().validity();
        let at = |t: x509_cert::time::Time| {
            let d = time::Duration::try_from(t.to_unix_duration()).ok()?;
            OffsetDateTime::UNIX_EPOCH.checked_add(d)
        };
        let (nb, na) = (at(v.not_before)?, at(v.not_after)?);
        window = Some(match window {
            None => (nb, na),
            Some((b, a)) => (b.max(nb), a.min(na)),
        });
    }
    window
}

/// Authenticates the connection's client certificate for `label` with the
/// methods in `allowed` (the first that accepts wins). `memo` is the
/// connection's: a bootstrap verification is remembered there
/// ([`VerifiedBootstrap`]).
pub async fn authenticate(
    store: &dyn Store,
    label: &EstLabel,
    allowed: &[EstAuth],
    bootstrap: Option<&Arc<dyn ClientCertVerifier>>,
    chain: Option<&[CertificateDer<'static>]>,
    memo: Option<&ConnMemo>,
    now: OffsetDateTime,
) -> Result<Client, EstError> {
    let Some((leaf, intermediates)) = chain.and_then(<[_]>::split_first) else {
        return Err(EstError::Unauthenticated(
            "this EST label requires a TLS client certificate (RFC 7030 section 3.3.2)".into(),
        ));
    };
    let remembered = match (memo, bootstrap) {
        (Some(m), Some(v)) => m
            .get::<VerifiedBootstrap>()
            .filter(|r| r.applies(&label.label, v, now)),
        _ => None,
    };
    let (cert, id) = match &remembered {
        Some(r) => (
            r.client
                .leaf
                .clone()
                .ok_or_else(|| EstError::Unauthenticated("client certificate missing".into()))?,
            r.client.id.clone(),
        ),
        None => {
            let cert = Certificate::from_der(leaf.as_ref()).map_err(|e| {
                EstError::Unauthenticated(format!("client certificate is not valid DER: {e}"))
            })?;
            let fp = crate::ids::sha256_hex(leaf.as_ref());
            (Arc::new(cert), format!("{}:{}", label.label, &fp[..16]))
        }
    };
    let mut last = None;
    for method in allowed {
        let r = match method {
            EstAuth::ClientCert => issued_by_us(store, leaf.as_ref(), now).await,
            EstAuth::Bootstrap if remembered.is_some() => Ok(()),
            EstAuth::Bootstrap => match bootstrap {
                Some(v) => {
                    let unix = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                        u64::try_from(now.unix_timestamp()).unwrap_or(0),
                    ));
                    let verified = v
                        .verify_client_cert(leaf, intermediates, unix)
                        .map(|_| ())
                        .map_err(|e| {
                            EstError::Unauthenticated(format!(
                                "client certificate does not chain to this label's bootstrap CA: {e}"
                            ))
                        });
                    if let (Ok(()), Some(m), Some(chain)) = (&verified, memo, chain) {
                        if let Some((not_before, not_after)) = common_validity(chain) {
                            m.set(Arc::new(VerifiedBootstrap {
                                verifier: v.clone(),
                                label: label.label.clone(),
                                not_before,
                                not_after,
                                client: Client {
                                    method: EstAuth::Bootstrap,
                                    leaf: Some(cert.clone()),
                                    id: id.clone(),
                                },
                            }));
                        }
                    }
                    verified
                }
                None => Err(EstError::Unauthenticated("no bootstrap CA".into())),
            },
            // Checked by the caller from the Authorization header.
            EstAuth::Basic => continue,
        };
        match r {
            Ok(()) => {
                return Ok(Client {
                    method: *method,
                    leaf: Some(cert),
                    id,
                })
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| EstError::Unauthenticated("no authentication method".into())))
}

/// The subjectAltName GeneralNames of a certificate or CSR extension
/// list, each DER encoded, sorted (order carries no meaning).
fn sans(exts: &[x509_cert::ext::Extension]) -> Result<Vec<Vec<u8>>, der::Error> {
    let mut out = Vec::new();
    for e in exts.iter().filter(|e| e.extn_id == OID_SAN) {
        let san = x509_cert::ext::pkix::SubjectAltName::from_der(e.extn_value.as_bytes())?;
        for n in san.0 {
            out.push(n.to_der()?);
        }
    }
    out.sort();
    Ok(out)
}

/// RFC 7030 §4.2.2: a re-enrolment CSR must carry the same subject and
/// subjectAltName as the certificate being renewed.
pub fn same_identity(cert: &Certificate, csr_der: &[u8]) -> Result<(), EstError> {
    let bad = |why: String| EstError::BadRequest(format!("CSR: {why}"));
    let csr = x509_cert::request::CertReq::from_der(csr_der).map_err(|e| bad(e.to_string()))?;
    if csr.info.subject.to_der().map_err(|e| bad(e.to_string()))?
        != cert
            .tbs_certificate()
            .subject()
            .to_der()
            .map_err(|e| bad(e.to_string()))?
    {
        return Err(EstError::Forbidden(
            "re-enrolment CSR subject differs from the client certificate's (RFC 7030 section 4.2.2)"
                .into(),
        ));
    }
    let mut csr_exts = Vec::new();
    for attr in csr
        .info
        .attributes
        .iter()
        .filter(|a| a.oid == OID_EXTENSION_REQUEST)
    {
        for v in attr.values.iter() {
            let req: x509_cert::request::ExtensionReq =
                v.decode_as().map_err(|e: der::Error| bad(e.to_string()))?;
            csr_exts.extend(req.0);
        }
    }
    let cert_exts = cert
        .tbs_certificate()
        .extensions()
        .cloned()
        .unwrap_or_default();
    if sans(&csr_exts).map_err(|e| bad(e.to_string()))?
        != sans(&cert_exts).map_err(|e| bad(e.to_string()))?
    {
        return Err(EstError::Forbidden(
            "re-enrolment CSR subjectAltName differs from the client certificate's (RFC 7030 section 4.2.2)"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::client_cert::testing::TestCa;
    use rustls::client::danger::HandshakeSignatureValid;
    use rustls::server::danger::ClientCertVerified;
    use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

    /// Delegates to a real bootstrap verifier and counts chain checks.
    #[derive(Debug)]
    struct Counting {
        inner: Arc<dyn ClientCertVerifier>,
        calls: AtomicUsize,
    }

    impl ClientCertVerifier for Counting {
        fn root_hint_subjects(&self) -> &[DistinguishedName] {
            self.inner.root_hint_subjects()
        }
        fn verify_client_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            now: UnixTime,
        ) -> Result<ClientCertVerified, rustls::Error> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner
                .verify_client_cert(end_entity, intermediates, now)
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    }

    fn label(name: &str, ca: &std::path::Path) -> EstLabel {
        EstLabel {
            label: name.into(),
            profile: "devices".into(),
            tenant: None,
            auth: vec![EstAuth::Bootstrap],
            channel_binding: false,
            bootstrap_ca: Some(ca.to_path_buf()),
        }
    }

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    /// A clientAuth leaf of `ca` valid until `not_after`.
    fn leaf_until(ca: &TestCa, not_after: OffsetDateTime) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "serial-0001");
        p.not_before = at("2026-01-01T00:00:00Z");
        p.not_after = not_after;
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        CertificateDer::from(p.signed_by(&key, &ca.issuer).unwrap().der().to_vec())
    }

    #[tokio::test]
    async fn bootstrap_chain_is_checked_once_per_connection_within_validity() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("Device Maker");
        let ca_path = ca.write(dir.path());
        let bench = label("bench", &ca_path);
        let counting = Arc::new(Counting {
            inner: bootstrap_verifier(&bench).unwrap().unwrap(),
            calls: AtomicUsize::new(0),
        });
        let verifier: Arc<dyn ClientCertVerifier> = counting.clone();
        let store = ironseal_storage::MemoryStore::new();
        let chain = vec![leaf_until(&ca, at("2027-01-01T00:00:00Z"))];
        let calls = || counting.calls.load(Ordering::SeqCst);
        let auth = async |l: &EstLabel, memo: Option<&ConnMemo>, now: &str| {
            authenticate(
                &store,
                l,
                &[EstAuth::Bootstrap],
                Some(&verifier),
                Some(&chain),
                memo,
                at(now),
            )
            .await
        };

        // First request of a connection: verified, and remembered.
        let conn = ConnMemo::default();
        let first = auth(&bench, Some(&conn), "2026-06-01T00:00:00Z")
            .await
            .unwrap();
        assert_eq!(calls(), 1);
        // Later requests on it: the same identity, no second chain check.
        let again = auth(&bench, Some(&conn), "2026-06-01T00:00:05Z")
            .await
            .unwrap();
        assert_eq!(calls(), 1);
        assert_eq!(again.id, first.id);
        assert_eq!(again.method, EstAuth::Bootstrap);
        assert_eq!(again.leaf.as_deref(), first.leaf.as_deref());

        // Another connection, or none (no memo): checked again.
        auth(&bench, Some(&ConnMemo::default()), "2026-06-01T00:00:05Z")
            .await
            .unwrap();
        auth(&bench, None, "2026-06-01T00:00:05Z").await.unwrap();
        assert_eq!(calls(), 3);

        // Another label on the same connection: checked for that label.
        let other = label("other", &ca_path);
        let o = auth(&other, Some(&conn), "2026-06-01T00:00:06Z")
            .await
            .unwrap();
        assert_eq!(calls(), 4);
        assert!(o.id.starts_with("other:"), "{}", o.id);

        // Past the leaf's notAfter the memo no longer applies: the chain is
        // checked again and refused, on the same connection.
        let late = auth(&other, Some(&conn), "2027-01-01T00:00:01Z")
            .await
            .unwrap_err();
        assert_eq!(calls(), 5);
        assert!(
            matches!(late, EstError::Unauthenticated(_)),
            "{}",
            late.text()
        );
    }

    #[tokio::test]
    async fn a_refused_chain_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let trusted = TestCa::new("Device Maker");
        let stranger = TestCa::new("Someone Else");
        let bench = label("bench", &trusted.write(dir.path()));
        let verifier = bootstrap_verifier(&bench).unwrap().unwrap();
        let store = ironseal_storage::MemoryStore::new();
        let chain = vec![leaf_until(&stranger, at("2027-01-01T00:00:00Z"))];
        let conn = ConnMemo::default();
        for _ in 0..2 {
            let e = authenticate(
                &store,
                &bench,
                &[EstAuth::Bootstrap],
                Some(&verifier),
                Some(&chain),
                Some(&conn),
                at("2026-06-01T00:00:00Z"),
            )
            .await
            .unwrap_err();
            assert!(matches!(e, EstError::Unauthenticated(_)), "{}", e.text());
        }
        assert!(conn.get::<VerifiedBootstrap>().is_none());
    }
}
