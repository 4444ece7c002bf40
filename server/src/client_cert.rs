//! TLS client-certificate authentication (used by the admin API; EST will use it too): TLS client
//! authentication (RFC 8446 §4.3.2 CertificateRequest, §4.4.2 Certificate,
//! §4.4.3 CertificateVerify; RFC 5246 §7.4.4 for TLS 1.2) against an
//! operator-chosen CA bundle (`admin_client_ca`), with an explicit mapping
//! from certificate identity to role (`[[admin_client_certs]]`).
//!
//! Two layers, on purpose:
//!
//! * The TLS listener asks every client for a certificate but requires
//!   none ([`ClientCertAuth::tls_verifier`]). The handshake checks only that
//!   the client holds the private key of the certificate it sent
//!   (CertificateVerify); it accepts any chain, so that an ACME client that
//!   happens to present some unrelated certificate is not cut off, and so
//!   that a certificate from an untrusted CA falls back to API-key
//!   authentication instead of a handshake failure.
//! * The admin API verifies the chain for each request
//!   ([`ClientCertAuth::verify`]) with rustls' `WebPkiClientVerifier`
//!   (RFC 5280 §6 path validation to the trust anchors of
//!   `admin_client_ca`, validity at the time of the request, the
//!   clientAuth extended key usage when the certificate has an EKU
//!   extension, RFC 5280 §4.2.1.12), then the caller checks the store for
//!   a revocation of a certificate ironseal itself issued, then
//!   [`ClientCertAuth::rule_for`] picks the role.
//!
//! Nothing else may treat the connection's peer certificates as
//! authenticated: only [`ClientCertAuth::verify`] makes them so.
//!
//! A rule matches one of: the SHA-256 fingerprint of the whole certificate
//! (DER), the subject commonName (the certificate must have exactly one),
//! or a subjectAltName (RFC 5280 §4.2.1.6) URI, dNSName or rfc822Name. The
//! first matching rule, in configuration order, gives the role. When the
//! trusted bundle holds one of ironseal's own CAs, only fingerprint rules
//! are accepted: ironseal's ACME front end issues clientAuth certificates
//! to anyone who controls a domain, so a name could be obtained by someone
//! who is not meant to administer the CA.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use ironseal_storage::ApiRole;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Deserialize;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

/// `id-at-commonName` (RFC 4519 §2.3; X.520).
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// Hex digits of the fingerprint shown in actor strings (64 bits).
const LABEL_FINGERPRINT_HEX: usize = 16;
/// Longest commonName shown in actor strings.
const LABEL_CN_CHARS: usize = 64;
/// Longest matcher value accepted in the configuration.
const MAX_MATCH_VALUE: usize = 1024;

/// What a rule compares with the client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertMatcher {
    /// SHA-256 of the certificate DER.
    Sha256([u8; 32]),
    /// The subject's only commonName, exactly.
    SubjectCn(String),
    /// A subjectAltName uniformResourceIdentifier, exactly.
    SanUri(String),
    /// A subjectAltName dNSName, ASCII case-insensitive, no wildcard
    /// expansion (a certificate for `*.example.com` matches only the rule
    /// `*.example.com`).
    SanDns(String),
    /// A subjectAltName rfc822Name, ASCII case-insensitive.
    SanEmail(String),
}

