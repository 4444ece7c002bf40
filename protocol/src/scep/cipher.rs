//! Content-encryption algorithms for the SCEP envelope (RFC 8894 §3.2.2,
//! §3.5.2 "AES" / "DES3" capabilities): CBC mode with PKCS#7 padding
//! (RFC 5652 §6.3), the IV carried as an OCTET STRING parameter (RFC 3565
//! §4.1 for AES, RFC 8018 appendix B.2 for DES and 3DES).

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use const_oid::ObjectIdentifier;

use super::{oids, ScepError};

/// A CBC content cipher a SCEP client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    /// Single DES (legacy; decrypted for old devices, only answered when the
    /// client used it).
    Des,
    /// Triple DES (EDE3).
    Des3,
    /// AES-128-CBC.
    Aes128,
    /// AES-192-CBC.
    Aes192,
    /// AES-256-CBC.
    Aes256,
}

impl ContentCipher {
    /// The cipher an algorithm identifier names; anything else is badAlg.
    pub fn from_oid(oid: &ObjectIdentifier) -> Result<Self, ScepError> {
        Ok(match *oid {
            oids::DES_CBC => ContentCipher::Des,
            oids::DES_EDE3_CBC => ContentCipher::Des3,
            oids::AES128_CBC => ContentCipher::Aes128,
            oids::AES192_CBC => ContentCipher::Aes192,
            oids::AES256_CBC => ContentCipher::Aes256,
            other => {
                return Err(ScepError::UnsupportedAlgorithm(format!(
                    "content cipher {other}"
                )))
            }
        })
    }

    /// The algorithm's object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            ContentCipher::Des => oids::DES_CBC,
            ContentCipher::Des3 => oids::DES_EDE3_CBC,
            ContentCipher::Aes128 => oids::AES128_CBC,
            ContentCipher::Aes192 => oids::AES192_CBC,
            ContentCipher::Aes256 => oids::AES256_CBC,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            ContentCipher::Des => 8,
            ContentCipher::Des3 | ContentCipher::Aes192 => 24,
            ContentCipher::Aes128 => 16,
            ContentCipher::Aes256 => 32,
        }
    }

    /// Block (and IV) length in bytes.
    pub fn iv_len(self) -> usize {
        match self {
            ContentCipher::Des | ContentCipher::Des3 => 8,
            _ => 16,
        }
    }

    /// Decrypts `ciphertext` and strips the padding. A wrong key, IV or
    /// padding is a badMessageCheck.
    pub fn decrypt(self, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, ScepError> {
        fn run<C>(key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Vec<u8>, ScepError>
        where
            cbc::Decryptor<C>: KeyIvInit + BlockDecryptMut,
            C: cbc::cipher::BlockDecryptMut + cbc::cipher::BlockCipher,
        {
            cbc::Decryptor::<C>::new_from_slices(key, iv)
                .map_err(|_| ScepError::Decrypt("content key or IV has the wrong length"))?
                .decrypt_padded_vec_mut::<Pkcs7>(ct)
                .map_err(|_| ScepError::Decrypt("content padding is wrong"))
        }
        match self {
            ContentCipher::Des => run::<des::Des>(key, iv, ciphertext),
            ContentCipher::Des3 => run::<des::TdesEde3>(key, iv, ciphertext),
            ContentCipher::Aes128 => run::<aes::Aes128>(key, iv, ciphertext),
            ContentCipher::Aes192 => run::<aes::Aes192>(key, iv, ciphertext),
            ContentCipher::Aes256 => run::<aes::Aes256>(key, iv, ciphertext),
        }
    }

    /// Pads and encrypts `plaintext`.
    pub fn encrypt(self, key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, ScepError> {
        fn run<C>(key: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>, ScepError>
        where
            cbc::Encryptor<C>: KeyIvInit + BlockEncryptMut,
            C: cbc::cipher::BlockEncryptMut + cbc::cipher::BlockCipher,
        {
            Ok(cbc::Encryptor::<C>::new_from_slices(key, iv)
                .map_err(|_| ScepError::Build("content key or IV has the wrong length".into()))?
                .encrypt_padded_vec_mut::<Pkcs7>(pt))
        }
        match self {
            ContentCipher::Des => run::<des::Des>(key, iv, plaintext),
            ContentCipher::Des3 => run::<des::TdesEde3>(key, iv, plaintext),
            ContentCipher::Aes128 => run::<aes::Aes128>(key, iv, plaintext),
            ContentCipher::Aes192 => run::<aes::Aes192>(key, iv, plaintext),
            ContentCipher::Aes256 => run::<aes::Aes256>(key, iv, plaintext),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cipher_round_trips_and_detects_a_wrong_key() {
        for c in [
            ContentCipher::Des,
            ContentCipher::Des3,
            ContentCipher::Aes128,
            ContentCipher::Aes192,
            ContentCipher::Aes256,
        ] {
            assert_eq!(ContentCipher::from_oid(&c.oid()).unwrap(), c);
            let key = vec![7u8; c.key_len()];
            let iv = vec![1u8; c.iv_len()];
            let ct = c.encrypt(&key, &iv, b"hello scep").unwrap();
            assert_eq!(c.decrypt(&key, &iv, &ct).unwrap(), b"hello scep");
            assert!(c.decrypt(&key, &iv, &ct[..ct.len() - 1]).is_err());
        }
        assert!(matches!(
            ContentCipher::from_oid(&oids::SHA256),
            Err(ScepError::UnsupportedAlgorithm(_))
        ));
    }
}
