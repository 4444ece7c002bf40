//! Proof that a CSR was made for this TLS connection (RFC 7030 §3.5).
//!
//! RFC 7030 §3.5 has the client put the base64 of the connection's
//! tls-unique value (RFC 5929) into the CSR's challengePassword attribute
//! (RFC 2985 §5.4.1), and the server compare it with its own. TLS 1.3 has
//! no tls-unique; RFC 9266 defines `tls-exporter` as its replacement: the
//! TLS keying-material exporter (RFC 8446 §7.5) with label
//! [`TLS_EXPORTER_LABEL`], no context and [`TLS_EXPORTER_LEN`] bytes. We
//! carry that value where RFC 7030 §3.5 carries tls-unique (see
//! `docs/rfc-divergences.md`).

use base64::Engine;
use der::asn1::ObjectIdentifier;
use der::{Decode, Tag, Tagged};
use thiserror::Error;
use x509_cert::request::CertReq;

/// RFC 9266 §2: the exporter label of the `tls-exporter` channel binding.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// RFC 9266 §2: the `tls-exporter` value is 32 bytes.
pub const TLS_EXPORTER_LEN: usize = 32;

/// PKCS#9 challengePassword (RFC 2985 §5.4.1).
const OID_CHALLENGE_PASSWORD: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");

/// Why the channel binding check failed. The text goes into the 400/403
/// body, so it says what was expected, never the expected value.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChannelBindingError {
    /// The CSR is not a PKCS#10 request.
    #[error("CSR is not a valid PKCS#10 request: {0}")]
    Csr(String),
    /// The CSR's challengePassword attribute is malformed.
    #[error("challengePassword attribute is malformed: {0}")]
    Malformed(&'static str),
    /// The label requires channel binding and the CSR has no challengePassword.
    #[error("this EST label requires channel binding: put the base64 of the TLS exporter value (RFC 9266 tls-exporter) in the CSR's challengePassword (RFC 7030 section 3.5)")]
    Missing,
    /// The connection has no exporter value (not TLS 1.3 / no TLS).
    #[error("channel binding needs a TLS 1.3 connection (RFC 9266)")]
    NoExporter,
    /// The challengePassword does not carry this connection's value.
    #[error("challengePassword does not match this TLS connection's tls-exporter value (RFC 7030 section 3.5, RFC 9266)")]
    Mismatch,
}

/// The challengePassword of a DER PKCS#10 request, if it has one. The
/// signature is not checked here (the authority does that).
pub fn challenge_password(csr_der: &[u8]) -> Result<Option<String>, ChannelBindingError> {
    let req = CertReq::from_der(csr_der).map_err(|e| ChannelBindingError::Csr(e.to_string()))?;
    let mut attrs = req
        .info
        .attributes
        .iter()
        .filter(|a| a.oid == OID_CHALLENGE_PASSWORD);
    let Some(attr) = attrs.next() else {
        return Ok(None);
    };
    if attrs.next().is_some() {
        return Err(ChannelBindingError::Malformed("more than one attribute"));
    }
    let mut values = attr.values.iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ChannelBindingError::Malformed("not exactly one value"));
    };
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {}
        _ => return Err(ChannelBindingError::Malformed("not a DirectoryString")),
    }
    String::from_utf8(value.value().to_vec())
        .map(Some)
        .map_err(|_| ChannelBindingError::Malformed("not valid text"))
}

/// Checks that `password` (the CSR's challengePassword) is the base64 of
/// `exporter` (this connection's tls-exporter value). Surrounding
/// whitespace and missing padding are tolerated; the comparison of the
/// decoded bytes runs in constant time.
pub fn verify_channel_binding(
    password: Option<&str>,
    exporter: Option<&[u8]>,
) -> Result<(), ChannelBindingError> {
    let exporter = exporter.ok_or(ChannelBindingError::NoExporter)?;
    let password = password.ok_or(ChannelBindingError::Missing)?;
    let trimmed = password.trim().trim_end_matches('=');
    let got = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .map_err(|_| ChannelBindingError::Mismatch)?;
    if got.len() != exporter.len() {
        return Err(ChannelBindingError::Mismatch);
    }
    let diff = got
        .iter()
        .zip(exporter)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 {
        Ok(())
    } else {
        Err(ChannelBindingError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
    /// -subj /CN=d1 -addext ... ` with challengePassword "s3cret" (see
    /// tests/vectors/est/README).
    const CSR_WITH_PW: &[u8] = include_bytes!("../../tests/vectors/est/csr-challenge-s3cret.der");
    const CSR_PLAIN: &[u8] = include_bytes!("../../tests/vectors/est/csr-plain.der");

    #[test]
    fn extracts_challenge_password() {
        assert_eq!(
            challenge_password(CSR_WITH_PW).unwrap().as_deref(),
            Some("s3cret")
        );
        assert_eq!(challenge_password(CSR_PLAIN).unwrap(), None);
        assert!(matches!(
            challenge_password(b"\x30\x00"),
            Err(ChannelBindingError::Csr(_))
        ));
    }

    #[test]
    fn exporter_value_matches_only_itself() {
        let exp = [7u8; TLS_EXPORTER_LEN];
        let good = base64::engine::general_purpose::STANDARD.encode(exp);
        assert_eq!(verify_channel_binding(Some(&good), Some(&exp)), Ok(()));
        let unpadded = good.trim_end_matches('=').to_string();
        assert_eq!(verify_channel_binding(Some(&unpadded), Some(&exp)), Ok(()));
        let other = base64::engine::general_purpose::STANDARD.encode([8u8; TLS_EXPORTER_LEN]);
        assert_eq!(
            verify_channel_binding(Some(&other), Some(&exp)),
            Err(ChannelBindingError::Mismatch)
        );
        assert_eq!(
            verify_channel_binding(Some("s3cret"), Some(&exp)),
            Err(ChannelBindingError::Mismatch)
        );
        assert_eq!(
            verify_channel_binding(None, Some(&exp)),
            Err(ChannelBindingError::Missing)
        );
        assert_eq!(
            verify_channel_binding(Some(&good), None),
            Err(ChannelBindingError::NoExporter)
        );
    }
}
