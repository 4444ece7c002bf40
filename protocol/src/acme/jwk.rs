//! Public JSON Web Keys (RFC 7517, key types of RFC 7518 §6 and RFC 8037 §2)
//! and JWK thumbprints (RFC 7638).
//!
//! Only public keys of the types ACME servers commonly accept are supported:
//! EC on P-256/P-384/P-521, RSA with a 2048–8192 bit modulus and OKP Ed25519.
//! Every key is checked when parsed (coordinate lengths, minimal integer
//! encodings, the point is on the curve, the RSA key is usable), so a [`Jwk`]
//! value is always a usable verification key.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::b64;
use super::jws::JwsError;

/// Private-key members that must never appear in a public JWK
/// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// An elliptic curve for `"kty": "EC"` keys (RFC 7518 §6.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// `"P-256"`, used with ES256.
    P256,
    /// `"P-384"`, used with ES384.
    P384,
    /// `"P-521"`, used with ES512.
    P521,
}

impl EcCurve {
    /// The `"crv"` value.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// Length in bytes of one coordinate (RFC 7518 §6.2.1.2).
    pub fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }

    fn verification_alg(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Self::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Self::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum KeyData {
    Ec {
        curve: EcCurve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    /// Big-endian, minimal encodings (no leading zero octets).
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

/// A validated public JSON Web Key (RFC 7517 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jwk {
    data: KeyData,
}

fn malformed(msg: impl Into<String>) -> JwsError {
    JwsError::Malformed(msg.into())
}

fn bad_key(msg: impl Into<String>) -> JwsError {
    JwsError::BadPublicKey(msg.into())
}

fn str_member<'a>(
    obj: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a str, JwsError> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(malformed(format!("JWK member {name:?} is not a string"))),
        None => Err(malformed(format!("JWK lacks member {name:?}"))),
    }
}

fn b64_member(obj: &serde_json::Map<String, Value>, name: &str) -> Result<Vec<u8>, JwsError> {
    b64::decode(str_member(obj, name)?).ok_or_else(|| {
        malformed(format!(
            "JWK member {name:?} is not base64url without padding"
        ))
    })
}

