//! Issuance profiles as types: what a leaf may carry, checked against a
//! CSR before anything is signed.
//!
//! [`CertProfile::template`] turns (profile, checked CSR, requested names,
//! an optional SID supplied by the requester, the tenant's allowed URI
//! prefixes) into a [`LeafTemplate`] or a [`ProfileError`] naming the one
//! rule that was broken, so each front end can map it to its own wire error
//! (ACME `badCSR` / `rejectedIdentifier`, SCEP `badRequest`, EST 400).
//! [`crate::issuance::issue_template`] then signs the template after the
//! chain's name constraints (RFC 5280 §4.2.1.10).
//!
//! Three kinds ([`ProfileKind`]):
//!
//! * **TLS**: the ACME shape (RFC 8555 §7.4): the CSR names exactly the
//!   requested DNS/IP identifiers; SAN = those identifiers, CN = the first
//!   DNS name when ≤ 64 octets (RFC 5280 ub-common-name), else an empty
//!   subject and a critical SAN (§4.2.1.6).
//! * **Device** (SCEP RFC 8894, EST RFC 7030): subject DN copied from the
//!   CSR (typed attributes only, [`crate::subject`]) or CN only; SANs from
//!   the CSR limited to the allowed kinds; optionally the Microsoft SID URI
//!   (`tag:microsoft.com,2022-09-14:sid:<SID>`, KB5014754).
//! * **SPIFFE** (X.509-SVID §2, §4): exactly one URI SAN holding a SPIFFE
//!   ID, empty subject, critical SAN, nothing else.
//!
//! extKeyUsage: only serverAuth and clientAuth exist ([`Eku`]); no profile
//! needs emailProtection, codeSigning or ipsecIKE yet (strongSwan accepts
//! clientAuth/serverAuth), so they are not offered until one does.

use std::fmt;

use thiserror::Error;
use time::{Duration, OffsetDateTime};

use crate::csr::{CheckedCsr, LeafKey};
use crate::issuance::{Eku, LeafTemplate};
use crate::ms_sid::{check_sid, sid_of_uri, sid_uri};
use crate::name_policy::uri_within;
use crate::names::SubjectName;
use crate::spiffe::SpiffeId;
use crate::subject::{DnAttribute, SubjectDn};

