//! The RA's RSA identity (RFC 8894 §2.1.1, §3.5.1): the certificate
//! clients encrypt their requests to and that signs every CertRep.
//! RSA is required because SCEP uses key transport (§3.2.2).

use aws_lc_rs::rsa::PrivateDecryptingKey;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use der::Decode;
use x509_cert::Certificate;

use super::ScepError;

/// The RA certificate and its RSA private key.
pub struct RaKey {
    pub(crate) cert_der: Vec<u8>,
    pub(crate) cert: Certificate,
    pub(crate) signing: RsaKeyPair,
    pub(crate) decrypting: PrivateDecryptingKey,
}

impl std::fmt::Debug for RaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaKey")
            .field("serial", &self.cert.tbs_certificate().serial_number())
            .finish_non_exhaustive()
    }
}

impl RaKey {
    /// Loads the RA certificate (DER) and its PKCS#8 RSA private key; the
    /// key must be the certificate's.
    pub fn new(cert_der: &[u8], pkcs8: &[u8]) -> Result<Self, ScepError> {
        let cert = Certificate::from_der(cert_der)?;
        let signing =
            RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| ScepError::Build(format!("RA key: {e}")))?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(pkcs8)
            .map_err(|e| ScepError::Build(format!("RA key: {e}")))?;
        let spki_key = cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes();
        if signing.public_key().as_ref() != spki_key {
            return Err(ScepError::Build(
                "the RA key does not match the RA certificate".into(),
            ));
        }
        Ok(RaKey {
            cert_der: cert_der.to_vec(),
            cert,
            signing,
            decrypting,
        })
    }

    /// The RA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }
}
