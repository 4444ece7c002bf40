//! SCEP (RFC 8894) PKIMessages, sans I/O.
//!
//! A request is a CMS SignedData (RFC 8894 §3.1) whose signed attributes
//! carry the SCEP fields (§3.2.1) and whose content is an EnvelopedData
//! (§3.2.2) encrypted to the RA's RSA key. [`PkiMessage::decode`] reads and
//! verifies the outer layer, [`decrypt_envelope`] opens the inner one, and
//! [`CertRep`] builds the answer (§3.3.2).
//!
//! RSA and AES-independent hashing go through aws-lc-rs; the CBC content
//! ciphers (AES, 3DES, DES) through the RustCrypto block ciphers.

mod attributes;
mod cert_rep;
mod cert_rep_view;
mod cipher;
mod csr;
mod digest;
mod envelope;
mod error;
mod lenient;
mod next_ca;
mod oids;
mod pki_message;
mod ra;
mod request;
mod signer;
mod types;

pub use attributes::ScepAttributes;
pub use cert_rep::{CertRep, Reply};
pub use cert_rep_view::CertRepView;
pub use cipher::ContentCipher;
pub use csr::challenge_password;
pub use digest::DigestAlg;
pub use envelope::{decrypt_envelope, encrypt_content, encrypt_envelope, Decrypted};
pub use error::ScepError;
pub use lenient::SignerCertificate;
pub use next_ca::next_ca_cert;
pub use pki_message::{peek_attributes, PkiMessage, MAX_MESSAGE_LEN};
pub use ra::RaKey;
pub use request::{
    issuer_and_serial, parse_issuer_and_serial, parse_issuer_and_subject, IssuerAndSubject, Request,
};
pub use types::{FailInfo, MessageType, PkiStatus};
