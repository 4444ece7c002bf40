//! Subscriber (leaf) certificate issuance (RFC 5280 §4.1, §4.2).
//!
//! Profile: subject CN = first DNS identifier when it fits (≤ 64 octets,
//! ub-common-name), otherwise an empty subject with a critical
//! subjectAltName (§4.1.2.6, §4.2.1.6); SAN from the identifiers only;
//! keyUsage critical digitalSignature (+ keyEncipherment for RSA,
//! §4.2.1.3); extKeyUsage serverAuth + clientAuth by default, or the
//! purposes of [`LeafOptions`] (§4.2.1.12);
//! basicConstraints cA=FALSE critical (§4.2.1.9); AKI (§4.2.1.1);
//! SKI (§4.2.1.2); AIA caIssuers / OCSP (§4.2.2.1); CRL DP (§4.2.1.13).

use der::asn1::Ia5String;
use rcgen::{
    CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
    KeyUsagePurpose, PublicKeyData, SanType, SignatureAlgorithm,
};
use time::{Duration, OffsetDateTime};

use crate::csr::{CheckedCsr, LeafKey};
use crate::der_util::key_identifier;
use crate::error::CaError;
use crate::hierarchy::Issuer;
use crate::names::SubjectName;
use crate::serial::Serial;
use crate::subject::{DnAttribute, SubjectDn};

/// Validity policy for leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafProfile {
    /// notAfter − notBefore.
    pub lifetime: Duration,
    /// How far notBefore is set before "now" to tolerate clock skew.
    pub backdate: Duration,
}

impl LeafProfile {
    /// `(not_before, not_after)` for a certificate issued at `now`:
    /// `not_before = now − backdate`, `not_after = not_before + lifetime`.
    pub fn validity(&self, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
        let nb = now - self.backdate;
        (nb, nb + self.lifetime)
    }
}

/// A freshly signed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its serial number.
    pub serial: Serial,
    /// validity.notBefore as encoded (whole seconds).
    pub not_before: OffsetDateTime,
    /// validity.notAfter as encoded (whole seconds).
    pub not_after: OffsetDateTime,
}

/// The subscriber key as rcgen needs it: the SPKI algorithm comes from the
/// matching rcgen algorithm (only its SPKI OIDs are used), the key bits
/// are the CSR's.
struct LeafPublicKey<'a> {
    bits: &'a [u8],
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for LeafPublicKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.bits
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

fn truncate_secs(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Signs a leaf for `csr`'s key, naming exactly `identifiers`.
///
/// The caller must already have run `csr.require_names(identifiers)` and
/// the authorization checks. Sub-second parts are truncated (RFC 5280
/// §4.1.2.5 encodings carry whole seconds). A `not_before` earlier than the
/// issuer's notBefore (e.g. from backdating right after a CA was created)
/// is raised to it; the returned [`IssuedCert`] carries the encoded values.
/// `not_after` beyond the issuer's notAfter is an error
/// ([`CaError::InvalidValidity`]), not clamped: a leaf must not outlive its
/// issuer, and shortening it silently would surprise the subscriber.
///
/// Before signing, every identifier is checked against the name
/// constraints of the issuer's chain ([`Issuer::check_names`], RFC 5280
/// §4.2.1.10): a name outside a permitted subtree of any CA, or inside an
/// excluded one, gives [`CaError::NameConstraintViolation`] and nothing is
/// signed.
///
/// After signing, the certificate is re-parsed and checked: issuer name
/// byte-identical to the CA subject, AKI = CA SKI, SPKI = CSR SPKI.
pub fn issue_leaf(
    issuer: &Issuer,
    csr: &CheckedCsr,
    identifiers: &[SubjectName],
    serial: Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<IssuedCert, CaError> {
    issue_leaf_with_options(
        issuer,
        csr,
        identifiers,
        serial,
        not_before,
        not_after,
        None,
        &LeafOptions::default(),
    )
}

/// An extendedKeyUsage purpose a leaf may carry (RFC 5280 §4.2.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eku {
    /// id-kp-serverAuth.
    ServerAuth,
    /// id-kp-clientAuth.
    ClientAuth,
}

impl Eku {
    fn to_rcgen(self) -> ExtendedKeyUsagePurpose {
        match self {
            Eku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            Eku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
        }
    }
}

/// Per-issuance choices beyond names, key and validity. The default is the
/// historical profile: serverAuth + clientAuth.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeafOptions {
    /// extKeyUsage purposes, in order; must not be empty. keyUsage stays
    /// determined by the key type.
    pub ekus: Vec<Eku>,
}

impl Default for LeafOptions {
    fn default() -> Self {
        LeafOptions {
            ekus: vec![Eku::ServerAuth, Eku::ClientAuth],
        }
    }
}

