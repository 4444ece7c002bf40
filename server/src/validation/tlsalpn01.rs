//! `tls-alpn-01` validation, RFC 8737 §3 (and RFC 8738 §6 for IP identifiers).
//!
//! The CA connects to port 443 (here: `tlsalpn01_port`) of an address of the
//! identifier, offers TLS 1.2+ with ALPN exactly `acme-tls/1` and SNI set to
//! the identifier (for IP identifiers the reverse-mapping name, e.g.
//! `1.0.0.127.in-addr.arpa`, RFC 8738 §6). The certificate chain is not
//! verified (RFC 8737 §3: it is self-signed); the handshake signature is.
//! The certificate is parsed leniently (module `cert`): validity, issuer
//! and certificate signature are ignored.
//! Then:
//!
//! * the negotiated ALPN protocol must be `acme-tls/1` (RFC 8737 §3);
//! * the leaf must have exactly one subjectAltName entry, a dNSName equal to
//!   the domain (case-insensitive) or an iPAddress equal to the IP;
//! * it must carry the critical `id-pe-acmeIdentifier` extension
//!   (1.3.6.1.5.5.7.1.31, RFC 8737 §6.1) whose value is a DER OCTET STRING
//!   holding SHA-256(key authorization).
//!
//! Failures: handshake failure → `tls`; certificate/ALPN content wrong →
//! `incorrectResponse`.

use std::net::IpAddr;
use std::sync::Arc;

use der::asn1::ObjectIdentifier;
use der::asn1::OctetString;
use der::Decode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use super::cert::ChallengeCert;
use super::{
    connect_first, key_authorization_digest, normalize_dns_name, resolve, reverse_dns_name,
    ChallengeKind, Inner, Target, ValidationError,
};

/// The ALPN protocol id of RFC 8737 §6.2.
pub const ACME_TLS_1: &[u8] = b"acme-tls/1";

/// `id-pe-acmeIdentifier`, RFC 8737 §6.1.
pub const ID_PE_ACME_IDENTIFIER: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");

const ID_CE_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// Accepts any certificate chain but checks the handshake signature against
/// the leaf's public key with the provider's algorithms.
///
/// `rustls::crypto::verify_tls12_signature` / `verify_tls13_signature` cannot
/// be used here: they parse the leaf with webpki, which rejects every
/// certificate carrying an unknown *critical* extension
/// (`UnsupportedCriticalExtension`) — and RFC 8737 §3 requires the
/// acmeIdentifier extension to be critical. So the SubjectPublicKeyInfo is
/// extracted with `x509-cert` and the signature verified with the provider's
/// `SignatureVerificationAlgorithm`s directly, choosing the algorithm whose
/// public-key algorithm identifier matches the key (what webpki does too).
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<CryptoProvider>,
}

impl AcceptAnyCert {
    fn verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let bad_cert = |m: &str| rustls::Error::General(format!("peer certificate: {m}"));
        // RFC 8446 §4.2.3: no RSASSA-PKCS1-v1_5 or SHA-1 schemes in TLS 1.3.
        if tls13
            && matches!(
                dss.scheme,
                SignatureScheme::RSA_PKCS1_SHA1
                    | SignatureScheme::ECDSA_SHA1_Legacy
                    | SignatureScheme::RSA_PKCS1_SHA256
                    | SignatureScheme::RSA_PKCS1_SHA384
                    | SignatureScheme::RSA_PKCS1_SHA512
            )
        {
            return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        }
        let parsed = ChallengeCert::parse(cert.as_ref()).map_err(|m| bad_cert(&m))?;
        let candidates = self
            .provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        for alg in candidates {
            if alg.public_key_alg_id().as_ref() != parsed.key_alg_id.as_slice() {
                continue;
            }
            return alg
                .verify_signature(&parsed.public_key, message, dss.signature())
                .map(|()| HandshakeSignatureValid::assertion())
                .map_err(|_| {
                    rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
                });
        }
        Err(bad_cert(&format!(
            "key type does not match signature scheme {:?}",
            dss.scheme
        )))
    }
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // RFC 8737 §3: the challenge certificate is self-signed; only its
        // contents are checked, after the handshake.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS 1.2/1.3 client config with the aws-lc-rs provider, the given ALPN
