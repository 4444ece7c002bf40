//! Object identifiers used by SCEP (RFC 8894 §3.2.1.1 and appendix A) and
//! the CMS algorithms it relies on (RFC 5652, RFC 8017, NIST).

use const_oid::ObjectIdentifier;

const fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

/// id-messageType (RFC 8894 §3.2.1.2).
pub const MESSAGE_TYPE: ObjectIdentifier = oid("2.16.840.1.113733.1.9.2");
/// id-pkiStatus (RFC 8894 §3.2.1.3).
pub const PKI_STATUS: ObjectIdentifier = oid("2.16.840.1.113733.1.9.3");
/// id-failInfo (RFC 8894 §3.2.1.4).
pub const FAIL_INFO: ObjectIdentifier = oid("2.16.840.1.113733.1.9.4");
/// id-senderNonce (RFC 8894 §3.2.1.5).
pub const SENDER_NONCE: ObjectIdentifier = oid("2.16.840.1.113733.1.9.5");
/// id-recipientNonce (RFC 8894 §3.2.1.5).
pub const RECIPIENT_NONCE: ObjectIdentifier = oid("2.16.840.1.113733.1.9.6");
/// id-transactionID (RFC 8894 §3.2.1.1).
pub const TRANSACTION_ID: ObjectIdentifier = oid("2.16.840.1.113733.1.9.7");

/// CMS contentType attribute (RFC 5652 §11.1).
pub const CONTENT_TYPE: ObjectIdentifier = oid("1.2.840.113549.1.9.3");
/// CMS messageDigest attribute (RFC 5652 §11.2).
pub const MESSAGE_DIGEST: ObjectIdentifier = oid("1.2.840.113549.1.9.4");
/// CMS signingTime attribute (RFC 5652 §11.3).
pub const SIGNING_TIME: ObjectIdentifier = oid("1.2.840.113549.1.9.5");

/// id-data (RFC 5652 §4).
pub const DATA: ObjectIdentifier = oid("1.2.840.113549.1.7.1");
/// id-signedData (RFC 5652 §5.1).
pub const SIGNED_DATA: ObjectIdentifier = oid("1.2.840.113549.1.7.2");
/// id-envelopedData (RFC 5652 §6.1).
pub const ENVELOPED_DATA: ObjectIdentifier = oid("1.2.840.113549.1.7.3");

/// rsaEncryption (RFC 8017 appendix C).
pub const RSA_ENCRYPTION: ObjectIdentifier = oid("1.2.840.113549.1.1.1");
/// id-RSAES-OAEP (RFC 8017 appendix C).
pub const RSAES_OAEP: ObjectIdentifier = oid("1.2.840.113549.1.1.7");
/// sha1WithRSAEncryption.
pub const SHA1_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.5");
/// sha256WithRSAEncryption.
pub const SHA256_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.11");
/// sha512WithRSAEncryption.
pub const SHA512_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.13");

/// id-sha1.
pub const SHA1: ObjectIdentifier = oid("1.3.14.3.2.26");
/// id-sha256.
pub const SHA256: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.1");
/// id-sha512.
pub const SHA512: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.3");

/// desCBC (OIW).
pub const DES_CBC: ObjectIdentifier = oid("1.3.14.3.2.7");
/// des-ede3-cbc (RFC 8018 appendix B.2.2).
pub const DES_EDE3_CBC: ObjectIdentifier = oid("1.2.840.113549.3.7");
/// id-aes128-CBC (RFC 3565).
pub const AES128_CBC: ObjectIdentifier = oid("2.16.840.1.101.3.4.1.2");
/// id-aes192-CBC (RFC 3565).
pub const AES192_CBC: ObjectIdentifier = oid("2.16.840.1.101.3.4.1.22");
/// id-aes256-CBC (RFC 3565).
pub const AES256_CBC: ObjectIdentifier = oid("2.16.840.1.101.3.4.1.42");
