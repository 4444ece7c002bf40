//! Hierarchy operations beyond "create a root / create an intermediate":
//!
//! * [`intermediate_csr`] + [`import_signed_ca`]: an intermediate whose key
//!   lives here but whose certificate is signed by an offline or external
//!   root (PKCS#10, RFC 2986; path validation per RFC 5280 §6.1).
//! * [`check_external_ca`]: a CA certificate kept without its key (an
//!   offline root, or a CA of an external hierarchy), validated as a path.
//! * [`import_ca`]: bring an existing CA certificate and its private key
//!   (PKCS#8, SEC1 or PKCS#1; DER or PEM, RFC 7468) under management.
//! * [`cross_sign`]: a second certificate for an existing CA, issued by
//!   another CA, with the same subject, public key and subjectKeyIdentifier
//!   byte for byte, so that either issuer validates the same subordinates
//!   (RFC 5280 §3.2, §4.1.2.6, §4.2.1.2).
//! * [`rollover_profile`]: the profile of a successor CA for key rotation.
//!
//! Signatures are always verified over the *original* tbsCertificate bytes
//! (never a re-encoding) with aws-lc-rs; cross-certificates are assembled
//! from raw DER so the copied subject and subjectPublicKeyInfo are never
//! re-encoded.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::{Ia5String, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Header, Reader, SliceReader, Tag, Tagged};
use rcgen::SigningKey;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier,
    BasicConstraints as X509BasicConstraints, CrlDistributionPoints, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::cert::{parse, time_to_offset};
use crate::constraints::ChainPolicy;
use crate::csr::{check_csr, CsrPolicy};
use crate::der_util::{
    OID_AD_CA_ISSUERS, OID_AD_OCSP, OID_ECDSA_SHA256, OID_ECDSA_SHA384, OID_EC_PUBLIC_KEY,
    OID_ED25519, OID_RSA_ENCRYPTION, OID_SECP256R1, OID_SECP384R1, OID_SHA256_WITH_RSA,
    OID_SHA384_WITH_RSA, OID_SHA512_WITH_RSA,
};
use crate::error::CaError;
use crate::hierarchy::{CaProfile, Issuer, IssuerUrls};
use crate::keys::{CaKey, KeyAlgorithm};
use crate::serial::Serial;

const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_SKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const OID_AKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const OID_AIA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
const OID_CRL_DP: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");
const OID_ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
/// Extensions of the subject CA that a cross-certificate carries over
/// unchanged: they describe or constrain the subject CA itself
/// (subjectAltName §4.2.1.6, nameConstraints §4.2.1.10, certificatePolicies
/// §4.2.1.4, policyMappings §4.2.1.5, policyConstraints §4.2.1.11,
/// extKeyUsage §4.2.1.12, inhibitAnyPolicy §4.2.1.14).
const COPIED_EXTENSIONS: [&str; 7] = [
    "2.5.29.17",
    "2.5.29.30",
    "2.5.29.32",
    "2.5.29.33",
    "2.5.29.36",
    "2.5.29.37",
    "2.5.29.54",
];

fn enc(e: impl std::fmt::Display) -> CaError {
    CaError::Encoding(e.to_string())
}

fn bad_cert(e: impl std::fmt::Display) -> CaError {
    CaError::InvalidCertificate(e.to_string())
}

// ---------------------------------------------------------------------------
// Raw DER
// ---------------------------------------------------------------------------

/// The pieces of a certificate we need byte-exact (RFC 5280 §4.1).
struct RawCert<'a> {
    /// The whole tbsCertificate TLV, as signed.
    tbs: &'a [u8],
    /// issuer Name TLV.
    issuer: &'a [u8],
    /// subject Name TLV.
    subject: &'a [u8],
    /// subjectPublicKeyInfo TLV.
    spki: &'a [u8],
}

fn split_cert(der: &[u8]) -> Result<RawCert<'_>, CaError> {
    let inner = || -> Result<RawCert<'_>, der::Error> {
        let mut r = SliceReader::new(der)?;
        let _cert = Header::decode(&mut r)?;
        let tbs = r.tlv_bytes()?;
        let mut t = SliceReader::new(tbs)?;
        let _seq = Header::decode(&mut t)?;
        if Tag::peek(&t)?
            == (Tag::ContextSpecific {
                constructed: true,
                number: der::TagNumber(0),
            })
        {
            t.tlv_bytes()?; // version
        }
        t.tlv_bytes()?; // serialNumber
        t.tlv_bytes()?; // signature
        let issuer = t.tlv_bytes()?;
        t.tlv_bytes()?; // validity
        let subject = t.tlv_bytes()?;
        let spki = t.tlv_bytes()?;
        Ok(RawCert {
            tbs,
            issuer,
            subject,
            spki,
        })
    };
    inner().map_err(bad_cert)
}

/// A DER TLV with a one-octet tag (X.690 §8.1).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
fn der_time(t: OffsetDateTime) -> Result<Vec<u8>, CaError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let y = t.year();
    if !(1950..=9999).contains(&y) {
        return Err(CaError::InvalidValidity(format!("year {y} out of range")));
    }
    let rest = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    Ok(if y < 2050 {
        tlv(0x17, format!("{:02}{rest}", y % 100).as_bytes())
    } else {
        tlv(0x18, format!("{y:04}{rest}").as_bytes())
    })
}

fn extension(oid: ObjectIdentifier, critical: bool, value: Vec<u8>) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).map_err(enc)?,
    })
}

// ---------------------------------------------------------------------------
// Signature verification (over the original bytes)
// ---------------------------------------------------------------------------