/// list, and no chain verification (see [`AcceptAnyCert`]).
pub(crate) fn client_config(
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<rustls::ClientConfig>, ValidationError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ValidationError::Tls(format!("TLS client configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert { provider }))
        .with_no_client_auth();
    cfg.alpn_protocols = alpn;
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

pub(crate) async fn validate(
    inner: &Inner,
    target: &Target,
    key_authorization: &str,
) -> Result<(), ValidationError> {
    let kind = ChallengeKind::TlsAlpn01;
    let port = inner.cfg.tlsalpn01_port;
    let (sni, addrs, shown) = match target {
        Target::Dns(n) => {
            let name = normalize_dns_name(kind, n)?;
            let addrs = inner
                .resolver
                .lookup_ips(&name)
                .await
                .map_err(|f| resolve::address_error(kind, &name, f))?;
            (name.clone(), addrs, name)
        }
        Target::Ip(ip) => (reverse_dns_name(ip), vec![*ip], ip.to_string()),
    };
    let server_name = ServerName::try_from(sni.clone())
        .map_err(|e| ValidationError::Malformed(format!("{kind}: invalid SNI {sni:?}: {e}")))?;

    let (tcp, peer) = connect_first(
        kind,
        &inner.cfg.address_policy,
        &addrs,
        port,
        inner.cfg.timeout,
    )
    .await?;
    let connector = tokio_rustls::TlsConnector::from(inner.tls_alpn.clone());
    let tls = connector.connect(server_name, tcp).await.map_err(|e| {
        ValidationError::Tls(format!(
            "{kind}: TLS handshake with {peer} (SNI {sni}, ALPN acme-tls/1) failed: {e}"
        ))
    })?;
    let (_, conn) = tls.get_ref();

    match conn.alpn_protocol() {
        Some(p) if p == ACME_TLS_1 => {}
        Some(p) => {
            return Err(ValidationError::IncorrectResponse(format!(
                "{kind}: {peer} negotiated ALPN protocol {:?} instead of \"acme-tls/1\"",
                String::from_utf8_lossy(p)
            )))
        }
        None => {
            return Err(ValidationError::IncorrectResponse(format!(
                "{kind}: {peer} did not negotiate the \"acme-tls/1\" ALPN protocol"
            )))
        }
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| {
            ValidationError::IncorrectResponse(format!("{kind}: {peer} presented no certificate"))
        })?;
    check_certificate(leaf.as_ref(), target, &shown, key_authorization)
        .map_err(|m| ValidationError::IncorrectResponse(format!("{kind}: {peer} (SNI {sni}): {m}")))
}

/// The certificate checks of RFC 8737 §3. Returns a user-facing message on
/// failure.
pub(crate) fn check_certificate(
    der_bytes: &[u8],
    target: &Target,
    shown: &str,
    key_authorization: &str,
) -> Result<(), String> {
    let cert = ChallengeCert::parse(der_bytes)?;
    let exts = cert.extensions.as_slice();

    // subjectAltName: exactly one extension, exactly one entry.
    let sans: Vec<_> = exts
        .iter()
        .filter(|e| e.extn_id == ID_CE_SUBJECT_ALT_NAME)
        .collect();
    let san_ext = match sans.as_slice() {
        [one] => *one,
        [] => return Err("certificate has no subjectAltName extension".into()),
        _ => return Err("certificate has more than one subjectAltName extension".into()),
    };
    let san = SubjectAltName::from_der(san_ext.extn_value.as_bytes())
        .map_err(|e| format!("cannot parse subjectAltName: {e}"))?;
    let entry = match san.0.as_slice() {
        [one] => one,
        other => {
            return Err(format!(
                "certificate must have exactly one subjectAltName entry ({shown}), found {}",
                other.len()
            ))
        }
    };
    let san_ok = match (entry, target) {
        (GeneralName::DnsName(d), Target::Dns(name)) => {
            let want = name.strip_suffix('.').unwrap_or(name);
            let got = d.as_str();
            got.strip_suffix('.')
                .unwrap_or(got)
                .eq_ignore_ascii_case(want)
        }
        (GeneralName::IpAddress(o), Target::Ip(ip)) => match ip {
            IpAddr::V4(v4) => o.as_bytes() == v4.octets(),
            IpAddr::V6(v6) => o.as_bytes() == v6.octets(),
        },
        _ => false,
    };
    if !san_ok {
        return Err(format!(
            "certificate subjectAltName is {} but must be {shown}",
            describe_general_name(entry)
        ));
    }

    // id-pe-acmeIdentifier: exactly one, critical, OCTET STRING of the digest.
    let ids: Vec<_> = exts
        .iter()
        .filter(|e| e.extn_id == ID_PE_ACME_IDENTIFIER)
        .collect();
    let ext = match ids.as_slice() {
        [one] => *one,
        [] => {
            return Err(
                "certificate has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31, RFC 8737 §3)"
                    .into(),
            )
        }
        _ => return Err("certificate has more than one acmeIdentifier extension".into()),
    };
    if !ext.critical {
        return Err("the acmeIdentifier extension (1.3.6.1.5.5.7.1.31) must be critical".into());
    }
    let value = OctetString::from_der(ext.extn_value.as_bytes()).map_err(|e| {
        format!("the acmeIdentifier extension value is not a DER OCTET STRING: {e}")
    })?;
    let expected = key_authorization_digest(key_authorization);
    if value.as_bytes() != expected {
        return Err(format!(
            "the acmeIdentifier extension holds {} but SHA-256 of the key authorization is {}",
            hex(value.as_bytes()),
            hex(&expected)
        ));
    }
    Ok(())
}

fn describe_general_name(g: &GeneralName) -> String {
    match g {
        GeneralName::DnsName(d) => format!("DNS:{}", d.as_str()),
        GeneralName::IpAddress(o) => match o.as_bytes().len() {
            4 | 16 => {
                let b = o.as_bytes();
                let ip: IpAddr = if b.len() == 4 {
                    IpAddr::from([b[0], b[1], b[2], b[3]])
                } else {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    IpAddr::from(a)
                };
                format!("IP:{ip}")
            }
            _ => format!("IP:<{} bytes>", o.as_bytes().len()),
        },
        GeneralName::Rfc822Name(_) => "an email address".into(),
        GeneralName::UniformResourceIdentifier(_) => "a URI".into(),
        GeneralName::DirectoryName(_) => "a directory name".into(),
        _ => "an unsupported name type".into(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
