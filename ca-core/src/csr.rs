//! PKCS#10 certification requests (RFC 2986) and the key and name policy
//! applied to them before issuance.
//!
//! The self-signature is verified over the *original*
//! CertificationRequestInfo bytes (RFC 2986 §4.2), never a re-encoding.
//! Every error maps to the ACME `badCSR` problem (RFC 8555 §7.4).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode, Header, Reader, SliceReader};
use thiserror::Error;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::request::{CertReq, ExtensionReq};
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::der_util::{
    rsa_key_params, OID_COMMON_NAME, OID_ECDSA_SHA256, OID_ECDSA_SHA384, OID_EC_PUBLIC_KEY,
    OID_ED25519, OID_EXTENSION_REQUEST, OID_RSA_ENCRYPTION, OID_SECP256R1, OID_SECP384R1,
    OID_SHA256_WITH_RSA, OID_SHA384_WITH_RSA, OID_SHA512_WITH_RSA, OID_SUBJECT_ALT_NAME,
};
use crate::names::SubjectName;
use crate::subject::{directory_string, SubjectDn};

/// PKCS#9 challengePassword (RFC 2985 §5.4.1).
const OID_CHALLENGE_PASSWORD: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");
/// pkcs-9-ub-challengePassword (RFC 2985 Appendix A).
const MAX_CHALLENGE_PASSWORD: usize = 255;

/// Largest CSR we parse, in bytes.
pub const MAX_CSR_LEN: usize = 64 * 1024;

/// Key policy for subscriber keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrPolicy {
    /// Smallest RSA modulus accepted, in bits (default 2048; never below 2048).
    pub min_rsa_bits: usize,
    /// Largest RSA modulus accepted, in bits (default 8192; never above 8192).
    pub max_rsa_bits: usize,
    /// Whether Ed25519 (RFC 8410) subscriber keys are accepted (default true).
    pub allow_ed25519: bool,
}

impl Default for CsrPolicy {
    fn default() -> Self {
        CsrPolicy {
            min_rsa_bits: 2048,
            max_rsa_bits: 8192,
            allow_ed25519: true,
        }
    }
}

/// The subscriber key type found in a CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKey {
    /// ECDSA on P-256 (RFC 5480).
    EcdsaP256,
    /// ECDSA on P-384 (RFC 5480).
    EcdsaP384,
    /// RSA with a modulus of `bits` bits (RFC 8017).
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl LeafKey {
    /// Whether this is an RSA key (keyEncipherment is then allowed, RFC 5280 §4.2.1.3).
    pub fn is_rsa(self) -> bool {
        matches!(self, LeafKey::Rsa { .. })
    }
}

/// Why a CSR was refused. All map to ACME `badCSR`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CsrError {
    /// Not a DER CertificationRequest, trailing bytes, bad attributes or
    /// unsupported subjectAltName types.
    #[error("malformed CSR: {0}")]
    Malformed(String),
    /// The self-signature does not verify.
    #[error("CSR signature does not verify")]
    BadSignature,
    /// Key or signature algorithm not supported.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// Key of a supported type but too weak (size, exponent).
    #[error("weak key: {0}")]
    WeakKey(String),
    /// The names in the CSR are not exactly those expected.
    #[error("CSR names mismatch: missing {missing:?}, unexpected {unexpected:?}")]
    NamesMismatch {
        /// Expected names the CSR lacks.
        missing: Vec<String>,
        /// Names in the CSR that were not expected.
        unexpected: Vec<String>,
    },
    /// The CSR key is the ACME account key (RFC 8555 §11.1).
    #[error("CSR public key equals the account key")]
    KeyIsAccountKey,
}

/// A CSR whose signature and key passed the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCsr {
    /// subjectPublicKey BIT STRING contents.
    pub public_key_bits: Vec<u8>,
    /// DER SubjectPublicKeyInfo exactly as in the CSR.
    pub spki_der: Vec<u8>,
    /// Key type.
    pub key: LeafKey,
    /// Names from the subject CN and the subjectAltName extension request,
    /// DNS names lowercased, duplicates removed, SAN order first. A CN
    /// that is not ASCII is not a name and is left out here, but
    /// [`CheckedCsr::require_names`] still refuses it.
    pub names: Vec<SubjectName>,
    /// The requested subjectAltName entries only, in order, duplicates
    /// removed: dNSName (lowercased), iPAddress, uniformResourceIdentifier
    /// and rfc822Name (RFC 5280 §4.2.1.6).
    pub san_names: Vec<SubjectName>,
    /// The subject Name exactly as encoded in the CSR (DER).
    pub subject_der: Vec<u8>,
    /// The subject as typed attributes; attributes ironseal does not type
    /// are listed by OID in [`SubjectDn::unknown`] (not refused here: the
    /// TLS profile ignores the subject, the device profile refuses them).
    pub subject: SubjectDn,
    /// The PKCS#9 challengePassword attribute (RFC 2985 §5.4.1), used by
    /// SCEP (RFC 8894 §3.3.1) and EST (RFC 7030 §3.5). Any DirectoryString
    /// choice is accepted (see [`directory_string`]); at most one attribute
    /// with exactly one value, at most 255 characters.
    pub challenge_password: Option<String>,
}

