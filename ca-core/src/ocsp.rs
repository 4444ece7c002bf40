//! OCSP responder core (RFC 6960, RFC 5019 profile): delegated responder
//! certificates and signed responses. No I/O; time comes in as arguments.
//!
//! - [`issue_responder_cert`] issues a delegated OCSP signing certificate
//!   (RFC 6960 §4.2.2.2): keyUsage digitalSignature (critical), extKeyUsage
//!   id-kp-OCSPSigning (non-critical, as RFC 6960 §4.2.2.2 leaves open and
//!   most CAs do), id-pkix-ocsp-nocheck (§4.2.2.2.1, value NULL) so that
//!   clients do not check the responder's own revocation, an
//!   authorityKeyIdentifier, and no AIA OCSP / CRL DP (CA/B Forum BR
//!   §7.1.2.8: AIA NOT RECOMMENDED; nocheck makes both pointless).
//! - [`OcspResponder`] holds the responder key and certificate together
//!   with the issuer's name and key hashes for SHA-1 and SHA-256 CertIDs
//!   (RFC 6960 §4.1.1), decides which requests are ours
//!   ([`OcspResponder::matches`]) and signs `BasicOCSPResponse`s over the
//!   exact `tbsResponseData` bytes it encoded ([`OcspResponder::sign_response`]).

use aws_lc_rs::digest;
use der::asn1::{GeneralizedTime, ObjectIdentifier};
use der::Encode;
use ironseal_protocol::ocsp::request::CertIdHash;
use ironseal_protocol::ocsp::{
    encode_basic_response, encode_successful_response, CertId, CertStatus, ResponseData,
    SingleResponse,
};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyUsagePurpose, SigningKey,
};
use time::OffsetDateTime;
use x509_cert::name::Name;

use crate::cert::{parse, time_to_offset};
use crate::der_util::{
    key_identifier, OID_ECDSA_SHA256, OID_ECDSA_SHA384, OID_ED25519, OID_SHA256_WITH_RSA,
};
use crate::error::CaError;
use crate::hierarchy::Issuer;
use crate::keys::{CaKey, KeyAlgorithm};
use crate::revocation::RevocationReason;
use crate::serial::Serial;

/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1) as rcgen wants it.
const OID_OCSP_NOCHECK_ARCS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");

fn enc(e: impl std::fmt::Display) -> CaError {
    CaError::Encoding(e.to_string())
}

fn truncate_secs(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// The first attribute of type `oid` in `name`, as text.
fn name_attr(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    name.iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .find(|atv| atv.oid == oid)
        .and_then(|atv| String::from_utf8(atv.value.value().to_vec()).ok())
}

fn clip(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Issues a delegated OCSP responder certificate for `issuer`
/// (RFC 6960 §4.2.2.2), with a fresh key of `algorithm`.
///
/// Subject: `O` copied from the issuer (if any) and `CN` = "<issuer CN>
/// OCSP Responder" (clipped to 64 characters). Extensions: keyUsage
/// digitalSignature (critical), extKeyUsage id-kp-OCSPSigning
/// (non-critical), id-pkix-ocsp-nocheck (NULL, non-critical),
/// authorityKeyIdentifier, subjectKeyIdentifier; no basicConstraints, no
/// AIA, no CRL DP.
///
/// Validity is truncated to whole seconds; `not_before` earlier than the
/// issuer's notBefore is raised to it; `not_after` beyond the issuer's
/// notAfter is an error ([`CaError::InvalidValidity`]).
pub fn issue_responder_cert(
    issuer: &Issuer,
    algorithm: KeyAlgorithm,
    serial: Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<(CaKey, Vec<u8>), CaError> {
    let not_before = truncate_secs(not_before).max(issuer.not_before());
    let not_after = truncate_secs(not_after);
    if not_before >= not_after {
        return Err(CaError::InvalidValidity(
            "notBefore must precede notAfter".into(),
        ));
    }
    if not_after > issuer.not_after() {
        return Err(CaError::InvalidValidity(
            "responder notAfter must not exceed the issuer's notAfter".into(),
        ));
    }
    let subject = crate::cert::cert_subject_der(issuer.cert_der())?;
    let subject = <Name as der::Decode>::from_der(&subject).map_err(enc)?;
    let issuer_cn = name_attr(&subject, OID_CN).unwrap_or_else(|| issuer.id().to_string());
    let mut dn = DistinguishedName::new();
    if let Some(o) = name_attr(&subject, OID_O).filter(|o| !o.is_empty()) {
        dn.push(DnType::OrganizationName, DnValue::Utf8String(clip(&o, 64)));
    }
    let suffix = " OCSP Responder";
    let cn = format!("{}{suffix}", clip(&issuer_cn, 64 - suffix.len()));
    dn.push(DnType::CommonName, DnValue::Utf8String(cn));

    let key = CaKey::generate(algorithm)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.serial_number = Some(serial.to_rcgen());
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key.public_key_bits()));
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        OID_OCSP_NOCHECK_ARCS,
        vec![0x05, 0x00],
    )];
    let cert = params.signed_by(key.pair(), &issuer.rcgen_issuer())?;
    let der = cert.der().to_vec();
    issuer.self_check(&der, &key.spki_der())?;
    Ok((key, der))
}