impl CertMatcher {
    /// The spellings of the kinds, as configuration keys.
    pub const KINDS: [&'static str; 5] =
        ["sha256", "subject_cn", "san_uri", "san_dns", "san_email"];

    /// A matcher from its kind (one of [`CertMatcher::KINDS`]) and value.
    pub fn parse(kind: &str, value: &str) -> Result<CertMatcher, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{kind}: empty value"));
        }
        if value.len() > MAX_MATCH_VALUE || value.chars().any(char::is_control) {
            return Err(format!(
                "{kind}: value longer than {MAX_MATCH_VALUE} bytes or with control characters"
            ));
        }
        match kind {
            "sha256" => {
                let hex_digits: String = value.chars().filter(|c| *c != ':').collect();
                let bytes = hex::decode(&hex_digits)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        format!("sha256: {value:?} is not 64 hex digits (colons allowed)")
                    })?;
                Ok(CertMatcher::Sha256(bytes))
            }
            "subject_cn" => Ok(CertMatcher::SubjectCn(value.to_string())),
            "san_uri" => Ok(CertMatcher::SanUri(value.to_string())),
            "san_dns" => Ok(CertMatcher::SanDns(value.to_ascii_lowercase())),
            "san_email" => Ok(CertMatcher::SanEmail(value.to_ascii_lowercase())),
            other => Err(format!(
                "unknown match kind {other:?} (expected one of {})",
                CertMatcher::KINDS.join(", ")
            )),
        }
    }

    /// True for the matchers that compare names rather than the whole
    /// certificate.
    pub fn is_name_based(&self) -> bool {
        !matches!(self, CertMatcher::Sha256(_))
    }

    /// Whether `cert` matches.
    pub fn matches(&self, cert: &CertInfo) -> bool {
        match self {
            CertMatcher::Sha256(fp) => {
                aws_lc_rs::constant_time::verify_slices_are_equal(fp, &cert.sha256).is_ok()
            }
            CertMatcher::SubjectCn(cn) => {
                matches!(cert.common_names.as_slice(), [one] if one == cn)
            }
            CertMatcher::SanUri(u) => cert.uris.iter().any(|x| x == u),
            CertMatcher::SanDns(d) => cert.dns_names.iter().any(|x| x.eq_ignore_ascii_case(d)),
            CertMatcher::SanEmail(e) => cert.emails.iter().any(|x| x.eq_ignore_ascii_case(e)),
        }
    }
}

impl fmt::Display for CertMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertMatcher::Sha256(fp) => write!(f, "sha256:{}", hex::encode(fp)),
            CertMatcher::SubjectCn(v) => write!(f, "subject_cn:{v}"),
            CertMatcher::SanUri(v) => write!(f, "san_uri:{v}"),
            CertMatcher::SanDns(v) => write!(f, "san_dns:{v}"),
            CertMatcher::SanEmail(v) => write!(f, "san_email:{v}"),
        }
    }
}

/// One mapping from a certificate identity to a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRule {
    pub matcher: CertMatcher,
    pub role: ApiRole,
}

impl fmt::Display for CertRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.role.as_str(), self.matcher)
    }
}

/// The command-line / environment form `ROLE=KIND:VALUE`, e.g.
/// `operator=subject_cn:ops-laptop` or `admin=sha256:ab12...`.
impl FromStr for CertRule {
    type Err = String;
    fn from_str(s: &str) -> Result<CertRule, String> {
        let (role, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected ROLE=KIND:VALUE"))?;
        let (kind, value) = rest
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected ROLE=KIND:VALUE"))?;
        Ok(CertRule {
            role: role.trim().parse()?,
            matcher: CertMatcher::parse(kind.trim(), value)?,
        })
    }
}

/// One `[[admin_client_certs]]` entry of the configuration file: a role
/// and exactly one matcher.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CertRuleFileConfig {
    pub role: Option<String>,
    pub sha256: Option<String>,
    pub subject_cn: Option<String>,
    pub san_uri: Option<String>,
    pub san_dns: Option<String>,
    pub san_email: Option<String>,
}

impl CertRuleFileConfig {
    /// Checks the entry; errors name the field (`admin_client_certs[i].…`).
    pub fn resolve(&self, index: usize) -> Result<CertRule, String> {
        let at = |field: &str| format!("admin_client_certs[{index}].{field}");
        let role = self
            .role
            .as_deref()
            .ok_or_else(|| format!("{} is required", at("role")))?
            .parse::<ApiRole>()
            .map_err(|e| format!("{}: {e}", at("role")))?;
        let given: Vec<(&str, &String)> = [
            ("sha256", &self.sha256),
            ("subject_cn", &self.subject_cn),
            ("san_uri", &self.san_uri),
            ("san_dns", &self.san_dns),
            ("san_email", &self.san_email),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let kinds = CertMatcher::KINDS.join(", ");
        let (kind, value) = match given.as_slice() {
            [one] => *one,
            [] => return Err(format!("admin_client_certs[{index}] needs one of {kinds}")),
            _ => {
                return Err(format!(
                    "admin_client_certs[{index}] has more than one of {kinds}; \
                     write one entry per match"
                ))
            }
        };
        let matcher = CertMatcher::parse(kind, value).map_err(|e| format!("{}: {e}", at(kind)))?;
        Ok(CertRule { matcher, role })
    }
}

/// What the admin API looks at in a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// SHA-256 of the certificate DER.
    pub sha256: [u8; 32],
    /// The serial as stored (lowercase hex of the DER INTEGER content).
    pub serial_hex: String,
    /// The subject as an RFC 4514 string.
    pub subject: String,
    /// Every commonName of the subject.
    pub common_names: Vec<String>,
    /// subjectAltName dNSNames.
    pub dns_names: Vec<String>,
    /// subjectAltName URIs.
    pub uris: Vec<String>,
    /// subjectAltName rfc822Names.
    pub emails: Vec<String>,
}

