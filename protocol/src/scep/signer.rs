//! Signing a SCEP message (RFC 8894 §3.1): a CMS SignedData (RFC 5652
//! §5) with one RSA signer whose signed attributes are the SCEP fields
//! plus contentType, messageDigest and signingTime (RFC 5652 §11), and
//! whose content, when there is one, is a pkcsPKIEnvelope. CertReps and
//! requests share it.

use std::time::Duration;

use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use x509_cert::attr::Attributes;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;

use super::attributes::{any_attr, build, octets_attr};
use super::{oids, DigestAlg, RaKey, ScepError};

/// Adds contentType, messageDigest (over `content`, empty when absent) and
/// signingTime (`now` since the Unix epoch) to `attrs`, signs them with
/// `key` (RSA PKCS#1 v1.5 with `digest`, never SHA-1) and wraps everything in a
/// ContentInfo, DER encoded. `key`'s certificate travels in the message.
pub(crate) fn sign_message(
    mut attrs: Attributes,
    content: Option<Vec<u8>>,
    key: &RaKey,
    digest: DigestAlg,
    now: Duration,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, ScepError> {
    let mut add = |a| attrs.insert(a).map_err(build);
    add(any_attr(oids::CONTENT_TYPE, &oids::DATA)?)?;
    add(octets_attr(
        oids::MESSAGE_DIGEST,
        &digest.digest(content.as_deref().unwrap_or(&[])),
    )?)?;
    let time = UtcTime::from_unix_duration(now).map_err(build)?;
    add(any_attr(oids::SIGNING_TIME, &Time::UtcTime(time))?)?;

    let to_sign = attrs.to_der()?;
    let mut sig = vec![0u8; key.signing.public_modulus_len()];
    let padding: &'static dyn signature::RsaEncoding = match digest {
        DigestAlg::Sha512 => &signature::RSA_PKCS1_SHA512,
        DigestAlg::Sha256 => &signature::RSA_PKCS1_SHA256,
        DigestAlg::Sha1 => {
            return Err(ScepError::UnsupportedAlgorithm(
                "we never sign with SHA-1".into(),
            ))
        }
    };
    key.signing
        .sign(padding, rng, &to_sign, &mut sig)
        .map_err(build)?;

    let tbs = key.cert.tbs_certificate();
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        digest_alg: AlgorithmIdentifierOwned {
            oid: digest.oid(),
            parameters: None,
        },
        signed_attrs: Some(attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: oids::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(sig)?,
        unsigned_attrs: None,
    };
    let mut digests = SetOfVec::new();
    digests.insert(AlgorithmIdentifierOwned {
        oid: digest.oid(),
        parameters: None,
    })?;
    let mut certs = SetOfVec::new();
    certs.insert(CertificateChoices::Certificate(key.cert.clone()))?;
    let mut signers = SetOfVec::new();
    signers.insert(signer)?;
    let econtent = match content {
        Some(c) => Some(Any::encode_from(&OctetString::new(c)?)?),
        None => None,
    };
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: digests,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oids::DATA,
            econtent,
        },
        certificates: Some(CertificateSet(certs)),
        crls: None,
        signer_infos: SignerInfos(signers),
    };
    let info = ContentInfo {
        content_type: oids::SIGNED_DATA,
        content: Any::from_der(&signed.to_der()?)?,
    };
    Ok(info.to_der()?)
}
