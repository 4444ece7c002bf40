//! How a `/serverkeygen` client wants its private key delivered
//! (RFC 7030 §4.4.1), and the encrypted form of that key (§4.4.2).
//!
//! - No key-identifier attribute in the template CSR: the key travels as an
//!   unencrypted PKCS#8 part inside the TLS channel.
//! - DecryptKeyIdentifier (§4.4.1.1, `id-aa-decryptKeyID`): encrypt with a
//!   symmetric key both sides know. Not offered (no such keys exist here).
//! - AsymmetricDecryptKeyIdentifier (§4.4.1.2, `id-aa-asymmDecryptKeyID`):
//!   encrypt to a public key the server knows under that identifier. The
//!   only public key of the client that ironseal knows is the one of the
//!   TLS client certificate the request authenticated with, so the
//!   identifier must name that certificate (its subjectKeyIdentifier, or
//!   RFC 5280 §4.2.1.2 method 1 when it has none). Key transport is RSA
//!   (PKCS#1 v1.5, RFC 5652 §6.2.1), the content AES-256-CBC.
//!
//! The encrypted key is an AsymmetricKeyPackage (RFC 5958 §2) of one
//! OneAsymmetricKey (the PKCS#8 key), content type id-ct-KP-aKeyPackage,
//! inside a CMS EnvelopedData (RFC 5958 §4). RFC 7030 §4.4.2 also puts a
//! SignedData by the key's generator between the two; ironseal leaves that
//! layer out (see docs/rfc-divergences.md): the answer comes over the
//! server-authenticated TLS channel, which already proves its origin.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SecureRandom;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode};
use thiserror::Error;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::request::CertReq;
use x509_cert::Certificate;

use crate::scep::{encrypt_content, ContentCipher};

/// RFC 7030 §4.4.1.1: `id-aa-decryptKeyID` (`id-aa` 37).
pub const OID_DECRYPT_KEY_ID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.37");
/// RFC 7030 §4.4.1.2: `id-aa-asymmDecryptKeyID` (`id-aa` 54).
pub const OID_ASYMMETRIC_DECRYPT_KEY_ID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.54");
/// RFC 5958 §4: `id-ct-KP-aKeyPackage`.
pub const OID_KEY_PACKAGE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.2.78.5");

/// What the template CSR asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyDelivery {
    /// No key-identifier attribute: the unencrypted PKCS#8.
    Plain,
    /// DecryptKeyIdentifier: encrypted with this symmetric key.
    Symmetric(Vec<u8>),
    /// AsymmetricDecryptKeyIdentifier: encrypted to this public key.
    Asymmetric(Vec<u8>),
}

/// Why a request for an encrypted key cannot be read or served.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyDeliveryError {
    /// The template is not a PKCS#10 request.
    #[error("CSR is not a valid PKCS#10 request: {0}")]
    Csr(String),
    /// A key-identifier attribute is malformed.
    #[error("{0} attribute must hold exactly one OCTET STRING (RFC 7030 section 4.4.1)")]
    Malformed(&'static str),
    /// Both attributes are present.
    #[error("the CSR asks for both symmetric and asymmetric encryption of the key (RFC 7030 section 4.4.1)")]
    Both,
    /// The recipient certificate cannot receive the key.
    #[error("{0}")]
    Recipient(String),
    /// Encoding or encryption failed.
    #[error("cannot encrypt the key: {0}")]
    Build(String),
}