/// A subscriber key kind a profile may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA P-256 (RFC 5480).
    P256,
    /// ECDSA P-384 (RFC 5480).
    P384,
    /// RSA, size limited by the CSR policy (RFC 8017).
    Rsa,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl KeyType {
    /// Every kind, in documentation order.
    pub const ALL: [KeyType; 4] = [KeyType::P256, KeyType::P384, KeyType::Rsa, KeyType::Ed25519];

    /// The configuration spelling (`p256`, `p384`, `rsa`, `ed25519`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::P256 => "p256",
            KeyType::P384 => "p384",
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// The kind spelled `s` (see [`KeyType::as_str`]).
    pub fn parse(s: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of a checked CSR key.
    pub fn of(key: LeafKey) -> KeyType {
        match key {
            LeafKey::EcdsaP256 => KeyType::P256,
            LeafKey::EcdsaP384 => KeyType::P384,
            LeafKey::Rsa { .. } => KeyType::Rsa,
            LeafKey::Ed25519 => KeyType::Ed25519,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subjectAltName form (RFC 5280 §4.2.1.6) a device profile may copy
/// from the CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SanKind {
    /// dNSName.
    Dns,
    /// iPAddress.
    Ip,
    /// rfc822Name.
    Email,
    /// uniformResourceIdentifier (other than the SID URI, governed by
    /// [`DeviceOptions::allow_sid`]).
    Uri,
}

impl SanKind {
    /// The kind of `name`.
    pub fn of(name: &SubjectName) -> SanKind {
        match name {
            SubjectName::Dns(_) => SanKind::Dns,
            SubjectName::Ip(_) => SanKind::Ip,
            SubjectName::Email(_) => SanKind::Email,
            SubjectName::Uri(_) => SanKind::Uri,
        }
    }

    /// The configuration spelling (`dns`, `ip`, `email`, `uri`).
    pub fn as_str(self) -> &'static str {
        match self {
            SanKind::Dns => "dns",
            SanKind::Ip => "ip",
            SanKind::Email => "email",
            SanKind::Uri => "uri",
        }
    }

    /// The kind spelled `s`.
    pub fn parse(s: &str) -> Option<SanKind> {
        [SanKind::Dns, SanKind::Ip, SanKind::Email, SanKind::Uri]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Options of a device profile (SCEP, EST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOptions {
    /// Copy the CSR's subject DN (typed attributes only; a CSR with other
    /// attributes is refused). When false the subject is the CSR's CN
    /// alone, or empty (then the SAN is critical).
    pub subject_from_csr: bool,
    /// SAN kinds copied from the CSR; a CSR SAN of another kind is refused.
    pub allowed_sans: Vec<SanKind>,
    /// Whether the Microsoft SID URI SAN may be issued (from the CSR or
    /// supplied by the requester, e.g. Intune).
    pub allow_sid: bool,
}

impl Default for DeviceOptions {
    /// Subject from the CSR; DNS, email and URI SANs; no SID.
    fn default() -> Self {
        DeviceOptions {
            subject_from_csr: true,
            allowed_sans: vec![SanKind::Dns, SanKind::Email, SanKind::Uri],
            allow_sid: false,
        }
    }
}

/// Options of a SPIFFE profile. Empty today (the allowed URI prefixes are
/// the tenant's and come in per request); kept as a struct so options can
/// be added without changing [`ProfileKind`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpiffeOptions {}

/// What shape of certificate a profile issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKind {
    /// TLS server/client certificates (ACME).
    Tls,
    /// Device certificates (SCEP, EST).
    Device(DeviceOptions),
    /// SPIFFE X.509-SVIDs.
    Spiffe(SpiffeOptions),
}

impl ProfileKind {
    /// The configuration spelling (`tls`, `device`, `spiffe`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ProfileKind::Tls => "tls",
            ProfileKind::Device(_) => "device",
            ProfileKind::Spiffe(_) => "spiffe",
        }
    }

    /// The default extKeyUsage of the kind: serverAuth + clientAuth for TLS
    /// and SPIFFE (X.509-SVID §4.4 allows both), clientAuth for devices.
    pub fn default_ekus(&self) -> Vec<Eku> {
        match self {
            ProfileKind::Device(_) => vec![Eku::ClientAuth],
            _ => vec![Eku::ServerAuth, Eku::ClientAuth],
        }
    }

    /// The default lifetime of the kind: 1 hour for SPIFFE (short-lived
    /// SVIDs), 90 days otherwise.
    pub fn default_lifetime(&self) -> Duration {
        match self {
            ProfileKind::Spiffe(_) => Duration::hours(1),
            _ => Duration::days(90),
        }
    }
}

/// An issuance profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertProfile {
    /// Profile name (ACME `profile`, config `name`).
    pub name: String,
    /// Certificate shape.
    pub kind: ProfileKind,
    /// notAfter − issuance time; whole seconds, at least one minute (see
    /// [`CertProfile::validity`]).
    pub lifetime: Duration,
    /// Accepted subscriber key kinds; must not be empty.
    pub key_types: Vec<KeyType>,
    /// extKeyUsage purposes (RFC 5280 §4.2.1.12); must not be empty.
    pub ekus: Vec<Eku>,
    /// CA id to issue from; `None` = the active issuing CA.
    pub ca: Option<String>,
    /// Hold each request for a second person's approval before signing.
    pub requires_approval: bool,
}

/// Shortest lifetime a profile may have.
pub const MIN_LIFETIME: Duration = Duration::minutes(1);

/// Why a request does not fit a profile. One variant per rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProfileError {
    /// The profile itself is unusable (no EKU, no key type, lifetime below
    /// [`MIN_LIFETIME`]): a configuration error, not the requester's.
    #[error("profile {profile:?} is invalid: {reason}")]
    InvalidProfile {
        /// Profile name.
        profile: String,
        /// What is wrong.
        reason: String,
    },
    /// The CSR key kind is not among the profile's key types (ACME
    /// `badCSR`).
    #[error("key type {key} is not allowed by this profile (allowed: {allowed:?})")]
    KeyTypeNotAllowed {
        /// The CSR's key kind.
        key: KeyType,
        /// The profile's key kinds.
        allowed: Vec<KeyType>,
    },
    /// A requested name is of a kind the profile does not issue (TLS: only
    /// DNS and IP; ACME `rejectedIdentifier`).
    #[error("{0} cannot be issued under this profile")]
    UnsupportedIdentifier(SubjectName),
    /// The CSR's names are not exactly the requested ones (RFC 8555 §7.4;
    /// ACME `badCSR`).
    #[error("CSR names mismatch: missing {missing:?}, unexpected {unexpected:?}")]
    NamesMismatch {
        /// Requested names the CSR lacks.
        missing: Vec<String>,
        /// CSR names that were not requested.
        unexpected: Vec<String>,
    },
    /// Nothing to certify: no SAN and no subject.
    #[error("the request names nothing to certify")]
    NoNames,
    /// A CSR SAN of a kind the device profile does not copy, or any SAN
    /// besides the SPIFFE ID.
    #[error("subjectAltName {0} is not allowed by this profile")]
    SanKindNotAllowed(SubjectName),
    /// The CSR subject cannot be copied: unknown or repeated attribute,
    /// bad length or string type (RFC 5280 §4.1.2.4, Appendix A.1).
    #[error("CSR subject not accepted: {0}")]
    UnsupportedSubject(String),
    /// A SID was supplied or found in the CSR but the profile does not
    /// allow SIDs.
    #[error("a Microsoft SID subjectAltName is not allowed by this profile")]
    SidNotAllowed,
    /// The SID is not `S-1-<authority>-<sub>…` (MS-DTYP §2.4.2.1).
    #[error("invalid SID {sid:?}: {reason}")]
    InvalidSid {
        /// The offending SID.
        sid: String,
        /// What is wrong.
        reason: String,
    },
    /// The CSR carries a different SID than the requester supplied, or
    /// more than one.
    #[error("conflicting SIDs: {0:?}")]
    SidMismatch(Vec<String>),
    /// A SPIFFE profile needs exactly one URI SAN; the CSR has this many.
    #[error("a SPIFFE certificate needs exactly one URI SAN, the CSR has {0}")]
    SpiffeIdCount(usize),
    /// The URI is not a valid SPIFFE ID (SPIFFE ID §2).
    #[error("invalid SPIFFE ID {id:?}: {reason}")]
    InvalidSpiffeId {
        /// The offending URI.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A URI SAN lies under none of the allowed prefixes (ACME
    /// `rejectedIdentifier`).
    #[error("URI {uri} is not under an allowed prefix ({allowed:?})")]
    UriNotAllowed {
        /// The URI.
        uri: String,
        /// The caller's allowed prefixes.
        allowed: Vec<String>,
    },
}

/// The inputs of [`CertProfile::template`] beyond the profile and the CSR.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateRequest<'a> {
    /// Names the requester asked for (ACME order identifiers). TLS: the
    /// CSR must name exactly these. Device and SPIFFE: when not empty, the
    /// CSR's SANs (SID URI aside) must be exactly these.
    pub requested: &'a [SubjectName],
    /// A SID supplied by the requester (e.g. Intune), without the URI
    /// prefix (`S-1-5-21-…`).
    pub extra_sid: Option<&'a str>,
    /// The tenant's allowed URI prefixes (`spiffe://td/ns/`,
    /// `urn:dev:`…; matched at `/` boundaries). Every URI SAN other than
    /// the SID URI must lie under one; an empty list refuses all URIs.
    pub allowed_uri_prefixes: &'a [String],
}

