//! `OCSPResponse` encoding (RFC 6960 §4.2.1, RFC 5019 §2.2).
//!
//! ```text
//! OCSPResponse ::= SEQUENCE {
//!    responseStatus         OCSPResponseStatus,
//!    responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
//! ResponseBytes ::= SEQUENCE {
//!    responseType   OBJECT IDENTIFIER,        -- id-pkix-ocsp-basic
//!    response       OCTET STRING }            -- DER of BasicOCSPResponse
//! BasicOCSPResponse ::= SEQUENCE {
//!    tbsResponseData      ResponseData,
//!    signatureAlgorithm   AlgorithmIdentifier,
//!    signature            BIT STRING,
//!    certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//! ResponseData ::= SEQUENCE {
//!    version              [0] EXPLICIT Version DEFAULT v1,
//!    responderID              ResponderID,
//!    producedAt               GeneralizedTime,
//!    responses                SEQUENCE OF SingleResponse,
//!    responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
//! ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
//! SingleResponse ::= SEQUENCE {
//!    certID                       CertID,
//!    certStatus                   CertStatus,
//!    thisUpdate                   GeneralizedTime,
//!    nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
//!    singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
//! CertStatus ::= CHOICE {
//!    good        [0]     IMPLICIT NULL,
//!    revoked     [1]     IMPLICIT RevokedInfo,
//!    unknown     [2]     IMPLICIT UnknownInfo }
//! RevokedInfo ::= SEQUENCE {
//!    revocationTime              GeneralizedTime,
//!    revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
//! ```
//!
//! The module is EXPLICIT TAGS, so `byKey [2]` wraps the OCTET STRING.
//! We always use `byKey` (RFC 5019 §2.2.3 allows either; it is shorter and
//! independent of name encoding) and omit `version` (DEFAULT v1, X.690 §11.5).

use der::asn1::GeneralizedTime;
use der::{Decode, Enumerated};

use super::der_write::{
    bit_string, enumerated, explicit, generalized_time, implicit_constructed, implicit_primitive,
    octet_string, oid, seq,
};
use super::request::CertId;
use super::{OcspError, OID_OCSP_BASIC, OID_OCSP_NONCE};

/// `OCSPResponseStatus` (RFC 6960 §4.2.1). Value 4 is unused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Enumerated)]
#[repr(u8)]
pub enum ResponseStatus {
    /// Response has valid confirmations.
    Successful = 0,
    /// Illegal confirmation request.
    MalformedRequest = 1,
    /// Internal error in issuer.
    InternalError = 2,
    /// Try again later.
    TryLater = 3,
    /// Must sign the request.
    SigRequired = 5,
    /// Request unauthorized (RFC 5019 §2.2.3: the responder is not
    /// authoritative for the certificate's issuer).
    Unauthorized = 6,
}

/// `CertStatus` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// `good`: not revoked (RFC 6960 §2.2).
    Good,
    /// `revoked` with `RevokedInfo`.
    Revoked {
        /// revocationTime.
        revocation_time: GeneralizedTime,
        /// revocationReason: a CRLReason code (RFC 5280 §5.3.1); `None`
        /// omits the field (as for reason unspecified).
        reason: Option<u8>,
    },
    /// `unknown`: the responder does not know the certificate.
    Unknown,
}

/// One `SingleResponse` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleResponse {
    /// The CertID from the request, echoed.
    pub cert_id: CertId,
    /// The status.
    pub status: CertStatus,
    /// thisUpdate: when the status is known to be correct.
    pub this_update: GeneralizedTime,
    /// nextUpdate: RFC 5019 §2.2.4 requires it for pre-produced responses.
    pub next_update: Option<GeneralizedTime>,
}

impl SingleResponse {
    fn to_der(&self) -> Result<Vec<u8>, OcspError> {
        let cert_id = self.cert_id.to_der_bytes()?;
        let status = match &self.status {
            CertStatus::Good => implicit_primitive(0, &[]),
            CertStatus::Revoked {
                revocation_time,
                reason,
            } => {
                let mut content = generalized_time(revocation_time)?;
                if let Some(r) = reason {
                    content.extend(explicit(0, &enumerated(*r)));
                }
                implicit_constructed(1, &content)
            }
            // UnknownInfo ::= NULL
            CertStatus::Unknown => implicit_primitive(2, &[]),
        };
        let this_update = generalized_time(&self.this_update)?;
        let next_update = match &self.next_update {
            Some(t) => explicit(0, &generalized_time(t)?),
            None => Vec::new(),
        };
        Ok(seq(&[&cert_id, &status, &this_update, &next_update]))
    }
}

/// `ResponseData`, the part that is signed (RFC 6960 §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseData {
    /// `ResponderID byKey`: the SHA-1 hash of the responder's
    /// subjectPublicKey BIT STRING value (RFC 6960 §4.2.1 `KeyHash`).
    pub responder_key_hash: Vec<u8>,
    /// producedAt: when this response was signed.
    pub produced_at: GeneralizedTime,
    /// The responses, one per CertID asked about.
    pub responses: Vec<SingleResponse>,
    /// The request's nonce, echoed as the id-pkix-ocsp-nonce response
    /// extension (RFC 6960 §4.4.1, RFC 8954 §2.1).
    pub nonce: Option<Vec<u8>>,
}