/// The delivery the template CSR `csr_der` asks for (RFC 7030 §4.4.1).
pub fn requested_key_delivery(csr_der: &[u8]) -> Result<KeyDelivery, KeyDeliveryError> {
    let req = CertReq::from_der(csr_der).map_err(|e| KeyDeliveryError::Csr(e.to_string()))?;
    let one =
        |oid: ObjectIdentifier, name: &'static str| -> Result<Option<Vec<u8>>, KeyDeliveryError> {
            let mut attrs = req.info.attributes.iter().filter(|a| a.oid == oid);
            let Some(attr) = attrs.next() else {
                return Ok(None);
            };
            if attrs.next().is_some() {
                return Err(KeyDeliveryError::Malformed(name));
            }
            let mut values = attr.values.iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                return Err(KeyDeliveryError::Malformed(name));
            };
            let octets: OctetString = value
                .decode_as()
                .map_err(|_| KeyDeliveryError::Malformed(name))?;
            if octets.as_bytes().is_empty() {
                return Err(KeyDeliveryError::Malformed(name));
            }
            Ok(Some(octets.as_bytes().to_vec()))
        };
    let symmetric = one(OID_DECRYPT_KEY_ID, "DecryptKeyIdentifier")?;
    let asymmetric = one(
        OID_ASYMMETRIC_DECRYPT_KEY_ID,
        "AsymmetricDecryptKeyIdentifier",
    )?;
    match (symmetric, asymmetric) {
        (None, None) => Ok(KeyDelivery::Plain),
        (Some(s), None) => Ok(KeyDelivery::Symmetric(s)),
        (None, Some(a)) => Ok(KeyDelivery::Asymmetric(a)),
        (Some(_), Some(_)) => Err(KeyDeliveryError::Both),
    }
}

/// The key identifier of `cert`: its subjectKeyIdentifier, else the
/// SHA-1 of its subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1).
pub fn key_identifier(cert: &Certificate) -> Vec<u8> {
    let tbs = cert.tbs_certificate();
    if let Ok(Some((_, ski))) = tbs.get_extension::<SubjectKeyIdentifier>() {
        return ski.0.as_bytes().to_vec();
    }
    let bits = tbs.subject_public_key_info().subject_public_key.raw_bytes();
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bits)
        .as_ref()
        .to_vec()
}

