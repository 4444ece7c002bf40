//! Reading a CertRep (RFC 8894 §3.3.2) as a client does: used by the
//! tests and the conformance suite to check what the server answered.

use super::attributes::{optional_string, ScepAttributes};
use super::pki_message::verify_signed;
use super::{oids, ScepError};

/// A CertRep whose RA signature verified.
#[derive(Debug, Clone)]
pub struct CertRepView {
    /// transactionID, messageType (3) and senderNonce.
    pub attributes: ScepAttributes,
    /// pkiStatus as sent ("0", "2" or "3").
    pub pki_status: String,
    /// failInfo as sent, on failure.
    pub fail_info: Option<String>,
    /// recipientNonce.
    pub recipient_nonce: Option<Vec<u8>>,
    /// The RA certificate that signed it, DER.
    pub signer_cert_der: Vec<u8>,
    /// The pkcsPKIEnvelope on success.
    pub envelope: Option<Vec<u8>>,
}

impl CertRepView {
    /// Decodes and verifies a CertRep.
    pub fn decode(bytes: &[u8]) -> Result<Self, ScepError> {
        let v = verify_signed(bytes)?;
        let pki_status = optional_string(&v.attrs, oids::PKI_STATUS, "pkiStatus")?
            .ok_or(ScepError::Attribute("pkiStatus"))?;
        let fail_info = optional_string(&v.attrs, oids::FAIL_INFO, "failInfo")?;
        let recipient_nonce =
            super::attributes::single(&v.attrs, oids::RECIPIENT_NONCE, "recipientNonce")?
                .map(|a| a.value().to_vec());
        Ok(CertRepView {
            attributes: ScepAttributes::from_signed_attrs(&v.attrs)?,
            pki_status,
            fail_info,
            recipient_nonce,
            signer_cert_der: v.signer_cert_der,
            envelope: v.content,
        })
    }
}