/// Picks the aws-lc-rs verifier for a signatureAlgorithm and the signer's
/// subjectPublicKeyInfo algorithm (RFC 4055, RFC 5758 §3.2, RFC 8410).
fn verifier(
    sig_alg: &AlgorithmIdentifierOwned,
    key_alg: &AlgorithmIdentifierOwned,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    let o = sig_alg.oid;
    let no_params = sig_alg.parameters.is_none();
    let null_or_none = no_params || sig_alg.parameters.as_ref().is_some_and(|p| p.is_null());
    let unsupported = || {
        format!(
            "unsupported signature algorithm {o} for key {}",
            key_alg.oid
        )
    };
    if key_alg.oid == OID_RSA_ENCRYPTION {
        if !null_or_none {
            return Err(unsupported());
        }
        if o == OID_SHA256_WITH_RSA {
            Ok(&signature::RSA_PKCS1_2048_8192_SHA256)
        } else if o == OID_SHA384_WITH_RSA {
            Ok(&signature::RSA_PKCS1_2048_8192_SHA384)
        } else if o == OID_SHA512_WITH_RSA {
            Ok(&signature::RSA_PKCS1_2048_8192_SHA512)
        } else {
            Err(unsupported())
        }
    } else if key_alg.oid == OID_EC_PUBLIC_KEY {
        let curve = key_alg
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or_else(|| "EC key without a named curve".to_string())?;
        if !no_params {
            return Err(unsupported());
        }
        let p256 = if curve == OID_SECP256R1 {
            true
        } else if curve == OID_SECP384R1 {
            false
        } else {
            return Err(format!("unsupported EC curve {curve}"));
        };
        match (p256, o == OID_ECDSA_SHA256, o == OID_ECDSA_SHA384) {
            (true, true, _) => Ok(&signature::ECDSA_P256_SHA256_ASN1),
            (true, _, true) => Ok(&signature::ECDSA_P256_SHA384_ASN1),
            (false, true, _) => Ok(&signature::ECDSA_P384_SHA256_ASN1),
            (false, _, true) => Ok(&signature::ECDSA_P384_SHA384_ASN1),
            _ => Err(unsupported()),
        }
    } else if key_alg.oid == OID_ED25519 {
        if o != OID_ED25519 || !no_params {
            return Err(unsupported());
        }
        Ok(&signature::ED25519)
    } else {
        Err(unsupported())
    }
}

/// Verifies that `child_der` was signed by the key of `issuer_der`
/// (RFC 5280 §6.1.3 (a)(1)), over the child's original tbsCertificate
/// bytes. The outer and inner signatureAlgorithm must agree (§4.1.1.2).
/// Names and validity are not looked at. Errors with a reason text.
fn verify_raw(child_der: &[u8], issuer_der: &[u8]) -> Result<(), String> {
    let child = parse(child_der).map_err(|e| e.to_string())?;
    let issuer = parse(issuer_der).map_err(|e| e.to_string())?;
    let raw = split_cert(child_der).map_err(|e| e.to_string())?;
    if child.signature_algorithm() != child.tbs_certificate().signature() {
        return Err("signatureAlgorithm differs from tbsCertificate.signature".into());
    }
    let spki = issuer.tbs_certificate().subject_public_key_info();
    let alg = verifier(child.signature_algorithm(), &spki.algorithm)?;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or("issuer subjectPublicKey has unused bits")?;
    let sig = child
        .signature()
        .as_bytes()
        .ok_or("signature has unused bits")?;
    UnparsedPublicKey::new(alg, key)
        .verify(raw.tbs, sig)
        .map_err(|_| "signature does not verify".to_string())
}

/// Verifies the signature of `child_der` with the public key of
/// `issuer_der` over the original tbsCertificate bytes (RFC 5280 §6.1.3
/// (a)(1)); supports RSA PKCS#1 v1.5 (SHA-256/384/512, 2048–8192 bits),
/// ECDSA P-256/P-384 and Ed25519. Errors with
/// [`CaError::BadSignature`] at depth 0.
pub fn verify_cert_signature(child_der: &[u8], issuer_der: &[u8]) -> Result<(), CaError> {
    verify_raw(child_der, issuer_der).map_err(|reason| CaError::BadSignature { depth: 0, reason })
}

// ---------------------------------------------------------------------------
// CA-ness
// ---------------------------------------------------------------------------

/// basicConstraints cA=TRUE (RFC 5280 §4.2.1.9) and, when keyUsage is
/// present or `require_ku`, keyCertSign (§4.2.1.3). Returns the
/// pathLenConstraint.
fn ca_path_len(cert: &Certificate, depth: usize, require_ku: bool) -> Result<Option<u8>, CaError> {
    let not_ca = |reason: &str| CaError::NotACa {
        depth,
        reason: reason.to_string(),
    };
    let tbs = cert.tbs_certificate();
    let bc = tbs
        .get_extension::<X509BasicConstraints>()
        .map_err(bad_cert)?
        .map(|(_, b)| b);
    let path_len = match bc {
        Some(b) if b.ca => b.path_len_constraint,
        Some(_) => return Err(not_ca("basicConstraints cA is FALSE")),
        None => return Err(not_ca("no basicConstraints extension")),
    };
    match tbs.get_extension::<KeyUsage>().map_err(bad_cert)? {
        Some((_, ku)) if !ku.0.contains(KeyUsages::KeyCertSign) => {
            Err(not_ca("keyUsage lacks keyCertSign"))
        }
        None if require_ku => Err(not_ca("no keyUsage extension")),
        _ => Ok(path_len),
    }
}

fn key_matches(cert: &Certificate, key: &CaKey) -> Result<(), CaError> {
    let bits = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| bad_cert("subjectPublicKey has unused bits"))?;
    if bits != key.public_key_bits() {
        return Err(CaError::KeyMismatch);
    }
    Ok(())
}

fn clone_key(key: &CaKey) -> Result<CaKey, CaError> {
    CaKey::from_pkcs8_der(key.pkcs8_der())
}

