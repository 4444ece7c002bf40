//! The CertRep answer (RFC 8894 §3.3.2): a SignedData by the RA whose
//! signed attributes carry transactionID, messageType (3), pkiStatus,
//! failInfo (on failure), senderNonce and recipientNonce (§3.2.1) next to
//! the CMS contentType, messageDigest and signingTime (RFC 5652 §11), and
//! whose content on success is a pkcsPKIEnvelope holding a degenerate
//! certs-only SignedData with the issued certificate (§3.3.2.1).

use std::time::Duration;

use super::SignerCertificate;
use aws_lc_rs::rand::SecureRandom;
use x509_cert::attr::Attributes;

use super::attributes::{build, octets_attr, printable_attr};
use super::signer::sign_message;
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
        /// CRLs for the degenerate SignedData (GetCRL, §3.3.2.1).
        crls: Vec<&'a [u8]>,
        /// Who can open the envelope.
        recipient: &'a SignerCertificate,
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
                crls,
                recipient,
                cipher,
            } => {
                let degenerate = crate::pkcs7::degenerate(certs, crls).map_err(build)?;
                Some(encrypt_envelope(recipient, *cipher, &degenerate, rng)?)
            }
            _ => None,
        };
        let digest = reply.digest.for_answer();

        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce).map_err(build)?;
        let mut attrs = Attributes::new();
        let mut add = |a| attrs.insert(a).map_err(build);
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
        sign_message(attrs, content, ra, digest, now, rng)
    }
}