fn malformed(e: impl std::fmt::Display) -> CsrError {
    CsrError::Malformed(e.to_string())
}

/// Parameters must be absent.
fn params_absent(alg: &AlgorithmIdentifierOwned) -> bool {
    alg.parameters.is_none()
}

/// Parameters must be NULL (RFC 4055 §1.2 / RFC 8017 §A.1).
fn params_null(alg: &AlgorithmIdentifierOwned) -> bool {
    alg.parameters.as_ref().is_some_and(|p| p.is_null())
}

fn params_null_or_absent(alg: &AlgorithmIdentifierOwned) -> bool {
    params_absent(alg) || params_null(alg)
}

/// Returns the key type after checking the SubjectPublicKeyInfo against
/// the policy (RFC 5280 §4.1.2.7, RFC 3279 / 5480 / 8410 encodings).
fn check_key(
    alg: &AlgorithmIdentifierOwned,
    bits: &[u8],
    policy: &CsrPolicy,
) -> Result<LeafKey, CsrError> {
    if alg.oid == OID_RSA_ENCRYPTION {
        if !params_null(alg) {
            return Err(CsrError::UnsupportedKey(
                "rsaEncryption parameters must be NULL".into(),
            ));
        }
        let (n_bits, e) = rsa_key_params(bits)
            .ok_or_else(|| CsrError::UnsupportedKey("unparsable RSA public key".into()))?;
        let min = policy.min_rsa_bits.max(2048);
        let max = policy.max_rsa_bits.min(8192);
        if n_bits < min {
            return Err(CsrError::WeakKey(format!(
                "RSA modulus of {n_bits} bits is below {min}"
            )));
        }
        if n_bits > max {
            return Err(CsrError::UnsupportedKey(format!(
                "RSA modulus of {n_bits} bits is above {max}"
            )));
        }
        match e {
            Some(e) if e >= 3 && e % 2 == 1 => {}
            _ => {
                return Err(CsrError::WeakKey(
                    "RSA public exponent must be odd and at least 3".into(),
                ))
            }
        }
        Ok(LeafKey::Rsa { bits: n_bits })
    } else if alg.oid == OID_EC_PUBLIC_KEY {
        let curve = alg
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or_else(|| CsrError::UnsupportedKey("EC key without a named curve".into()))?;
        let (key, len) = if curve == OID_SECP256R1 {
            (LeafKey::EcdsaP256, 65)
        } else if curve == OID_SECP384R1 {
            (LeafKey::EcdsaP384, 97)
        } else {
            return Err(CsrError::UnsupportedKey(format!("EC curve {curve}")));
        };
        if bits.len() != len || bits.first() != Some(&0x04) {
            return Err(CsrError::UnsupportedKey(
                "EC point must be uncompressed".into(),
            ));
        }
        Ok(key)
    } else if alg.oid == OID_ED25519 {
        if !params_absent(alg) || bits.len() != 32 {
            return Err(CsrError::UnsupportedKey("malformed Ed25519 key".into()));
        }
        if !policy.allow_ed25519 {
            return Err(CsrError::UnsupportedKey(
                "Ed25519 keys are not accepted".into(),
            ));
        }
        Ok(LeafKey::Ed25519)
    } else {
        Err(CsrError::UnsupportedKey(format!(
            "key algorithm {}",
            alg.oid
        )))
    }
}

/// Picks the aws-lc-rs verifier for (key, signatureAlgorithm).
fn verifier(
    key: LeafKey,
    sig_alg: &AlgorithmIdentifierOwned,
) -> Result<&'static dyn VerificationAlgorithm, CsrError> {
    let o = sig_alg.oid;
    let unsupported = || CsrError::UnsupportedKey(format!("signature algorithm {o} for {key:?}"));
    let alg: &'static dyn VerificationAlgorithm = match key {
        LeafKey::Rsa { .. } => {
            if !params_null_or_absent(sig_alg) {
                return Err(unsupported());
            }
            if o == OID_SHA256_WITH_RSA {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else if o == OID_SHA384_WITH_RSA {
                &signature::RSA_PKCS1_2048_8192_SHA384
            } else if o == OID_SHA512_WITH_RSA {
                &signature::RSA_PKCS1_2048_8192_SHA512
            } else {
                return Err(unsupported());
            }
        }
        LeafKey::EcdsaP256 | LeafKey::EcdsaP384 => {
            if !params_absent(sig_alg) {
                return Err(unsupported());
            }
            let p256 = key == LeafKey::EcdsaP256;
            match (p256, o == OID_ECDSA_SHA256, o == OID_ECDSA_SHA384) {
                (true, true, _) => &signature::ECDSA_P256_SHA256_ASN1,
                (true, _, true) => &signature::ECDSA_P256_SHA384_ASN1,
                (false, true, _) => &signature::ECDSA_P384_SHA256_ASN1,
                (false, _, true) => &signature::ECDSA_P384_SHA384_ASN1,
                _ => return Err(unsupported()),
            }
        }
        LeafKey::Ed25519 => {
            if o != OID_ED25519 || !params_absent(sig_alg) {
                return Err(unsupported());
            }
            &signature::ED25519
        }
    };
    Ok(alg)
}

