//! Flattened JSON JWS as used by ACME (RFC 8555 §6.2; RFC 7515 §7.2.2).
//!
//! [`parse`] checks the structure and the protected header and yields an
//! [`UnverifiedJws`]; only [`UnverifiedJws::verify`] turns it into a
//! [`VerifiedJws`], whose payload may then be used.
//!
//! Signatures are verified with aws-lc-rs (`signature::UnparsedPublicKey`)
//! over the received bytes `ASCII(protected || '.' || payload)`
//! (RFC 7515 §5.2); ECDSA signatures are the fixed-width `r||s` form of
//! RFC 7518 §3.4.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::b64;
use super::jwk::{EcCurve, Jwk, KeyData};
use super::problem::{Problem, ProblemType};

/// A JWS signature algorithm this server accepts (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    /// ECDSA P-256 SHA-256.
    ES256,
    /// ECDSA P-384 SHA-384.
    ES384,
    /// ECDSA P-521 SHA-512.
    ES512,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    RS256,
    /// RSASSA-PSS SHA-256, MGF1 SHA-256, 32-byte salt.
    PS256,
    /// Ed25519 (RFC 8037 §3.1).
    EdDSA,
}

impl JwsAlgorithm {
    /// Every supported algorithm.
    pub const ALL: &'static [JwsAlgorithm] = &[
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::RS256,
        Self::PS256,
        Self::EdDSA,
    ];

    /// The `"alg"` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Looks an `"alg"` value up; `None` for unsupported values.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }

    /// The names of all supported algorithms, for the `"algorithms"` member
    /// of a `badSignatureAlgorithm` problem (RFC 8555 §6.2).
    pub fn supported_names() -> Vec<String> {
        Self::ALL.iter().map(|a| a.as_str().to_owned()).collect()
    }

    /// The verification algorithm if `key` is of the type this algorithm
    /// requires (RFC 7518 §3.4: ES256↔P-256, ES384↔P-384, ES512↔P-521;
    /// §3.3/§3.5: RS256/PS256↔RSA; RFC 8037 §3.1: EdDSA↔Ed25519).
    fn verifier_for(self, key: &Jwk) -> Option<&'static dyn VerificationAlgorithm> {
        match (self, key.data()) {
            (
                Self::ES256,
                KeyData::Ec {
                    curve: EcCurve::P256,
                    ..
                },
            ) => Some(&signature::ECDSA_P256_SHA256_FIXED),
            (
                Self::ES384,
                KeyData::Ec {
                    curve: EcCurve::P384,
                    ..
                },
            ) => Some(&signature::ECDSA_P384_SHA384_FIXED),
            (
                Self::ES512,
                KeyData::Ec {
                    curve: EcCurve::P521,
                    ..
                },
            ) => Some(&signature::ECDSA_P521_SHA512_FIXED),
            (Self::RS256, KeyData::Rsa { .. }) => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
            (Self::PS256, KeyData::Rsa { .. }) => Some(&signature::RSA_PSS_2048_8192_SHA256),
            (Self::EdDSA, KeyData::Ed25519 { .. }) => Some(&signature::ED25519),
            _ => None,
        }
    }
}

impl std::fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a JWS or JWK was rejected. Each maps to an ACME problem type via
/// [`JwsError::problem_type`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Structurally invalid JWS, header or JWK (→ `malformed`).
    #[error("malformed JWS: {0}")]
    Malformed(String),
    /// `"alg"` is unsupported, `"none"`, a MAC, or does not fit the key
    /// (→ `badSignatureAlgorithm`, RFC 8555 §6.2).
    #[error("unsupported signature algorithm: {0}")]
    BadSignatureAlgorithm(String),
    /// The signature does not verify (→ `malformed`, as Boulder answers).
    #[error("JWS signature verification failed")]
    BadSignature,
    /// The protected header lacks `"nonce"` where one is required
    /// (→ `badNonce`, RFC 8555 §6.5).
    #[error("JWS protected header has no nonce")]
    MissingNonce,
    /// Both `"jwk"` and `"kid"` are present (→ `malformed`, RFC 8555 §6.2).
    #[error("JWS protected header has both jwk and kid")]
    BothJwkAndKid,
    /// Neither `"jwk"` nor `"kid"` is present (→ `malformed`, RFC 8555 §6.2).
    #[error("JWS protected header has neither jwk nor kid")]
    NeitherJwkNorKid,
    /// The JWK is of an unsupported type, curve or size, or unusable
    /// (→ `badPublicKey`, RFC 8555 §6.7). Addition to the contract.
    #[error("unsupported public key: {0}")]
    BadPublicKey(String),
}