fn names_mismatch(have: &[SubjectName], want: &[SubjectName]) -> Result<(), ProfileError> {
    let norm = |v: &[SubjectName]| -> Vec<SubjectName> {
        let mut n: Vec<SubjectName> = v.iter().map(SubjectName::normalized).collect();
        n.sort();
        n.dedup();
        n
    };
    let (have, want) = (norm(have), norm(want));
    if have == want {
        return Ok(());
    }
    Err(ProfileError::NamesMismatch {
        missing: want
            .iter()
            .filter(|n| !have.contains(n))
            .map(ToString::to_string)
            .collect(),
        unexpected: have
            .iter()
            .filter(|n| !want.contains(n))
            .map(ToString::to_string)
            .collect(),
    })
}

fn check_uri_allowed(uri: &str, allowed: &[String]) -> Result<(), ProfileError> {
    if allowed.iter().any(|p| uri_within(uri, p)) {
        Ok(())
    } else {
        Err(ProfileError::UriNotAllowed {
            uri: uri.to_string(),
            allowed: allowed.to_vec(),
        })
    }
}

impl CertProfile {
    /// A profile of `kind` with that kind's default lifetime and EKUs,
    /// every key type, the active CA and no approval.
    pub fn new(name: &str, kind: ProfileKind) -> CertProfile {
        CertProfile {
            name: name.to_string(),
            lifetime: kind.default_lifetime(),
            ekus: kind.default_ekus(),
            kind,
            key_types: KeyType::ALL.to_vec(),
            ca: None,
            requires_approval: false,
        }
    }

