//! CA hierarchy: self-signed roots, intermediates, and the [`Issuer`] that
//! signs certificates and CRLs.
//!
//! Profile (RFC 5280 §4.2.1): basicConstraints cA=TRUE (critical, with an
//! optional pathLenConstraint, §4.2.1.9), keyUsage keyCertSign + cRLSign
//! (critical, §4.2.1.3), subjectKeyIdentifier (§4.2.1.2, RFC 7093 method 1)
//! and, below the root, authorityKeyIdentifier equal to the parent's SKI
//! (§4.2.1.1). Subject names are UTF8String `O` (optional) then `CN`.
//! Optionally nameConstraints (critical, §4.2.1.10) and
//! certificatePolicies (non-critical, §4.2.1.4).
//!
//! Every CA creation and leaf issuance is checked against the constraints of
//! the signing CA's chain ([`ChainPolicy`]) before anything is signed.

use std::fmt;

use der::asn1::Ia5String;
use der::{Decode, Encode, Tag, Tagged};
use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, DnValue, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, BasicConstraints as X509BasicConstraints,
    KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;

use crate::cert::{parse, time_to_offset};
use crate::constraints::{
    encode_policies, ChainPolicy, NameConstraints, OID_CERTIFICATE_POLICIES_ARCS,
    OID_NAME_CONSTRAINTS_ARCS,
};
use crate::der_util::{key_identifier, OID_AD_CA_ISSUERS, OID_AD_OCSP, OID_AIA_ARCS};
use crate::error::CaError;
use crate::keys::{CaKey, KeyAlgorithm};
use crate::names::SubjectName;
use crate::serial::Serial;

/// What a new CA certificate should look like.
///
/// `CaProfile { common_name, algorithm, not_before, not_after, path_len,
/// ..Default::default() }` leaves the name constraints and policies empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaProfile {
    /// Subject commonName (required, 1..=64 characters, RFC 5280 ub-common-name).
    pub common_name: String,
    /// Subject organizationName (optional, ≤ 64 characters).
    pub organization: Option<String>,
    /// Key algorithm of the new CA key.
    pub algorithm: KeyAlgorithm,
    /// validity.notBefore (RFC 5280 §4.1.2.5).
    pub not_before: OffsetDateTime,
    /// validity.notAfter (RFC 5280 §4.1.2.5).
    pub not_after: OffsetDateTime,
    /// basicConstraints pathLenConstraint (RFC 5280 §4.2.1.9); `None` = unlimited.
    pub path_len: Option<u8>,
    /// nameConstraints (RFC 5280 §4.2.1.10), emitted critical when not
    /// empty. They bind everything issued below this CA.
    pub name_constraints: NameConstraints,
    /// certificatePolicies OIDs in dotted form (RFC 5280 §4.2.1.4),
    /// emitted non-critical when not empty; `2.5.29.32.0` is anyPolicy.
    pub policies: Vec<String>,
}

impl Default for CaProfile {
    /// Placeholders only: the empty commonName and the 1970 validity are
    /// refused by [`create_root`] / [`create_intermediate`], so a profile
    /// built from defaults must set them.
    fn default() -> Self {
        CaProfile {
            common_name: String::new(),
            organization: None,
            algorithm: KeyAlgorithm::EcdsaP256,
            not_before: OffsetDateTime::UNIX_EPOCH,
            not_after: OffsetDateTime::UNIX_EPOCH,
            path_len: None,
            name_constraints: NameConstraints::default(),
            policies: Vec::new(),
        }
    }
}

impl CaProfile {
    /// A profile with no organization, no pathLenConstraint, no name
    /// constraints and no policies.
    pub fn new(
        common_name: impl Into<String>,
        algorithm: KeyAlgorithm,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> CaProfile {
        CaProfile {
            common_name: common_name.into(),
            algorithm,
            not_before,
            not_after,
            ..CaProfile::default()
        }
    }
}

/// URLs a CA publishes, placed in the certificates it signs: the
/// authorityInfoAccess caIssuers and OCSP locations (RFC 5280 §4.2.2.1)
/// and the cRLDistributionPoints (RFC 5280 §4.2.1.13).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerUrls {
    /// Where this CA's certificate can be downloaded (id-ad-caIssuers).
    pub ca_issuers: Option<String>,
    /// This CA's OCSP responder (id-ad-ocsp).
    pub ocsp: Option<String>,
    /// Where this CA's CRL can be downloaded.
    pub crl: Option<String>,
}

