//! The pkcsPKIEnvelope (RFC 8894 §3.2.2): a CMS EnvelopedData (RFC 5652
//! §6) with one key-transport recipient, the RA for requests and the
//! client's signer certificate for a CertRep.
//!
//! Key transport: RSA PKCS#1 v1.5 (`rsaEncryption`) and RSAES-OAEP
//! (RFC 8017 §7.1, SHA-1 or SHA-256), which Windows sends. A failed
//! PKCS#1 v1.5 unwrap continues with a random key (RFC 5652 §14 /
//! RFC 3218 §2.3) so the answer does not tell a bad key block from bad
//! content.

use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::rsa::{
    OaepAlgorithm, OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey,
    PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo, RecipientInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, EncodingRules, Tagged};
use x509_cert::certificate::{CertificateInner, Profile};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use super::attributes::build;
use super::lenient::{EnvelopedData, IssuerAndSerial, KeyTransRecipient};
use super::{oids, ContentCipher, RaKey, ScepError};

/// An opened envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext: for PKCSReq/RenewalReq a DER PKCS#10 request
    /// (§3.3.1), for CertPoll an IssuerAndSubject, for GetCert an
    /// IssuerAndSerialNumber.
    pub content: Vec<u8>,
    /// The cipher the client used; the answer uses the same one.
    pub cipher: ContentCipher,
}

/// EnvelopedData (RFC 5652 §6.1) as we read it: like `cms`' type, but
/// the encryptedContent is kept raw so that its BER constructed form
/// (a [0] holding OCTET STRING chunks, which Go's pkcs7 and therefore
/// micromdm's scepclient send) can be accepted next to the primitive one.
#[derive(Debug, der::Sequence)]
struct LenientEnvelopedData {
    version: CmsVersion,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    originator_info: Option<cms::enveloped_data::OriginatorInfo>,
    recip_infos: RecipientInfos,
    encrypted_content: LenientEncryptedContentInfo,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    unprotected_attrs: Option<x509_cert::attr::Attributes>,
}

/// EncryptedContentInfo (RFC 5652 §6.1) with the [0] content kept raw.
#[derive(Debug, der::Sequence)]
struct LenientEncryptedContentInfo {
    content_type: der::asn1::ObjectIdentifier,
    content_enc_alg: AlgorithmIdentifierOwned,
    encrypted_content: Option<Any>,
}

/// The bytes of `[0] IMPLICIT OCTET STRING`, primitive or constructed
/// from OCTET STRING segments (X.690 §8.7.3).
fn implicit_octets(any: &Any) -> Result<Vec<u8>, ScepError> {
    let tag = any.tag();
    if tag.class() != der::Class::ContextSpecific || tag.number() != der::TagNumber(0) {
        return Err(ScepError::Malformed("encryptedContent tag".into()));
    }
    if !tag.is_constructed() {
        return Ok(any.value().to_vec());
    }
    let mut out = Vec::new();
    let mut reader = der::SliceReader::new_with_encoding_rules(any.value(), EncodingRules::Ber)?;
    while !der::Reader::is_finished(&reader) {
        let seg: OctetString = der::Decode::decode(&mut reader)?;
        out.extend_from_slice(seg.as_bytes());
    }
    Ok(out)
}

/// RSAES-OAEP-params (RFC 8017 appendix A.2.1).
#[derive(Debug, der::Sequence)]
struct OaepParams {
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", optional = "true", tag_mode = "EXPLICIT")]
    p_source: Option<AlgorithmIdentifierOwned>,
}

fn oaep_algorithm(alg: &AlgorithmIdentifierOwned) -> Result<&'static OaepAlgorithm, ScepError> {
    let hash = match &alg.parameters {
        None => None,
        Some(p) => p
            .decode_as_encoding::<OaepParams>(EncodingRules::Ber)
            .map_err(ScepError::from)?
            .hash
            .map(|h| h.oid),
    };
    match hash {
        None | Some(oids::SHA1) => Ok(&OAEP_SHA1_MGF1SHA1),
        Some(oids::SHA256) => Ok(&OAEP_SHA256_MGF1SHA256),
        Some(other) => Err(ScepError::UnsupportedAlgorithm(format!(
            "OAEP hash {other}"
        ))),
    }
}

fn addressed_to(cert: &Certificate, rid: &RecipientIdentifier) -> bool {
    let tbs = cert.tbs_certificate();
    match rid {
        RecipientIdentifier::IssuerAndSerialNumber(ias) => {
            tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
        }
        RecipientIdentifier::SubjectKeyIdentifier(ski) => {
            matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, s))) if &s == ski)
        }
    }
}