impl JwsError {
    /// The ACME error type for this error (RFC 8555 §6.7).
    pub fn problem_type(&self) -> ProblemType {
        match self {
            Self::BadSignatureAlgorithm(_) => ProblemType::BadSignatureAlgorithm,
            Self::MissingNonce => ProblemType::BadNonce,
            Self::BadPublicKey(_) => ProblemType::BadPublicKey,
            Self::Malformed(_)
            | Self::BadSignature
            | Self::BothJwkAndKid
            | Self::NeitherJwkNorKid => ProblemType::Malformed,
        }
    }

    /// The problem document for this error; `badSignatureAlgorithm`
    /// carries the supported `"algorithms"` (RFC 8555 §6.2).
    pub fn to_problem(&self) -> Problem {
        let p = Problem::new(self.problem_type(), self.to_string());
        match self {
            Self::BadSignatureAlgorithm(_) => p.with_algorithms(JwsAlgorithm::supported_names()),
            _ => p,
        }
    }
}

impl From<JwsError> for Problem {
    fn from(e: JwsError) -> Problem {
        e.to_problem()
    }
}

/// How the JWS names its key (RFC 8555 §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// An embedded public key (newAccount, revokeCert by certificate key).
    Jwk(Jwk),
    /// An account URL.
    Kid(String),
}

/// The protected header fields ACME uses (RFC 8555 §6.2, §6.4, §6.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedHeader {
    /// `"alg"`.
    pub alg: JwsAlgorithm,
    /// `"nonce"`; absent only where RFC 8555 §7.3.5 allows (the inner
    /// keyChange JWS). Use [`ProtectedHeader::require_nonce`] elsewhere.
    pub nonce: Option<String>,
    /// `"url"` (RFC 8555 §6.4).
    pub url: String,
    /// `"jwk"` or `"kid"`.
    pub key: KeyRef,
}

impl ProtectedHeader {
    /// The nonce, or [`JwsError::MissingNonce`] (RFC 8555 §6.5).
    pub fn require_nonce(&self) -> Result<&str, JwsError> {
        self.nonce.as_deref().ok_or(JwsError::MissingNonce)
    }
}

/// A structurally valid JWS whose signature has not been checked yet.
#[derive(Debug, Clone)]
pub struct UnverifiedJws {
    /// The parsed protected header.
    pub header: ProtectedHeader,
    protected_b64: String,
    payload_b64: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// A JWS whose signature verified with a given key. Only
/// [`UnverifiedJws::verify`] creates one (`#[non_exhaustive]` keeps other
/// crates from building one by hand).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedJws {
    /// The protected header.
    pub header: ProtectedHeader,
    /// The decoded payload; empty for POST-as-GET (RFC 8555 §6.3).
    pub payload: Vec<u8>,
}

fn malformed(msg: impl Into<String>) -> JwsError {
    JwsError::Malformed(msg.into())
}

/// Top-level members allowed in an ACME flattened JWS (RFC 8555 §6.2: no
/// unprotected header).
const TOP_LEVEL_MEMBERS: &[&str] = &["protected", "payload", "signature"];