impl IssuerUrls {
    /// Adds the AIA and CRL DP extensions these URLs call for to `params`.
    pub(crate) fn apply(&self, params: &mut CertificateParams) -> Result<(), CaError> {
        let mut descs = Vec::new();
        if let Some(ocsp) = &self.ocsp {
            descs.push(access(OID_AD_OCSP, ocsp)?);
        }
        if let Some(ca) = &self.ca_issuers {
            descs.push(access(OID_AD_CA_ISSUERS, ca)?);
        }
        if !descs.is_empty() {
            let der = AuthorityInfoAccessSyntax(descs)
                .to_der()
                .map_err(|e| CaError::Encoding(e.to_string()))?;
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(OID_AIA_ARCS, der));
        }
        if let Some(crl) = &self.crl {
            check_url(crl)?;
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![crl.clone()],
            }];
        }
        Ok(())
    }
}

fn check_url(url: &str) -> Result<(), CaError> {
    if url.is_empty() || !url.is_ascii() || url.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(CaError::InvalidIssuer(format!("bad URL {url:?}")));
    }
    Ok(())
}

fn access(method: der::asn1::ObjectIdentifier, url: &str) -> Result<AccessDescription, CaError> {
    check_url(url)?;
    let uri = Ia5String::new(url).map_err(|e| CaError::InvalidIssuer(e.to_string()))?;
    Ok(AccessDescription {
        access_method: method,
        access_location: GeneralName::UniformResourceIdentifier(uri),
    })
}

fn ca_params(
    profile: &CaProfile,
    serial: &Serial,
    key: &CaKey,
) -> Result<CertificateParams, CaError> {
    if profile.not_before >= profile.not_after {
        return Err(CaError::InvalidValidity(
            "notBefore must precede notAfter".into(),
        ));
    }
    let mut params = ca_subject_params(profile)?;
    params.serial_number = Some(serial.to_rcgen());
    params.not_before = profile.not_before;
    params.not_after = profile.not_after;
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key.public_key_bits()));
    Ok(params)
}

/// What a CA certificate and a CA certificate request share: the checked
/// subject (RFC 5280 §4.1.2.6), basicConstraints CA:true with the profile's
/// pathLen (§4.2.1.9), keyUsage keyCertSign + cRLSign (§4.2.1.3), critical
/// nameConstraints (§4.2.1.10) and certificatePolicies (§4.2.1.4).
pub(crate) fn ca_subject_params(profile: &CaProfile) -> Result<CertificateParams, CaError> {
    let cn_len = profile.common_name.chars().count();
    if cn_len == 0 || cn_len > 64 {
        return Err(CaError::InvalidRequest(
            "commonName must be 1..=64 characters".into(),
        ));
    }
    if profile
        .organization
        .as_ref()
        .is_some_and(|o| o.is_empty() || o.chars().count() > 64)
    {
        return Err(CaError::InvalidRequest(
            "organization must be 1..=64 characters".into(),
        ));
    }
    profile.name_constraints.validate()?;
    let mut dn = DistinguishedName::new();
    if let Some(o) = &profile.organization {
        dn.push(DnType::OrganizationName, DnValue::Utf8String(o.clone()));
    }
    dn.push(
        DnType::CommonName,
        DnValue::Utf8String(profile.common_name.clone()),
    );
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(match profile.path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    if !profile.name_constraints.is_empty() {
        let mut ext = CustomExtension::from_oid_content(
            OID_NAME_CONSTRAINTS_ARCS,
            profile.name_constraints.to_der()?,
        );
        // RFC 5280 §4.2.1.10: "Conforming CAs MUST mark this extension as
        // critical".
        ext.set_criticality(true);
        params.custom_extensions.push(ext);
    }
    if !profile.policies.is_empty() {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                OID_CERTIFICATE_POLICIES_ARCS,
                encode_policies(&profile.policies)?,
            ));
    }
    Ok(params)
}