/// Proves that [`Issuer::new`] (and [`Issuer::with_ancestors`]) accept the
/// certificate and key: key match, CA profile, SKI, byte-exact subject
/// re-encoding (RFC 5280 §4.1.2.4).
fn probe_issuer(cert_der: &[u8], key: &CaKey, ancestors: &[Vec<u8>]) -> Result<(), CaError> {
    let issuer = Issuer::new(
        "import-probe".into(),
        cert_der.to_vec(),
        clone_key(key)?,
        IssuerUrls::default(),
    )?;
    if !ancestors.is_empty() {
        issuer.with_ancestors(ancestors)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 1. CSR for an externally signed intermediate
// ---------------------------------------------------------------------------

/// Builds the PKCS#10 CertificationRequest (RFC 2986 §4) for a new
/// intermediate whose certificate an offline or external root will sign.
///
/// Subject: UTF8String `O` (if set) then `CN`, as [`crate::hierarchy`]
/// writes them. extensionRequest (RFC 2985 §5.4.2): basicConstraints
/// cA=TRUE with the profile's pathLenConstraint (critical, RFC 5280
/// §4.2.1.9), keyUsage keyCertSign + cRLSign (critical, §4.2.1.3),
/// nameConstraints (critical, §4.2.1.10) and certificatePolicies
/// (§4.2.1.4) when the profile has them. Signed with `key`, whose
/// algorithm must be `profile.algorithm`. The profile's validity is not
/// part of a CSR; the external CA chooses it.
pub fn intermediate_csr(profile: &CaProfile, key: &CaKey) -> Result<Vec<u8>, CaError> {
    if key.algorithm() != profile.algorithm {
        return Err(CaError::InvalidRequest(format!(
            "the key is {}, the profile asks for {}",
            key.algorithm(),
            profile.algorithm
        )));
    }
    let params = crate::hierarchy::ca_subject_params(profile)?;
    let csr = params.serialize_request(key.pair())?;
    let der = csr.der().to_vec();
    // Self-check: the CSR parses and its signature verifies (RFC 2986 §4.2).
    let checked = check_csr(&der, &CsrPolicy::default())
        .map_err(|e| CaError::SelfCheck(format!("CSR: {e}")))?;
    if checked.public_key_bits != key.public_key_bits() {
        return Err(CaError::SelfCheck("CSR carries another key".into()));
    }
    Ok(der)
}

// ---------------------------------------------------------------------------
// 1b. Import the externally signed certificate
// ---------------------------------------------------------------------------

/// A CA certificate accepted by [`import_signed_ca`], with the validated
/// path above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCa {
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its issuer first, up to and including the trusted root: what
    /// [`Issuer::with_ancestors`] takes and what the server should publish
    /// as the chain (RFC 8555 §7.4.2 certificate chain, root optional).
    pub ancestors: Vec<Vec<u8>>,
    /// validity.notBefore of the CA certificate.
    pub not_before: OffsetDateTime,
    /// validity.notAfter of the CA certificate.
    pub not_after: OffsetDateTime,
    /// Its pathLenConstraint (RFC 5280 §4.2.1.9).
    pub path_len: Option<u8>,
}

impl ImportedCa {
    /// The [`Issuer`] for this CA, aware of its whole chain's constraints.
    pub fn into_issuer(self, id: String, key: CaKey, urls: IssuerUrls) -> Result<Issuer, CaError> {
        Issuer::new(id, self.cert_der, key, urls)?.with_ancestors(&self.ancestors)
    }
}

/// Checks and accepts the certificate an external root signed for a key
/// made here (after [`intermediate_csr`]).
///
/// `chain` is the issuer's certificate first, up to the root (the root may
/// be left out if it is in `trusted_roots`); `trusted_roots` are the DER
/// trust anchors. Depth 0 is `cert_der`, depth 1 `chain[0]`, and so on.
/// In order, with the error each failure gives:
///
/// 1. `cert_der`'s subjectPublicKey is `key`'s (RFC 5280 §4.1.2.7) —
///    [`CaError::KeyMismatch`];
/// 2. it is a CA: basicConstraints cA=TRUE, keyUsage with keyCertSign
///    (§4.2.1.9, §4.2.1.3) — [`CaError::NotACa`] (also for an issuer
///    without cA=TRUE, or with a keyUsage lacking keyCertSign);
/// 3. the path ends in a trusted root: the last certificate is
///    byte-identical to one of `trusted_roots`, or is issued by one — else
///    [`CaError::Untrusted`]; the root must be self-signed (its signature
///    verifies under its own key, §3.2) — [`CaError::Untrusted`];
/// 4. for every link: issuer name byte-identical to the next subject
///    (§4.1.2.4, §6.1.3 (a)(4)) — [`CaError::NameChain`]; signature over the
///    original tbsCertificate verifies under the next key (§6.1.3 (a)(1))
///    — [`CaError::BadSignature`]; validity inside the issuer's —
///    [`CaError::ValidityNotNested`];
/// 5. every certificate is valid at `now` (§6.1.3 (a)(2)) —
///    [`CaError::Expired`] / [`CaError::NotYetValid`];
/// 6. every pathLenConstraint on the path leaves room for the CAs below it
///    (§4.2.1.9, §6.1.4 (l)/(m)) — [`CaError::PathLenExceeded`];
/// 7. [`Issuer::new`] accepts it (SKI present, subject reproducible byte
///    for byte) — [`CaError::InvalidIssuer`].
pub fn import_signed_ca(
    cert_der: &[u8],
    key: &CaKey,
    chain: &[Vec<u8>],
    trusted_roots: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<ImportedCa, CaError> {
    let cert = parse(cert_der)?;
    key_matches(&cert, key)?;
    let path_len = ca_path_len(&cert, 0, true)?;

    let mut path: Vec<Vec<u8>> = Vec::with_capacity(chain.len() + 2);
    path.push(cert_der.to_vec());
    path.extend(chain.iter().cloned());
    let last_is_trusted = chain
        .last()
        .is_some_and(|l| trusted_roots.iter().any(|t| t == l));
    if !last_is_trusted {
        let last = path.last().map(Vec::as_slice).unwrap_or(cert_der);
        let last_issuer = split_cert(last)?.issuer.to_vec();
        // Anchors by name; among several with that name, the one whose key
        // verifies (a wrong signature is then reported as BadSignature).
        let named: Vec<&Vec<u8>> = trusted_roots
            .iter()
            .filter(|t| split_cert(t).is_ok_and(|r| r.subject == last_issuer.as_slice()))
            .collect();
        let anchor = named
            .iter()
            .find(|t| verify_raw(last, t).is_ok())
            .or_else(|| named.first())
            .copied();
        match anchor {
            Some(a) if a.as_slice() != last => path.push(a.clone()),
            Some(_) => {}
            None => {
                return Err(CaError::Untrusted(
                    "no trusted root issued the last certificate of the chain".into(),
                ))
            }
        }
    }

    validate_path(&path, now)?;

    let ancestors: Vec<Vec<u8>> = path[1..].to_vec();
    probe_issuer(cert_der, key, &ancestors)?;
    let v = cert.tbs_certificate().validity();
    Ok(ImportedCa {
        cert_der: cert_der.to_vec(),
        ancestors,
        not_before: time_to_offset(v.not_before)?,
        not_after: time_to_offset(v.not_after)?,
        path_len,
    })
}

/// Validates a certification path that ends in its trust anchor: `path[0]`
/// is the certificate, each next one its issuer, the last a self-signed
/// root. Steps 3 (the anchor's part) to 6 of [`import_signed_ca`]: the
/// anchor is self-issued and its signature verifies
/// ([`CaError::Untrusted`]); every link chains by name
/// ([`CaError::NameChain`]), by signature ([`CaError::BadSignature`]) and
/// by nested validity ([`CaError::ValidityNotNested`]); every issuer is a CA
/// ([`CaError::NotACa`]); everything is valid at `now`; pathLenConstraints
/// hold (RFC 5280 §6.1).
fn validate_path(path: &[Vec<u8>], now: OffsetDateTime) -> Result<(), CaError> {
    if path.is_empty() {
        return Err(CaError::InvalidRequest("empty certification path".into()));
    }
    let parsed: Vec<Certificate> = path.iter().map(|d| parse(d)).collect::<Result<_, _>>()?;
    let root_depth = path.len() - 1;
    // The trust anchor must be a proper self-signed certificate.
    let root_raw = split_cert(&path[root_depth])?;
    if root_raw.issuer != root_raw.subject {
        return Err(CaError::Untrusted(
            "the trust anchor is not self-issued".into(),
        ));
    }
    verify_raw(&path[root_depth], &path[root_depth])
        .map_err(|e| CaError::Untrusted(format!("the trust anchor's self-signature: {e}")))?;

    for depth in 0..root_depth {
        let child = split_cert(&path[depth])?;
        let parent = split_cert(&path[depth + 1])?;
        if child.issuer != parent.subject {
            return Err(CaError::NameChain { depth });
        }
        ca_path_len(&parsed[depth + 1], depth + 1, false)?;
        verify_raw(&path[depth], &path[depth + 1])
            .map_err(|reason| CaError::BadSignature { depth, reason })?;
        let (c, p) = (
            parsed[depth].tbs_certificate().validity(),
            parsed[depth + 1].tbs_certificate().validity(),
        );
        if time_to_offset(c.not_before)? < time_to_offset(p.not_before)?
            || time_to_offset(c.not_after)? > time_to_offset(p.not_after)?
        {
            return Err(CaError::ValidityNotNested { depth });
        }
    }
    for (depth, c) in parsed.iter().enumerate() {
        let v = c.tbs_certificate().validity();
        let (nb, na) = (time_to_offset(v.not_before)?, time_to_offset(v.not_after)?);
        if now < nb {
            return Err(CaError::NotYetValid {
                depth,
                not_before: nb,
            });
        }
        if now > na {
            return Err(CaError::Expired {
                depth,
                not_after: na,
            });
        }
    }
    // pathLenConstraints along the whole path (RFC 5280 §6.1.4 (l)/(m)).
    ChainPolicy::from_chain(path)?;

    Ok(())
}

// ---------------------------------------------------------------------------
// 1c. A CA certificate without its key
// ---------------------------------------------------------------------------

/// Checks a CA certificate whose key stays outside ironseal (an offline
/// root, or a CA of an external hierarchy) before it is kept as a trust
/// anchor and chain member, and returns its DER.
///
/// `cert` is DER or PEM. `ancestors` are its issuer first, up to and
/// including a self-signed root, and are themselves trusted (already in
/// the store); empty means `cert` must be a self-signed root. Errors:
/// [`CaError::NotACa`] without cA=TRUE and keyCertSign (RFC 5280
/// §4.2.1.9, §4.2.1.3); then every check of [`import_signed_ca`] on the
/// path (`cert`, `ancestors`...): [`CaError::Untrusted`] for a root whose
/// self-signature fails, [`CaError::NameChain`], [`CaError::BadSignature`],
/// [`CaError::ValidityNotNested`], [`CaError::Expired`],
/// [`CaError::NotYetValid`], [`CaError::PathLenExceeded`].
pub fn check_external_ca(
    cert: &[u8],
    ancestors: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<Vec<u8>, CaError> {
    let cert_der = decode_certificate(cert)?;
    ca_path_len(&parse(&cert_der)?, 0, true)?;
    let mut path = Vec::with_capacity(ancestors.len() + 1);
    path.push(cert_der.clone());
    path.extend(ancestors.iter().cloned());
    validate_path(&path, now)?;
    Ok(cert_der)
}

// ---------------------------------------------------------------------------
// 2. Import an existing CA
// ---------------------------------------------------------------------------

/// Decodes a certificate given as DER or as PEM (`CERTIFICATE`, RFC 7468
/// §5).
pub fn decode_certificate(input: &[u8]) -> Result<Vec<u8>, CaError> {
    if !looks_like_pem(input) {
        parse(input)?;
        return Ok(input.to_vec());
    }
    let (label, der) = der::pem::decode_vec(trim(input)).map_err(bad_cert)?;
    if label != "CERTIFICATE" {
        return Err(bad_cert(format!(
            "PEM label {label:?}, expected CERTIFICATE"
        )));
    }
    parse(&der)?;
    Ok(der)
}

fn looks_like_pem(input: &[u8]) -> bool {
    trim(input).starts_with(b"-----BEGIN ")
}

fn trim(input: &[u8]) -> &[u8] {
    let start = input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(input.len());
    &input[start..]
}

fn key_err(e: impl std::fmt::Display) -> CaError {
    CaError::Key(e.to_string())
}

/// Wraps an RSAPrivateKey (RFC 8017 §A.1.2) in a PKCS#8 PrivateKeyInfo
/// (RFC 5208 §5) with rsaEncryption and NULL parameters.
fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Result<Vec<u8>, CaError> {
    let pair = signature::RsaKeyPair::from_der(pkcs1).map_err(key_err)?;
    let doc = pair.as_der().map_err(key_err)?;
    Ok(doc.as_ref().to_vec())
}

/// Converts an ECPrivateKey (SEC1, RFC 5915) on P-256 or P-384 to PKCS#8.
fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, CaError> {
    for alg in [
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    ] {
        if let Ok(pair) = signature::EcdsaKeyPair::from_private_key_der(alg, sec1) {
            let doc = pair.to_pkcs8v1().map_err(key_err)?;
            return Ok(doc.as_ref().to_vec());
        }
    }
    Err(CaError::Key("not an ECPrivateKey on P-256 or P-384".into()))
}

/// Loads a CA private key given as DER or PEM: PKCS#8 `PRIVATE KEY`
/// (RFC 5958), SEC1 `EC PRIVATE KEY` (RFC 5915) or PKCS#1 `RSA PRIVATE
/// KEY` (RFC 8017). SEC1 and PKCS#1 keys are converted to PKCS#8, so
/// [`CaKey::pkcs8_der`] is PKCS#8 whatever came in. Encrypted keys are
/// refused; decrypt them first.
pub fn load_ca_key(input: &[u8]) -> Result<CaKey, CaError> {
    let (label, der) = if looks_like_pem(input) {
        let (label, der) = der::pem::decode_vec(trim(input)).map_err(|e| {
            CaError::Key(format!("bad PEM (encrypted keys are not supported): {e}"))
        })?;
        (Some(label.to_string()), der)
    } else {
        (None, input.to_vec())
    };
    let pkcs8 = match label.as_deref() {
        Some("PRIVATE KEY") => der,
        Some("RSA PRIVATE KEY") => pkcs1_to_pkcs8(&der)?,
        Some("EC PRIVATE KEY") => sec1_to_pkcs8(&der)?,
        Some(other) => {
            return Err(CaError::Key(format!(
                "PEM label {other:?} is not an unencrypted private key"
            )))
        }
        None => {
            // DER: PKCS#8 first, then the traditional forms.
            if is_pkcs8_der(&der) {
                der
            } else if let Ok(p) = pkcs1_to_pkcs8(&der) {
                p
            } else {
                sec1_to_pkcs8(&der)?
            }
        }
    };
    CaKey::from_pkcs8_der(&pkcs8)
}

/// Whether a DER private key is a PKCS#8 PrivateKeyInfo: a SEQUENCE whose
/// second element is an AlgorithmIdentifier SEQUENCE (RFC 5958 §2).
/// (SEC1 and PKCS#1 have an OCTET STRING / INTEGER there.)
fn is_pkcs8_der(der: &[u8]) -> bool {
    let inner = || -> Result<bool, der::Error> {
        let mut r = SliceReader::new(der)?;
        let _seq = Header::decode(&mut r)?;
        let _version = r.tlv_bytes()?;
        Ok(Tag::peek(&r)? == Tag::Sequence)
    };
    inner().unwrap_or(false)
}

/// Brings an existing CA under management: the certificate (DER or PEM)
/// and its private key (see [`load_ca_key`] for the accepted forms).
///
/// Checks that the key belongs to the certificate
/// ([`CaError::KeyMismatch`], RFC 5280 §4.1.2.7), that it is a CA with
/// keyCertSign ([`CaError::NotACa`], §4.2.1.9, §4.2.1.3), that a
/// self-signed certificate's signature verifies ([`CaError::BadSignature`])
/// and that [`Issuer::new`] accepts it (SKI present; subject reproducible
/// byte for byte as the issuer of children, §4.1.2.4). Returns the key
/// (PKCS#8) and the certificate DER, ready for [`Issuer::new`]; give the
/// issuer its chain with [`Issuer::with_ancestors`] (or use
/// [`import_signed_ca`] to validate that chain too).
pub fn import_ca(cert: &[u8], key: &[u8]) -> Result<(CaKey, Vec<u8>), CaError> {
    let cert_der = decode_certificate(cert)?;
    let key = load_ca_key(key)?;
    let parsed = parse(&cert_der)?;
    key_matches(&parsed, &key)?;
    ca_path_len(&parsed, 0, true)?;
    let raw = split_cert(&cert_der)?;
    if raw.issuer == raw.subject {
        // Self-issued: a root if the signature is its own.
        if verify_raw(&cert_der, &cert_der).is_err() {
            // A self-issued certificate signed by another key (RFC 5280
            // §3.2 key rollover) is fine; a self-signed one must verify.
            let aki = crate::cert::cert_aki(&cert_der)?;
            let ski = crate::cert::cert_ski(&cert_der)?;
            if aki.is_none() || aki == ski {
                return Err(CaError::BadSignature {
                    depth: 0,
                    reason: "self-signed certificate whose signature does not verify".into(),
                });
            }
        }
    }
    probe_issuer(&cert_der, &key, &[])?;
    Ok((key, cert_der))
}

// ---------------------------------------------------------------------------
// 3. Cross-signing
// ---------------------------------------------------------------------------

/// The AlgorithmIdentifier DER `key` signs with (RFC 5758 §3.2 ECDSA
/// without parameters, RFC 4055 §5 sha256WithRSAEncryption with NULL,
/// RFC 8410 §3 Ed25519 without parameters).
fn signature_algorithm(alg: KeyAlgorithm) -> Result<Vec<u8>, CaError> {
    let (oid, null) = match alg {
        KeyAlgorithm::EcdsaP256 => (OID_ECDSA_SHA256, false),
        KeyAlgorithm::EcdsaP384 => (OID_ECDSA_SHA384, false),
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => (OID_SHA256_WITH_RSA, true),
        KeyAlgorithm::Ed25519 => (OID_ED25519, false),
    };
    let mut content = oid.to_der().map_err(enc)?;
    if null {
        content.extend_from_slice(&[0x05, 0x00]);
    }
    Ok(tlv(0x30, &content))
}

/// What the cross-signer's chain still allows below a CA it certifies
/// (RFC 5280 §6.1.4 (l)/(m)): `Ok(None)` = unlimited, `Ok(Some(n))` = the
/// new CA may have at most `n` CAs below it.
fn remaining_path_len(chain: &ChainPolicy) -> Result<Option<u8>, CaError> {
    let mut remaining: Option<u32> = None;
    let mut below = 0u32;
    for ca in chain.cas() {
        if let Some(p) = ca.path_len {
            let needed = below + 1;
            if needed > u32::from(p) {
                return Err(CaError::PathLenExceeded {
                    ca: ca.subject.clone(),
                    path_len: p,
                    reason: format!(
                        "a cross-certified CA would be intermediate number {needed} below it"
                    ),
                });
            }
            let left = u32::from(p) - needed;
            remaining = Some(remaining.map_or(left, |r| r.min(left)));
        }
        if !ca.self_issued {
            below += 1;
        }
    }
    Ok(remaining.map(|r| u8::try_from(r).unwrap_or(u8::MAX)))
}

fn truncate_secs(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Issues a cross-certificate for an existing CA (RFC 5280 §3.2,
/// §4.2.1.9): the same subject (byte-identical DER, §4.1.2.6), the same
/// subjectPublicKeyInfo (byte-identical, §4.1.2.7) and the same
/// subjectKeyIdentifier (§4.2.1.2) as `subject_ca_cert_der`, but issued by
/// `by`: issuer = `by`'s subject bytes (§4.1.2.4), authorityKeyIdentifier
/// = `by`'s SKI (§4.2.1.1), AIA / CRL DP from `by`'s URLs (§4.2.2.1,
/// §4.2.1.13).
///
/// Extensions: basicConstraints cA=TRUE critical, with the original
/// pathLenConstraint lowered to what `by`'s chain still allows (an
/// unconstrained original becomes constrained if the chain is); keyUsage
/// as in the original; subjectAltName, nameConstraints,
/// certificatePolicies, policyMappings, policyConstraints, extKeyUsage and
/// inhibitAnyPolicy copied verbatim. Other non-critical extensions (the
/// original AIA, CRL DP, …) are dropped; an unknown critical one is refused.
///
/// Refused before signing: a subject certificate that is not a CA
/// ([`CaError::NotACa`]) or has no SKI; validity not inside `by`'s
/// ([`CaError::InvalidValidity`]); no room left under `by`'s
/// pathLenConstraints ([`CaError::PathLenExceeded`]); a permitted subtree
/// of the subject CA outside the name constraints of `by`'s chain
/// ([`CaError::NameConstraintViolation`], §4.2.1.10). After signing, the
/// result is re-parsed, its signature verified under `by`'s key, and
/// subject, SPKI, SKI, issuer and AKI compared byte for byte.
pub fn cross_sign(
    subject_ca_cert_der: &[u8],
    by: &Issuer,
    serial: Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Vec<u8>, CaError> {
    let orig = parse(subject_ca_cert_der)?;
    let raw = split_cert(subject_ca_cert_der)?;
    let orig_path_len = ca_path_len(&orig, 0, true)?;
    let tbs = orig.tbs_certificate();
    let ski = tbs
        .get_extension::<SubjectKeyIdentifier>()
        .map_err(bad_cert)?
        .map(|(_, s)| s.0.as_bytes().to_vec())
        .ok_or_else(|| {
            CaError::InvalidRequest("the CA certificate has no subjectKeyIdentifier".into())
        })?;

    let nb = truncate_secs(not_before);
    let na = truncate_secs(not_after);
    if nb >= na {
        return Err(CaError::InvalidValidity(
            "notBefore must precede notAfter".into(),
        ));
    }
    if nb < by.not_before() || na > by.not_after() {
        return Err(CaError::InvalidValidity(
            "cross-certificate validity must lie within the cross-signer's".into(),
        ));
    }

    // Constraints: what the cross-signer's chain allows, against what the
    // subject CA carries.
    let own = ChainPolicy::from_chain(&[subject_ca_cert_der])?;
    let own_nc = own
        .cas()
        .first()
        .map(|c| c.name_constraints.clone())
        .unwrap_or_default();
    let remaining = remaining_path_len(by.chain_policy())?;
    let new_path_len = match (orig_path_len, remaining) {
        (o, None) => o,
        (None, Some(r)) => Some(r),
        (Some(o), Some(r)) => Some(o.min(r)),
    };
    by.chain_policy().check_new_ca(new_path_len, &own_nc)?;

    // Extensions.
    let mut exts: Vec<Extension> = Vec::new();
    let bc = X509BasicConstraints {
        ca: true,
        path_len_constraint: new_path_len,
    };
    exts.push(extension(
        OID_BASIC_CONSTRAINTS,
        true,
        bc.to_der().map_err(enc)?,
    )?);
    let all = tbs.extensions().map(|e| e.as_slice()).unwrap_or(&[]);
    if let Some(ku) = all.iter().find(|e| e.extn_id == OID_KEY_USAGE) {
        exts.push(ku.clone());
    }
    exts.push(extension(
        OID_SKI,
        false,
        OctetString::new(ski.clone())
            .map_err(enc)?
            .to_der()
            .map_err(enc)?,
    )?);
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(by.key_identifier().to_vec()).map_err(enc)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    exts.push(extension(OID_AKI, false, aki.to_der().map_err(enc)?)?);
    for e in all {
        let id = e.extn_id.to_string();
        if COPIED_EXTENSIONS.contains(&id.as_str()) {
            exts.push(e.clone());
        } else if e.critical && e.extn_id != OID_BASIC_CONSTRAINTS && e.extn_id != OID_KEY_USAGE {
            return Err(CaError::InvalidRequest(format!(
                "the CA certificate has a critical extension {id} that a cross-certificate \
                 cannot carry over"
            )));
        }
    }
    exts.extend(url_extensions(by.urls())?);

    // tbsCertificate (RFC 5280 §4.1), assembled from raw pieces so that
    // subject and subjectPublicKeyInfo stay byte-identical.
    let sig_alg = signature_algorithm(by.key().algorithm())?;
    let mut t = Vec::new();
    t.extend_from_slice(&[0xa0, 0x03, 0x02, 0x01, 0x02]); // version v3
    t.extend(tlv(0x02, serial.as_bytes()));
    t.extend_from_slice(&sig_alg);
    t.extend_from_slice(by.subject_der());
    let mut validity = der_time(nb)?;
    validity.extend(der_time(na)?);
    t.extend(tlv(0x30, &validity));
    t.extend_from_slice(raw.subject);
    t.extend_from_slice(raw.spki);
    let mut ext_seq = Vec::new();
    for e in &exts {
        ext_seq.extend(e.to_der().map_err(enc)?);
    }
    t.extend(tlv(0xa3, &tlv(0x30, &ext_seq)));
    let tbs_der = tlv(0x30, &t);

    let sig = by.key().pair().sign(&tbs_der)?;
    let mut bits = Vec::with_capacity(sig.len() + 1);
    bits.push(0);
    bits.extend_from_slice(&sig);
    let mut c = tbs_der;
    c.extend_from_slice(&sig_alg);
    c.extend(tlv(0x03, &bits));
    let der = tlv(0x30, &c);

    // Self-checks.
    let sc = |m: &str| CaError::SelfCheck(m.to_string());
    let out = split_cert(&der)?;
    if out.subject != raw.subject || out.spki != raw.spki {
        return Err(sc("subject or subjectPublicKeyInfo not byte-identical"));
    }
    if crate::cert::cert_ski(&der)?.as_deref() != Some(ski.as_slice()) {
        return Err(sc("subjectKeyIdentifier differs"));
    }
    by.self_check(&der, raw.spki)?;
    verify_raw(&der, by.cert_der()).map_err(|e| sc(&format!("signature: {e}")))?;
    Ok(der)
}

/// AIA (caIssuers, OCSP; RFC 5280 §4.2.2.1) and CRL DP (§4.2.1.13) for a
/// certificate signed by a CA publishing `urls`.
fn url_extensions(urls: &IssuerUrls) -> Result<Vec<Extension>, CaError> {
    let uri = |u: &str| -> Result<GeneralName, CaError> {
        if u.is_empty() || u.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(CaError::InvalidIssuer(format!("bad URL {u:?}")));
        }
        Ok(GeneralName::UniformResourceIdentifier(
            Ia5String::new(u).map_err(|e| CaError::InvalidIssuer(e.to_string()))?,
        ))
    };
    let mut out = Vec::new();
    let mut descs = Vec::new();
    if let Some(o) = &urls.ocsp {
        descs.push(AccessDescription {
            access_method: OID_AD_OCSP,
            access_location: uri(o)?,
        });
    }
    if let Some(c) = &urls.ca_issuers {
        descs.push(AccessDescription {
            access_method: OID_AD_CA_ISSUERS,
            access_location: uri(c)?,
        });
    }
    if !descs.is_empty() {
        out.push(extension(
            OID_AIA,
            false,
            AuthorityInfoAccessSyntax(descs).to_der().map_err(enc)?,
        )?);
    }
    if let Some(crl) = &urls.crl {
        let dp = CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(crl)?])),
            reasons: None,
            crl_issuer: None,
        }]);
        out.push(extension(OID_CRL_DP, false, dp.to_der().map_err(enc)?)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// 4. Key rollover
// ---------------------------------------------------------------------------

/// The commonName with the next generation suffix: `X` → `X G2`,
/// `X G7` → `X G8`, shortened to stay within 64 characters
/// (ub-common-name, RFC 5280 Appendix A.1).
fn next_generation(cn: &str) -> String {
    let (base, gen) = match cn.rsplit_once(" G") {
        Some((b, n)) if !n.is_empty() && n.len() <= 9 && n.bytes().all(|c| c.is_ascii_digit()) => {
            (b, n.parse::<u64>().unwrap_or(1))
        }
        _ => (cn, 1),
    };
    let suffix = format!(" G{}", gen.saturating_add(1));
    let room = 64usize.saturating_sub(suffix.chars().count());
    let base: String = base.chars().take(room).collect();
    format!("{}{suffix}", base.trim_end())
}

/// Derives the profile of a successor for `current` (key rotation,
/// RFC 5280 §4.2.1.1/§4.2.1.2: the successor gets a new key and so a new
/// SKI): the same organization, key algorithm, pathLenConstraint, name
/// constraints (§4.2.1.10) and policies (§4.2.1.4), the commonName with the
/// next generation suffix (`… G2`, `… G3`, …), and a fresh validity of the
/// same length as the current certificate's starting at `now`.
///
/// The caller still clamps `not_after` to the parent's notAfter before
/// [`crate::hierarchy::create_intermediate`] (which refuses a validity
/// outside the parent's). Errors if the current subject has no
/// commonName, or if its name constraints use forms a profile cannot
/// express (directoryName, minimum/maximum).
pub fn rollover_profile(current: &Issuer, now: OffsetDateTime) -> Result<CaProfile, CaError> {
    let cert = parse(current.cert_der())?;
    let subject = cert.tbs_certificate().subject();
    let text = |oid: ObjectIdentifier| -> Option<String> {
        subject.iter().find(|a| a.oid == oid).and_then(|a| {
            matches!(
                a.value.tag(),
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String
            )
            .then(|| String::from_utf8(a.value.value().to_vec()).ok())
            .flatten()
        })
    };
    let cn = text(crate::der_util::OID_COMMON_NAME)
        .ok_or_else(|| CaError::InvalidIssuer("the CA subject has no commonName".into()))?;
    let org = text(OID_ORGANIZATION);
    let own = current
        .chain_policy()
        .cas()
        .first()
        .ok_or_else(|| CaError::InvalidIssuer("empty chain".into()))?;
    if let Some(u) = own.unsupported.first() {
        return Err(CaError::InvalidIssuer(format!(
            "the CA's nameConstraints contain {u}, which a profile cannot express"
        )));
    }
    let lifetime = (current.not_after() - current.not_before()).max(Duration::days(1));
    let not_before = truncate_secs(now);
    Ok(CaProfile {
        common_name: next_generation(&cn),
        organization: org,
        algorithm: current.key().algorithm(),
        not_before,
        not_after: not_before + lifetime,
        path_len: current.path_len(),
        name_constraints: own.name_constraints.clone(),
        policies: own.policies.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::{create_intermediate, create_root};

    fn now() -> OffsetDateTime {
        truncate_secs(OffsetDateTime::now_utc())
    }

    fn serial(n: u8) -> Serial {
        Serial::from_random([n; 16])
    }

    #[test]
    fn tlv_lengths() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &[0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn times() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("t");
        assert_eq!(der_time(t).expect("utc")[0], 0x17);
        let late = OffsetDateTime::from_unix_timestamp(2_600_000_000).expect("t");
        let g = der_time(late).expect("gen");
        assert_eq!(g[0], 0x18);
        assert_eq!(g.len(), 17);
    }

    #[test]
    fn generations() {
        assert_eq!(next_generation("Issuing CA"), "Issuing CA G2");
        assert_eq!(next_generation("Issuing CA G2"), "Issuing CA G3");
        assert_eq!(next_generation("Issuing CA G99"), "Issuing CA G100");
        assert_eq!(next_generation("CA Gx"), "CA Gx G2");
        let long = "x".repeat(64);
        let n = next_generation(&long);
        assert_eq!(n.chars().count(), 64);
        assert!(n.ends_with(" G2"));
    }

    #[test]
    fn csr_round_trip_and_key_check() {
        let t = now();
        let mut p = CaProfile::new(
            "csr test",
            KeyAlgorithm::EcdsaP256,
            t,
            t + Duration::days(9),
        );
        p.path_len = Some(0);
        p.policies = vec!["2.23.140.1.2.1".into()];
        let key = CaKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let der = intermediate_csr(&p, &key).expect("csr");
        let req = x509_cert::request::CertReq::from_der(&der).expect("parse");
        assert_eq!(req.info.attributes.len(), 1);
        let other = CaKey::generate(KeyAlgorithm::EcdsaP384).expect("key");
        assert!(matches!(
            intermediate_csr(&p, &other),
            Err(CaError::InvalidRequest(_))
        ));
    }

    #[test]
    fn cross_sign_and_rollover_in_process() {
        let t = now();
        let mk_root = |cn: &str, s: u8| {
            let (k, d) = create_root(
                &CaProfile::new(
                    cn,
                    KeyAlgorithm::EcdsaP256,
                    t - Duration::days(1),
                    t + Duration::days(3650),
                ),
                serial(s),
            )
            .expect("root");
            Issuer::new(cn.into(), d, k, IssuerUrls::default()).expect("issuer")
        };
        let a = mk_root("root A", 1);
        let b = mk_root("root B", 2);
        let mut ip = CaProfile::new("int X", KeyAlgorithm::EcdsaP256, t, t + Duration::days(365));
        ip.path_len = Some(0);
        let (xk, xd) = create_intermediate(&ip, serial(3), &a).expect("int");
        let x2 = cross_sign(&xd, &b, serial(4), t, t + Duration::days(300)).expect("cross");
        let r1 = split_cert(&xd).expect("x");
        let r2 = split_cert(&x2).expect("x'");
        assert_eq!(r1.subject, r2.subject);
        assert_eq!(r1.spki, r2.spki);
        assert_eq!(r2.issuer, b.subject_der());
        verify_cert_signature(&x2, b.cert_der()).expect("sig");
        // A cross-certificate outside B's validity is refused.
        assert!(matches!(
            cross_sign(&xd, &b, serial(5), t, t + Duration::days(4000)),
            Err(CaError::InvalidValidity(_))
        ));
        // X (pathLen 0) cannot cross-sign anything.
        let x = Issuer::new("x".into(), xd.clone(), xk, IssuerUrls::default()).expect("x");
        assert!(matches!(
            cross_sign(b.cert_der(), &x, serial(6), t, t + Duration::days(30)),
            Err(CaError::PathLenExceeded { .. })
        ));
        // Rollover.
        let p = rollover_profile(&x, t).expect("rollover");
        assert_eq!(p.common_name, "int X G2");
        assert_eq!(p.path_len, Some(0));
        assert_eq!(p.not_after - p.not_before, Duration::days(365));
        // import_ca round trip with the PKCS#8 key.
        let (k2, d2) = import_ca(&xd, x.key().pkcs8_der()).expect("import");
        assert_eq!(d2, xd);
        assert_eq!(k2.spki_der(), x.key().spki_der());
        assert!(matches!(
            import_ca(&xd, b.key().pkcs8_der()),
            Err(CaError::KeyMismatch)
        ));
    }
}