/// Parses a flattened JSON JWS (RFC 8555 §6.2, RFC 7515 §7.2.2).
///
/// Rejects the compact and general serializations, an unprotected
/// `"header"`, any other top-level member, non-base64url values, a protected
/// header that is not a JSON object, `"crit"`, a missing `"url"`, an
/// unsupported `"alg"` (including `"none"` and `HS*`) and headers with both
/// or neither of `"jwk"` and `"kid"`. A missing `"nonce"` is not an error
/// here (see [`ProtectedHeader::require_nonce`]). Body size limits are the
/// caller's job.
pub fn parse(body: &[u8]) -> Result<UnverifiedJws, JwsError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("body is not a flattened JSON JWS: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| malformed("body is not a JSON object"))?;
    if obj.contains_key("signatures") {
        return Err(malformed("general JWS serialization is not allowed"));
    }
    if obj.contains_key("header") {
        return Err(malformed("unprotected JWS header is not allowed"));
    }
    if let Some(extra) = obj
        .keys()
        .find(|k| !TOP_LEVEL_MEMBERS.contains(&k.as_str()))
    {
        return Err(malformed(format!("unexpected JWS member {extra:?}")));
    }
    let member = |name: &str| -> Result<String, JwsError> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(malformed(format!("JWS member {name:?} is not a string"))),
            None => Err(malformed(format!("JWS lacks member {name:?}"))),
        }
    };
    let protected_b64 = member("protected")?;
    let payload_b64 = member("payload")?;
    let signature_b64 = member("signature")?;

    let protected_bytes = b64::decode(&protected_b64)
        .ok_or_else(|| malformed("\"protected\" is not base64url without padding"))?;
    let payload = b64::decode(&payload_b64)
        .ok_or_else(|| malformed("\"payload\" is not base64url without padding"))?;
    let signature = b64::decode(&signature_b64)
        .ok_or_else(|| malformed("\"signature\" is not base64url without padding"))?;
    let header_value: Value = serde_json::from_slice(&protected_bytes)
        .map_err(|e| malformed(format!("protected header is not JSON: {e}")))?;
    let header = parse_protected_header(&header_value)?;
    Ok(UnverifiedJws {
        header,
        protected_b64,
        payload_b64,
        payload,
        signature,
    })
}

fn opt_str<'a>(
    h: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, JwsError> {
    match h.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed(format!(
            "header parameter {name:?} is not a string"
        ))),
    }
}

/// Checks the protected header (RFC 8555 §6.2, RFC 7515 §4.1).
fn parse_protected_header(v: &Value) -> Result<ProtectedHeader, JwsError> {
    let h = v
        .as_object()
        .ok_or_else(|| malformed("protected header is not a JSON object"))?;
    if h.contains_key("crit") {
        // RFC 7515 §4.1.11: we understand no extensions, so must reject.
        return Err(malformed("\"crit\" header parameter is not supported"));
    }
    let alg_name = opt_str(h, "alg")?.ok_or_else(|| malformed("protected header lacks \"alg\""))?;
    let alg = JwsAlgorithm::from_name(alg_name).ok_or_else(|| {
        JwsError::BadSignatureAlgorithm(format!("algorithm {alg_name:?} is not supported"))
    })?;
    let key = match (h.get("jwk"), h.get("kid")) {
        (Some(_), Some(_)) => return Err(JwsError::BothJwkAndKid),
        (None, None) => return Err(JwsError::NeitherJwkNorKid),
        (Some(jwk), None) => KeyRef::Jwk(Jwk::from_json(jwk)?),
        (None, Some(Value::String(kid))) => KeyRef::Kid(kid.clone()),
        (None, Some(_)) => return Err(malformed("\"kid\" is not a string")),
    };
    let nonce = opt_str(h, "nonce")?.map(str::to_owned);
    let url = opt_str(h, "url")?
        .ok_or_else(|| malformed("protected header lacks \"url\" (RFC 8555 §6.4)"))?
        .to_owned();
    Ok(ProtectedHeader {
        alg,
        nonce,
        url,
        key,
    })
}

impl UnverifiedJws {
    /// The key embedded in the header, if it names one by `"jwk"`.
    pub fn embedded_jwk(&self) -> Option<&Jwk> {
        match &self.header.key {
            KeyRef::Jwk(jwk) => Some(jwk),
            KeyRef::Kid(_) => None,
        }
    }