/// Checks the profile's own constraint settings (before any key is made).
fn check_profile(profile: &CaProfile) -> Result<(), CaError> {
    profile.name_constraints.validate()?;
    if !profile.policies.is_empty() {
        encode_policies(&profile.policies)?;
    }
    Ok(())
}

/// Creates a self-signed root CA (RFC 5280 §3.2, §4.2.1.9). The root
/// carries no authorityKeyIdentifier (permitted for self-signed
/// certificates by RFC 5280 §4.2.1.1).
pub fn create_root(profile: &CaProfile, serial: Serial) -> Result<(CaKey, Vec<u8>), CaError> {
    check_profile(profile)?;
    let key = CaKey::generate(profile.algorithm)?;
    let params = ca_params(profile, &serial, &key)?;
    let cert = params.self_signed(key.pair())?;
    Ok((key, cert.der().to_vec()))
}

/// Creates an intermediate CA signed by `parent`, with authorityKeyIdentifier
/// = the parent's SKI and the issuer name byte-identical to the parent's
/// subject (RFC 5280 §4.1.2.4). The parent's URLs become the child's AIA
/// and CRL DP.
///
/// Errors if the validity is not inside the parent's; with
/// [`CaError::PathLenExceeded`] if a pathLenConstraint of the parent (or of
/// any ancestor given with [`Issuer::with_ancestors`]) forbids another CA
/// below it or `profile.path_len` would exceed what remains (RFC 5280
/// §4.2.1.9); with [`CaError::NameConstraintViolation`] if a permitted
/// subtree of the profile lies outside the chain's permitted subtrees or
/// wholly inside an excluded one (RFC 5280 §4.2.1.10). All of this is
/// checked before the key is generated and anything is signed.
pub fn create_intermediate(
    profile: &CaProfile,
    serial: Serial,
    parent: &Issuer,
) -> Result<(CaKey, Vec<u8>), CaError> {
    let nb = profile
        .not_before
        .replace_nanosecond(0)
        .unwrap_or(profile.not_before);
    let na = profile
        .not_after
        .replace_nanosecond(0)
        .unwrap_or(profile.not_after);
    if nb < parent.not_before || na > parent.not_after {
        return Err(CaError::InvalidValidity(
            "intermediate validity must lie within the parent's".into(),
        ));
    }
    check_profile(profile)?;
    parent
        .chain
        .check_new_ca(profile.path_len, &profile.name_constraints)?;
    let key = CaKey::generate(profile.algorithm)?;
    let mut params = ca_params(profile, &serial, &key)?;
    params.use_authority_key_identifier_extension = true;
    parent.urls.apply(&mut params)?;
    let cert = params.signed_by(key.pair(), &parent.rcgen_issuer())?;
    let der = cert.der().to_vec();
    parent.self_check(&der, &key.spki_der())?;
    Ok((key, der))
}

