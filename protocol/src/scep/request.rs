//! Building a request PKIMessage as a client does (RFC 8894 §3.2, §3.3):
//! PKCSReq, RenewalReq, CertPoll, GetCert and GetCRL. The server never
//! sends these; the conformance suite, the benchmark and the fuzz seeds
//! use them to speak SCEP where no real client covers a message type.

use std::time::Duration;

use aws_lc_rs::rand::SecureRandom;
use cms::cert::IssuerAndSerialNumber;
use der::{Decode, Encode, Sequence};
use x509_cert::attr::Attributes;
use x509_cert::name::Name;
use x509_cert::Certificate;

use super::attributes::{build, octets_attr, printable_attr};
use super::signer::sign_message;
use super::{encrypt_envelope, oids, ContentCipher, DigestAlg, MessageType, RaKey, ScepError};

/// IssuerAndSubject (RFC 8894 §3.3.3): what CertPoll asks about.
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub struct IssuerAndSubject {
    /// The CA's name.
    pub issuer: Name,
    /// The subject of the request being polled.
    pub subject: Name,
}

/// A request to encode.
#[derive(Debug)]
pub struct Request<'a> {
    /// PKCSReq, RenewalReq, CertPoll, GetCert or GetCRL.
    pub message_type: MessageType,
    /// transactionID (§3.2.1.1).
    pub transaction_id: &'a str,
    /// The content to encrypt to the RA: a CSR (PKCSReq, RenewalReq),
    /// an IssuerAndSubject (CertPoll) or an IssuerAndSerialNumber
    /// (GetCert, GetCRL), DER.
    pub content: &'a [u8],
    /// The RA certificate the content is encrypted to.
    pub recipient: &'a Certificate,
    /// The content cipher.
    pub cipher: ContentCipher,
    /// The signature digest.
    pub digest: DigestAlg,
}

impl Request<'_> {
    /// Encrypts the content, signs with `signer` (a self-signed
    /// certificate for PKCSReq, the existing certificate for RenewalReq)
    /// and returns the PKIMessage (DER) and its senderNonce.
    pub fn encode(
        &self,
        signer: &RaKey,
        now: Duration,
        rng: &dyn SecureRandom,
    ) -> Result<(Vec<u8>, Vec<u8>), ScepError> {
        let envelope = encrypt_envelope(self.recipient, self.cipher, self.content, rng)?;
        let mut nonce = vec![0u8; 16];
        rng.fill(&mut nonce).map_err(build)?;
        let mut attrs = Attributes::new();
        let mut add = |a| attrs.insert(a).map_err(build);
        add(printable_attr(oids::TRANSACTION_ID, self.transaction_id)?)?;
        add(printable_attr(
            oids::MESSAGE_TYPE,
            self.message_type.as_str(),
        )?)?;
        add(octets_attr(oids::SENDER_NONCE, &nonce)?)?;
        let der = sign_message(attrs, Some(envelope), signer, self.digest, now, rng)?;
        Ok((der, nonce))
    }
}

/// The IssuerAndSerialNumber (DER) that names `cert` (GetCert, GetCRL).
pub fn issuer_and_serial(cert_der: &[u8]) -> Result<Vec<u8>, ScepError> {
    let cert = Certificate::from_der(cert_der)?;
    let tbs = cert.tbs_certificate();
    Ok(IssuerAndSerialNumber {
        issuer: tbs.issuer().clone(),
        serial_number: tbs.serial_number().clone(),
    }
    .to_der()?)
}

/// Reads the IssuerAndSerialNumber of a GetCert or GetCRL (§3.3.4,
/// §3.3.5).
pub fn parse_issuer_and_serial(der: &[u8]) -> Result<IssuerAndSerialNumber, ScepError> {
    Ok(IssuerAndSerialNumber::from_der(der)?)
}

/// Reads the IssuerAndSubject of a CertPoll (§3.3.3).
pub fn parse_issuer_and_subject(der: &[u8]) -> Result<IssuerAndSubject, ScepError> {
    Ok(IssuerAndSubject::from_der(der)?)
}
