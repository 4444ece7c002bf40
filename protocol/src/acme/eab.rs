//! External account binding (RFC 8555 §7.3.4).
//!
//! The `externalAccountBinding` member of a newAccount payload is a
//! flattened JWS whose protected header carries a MAC algorithm (`HS256`,
//! `HS384` or `HS512`), the `kid` of the key the CA handed out and the
//! same `url` as the outer JWS, and no `nonce`; its payload is the account
//! key (the outer JWS's `jwk`); its signature is an HMAC under the
//! binding's key. [`parse`] checks the shape; [`UnverifiedEab::verify`]
//! checks the MAC (constant time) and that the payload is the account key.

use aws_lc_rs::hmac;
use serde_json::Value;

use super::b64;
use super::jwk::Jwk;

/// Why a binding was refused. Every variant maps to the ACME `malformed`
/// problem except [`EabError::BadMac`] and [`EabError::KeyMismatch`]
/// (`unauthorized`); the front end decides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EabError {
    /// Not a flattened JWS of the required shape.
    #[error("externalAccountBinding: {0}")]
    Malformed(String),
    /// The MAC does not verify under the key named by `kid`.
    #[error("externalAccountBinding: the MAC does not verify with the key named by kid")]
    BadMac,
    /// The payload is not the account key of the outer JWS.
    #[error("externalAccountBinding: the payload is not the account's key")]
    KeyMismatch,
}

fn malformed(msg: impl Into<String>) -> EabError {
    EabError::Malformed(msg.into())
}

/// The MAC algorithms RFC 8555 §7.3.4 allows ("MUST indicate a MAC-based
/// algorithm").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacAlgorithm {
    /// HMAC with SHA-256.
    Hs256,
    /// HMAC with SHA-384.
    Hs384,
    /// HMAC with SHA-512.
    Hs512,
}

impl MacAlgorithm {
    fn from_name(name: &str) -> Option<MacAlgorithm> {
        match name {
            "HS256" => Some(MacAlgorithm::Hs256),
            "HS384" => Some(MacAlgorithm::Hs384),
            "HS512" => Some(MacAlgorithm::Hs512),
            _ => None,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            MacAlgorithm::Hs256 => hmac::HMAC_SHA256,
            MacAlgorithm::Hs384 => hmac::HMAC_SHA384,
            MacAlgorithm::Hs512 => hmac::HMAC_SHA512,
        }
    }
}

/// A binding whose shape is valid but whose MAC is not yet checked.
#[derive(Debug, Clone)]
pub struct UnverifiedEab {
    /// The MAC algorithm.
    pub alg: MacAlgorithm,
    /// The key identifier the CA issued.
    pub kid: String,
    /// The `url` of the protected header.
    pub url: String,
    signing_input: Vec<u8>,
    payload: Vec<u8>,
    mac: Vec<u8>,
}

/// Parses the `externalAccountBinding` value of a newAccount payload.
pub fn parse(value: &Value) -> Result<UnverifiedEab, EabError> {
    let obj = value
        .as_object()
        .ok_or_else(|| malformed("not a JSON object"))?;
    if let Some(extra) = obj
        .keys()
        .find(|k| !["protected", "payload", "signature"].contains(&k.as_str()))
    {
        return Err(malformed(format!("unexpected member {extra:?}")));
    }
    let member = |name: &str| -> Result<&str, EabError> {
        obj.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(format!("member {name:?} is missing or not a string")))
    };
    let protected_b64 = member("protected")?;
    let payload_b64 = member("payload")?;
    let signature_b64 = member("signature")?;
    let protected = b64::decode(protected_b64)
        .ok_or_else(|| malformed("\"protected\" is not base64url without padding"))?;
    let payload = b64::decode(payload_b64)
        .ok_or_else(|| malformed("\"payload\" is not base64url without padding"))?;
    let mac = b64::decode(signature_b64)
        .ok_or_else(|| malformed("\"signature\" is not base64url without padding"))?;
    let header: Value = serde_json::from_slice(&protected)
        .map_err(|e| malformed(format!("protected header is not JSON: {e}")))?;
    let h = header
        .as_object()
        .ok_or_else(|| malformed("protected header is not a JSON object"))?;
    if h.contains_key("crit") {
        return Err(malformed("\"crit\" is not supported"));
    }
    if h.contains_key("nonce") {
        return Err(malformed("the binding must not carry a nonce"));
    }
    if h.contains_key("jwk") {
        return Err(malformed("the binding must name its key by kid, not jwk"));
    }
    let field = |name: &str| -> Result<String, EabError> {
        h.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| malformed(format!("protected header lacks string {name:?}")))
    };
    let alg_name = field("alg")?;
    let alg = MacAlgorithm::from_name(&alg_name).ok_or_else(|| {
        malformed(format!(
            "alg {alg_name:?} is not a MAC algorithm (HS256, HS384, HS512)"
        ))
    })?;
    let kid = field("kid")?;
    if kid.is_empty() || kid.len() > 256 {
        return Err(malformed("kid must be 1 to 256 characters"));
    }
    let url = field("url")?;
    let mut signing_input = Vec::with_capacity(protected_b64.len() + 1 + payload_b64.len());
    signing_input.extend_from_slice(protected_b64.as_bytes());
    signing_input.push(b'.');
    signing_input.extend_from_slice(payload_b64.as_bytes());
    Ok(UnverifiedEab {
        alg,
        kid,
        url,
        signing_input,
        payload,
        mac,
    })
}

