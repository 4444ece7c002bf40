//! `OCSPRequest` decoding (RFC 6960 §4.1.1, profiled by RFC 5019 §2.1).
//!
//! ```text
//! OCSPRequest ::= SEQUENCE {
//!     tbsRequest                  TBSRequest,
//!     optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
//! TBSRequest ::= SEQUENCE {
//!     version             [0]     EXPLICIT Version DEFAULT v1,
//!     requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
//!     requestList                 SEQUENCE OF Request,
//!     requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
//! Request ::= SEQUENCE {
//!     reqCert                     CertID,
//!     singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
//! CertID ::= SEQUENCE {
//!     hashAlgorithm       AlgorithmIdentifier,
//!     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
//!     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
//!     serialNumber        CertificateSerialNumber }
//! ```
//!
//! Decoding is strict DER (X.690 §10), rejects trailing bytes and inputs
//! over [`MAX_REQUEST_SIZE`], and never panics. `optionalSignature` and
//! `requestorName` are accepted and ignored: RFC 5019 §2.1.2 says requests
//! are not signed, and we serve anyone.

use der::asn1::{Any, Int, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence, Tagged};
use x509_cert::ext::{Extension, Extensions};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::{
    OcspError, MAX_NONCE_LEN, MAX_REQUEST_SIZE, MIN_NONCE_LEN, OID_OCSP_NONCE, OID_OCSP_RESPONSE,
    OID_SHA1, OID_SHA256, OID_SHA384, OID_SHA512,
};

/// `CertID` (RFC 6960 §4.1.1): which certificate a request asks about.
/// Decoded strictly, so encoding it again (as the response echoes it,
/// RFC 6960 §4.2.1) yields the bytes the client sent.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertId {
    /// The hash algorithm of the two hashes below (SHA-1 per RFC 5019 §2.1.1,
    /// SHA-256 also common).
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// Hash of the DER of the issuer's subject Name.
    pub issuer_name_hash: OctetString,
    /// Hash of the issuer's subjectPublicKey BIT STRING value (without tag,
    /// length and unused-bits octet).
    pub issuer_key_hash: OctetString,
    /// The serial number of the certificate asked about (RFC 5280 §4.1.2.2).
    pub serial_number: Int,
}

/// A hash algorithm we can name in a CertID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// id-sha1 (RFC 5019 §2.1.1 requires responders to accept it).
    Sha1,
    /// id-sha256.
    Sha256,
    /// id-sha384.
    Sha384,
    /// id-sha512.
    Sha512,
}

impl CertIdHash {
    /// The algorithm's OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            CertIdHash::Sha1 => OID_SHA1,
            CertIdHash::Sha256 => OID_SHA256,
            CertIdHash::Sha384 => OID_SHA384,
            CertIdHash::Sha512 => OID_SHA512,
        }
    }
}

impl CertId {
    /// Builds a CertID with `hash`'s OID and NULL parameters (the form
    /// OpenSSL and most clients send).
    pub fn new(
        hash: CertIdHash,
        issuer_name_hash: &[u8],
        issuer_key_hash: &[u8],
        serial_der_content: &[u8],
    ) -> Result<CertId, OcspError> {
        Ok(CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: hash.oid(),
                parameters: Some(Any::from(der::asn1::Null)),
            },
            issuer_name_hash: OctetString::new(issuer_name_hash)?,
            issuer_key_hash: OctetString::new(issuer_key_hash)?,
            serial_number: Int::new(serial_der_content)?,
        })
    }

    /// The hash algorithm, if it is one we know. Parameters must be absent
    /// or NULL (RFC 5754 §2 allows both).
    pub fn hash(&self) -> Option<CertIdHash> {
        if let Some(p) = &self.hash_algorithm.parameters {
            if p.tag() != der::Tag::Null || !p.value().is_empty() {
                return None;
            }
        }
        [
            CertIdHash::Sha1,
            CertIdHash::Sha256,
            CertIdHash::Sha384,
            CertIdHash::Sha512,
        ]
        .into_iter()
        .find(|h| h.oid() == self.hash_algorithm.oid)
    }

    /// The serialNumber's DER INTEGER content octets (two's complement,
    /// minimal; may be negative or zero if a client sent that).
    pub fn serial_bytes(&self) -> &[u8] {
        self.serial_number.as_bytes()
    }

    /// The DER encoding of this CertID.
    pub fn to_der_bytes(&self) -> Result<Vec<u8>, OcspError> {
        self.to_der().map_err(|e| OcspError::Encode(e.to_string()))
    }
}

/// One `Request` of the `requestList` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleRequest {
    /// The certificate asked about.
    pub cert_id: CertId,
}

