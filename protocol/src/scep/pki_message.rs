//! Decoding and verifying a request PKIMessage (RFC 8894 §3.1, §3.2): a
//! CMS SignedData (RFC 5652 §5) with one signer whose signed attributes
//! carry the SCEP fields and whose content is the pkcsPKIEnvelope.
//! BER, including indefinite lengths, is accepted (Apple and EJBCA send
//! it); the signed attributes are verified over their DER encoding
//! (RFC 5652 §5.4).

use aws_lc_rs::signature::UnparsedPublicKey;
use cms::content_info::ContentInfo;
use der::{Decode, Encode, EncodingRules, Tagged};
use x509_cert::attr::Attributes;

use super::attributes::{message_digest, single};
use super::digest::check_rsa_signature_alg;
use super::lenient::{SignedData, SignerCertificate};
use super::{oids, DigestAlg, ScepAttributes, ScepError};

/// Largest PKIMessage we decode (a CSR with a big key and a few
/// certificates fits easily).
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// A request whose signature over its signed attributes verified.
#[derive(Debug, Clone)]
pub struct PkiMessage {
    /// The SCEP attributes (§3.2.1).
    pub attributes: ScepAttributes,
    /// The signer's certificate, DER as sent: self-signed for PKCSReq
    /// (§2.3), the existing certificate for RenewalReq.
    pub signer_cert_der: Vec<u8>,
    /// The signer's certificate, decoded (any serial length, see
    /// [`SignerCertificate`]).
    pub signer_cert: SignerCertificate,
    /// The signer's digest algorithm (the answer uses it too, SHA-1 aside).
    pub digest: DigestAlg,
    /// The encapsulated content: the pkcsPKIEnvelope (a ContentInfo with
    /// an EnvelopedData), still encrypted.
    pub envelope: Vec<u8>,
}

fn malformed(what: &str) -> ScepError {
    ScepError::Malformed(what.to_owned())
}

/// A SignedData whose single signer's signature verified.
pub(crate) struct Verified {
    pub(crate) attrs: Attributes,
    pub(crate) signer_cert: SignerCertificate,
    pub(crate) signer_cert_der: Vec<u8>,
    pub(crate) digest: DigestAlg,
    pub(crate) content: Option<Vec<u8>>,
}

/// Decodes `bytes` (DER or BER) as a ContentInfo holding a SignedData with
/// one signer, finds the signer certificate, checks messageDigest against
/// the content (empty when absent) and the RSA signature over the signed
/// attributes (RFC 5652 §5.4, §5.6).
pub(crate) fn verify_signed(bytes: &[u8]) -> Result<Verified, ScepError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(malformed("message too large"));
    }
    let info = ContentInfo::from_ber(bytes)?;
    if info.content_type != oids::SIGNED_DATA {
        return Err(malformed("not a SignedData"));
    }
    let signed: SignedData = info
        .content
        .decode_as_encoding(EncodingRules::Ber)
        .map_err(ScepError::from)?;
    let signers = signed.signers()?;
    let mut signers = signers.iter();
    let (Some(signer), None) = (signers.next(), signers.next()) else {
        return Err(malformed("a PKIMessage has exactly one signer"));
    };
    let content = match signed.encap_content_info.econtent.as_ref() {
        None => None,
        Some(c) if c.tag() == der::Tag::OctetString => Some(c.value().to_vec()),
        Some(_) => return Err(malformed("encapsulated content is not an OCTET STRING")),
    };

    let (signer_cert, signer_cert_der) =
        signed.certificate_named(&signer.sid).ok_or_else(|| {
            ScepError::SignerCertificate("the signer's certificate is not in the message".into())
        })?;

    let digest = DigestAlg::from_oid(&signer.digest_alg.oid)?;
    check_rsa_signature_alg(&signer.signature_algorithm.oid, digest)?;
    let attrs = signer
        .signed_attrs
        .clone()
        .ok_or(ScepError::Attribute("signedAttrs"))?;
    if let Some(ct) = single(&attrs, oids::CONTENT_TYPE, "contentType")? {
        if ct.value() != oids::DATA.as_bytes() {
            return Err(ScepError::Attribute("contentType"));
        }
    }
    if message_digest(&attrs)? != digest.digest(content.as_deref().unwrap_or(&[])) {
        return Err(ScepError::BadSignature);
    }
    let spki = signer_cert.tbs_certificate().subject_public_key_info();
    if spki.algorithm.oid != oids::RSA_ENCRYPTION {
        return Err(ScepError::UnsupportedAlgorithm(format!(
            "signer key {}",
            spki.algorithm.oid
        )));
    }
    // Verify over the bytes as sent (RFC 5652 §5.4): a signer that does
    // not sort its SET OF attributes would fail against a re-encoding.
    let signed_attrs_der = match original_signed_attrs(&info.content) {
        Some(raw) => raw,
        None => attrs.to_der()?,
    };
    UnparsedPublicKey::new(
        digest.rsa_verification(),
        spki.subject_public_key.raw_bytes(),
    )
    .verify(&signed_attrs_der, signer.signature.as_bytes())
    .map_err(|_| ScepError::BadSignature)?;
    Ok(Verified {
        attrs,
        signer_cert,
        signer_cert_der,
        digest,
        content,
    })
}

/// The first SignerInfo's signedAttrs as sent, re-tagged as the SET OF
/// that the signature covers (RFC 5652 §5.4).
fn original_signed_attrs(signed_data: &der::Any) -> Option<Vec<u8>> {
    use der::{Any, Reader, SliceReader};
    let elements = |bytes: &[u8]| -> Option<Vec<Any>> {
        let mut r = SliceReader::new_with_encoding_rules(bytes, EncodingRules::Ber).ok()?;
        let mut out = Vec::new();
        while !r.is_finished() {
            out.push(Any::decode(&mut r).ok()?);
        }
        Some(out)
    };
    let signer_infos = elements(signed_data.value())?.pop()?;
    let signer = elements(signer_infos.value())?.into_iter().next()?;
    let attrs = elements(signer.value())?.into_iter().nth(3)?;
    let tag = attrs.tag();
    if tag.class() != der::Class::ContextSpecific || tag.number() != der::TagNumber(0) {
        return None;
    }
    Any::new(der::Tag::Set, attrs.value()).ok()?.to_der().ok()
}

impl PkiMessage {
    /// Decodes and verifies a request (see [`verify_signed`]) and reads
    /// its SCEP attributes; a request must carry a pkcsPKIEnvelope.
    pub fn decode(bytes: &[u8]) -> Result<Self, ScepError> {
        let v = verify_signed(bytes)?;
        let envelope = v
            .content
            .ok_or_else(|| malformed("no encapsulated content"))?;
        Ok(PkiMessage {
            attributes: ScepAttributes::from_signed_attrs(&v.attrs)?,
            signer_cert_der: v.signer_cert_der,
            signer_cert: v.signer_cert,
            digest: v.digest,
            envelope,
        })
    }
}

/// The SCEP attributes of a message whose verification failed, read
/// without trusting them, so that the failure CertRep can still name the
/// transaction (RFC 8894 §3.3.2.2). `None` when they cannot be read.
pub fn peek_attributes(bytes: &[u8]) -> Option<ScepAttributes> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return None;
    }
    let info = ContentInfo::from_ber(bytes).ok()?;
    let signed: SignedData = info.content.decode_as_encoding(EncodingRules::Ber).ok()?;
    let signer = signed.signers().ok()?.into_iter().next()?;
    ScepAttributes::from_signed_attrs(signer.signed_attrs.as_ref()?).ok()
}