/// Bit length of a big-endian unsigned integer without leading zero octets.
fn bit_len(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(&first) => (be.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

impl Jwk {
    /// Parses a public JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2).
    ///
    /// Errors: [`JwsError::Malformed`] for a non-object, missing or mistyped
    /// members, bad base64url, wrong coordinate lengths, non-minimal RSA
    /// integers or any private-key member (`d`, `p`, `q`, `dp`, `dq`, `qi`,
    /// `oth`, `k`); [`JwsError::BadPublicKey`] for an unsupported key type or
    /// curve, an RSA modulus outside 2048–8192 bits, or a key the crypto
    /// library rejects (e.g. a point not on the curve).
    pub fn from_json(value: &Value) -> Result<Jwk, JwsError> {
        let obj = value
            .as_object()
            .ok_or_else(|| malformed("JWK is not a JSON object"))?;
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(malformed(format!("JWK contains private key member {m:?}")));
        }
        let kty = str_member(obj, "kty")?;
        let data = match kty {
            "EC" => {
                let crv = str_member(obj, "crv")?;
                let curve = EcCurve::from_name(crv)
                    .ok_or_else(|| bad_key(format!("unsupported EC curve {crv:?}")))?;
                let x = b64_member(obj, "x")?;
                let y = b64_member(obj, "y")?;
                let len = curve.coordinate_len();
                if x.len() != len || y.len() != len {
                    return Err(malformed(format!(
                        "{crv} coordinates must be {len} bytes each (RFC 7518 §6.2.1.2)"
                    )));
                }
                KeyData::Ec { curve, x, y }
            }
            "RSA" => {
                let n = b64_member(obj, "n")?;
                let e = b64_member(obj, "e")?;
                if n.first().is_none_or(|b| *b == 0) || e.first().is_none_or(|b| *b == 0) {
                    return Err(malformed(
                        "RSA n and e must be non-empty minimal encodings (RFC 7518 §6.3.1)",
                    ));
                }
                let bits = bit_len(&n);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(bad_key(format!(
                        "RSA modulus of {bits} bits is outside {MIN_RSA_BITS}..={MAX_RSA_BITS}"
                    )));
                }
                if e.len() > 8 {
                    return Err(bad_key("RSA public exponent too large"));
                }
                KeyData::Rsa { n, e }
            }
            "OKP" => {
                let crv = str_member(obj, "crv")?;
                if crv != "Ed25519" {
                    return Err(bad_key(format!("unsupported OKP curve {crv:?}")));
                }
                let x = b64_member(obj, "x")?;
                if x.len() != 32 {
                    return Err(malformed("Ed25519 x must be 32 bytes (RFC 8037 §2)"));
                }
                KeyData::Ed25519 { x }
            }
            other => return Err(bad_key(format!("unsupported key type {other:?}"))),
        };
        let jwk = Jwk { data };
        UnparsedPublicKey::new(jwk.check_alg(), jwk.public_key_bits())
            .parse()
            .map_err(|e| bad_key(format!("unusable public key: {e}")))?;
        Ok(jwk)
    }

    /// An algorithm to ask the crypto library whether the key is usable.
    fn check_alg(&self) -> &'static dyn VerificationAlgorithm {
        match &self.data {
            KeyData::Ec { curve, .. } => curve.verification_alg(),
            KeyData::Rsa { .. } => &signature::RSA_PKCS1_2048_8192_SHA256,
            KeyData::Ed25519 { .. } => &signature::ED25519,
        }
    }

    pub(crate) fn data(&self) -> &KeyData {
        &self.data
    }

    /// The JWK thumbprint (RFC 7638 §3): base64url (no padding) of the
    /// SHA-256 of the required members in lexicographic order, no whitespace.
    pub fn thumbprint(&self) -> String {
        let input = self.thumbprint_input();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes());
        b64::encode(digest.as_ref())
    }

    /// The canonical JSON hashed for the thumbprint (RFC 7638 §3.2–§3.3).
    /// All member values are base64url or fixed names, so no escaping occurs.
    fn thumbprint_input(&self) -> String {
        match &self.data {
            KeyData::Ec { curve, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                b64::encode(x),
                b64::encode(y)
            ),
            KeyData::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64::encode(e),
                b64::encode(n)
            ),
            KeyData::Ed25519 { x } => {
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    b64::encode(x)
                )
            }
        }
    }

    /// The key as a JWK holding only its required public members.
    pub fn to_json(&self) -> Value {
        match &self.data {
            KeyData::Ec { curve, x, y } => serde_json::json!({
                "kty": "EC", "crv": curve.name(), "x": b64::encode(x), "y": b64::encode(y),
            }),
            KeyData::Rsa { n, e } => serde_json::json!({
                "kty": "RSA", "n": b64::encode(n), "e": b64::encode(e),
            }),
            KeyData::Ed25519 { x } => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64::encode(x),
            }),
        }
    }

    /// The contents of the SubjectPublicKeyInfo `subjectPublicKey` BIT STRING
    /// for this key (RFC 5480 §2.2: EC uncompressed point `04||x||y`;
    /// RFC 8017 §A.1.1: DER `RSAPublicKey`; RFC 8410 §4: raw 32-byte Ed25519).
    pub fn public_key_bits(&self) -> Vec<u8> {
        match &self.data {
            KeyData::Ec { x, y, .. } => {
                let mut out = Vec::with_capacity(1 + x.len() + y.len());
                out.push(0x04);
                out.extend_from_slice(x);
                out.extend_from_slice(y);
                out
            }
            KeyData::Rsa { n, e } => {
                let mut body = der_unsigned_integer(n);
                body.extend(der_unsigned_integer(e));
                der_tlv(0x30, &body)
            }
            KeyData::Ed25519 { x } => x.clone(),
        }
    }

    /// A short name of the key type: `"P-256"`, `"P-384"`, `"P-521"`,
    /// `"RSA"` or `"Ed25519"`.
    pub fn key_type_name(&self) -> &'static str {
        match &self.data {
            KeyData::Ec { curve, .. } => curve.name(),
            KeyData::Rsa { .. } => "RSA",
            KeyData::Ed25519 { .. } => "Ed25519",
        }
    }

    /// The RSA modulus size in bits, `None` for other key types.
    pub fn rsa_modulus_bits(&self) -> Option<usize> {
        match &self.data {
            KeyData::Rsa { n, .. } => Some(bit_len(n)),
            _ => None,
        }
    }
}

/// DER INTEGER of a non-negative big-endian value without leading zeros
/// (X.690 §8.3: a 0x00 octet is prepended when the high bit is set).
fn der_unsigned_integer(be: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(be.len() + 1);
    if be.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(be);
    der_tlv(0x02, &content)
}

/// A DER TLV with a definite length (X.690 §8.1.3, §10.1).
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