impl LeafOptions {
    /// Options with the given extKeyUsage purposes.
    pub fn with_ekus(ekus: Vec<Eku>) -> Self {
        LeafOptions { ekus }
    }
}

/// [`issue_leaf`] with the CRL distribution point set to `crl_url` instead
/// of the issuer's full-CRL URL (for partitioned CRLs each certificate names
/// the shard that will list it, RFC 5280 §4.2.1.13, §5.2.5) and explicit
/// [`LeafOptions`] (e.g. the extKeyUsage of an issuance profile). An empty
/// EKU list is refused ([`CaError::InvalidRequest`]).
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors issue_leaf's explicit parameters; a builder would hide which ones are set"
)]
pub fn issue_leaf_with_options(
    issuer: &Issuer,
    csr: &CheckedCsr,
    identifiers: &[SubjectName],
    serial: Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    crl_url: Option<&str>,
    options: &LeafOptions,
) -> Result<IssuedCert, CaError> {
    issuer.check_names(identifiers)?;
    sign_leaf_with_options(
        issuer,
        csr,
        identifiers,
        serial,
        not_before,
        not_after,
        crl_url,
        options,
    )
}

#[allow(
    clippy::too_many_arguments,
    reason = "mirrors issue_leaf's explicit parameters; a builder would hide which ones are set"
)]
/// Signs a leaf without the name-constraint check. Only
/// [`crate::danger::issue_leaf_unchecked`] calls it directly.
pub(crate) fn sign_leaf_with_options(
    issuer: &Issuer,
    csr: &CheckedCsr,
    identifiers: &[SubjectName],
    serial: Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    crl_url: Option<&str>,
    options: &LeafOptions,
) -> Result<IssuedCert, CaError> {
    let template = LeafTemplate::tls(csr, identifiers, &options.ekus)?;
    sign_template(issuer, &template, serial, not_before, not_after, crl_url)
}

/// Everything a leaf carries besides validity, serial and the issuer's
/// URLs: built and checked by a profile
/// ([`crate::profile::CertProfile::template`]) and signed by
/// [`issue_template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafTemplate {
    pub(crate) subject: SubjectDn,
    pub(crate) sans: Vec<SubjectName>,
    pub(crate) ekus: Vec<Eku>,
    pub(crate) key: LeafKey,
    pub(crate) public_key_bits: Vec<u8>,
    pub(crate) spki_der: Vec<u8>,
}

impl LeafTemplate {
    /// The historical TLS shape: SANs = `identifiers` (normalized,
    /// duplicates removed), CN = the first DNS name when ≤ 64 octets.
    pub(crate) fn tls(
        csr: &CheckedCsr,
        identifiers: &[SubjectName],
        ekus: &[Eku],
    ) -> Result<LeafTemplate, CaError> {
        if identifiers.is_empty() {
            return Err(CaError::InvalidRequest("no identifiers".into()));
        }
        let mut sans: Vec<SubjectName> = Vec::new();
        for id in identifiers {
            let n = id.normalized();
            if !sans.contains(&n) {
                sans.push(n);
            }
        }
        let first_dns = sans.iter().find_map(|n| match n {
            SubjectName::Dns(d) => Some(d.clone()),
            _ => None,
        });
        let subject = match first_dns.filter(|d| d.len() <= 64) {
            Some(cn) => SubjectDn::common_name_only(&cn),
            None => SubjectDn::default(),
        };
        Ok(LeafTemplate::new(csr, subject, sans, ekus.to_vec()))
    }

    pub(crate) fn new(
        csr: &CheckedCsr,
        subject: SubjectDn,
        sans: Vec<SubjectName>,
        ekus: Vec<Eku>,
    ) -> LeafTemplate {
        let mut uniq: Vec<Eku> = Vec::new();
        for e in ekus {
            if !uniq.contains(&e) {
                uniq.push(e);
            }
        }
        LeafTemplate {
            subject,
            sans,
            ekus: uniq,
            key: csr.key,
            public_key_bits: csr.public_key_bits.clone(),
            spki_der: csr.spki_der.clone(),
        }
    }

    /// The subject DN (empty: the subjectAltName is marked critical,
    /// RFC 5280 §4.2.1.6).
    pub fn subject(&self) -> &SubjectDn {
        &self.subject
    }

    /// The subjectAltName entries, in order.
    pub fn sans(&self) -> &[SubjectName] {
        &self.sans
    }

    /// The extKeyUsage purposes, in order.
    pub fn ekus(&self) -> &[Eku] {
        &self.ekus
    }

    /// The subscriber key type.
    pub fn key(&self) -> LeafKey {
        self.key
    }