impl CertInfo {
    /// Reads the fields of a certificate (DER). Strict DER: trailing bytes
    /// and malformed names are errors.
    pub fn parse(der_bytes: &[u8]) -> Result<CertInfo, String> {
        let cert = x509_cert::Certificate::from_der(der_bytes)
            .map_err(|e| format!("cannot parse the certificate: {e}"))?;
        let tbs = cert.tbs_certificate();
        let mut common_names = Vec::new();
        for atav in tbs.subject().iter().filter(|a| a.oid == COMMON_NAME) {
            let v = x509_cert::ext::pkix::name::DirectoryString::try_from(&atav.value)
                .map_err(|e| format!("subject commonName: {e}"))?;
            common_names.push(v.value().into_owned());
        }
        let (mut dns_names, mut uris, mut emails) = (Vec::new(), Vec::new(), Vec::new());
        let san = tbs
            .get_extension::<SubjectAltName>()
            .map_err(|e| format!("subjectAltName: {e}"))?;
        for name in san.map(|(_, s)| s.0).unwrap_or_default() {
            match name {
                GeneralName::DnsName(d) => dns_names.push(d.to_string()),
                GeneralName::UniformResourceIdentifier(u) => uris.push(u.to_string()),
                GeneralName::Rfc822Name(e) => emails.push(e.to_string()),
                _ => {}
            }
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der_bytes);
        let sha256 = <[u8; 32]>::try_from(digest.as_ref())
            .map_err(|_| "SHA-256 is not 32 bytes".to_string())?;
        Ok(CertInfo {
            sha256,
            serial_hex: hex::encode(tbs.serial_number().as_bytes()),
            subject: tbs.subject().to_string(),
            common_names,
            dns_names,
            uris,
            emails,
        })
    }

    /// Lowercase hex of the fingerprint.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.sha256)
    }

    /// `<name>/<first 16 hex digits of the fingerprint>`, the id of a
    /// certificate principal (audit actor `cert:<label>`). `<name>` is the
    /// commonName, else the first SAN URI, email or DNS name, else `-`;
    /// at most 64 characters, control characters replaced by `?`.
    pub fn label(&self) -> String {
        let name = self
            .common_names
            .first()
            .or_else(|| self.uris.first())
            .or_else(|| self.emails.first())
            .or_else(|| self.dns_names.first())
            .map(String::as_str)
            .unwrap_or("-");
        let name: String = name
            .chars()
            .take(LABEL_CN_CHARS)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        let fp = self.fingerprint();
        format!("{name}/{}", &fp[..LABEL_FINGERPRINT_HEX])
    }
}

/// The first rule, in order, that matches `cert`.
pub fn first_match<'a>(rules: &'a [CertRule], cert: &CertInfo) -> Option<&'a CertRule> {
    rules.iter().find(|r| r.matcher.matches(cert))
}

/// Why a presented client certificate does not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Fingerprint prefix of the leaf, for the log (never trusted).
    pub fingerprint: String,
    pub reason: String,
}

/// Whether any of `anchor_keys` (subject and key) is one of `cas` (DER).
fn holds_any(anchor_keys: &[Vec<u8>], cas: &[Vec<u8>]) -> bool {
    cas.iter()
        .filter_map(|d| subject_and_key(d))
        .any(|k| anchor_keys.contains(&k))
}

/// Client-certificate authentication as configured.
#[derive(Debug)]
pub struct ClientCertAuth {
    verifier: Arc<dyn ClientCertVerifier>,
    rules: Vec<CertRule>,
    /// Subject and public key of every trust anchor in the bundle.
    anchor_keys: Vec<Vec<u8>>,
}