/// Opens a pkcsPKIEnvelope with the RA key.
pub fn decrypt_envelope(
    ra: &RaKey,
    envelope: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Decrypted, ScepError> {
    let info = ContentInfo::from_ber(envelope)?;
    if info.content_type != oids::ENVELOPED_DATA {
        return Err(ScepError::Malformed(
            "the content is not an EnvelopedData".into(),
        ));
    }
    let env: LenientEnvelopedData = info
        .content
        .decode_as_encoding(EncodingRules::Ber)
        .map_err(ScepError::from)?;
    let ktris: Vec<&KeyTransRecipientInfo> = env
        .recip_infos
        .0
        .iter()
        .filter_map(|r| match r {
            RecipientInfo::Ktri(k) => Some(k),
            _ => None,
        })
        .collect();
    let ktri = match ktris.iter().find(|k| addressed_to(&ra.cert, &k.rid)) {
        Some(k) => *k,
        // Some clients name the CA instead of the RA; with one recipient
        // the key decides.
        None if ktris.len() == 1 => ktris[0],
        None => return Err(ScepError::NotForUs),
    };

    let eci = &env.encrypted_content;
    let cipher = ContentCipher::from_oid(&eci.content_enc_alg.oid)?;
    let iv = match &eci.content_enc_alg.parameters {
        Some(p) if p.tag() == der::Tag::OctetString && p.value().len() == cipher.iv_len() => {
            p.value().to_vec()
        }
        _ => return Err(ScepError::Malformed("content cipher IV".into())),
    };
    let ciphertext = implicit_octets(
        eci.encrypted_content
            .as_ref()
            .ok_or_else(|| ScepError::Malformed("no encrypted content".into()))?,
    )?;

    let wrapped = ktri.enc_key.as_bytes();
    let mut buf = vec![0u8; ra.decrypting.key_size_bytes().max(wrapped.len())];
    let key: Vec<u8> = match ktri.key_enc_alg.oid {
        oids::RSA_ENCRYPTION => {
            let k = Pkcs1PrivateDecryptingKey::new(ra.decrypting.clone())
                .map_err(|_| ScepError::Decrypt("RA key"))?;
            match k.decrypt(wrapped, &mut buf) {
                Ok(key) if key.len() == cipher.key_len() => key.to_vec(),
                _ => {
                    let mut fake = vec![0u8; cipher.key_len()];
                    rng.fill(&mut fake)
                        .map_err(|_| ScepError::Decrypt("randomness"))?;
                    fake
                }
            }
        }
        oids::RSAES_OAEP => {
            let alg = oaep_algorithm(&ktri.key_enc_alg)?;
            let k = OaepPrivateDecryptingKey::new(ra.decrypting.clone())
                .map_err(|_| ScepError::Decrypt("RA key"))?;
            k.decrypt(alg, wrapped, &mut buf, None)
                .map_err(|_| ScepError::Decrypt("cannot decrypt"))?
                .to_vec()
        }
        other => {
            return Err(ScepError::UnsupportedAlgorithm(format!(
                "key transport {other}"
            )))
        }
    };
    let content = cipher
        .decrypt(&key, &iv, &ciphertext)
        .map_err(|_| ScepError::Decrypt("cannot decrypt"))?;
    Ok(Decrypted { content, cipher })
}

/// Encrypts `content` to `recipient` (its RSA key, PKCS#1 v1.5 key
/// transport) with `cipher`, as a ContentInfo holding an EnvelopedData
/// (RFC 8894 §3.3.2: the CertRep's pkcsPKIEnvelope).
pub fn encrypt_envelope<P: Profile>(
    recipient: &CertificateInner<P>,
    cipher: ContentCipher,
    content: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, ScepError> {
    encrypt_content(recipient, cipher, oids::DATA, content, rng)
}

/// Like [`encrypt_envelope`] with the encrypted content's type
/// `content_type` (RFC 5652 §6.1 EncryptedContentInfo.contentType); EST
/// uses it for a server-generated key (RFC 7030 §4.4.2, an
/// id-ct-KP-aKeyPackage, RFC 5958 §4).
pub fn encrypt_content<P: Profile>(
    recipient: &CertificateInner<P>,
    cipher: ContentCipher,
    content_type: der::asn1::ObjectIdentifier,
    content: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, ScepError> {
    let mut key = vec![0u8; cipher.key_len()];
    let mut iv = vec![0u8; cipher.iv_len()];
    rng.fill(&mut key).map_err(build)?;
    rng.fill(&mut iv).map_err(build)?;
    let ciphertext = cipher.encrypt(&key, &iv, content)?;

    let tbs = recipient.tbs_certificate();
    let public = PublicEncryptingKey::from_der(&tbs.subject_public_key_info().to_der()?)
        .map_err(|e| ScepError::SignerCertificate(format!("not an RSA key: {e}")))?;
    let public = Pkcs1PublicEncryptingKey::new(public).map_err(build)?;
    let mut wrapped = vec![0u8; public.ciphertext_size()];
    let wrapped = public.encrypt(&key, &mut wrapped).map_err(build)?.to_vec();

    // The recipient may be a transient certificate with a serial longer
    // than RFC 5280 allows (see `lenient`): named as it named itself.
    let ktri = KeyTransRecipient {
        version: CmsVersion::V0,
        rid: IssuerAndSerial::of(recipient)?,
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: oids::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        enc_key: OctetString::new(wrapped)?,
    };
    let mut recips = SetOfVec::new();
    recips.insert(Any::encode_from(&ktri)?)?;
    let env = EnvelopedData {
        version: CmsVersion::V0,
        recip_infos: recips,
        encrypted_content: EncryptedContentInfo {
            content_type,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(Any::encode_from(&OctetString::new(iv)?)?),
            },
            encrypted_content: Some(OctetString::new(ciphertext)?),
        },
    };
    let info = ContentInfo {
        content_type: oids::ENVELOPED_DATA,
        content: Any::from_der(&env.to_der()?)?,
    };
    Ok(info.to_der()?)
}
