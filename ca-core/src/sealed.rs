//! Sealing CA private keys at rest with AES-256-GCM (NIST SP 800-38D).
//!
//! Blob layout: `version (1 octet, = 1) || nonce (12 octets) ||
//! ciphertext || tag (16 octets)`. The authenticated data is the version
//! octet followed by the caller's `aad`, which should name the blob's
//! purpose (e.g. `b"ironseal-ca-key:" || ca_id`) so a blob cannot be
//! swapped between records.
//!
//! Zeroisation: the KEK is wiped when dropped; [`open`] returns the
//! plaintext in a [`Zeroizing`] buffer (wiped when the caller drops it)
//! and wipes its own working copy; the base64 KEK decoded by
//! [`Kek::from_base64`] is wiped. aws-lc-rs keeps its own expanded AES key
//! schedule, which aws-lc cleanses when it frees it.

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine as _;
use zeroize::{Zeroize, Zeroizing};

use crate::error::CaError;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// A 256-bit key-encryption key. `Debug` never prints the key; dropping
/// it wipes it.
#[derive(Clone)]
pub struct Kek([u8; 32]);

impl Drop for Kek {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Kek {
    /// Takes exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Kek, CaError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CaError::InvalidKek(format!("need 32 bytes, got {}", bytes.len())))?;
        Ok(Kek(arr))
    }

    /// Decodes base64 (standard alphabet with or without padding, or the
    /// URL-safe alphabet) into exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Kek, CaError> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let s = s.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(s)
                .or_else(|_| STANDARD_NO_PAD.decode(s))
                .or_else(|_| URL_SAFE.decode(s))
                .or_else(|_| URL_SAFE_NO_PAD.decode(s))
                .map_err(|_| CaError::InvalidKek("not valid base64".into()))?,
        );
        Kek::from_bytes(&bytes)
    }

    fn key(&self) -> Result<LessSafeKey, CaError> {
        let unbound = UnboundKey::new(&AES_256_GCM, &self.0)
            .map_err(|_| CaError::InvalidKek("rejected by AES-256-GCM".into()))?;
        Ok(LessSafeKey::new(unbound))
    }

    /// A 256-bit key for `purpose`, derived from the KEK with HKDF-SHA256
    /// (RFC 5869; empty salt, `purpose` as info). Every process holding the
    /// same KEK derives the same key (e.g. the ACME nonce key shared by
    /// replicas), and no derived key reveals the KEK or another purpose's
    /// key.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
        let mut out = Zeroizing::new([0u8; 32]);
        let info = [purpose.as_bytes()];
        let prk = Salt::new(HKDF_SHA256, &[]).extract(&self.0);
        // 32 bytes from HKDF-SHA256 are always within its output limit.
        if let Ok(okm) = prk.expand(&info, HKDF_SHA256) {
            let _ = okm.fill(&mut out[..]);
        }
        out
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

fn full_aad(aad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(aad.len() + 1);
    v.push(VERSION);
    v.extend_from_slice(aad);
    v
}

/// Encrypts `plaintext` under `kek`, binding it to `aad`.
///
/// `nonce` must be fresh random bytes from the caller; never reuse a nonce
/// with the same key. Fails only if AES-GCM refuses the input size.
pub fn seal(kek: &Kek, plaintext: &[u8], aad: &[u8], nonce: [u8; 12]) -> Result<Vec<u8>, CaError> {
    let key = kek.key()?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(full_aad(aad).as_slice()),
        &mut buf,
    )
    .map_err(|_| CaError::Key("AES-GCM seal failed".into()))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Decrypts a blob made by [`seal`]; fails with [`CaError::Unseal`] if the
/// version is unknown, the blob is truncated, or authentication fails
/// (wrong key, wrong `aad`, or tampering). The plaintext is wiped when
/// the returned buffer is dropped.
pub fn open(kek: &Kek, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CaError> {
    let (&version, rest) = blob.split_first().ok_or(CaError::Unseal)?;
    if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CaError::Unseal);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CaError::Unseal)?;
    let key = kek.key()?;
    // Decrypted in place: this copy holds the plaintext and is wiped on drop.
    let mut buf = Zeroizing::new(ct.to_vec());
    let plain = key
        .open_in_place(nonce, Aad::from(full_aad(aad).as_slice()), &mut buf)
        .map_err(|_| CaError::Unseal)?;
    Ok(Zeroizing::new(plain.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_stable_per_purpose_and_distinct() {
        let kek = Kek::from_bytes(&[7u8; 32]).expect("kek");
        let a = kek.derive("ironseal acme nonce v1");
        assert_eq!(
            *a,
            *Kek::from_bytes(&[7u8; 32])
                .expect("kek")
                .derive("ironseal acme nonce v1")
        );
        assert_ne!(*a, *kek.derive("another purpose"));
        assert_ne!(*a, [0u8; 32]);
        assert_ne!(
            *a,
            *Kek::from_bytes(&[8u8; 32])
                .expect("kek")
                .derive("ironseal acme nonce v1")
        );
    }

    /// Hardening (issue 10 item 15): the KEK is wiped on drop (it needs
    /// a destructor; a bare `[u8; 32]` has none) and unsealed plaintext
    /// comes back in a wiping buffer (the type annotation above).
    #[test]
    fn kek_and_plaintext_are_wiped() {
        assert!(std::mem::needs_drop::<Kek>());
        let mut kek = Kek::from_bytes(&[9u8; 32]).expect("kek");
        let blob = seal(&kek, b"k", b"a", [2u8; 12]).expect("seal");
        let _: Zeroizing<Vec<u8>> = open(&kek, &blob, b"a").expect("open");
        kek.0.zeroize();
        assert_eq!(kek.0, [0u8; 32]);
    }

    #[test]
    fn round_trip_and_binding() {
        let kek = Kek::from_bytes(&[7u8; 32]).expect("kek");
        let blob = seal(&kek, b"secret key", b"ca:one", [1u8; 12]).expect("seal");
        assert_eq!(blob[0], 1);
        assert_eq!(blob.len(), 1 + 12 + 10 + 16);
        let plain: Zeroizing<Vec<u8>> = open(&kek, &blob, b"ca:one").expect("open");
        assert_eq!(plain.as_slice(), b"secret key");
        assert_eq!(open(&kek, &blob, b"ca:two"), Err(CaError::Unseal));
        let other = Kek::from_bytes(&[8u8; 32]).expect("kek");
        assert_eq!(open(&other, &blob, b"ca:one"), Err(CaError::Unseal));
        let mut tampered = blob.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert_eq!(open(&kek, &tampered, b"ca:one"), Err(CaError::Unseal));
        let mut wrong_version = blob.clone();
        wrong_version[0] = 2;
        assert_eq!(open(&kek, &wrong_version, b"ca:one"), Err(CaError::Unseal));
        for n in 0..blob.len() {
            assert_eq!(open(&kek, &blob[..n], b"ca:one"), Err(CaError::Unseal));
        }
    }

    #[test]
    fn kek_parsing_and_debug() {
        assert!(Kek::from_bytes(&[0u8; 31]).is_err());
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let k = Kek::from_base64(&b64).expect("b64");
        assert_eq!(format!("{k:?}"), "Kek([redacted])");
        assert!(Kek::from_base64("not base64!").is_err());
    }
}