impl ClientCertAuth {
    /// Loads the trust anchors of `ca_file` (PEM, one or more
    /// certificates) and checks the rules. `own_cas` are the DER
    /// certificates of ironseal's CAs: when the bundle holds one of them
    /// (same subject and public key), only `sha256` rules are accepted.
    pub fn new(
        ca_file: &Path,
        rules: Vec<CertRule>,
        own_cas: &[Vec<u8>],
    ) -> Result<ClientCertAuth, String> {
        let shown = ca_file.display();
        if rules.is_empty() {
            return Err(format!(
                "admin_client_ca {shown} is set but no admin_client_certs rule gives a role"
            ));
        }
        let mut roots = rustls::RootCertStore::empty();
        let mut anchors = Vec::new();
        for cert in CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| format!("admin_client_ca {shown}: {e}"))?
        {
            let cert = cert.map_err(|e| format!("admin_client_ca {shown}: {e}"))?;
            roots
                .add(cert.clone())
                .map_err(|e| format!("admin_client_ca {shown}: {e}"))?;
            anchors.push(cert);
        }
        if anchors.is_empty() {
            return Err(format!("admin_client_ca {shown}: no certificates"));
        }
        let anchor_keys: Vec<Vec<u8>> = anchors.iter().filter_map(|a| subject_and_key(a)).collect();
        let holds_own = holds_any(&anchor_keys, own_cas);
        if holds_own {
            if let Some(r) = rules.iter().find(|r| r.matcher.is_name_based()) {
                return Err(format!(
                    "admin_client_ca {shown} holds one of ironseal's own CAs, which issue \
                     clientAuth certificates over ACME to anyone controlling a domain; \
                     name rules such as {r} could be met by such a certificate. \
                     Pin those certificates by sha256, or use a dedicated client CA"
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("admin_client_ca {shown}: {e}"))?;
        Ok(ClientCertAuth {
            verifier,
            rules,
            anchor_keys,
        })
    }

    /// Whether the bundle holds one of `own_cas` (DER certificates of
    /// ironseal's CAs; same subject and public key). Checked at start by
    /// [`ClientCertAuth::new`] and on every name-rule match against the CAs
    /// the store holds then, since CAs can be created or imported at
    /// runtime.
    pub fn holds_own_ca(&self, own_cas: &[Vec<u8>]) -> bool {
        holds_any(&self.anchor_keys, own_cas)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[CertRule] {
        &self.rules
    }

    /// The verifier for the TLS listener: asks for a client certificate,
    /// requires none, accepts any chain (see the module documentation)
    /// and checks the handshake signature.
    pub fn tls_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(OfferClientAuth {
            inner: self.verifier.clone(),
        })
    }

    /// Verifies a peer chain (leaf first) at `now` and reads the leaf.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<CertInfo, Rejected> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(Rejected {
                fingerprint: "-".into(),
                reason: "no certificate".into(),
            });
        };
        let fingerprint = {
            let fp = crate::ids::sha256_hex(leaf.as_ref());
            fp[..LABEL_FINGERPRINT_HEX].to_string()
        };
        self.verifier
            .verify_client_cert(leaf, intermediates, now)
            .map_err(|e| Rejected {
                fingerprint: fingerprint.clone(),
                reason: format!("not trusted for the admin API: {e}"),
            })?;
        CertInfo::parse(leaf.as_ref()).map_err(|reason| Rejected {
            fingerprint,
            reason,
        })
    }

    /// The rule that gives `cert` its role, if any.
    pub fn rule_for(&self, cert: &CertInfo) -> Option<&CertRule> {
        first_match(&self.rules, cert)
    }
}

/// DER of the subject followed by the DER of the SubjectPublicKeyInfo.
fn subject_and_key(der_bytes: &[u8]) -> Option<Vec<u8>> {
    let cert = x509_cert::Certificate::from_der(der_bytes).ok()?;
    let tbs = cert.tbs_certificate();
    let mut out = tbs.subject().to_der().ok()?;
    out.extend(tbs.subject_public_key_info().to_der().ok()?);
    Some(out)
}

