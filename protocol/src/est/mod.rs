//! EST wire formats (RFC 7030, updated by RFC 8951 and RFC 9266), no I/O.
//!
//! - [`basic_auth`]: the `Authorization: Basic` header (RFC 7030 §3.2.3,
//!   RFC 7617 §2).
//! - [`body`]: request bodies (base64 PKCS#10) decoded the ways devices send
//!   them: wrapped or not, PEM armoured or not, with or without
//!   `Content-Transfer-Encoding: base64` (RFC 8951 §3), and the base64
//!   framing of responses (RFC 4648 §4, one unbroken line).
//! - [`csrattrs`]: the `/csrattrs` answer, `CsrAttrs` (RFC 7030 §4.5.2).
//! - [`serverkeygen`]: the `/serverkeygen` `multipart/mixed` answer
//!   (RFC 7030 §4.4.2).
//! - [`key_delivery`]: the key encryption a `/serverkeygen` client asks
//!   for (RFC 7030 §4.4.1) and the EnvelopedData of the encrypted key.
//! - [`channel_binding`]: the RFC 7030 §3.5 proof that a CSR was made for
//!   this TLS connection, with the RFC 9266 tls-exporter value in place of
//!   tls-unique (which TLS 1.3 does not have).
//!
//! The certs-only PKCS#7 of `/cacerts` and `/simpleenroll` is
//! [`crate::pkcs7::certs_only`], shared with SCEP.

pub mod basic_auth;
pub mod body;
pub mod channel_binding;
pub mod csrattrs;
pub mod key_delivery;
pub mod serverkeygen;

pub use body::{decode_body, encode_base64_body, BodyError, MAX_BODY_LEN};
pub use channel_binding::{
    challenge_password, verify_channel_binding, ChannelBindingError, TLS_EXPORTER_LABEL,
    TLS_EXPORTER_LEN,
};
pub use csrattrs::{encode_csr_attrs, AttrOrOid};
pub use key_delivery::{
    encrypted_key_package, key_identifier, requested_key_delivery, KeyDelivery, KeyDeliveryError,
};
pub use serverkeygen::{serverkeygen_response, KeyPart, ServerKeygenResponse};