    /// Verifies the signature with `key` (RFC 7515 §5.2).
    ///
    /// [`JwsError::BadSignatureAlgorithm`] if `"alg"` does not fit the key
    /// type; [`JwsError::BadSignature`] if the signature does not verify.
    pub fn verify(self, key: &Jwk) -> Result<VerifiedJws, JwsError> {
        let alg = self.header.alg.verifier_for(key).ok_or_else(|| {
            JwsError::BadSignatureAlgorithm(format!(
                "algorithm {} does not match a {} key",
                self.header.alg,
                key.key_type_name()
            ))
        })?;
        let mut input = Vec::with_capacity(self.protected_b64.len() + 1 + self.payload_b64.len());
        input.extend_from_slice(self.protected_b64.as_bytes());
        input.push(b'.');
        input.extend_from_slice(self.payload_b64.as_bytes());
        UnparsedPublicKey::new(alg, key.public_key_bits())
            .verify(&input, &self.signature)
            .map_err(|_| JwsError::BadSignature)?;
        Ok(VerifiedJws {
            header: self.header,
            payload: self.payload,
        })
    }
}

impl VerifiedJws {
    /// True for POST-as-GET: the payload is the empty string (RFC 8555 §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// Deserializes the payload as JSON; [`JwsError::Malformed`] otherwise.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, JwsError> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| malformed(format!("payload is not the expected JSON: {e}")))
    }
}

/// Signing helpers for tests of this and other crates. Not for production:
/// the functions panic if the crypto library fails.
pub mod testing {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
    use serde_json::Value;

    use super::b64;

    /// A private key that can sign JWS in tests.
    pub enum SigningKeyForTests {
        /// ECDSA key; the `&'static str` is its `"crv"`.
        Ec(EcdsaKeyPair, &'static str),
        /// RSA key (signs RS256, or PS256 when the header says so).
        Rsa(RsaKeyPair),
        /// Ed25519 key.
        Ed25519(Ed25519KeyPair),
    }

    impl std::fmt::Debug for SigningKeyForTests {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("SigningKeyForTests(")?;
            f.write_str(self.default_alg())?;
            f.write_str(")")
        }
    }

    fn ec(alg: &'static signature::EcdsaSigningAlgorithm, crv: &'static str) -> SigningKeyForTests {
        #[allow(clippy::expect_used, reason = "test helper; documented panic")]
        let key = EcdsaKeyPair::generate(alg).expect("EC key generation");
        SigningKeyForTests::Ec(key, crv)
    }

    impl SigningKeyForTests {
        /// A fresh P-256 key (ES256).
        pub fn generate_p256() -> Self {
            ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256")
        }

        /// A fresh P-384 key (ES384).
        pub fn generate_p384() -> Self {
            ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384")
        }

        /// A fresh P-521 key (ES512).
        pub fn generate_p521() -> Self {
            ec(&signature::ECDSA_P521_SHA512_FIXED_SIGNING, "P-521")
        }

        /// A fresh 2048-bit RSA key (RS256/PS256).
        pub fn generate_rsa2048() -> Self {
            #[allow(clippy::expect_used, reason = "test helper; documented panic")]
            let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
            Self::Rsa(key)
        }

        /// A fresh Ed25519 key (EdDSA).
        pub fn generate_ed25519() -> Self {
            #[allow(clippy::expect_used, reason = "test helper; documented panic")]
            let key = Ed25519KeyPair::generate().expect("Ed25519 key generation");
            Self::Ed25519(key)
        }

        /// The natural `"alg"` for this key.
        pub fn default_alg(&self) -> &'static str {
            match self {
                Self::Ec(_, "P-384") => "ES384",
                Self::Ec(_, "P-521") => "ES512",
                Self::Ec(..) => "ES256",
                Self::Rsa(_) => "RS256",
                Self::Ed25519(_) => "EdDSA",
            }
        }