/// Requests a client certificate without requiring one and without
/// judging its chain; the handshake signature is still verified, so the
/// peer holds the key of the certificate it sent. RFC 8446 §4.4.2.4 lets a
/// server continue a handshake whose client certificate it does not accept,
/// "considering the client unauthenticated"; here that decision is left to
/// [`ClientCertAuth::verify`] per request.
#[derive(Debug)]
struct OfferClientAuth {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for OfferClientAuth {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The chain is judged per request by ClientCertAuth::verify.
        Ok(ClientCertVerified::assertion())
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

/// A listener verifier that asks for a client certificate, requires none,
/// trusts no CA and only checks the handshake signature (CertificateVerify,
/// RFC 8446 §4.4.3): for EST (RFC 7030 §3.3.2) when admin client
/// certificates are not configured. As with [`ClientCertAuth::tls_verifier`],
/// the chain means nothing until a front end verifies it per request.
pub fn offer_only_verifier() -> Arc<dyn ClientCertVerifier> {
    Arc::new(OfferOnly {
        algs: rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
    })
}

#[derive(Debug)]
struct OfferOnly {
    algs: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for OfferOnly {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Judged per request by the front end (EST: crate::est::auth).
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Certificates for the tests of this module and of [`crate::admin::auth`].
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };

    /// A self-signed CA that can sign leaves.
    pub struct TestCa {
        pub issuer: Issuer<'static, KeyPair>,
        pub pem: String,
        pub der: Vec<u8>,
    }

    impl TestCa {
        pub fn new(name: &str) -> TestCa {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, name);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let cert = p.self_signed(&key).unwrap();
            TestCa {
                pem: cert.pem(),
                der: cert.der().to_vec(),
                issuer: Issuer::new(p, key),
            }
        }

        /// A leaf with these commonNames, SANs and EKUs.
        pub fn leaf(
            &self,
            cns: &[&str],
            sans: Vec<SanType>,
            ekus: &[ExtendedKeyUsagePurpose],
        ) -> Vec<u8> {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name = rcgen::DistinguishedName::new();
            for (i, cn) in cns.iter().enumerate() {
                // rcgen keeps one value per DnType: further commonNames go
                // in under the same OID as a custom type.
                let t = match i {
                    0 => DnType::CommonName,
                    _ => DnType::CustomDnType(vec![2, 5, 4, 3]),
                };
                p.distinguished_name.push(t, *cn);
            }
            p.subject_alt_names = sans;
            p.extended_key_usages = ekus.to_vec();
            p.signed_by(&key, &self.issuer).unwrap().der().to_vec()
        }

        /// A clientAuth leaf with one commonName.
        pub fn client(&self, cn: &str) -> Vec<u8> {
            self.leaf(&[cn], Vec::new(), &[ExtendedKeyUsagePurpose::ClientAuth])
        }

        /// Writes the CA certificate as PEM into `dir`.
        pub fn write(&self, dir: &std::path::Path) -> std::path::PathBuf {
            let p = dir.join("client-ca.pem");
            std::fs::write(&p, &self.pem).unwrap();
            p
        }
    }