impl ResponseData {
    /// The DER of `tbsResponseData`. Sign exactly these bytes and pass them,
    /// unchanged, to [`encode_basic_response`].
    pub fn to_der(&self) -> Result<Vec<u8>, OcspError> {
        let responder_id = explicit(2, &octet_string(&self.responder_key_hash));
        let produced_at = generalized_time(&self.produced_at)?;
        let mut responses = Vec::new();
        for r in &self.responses {
            responses.extend(r.to_der()?);
        }
        let responses = seq(&[&responses]);
        let extensions = match &self.nonce {
            Some(n) => {
                // Extension { extnID, critical DEFAULT FALSE (omitted), extnValue }
                let ext = seq(&[&oid(&OID_OCSP_NONCE)?, &octet_string(&octet_string(n))]);
                explicit(1, &seq(&[&ext]))
            }
            None => Vec::new(),
        };
        Ok(seq(&[&responder_id, &produced_at, &responses, &extensions]))
    }
}

/// Assembles a `BasicOCSPResponse` (RFC 6960 §4.2.1) from the signed
/// `tbs_response_data` bytes, the DER `AlgorithmIdentifier` of the
/// signature, the signature value, and the certificates that help the
/// client verify it (RFC 6960 §4.2.2.2: the delegated responder certificate).
pub fn encode_basic_response(
    tbs_response_data: &[u8],
    signature_algorithm: &[u8],
    signature: &[u8],
    certs: &[&[u8]],
) -> Vec<u8> {
    let certs = if certs.is_empty() {
        Vec::new()
    } else {
        explicit(0, &seq(certs))
    };
    seq(&[
        tbs_response_data,
        signature_algorithm,
        &bit_string(signature),
        &certs,
    ])
}

/// Wraps a DER `BasicOCSPResponse` into a `successful` `OCSPResponse`
/// (RFC 6960 §4.2.1, responseType id-pkix-ocsp-basic).
pub fn encode_successful_response(basic_ocsp_response: &[u8]) -> Result<Vec<u8>, OcspError> {
    let bytes = seq(&[&oid(&OID_OCSP_BASIC)?, &octet_string(basic_ocsp_response)]);
    Ok(seq(&[
        &enumerated(ResponseStatus::Successful as u8),
        &explicit(0, &bytes),
    ]))
}

/// An unsigned `OCSPResponse` carrying only an error status (RFC 6960
/// §2.3: "error messages are not signed"). `Successful` has no meaning
/// without `responseBytes` and is sent as `internalError`.
pub fn encode_error_response(status: ResponseStatus) -> Vec<u8> {
    let s = match status {
        ResponseStatus::Successful => ResponseStatus::InternalError,
        s => s,
    };
    seq(&[&enumerated(s as u8)])
}

#[derive(der::Sequence)]
struct OcspResponseHead {
    response_status: ResponseStatus,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    response_bytes: Option<der::asn1::Any>,
}

/// Reads the `responseStatus` of a DER `OCSPResponse` (for tests and
/// diagnostics; clients verify responses themselves).
pub fn response_status(ocsp_response: &[u8]) -> Result<ResponseStatus, OcspError> {
    Ok(OcspResponseHead::from_der(ocsp_response)?.response_status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsp::request::CertIdHash;

    fn t(secs: u64) -> GeneralizedTime {
        GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs)).unwrap()
    }

    #[test]
    fn error_responses() {
        assert_eq!(
            encode_error_response(ResponseStatus::MalformedRequest),
            vec![0x30, 0x03, 0x0a, 0x01, 0x01]
        );
        assert_eq!(
            encode_error_response(ResponseStatus::Unauthorized),
            vec![0x30, 0x03, 0x0a, 0x01, 0x06]
        );
        for s in [
            ResponseStatus::MalformedRequest,
            ResponseStatus::InternalError,
            ResponseStatus::TryLater,
            ResponseStatus::SigRequired,
            ResponseStatus::Unauthorized,
        ] {
            assert_eq!(response_status(&encode_error_response(s)).unwrap(), s);
        }
        assert_eq!(
            response_status(&encode_error_response(ResponseStatus::Successful)).unwrap(),
            ResponseStatus::InternalError
        );
    }

    #[test]
    fn response_data_shape() {
        let id = CertId::new(CertIdHash::Sha1, &[1; 20], &[2; 20], &[0x01, 0x02]).unwrap();
        let rd = ResponseData {
            responder_key_hash: vec![9; 20],
            produced_at: t(1_700_000_000),
            responses: vec![SingleResponse {
                cert_id: id,
                status: CertStatus::Revoked {
                    revocation_time: t(1_600_000_000),
                    reason: Some(1),
                },
                this_update: t(1_700_000_000),
                next_update: Some(t(1_700_086_400)),
            }],
            nonce: Some(vec![7; 16]),
        };
        let der = rd.to_der().unwrap();
        assert_eq!(der[0], 0x30);
        // byKey [2] EXPLICIT OCTET STRING (20)
        assert_eq!(&der[1..7], &[0x81, der[2], 0xa2, 22, 0x04, 20]);
        let basic = encode_basic_response(&der, &[0x30, 0x00], &[1, 2, 3], &[&[0x30, 0x00]]);
        let full = encode_successful_response(&basic).unwrap();
        assert_eq!(response_status(&full).unwrap(), ResponseStatus::Successful);
        assert!(response_status(&full[..full.len() - 1]).is_err());
    }
}
