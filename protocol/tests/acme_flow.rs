//! End-to-end use of the public API the way the server uses it.
#![allow(clippy::unwrap_used, reason = "tests panic on unexpected failures")]

use ironseal_protocol::acme::jwk::Jwk;
use ironseal_protocol::acme::jws::testing::{sign_flattened, SigningKeyForTests};
use ironseal_protocol::acme::jws::{self, JwsError, KeyRef};
use ironseal_protocol::acme::problem::ProblemType;
use ironseal_protocol::acme::requests::{
    validate_contact, KeyChangeRequest, NewAccountRequest, NewOrderRequest,
};
use serde_json::json;

/// RFC 8555 §7.3: newAccount with an embedded JWK.
#[test]
fn new_account() {
    let key = SigningKeyForTests::generate_p256();
    let payload = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/rfc8555-7.3-newaccount.json"
    ))
    .unwrap();
    let h = json!({"alg": "ES256", "jwk": key.jwk(), "nonce": "n1", "url": "https://ca.test/new-account"});
    let body = sign_flattened(&key, &h, &payload);
    let jws = jws::parse(body.as_bytes()).unwrap();
    let KeyRef::Jwk(jwk) = jws.header.key.clone() else {
        panic!("expected jwk");
    };
    let verified = jws.verify(&jwk).unwrap();
    assert_eq!(verified.header.require_nonce().unwrap(), "n1");
    let req: NewAccountRequest = verified.payload_json().unwrap();
    for c in req.contact.unwrap() {
        validate_contact(&c).unwrap();
    }
    assert_eq!(jwk.thumbprint().len(), 43);
}

/// RFC 8555 §7.3.5: keyChange nests a JWS signed by the new key (no nonce).
#[test]
fn key_change() {
    let old = SigningKeyForTests::generate_ed25519();
    let new = SigningKeyForTests::generate_rsa2048();
    let url = "https://ca.test/key-change";
    let acct = "https://ca.test/acct/1";
    let inner_payload = json!({"account": acct, "oldKey": old.jwk()});
    let inner = sign_flattened(
        &new,
        &json!({"alg": "PS256", "jwk": new.jwk(), "url": url}),
        inner_payload.to_string().as_bytes(),
    );
    let outer = sign_flattened(
        &old,
        &json!({"alg": "EdDSA", "kid": acct, "nonce": "n2", "url": url}),
        inner.as_bytes(),
    );
    let outer = jws::parse(outer.as_bytes()).unwrap();
    let old_jwk = Jwk::from_json(&old.jwk()).unwrap();
    let outer = outer.verify(&old_jwk).unwrap();
    let inner = jws::parse(&outer.payload).unwrap();
    assert_eq!(inner.header.nonce, None);
    assert_eq!(inner.header.url, outer.header.url);
    let new_jwk = inner.embedded_jwk().unwrap().clone();
    let inner = inner.verify(&new_jwk).unwrap();
    let kc: KeyChangeRequest = inner.payload_json().unwrap();
    assert_eq!(kc.account, acct);
    assert_eq!(Jwk::from_json(&kc.old_key).unwrap(), old_jwk);
    assert_eq!(new_jwk.key_type_name(), "RSA");
}

#[test]
fn errors_map_to_problems() {
    let key = SigningKeyForTests::generate_p256();
    let body = sign_flattened(
        &key,
        &json!({"alg": "HS256", "kid": "k", "url": "u"}),
        b"{}",
    );
    let err = jws::parse(body.as_bytes()).unwrap_err();
    let problem = err.to_problem();
    assert_eq!(problem.kind, ProblemType::BadSignatureAlgorithm);
    assert_eq!(
        problem.to_json()["type"],
        json!("urn:ietf:params:acme:error:badSignatureAlgorithm")
    );
    assert!(problem.to_json()["algorithms"]
        .as_array()
        .unwrap()
        .contains(&json!("EdDSA")));
    assert_eq!(JwsError::MissingNonce.to_problem().status, 400);

    let p = NewOrderRequest::from_payload(br#"{"identifiers":[{"type":"x","value":"y"}]}"#)
        .unwrap_err();
    assert_eq!(
        p.to_json()["type"],
        json!("urn:ietf:params:acme:error:unsupportedIdentifier")
    );
}