    pub fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().unwrap())
    }
    pub fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().unwrap())
    }
    pub fn email(s: &str) -> SanType {
        SanType::Rfc822Name(s.try_into().unwrap())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::testing::*;
    use super::*;
    use rcgen::ExtendedKeyUsagePurpose;

    fn rule(s: &str) -> CertRule {
        s.parse().unwrap()
    }

    #[test]
    fn rule_strings_parse() {
        let r = rule("operator=subject_cn:ops laptop");
        assert_eq!(r.role, ApiRole::Operator);
        assert_eq!(r.matcher, CertMatcher::SubjectCn("ops laptop".into()));
        assert_eq!(r.to_string(), "operator=subject_cn:ops laptop");
        // The value may hold '=' and ':'.
        let r = rule("auditor=san_uri:spiffe://corp/ns/audit?x=1");
        assert_eq!(
            r.matcher,
            CertMatcher::SanUri("spiffe://corp/ns/audit?x=1".into())
        );
        let fp = "AB:".repeat(31) + "AB";
        let r = rule(&format!("admin=sha256:{fp}"));
        assert_eq!(r.matcher, CertMatcher::Sha256([0xab; 32]));
        assert_eq!(r.to_string(), format!("admin=sha256:{}", "ab".repeat(32)));
        assert_eq!(
            rule("admin=san_dns:Ops.Example.COM").matcher,
            CertMatcher::SanDns("ops.example.com".into())
        );
        for bad in [
            "operator",
            "operator=alice",
            "root=subject_cn:alice",
            "operator=serial:01",
            "operator=subject_cn:",
            "operator=sha256:abcd",
            &format!("operator=sha256:{}", "zz".repeat(32)),
            "operator=subject_cn:a\u{7}b",
        ] {
            assert!(bad.parse::<CertRule>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn file_entries_need_a_role_and_exactly_one_matcher() {
        let ok = CertRuleFileConfig {
            role: Some("auditor".into()),
            san_email: Some("Audit@Example.com".into()),
            ..Default::default()
        };
        assert_eq!(
            ok.resolve(0).unwrap(),
            CertRule {
                role: ApiRole::Auditor,
                matcher: CertMatcher::SanEmail("audit@example.com".into())
            }
        );
        let none = CertRuleFileConfig {
            role: Some("auditor".into()),
            ..Default::default()
        };
        assert!(none
            .resolve(2)
            .unwrap_err()
            .contains("admin_client_certs[2] needs one of"));
        let two = CertRuleFileConfig {
            role: Some("auditor".into()),
            subject_cn: Some("a".into()),
            san_uri: Some("urn:x".into()),
            ..Default::default()
        };
        assert!(two.resolve(0).unwrap_err().contains("more than one"));
        let no_role = CertRuleFileConfig {
            subject_cn: Some("a".into()),
            ..Default::default()
        };
        assert!(no_role
            .resolve(1)
            .unwrap_err()
            .contains("admin_client_certs[1].role"));
        let bad_role = CertRuleFileConfig {
            role: Some("superuser".into()),
            subject_cn: Some("a".into()),
            ..Default::default()
        };
        assert!(bad_role.resolve(0).unwrap_err().contains("superuser"));
        let bad_fp = CertRuleFileConfig {
            role: Some("admin".into()),
            sha256: Some("00".into()),
            ..Default::default()
        };
        assert!(bad_fp
            .resolve(3)
            .unwrap_err()
            .contains("admin_client_certs[3].sha256"));
    }

    #[test]
    fn certificate_fields_and_matching() {
        let ca = TestCa::new("test client CA");
        let der = ca.leaf(
            &["alice"],
            vec![
                uri("spiffe://corp/admin/alice"),
                dns("Alice.Ops.Example"),
                dns("*.wild.example"),
                email("alice@example.com"),
            ],
            &[ExtendedKeyUsagePurpose::ClientAuth],
        );
        let info = CertInfo::parse(&der).unwrap();
        assert_eq!(info.common_names, ["alice"]);
        assert!(info.subject.contains("CN=alice"), "{}", info.subject);
        assert_eq!(info.uris, ["spiffe://corp/admin/alice"]);
        assert_eq!(info.emails, ["alice@example.com"]);
        assert_eq!(info.fingerprint(), crate::ids::sha256_hex(&der));
        assert_eq!(info.label(), format!("alice/{}", &info.fingerprint()[..16]));
        let m = |s: &str| rule(&format!("admin={s}")).matcher.matches(&info);
        assert!(m("subject_cn:alice"));
        assert!(!m("subject_cn:Alice"));
        assert!(!m("subject_cn:alic"));
        assert!(m("san_uri:spiffe://corp/admin/alice"));
        assert!(!m("san_uri:spiffe://corp/admin/alice/"));
        assert!(m("san_dns:alice.ops.example"));
        assert!(m("san_dns:*.wild.example"));
        assert!(!m("san_dns:x.wild.example"), "no wildcard expansion");
        assert!(m("san_email:ALICE@example.com"));
        assert!(!m("san_email:bob@example.com"));
        assert!(m(&format!("sha256:{}", info.fingerprint())));
        assert!(!m(&format!("sha256:{}", "00".repeat(32))));

        // First match wins, in order.
        let rules = vec![
            rule("auditor=subject_cn:bob"),
            rule("operator=san_uri:spiffe://corp/admin/alice"),
            rule("admin=subject_cn:alice"),
        ];
        assert_eq!(first_match(&rules, &info).unwrap().role, ApiRole::Operator);
        assert!(first_match(&rules[..1], &info).is_none());

        // Two commonNames: a CN rule matches neither.
        let two = CertInfo::parse(&ca.leaf(&["alice", "bob"], Vec::new(), &[])).unwrap();
        assert_eq!(two.common_names.len(), 2, "{:?}", two.common_names);
        assert!(!rule("admin=subject_cn:alice").matcher.matches(&two));
        assert!(!rule("admin=subject_cn:bob").matcher.matches(&two));

        // Labels without a commonName; control characters replaced.
        let no_cn = CertInfo::parse(&ca.leaf(&[], vec![uri("urn:x:svc")], &[])).unwrap();
        assert!(no_cn.label().starts_with("urn:x:svc/"), "{}", no_cn.label());
        let nothing = CertInfo::parse(&ca.leaf(&[], vec![], &[])).unwrap();
        assert!(nothing.label().starts_with("-/"), "{}", nothing.label());
        let ctl = CertInfo::parse(&ca.client("a\u{1b}b")).unwrap();
        assert!(ctl.label().starts_with("a?b/"), "{}", ctl.label());
        let long = CertInfo::parse(&ca.client(&"x".repeat(100))).unwrap();
        assert_eq!(long.label().len(), 64 + 1 + 16);

        assert!(CertInfo::parse(b"not a certificate").is_err());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(CertInfo::parse(&trailing).is_err());
    }

    #[test]
    fn chains_are_verified_against_the_configured_cas() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("admin client CA");
        let other = TestCa::new("someone else");
        let auth = ClientCertAuth::new(
            &ca.write(dir.path()),
            vec![rule("operator=subject_cn:ops")],
            std::slice::from_ref(&other.der),
        )
        .unwrap();
        let now = UnixTime::now();
        let chain = |der: Vec<u8>| vec![CertificateDer::from(der)];
        let ok = auth.verify(&chain(ca.client("ops")), now).unwrap();
        assert_eq!(auth.rule_for(&ok).unwrap().role, ApiRole::Operator);
        let unmapped = auth.verify(&chain(ca.client("dev")), now).unwrap();
        assert!(auth.rule_for(&unmapped).is_none());
        // No EKU at all is any purpose (RFC 5280 §4.2.1.12).
        assert!(auth
            .verify(&chain(ca.leaf(&["ops"], vec![], &[])), now)
            .is_ok());
        // Untrusted CA, wrong EKU, nothing.
        let e = auth.verify(&chain(other.client("ops")), now).unwrap_err();
        assert!(e.reason.contains("not trusted"), "{e:?}");
        assert_eq!(e.fingerprint.len(), 16);
        let server_only = ca.leaf(&["ops"], vec![], &[ExtendedKeyUsagePurpose::ServerAuth]);
        assert!(auth.verify(&chain(server_only), now).is_err());
        assert!(auth.verify(&[], now).is_err());
        assert!(auth.verify(&chain(b"garbage".to_vec()), now).is_err());
        // A CA certificate is no client certificate (RFC 5280 §4.2.1.9).
        assert!(auth.verify(&chain(ca.der.clone()), now).is_err());
        // Expired: verified at a time after notAfter (rcgen: year 4096).
        let later = UnixTime::since_unix_epoch(std::time::Duration::from_secs(70_000_000_000));
        assert!(auth.verify(&chain(ca.client("ops")), later).is_err());

        // The TLS layer requests but does not require a certificate.
        let v = auth.tls_verifier();
        assert!(v.offer_client_auth());
        assert!(!v.client_auth_mandatory());
        assert!(!v.root_hint_subjects().is_empty());
    }

    #[test]
    fn configuration_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("admin client CA");
        let path = ca.write(dir.path());
        let name_rule = vec![rule("operator=subject_cn:ops")];
        assert!(ClientCertAuth::new(&path, Vec::new(), &[])
            .unwrap_err()
            .contains("no admin_client_certs rule"));
        assert!(
            ClientCertAuth::new(&dir.path().join("missing.pem"), name_rule.clone(), &[]).is_err()
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no PEM here\n").unwrap();
        assert!(ClientCertAuth::new(&empty, name_rule.clone(), &[])
            .unwrap_err()
            .contains("no certificates"));
        // The bundle holds one of "our" CAs: only fingerprint rules.
        let e = ClientCertAuth::new(&path, name_rule, std::slice::from_ref(&ca.der)).unwrap_err();
        assert!(e.contains("sha256") && e.contains("subject_cn:ops"), "{e}");
        let pinned = vec![rule(&format!("admin=sha256:{}", "11".repeat(32)))];
        assert!(ClientCertAuth::new(&path, pinned, std::slice::from_ref(&ca.der)).is_ok());
    }
}