/// The raw CertificationRequestInfo TLV inside a CertificationRequest.
fn raw_info(der: &[u8]) -> Result<&[u8], der::Error> {
    let mut r = SliceReader::new(der)?;
    let _outer = Header::decode(&mut r)?;
    r.tlv_bytes()
}

/// The challengePassword attribute (RFC 2985 §5.4.1): at most one, with
/// exactly one DirectoryString value.
fn challenge_password(req: &CertReq) -> Result<Option<String>, CsrError> {
    let mut attrs = req
        .info
        .attributes
        .iter()
        .filter(|a| a.oid == OID_CHALLENGE_PASSWORD);
    let Some(attr) = attrs.next() else {
        return Ok(None);
    };
    if attrs.next().is_some() {
        return Err(malformed("more than one challengePassword attribute"));
    }
    let mut values = attr.values.iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(malformed("challengePassword must have exactly one value"));
    };
    let pw = directory_string(value.to_ref())
        .map_err(|e| malformed(format!("challengePassword: {e}")))?;
    if pw.chars().count() > MAX_CHALLENGE_PASSWORD {
        return Err(malformed("challengePassword longer than 255 characters"));
    }
    Ok(Some(pw))
}

fn name_from_text(s: &str) -> Result<SubjectName, CsrError> {
    if s.chars().any(char::is_control) {
        return Err(malformed("control character in name"));
    }
    if s.is_empty() {
        return Err(malformed("empty name"));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SubjectName::Ip(ip));
    }
    if !s.is_ascii() {
        return Err(malformed("non-ASCII DNS name"));
    }
    Ok(SubjectName::Dns(s.to_ascii_lowercase()))
}

/// Names from the subjectAltName in the extensionRequest attribute
/// (RFC 2985 §5.4.2, RFC 5280 §4.2.1.6).
fn san_names(req: &CertReq) -> Result<Vec<SubjectName>, CsrError> {
    let mut ext_attrs = req
        .info
        .attributes
        .iter()
        .filter(|a| a.oid == OID_EXTENSION_REQUEST);
    let Some(attr) = ext_attrs.next() else {
        return Ok(Vec::new());
    };
    if ext_attrs.next().is_some() {
        return Err(malformed("more than one extensionRequest attribute"));
    }
    let mut values = attr.values.iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(malformed("extensionRequest must have exactly one value"));
    };
    let ext_req = ExtensionReq::from_der(&value.to_der().map_err(malformed)?).map_err(malformed)?;
    let mut sans = ext_req
        .0
        .iter()
        .filter(|e| e.extn_id == OID_SUBJECT_ALT_NAME);
    let Some(san) = sans.next() else {
        return Ok(Vec::new());
    };
    if sans.next().is_some() {
        return Err(malformed("more than one subjectAltName"));
    }
    let san = SubjectAltName::from_der(san.extn_value.as_bytes()).map_err(malformed)?;
    let mut out = Vec::new();
    for gn in san.0 {
        let n = match gn {
            GeneralName::DnsName(d) => {
                let s = d.as_str();
                if s.is_empty() || s.parse::<IpAddr>().is_ok() {
                    return Err(malformed("invalid dNSName"));
                }
                SubjectName::Dns(s.to_ascii_lowercase())
            }
            GeneralName::IpAddress(o) => match o.as_bytes().len() {
                4 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(o.as_bytes());
                    SubjectName::Ip(IpAddr::V4(Ipv4Addr::from(a)))
                }
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(o.as_bytes());
                    SubjectName::Ip(IpAddr::V6(Ipv6Addr::from(a)))
                }
                _ => return Err(malformed("iPAddress must be 4 or 16 octets")),
            },
            GeneralName::Rfc822Name(m) => {
                let m = m.as_str();
                match m.split_once('@') {
                    Some((local, domain))
                        if !local.is_empty()
                            && !domain.is_empty()
                            && !domain.contains('@')
                            && !m.chars().any(|c| c.is_ascii_whitespace() || c.is_control()) =>
                    {
                        SubjectName::Email(m.to_string())
                    }
                    _ => return Err(malformed("invalid rfc822Name")),
                }
            }
            GeneralName::UniformResourceIdentifier(u) => {
                let u = u.as_str();
                let scheme_ok = u.split_once(':').is_some_and(|(scheme, _)| {
                    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                });
                if !scheme_ok || u.chars().any(|c| c.is_ascii_whitespace() || c.is_control()) {
                    return Err(malformed("invalid uniformResourceIdentifier"));
                }
                SubjectName::Uri(u.to_string())
            }
            _ => return Err(malformed("unsupported subjectAltName type")),
        };
        out.push(n);
    }
    Ok(out)
}