impl UnverifiedEab {
    /// Checks the MAC under `key` (constant-time comparison) and that the
    /// payload is `account_key` (compared by RFC 7638 thumbprint).
    pub fn verify(&self, key: &[u8], account_key: &Jwk) -> Result<(), EabError> {
        let k = hmac::Key::new(self.alg.hmac(), key);
        hmac::verify(&k, &self.signing_input, &self.mac).map_err(|_| EabError::BadMac)?;
        let payload: Value = serde_json::from_slice(&self.payload)
            .map_err(|e| malformed(format!("payload is not JSON: {e}")))?;
        let jwk = Jwk::from_json(&payload)
            .map_err(|e| malformed(format!("payload is not a JWK: {e}")))?;
        if jwk.thumbprint() != account_key.thumbprint() {
            return Err(EabError::KeyMismatch);
        }
        Ok(())
    }
}

/// Builds a binding (what a client does); used by tests and tools.
pub fn sign(alg: MacAlgorithm, kid: &str, url: &str, key: &[u8], account_key: &Jwk) -> Value {
    let name = match alg {
        MacAlgorithm::Hs256 => "HS256",
        MacAlgorithm::Hs384 => "HS384",
        MacAlgorithm::Hs512 => "HS512",
    };
    let protected = b64::encode(
        serde_json::json!({"alg": name, "kid": kid, "url": url})
            .to_string()
            .as_bytes(),
    );
    let payload = b64::encode(account_key.to_json().to_string().as_bytes());
    let tag = hmac::sign(
        &hmac::Key::new(alg.hmac(), key),
        format!("{protected}.{payload}").as_bytes(),
    );
    serde_json::json!({
        "protected": protected,
        "payload": payload,
        "signature": b64::encode(tag.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use serde_json::json;

    fn account_key() -> Jwk {
        Jwk::from_json(&json!({
            "kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap()
    }

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const URL: &str = "https://ca.example/acme/new-account";

    #[test]
    fn round_trip_each_algorithm() {
        for alg in [
            MacAlgorithm::Hs256,
            MacAlgorithm::Hs384,
            MacAlgorithm::Hs512,
        ] {
            let v = sign(alg, "kid-1", URL, KEY, &account_key());
            let p = parse(&v).unwrap();
            assert_eq!((p.alg, p.kid.as_str(), p.url.as_str()), (alg, "kid-1", URL));
            p.verify(KEY, &account_key()).unwrap();
            assert_eq!(
                p.verify(b"another key", &account_key()),
                Err(EabError::BadMac)
            );
        }
    }

    #[test]
    fn payload_must_be_the_account_key() {
        let other = Jwk::from_json(&json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }))
        .unwrap();
        let v = sign(MacAlgorithm::Hs256, "k", URL, KEY, &other);
        assert_eq!(
            parse(&v).unwrap().verify(KEY, &account_key()),
            Err(EabError::KeyMismatch)
        );
    }

    #[test]
    fn tampering_breaks_the_mac() {
        let mut v = sign(MacAlgorithm::Hs256, "k", URL, KEY, &account_key());
        let forged = b64::encode(
            json!({"alg": "HS256", "kid": "other", "url": URL})
                .to_string()
                .as_bytes(),
        );
        v["protected"] = Value::String(forged);
        assert_eq!(
            parse(&v).unwrap().verify(KEY, &account_key()),
            Err(EabError::BadMac)
        );
    }

    #[test]
    fn shape_errors() {
        let good = sign(MacAlgorithm::Hs256, "k", URL, KEY, &account_key());
        let with_header = |h: Value| {
            let mut v = good.clone();
            v["protected"] = Value::String(b64::encode(h.to_string().as_bytes()));
            parse(&v)
        };
        for (h, why) in [
            (
                json!({"alg": "ES256", "kid": "k", "url": URL}),
                "MAC algorithm",
            ),
            (
                json!({"alg": "none", "kid": "k", "url": URL}),
                "MAC algorithm",
            ),
            (json!({"alg": "HS256", "url": URL}), "kid"),
            (json!({"alg": "HS256", "kid": "k"}), "url"),
            (
                json!({"alg": "HS256", "kid": "k", "url": URL, "nonce": "n"}),
                "nonce",
            ),
            (
                json!({"alg": "HS256", "kid": "k", "url": URL, "crit": ["x"]}),
                "crit",
            ),
            (json!({"alg": "HS256", "kid": "", "url": URL}), "kid"),
        ] {
            let e = with_header(h).unwrap_err();
            assert!(e.to_string().contains(why), "{e} should mention {why}");
        }
        assert!(parse(&json!("string")).is_err());
        let mut extra = good.clone();
        extra["header"] = json!({});
        assert!(parse(&extra).unwrap_err().to_string().contains("header"));
        let mut padded = good;
        padded["signature"] = Value::String("AAAA=".into());
        assert!(parse(&padded).is_err());
    }
}