    /// Whether a CSR key of this kind may be certified under the profile.
    pub fn allows_key(&self, key: LeafKey) -> bool {
        self.key_types.contains(&KeyType::of(key))
    }

    /// Checks the profile itself: at least one EKU and key type, a
    /// lifetime of whole seconds and at least [`MIN_LIFETIME`].
    pub fn check(&self) -> Result<(), ProfileError> {
        let bad = |reason: &str| {
            Err(ProfileError::InvalidProfile {
                profile: self.name.clone(),
                reason: reason.to_string(),
            })
        };
        if self.ekus.is_empty() {
            return bad("no extKeyUsage purpose");
        }
        if self.key_types.is_empty() {
            return bad("no key type");
        }
        if self.lifetime < MIN_LIFETIME || self.lifetime.subsec_nanoseconds() != 0 {
            return bad("lifetime must be whole seconds and at least one minute");
        }
        Ok(())
    }

    /// `(notBefore, notAfter)` for a certificate issued at `now`.
    ///
    /// notAfter = now + lifetime, so the subscriber always gets the full
    /// lifetime from the moment of issuance; notBefore = now − backdate,
    /// where backdate (clock-skew tolerance) is `max_backdate` but at most
    /// a tenth of the lifetime: an hour of backdating would otherwise make
    /// a 5-minute certificate a 65-minute one (and skew ARI windows, RFC
    /// 9773 §4.2, which are computed from the validity period). Times are
    /// whole seconds (RFC 5280 §4.1.2.5). The signer may still raise
    /// notBefore to the issuer's notBefore.
    pub fn validity(
        &self,
        now: OffsetDateTime,
        max_backdate: Duration,
    ) -> (OffsetDateTime, OffsetDateTime) {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let tenth = Duration::seconds(self.lifetime.whole_seconds() / 10);
        let backdate = max_backdate.clamp(Duration::ZERO, tenth);
        let backdate = Duration::seconds(backdate.whole_seconds());
        (
            now - backdate,
            now + Duration::seconds(self.lifetime.whole_seconds()),
        )
    }

    /// Builds the leaf for `csr` under this profile, or says which rule
    /// the request breaks. Name constraints are checked when signing
    /// ([`crate::issuance::issue_template`]); tenant DNS/IP/email policy is
    /// the caller's ([`crate::name_policy`]).
    pub fn template(
        &self,
        csr: &CheckedCsr,
        req: &TemplateRequest<'_>,
    ) -> Result<LeafTemplate, ProfileError> {
        self.check()?;
        if !self.allows_key(csr.key) {
            return Err(ProfileError::KeyTypeNotAllowed {
                key: KeyType::of(csr.key),
                allowed: self.key_types.clone(),
            });
        }
        let (subject, sans) = match &self.kind {
            ProfileKind::Tls => self.tls(csr, req)?,
            ProfileKind::Device(o) => self.device(o, csr, req)?,
            ProfileKind::Spiffe(_) => self.spiffe(csr, req)?,
        };
        Ok(LeafTemplate::new(csr, subject, sans, self.ekus.clone()))
    }

    fn tls(
        &self,
        csr: &CheckedCsr,
        req: &TemplateRequest<'_>,
    ) -> Result<(SubjectDn, Vec<SubjectName>), ProfileError> {
        if let Some(n) = req
            .requested
            .iter()
            .find(|n| !matches!(n, SubjectName::Dns(_) | SubjectName::Ip(_)))
        {
            return Err(ProfileError::UnsupportedIdentifier(n.clone()));
        }
        if req.requested.is_empty() {
            return Err(ProfileError::NoNames);
        }
        if req.extra_sid.is_some() {
            return Err(ProfileError::SidNotAllowed);
        }
        csr.require_names(req.requested).map_err(|e| match e {
            crate::csr::CsrError::NamesMismatch {
                missing,
                unexpected,
            } => ProfileError::NamesMismatch {
                missing,
                unexpected,
            },
            other => ProfileError::NamesMismatch {
                missing: Vec::new(),
                unexpected: vec![other.to_string()],
            },
        })?;
        let mut sans: Vec<SubjectName> = Vec::new();
        for n in req.requested.iter().map(SubjectName::normalized) {
            if !sans.contains(&n) {
                sans.push(n);
            }
        }
        let cn = sans.iter().find_map(|n| match n {
            SubjectName::Dns(d) if d.len() <= 64 => Some(d.clone()),
            _ => None,
        });
        let subject = cn
            .map(|c| SubjectDn::common_name_only(&c))
            .unwrap_or_default();
        Ok((subject, sans))
    }

