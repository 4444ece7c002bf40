//! The CertRep answer (RFC 8894 §3.3.2): a SignedData by the RA whose
//! signed attributes carry transactionID, messageType (3), pkiStatus,
//! failInfo (on failure), senderNonce and recipientNonce (§3.2.1) next to
//! the CMS contentType, messageDigest and signingTime (RFC 5652 §11), and
//! whose content on success is a pkcsPKIEnvelope holding a degenerate
//! certs-only SignedData with the issued certificate (§3.3.2.1).

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
use x509_cert::Certificate;

use super::attributes::{any_attr, build, octets_attr, printable_attr};
use super::{
    encrypt_envelope, oids, ContentCipher, DigestAlg, FailInfo, MessageType, PkiStatus, RaKey,
    ScepError,
};

/// What a CertRep says.
#[derive(Debug)]
pub enum CertRep<'a> {
    /// SUCCESS: `certs` (the issued certificate first, DER) encrypted to
    /// `recipient` (the request's signer certificate) with `cipher`, the
    /// client's own content cipher.
    Success {
        /// Certificates for the degenerate SignedData.
        certs: Vec<&'a [u8]>,
        /// Who can open the envelope.
        recipient: &'a Certificate,
        /// The request's content cipher.
        cipher: ContentCipher,
    },
    /// FAILURE with a reason.
    Failure(FailInfo),
    /// PENDING: waiting for manual approval (§3.3.2.2).
    Pending,
}

/// Fields every CertRep copies from its request.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    /// The request's transactionID.
    pub transaction_id: &'a str,
    /// The request's senderNonce, answered as recipientNonce.
    pub recipient_nonce: &'a [u8],
    /// The digest to sign with (the request's, SHA-1 raised to SHA-256).
    pub digest: DigestAlg,
}

impl CertRep<'_> {
    /// The pkiStatus this answer carries.
    pub fn status(&self) -> PkiStatus {
        match self {
            CertRep::Success { .. } => PkiStatus::Success,
            CertRep::Failure(_) => PkiStatus::Failure,
            CertRep::Pending => PkiStatus::Pending,
        }
    }

    /// Encodes and signs the CertRep with the RA key. `now` (since the
    /// Unix epoch) becomes signingTime; `rng` supplies the senderNonce and
    /// the envelope's key and IV.
    pub fn encode(
        &self,
        reply: Reply<'_>,
        ra: &RaKey,
        now: Duration,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, ScepError> {
        let content = match self {
            CertRep::Success {
                certs,
                recipient,
                cipher,
            } => {
                let degenerate = crate::pkcs7::certs_only(certs).map_err(build)?;
                Some(encrypt_envelope(recipient, *cipher, &degenerate, rng)?)
            }
            _ => None,
        };
        let digest = reply.digest.for_answer();

        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce).map_err(build)?;
        let mut attrs = Attributes::new();
        let mut add = |a| attrs.insert(a).map_err(build);
        add(any_attr(oids::CONTENT_TYPE, &oids::DATA)?)?;
        add(octets_attr(
            oids::MESSAGE_DIGEST,
            &digest.digest(content.as_deref().unwrap_or(&[])),
        )?)?;
        let time = UtcTime::from_unix_duration(now).map_err(build)?;
        add(any_attr(oids::SIGNING_TIME, &Time::UtcTime(time))?)?;
        add(printable_attr(oids::TRANSACTION_ID, reply.transaction_id)?)?;
        add(printable_attr(
            oids::MESSAGE_TYPE,
            MessageType::CertRep.as_str(),
        )?)?;
        add(printable_attr(oids::PKI_STATUS, self.status().as_str())?)?;
        if let CertRep::Failure(info) = self {
            add(printable_attr(oids::FAIL_INFO, info.as_str())?)?;
        }
        add(octets_attr(oids::SENDER_NONCE, &nonce)?)?;
        add(octets_attr(oids::RECIPIENT_NONCE, reply.recipient_nonce)?)?;

        let to_sign = attrs.to_der()?;
        let mut sig = vec![0u8; ra.signing.public_modulus_len()];
        let padding: &'static dyn signature::RsaEncoding = match digest {
            DigestAlg::Sha512 => &signature::RSA_PKCS1_SHA512,
            _ => &signature::RSA_PKCS1_SHA256,
        };
        ra.signing
            .sign(padding, rng, &to_sign, &mut sig)
            .map_err(build)?;

        let tbs = ra.cert.tbs_certificate();
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
        certs.insert(CertificateChoices::Certificate(ra.cert.clone()))?;
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
}
