//! Signer certificates whose serial number is longer than RFC 5280
//! §4.1.2.2 allows (20 octets).
//!
//! RFC 8894 §2.3 lets a client sign its first request with a transient
//! self-signed certificate, and nothing checks that certificate against
//! RFC 5280. certmonger (`scep-submit`) uses its transactionID, a SHA-256
//! of the key, as the serial: 32 octets (33 with the sign byte). `cms`'
//! types hold serials in the RFC 5280 profile, which refuses that, so
//! the signer side of a SignedData is read here with the same derived
//! types but `x509-cert`'s `Raw` profile (no serial length check), and a
//! CertRep envelope to such a certificate is written with a recipient
//! identifier of the same kind (RFC 5652 §6.2.1). Everything else is
//! `cms`' own types.

use cms::content_info::CmsVersion;
use cms::enveloped_data::EncryptedContentInfo;
use cms::signed_data::EncapsulatedContentInfo;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, EncodingRules};
use x509_cert::attr::Attributes;
use x509_cert::certificate::{CertificateInner, Raw};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::ScepError;

/// A message signer's certificate: any serial length.
pub type SignerCertificate = CertificateInner<Raw>;

/// IssuerAndSerialNumber (RFC 5652 §10.2.4) with any serial length.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
pub(crate) struct IssuerAndSerial {
    pub(crate) issuer: Name,
    pub(crate) serial_number: SerialNumber<Raw>,
}

impl IssuerAndSerial {
    /// The issuer and serial of `cert`, of either profile.
    pub(crate) fn of<P: x509_cert::certificate::Profile>(
        cert: &CertificateInner<P>,
    ) -> Result<Self, ScepError> {
        let tbs = cert.tbs_certificate();
        Ok(IssuerAndSerial {
            issuer: tbs.issuer().clone(),
            // Re-read under the Raw profile: `SerialNumber::new` would
            // apply the 20-octet limit whatever the profile.
            serial_number: SerialNumber::<Raw>::from_der(&tbs.serial_number().to_der()?)?,
        })
    }
}

/// SignerIdentifier (RFC 5652 §5.3).
#[derive(Clone, Debug, Eq, PartialEq, der::Choice)]
pub(crate) enum SignerId {
    IssuerAndSerialNumber(IssuerAndSerial),
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    SubjectKeyIdentifier(SubjectKeyIdentifier),
}

impl SignerId {
    /// Whether `cert` is the certificate this identifier names.
    pub(crate) fn names(&self, cert: &SignerCertificate) -> bool {
        let tbs = cert.tbs_certificate();
        match self {
            SignerId::IssuerAndSerialNumber(ias) => {
                tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
            }
            SignerId::SubjectKeyIdentifier(ski) => {
                matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, s))) if &s == ski)
            }
        }
    }
}

/// SignerInfo (RFC 5652 §5.3).
#[derive(Clone, Debug, der::Sequence)]
pub(crate) struct SignerInfo {
    pub(crate) version: CmsVersion,
    pub(crate) sid: SignerId,
    pub(crate) digest_alg: AlgorithmIdentifierOwned,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub(crate) signed_attrs: Option<Attributes>,
    pub(crate) signature_algorithm: AlgorithmIdentifierOwned,
    pub(crate) signature: OctetString,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub(crate) unsigned_attrs: Option<Attributes>,
}

/// SignedData (RFC 5652 §5.1) with certificates, CRLs and signer infos
/// kept as raw elements, read one by one.
#[derive(Clone, Debug, der::Sequence)]
pub(crate) struct SignedData {
    pub(crate) version: CmsVersion,
    pub(crate) digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    pub(crate) encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) certificates: Option<SetOfVec<Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) crls: Option<SetOfVec<Any>>,
    pub(crate) signer_infos: SetOfVec<Any>,
}

impl SignedData {
    /// The signer infos.
    pub(crate) fn signers(&self) -> Result<Vec<SignerInfo>, ScepError> {
        self.signer_infos
            .iter()
            .map(|a| Ok(a.decode_as_encoding::<SignerInfo>(EncodingRules::Ber)?))
            .collect()
    }

    /// The certificate that `sid` names, with its encoding as sent.
    pub(crate) fn certificate_named(&self, sid: &SignerId) -> Option<(SignerCertificate, Vec<u8>)> {
        self.certificates
            .iter()
            .flat_map(|s| s.iter())
            .find_map(|a| {
                let cert: SignerCertificate = a.decode_as_encoding(EncodingRules::Ber).ok()?;
                let der = cert.to_der().ok()?;
                sid.names(&cert).then_some((cert, der))
            })
    }
}

/// KeyTransRecipientInfo (RFC 5652 §6.2.1), issuerAndSerialNumber form.
/// A RecipientInfo CHOICE's ktri alternative is untagged, so a SET OF
/// these (encoded) is a RecipientInfos.
#[derive(Clone, Debug, der::Sequence)]
pub(crate) struct KeyTransRecipient {
    pub(crate) version: CmsVersion,
    pub(crate) rid: IssuerAndSerial,
    pub(crate) key_enc_alg: AlgorithmIdentifierOwned,
    pub(crate) enc_key: OctetString,
}

/// EnvelopedData (RFC 5652 §6.1) as we write it: no originatorInfo, no
/// unprotectedAttrs, key-transport recipients (encoded
/// [`KeyTransRecipient`]s).
#[derive(Clone, Debug, der::Sequence)]
pub(crate) struct EnvelopedData {
    pub(crate) version: CmsVersion,
    pub(crate) recip_infos: SetOfVec<Any>,
    pub(crate) encrypted_content: EncryptedContentInfo,
}