/// The `application/pkcs7-mime; smime-type=server-generated-key` content
/// (RFC 7030 §4.4.2): a ContentInfo with an EnvelopedData, encrypted to
/// `recipient`'s RSA key, around an AsymmetricKeyPackage holding
/// `pkcs8_der` (RFC 5958 §2, §4).
pub fn encrypted_key_package(
    pkcs8_der: &[u8],
    recipient: &Certificate,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, KeyDeliveryError> {
    let build = |e: der::Error| KeyDeliveryError::Build(e.to_string());
    let key = Any::from_der(pkcs8_der).map_err(build)?;
    // AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey
    let package = vec![key].to_der().map_err(build)?;
    encrypt_content(
        recipient,
        ContentCipher::Aes256,
        OID_KEY_PACKAGE,
        &package,
        rng,
    )
    .map_err(|e| match e {
        crate::scep::ScepError::SignerCertificate(why) => KeyDeliveryError::Recipient(format!(
            "the client certificate's key cannot receive the encrypted key: {why} \
             (key transport needs an RSA key)"
        )),
        other => KeyDeliveryError::Build(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use der::asn1::SetOfVec;
    use x509_cert::attr::Attribute;

    /// `tests/vectors/est/csr-plain.der` with `attrs` added (the
    /// signature is not re-made: only the attributes are read here).
    fn with_attrs(attrs: Vec<Attribute>) -> Vec<u8> {
        let mut req =
            CertReq::from_der(include_bytes!("../../tests/vectors/est/csr-plain.der")).unwrap();
        for a in attrs {
            req.info.attributes.insert(a).unwrap();
        }
        req.to_der().unwrap()
    }

    fn attr(oid: ObjectIdentifier, values: Vec<Any>) -> Attribute {
        let mut set = SetOfVec::new();
        for v in values {
            set.insert(v).unwrap();
        }
        Attribute { oid, values: set }
    }

    fn octets(b: &[u8]) -> Any {
        Any::encode_from(&OctetString::new(b).unwrap()).unwrap()
    }

    #[test]
    fn reads_the_requested_delivery() {
        assert_eq!(
            requested_key_delivery(&with_attrs(vec![])).unwrap(),
            KeyDelivery::Plain
        );
        let asym = with_attrs(vec![attr(
            OID_ASYMMETRIC_DECRYPT_KEY_ID,
            vec![octets(b"\x01\x02")],
        )]);
        assert_eq!(
            requested_key_delivery(&asym).unwrap(),
            KeyDelivery::Asymmetric(vec![1, 2])
        );
        let sym = with_attrs(vec![attr(OID_DECRYPT_KEY_ID, vec![octets(b"k")])]);
        assert_eq!(
            requested_key_delivery(&sym).unwrap(),
            KeyDelivery::Symmetric(b"k".to_vec())
        );
        let both = with_attrs(vec![
            attr(OID_DECRYPT_KEY_ID, vec![octets(b"k")]),
            attr(OID_ASYMMETRIC_DECRYPT_KEY_ID, vec![octets(b"a")]),
        ]);
        assert_eq!(requested_key_delivery(&both), Err(KeyDeliveryError::Both));
        let not_octets = with_attrs(vec![attr(
            OID_ASYMMETRIC_DECRYPT_KEY_ID,
            vec![Any::encode_from(&der::asn1::Utf8StringRef::new("x").unwrap()).unwrap()],
        )]);
        assert!(matches!(
            requested_key_delivery(&not_octets),
            Err(KeyDeliveryError::Malformed(_))
        ));
        let empty = with_attrs(vec![attr(OID_ASYMMETRIC_DECRYPT_KEY_ID, vec![octets(b"")])]);
        assert!(matches!(
            requested_key_delivery(&empty),
            Err(KeyDeliveryError::Malformed(_))
        ));
        assert!(matches!(
            requested_key_delivery(b"junk"),
            Err(KeyDeliveryError::Csr(_))
        ));
    }

    #[test]
    fn an_ec_recipient_is_refused_with_a_reason() {
        let cert =
            Certificate::from_der(include_bytes!("../../tests/vectors/est/ec-cert.der")).unwrap();
        let e = encrypted_key_package(&[0x30, 0x00], &cert, &SystemRandom::new()).unwrap_err();
        assert!(
            matches!(&e, KeyDeliveryError::Recipient(why) if why.contains("RSA")),
            "{e:?}"
        );
        // openssl adds a subjectKeyIdentifier (SHA-1, 20 bytes).
        assert_eq!(key_identifier(&cert).len(), 20);
    }

    #[test]
    fn rsa_recipient_opens_the_key_package() {
        use cms::content_info::ContentInfo;
        use cms::enveloped_data::EnvelopedData;
        let cert_der = include_bytes!("../../tests/vectors/scep/micromdm-ca-ra.der");
        let ra = crate::scep::RaKey::new(
            cert_der,
            include_bytes!("../../tests/vectors/scep/micromdm-ca-ra.pk8"),
        )
        .unwrap();
        let cert = Certificate::from_der(cert_der).unwrap();
        let pkcs8 = include_bytes!("../../tests/vectors/scep/scepclient-2.1-client.pk8");
        let rng = SystemRandom::new();
        let p7 = encrypted_key_package(pkcs8, &cert, &rng).unwrap();
        let info = ContentInfo::from_der(&p7).unwrap();
        let env: EnvelopedData = info.content.decode_as().unwrap();
        assert_eq!(env.encrypted_content.content_type, OID_KEY_PACKAGE);
        let opened = crate::scep::decrypt_envelope(&ra, &p7, &rng).unwrap();
        assert_eq!(opened.cipher, ContentCipher::Aes256);
        let package: Vec<Any> = Vec::from_der(&opened.content).unwrap();
        assert_eq!(package.len(), 1);
        assert_eq!(package[0].to_der().unwrap(), pkcs8.to_vec());
    }
}
