//! Lenient parsing of tls-alpn-01 challenge certificates.
//!
//! RFC 8737 §3 puts no requirement on the validity period, issuer or
//! signature of the self-signed challenge certificate, and real responders
//! produce odd ones: pebble-challtestsrv (Go `x509.CreateCertificate` with a
//! zero `NotBefore`/`NotAfter`) encodes validity as GeneralizedTime year 0001,
//! which `x509_cert::Certificate` refuses (der's `DateTime` starts at 1970).
//! This parser therefore decodes only what the validator needs — the
//! SubjectPublicKeyInfo (to check the TLS handshake signature) and the
//! extensions — and skips every other TBSCertificate field as raw DER
//! (RFC 5280 §4.1 layout).

use der::asn1::{AnyRef, BitStringRef};
use der::{Decode, Encode, Sequence};
use x509_cert::ext::Extension;
use x509_cert::spki::SubjectPublicKeyInfoRef;

#[derive(Sequence)]
struct LenientTbs<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<AnyRef<'a>>,
    serial_number: AnyRef<'a>,
    signature: AnyRef<'a>,
    issuer: AnyRef<'a>,
    validity: AnyRef<'a>,
    subject: AnyRef<'a>,
    subject_public_key_info: SubjectPublicKeyInfoRef<'a>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    issuer_unique_id: Option<BitStringRef<'a>>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    subject_unique_id: Option<BitStringRef<'a>>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct LenientCert<'a> {
    tbs_certificate: LenientTbs<'a>,
    signature_algorithm: AnyRef<'a>,
    signature: BitStringRef<'a>,
}

/// The parts of a challenge certificate the validator uses.
pub(crate) struct ChallengeCert {
    /// Contents (without the outer SEQUENCE header) of the SPKI
    /// AlgorithmIdentifier, comparable with
    /// `SignatureVerificationAlgorithm::public_key_alg_id()`.
    pub(crate) key_alg_id: Vec<u8>,
    /// The subjectPublicKey bits.
    pub(crate) public_key: Vec<u8>,
    /// All extensions (empty if none).
    pub(crate) extensions: Vec<Extension>,
}

impl ChallengeCert {
    /// Parses DER; the error is a short user-facing reason.
    pub(crate) fn parse(der_bytes: &[u8]) -> Result<ChallengeCert, String> {
        let c = LenientCert::from_der(der_bytes)
            .map_err(|e| format!("cannot parse the certificate: {e}"))?;
        let spki = &c.tbs_certificate.subject_public_key_info;
        let alg = spki
            .algorithm
            .to_der()
            .map_err(|e| format!("cannot encode the key algorithm: {e}"))?;
        let key_alg_id = AnyRef::from_der(&alg)
            .map_err(|e| format!("cannot decode the key algorithm: {e}"))?
            .value()
            .to_vec();
        let public_key = spki
            .subject_public_key
            .as_bytes()
            .ok_or("the public key is not a whole number of bytes")?
            .to_vec();
        Ok(ChallengeCert {
            key_alg_id,
            public_key,
            extensions: c.tbs_certificate.extensions.unwrap_or_default(),
        })
    }
}
