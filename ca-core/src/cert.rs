//! Parsing helpers for certificates we issued or stored (RFC 5280 §4.1),
//! and PEM encoding (RFC 7468).

use base64::Engine as _;
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
use x509_cert::Certificate;

use crate::error::CaError;
use crate::serial::Serial;

fn bad(e: impl std::fmt::Display) -> CaError {
    CaError::InvalidCertificate(e.to_string())
}

/// Parses a DER certificate strictly (trailing bytes rejected).
pub(crate) fn parse(der: &[u8]) -> Result<Certificate, CaError> {
    Certificate::from_der(der).map_err(bad)
}

pub(crate) fn time_to_offset(t: x509_cert::time::Time) -> Result<OffsetDateTime, CaError> {
    let secs = i64::try_from(t.to_unix_duration().as_secs()).map_err(bad)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(bad)
}

/// The certificate's serialNumber (RFC 5280 §4.1.2.2).
pub fn cert_serial(der: &[u8]) -> Result<Serial, CaError> {
    let c = parse(der)?;
    Serial::from_bytes(c.tbs_certificate().serial_number().as_bytes())
}

/// The keyIdentifier of the authorityKeyIdentifier extension
/// (RFC 5280 §4.2.1.1), if present.
pub fn cert_aki(der: &[u8]) -> Result<Option<Vec<u8>>, CaError> {
    let c = parse(der)?;
    let aki = c
        .tbs_certificate()
        .get_extension::<AuthorityKeyIdentifier>()
        .map_err(bad)?;
    Ok(aki.and_then(|(_, a)| a.key_identifier.map(|k| k.as_bytes().to_vec())))
}

/// The subjectKeyIdentifier extension value (RFC 5280 §4.2.1.2), if present.
pub fn cert_ski(der: &[u8]) -> Result<Option<Vec<u8>>, CaError> {
    let c = parse(der)?;
    let ski = c
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .map_err(bad)?;
    Ok(ski.map(|(_, s)| s.0.as_bytes().to_vec()))
}

/// The subjectPublicKey BIT STRING contents (RFC 5280 §4.1.2.7): the EC
/// point, the RSAPublicKey DER, or the raw Ed25519 key. Compare with
/// `Jwk::public_key_bits`.
pub fn cert_public_key_bits(der: &[u8]) -> Result<Vec<u8>, CaError> {
    let c = parse(der)?;
    let spki = c.tbs_certificate().subject_public_key_info();
    spki.subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| bad("subjectPublicKey has unused bits"))
}

/// The DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
pub fn cert_spki_der(der: &[u8]) -> Result<Vec<u8>, CaError> {
    let c = parse(der)?;
    c.tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(bad)
}

/// The DER encoding of the subject Name (RFC 5280 §4.1.2.6).
pub fn cert_subject_der(der: &[u8]) -> Result<Vec<u8>, CaError> {
    parse(der)?
        .tbs_certificate()
        .subject()
        .to_der()
        .map_err(bad)
}

/// The DER encoding of the issuer Name (RFC 5280 §4.1.2.4).
pub fn cert_issuer_der(der: &[u8]) -> Result<Vec<u8>, CaError> {
    parse(der)?.tbs_certificate().issuer().to_der().map_err(bad)
}

/// validity.notBefore (RFC 5280 §4.1.2.5).
pub fn cert_not_before(der: &[u8]) -> Result<OffsetDateTime, CaError> {
    time_to_offset(parse(der)?.tbs_certificate().validity().not_before)
}

/// validity.notAfter (RFC 5280 §4.1.2.5).
pub fn cert_not_after(der: &[u8]) -> Result<OffsetDateTime, CaError> {
    time_to_offset(parse(der)?.tbs_certificate().validity().not_after)
}

/// PEM-encodes `der` under `label` (e.g. "CERTIFICATE", "X509 CRL")
/// with 64-column lines and a trailing newline (RFC 7468 §2).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines() {
        let pem = pem_encode("X", &[0u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN X-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END X-----"));
        assert_eq!(pem_encode("X", &[]), "-----BEGIN X-----\n-----END X-----\n");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(cert_serial(b"").is_err());
        assert!(cert_aki(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert!(cert_not_after(&[0xff; 10]).is_err());
    }
}
