//! CA signing keys.
//!
//! Keys are generated inside aws-lc-rs (via rcgen) and carried as PKCS#8
//! `PrivateKeyInfo` (RFC 5208 / RFC 5958). The signature algorithms used
//! are those of RFC 5758 §3.2 (ECDSA), RFC 4055 (RSA PKCS#1 v1.5 with
//! SHA-256) and RFC 8410 (Ed25519).

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, PublicKeyData, RsaKeySize};
use serde::{Deserialize, Serialize};

use crate::der_util::rsa_key_params;
use crate::error::CaError;

/// The key algorithms a CA may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256, signing with SHA-256.
    #[serde(rename = "p256")]
    EcdsaP256,
    /// ECDSA on P-384, signing with SHA-384.
    #[serde(rename = "p384")]
    EcdsaP384,
    /// RSA 3072-bit, PKCS#1 v1.5 with SHA-256.
    #[serde(rename = "rsa3072")]
    Rsa3072,
    /// RSA 4096-bit, PKCS#1 v1.5 with SHA-256.
    #[serde(rename = "rsa4096")]
    Rsa4096,
    /// Ed25519 (RFC 8410).
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl KeyAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::Ed25519,
    ];

    /// The configuration / serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "p256",
            KeyAlgorithm::EcdsaP384 => "p384",
            KeyAlgorithm::Rsa3072 => "rsa3072",
            KeyAlgorithm::Rsa4096 => "rsa4096",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// Whether this is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = CaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| CaError::Key(format!("unknown key algorithm {s:?}")))
    }
}

/// A CA private key. `Debug` prints only the algorithm. Dropping it wipes
/// the PKCS#8 copy rcgen keeps; the key inside aws-lc is cleansed by
/// aws-lc when freed.
pub struct CaKey {
    algorithm: KeyAlgorithm,
    pair: KeyPair,
}

impl Drop for CaKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.pair);
    }
}

impl CaKey {
    /// Generates a fresh key with the operating system's CSPRNG (inside
    /// aws-lc-rs).
    pub fn generate(algorithm: KeyAlgorithm) -> Result<CaKey, CaError> {
        let pair = match algorithm {
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlgorithm::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            }
            KeyAlgorithm::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
            }
            KeyAlgorithm::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        }
        .map_err(|e| CaError::Key(format!("generation failed: {e}")))?;
        Ok(CaKey { algorithm, pair })
    }

    /// Loads a PKCS#8 `PrivateKeyInfo` (RFC 5958) holding a P-256, P-384,
    /// RSA-3072, RSA-4096 or Ed25519 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<CaKey, CaError> {
        let pair = KeyPair::try_from(der)
            .map_err(|e| CaError::Key(format!("cannot parse private key: {e}")))?;
        let alg = pair.algorithm();
        let algorithm = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            KeyAlgorithm::EcdsaP256
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            KeyAlgorithm::EcdsaP384
        } else if alg == &rcgen::PKCS_ED25519 {
            KeyAlgorithm::Ed25519
        } else if alg == &rcgen::PKCS_RSA_SHA256 {
            match rsa_key_params(pair.der_bytes()) {
                Some((3072, _)) => KeyAlgorithm::Rsa3072,
                Some((4096, _)) => KeyAlgorithm::Rsa4096,
                Some((bits, _)) => {
                    return Err(CaError::Key(format!("unsupported RSA size {bits}")))
                }
                None => return Err(CaError::Key("unparsable RSA public key".into())),
            }
        } else {
            return Err(CaError::Key("unsupported key algorithm".into()));
        };
        Ok(CaKey { algorithm, pair })
    }

    /// The PKCS#8 `PrivateKeyInfo` DER (secret; seal it before storing).
    pub fn pkcs8_der(&self) -> &[u8] {
        self.pair.serialized_der()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7).
    pub fn spki_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    /// The subjectPublicKey BIT STRING contents (EC point, RSAPublicKey DER
    /// or raw Ed25519 key).
    pub fn public_key_bits(&self) -> &[u8] {
        self.pair.der_bytes()
    }

    pub(crate) fn pair(&self) -> &KeyPair {
        &self.pair
    }
}

impl fmt::Debug for CaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in KeyAlgorithm::ALL {
            assert_eq!(a.as_str().parse::<KeyAlgorithm>(), Ok(a));
            let j = serde_json::to_string(&a).expect("json");
            assert_eq!(j, format!("\"{a}\""));
            let back: KeyAlgorithm = serde_json::from_str(&j).expect("json");
            assert_eq!(back, a);
        }
        assert!("rsa2048".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn generate_and_reload_every_algorithm() {
        for a in KeyAlgorithm::ALL {
            let k = CaKey::generate(a).expect("generate");
            assert_eq!(k.algorithm(), a);
            let dbg = format!("{k:?}");
            assert!(dbg.contains("CaKey") && !dbg.contains("serialized"));
            let re = CaKey::from_pkcs8_der(k.pkcs8_der()).expect("reload");
            assert_eq!(re.algorithm(), a);
            assert_eq!(re.spki_der(), k.spki_der());
        }
        assert!(CaKey::from_pkcs8_der(b"garbage").is_err());
    }
}