/// Parses and checks a DER PKCS#10 CertificationRequest (RFC 2986 §4):
/// strict DER without trailing bytes, version v1, the self-signature
/// verified over the original CertificationRequestInfo bytes (§4.2), key
/// type and size within `policy`, and names collected from the subject CN
/// and the requested subjectAltName (dNSName, iPAddress,
/// uniformResourceIdentifier, rfc822Name; any other form is refused), the
/// subject DN ([`CheckedCsr::subject`]) and the challengePassword.
///
/// Never panics, whatever the input.
pub fn check_csr(der: &[u8], policy: &CsrPolicy) -> Result<CheckedCsr, CsrError> {
    if der.len() > MAX_CSR_LEN {
        return Err(malformed("CSR too large"));
    }
    let req = CertReq::from_der(der).map_err(malformed)?;
    let info_raw = raw_info(der).map_err(malformed)?;

    let spki = &req.info.public_key;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| malformed("subjectPublicKey has unused bits"))?;
    let key = check_key(&spki.algorithm, bits, policy)?;
    let alg = verifier(key, &req.algorithm)?;
    let sig = req.signature.as_bytes().ok_or(CsrError::BadSignature)?;
    UnparsedPublicKey::new(alg, bits)
        .verify(info_raw, sig)
        .map_err(|_| CsrError::BadSignature)?;

    let mut sans: Vec<SubjectName> = Vec::new();
    for n in san_names(&req)? {
        if !sans.contains(&n) {
            sans.push(n);
        }
    }
    let subject = SubjectDn::from_name(&req.info.subject).map_err(malformed)?;
    let mut names = sans.clone();
    for atv in req.info.subject.iter() {
        if atv.oid == OID_COMMON_NAME {
            let cn = directory_string(atv.value.to_ref()).map_err(malformed)?;
            // A non-ASCII CN (a person's name on a device CSR) is no DNS or
            // IP name; require_names refuses it separately.
            if !cn.is_ascii() {
                continue;
            }
            let n = name_from_text(&cn)?;
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }

    Ok(CheckedCsr {
        public_key_bits: bits.to_vec(),
        spki_der: spki.to_der().map_err(malformed)?,
        key,
        names,
        san_names: sans,
        subject_der: req.info.subject.to_der().map_err(malformed)?,
        subject,
        challenge_password: challenge_password(&req)?,
    })
}

impl CheckedCsr {
    /// Requires the CSR's names to be exactly `expected` as a set; DNS
    /// names compare case-insensitively (RFC 8555 §7.4: the CSR MUST
    /// indicate the exact same set of identifiers as the order).
    pub fn require_names(&self, expected: &[SubjectName]) -> Result<(), CsrError> {
        let have: BTreeSet<SubjectName> = self.names.iter().map(SubjectName::normalized).collect();
        let want: BTreeSet<SubjectName> = expected.iter().map(SubjectName::normalized).collect();
        let stray_cns: Vec<String> = self
            .subject
            .attributes
            .iter()
            .filter(|(a, v)| *a == crate::subject::DnAttribute::CommonName && !v.is_ascii())
            .map(|(_, v)| format!("cn:{v}"))
            .collect();
        if have == want && stray_cns.is_empty() {
            return Ok(());
        }
        let mut unexpected: Vec<String> = have.difference(&want).map(ToString::to_string).collect();
        unexpected.extend(stray_cns);
        Err(CsrError::NamesMismatch {
            missing: want.difference(&have).map(ToString::to_string).collect(),
            unexpected,
        })
    }

    /// Refuses a CSR whose key is the ACME account key (RFC 8555 §11.1).
    /// `account_key_bits` are the subjectPublicKey bytes of the account key.
    pub fn require_key_differs(&self, account_key_bits: &[u8]) -> Result<(), CsrError> {
        if self.public_key_bits == account_key_bits {
            Err(CsrError::KeyIsAccountKey)
        } else {
            Ok(())
        }
    }
}