        /// The public key as a JWK.
        pub fn jwk(&self) -> Value {
            match self {
                Self::Ec(k, crv) => {
                    let point = k.public_key().as_ref();
                    let len = (point.len() - 1) / 2;
                    serde_json::json!({
                        "kty": "EC", "crv": crv,
                        "x": b64::encode(&point[1..1 + len]),
                        "y": b64::encode(&point[1 + len..]),
                    })
                }
                Self::Rsa(k) => {
                    let pk = k.public_key();
                    serde_json::json!({
                        "kty": "RSA",
                        "n": b64::encode(pk.modulus().big_endian_without_leading_zero()),
                        "e": b64::encode(pk.exponent().big_endian_without_leading_zero()),
                    })
                }
                Self::Ed25519(k) => serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": b64::encode(k.public_key().as_ref()),
                }),
            }
        }
    }

    /// Signs `payload` under `protected_json` and returns the flattened JSON
    /// JWS body (RFC 7515 §7.2.2). The `"alg"` in the header is not checked
    /// against the key (so tests can build mismatches), except that an RSA
    /// key signs PSS when it says `"PS256"` and PKCS#1 v1.5 otherwise.
    ///
    /// # Panics
    /// If the crypto library fails to sign.
    pub fn sign_flattened(
        key: &SigningKeyForTests,
        protected_json: &Value,
        payload: &[u8],
    ) -> String {
        let protected = b64::encode(protected_json.to_string().as_bytes());
        let payload = b64::encode(payload);
        let input = format!("{protected}.{payload}");
        let rng = SystemRandom::new();
        #[allow(clippy::expect_used, reason = "test helper; documented panic")]
        let sig = match key {
            SigningKeyForTests::Ec(k, _) => k
                .sign(&rng, input.as_bytes())
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
            SigningKeyForTests::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                let padding: &'static dyn signature::RsaEncoding =
                    if protected_json.get("alg").and_then(Value::as_str) == Some("PS256") {
                        &signature::RSA_PSS_SHA256
                    } else {
                        &signature::RSA_PKCS1_SHA256
                    };
                k.sign(padding, &rng, input.as_bytes(), &mut sig)
                    .expect("RSA signing");
                sig
            }
            SigningKeyForTests::Ed25519(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        serde_json::json!({
            "protected": protected,
            "payload": payload,
            "signature": b64::encode(&sig),
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{sign_flattened, SigningKeyForTests};
    use super::*;
    use serde_json::json;

    fn header(key: &SigningKeyForTests, alg: &str) -> Value {
        json!({"alg": alg, "jwk": key.jwk(), "nonce": "abc", "url": "https://ca.test/new-acct"})
    }

    fn round_trip(key: &SigningKeyForTests, alg: &str) {
        let body = sign_flattened(key, &header(key, alg), br#"{"termsOfServiceAgreed":true}"#);
        let jws = parse(body.as_bytes()).unwrap();
        assert_eq!(jws.header.alg.as_str(), alg);
        assert_eq!(jws.header.nonce.as_deref(), Some("abc"));
        assert_eq!(jws.header.url, "https://ca.test/new-acct");
        let jwk = jws.embedded_jwk().unwrap().clone();
        assert_eq!(jwk, Jwk::from_json(&key.jwk()).unwrap());
        let verified = jws.verify(&jwk).unwrap();
        assert!(!verified.is_post_as_get());
        let v: Value = verified.payload_json().unwrap();
        assert_eq!(v, json!({"termsOfServiceAgreed": true}));
    }

    #[test]
    fn es256_round_trip() {
        round_trip(&SigningKeyForTests::generate_p256(), "ES256");
    }

    #[test]
    fn es384_round_trip() {
        round_trip(&SigningKeyForTests::generate_p384(), "ES384");
    }

    #[test]
    fn es512_round_trip() {
        round_trip(&SigningKeyForTests::generate_p521(), "ES512");
    }

    #[test]
    fn rsa_round_trips() {
        let key = SigningKeyForTests::generate_rsa2048();
        round_trip(&key, "RS256");
        round_trip(&key, "PS256");
        // A PKCS#1 signature does not verify as PSS.
        let mut h = header(&key, "RS256");
        let body = sign_flattened(&key, &h, b"{}");
        let mut v: Value = serde_json::from_str(&body).unwrap();
        h["alg"] = json!("PS256");
        v["protected"] = json!(b64::encode(h.to_string().as_bytes()));
        let jws = parse(v.to_string().as_bytes()).unwrap();
        let jwk = jws.embedded_jwk().unwrap().clone();
        assert_eq!(jws.verify(&jwk).unwrap_err(), JwsError::BadSignature);
    }

    #[test]
    fn eddsa_round_trip() {
        round_trip(&SigningKeyForTests::generate_ed25519(), "EdDSA");
    }

    #[test]
    fn kid_and_post_as_get() {
        let key = SigningKeyForTests::generate_p256();
        let h = json!({"alg": "ES256", "kid": "https://ca.test/acct/1", "nonce": "n", "url": "https://ca.test/order/1"});
        let body = sign_flattened(&key, &h, b"");
        let jws = parse(body.as_bytes()).unwrap();
        assert_eq!(jws.header.key, KeyRef::Kid("https://ca.test/acct/1".into()));
        assert!(jws.embedded_jwk().is_none());
        let v = jws.verify(&Jwk::from_json(&key.jwk()).unwrap()).unwrap();
        assert!(v.is_post_as_get());
        assert!(v.payload_json::<Value>().is_err());
    }

    #[test]
    fn missing_nonce_is_not_a_parse_error() {
        let key = SigningKeyForTests::generate_p256();
        let h = json!({"alg": "ES256", "jwk": key.jwk(), "url": "https://ca.test/key-change"});
        let jws = parse(sign_flattened(&key, &h, b"{}").as_bytes()).unwrap();
        assert_eq!(jws.header.nonce, None);
        assert_eq!(jws.header.require_nonce(), Err(JwsError::MissingNonce));
        assert_eq!(JwsError::MissingNonce.problem_type(), ProblemType::BadNonce);
    }

    #[test]
    fn tampered_signature_and_payload_rejected() {
        let key = SigningKeyForTests::generate_p256();
        let jwk = Jwk::from_json(&key.jwk()).unwrap();
        let body = sign_flattened(&key, &header(&key, "ES256"), b"{}");
        let mut v: Value = serde_json::from_str(&body).unwrap();
        let mut sig = b64::decode(v["signature"].as_str().unwrap()).unwrap();
        sig[5] ^= 1;
        v["signature"] = json!(b64::encode(&sig));
        let jws = parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(jws.verify(&jwk).unwrap_err(), JwsError::BadSignature);

        let mut v: Value = serde_json::from_str(&body).unwrap();
        v["payload"] = json!(b64::encode(b"{\"a\":1}"));
        let jws = parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(jws.verify(&jwk).unwrap_err(), JwsError::BadSignature);
        assert_eq!(
            JwsError::BadSignature.problem_type(),
            ProblemType::Malformed
        );
    }

    #[test]
    fn wrong_key_rejected() {
        let key = SigningKeyForTests::generate_p256();
        let other = Jwk::from_json(&SigningKeyForTests::generate_p256().jwk()).unwrap();
        let jws = parse(sign_flattened(&key, &header(&key, "ES256"), b"{}").as_bytes()).unwrap();
        assert_eq!(jws.verify(&other).unwrap_err(), JwsError::BadSignature);
    }

    #[test]
    fn alg_key_mismatch_rejected() {
        let key = SigningKeyForTests::generate_p256();
        for alg in ["ES384", "ES512", "RS256", "PS256", "EdDSA"] {
            let jws = parse(sign_flattened(&key, &header(&key, alg), b"{}").as_bytes()).unwrap();
            let jwk = jws.embedded_jwk().unwrap().clone();
            let err = jws.verify(&jwk).unwrap_err();
            assert!(
                matches!(err, JwsError::BadSignatureAlgorithm(_)),
                "{alg}: {err:?}"
            );
            let problem = err.to_problem();
            assert_eq!(problem.kind, ProblemType::BadSignatureAlgorithm);
            assert_eq!(problem.algorithms.as_ref().map(Vec::len), Some(6));
        }
    }

    #[test]
    fn none_hs256_and_unknown_algs_rejected() {
        let key = SigningKeyForTests::generate_p256();
        for alg in ["none", "HS256", "HS512", "RS1", "ES256K", "es256", ""] {
            let body = sign_flattened(&key, &header(&key, alg), b"{}");
            let err = parse(body.as_bytes()).unwrap_err();
            assert!(
                matches!(err, JwsError::BadSignatureAlgorithm(_)),
                "{alg}: {err:?}"
            );
        }
        let mut h = header(&key, "ES256");
        h["alg"] = json!(256);
        assert!(matches!(
            parse(sign_flattened(&key, &h, b"{}").as_bytes()),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn jwk_and_kid_rules() {
        let key = SigningKeyForTests::generate_p256();
        let mut h = header(&key, "ES256");
        h["kid"] = json!("https://ca.test/acct/1");
        assert_eq!(
            parse(sign_flattened(&key, &h, b"{}").as_bytes()).unwrap_err(),
            JwsError::BothJwkAndKid
        );
        let h = json!({"alg": "ES256", "nonce": "n", "url": "u"});
        assert_eq!(
            parse(sign_flattened(&key, &h, b"{}").as_bytes()).unwrap_err(),
            JwsError::NeitherJwkNorKid
        );
        let h = json!({"alg": "ES256", "kid": 7, "nonce": "n", "url": "u"});
        assert!(matches!(
            parse(sign_flattened(&key, &h, b"{}").as_bytes()),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn header_rules() {
        let key = SigningKeyForTests::generate_p256();
        let mut h = header(&key, "ES256");
        h.as_object_mut().unwrap().remove("url");
        assert!(matches!(
            parse(sign_flattened(&key, &h, b"{}").as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        let mut h = header(&key, "ES256");
        h["crit"] = json!(["b64"]);
        h["b64"] = json!(false);
        assert!(matches!(
            parse(sign_flattened(&key, &h, b"{}").as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        // The embedded JWK must not carry private members.
        let mut h = header(&key, "ES256");
        h["jwk"]["d"] = json!("AAAA");
        assert!(matches!(
            parse(sign_flattened(&key, &h, b"{}").as_bytes()),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn serialization_rules() {
        let key = SigningKeyForTests::generate_p256();
        let body = sign_flattened(&key, &header(&key, "ES256"), b"{}");
        let v: Value = serde_json::from_str(&body).unwrap();
        // Compact serialization.
        let compact = format!(
            "{}.{}.{}",
            v["protected"].as_str().unwrap(),
            v["payload"].as_str().unwrap(),
            v["signature"].as_str().unwrap()
        );
        assert!(matches!(
            parse(compact.as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        // General serialization.
        let general = json!({"payload": v["payload"], "signatures": [{"protected": v["protected"], "signature": v["signature"]}]});
        assert!(matches!(
            parse(general.to_string().as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        // Unprotected header.
        let mut u = v.clone();
        u["header"] = json!({"kid": "x"});
        assert!(matches!(
            parse(u.to_string().as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        // Padding / standard alphabet.
        let mut p = v.clone();
        p["signature"] = json!(format!("{}=", v["signature"].as_str().unwrap()));
        assert!(matches!(
            parse(p.to_string().as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        let mut p = v.clone();
        p["payload"] = json!("e30+");
        assert!(matches!(
            parse(p.to_string().as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        // Missing members, wrong types, non-object.
        let mut m = v.clone();
        m.as_object_mut().unwrap().remove("signature");
        assert!(matches!(
            parse(m.to_string().as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        let mut m = v.clone();
        m["payload"] = json!(1);
        assert!(matches!(
            parse(m.to_string().as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        assert!(parse(b"[]").is_err());
        assert!(parse(b"").is_err());
        // Protected header that is not an object.
        let mut m = v.clone();
        m["protected"] = json!(b64::encode(b"[1]"));
        assert!(matches!(
            parse(m.to_string().as_bytes()),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn vector_files_parse() {
        let dir = format!("{}/tests/vectors", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read(format!(
            "{dir}/generated-es256-rfc8555-7.3-newaccount-jws.json"
        ))
        .unwrap();
        let jws = parse(&body).unwrap();
        let jwk = jws.embedded_jwk().unwrap().clone();
        jws.verify(&jwk).unwrap();
    }
}