    fn device(
        &self,
        o: &DeviceOptions,
        csr: &CheckedCsr,
        req: &TemplateRequest<'_>,
    ) -> Result<(SubjectDn, Vec<SubjectName>), ProfileError> {
        let mut sids: Vec<String> = Vec::new();
        let mut sans: Vec<SubjectName> = Vec::new();
        for n in &csr.san_names {
            if let SubjectName::Uri(u) = n {
                if let Some(sid) = sid_of_uri(u) {
                    if !sids.iter().any(|s| s == sid) {
                        sids.push(sid.to_string());
                    }
                    continue;
                }
            }
            if !o.allowed_sans.contains(&SanKind::of(n)) {
                return Err(ProfileError::SanKindNotAllowed(n.clone()));
            }
            if let SubjectName::Uri(u) = n {
                check_uri_allowed(u, req.allowed_uri_prefixes)?;
            }
            sans.push(n.clone());
        }
        if !req.requested.is_empty() {
            names_mismatch(&sans, req.requested)?;
        }
        if let Some(extra) = req.extra_sid {
            if !sids.iter().any(|s| s == extra) {
                sids.push(extra.to_string());
            }
        }
        if !sids.is_empty() && !o.allow_sid {
            return Err(ProfileError::SidNotAllowed);
        }
        if sids.len() > 1 {
            return Err(ProfileError::SidMismatch(sids));
        }
        if let Some(sid) = sids.first() {
            check_sid(sid).map_err(|reason| ProfileError::InvalidSid {
                sid: sid.clone(),
                reason,
            })?;
            sans.push(SubjectName::Uri(sid_uri(sid)));
        }
        let subject = if o.subject_from_csr {
            let s = csr.subject.clone();
            // Validate now so the requester hears which attribute is wrong.
            s.to_rcgen().map_err(ProfileError::UnsupportedSubject)?;
            s
        } else {
            match csr.subject.get(DnAttribute::CommonName) {
                Some(cn) => {
                    let s = SubjectDn::common_name_only(cn);
                    s.to_rcgen().map_err(ProfileError::UnsupportedSubject)?;
                    s
                }
                None => SubjectDn::default(),
            }
        };
        if sans.is_empty() && subject.is_empty() {
            return Err(ProfileError::NoNames);
        }
        Ok((subject, sans))
    }

    fn spiffe(
        &self,
        csr: &CheckedCsr,
        req: &TemplateRequest<'_>,
    ) -> Result<(SubjectDn, Vec<SubjectName>), ProfileError> {
        if req.extra_sid.is_some() {
            return Err(ProfileError::SidNotAllowed);
        }
        let uris: Vec<&str> = csr
            .san_names
            .iter()
            .filter_map(|n| match n {
                SubjectName::Uri(u) => Some(u.as_str()),
                _ => None,
            })
            .collect();
        if let Some(other) = csr
            .san_names
            .iter()
            .find(|n| !matches!(n, SubjectName::Uri(_)))
        {
            return Err(ProfileError::SanKindNotAllowed(other.clone()));
        }
        let [uri] = uris.as_slice() else {
            return Err(ProfileError::SpiffeIdCount(uris.len()));
        };
        let id = SpiffeId::parse(uri).map_err(|reason| ProfileError::InvalidSpiffeId {
            id: (*uri).to_string(),
            reason,
        })?;
        let sans = vec![SubjectName::Uri(id.as_str().to_string())];
        if !req.requested.is_empty() {
            names_mismatch(&sans, req.requested)?;
        }
        check_uri_allowed(id.as_str(), req.allowed_uri_prefixes)?;
        Ok((SubjectDn::default(), sans))
    }
}