impl Serialize for Jwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Jwk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Jwk::from_json(&v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vector(name: &str) -> Value {
        let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// RFC 7638 §3.1 example.
    #[test]
    fn rfc7638_thumbprint() {
        let jwk = Jwk::from_json(&vector("rfc7638-3.1-rsa-jwk.json")).unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(jwk.key_type_name(), "RSA");
        assert_eq!(jwk.rsa_modulus_bits(), Some(2048));
        // Extra members ("alg", "kid") are not part of the canonical form.
        let canon = jwk.to_json();
        assert!(canon.get("alg").is_none() && canon.get("kid").is_none());
        assert_eq!(Jwk::from_json(&canon).unwrap(), jwk);
    }

    /// RFC 8037 Appendix A.3: thumbprint of the Ed25519 example key.
    #[test]
    fn rfc8037_ed25519_thumbprint() {
        let jwk = Jwk::from_json(&vector("rfc8037-a.2-ed25519-jwk.json")).unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        assert_eq!(jwk.public_key_bits().len(), 32);
    }

    /// RFC 7517 Appendix A.1 P-256 public key.
    #[test]
    fn ec_key_bits() {
        let jwk = Jwk::from_json(&vector("rfc7517-a.1-ec-jwk.json")).unwrap();
        assert_eq!(jwk.key_type_name(), "P-256");
        let bits = jwk.public_key_bits();
        assert_eq!(bits.len(), 65);
        assert_eq!(bits[0], 0x04);
        assert_eq!(jwk.to_json()["crv"], json!("P-256"));
    }

    #[test]
    fn rsa_key_bits_is_der_rsa_public_key() {
        let jwk = Jwk::from_json(&vector("rfc7638-3.1-rsa-jwk.json")).unwrap();
        let bits = jwk.public_key_bits();
        // SEQUENCE, long form length 0x82 0x01 0x0a (266 bytes).
        assert_eq!(&bits[..4], &[0x30, 0x82, 0x01, 0x0a]);
        // INTEGER n of 257 bytes: leading 0x00 because the high bit is set.
        assert_eq!(&bits[4..9], &[0x02, 0x82, 0x01, 0x01, 0x00]);
        // INTEGER e = 65537.
        assert_eq!(&bits[bits.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);
        // aws-lc-rs accepts it as an RSAPublicKey.
        aws_lc_rs::rsa::PublicKey::from_der(&bits).unwrap();
    }

    #[test]
    fn rejects_private_members() {
        let mut v = vector("rfc7517-a.1-ec-jwk.json");
        v["d"] = json!("870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE");
        assert!(matches!(Jwk::from_json(&v), Err(JwsError::Malformed(_))));
    }

    #[test]
    fn rejects_bad_keys() {
        let ec = vector("rfc7517-a.1-ec-jwk.json");
        // Wrong curve for coordinate length.
        let mut v = ec.clone();
        v["crv"] = json!("P-384");
        assert!(matches!(Jwk::from_json(&v), Err(JwsError::Malformed(_))));
        // Unsupported curve.
        let mut v = ec.clone();
        v["crv"] = json!("secp256k1");
        assert!(matches!(Jwk::from_json(&v), Err(JwsError::BadPublicKey(_))));
        // Point not on the curve.
        let mut v = ec.clone();
        v["y"] = json!(b64::encode(&[1u8; 32]));
        assert!(matches!(Jwk::from_json(&v), Err(JwsError::BadPublicKey(_))));
        // Padding / standard alphabet.
        let mut v = ec.clone();
        v["x"] = json!(format!("{}=", ec["x"].as_str().unwrap()));
        assert!(matches!(Jwk::from_json(&v), Err(JwsError::Malformed(_))));
        // Unknown key type and non-objects.
        assert!(matches!(
            Jwk::from_json(&json!({"kty": "oct", "x": "AA"})),
            Err(JwsError::BadPublicKey(_))
        ));
        assert!(Jwk::from_json(&json!("EC")).is_err());
        assert!(Jwk::from_json(&json!({"kty": 1})).is_err());
        // Ed448 unsupported.
        assert!(matches!(
            Jwk::from_json(&json!({"kty": "OKP", "crv": "Ed448", "x": "AA"})),
            Err(JwsError::BadPublicKey(_))
        ));
    }

    #[test]
    fn rejects_small_or_nonminimal_rsa() {
        let rsa = vector("rfc7638-3.1-rsa-jwk.json");
        let n = b64::decode(rsa["n"].as_str().unwrap()).unwrap();
        let mut v = rsa.clone();
        v["n"] = json!(b64::encode(&n[..128]));
        assert!(matches!(Jwk::from_json(&v), Err(JwsError::BadPublicKey(_))));
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n);
        let mut v = rsa.clone();
        v["n"] = json!(b64::encode(&padded));
        assert!(matches!(Jwk::from_json(&v), Err(JwsError::Malformed(_))));
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_unsigned_integer(&[0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(der_unsigned_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_tlv(0x04, &[0u8; 200])[..3], [0x04, 0x81, 200]);
    }

    #[test]
    fn serde_round_trip() {
        let jwk = Jwk::from_json(&vector("rfc7517-a.1-ec-jwk.json")).unwrap();
        let s = serde_json::to_string(&jwk).unwrap();
        let back: Jwk = serde_json::from_str(&s).unwrap();
        assert_eq!(back, jwk);
    }
}