/// A CA that can sign: its certificate, private key and published URLs.
pub struct Issuer {
    id: String,
    cert_der: Vec<u8>,
    key: CaKey,
    urls: IssuerUrls,
    ski: Vec<u8>,
    subject_der: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    path_len: Option<u8>,
    params: CertificateParams,
    chain: ChainPolicy,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("id", &self.id)
            .field("algorithm", &self.key.algorithm())
            .field("ski", &hex::encode(&self.ski))
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn inv(e: impl fmt::Display) -> CaError {
    CaError::InvalidIssuer(e.to_string())
}

/// Rebuilds rcgen's name model from a parsed Name. Only single-valued RDNs
/// with distinct attribute types and UTF8String / PrintableString /
/// IA5String values are representable; anything else is refused.
fn name_to_rcgen(name: &Name) -> Result<DistinguishedName, CaError> {
    let mut dn = DistinguishedName::new();
    let mut seen: Vec<DnType> = Vec::new();
    for rdn in name.iter_rdn() {
        if rdn.len() != 1 {
            return Err(inv("multi-valued RDN in subject"));
        }
        for atv in rdn.iter() {
            let arcs: Vec<u64> = atv.oid.arcs().map(u64::from).collect();
            let ty = DnType::from_oid(&arcs);
            if seen.contains(&ty) {
                return Err(inv("repeated attribute type in subject"));
            }
            seen.push(ty.clone());
            let text = || String::from_utf8(atv.value.value().to_vec()).map_err(inv);
            let value = match atv.value.tag() {
                Tag::Utf8String => DnValue::Utf8String(text()?),
                Tag::PrintableString => DnValue::PrintableString(text()?.try_into().map_err(inv)?),
                Tag::Ia5String => DnValue::Ia5String(text()?.try_into().map_err(inv)?),
                t => return Err(inv(format!("unsupported string type {t} in subject"))),
            };
            dn.push(ty, value);
        }
    }
    Ok(dn)
}

impl Issuer {
    /// Wraps a CA certificate and its key. Checks that the key matches the
    /// certificate, that the certificate is a CA (basicConstraints cA,
    /// keyUsage keyCertSign, RFC 5280 §4.2.1.9/§4.2.1.3), that it has a
    /// subjectKeyIdentifier (§4.2.1.2), and that its subject can be written
    /// back byte-for-byte as the issuer of children (§4.1.2.4).
    pub fn new(
        id: String,
        cert_der: Vec<u8>,
        key: CaKey,
        urls: IssuerUrls,
    ) -> Result<Issuer, CaError> {
        let cert = parse(&cert_der)?;
        let tbs = cert.tbs_certificate();
        let spki_bits = tbs
            .subject_public_key_info()
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| inv("bad subjectPublicKey"))?;
        if spki_bits != key.public_key_bits() {
            return Err(inv("private key does not match the certificate"));
        }
        let bc = tbs
            .get_extension::<X509BasicConstraints>()
            .map_err(inv)?
            .map(|(_, b)| b);
        let path_len = match bc {
            Some(b) if b.ca => b.path_len_constraint,
            _ => return Err(inv("certificate is not a CA (basicConstraints)")),
        };
        let ku = tbs
            .get_extension::<KeyUsage>()
            .map_err(inv)?
            .map(|(_, k)| k)
            .ok_or_else(|| inv("CA certificate has no keyUsage"))?;
        if !ku.0.contains(KeyUsages::KeyCertSign) {
            return Err(inv("CA certificate lacks keyCertSign"));
        }
        let mut key_usages = vec![KeyUsagePurpose::KeyCertSign];
        if ku.0.contains(KeyUsages::CRLSign) {
            key_usages.push(KeyUsagePurpose::CrlSign);
        }
        if ku.0.contains(KeyUsages::DigitalSignature) {
            key_usages.push(KeyUsagePurpose::DigitalSignature);
        }
        let ski = tbs
            .get_extension::<SubjectKeyIdentifier>()
            .map_err(inv)?
            .map(|(_, s)| s.0.as_bytes().to_vec())
            .ok_or_else(|| inv("CA certificate has no subjectKeyIdentifier"))?;
        let subject_der = tbs.subject().to_der().map_err(inv)?;
        if tbs.subject().is_empty() {
            return Err(inv("CA subject is empty"));
        }
        let dn = name_to_rcgen(tbs.subject())?;
        let not_before = time_to_offset(tbs.validity().not_before)?;
        let not_after = time_to_offset(tbs.validity().not_after)?;
        let chain = ChainPolicy::from_chain(&[cert_der.as_slice()])?;

        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.key_identifier_method = KeyIdMethod::PreSpecified(ski.clone());
        params.key_usages = key_usages;

