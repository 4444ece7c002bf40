//! Degenerate "certs-only" CMS SignedData (RFC 5652 §5, RFC 8894 §3.4,
//! RFC 7030 §4.1.3): a SignedData with no content and no signers that only
//! carries certificates. SCEP's GetCACert (`application/x-x509-ca-ra-cert`),
//! its CertRep payload and EST's `/cacerts` and `/simpleenroll` answers all
//! use this one shape.

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::revocation::{RevocationInfoChoice, RevocationInfoChoices};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode};
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

/// Why a certs-only message could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum CertsOnlyError {
    /// A certificate (or the message) is not valid DER.
    #[error("invalid DER: {0}")]
    Der(#[from] der::Error),
    /// The message is CMS but not a SignedData.
    #[error("content type {0} is not signedData")]
    NotSignedData(String),
}

/// Encodes `certs` (each a DER X.509 certificate) as a degenerate
/// certs-only SignedData wrapped in a ContentInfo, DER encoded.
///
/// The SET OF certificates is emitted in DER order (sorted by encoding),
/// as DER requires; clients must not rely on the order (RFC 7030 §4.1.3).
pub fn certs_only(certs: &[&[u8]]) -> Result<Vec<u8>, CertsOnlyError> {
    degenerate(certs, &[])
}

/// Encodes a degenerate SignedData carrying `certs` and `crls` (each DER),
/// as SCEP's GetCRL answer does with one CRL (RFC 8894 §3.3.2.1).
pub fn degenerate(certs: &[&[u8]], crls: &[&[u8]]) -> Result<Vec<u8>, CertsOnlyError> {
    let mut set = SetOfVec::new();
    for der in certs {
        set.insert(CertificateChoices::Certificate(Certificate::from_der(der)?))?;
    }
    let mut crl_set = SetOfVec::new();
    for der in crls {
        crl_set.insert(RevocationInfoChoice::Crl(CertificateList::from_der(der)?))?;
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: const_oid::db::rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: (!set.is_empty()).then_some(CertificateSet(set)),
        crls: (!crl_set.is_empty()).then_some(RevocationInfoChoices(crl_set)),
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    let info = ContentInfo {
        content_type: const_oid::db::rfc5911::ID_SIGNED_DATA,
        content: Any::from_der(&signed.to_der()?)?,
    };
    Ok(info.to_der()?)
}

/// The certificates (DER) of a CMS ContentInfo holding a SignedData, in
/// the order they appear. Signers, if any, are ignored.
pub fn certificates_of(message: &[u8]) -> Result<Vec<Vec<u8>>, CertsOnlyError> {
    let info = ContentInfo::from_der(message)?;
    if info.content_type != const_oid::db::rfc5911::ID_SIGNED_DATA {
        return Err(CertsOnlyError::NotSignedData(info.content_type.to_string()));
    }
    let signed: SignedData = info.content.decode_as()?;
    let mut out = Vec::new();
    for choice in signed.certificates.iter().flat_map(|s| s.0.iter()) {
        if let CertificateChoices::Certificate(c) = choice {
            out.push(c.to_der()?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &[u8] = include_bytes!("../tests/vectors/pkcs7/root.der");
    const RA: &[u8] = include_bytes!("../tests/vectors/pkcs7/ra.der");
    /// `openssl crl2pkcs7 -nocrl` of the two certificates above.
    const OPENSSL: &[u8] = include_bytes!("../tests/vectors/pkcs7/openssl-crl2pkcs7-nocrl.p7b");

    fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        v.sort();
        v
    }

    #[test]
    fn round_trips_the_certificates() {
        let msg = certs_only(&[RA, ROOT]).unwrap();
        assert_eq!(
            sorted(certificates_of(&msg).unwrap()),
            sorted(vec![ROOT.to_vec(), RA.to_vec()])
        );
        // One certificate is still a SignedData (EST /simpleenroll).
        assert_eq!(
            certificates_of(&certs_only(&[ROOT]).unwrap()).unwrap(),
            vec![ROOT.to_vec()]
        );
    }

    #[test]
    fn reads_what_openssl_writes() {
        assert_eq!(
            sorted(certificates_of(OPENSSL).unwrap()),
            sorted(vec![ROOT.to_vec(), RA.to_vec()])
        );
    }

    #[test]
    fn refuses_garbage_and_other_content_types() {
        assert!(certs_only(&[b"not a certificate"]).is_err());
        assert!(certificates_of(b"\x30\x03\x02\x01\x00").is_err());
        assert!(certificates_of(&OPENSSL[..OPENSSL.len() - 1]).is_err());
        // A ContentInfo of type id-data is not a SignedData.
        let octets = der::asn1::OctetString::new(vec![1]).unwrap();
        let info = ContentInfo {
            content_type: const_oid::db::rfc5911::ID_DATA,
            content: Any::from_der(&octets.to_der().unwrap()).unwrap(),
        };
        assert!(matches!(
            certificates_of(&info.to_der().unwrap()),
            Err(CertsOnlyError::NotSignedData(_))
        ));
    }
}