    /// Every name the issuer's name constraints apply to (RFC 5280
    /// §4.2.1.10): the SANs, plus each emailAddress attribute of the
    /// subject as an rfc822Name (checked whether or not the certificate has
    /// SANs, which is stricter than §4.2.1.10 asks and never weaker).
    pub fn constrained_names(&self) -> Vec<SubjectName> {
        let mut out = self.sans.clone();
        out.extend(
            self.subject
                .attributes
                .iter()
                .filter(|(a, _)| *a == DnAttribute::EmailAddress)
                .map(|(_, v)| SubjectName::Email(v.clone())),
        );
        out
    }
}

/// Signs `template` with `issuer`: every name of
/// [`LeafTemplate::constrained_names`] is first checked against the name
/// constraints of the issuer's chain ([`Issuer::check_names`], RFC 5280
/// §4.2.1.10, giving [`CaError::NameConstraintViolation`]); then validity
/// is handled as in [`issue_leaf`] (whole seconds, notBefore raised to the
/// issuer's, notAfter beyond the issuer's refused) and the signed
/// certificate is re-parsed and checked. `crl_url` overrides the issuer's
/// CRL distribution point as in [`issue_leaf_with_options`].
pub fn issue_template(
    issuer: &Issuer,
    template: &LeafTemplate,
    serial: Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    crl_url: Option<&str>,
) -> Result<IssuedCert, CaError> {
    issuer.check_names(&template.constrained_names())?;
    sign_template(issuer, template, serial, not_before, not_after, crl_url)
}

fn ia5<T: TryFrom<String, Error = rcgen::Error>>(s: &str, what: &str) -> Result<T, CaError> {
    if s.is_empty() || Ia5String::new(s).is_err() {
        return Err(CaError::InvalidRequest(format!("bad {what} {s:?}")));
    }
    s.to_string()
        .try_into()
        .map_err(|e: rcgen::Error| CaError::InvalidRequest(e.to_string()))
}

fn sign_template(
    issuer: &Issuer,
    template: &LeafTemplate,
    serial: Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    crl_url: Option<&str>,
) -> Result<IssuedCert, CaError> {
    if template.ekus.is_empty() {
        return Err(CaError::InvalidRequest(
            "a leaf needs at least one extKeyUsage purpose".into(),
        ));
    }
    // A backdated notBefore earlier than the issuer's is raised to the
    // issuer's notBefore (reported in IssuedCert); notAfter is never moved.
    let not_before = truncate_secs(not_before).max(issuer.not_before());
    let not_after = truncate_secs(not_after);
    if not_before >= not_after {
        return Err(CaError::InvalidValidity(
            "notBefore must precede notAfter".into(),
        ));
    }
    if not_after > issuer.not_after() {
        return Err(CaError::InvalidValidity(
            "leaf notAfter must not exceed the issuer's notAfter".into(),
        ));
    }
    if template.sans.is_empty() && template.subject.is_empty() {
        return Err(CaError::InvalidRequest(
            "a leaf needs a subject or at least one subjectAltName".into(),
        ));
    }

    let mut sans: Vec<SanType> = Vec::new();
    for n in &template.sans {
        sans.push(match n {
            SubjectName::Dns(d) => SanType::DnsName(ia5(d, "DNS name")?),
            SubjectName::Ip(ip) => SanType::IpAddress(*ip),
            SubjectName::Uri(u) => SanType::URI(ia5(u, "URI")?),
            SubjectName::Email(m) => SanType::Rfc822Name(ia5(m, "email address")?),
        });
    }
    let dn: DistinguishedName = template
        .subject
        .to_rcgen()
        .map_err(CaError::InvalidRequest)?;

    let alg: &'static SignatureAlgorithm = match template.key {
        LeafKey::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        LeafKey::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        LeafKey::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        LeafKey::Ed25519 => &rcgen::PKCS_ED25519,
    };
    let public_key = LeafPublicKey {
        bits: &template.public_key_bits,
        alg,
    };

    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.serial_number = Some(serial.to_rcgen());
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = if template.key.is_rsa() {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    params.extended_key_usages = template.ekus.iter().map(|e| e.to_rcgen()).collect();
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method =
        KeyIdMethod::PreSpecified(key_identifier(&template.public_key_bits));
    let mut urls = issuer.urls().clone();
    if let Some(u) = crl_url {
        urls.crl = Some(u.to_string());
    }
    urls.apply(&mut params)?;

    let cert = params.signed_by(&public_key, &issuer.rcgen_issuer())?;
    let der = cert.der().to_vec();
    issuer.self_check(&der, &template.spki_der)?;
    Ok(IssuedCert {
        der,
        serial,
        not_before,
        not_after,
    })
}