        // Prove the name re-encodes identically: write it into a throwaway
        // CSR (signed by a throwaway key, never by the CA key) and compare.
        let probe_key = KeyPair::generate().map_err(inv)?;
        let probe = params.serialize_request(&probe_key).map_err(inv)?;
        let probe = x509_cert::request::CertReq::from_der(probe.der()).map_err(inv)?;
        if probe.info.subject.to_der().map_err(inv)? != subject_der {
            return Err(inv("subject name cannot be reproduced byte-for-byte"));
        }

        Ok(Issuer {
            id,
            cert_der,
            key,
            urls,
            ski,
            subject_der,
            not_before,
            not_after,
            path_len,
            params,
            chain,
        })
    }

    /// Teaches the issuer the rest of its chain: `ancestors[0]` is the
    /// certificate (DER) of this CA's issuer, then its issuer, up to the
    /// root. From then on, leaves and intermediates it signs are checked
    /// against the nameConstraints and pathLenConstraints of every CA on
    /// the chain ([`ChainPolicy::from_chain`], RFC 5280 §6.1), not only its
    /// own. Errors if the certificates are not CAs, do not chain by name,
    /// or already break a pathLenConstraint.
    pub fn with_ancestors<D: AsRef<[u8]>>(mut self, ancestors: &[D]) -> Result<Issuer, CaError> {
        let mut chain: Vec<&[u8]> = Vec::with_capacity(ancestors.len() + 1);
        chain.push(&self.cert_der);
        chain.extend(ancestors.iter().map(AsRef::as_ref));
        self.chain = ChainPolicy::from_chain(&chain)?;
        Ok(self)
    }

    /// The constraints this issuer enforces before signing: its own, plus
    /// its ancestors' once [`Issuer::with_ancestors`] was called.
    pub fn chain_policy(&self) -> &ChainPolicy {
        &self.chain
    }

    /// Whether a leaf naming `names` may be signed by this CA under its
    /// chain's name constraints (RFC 5280 §4.2.1.10). Errors with
    /// [`CaError::NameConstraintViolation`]; the server can call this when
    /// an order is created, to answer `rejectedIdentifier` early.
    pub fn check_names(&self, names: &[SubjectName]) -> Result<(), CaError> {
        self.chain.check_names(names)
    }

    /// The CA's identifier (as stored).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA's subjectKeyIdentifier, used as the authorityKeyIdentifier of
    /// everything it signs (RFC 5280 §4.2.1.1, §5.2.1).
    pub fn key_identifier(&self) -> &[u8] {
        &self.ski
    }

    /// The DER encoding of the CA's subject Name.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The CA certificate's notBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The CA certificate's notAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The CA certificate's pathLenConstraint, if any.
    pub fn path_len(&self) -> Option<u8> {
        self.path_len
    }

    /// The URLs placed in certificates this CA signs.
    pub fn urls(&self) -> &IssuerUrls {
        &self.urls
    }

    /// The CA's key.
    pub fn key(&self) -> &CaKey {
        &self.key
    }

    pub(crate) fn rcgen_issuer(&self) -> rcgen::Issuer<'_, &KeyPair> {
        rcgen::Issuer::from_params(&self.params, self.key.pair())
    }

    /// After signing: the child's issuer must equal our subject byte for
    /// byte, its AKI must be our SKI, and its SPKI must be the requested one.
    pub(crate) fn self_check(&self, child_der: &[u8], expected_spki: &[u8]) -> Result<(), CaError> {
        let sc = |m: &str| CaError::SelfCheck(m.to_string());
        let child = parse(child_der)?;
        let tbs = child.tbs_certificate();
        if tbs.issuer().to_der().map_err(|e| sc(&e.to_string()))? != self.subject_der {
            return Err(sc("issuer name differs from the CA subject"));
        }
        if crate::cert::cert_aki(child_der)?.as_deref() != Some(self.ski.as_slice()) {
            return Err(sc("authorityKeyIdentifier differs from the CA SKI"));
        }
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|e| sc(&e.to_string()))?;
        if spki != expected_spki {
            return Err(sc("subjectPublicKeyInfo differs from the requested key"));
        }
        Ok(())
    }
}
