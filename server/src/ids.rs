//! Opaque identifiers, challenge tokens and the hash helper every module
//! uses, kept apart from the server state so that any layer can use them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A new opaque identifier for accounts, orders, authorizations, challenges.
pub fn new_id() -> String {
    let b: [u8; 12] = rand::random();
    URL_SAFE_NO_PAD.encode(b)
}

/// A challenge token: 128 bits of entropy, base64url (RFC 8555 §8.1).
pub fn new_token() -> String {
    let b: [u8; 16] = rand::random();
    URL_SAFE_NO_PAD.encode(b)
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_distinct() {
        let a = new_id();
        assert_ne!(a, new_id());
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(new_token().len(), 22);
    }
}