/// A GeneralizedTime (whole seconds, UTC) from an `OffsetDateTime`.
pub fn generalized_time(t: OffsetDateTime) -> Result<GeneralizedTime, CaError> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| CaError::InvalidValidity("time before 1970".into()))?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|e| CaError::InvalidValidity(e.to_string()))
}

/// `CertStatus revoked` for a certificate revoked at `revoked_at` for
/// `reason` (RFC 6960 §4.2.1 RevokedInfo). The reason is omitted when it
/// is `unspecified`, as for CRL entries (RFC 5280 §5.3.1) so the two stay
/// consistent (CA/B Forum BR §7.3).
pub fn revoked_status(
    revoked_at: OffsetDateTime,
    reason: RevocationReason,
) -> Result<CertStatus, CaError> {
    Ok(CertStatus::Revoked {
        revocation_time: generalized_time(revoked_at)?,
        reason: match reason {
            RevocationReason::Unspecified => None,
            r => Some(r.code()),
        },
    })
}

fn sha1(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// The DER `AlgorithmIdentifier` of the signatures `alg` produces:
/// ecdsa-with-SHA256/384 without parameters (RFC 5758 §3.2),
/// sha256WithRSAEncryption with NULL (RFC 4055 §5), id-Ed25519 without
/// parameters (RFC 8410 §3).
fn signature_algorithm_der(alg: KeyAlgorithm) -> Result<Vec<u8>, CaError> {
    let (oid, null_params) = match alg {
        KeyAlgorithm::EcdsaP256 => (OID_ECDSA_SHA256, false),
        KeyAlgorithm::EcdsaP384 => (OID_ECDSA_SHA384, false),
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => (OID_SHA256_WITH_RSA, true),
        KeyAlgorithm::Ed25519 => (OID_ED25519, false),
    };
    let mut content = oid.to_der().map_err(enc)?;
    if null_params {
        content.extend_from_slice(&[0x05, 0x00]);
    }
    // content is < 128 bytes: short-form length.
    let len = u8::try_from(content.len()).map_err(enc)?;
    let mut out = vec![0x30, len];
    out.extend(content);
    Ok(out)
}

/// A delegated OCSP responder for one issuing CA (RFC 6960 §2.6, §4.2.2.2).
pub struct OcspResponder {
    issuer_id: String,
    key: CaKey,
    cert_der: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    /// SHA-1 of the responder's subjectPublicKey (ResponderID byKey).
    responder_key_hash: Vec<u8>,
    sig_alg: Vec<u8>,
    sha1_name: Vec<u8>,
    sha1_key: Vec<u8>,
    sha256_name: Vec<u8>,
    sha256_key: Vec<u8>,
}

impl std::fmt::Debug for OcspResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponder")
            .field("issuer_id", &self.issuer_id)
            .field("algorithm", &self.key.algorithm())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl OcspResponder {
    /// Builds a responder for `issuer` from a responder key and the
    /// certificate [`issue_responder_cert`] made for it.
    ///
    /// Checks that the certificate holds `key`, was issued by `issuer`
    /// (issuer name and AKI), and carries id-kp-OCSPSigning
    /// (RFC 6960 §4.2.2.2).
    pub fn new(issuer: &Issuer, key: CaKey, cert_der: Vec<u8>) -> Result<OcspResponder, CaError> {
        let bad = |m: &str| CaError::InvalidCertificate(format!("responder certificate: {m}"));
        let cert = parse(&cert_der)?;
        let tbs = cert.tbs_certificate();
        let bits = tbs
            .subject_public_key_info()
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| bad("bad subjectPublicKey"))?;
        if bits != key.public_key_bits() {
            return Err(bad("key does not match"));
        }
        if tbs.issuer().to_der().map_err(enc)? != issuer.subject_der() {
            return Err(bad("not issued by this CA (issuer name)"));
        }
        if crate::cert::cert_aki(&cert_der)?.as_deref() != Some(issuer.key_identifier()) {
            return Err(bad("not issued by this CA (authorityKeyIdentifier)"));
        }
        let eku = tbs
            .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()
            .map_err(|e| bad(&e.to_string()))?
            .map(|(_, e)| e);
        if !eku.is_some_and(|e| e.0.contains(&ironseal_protocol::ocsp::OID_KP_OCSP_SIGNING)) {
            return Err(bad("lacks id-kp-OCSPSigning"));
        }
        let not_before = time_to_offset(tbs.validity().not_before)?;
        let not_after = time_to_offset(tbs.validity().not_after)?;
        let issuer_key = issuer.key().public_key_bits();
        Ok(OcspResponder {
            issuer_id: issuer.id().to_string(),
            responder_key_hash: sha1(key.public_key_bits()),
            sig_alg: signature_algorithm_der(key.algorithm())?,
            key,
            cert_der,
            not_before,
            not_after,
            sha1_name: sha1(issuer.subject_der()),
            sha1_key: sha1(issuer_key),
            sha256_name: sha256(issuer.subject_der()),
            sha256_key: sha256(issuer_key),
        })
    }

    /// The id of the CA this responder answers for.
    pub fn issuer_id(&self) -> &str {
        &self.issuer_id
    }

    /// The responder certificate, DER (sent in `BasicOCSPResponse.certs`).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The responder key.
    pub fn key(&self) -> &CaKey {
        &self.key
    }

    /// The responder certificate's notBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The responder certificate's notAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// True when `id` names a certificate of our issuer: the hash
    /// algorithm is SHA-1 or SHA-256 and both issuerNameHash (over the
    /// issuer's subject DER) and issuerKeyHash (over its subjectPublicKey
    /// BIT STRING value) match (RFC 6960 §4.1.1). The serial is not
    /// looked at.
    pub fn matches(&self, id: &CertId) -> bool {
        let (name, key) = match id.hash() {
            Some(CertIdHash::Sha1) => (&self.sha1_name, &self.sha1_key),
            Some(CertIdHash::Sha256) => (&self.sha256_name, &self.sha256_key),
            _ => return false,
        };
        id.issuer_name_hash.as_bytes() == name.as_slice()
            && id.issuer_key_hash.as_bytes() == key.as_slice()
    }

    /// A CertID for `serial` under our issuer (SHA-1 or SHA-256 only), as
    /// a client would build it; used for pre-signing.
    pub fn cert_id(&self, hash: CertIdHash, serial: &Serial) -> Result<CertId, CaError> {
        let (name, key) = match hash {
            CertIdHash::Sha1 => (&self.sha1_name, &self.sha1_key),
            CertIdHash::Sha256 => (&self.sha256_name, &self.sha256_key),
            other => {
                return Err(CaError::InvalidRequest(format!(
                    "CertID hash {other:?} not supported"
                )))
            }
        };
        CertId::new(hash, name, key, serial.as_bytes()).map_err(enc)
    }

    /// Signs a successful `OCSPResponse` (RFC 6960 §4.2.1) with one
    /// `SingleResponse` per item, each echoing its CertID, with
    /// `this_update`/`next_update` (RFC 5019 §2.2.4), producedAt
    /// `produced_at`, ResponderID byKey, the nonce echoed when given
    /// (RFC 6960 §4.4.1), and the responder certificate in `certs`.
    ///
    /// The signature covers the exact `tbsResponseData` bytes encoded
    /// here. Errors if `items` is empty, if `next_update ≤ this_update`,
    /// or if the nonce is outside 1..=128 octets.
    pub fn sign_response(
        &self,
        items: &[(CertId, CertStatus)],
        produced_at: OffsetDateTime,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, CaError> {
        use ironseal_protocol::ocsp::{MAX_NONCE_LEN, MIN_NONCE_LEN};
        if items.is_empty() {
            return Err(CaError::InvalidRequest("no responses to sign".into()));
        }
        if next_update <= this_update {
            return Err(CaError::InvalidValidity(
                "nextUpdate must follow thisUpdate".into(),
            ));
        }
        if nonce.is_some_and(|n| n.len() < MIN_NONCE_LEN || n.len() > MAX_NONCE_LEN) {
            return Err(CaError::InvalidRequest(
                "nonce length outside 1..=128".into(),
            ));
        }
        let this = generalized_time(this_update)?;
        let next = generalized_time(next_update)?;
        let data = ResponseData {
            responder_key_hash: self.responder_key_hash.clone(),
            produced_at: generalized_time(produced_at)?,
            responses: items
                .iter()
                .map(|(id, status)| SingleResponse {
                    cert_id: id.clone(),
                    status: status.clone(),
                    this_update: this,
                    next_update: Some(next),
                })
                .collect(),
            nonce: nonce.map(<[u8]>::to_vec),
        };
        let tbs = data.to_der().map_err(enc)?;
        let signature = self.key.pair().sign(&tbs)?;
        let basic = encode_basic_response(&tbs, &self.sig_alg, &signature, &[&self.cert_der]);
        encode_successful_response(&basic).map_err(enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_algorithms() {
        assert_eq!(
            signature_algorithm_der(KeyAlgorithm::EcdsaP256).ok(),
            Some(vec![
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02
            ])
        );
        assert_eq!(
            signature_algorithm_der(KeyAlgorithm::Rsa3072).ok(),
            Some(vec![
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
                0x00
            ])
        );
        assert_eq!(
            signature_algorithm_der(KeyAlgorithm::Ed25519).ok(),
            Some(vec![0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70])
        );
    }

    #[test]
    fn revoked_reason_unspecified_is_omitted() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert!(matches!(
            revoked_status(t, RevocationReason::Unspecified),
            Ok(CertStatus::Revoked { reason: None, .. })
        ));
        assert!(matches!(
            revoked_status(t, RevocationReason::KeyCompromise),
            Ok(CertStatus::Revoked {
                reason: Some(1),
                ..
            })
        ));
        assert!(generalized_time(OffsetDateTime::UNIX_EPOCH - time::Duration::seconds(1)).is_err());
    }
}
