//! Who an EST client is (RFC 7030 §3.3.2 TLS client authentication; HTTP
//! Basic, RFC 7030 §3.2.3, is in [`super::basic`]):
//! a certificate ironseal issued (unexpired, unrevoked, per the store) or a
//! certificate chaining to the label's manufacturer CA (IEEE 802.1AR IDevID
//! style bootstrap). The TLS layer only proved possession of the leaf's key
//! (see [`crate::client_cert`]); the chain is judged here, per request.

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
    pub leaf: Option<Certificate>,
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
pub fn issued_by_us(
    store: &dyn Store,
    leaf_der: &[u8],
    now: OffsetDateTime,
) -> Result<(), EstError> {
    let cert = Certificate::from_der(leaf_der).map_err(|e| {
        EstError::Unauthenticated(format!("client certificate is not valid DER: {e}"))
    })?;
    let serial = hex::encode(cert.tbs_certificate().serial_number().as_bytes());
    let record = store.get_certificate(&serial)?;
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

/// Authenticates the connection's client certificate for `label` with the
/// methods in `allowed` (the first that accepts wins).
pub fn authenticate(
    store: &dyn Store,
    label: &EstLabel,
    allowed: &[EstAuth],
    bootstrap: Option<&Arc<dyn ClientCertVerifier>>,
    chain: Option<&[CertificateDer<'static>]>,
    now: OffsetDateTime,
) -> Result<Client, EstError> {
    let Some((leaf, intermediates)) = chain.and_then(<[_]>::split_first) else {
        return Err(EstError::Unauthenticated(
            "this EST label requires a TLS client certificate (RFC 7030 section 3.3.2)".into(),
        ));
    };
    let cert = Certificate::from_der(leaf.as_ref()).map_err(|e| {
        EstError::Unauthenticated(format!("client certificate is not valid DER: {e}"))
    })?;
    let fp = crate::ids::sha256_hex(leaf.as_ref());
    let id = format!("{}:{}", label.label, &fp[..16]);
    let mut last = None;
    for method in allowed {
        let r = match method {
            EstAuth::ClientCert => issued_by_us(store, leaf.as_ref(), now),
            EstAuth::Bootstrap => match bootstrap {
                Some(v) => {
                    let unix = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                        u64::try_from(now.unix_timestamp()).unwrap_or(0),
                    ));
                    v.verify_client_cert(leaf, intermediates, unix)
                        .map(|_| ())
                        .map_err(|e| {
                            EstError::Unauthenticated(format!(
                                "client certificate does not chain to this label's bootstrap CA: {e}"
                            ))
                        })
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