/// A decoded `OCSPRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspRequest {
    /// The `requestList`, in order (never empty).
    pub requests: Vec<SingleRequest>,
    /// The id-pkix-ocsp-nonce value (the content of the inner OCTET STRING,
    /// 1..=128 octets: RFC 8954 §2.1, RFC 9654 §2.1), to be echoed in the
    /// response (RFC 6960 §4.4.1).
    pub nonce: Option<Vec<u8>>,
    /// Whether the client sent `optionalSignature` (accepted, not verified:
    /// RFC 5019 §2.1.2).
    pub signed: bool,
}

#[derive(Sequence)]
struct OcspRequestAsn1 {
    tbs_request: TbsRequestAsn1,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    optional_signature: Option<Any>,
}

#[derive(Sequence)]
struct TbsRequestAsn1 {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<Int>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    requestor_name: Option<Any>,
    request_list: Vec<RequestAsn1>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    request_extensions: Option<Extensions>,
}

#[derive(Sequence)]
struct RequestAsn1 {
    req_cert: CertId,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    single_request_extensions: Option<Extensions>,
}

/// Extensions we understand in `requestExtensions`: the nonce (§4.4.1),
/// acceptable response types (§4.4.3, we only produce the basic type
/// every client accepts), preferred signature algorithms (§4.4.7,
/// advisory).
const OID_PREF_SIG_ALGS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.8");
/// Service locator (§4.4.6), a singleRequestExtension we may ignore.
const OID_SERVICE_LOCATOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.7");

fn check_extensions(exts: &[Extension], known: &[ObjectIdentifier]) -> Result<(), OcspError> {
    for (i, e) in exts.iter().enumerate() {
        if exts[..i].iter().any(|p| p.extn_id == e.extn_id) {
            return Err(OcspError::DuplicateExtension(e.extn_id));
        }
        if e.critical && !known.contains(&e.extn_id) {
            return Err(OcspError::UnsupportedCriticalExtension(e.extn_id));
        }
    }
    Ok(())
}

fn decode_nonce(ext: &Extension) -> Result<Vec<u8>, OcspError> {
    // RFC 8954 §2.1: extnValue holds the DER of `Nonce ::= OCTET STRING`.
    let inner = OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|e| OcspError::BadNonce(format!("not an OCTET STRING: {e}")))?;
    let n = inner.as_bytes();
    if n.len() < MIN_NONCE_LEN || n.len() > MAX_NONCE_LEN {
        return Err(OcspError::BadNonce(format!(
            "length {} outside {MIN_NONCE_LEN}..={MAX_NONCE_LEN}",
            n.len()
        )));
    }
    Ok(n.to_vec())
}

impl OcspRequest {
    /// Decodes a DER `OCSPRequest` (RFC 6960 §4.1.1).
    ///
    /// Errors (all → `malformedRequest`): input over [`MAX_REQUEST_SIZE`],
    /// anything that is not strict DER of the structure above (including
    /// truncation and trailing bytes), a version other than v1, an empty
    /// `requestList`, a nonce of 0 or more than 128 octets, a duplicated
    /// extension, or a critical extension we do not understand.
    pub fn from_der(bytes: &[u8]) -> Result<OcspRequest, OcspError> {
        if bytes.len() > MAX_REQUEST_SIZE {
            return Err(OcspError::TooLarge);
        }
        let req = OcspRequestAsn1::from_der(bytes)?;
        let tbs = req.tbs_request;
        if let Some(v) = &tbs.version {
            if v.as_bytes() != [0] {
                return Err(OcspError::Version(format!(
                    "0x{}",
                    v.as_bytes()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                )));
            }
        }
        let _ = tbs.requestor_name;
        if tbs.request_list.is_empty() {
            return Err(OcspError::NoRequests);
        }
        let mut nonce = None;
        if let Some(exts) = &tbs.request_extensions {
            check_extensions(
                exts,
                &[OID_OCSP_NONCE, OID_OCSP_RESPONSE, OID_PREF_SIG_ALGS],
            )?;
            if let Some(e) = exts.iter().find(|e| e.extn_id == OID_OCSP_NONCE) {
                nonce = Some(decode_nonce(e)?);
            }
        }
        let mut requests = Vec::with_capacity(tbs.request_list.len());
        for r in tbs.request_list {
            if let Some(exts) = &r.single_request_extensions {
                check_extensions(exts, &[OID_SERVICE_LOCATOR])?;
            }
            requests.push(SingleRequest {
                cert_id: r.req_cert,
            });
        }
        Ok(OcspRequest {
            requests,
            nonce,
            signed: req.optional_signature.is_some(),
        })
    }
}
