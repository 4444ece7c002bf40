//! ACME protocol conformance (RFC 8555, RFC 8738, RFC 9773) against the real
//! release binary on loopback. Positive flows use the instant-acme client;
//! negative cases are hand-built JWS requests (josekit signatures, our own
//! hyper + rustls client) so the server's error answers can be checked
//! exactly: problem type, HTTP status, and a fresh Replay-Nonce.
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test acme_protocol`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use instant_acme::{NewOrder, RevocationReason, RevocationRequest};
use ironseal_conformance::prelude::*;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};

/// RFC 8555 §7.4 + RFC 8738: http-01 for two DNS names and an IP address;
/// chain verifies to root.pem, SANs exact, pkilint clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_order_http01_dns_and_ip() {
    let env = Env::start("full-order").await;
    let (acct, ak) = env.account().await;
    let idents = [
        dns("a.full.example.test"),
        dns("b.full.example.test"),
        ip("127.0.0.1"),
    ];
    let issued = issue(&acct, &env.h01, None, &idents, None).await.unwrap();
    let chain = env.path().join("chain.pem");
    std::fs::write(&chain, &issued.chain).unwrap();
    blocking(|| {
        ironseal_conformance::certs::check_issued(
            &chain,
            &["a.full.example.test", "b.full.example.test", "127.0.0.1"],
            &env.srv.root(),
            &env.path().join("checks"),
            &[],
        )
    });
    // The order and the authorizations it carried are all valid now.
    let raw = env.raw().await;
    let o = raw
        .signed(&ak, Some(acct.id()), &issued.order_url, None)
        .await;
    o.expect_status(200, "order POST-as-GET");
    let o = o.json();
    assert_eq!(o["status"], "valid", "{o}");
    assert_eq!(o["certificate"], issued.cert_url.as_str());
    let ids = o["identifiers"].as_array().unwrap();
    assert_eq!(ids.len(), 3, "{o}");
    assert!(
        ids.contains(&json!({"type": "ip", "value": "127.0.0.1"})),
        "{o}"
    );
    for az in o["authorizations"].as_array().unwrap() {
        let a = raw
            .signed(&ak, Some(acct.id()), az.as_str().unwrap(), None)
            .await
            .json();
        assert_eq!(a["status"], "valid", "{a}");
        if a["identifier"]["type"] == "ip" {
            // RFC 8738 §7: no dns-01 for IP identifiers.
            assert!(
                a["challenges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c["type"] != "dns-01"),
                "IP authz offers dns-01: {a}"
            );
        }
    }
}

/// dns-01 for a wildcard: the authorization names the base domain, says
/// "wildcard": true and offers only dns-01 (RFC 8555 §7.1.3, §7.1.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_wildcard_authorization_offers_only_dns01() {
    let env = Env::start("wildcard").await;
    let (acct, key) = env.account().await;
    let raw = env.raw().await;
    let idents = [dns("*.w.example.test")];
    let mut order = acct.new_order(&NewOrder::new(&idents)).await.unwrap();
    let az_url = order.state().authorizations[0].url.clone();
    let az = raw.signed(&key, Some(acct.id()), &az_url, None).await;
    az.expect_status(200, "authz");
    let az = az.json();
    assert_eq!(az["wildcard"], json!(true), "{az}");
    assert_eq!(
        az["identifier"],
        json!({"type": "dns", "value": "w.example.test"}),
        "{az}"
    );
    let types: Vec<&str> = az["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["dns-01"], "{az}");
    let issued = finish(&mut order, &env.h01, Some(&env.dns), &idents, None)
        .await
        .unwrap();
    let chain = env.path().join("chain.pem");
    std::fs::write(&chain, &issued.chain).unwrap();
    blocking(|| {
        ironseal_conformance::certs::check_issued(
            &chain,
            &["*.w.example.test"],
            &env.srv.root(),
            &env.path().join("checks"),
            &[],
        )
    });
}

/// CAA (RFC 8659, RFC 8657) through pebble-challtestsrv: a record naming
/// another CA makes the authorization invalid with `caa`; one naming us
/// (the first hostname, `localhost`, is a CAA identity) with this
/// account's `accounturi` passes; a SERVFAIL on the CAA lookup refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caa_records_decide_validation() {
    let env = Env::start("caa").await;
    let (acct, key) = env.account().await;
    let raw = env.raw().await;
    let caa_error = |az: &Value| {
        assert_eq!(az["status"], "invalid", "{az}");
        let ch = az["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["status"] == "invalid")
            .cloned()
            .unwrap_or_else(|| panic!("no invalid challenge: {az}"));
        assert_eq!(
            ch["error"]["type"], "urn:ietf:params:acme:error:caa",
            "{ch}"
        );
        ch["error"]["detail"].as_str().unwrap_or("").to_string()
    };

    // Another CA, on the parent: refused (tree climbing).
    blocking(|| {
        env.dns
            .add_caa("deny.caa.example.test.", &[("issue", "other-ca.example")])
    })
    .unwrap();
    let idents = [dns("www.deny.caa.example.test")];
    let mut order = acct.new_order(&NewOrder::new(&idents)).await.unwrap();
    let err = authorize(&mut order, &env.h01, Some(&env.dns))
        .await
        .unwrap_err();
    assert!(err.contains("caa"), "{err}");
    let az_url = order.state().authorizations[0].url.clone();
    let az = raw
        .signed(&key, Some(acct.id()), &az_url, None)
        .await
        .json();
    let detail = caa_error(&az);
    assert!(detail.contains("other-ca.example"), "{detail}");

    // Us, for this account only: issued.
    let ours = format!("localhost; accounturi={}", acct.id());
    blocking(|| {
        env.dns
            .add_caa("allow.caa.example.test.", &[("issue", ours.as_str())])
    })
    .unwrap();
    issue(
        &acct,
        &env.h01,
        None,
        &[dns("allow.caa.example.test")],
        None,
    )
    .await
    .unwrap();
    // Another account of ours is not named: refused.
    let (other, other_key) = env.account().await;
    let mut order = other
        .new_order(&NewOrder::new(&[dns("x.allow.caa.example.test")]))
        .await
        .unwrap();
    assert!(authorize(&mut order, &env.h01, Some(&env.dns))
        .await
        .is_err());
    let az_url = order.state().authorizations[0].url.clone();
    let az = raw
        .signed(&other_key, Some(other.id()), &az_url, None)
        .await
        .json();
    assert!(caa_error(&az).contains("accounturi"));

    // The CAA lookup fails: refused with caa (the A lookup of the name
    // itself is answered, the parent's CAA query is not).
    blocking(|| env.dns.set_servfail("fail.caa.example.test.")).unwrap();
    let mut order = acct
        .new_order(&NewOrder::new(&[dns("www.fail.caa.example.test")]))
        .await
        .unwrap();
    assert!(authorize(&mut order, &env.h01, Some(&env.dns))
        .await
        .is_err());
    let az_url = order.state().authorizations[0].url.clone();
    let az = raw
        .signed(&key, Some(acct.id()), &az_url, None)
        .await
        .json();
    caa_error(&az);
}

/// keyChange (RFC 8555 §7.3.5): after a rollover the old key is refused and
/// the new one works; rolling over to another account's key is 409 + Location.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_change_rolls_over_and_refuses_old_or_taken_keys() {
    let env = Env::start("keychange").await;
    let raw = env.raw().await;
    let (mut acct, old) = env.account().await;
    let kid = acct.id().to_string();
    let creds = acct.update_key().await.expect("keyChange");
    let new = AcctKey::from_pkcs8(creds.private_key().secret_pkcs8_der());
    assert_eq!(acct.id(), kid);

    // The old key, with the account's kid: the signature no longer verifies
    // against the account key. The server answers malformed (400), as Boulder does.
    let r = raw.signed(&old, Some(&kid), &kid, None).await;
    r.expect_problem(400, "malformed", "old key with kid after keyChange");
    // The old key, by jwk: no account has it any more.
    let r = raw
        .signed(
            &old,
            None,
            &raw.url("newAccount"),
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    r.expect_problem(
        400,
        "accountDoesNotExist",
        "old key onlyReturnExisting after keyChange",
    );

    // The new key works through instant-acme and by hand, and finds the same account.
    acct.update_contacts(&["mailto:rolled@example.test"])
        .await
        .expect("new key works");
    let r = raw.signed(&new, Some(&kid), &kid, None).await;
    r.expect_status(200, "new key POST-as-GET account");
    assert_eq!(r.json()["contact"], json!(["mailto:rolled@example.test"]));
    let r = raw
        .signed(
            &new,
            None,
            &raw.url("newAccount"),
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    r.expect_status(200, "new key onlyReturnExisting");
    assert_eq!(r.header("Location").as_deref(), Some(kid.as_str()));

    // Roll over to a key another account already uses: 409 with that account's URL.
    let (other, other_key) = env.account().await;
    let url = raw.url("keyChange");
    let inner = jws_with(
        &other_key,
        &json!({"alg": "ES256", "jwk": other_key.jwk, "url": url}),
        &json!({"account": kid, "oldKey": new.jwk}).to_string(),
    );
    let nonce = raw.nonce().await;
    let outer = jws_with(
        &new,
        &header(&new, Some(&kid), Some(&nonce), &url),
        &inner.to_string(),
    );
    let r = raw.post_body(&url, &outer).await;
    r.expect_problem(409, "malformed", "keyChange to another account's key");
    assert_eq!(
        r.header("Location").as_deref(),
        Some(other.id()),
        "{}",
        r.describe()
    );
    // The account still has the key it had.
    raw.signed(&new, Some(&kid), &kid, None)
        .await
        .expect_status(200, "key unchanged");
}

/// Contact update (§7.3.2) and contact validation (invalidContact, unsupportedContact).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_update_and_bad_contacts_refused() {
    let env = Env::start("contacts").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    acct.update_contacts(&["mailto:ops@example.test"])
        .await
        .expect("update contacts");
    let r = raw.signed(&key, Some(acct.id()), acct.id(), None).await;
    assert_eq!(r.json()["contact"], json!(["mailto:ops@example.test"]));

    for (c, kind) in [
        ("mailto:a@b@c", "invalidContact"),
        ("tel:123", "unsupportedContact"),
    ] {
        let e = acct.update_contacts(&[c]).await.expect_err(c);
        assert_eq!(api_type(&e), format!("{ERR}{kind}"), "{c}: {e}");
        let r = raw
            .signed(
                &key,
                Some(acct.id()),
                acct.id(),
                Some(&json!({"contact": [c]})),
            )
            .await;
        r.expect_problem(400, kind, c);
        // And at newAccount.
        let k2 = AcctKey::generate();
        let r = raw
            .signed(
                &k2,
                None,
                &raw.url("newAccount"),
                Some(&json!({"termsOfServiceAgreed": true, "contact": [c]})),
            )
            .await;
        r.expect_problem(400, kind, &format!("newAccount {c}"));
    }
    // Nothing changed.
    let r = raw.signed(&key, Some(acct.id()), acct.id(), None).await;
    assert_eq!(r.json()["contact"], json!(["mailto:ops@example.test"]));
}

/// RFC 8555 §7.1.6: a deactivated authorization stays deactivated. The
/// client deactivates it while the http-01 validation is in flight (the
/// responder answers correctly, 3 s late); the validation's success must
/// not turn it valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_finishing_after_deactivation_does_not_revive_the_authorization() {
    let env = Env::start("authz-deactivate-race").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let key = std::sync::Arc::new(key);
    let kid = acct.id().to_string();
    let order = raw
        .signed(
            &key,
            Some(&kid),
            &raw.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "race.example.test"}]})),
        )
        .await;
    order.expect_status(201, "newOrder");
    let authz_url = order.json()["authorizations"][0]
        .as_str()
        .unwrap()
        .to_string();
    let az = raw.signed(&key, Some(&kid), &authz_url, None).await.json();
    let ch = az["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .unwrap()
        .clone();
    let token = ch["token"].as_str().unwrap();
    env.h01.set_delayed(
        token,
        &format!("{token}.{}", key.thumbprint()),
        std::time::Duration::from_secs(3),
    );
    let started = {
        let raw = env.raw().await;
        let (key, kid, url) = (
            key.clone(),
            kid.clone(),
            ch["url"].as_str().unwrap().to_string(),
        );
        tokio::spawn(async move { raw.signed(&key, Some(&kid), &url, Some(&json!({}))).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let d = raw
        .signed(
            &key,
            Some(&kid),
            &authz_url,
            Some(&json!({"status": "deactivated"})),
        )
        .await;
    d.expect_status(200, "deactivate the authorization while it is validated");
    assert_eq!(d.json()["status"], "deactivated");
    started
        .await
        .unwrap()
        .expect_status(200, "challenge response");
    // The validation ends about 3 s after it started; POST-as-GET waits for
    // a validation in flight, so this read comes after its outcome.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let after = raw.signed(&key, Some(&kid), &authz_url, None).await.json();
    assert_eq!(
        after["status"], "deactivated",
        "a validation finishing after deactivation revived the authorization: {after}"
    );
}

/// Deactivation (§7.3.6): afterwards every request of the account is unauthorized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivated_account_is_refused_everywhere() {
    let env = Env::start("deactivate").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    let r = raw
        .signed(
            &key,
            Some(&kid),
            &kid,
            Some(&json!({"status": "deactivated"})),
        )
        .await;
    r.expect_status(200, "deactivate");
    assert_eq!(r.json()["status"], "deactivated");
    let e = acct
        .new_order(&NewOrder::new(&[dns("x.example.test")]))
        .await
        .err()
        .expect("newOrder by a deactivated account succeeded");
    assert_eq!(api_type(&e), format!("{ERR}unauthorized"), "{e}");
    let r = raw
        .signed(
            &key,
            Some(&kid),
            &raw.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "x.example.test"}]})),
        )
        .await;
    r.expect_problem(403, "unauthorized", "newOrder after deactivation");
    raw.signed(&key, Some(&kid), &kid, None)
        .await
        .expect_problem(
            403,
            "unauthorized",
            "POST-as-GET account after deactivation",
        );
}

/// §7.3.6: "the server MUST NOT accept further requests authorized by that
/// account's key" -- that includes newAccount signed by it (jwk), which
/// Boulder and Pebble answer with 403 unauthorized ("An account with the
/// provided public key exists but is deactivated").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivated_key_refused_at_new_account() {
    let env = Env::start("deactivated-key").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    raw.signed(
        &key,
        Some(&kid),
        &kid,
        Some(&json!({"status": "deactivated"})),
    )
    .await
    .expect_status(200, "deactivate");
    let r = raw
        .signed(
            &key,
            None,
            &raw.url("newAccount"),
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    r.expect_problem(
        403,
        "unauthorized",
        "newAccount (onlyReturnExisting) with a deactivated account's key",
    );
    raw.signed(
        &key,
        None,
        &raw.url("newAccount"),
        Some(&new_account_payload()),
    )
    .await
    .expect_problem(
        403,
        "unauthorized",
        "newAccount with a deactivated account's key",
    );
}

/// newAccount with onlyReturnExisting (§7.3.1) and the idempotent newAccount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_account_only_return_existing_and_idempotent() {
    let env = Env::start("existing").await;
    let raw = env.raw().await;
    let key = AcctKey::generate();
    let na = raw.url("newAccount");
    raw.signed(&key, None, &na, Some(&json!({"onlyReturnExisting": true})))
        .await
        .expect_problem(
            400,
            "accountDoesNotExist",
            "onlyReturnExisting, unknown key",
        );
    let r1 = raw
        .signed(&key, None, &na, Some(&new_account_payload()))
        .await;
    r1.expect_status(201, "newAccount");
    let loc = r1.header("Location").expect("Location");
    assert_eq!(r1.json()["status"], "valid");
    let r2 = raw
        .signed(&key, None, &na, Some(&new_account_payload()))
        .await;
    r2.expect_status(200, "newAccount again with the same key");
    assert_eq!(r2.header("Location").as_deref(), Some(loc.as_str()));
    let r3 = raw
        .signed(&key, None, &na, Some(&json!({"onlyReturnExisting": true})))
        .await;
    r3.expect_status(200, "onlyReturnExisting, known key");
    assert_eq!(r3.header("Location").as_deref(), Some(loc.as_str()));
    // Terms must be agreed (rfc-divergences §7.3).
    raw.signed(&AcctKey::generate(), None, &na, Some(&json!({})))
        .await
        .expect_problem(
            403,
            "userActionRequired",
            "newAccount without termsOfServiceAgreed",
        );
}

/// Broken JWS requests (§6.2-§6.5): exact problem types and a fresh nonce each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_jws_gets_exact_problem_and_fresh_nonce() {
    let env = Env::start("badjws").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    let na = raw.url("newAccount");
    let payload = new_account_payload().to_string();

    // alg "none": unsigned.
    let n = raw.nonce().await;
    let h = json!({"alg": "none", "jwk": key.jwk, "nonce": n, "url": na});
    let body = json!({"protected": b64(h.to_string()), "payload": b64(&payload), "signature": ""});
    let v =
        raw.post_body(&na, &body)
            .await
            .expect_problem(400, "badSignatureAlgorithm", "alg none");
    assert!(
        v["algorithms"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("ES256"))),
        "{v}"
    );

    // HS256 keyed with some secret.
    let n = raw.nonce().await;
    let h = json!({"alg": "HS256", "kid": kid, "nonce": n, "url": kid});
    let input = format!("{}.{}", b64(h.to_string()), b64(""));
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            b"0123456789abcdef0123456789abcdef",
        ),
        input.as_bytes(),
    );
    let body =
        json!({"protected": b64(h.to_string()), "payload": "", "signature": b64(mac.as_ref())});
    raw.post_body(&kid, &body)
        .await
        .expect_problem(400, "badSignatureAlgorithm", "HS256");

    // url header differs from the request URL.
    let n = raw.nonce().await;
    let body = jws_with(
        &key,
        &header(&key, Some(&kid), Some(&n), &raw.url("newOrder")),
        "",
    );
    raw.post_body(&kid, &body)
        .await
        .expect_problem(403, "unauthorized", "url mismatch");

    // jwk and kid together.
    let n = raw.nonce().await;
    let mut h = header(&key, Some(&kid), Some(&n), &kid);
    h["jwk"] = key.jwk.clone();
    raw.post_body(&kid, &jws_with(&key, &h, ""))
        .await
        .expect_problem(400, "malformed", "jwk + kid");

    // unknown kid.
    let ghost = format!("{}/acme/acct/doesnotexist0000", env.srv.base_url());
    let n = raw.nonce().await;
    let body = jws_with(&key, &header(&key, Some(&ghost), Some(&n), &ghost), "");
    raw.post_body(&ghost, &body)
        .await
        .expect_problem(400, "accountDoesNotExist", "unknown kid");

    // Replayed nonce: badNonce, and the nonce on that error works.
    let n = raw.nonce().await;
    let body = jws_with(&key, &header(&key, Some(&kid), Some(&n), &kid), "");
    raw.post_body(&kid, &body)
        .await
        .expect_status(200, "first use of a nonce");
    let r = raw.post_body(&kid, &body).await;
    r.expect_problem(400, "badNonce", "replayed nonce");
    let fresh = r.nonce().unwrap();
    assert_ne!(fresh, n);
    let body = jws_with(&key, &header(&key, Some(&kid), Some(&fresh), &kid), "");
    raw.post_body(&kid, &body)
        .await
        .expect_status(200, "nonce from the badNonce response");

    // Missing nonce.
    let body = jws_with(&key, &header(&key, Some(&kid), None, &kid), "");
    raw.post_body(&kid, &body)
        .await
        .expect_problem(400, "badNonce", "missing nonce");

    // Bad signature: signed by another key under this kid, and a flipped bit.
    let n = raw.nonce().await;
    let other = AcctKey::generate();
    let body = jws_with(&other, &header(&key, Some(&kid), Some(&n), &kid), "");
    raw.post_body(&kid, &body)
        .await
        .expect_problem(400, "malformed", "signature by another key");
    let n = raw.nonce().await;
    let mut body = jws_with(&key, &header(&key, Some(&kid), Some(&n), &kid), "");
    let mut sig = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        body["signature"].as_str().unwrap(),
    )
    .unwrap();
    sig[10] ^= 1;
    body["signature"] = json!(b64(sig));
    raw.post_body(&kid, &body)
        .await
        .expect_problem(400, "malformed", "tampered signature");

    // Wrong Content-Type: 415.
    let n = raw.nonce().await;
    let body = jws_with(&key, &header(&key, Some(&kid), Some(&n), &kid), "");
    raw.request(
        "POST",
        &kid,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
    .expect_problem(415, "malformed", "Content-Type application/json");

    // Body over 64 KiB: 413.
    let n = raw.nonce().await;
    let big =
        json!({"contact": ["mailto:x@example.test"], "pad": "x".repeat(70 * 1024)}).to_string();
    let body = jws_with(&key, &header(&key, Some(&kid), Some(&n), &kid), &big);
    raw.post_body(&kid, &body)
        .await
        .expect_problem(413, "malformed", "65+ KiB body");

    // Compact serialization.
    let n = raw.nonce().await;
    let body = jws_with(&key, &header(&key, Some(&kid), Some(&n), &kid), "");
    let compact = format!(
        "{}.{}.{}",
        body["protected"].as_str().unwrap(),
        body["payload"].as_str().unwrap(),
        body["signature"].as_str().unwrap()
    );
    raw.request(
        "POST",
        &kid,
        Some("application/jose+json"),
        compact.into_bytes(),
    )
    .await
    .expect_problem(400, "malformed", "compact serialization");

    // After all that the account is intact and a well-formed request works.
    raw.signed(&key, Some(&kid), &kid, None)
        .await
        .expect_status(200, "sane request");
}

/// POST-as-GET is required (§6.3): GET on an order is 405, a payload on the
/// certificate URL is malformed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_as_get_required() {
    let env = Env::start("postasget").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let issued = issue(&acct, &env.h01, None, &[dns("pag.example.test")], None)
        .await
        .unwrap();
    raw.get(&issued.order_url)
        .await
        .expect_problem(405, "malformed", "GET order");
    raw.get(&issued.cert_url)
        .await
        .expect_problem(405, "malformed", "GET certificate");
    raw.signed(&key, Some(acct.id()), &issued.cert_url, Some(&json!({})))
        .await
        .expect_problem(400, "malformed", "non-empty payload to the certificate URL");
    raw.signed(&key, Some(acct.id()), &issued.order_url, Some(&json!({})))
        .await
        .expect_problem(400, "malformed", "non-empty payload to the order URL");
    let r = raw
        .signed(&key, Some(acct.id()), &issued.cert_url, None)
        .await;
    r.expect_status(200, "POST-as-GET certificate");
    assert!(
        r.header("Content-Type")
            .unwrap_or_default()
            .starts_with("application/pem-certificate-chain"),
        "{}",
        r.describe()
    );
    assert_eq!(r.text(), issued.chain);
}

/// finalize errors (§7.4): orderNotReady before ready and after valid;
/// badCSR for a foreign name and for the account key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_refuses_unready_order_and_bad_csr() {
    let env = Env::start("finalize").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    let idents = [dns("fin.example.test")];
    let mut order = acct.new_order(&NewOrder::new(&idents)).await.unwrap();
    let fin = order.state().finalize.clone();
    let names = vec!["fin.example.test".to_string()];
    let good_key = AcctKey::generate();
    let csr_ok = csr(&names, &good_key.rcgen());
    let fin_req = |c: &[u8]| json!({"csr": b64(c)});

    raw.signed(&key, Some(&kid), &fin, Some(&fin_req(&csr_ok)))
        .await
        .expect_problem(403, "orderNotReady", "finalize while pending");

    authorize(&mut order, &env.h01, None).await.unwrap();
    let extra = csr(
        &["fin.example.test".into(), "other.example.test".into()],
        &good_key.rcgen(),
    );
    raw.signed(&key, Some(&kid), &fin, Some(&fin_req(&extra)))
        .await
        .expect_problem(400, "badCSR", "CSR with a name not in the order");
    let acct_key_csr = csr(&names, &key.rcgen());
    raw.signed(&key, Some(&kid), &fin, Some(&fin_req(&acct_key_csr)))
        .await
        .expect_problem(400, "badCSR", "CSR with the account key");
    raw.signed(&key, Some(&kid), &fin, Some(&json!({"csr": "!!!"})))
        .await
        .expect_problem(400, "badCSR", "csr not base64url");
    // The order is still ready after the refused CSRs.
    let st = raw.signed(&key, Some(&kid), order.url(), None).await.json();
    assert_eq!(st["status"], "ready", "{st}");

    let r = raw
        .signed(&key, Some(&kid), &fin, Some(&fin_req(&csr_ok)))
        .await;
    r.expect_status(200, "finalize");
    let mut st = r.json();
    for _ in 0..50 {
        if st["status"] != "processing" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        st = raw.signed(&key, Some(&kid), order.url(), None).await.json();
    }
    assert_eq!(st["status"], "valid", "{st}");
    raw.signed(&key, Some(&kid), &fin, Some(&fin_req(&csr_ok)))
        .await
        .expect_problem(403, "orderNotReady", "second finalize on a valid order");
}

/// The orders list (§7.1.2.1) pages 50 at a time with Link rel="next".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_list_pages_fifty_with_link_next() {
    let env = Env::start("orders").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    let mut created = std::collections::BTreeSet::new();
    for i in 0..55 {
        let o = acct
            .new_order(&NewOrder::new(&[dns(&format!("o{i}.page.example.test"))]))
            .await
            .unwrap();
        created.insert(o.url().to_string());
    }
    let orders_url = raw.signed(&key, Some(&kid), &kid, None).await.json()["orders"]
        .as_str()
        .unwrap()
        .to_string();
    let next_of = |r: &Resp| -> Option<String> {
        r.headers_all("Link").into_iter().find_map(|l| {
            l.contains("rel=\"next\"").then(|| {
                l.split_once('<')
                    .unwrap()
                    .1
                    .split_once('>')
                    .unwrap()
                    .0
                    .to_string()
            })
        })
    };
    let p1 = raw.signed(&key, Some(&kid), &orders_url, None).await;
    p1.expect_status(200, "orders page 1");
    let l1: Vec<String> = serde_json::from_value(p1.json()["orders"].clone()).unwrap();
    assert_eq!(l1.len(), 50, "{}", p1.describe());
    let next =
        next_of(&p1).unwrap_or_else(|| panic!("page 1 has no Link rel=next: {}", p1.describe()));
    let p2 = raw.signed(&key, Some(&kid), &next, None).await;
    p2.expect_status(200, "orders page 2");
    let l2: Vec<String> = serde_json::from_value(p2.json()["orders"].clone()).unwrap();
    assert_eq!(l2.len(), 5, "{}", p2.describe());
    assert_eq!(
        next_of(&p2),
        None,
        "page 2 has a next link: {}",
        p2.describe()
    );
    let all: std::collections::BTreeSet<String> = l1.into_iter().chain(l2).collect();
    assert_eq!(all, created, "pages do not list exactly the created orders");
}

/// Revocation (§7.6) and its effects: CRL, ARI, alreadyRevoked,
/// badRevocationReason, revocation by the certificate key, key blocking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_crl_and_ari_and_blocks_key() {
    let env = Env::start("revoke").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    let work = env.path().join("revoke");
    std::fs::create_dir_all(&work).unwrap();

    let c1 = issue(&acct, &env.h01, None, &[dns("r1.example.test")], None)
        .await
        .unwrap();
    let leaf1 = work.join("leaf1.pem");
    std::fs::write(&leaf1, c1.leaf_pem()).unwrap();
    let serial1 = norm_serial(&blocking(|| {
        ironseal_conformance::certs::serial_hex(&leaf1)
    }));
    assert_eq!(serial1, der_serial(&c1.leaf_der));
    let crl_url = blocking(|| crl_dp(&leaf1));
    let (before, _) = blocking(|| crl_serials(&crl_url, &work));
    assert!(
        !before.contains(&serial1),
        "fresh certificate already on the CRL"
    );

    // Reason 7 is not a subscriber reason; nothing is revoked.
    let rv = |der: &[u8], reason: u8| json!({"certificate": b64(der), "reason": reason});
    raw.signed(
        &key,
        Some(&kid),
        &raw.url("revokeCert"),
        Some(&rv(&c1.leaf_der, 7)),
    )
    .await
    .expect_problem(400, "badRevocationReason", "reason 7");
    raw.signed(
        &key,
        Some(&kid),
        &raw.url("revokeCert"),
        Some(&rv(&c1.leaf_der, 6)),
    )
    .await
    .expect_problem(400, "badRevocationReason", "reason 6 (certificateHold)");

    // Another account may not revoke it.
    let (_, k2) = env.account().await;
    let kid2 = raw
        .signed(
            &k2,
            None,
            &raw.url("newAccount"),
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await
        .header("Location")
        .unwrap();
    raw.signed(
        &k2,
        Some(&kid2),
        &raw.url("revokeCert"),
        Some(&rv(&c1.leaf_der, 0)),
    )
    .await
    .expect_problem(403, "unauthorized", "revoke by another account");

    // Revoke by the owning account, reason 4 (superseded), through instant-acme.
    let der = CertificateDer::from(c1.leaf_der.clone());
    acct.revoke(&RevocationRequest {
        certificate: &der,
        reason: Some(RevocationReason::Superseded),
    })
    .await
    .expect("revoke by account");
    let (after, text) = blocking(|| crl_serials(&crl_url, &work));
    assert!(
        after.contains(&serial1),
        "CRL at {crl_url} does not list {serial1}:\n{text}"
    );
    let block = text
        .split("Serial Number:")
        .find(|b| norm_serial(b.lines().next().unwrap_or("")) == serial1)
        .unwrap();
    assert!(
        block.contains("Superseded"),
        "reason not on the CRL entry:\n{block}"
    );
    // The CRL itself: signed by the issuer, RFC 5280-clean per pkilint.
    let ca_file = work.join("issuer-and-root.pem");
    let blocks = ironseal_conformance::certs::pem_blocks(&c1.chain);
    let root_pem = std::fs::read_to_string(env.srv.root()).unwrap();
    std::fs::write(&ca_file, format!("{}{root_pem}", blocks[1..].concat())).unwrap();
    let crl_file = blocking(|| crl_fetch(&crl_url, &work));
    blocking(|| crl_check(&crl_file, &ca_file));
    let cid1 = cert_id_of(&c1.leaf_pem(), &work);
    let (_, end, _) = ari(&raw, &cid1).await;
    assert!(
        end < time::OffsetDateTime::now_utc(),
        "ARI window of a revoked cert ends {end}"
    );

    let e = acct
        .revoke(&RevocationRequest {
            certificate: &der,
            reason: Some(RevocationReason::Superseded),
        })
        .await
        .expect_err("second revocation");
    assert_eq!(api_type(&e), format!("{ERR}alreadyRevoked"), "{e}");
    raw.signed(
        &key,
        Some(&kid),
        &raw.url("revokeCert"),
        Some(&rv(&c1.leaf_der, 0)),
    )
    .await
    .expect_problem(400, "alreadyRevoked", "second revocation (raw)");

    // Revoke by the certificate's own key (jwk), reason keyCompromise.
    let ckey = AcctKey::generate();
    let c2 = issue(
        &acct,
        &env.h01,
        None,
        &[dns("r2.example.test")],
        Some(&ckey),
    )
    .await
    .unwrap();
    // A key that is not the certificate's is refused.
    raw.signed(
        &AcctKey::generate(),
        None,
        &raw.url("revokeCert"),
        Some(&rv(&c2.leaf_der, 1)),
    )
    .await
    .expect_problem(403, "unauthorized", "revoke by an unrelated jwk");
    raw.signed(
        &ckey,
        None,
        &raw.url("revokeCert"),
        Some(&rv(&c2.leaf_der, 1)),
    )
    .await
    .expect_status(200, "revoke by certificate key");
    let serial2 = der_serial(&c2.leaf_der);
    let (after, text) = blocking(|| crl_serials(&crl_url, &work));
    assert!(
        after.contains(&serial2),
        "CRL does not list {serial2}:\n{text}"
    );

    // keyCompromise blocks the key: a CSR reusing it is refused.
    let mut order = acct
        .new_order(&NewOrder::new(&[dns("r3.example.test")]))
        .await
        .unwrap();
    authorize(&mut order, &env.h01, None).await.unwrap();
    let fin = order.state().finalize.clone();
    raw.signed(
        &key,
        Some(&kid),
        &fin,
        Some(&json!({"csr": b64(csr(&["r3.example.test".into()], &ckey.rcgen()))})),
    )
    .await
    .expect_problem(400, "badCSR", "CSR with a keyCompromise-revoked key");
    // ... and as an account key.
    raw.signed(
        &ckey,
        None,
        &raw.url("newAccount"),
        Some(&new_account_payload()),
    )
    .await
    .expect_problem(400, "badPublicKey", "newAccount with a compromised key");
    // A fresh key still works on the same order.
    let ok = csr(&["r3.example.test".into()], &AcctKey::generate().rcgen());
    raw.signed(&key, Some(&kid), &fin, Some(&json!({"csr": b64(ok)})))
        .await
        .expect_status(200, "finalize with a fresh key");
}

/// ARI (RFC 9773): a fresh window inside the validity with Retry-After;
/// `replaces` by another account is unauthorized; by the owner it works once,
/// then alreadyReplaced (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ari_window_and_replaces_once_by_owner_only() {
    let env = Env::start("ari").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let work = env.path().join("ari");
    std::fs::create_dir_all(&work).unwrap();
    let idents = [dns("ari.example.test")];
    let c = issue(&acct, &env.h01, None, &idents, None).await.unwrap();
    let leaf = work.join("leaf.pem");
    std::fs::write(&leaf, c.leaf_pem()).unwrap();
    let (nb, na) = ironseal_conformance::certs::validity(&leaf);
    let cid = cert_id_of(&c.leaf_pem(), &work);
    let (start, end, retry_after) = ari(&raw, &cid).await;
    assert!(
        nb <= start && start < end && end <= na,
        "window {start}..{end} not inside {nb}..{na}"
    );
    assert!(
        start > time::OffsetDateTime::now_utc(),
        "fresh certificate's window already open: {start}"
    );
    assert_eq!(
        retry_after.as_deref(),
        Some("1"),
        "Retry-After (--ari-retry-after-secs 1)"
    );
    // instant-acme agrees.
    let (aki, ser) = cid.split_once('.').unwrap();
    let cert_ident = instant_acme::CertificateIdentifier {
        authority_key_identifier: aki.to_string().into(),
        serial: ser.to_string().into(),
    };
    let (info, _) = acct.renewal_info(&cert_ident).await.expect("renewal_info");
    assert_eq!(info.suggested_window.start, start);
    // Unknown certID: 404.
    let bogus = format!("{aki}.AQIDBAUGBwg");
    let r = raw
        .get(&format!("{}/{bogus}", raw.url("renewalInfo")))
        .await;
    assert_eq!(r.status, 404, "{}", r.describe());

    // Operator-requested early renewal (admin API) moves the window into the past.
    let c2 = issue(&acct, &env.h01, None, &[dns("early.example.test")], None)
        .await
        .unwrap();
    let serial2 = c2.url_serial();
    let admin = format!("{}/admin/v1/certificates/{serial2}", env.srv.base_url());
    let auth = format!("Bearer {}", env.srv.admin_key);
    let http = env.srv.client();
    let r = http
        .request("POST", &format!("{admin}/renew-early"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        r.status,
        401,
        "renew-early without the admin key: {}",
        r.describe()
    );
    let r = http
        .request(
            "POST",
            &format!("{admin}/renew-early"),
            &[("Authorization", &auth)],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "renew-early: {}", r.describe());
    let r = http
        .request("GET", &admin, &[("Authorization", &auth)], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "admin GET certificate: {}", r.describe());
    let v = r.json();
    assert_eq!(v["renewEarly"], json!(true), "{v}");
    let (_, end2, _) = ari(&raw, &cert_id_of(&c2.leaf_pem(), &work)).await;
    assert!(
        end2 < time::OffsetDateTime::now_utc(),
        "renew-early window ends {end2}"
    );

    // Another account may not replace it.
    let (other, okey) = env.account().await;
    let e = other
        .new_order(&NewOrder::new(&idents).replaces(cert_ident.clone()))
        .await
        .err()
        .expect("replaces by another account accepted");
    assert_eq!(api_type(&e), format!("{ERR}unauthorized"), "{e}");
    raw.signed(
        &okey,
        Some(other.id()),
        &raw.url("newOrder"),
        Some(&json!({"identifiers": [{"type":"dns","value":"ari.example.test"}], "replaces": cid})),
    )
    .await
    .expect_problem(403, "unauthorized", "replaces by another account");

    // The owner: 201, replaces echoed; after finalize, a second one is alreadyReplaced.
    let r = raw
        .signed(&key, Some(acct.id()), &raw.url("newOrder"), Some(&json!({"identifiers": [{"type":"dns","value":"ari.example.test"}], "replaces": cid})))
        .await;
    r.expect_status(201, "replaces by the owner");
    assert_eq!(r.json()["replaces"], json!(cid));
    let order_url = r.header("Location").unwrap();
    let mut order = acct.order(order_url).await.unwrap();
    finish(&mut order, &env.h01, None, &idents, None)
        .await
        .unwrap();
    let e = acct
        .new_order(&NewOrder::new(&idents).replaces(cert_ident.clone()))
        .await
        .err()
        .expect("second replaces accepted");
    assert_eq!(api_type(&e), format!("{ERR}alreadyReplaced"), "{e}");
    raw.signed(
        &key,
        Some(acct.id()),
        &raw.url("newOrder"),
        Some(&json!({"identifiers": [{"type":"dns","value":"ari.example.test"}], "replaces": cid})),
    )
    .await
    .expect_problem(409, "alreadyReplaced", "second replaces");
}

/// An unknown profile is invalidProfile (draft-ietf-acme-profiles).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_profile_is_invalid_profile() {
    let env = Env::start("profile").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let idents = [dns("prof.example.test")];
    let e = acct
        .new_order(&NewOrder::new(&idents).profile("no-such-profile"))
        .await
        .err()
        .expect("unknown profile accepted");
    assert_eq!(api_type(&e), format!("{ERR}invalidProfile"), "{e}");
    raw.signed(&key, Some(acct.id()), &raw.url("newOrder"), Some(&json!({"identifiers": [{"type":"dns","value":"prof.example.test"}], "profile": "no-such-profile"})))
        .await
        .expect_problem(400, "invalidProfile", "unknown profile");
    // The advertised one works.
    let profiles: Vec<String> = acct.profiles().map(|p| p.name.to_string()).collect();
    assert_eq!(profiles, vec!["default".to_string()]);
    let o = acct
        .new_order(&NewOrder::new(&idents).profile("default"))
        .await
        .unwrap();
    let _: Value = json!(o.url());
}

/// More of §6-§7 that clients rely on: key-reference rules per endpoint,
/// cross-account access, newNonce, keyChange inner-JWS rules, concurrent
/// finalize, and a failed http-01 validation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_reference_cross_account_nonce_and_failed_validation_rules() {
    let env = Env::start("misc").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    let (other, okey) = env.account().await;
    let okid = other.id().to_string();

    // newNonce: HEAD 200, GET 204, both with a nonce and Cache-Control: no-store (§7.2).
    for (m, st) in [("HEAD", 200), ("GET", 204)] {
        let r = raw.request(m, &raw.url("newNonce"), None, Vec::new()).await;
        assert_eq!(r.status, st, "{m} newNonce: {}", r.describe());
        assert!(r.nonce().is_some(), "{m} newNonce without Replay-Nonce");
        assert_eq!(
            r.header("Cache-Control").as_deref(),
            Some("no-store"),
            "{m} newNonce"
        );
    }

    // newAccount must use jwk, everything else kid (§6.2).
    raw.signed(
        &key,
        Some(&kid),
        &raw.url("newAccount"),
        Some(&new_account_payload()),
    )
    .await
    .expect_problem(400, "malformed", "newAccount signed with kid");
    raw.signed(
        &key,
        None,
        &raw.url("newOrder"),
        Some(&json!({"identifiers": [{"type":"dns","value":"m.example.test"}]})),
    )
    .await
    .expect_problem(400, "malformed", "newOrder signed with jwk");

    // Another account's resources.
    let issued = issue(&acct, &env.h01, None, &[dns("m.example.test")], None)
        .await
        .unwrap();
    raw.signed(&okey, Some(&okid), &issued.order_url, None)
        .await
        .expect_problem(403, "unauthorized", "another account's order");
    raw.signed(&okey, Some(&okid), &issued.cert_url, None)
        .await
        .expect_problem(403, "unauthorized", "another account's certificate");
    raw.signed(&okey, Some(&okid), &kid, None)
        .await
        .expect_problem(403, "unauthorized", "another account's account URL");
    let orders = format!("{kid}/orders");
    raw.signed(&okey, Some(&okid), &orders, None)
        .await
        .expect_problem(403, "unauthorized", "another account's orders list");

    // keyChange inner-JWS rules (§7.3.5).
    let url = raw.url("keyChange");
    let newk = AcctKey::generate();
    let kc = |inner_h: Value, inner_p: Value, signer: &AcctKey| {
        jws_with(signer, &inner_h, &inner_p.to_string())
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            kc(
                json!({"alg":"ES256","jwk":newk.jwk,"url":url,"nonce":"abc"}),
                json!({"account":kid,"oldKey":key.jwk}),
                &newk,
            ),
            400,
            "malformed",
            "inner JWS with a nonce",
        ),
        (
            kc(
                json!({"alg":"ES256","jwk":newk.jwk,"url":raw.url("newOrder")}),
                json!({"account":kid,"oldKey":key.jwk}),
                &newk,
            ),
            400,
            "malformed",
            "inner url differs",
        ),
        (
            kc(
                json!({"alg":"ES256","jwk":newk.jwk,"url":url}),
                json!({"account":okid,"oldKey":key.jwk}),
                &newk,
            ),
            403,
            "unauthorized",
            "inner payload names another account",
        ),
        (
            kc(
                json!({"alg":"ES256","jwk":newk.jwk,"url":url}),
                json!({"account":kid,"oldKey":okey.jwk}),
                &newk,
            ),
            403,
            "unauthorized",
            "oldKey is not the account key",
        ),
        (
            kc(
                json!({"alg":"ES256","jwk":newk.jwk,"url":url}),
                json!({"account":kid,"oldKey":key.jwk}),
                &AcctKey::generate(),
            ),
            400,
            "malformed",
            "inner JWS not signed by the new key",
        ),
    ];
    for (inner, st, kind, what) in cases {
        let n = raw.nonce().await;
        let outer = jws_with(
            &key,
            &header(&key, Some(&kid), Some(&n), &url),
            &inner.to_string(),
        );
        raw.post_body(&url, &outer)
            .await
            .expect_problem(st, kind, what);
    }
    raw.signed(&key, Some(&kid), &kid, None)
        .await
        .expect_status(200, "account key unchanged");

    // Two concurrent finalize requests: exactly one is accepted (§7.4).
    let idents = [dns("race.example.test")];
    let mut order = acct.new_order(&NewOrder::new(&idents)).await.unwrap();
    authorize(&mut order, &env.h01, None).await.unwrap();
    let fin = order.state().finalize.clone();
    let body = |k: &AcctKey| json!({"csr": b64(csr(&["race.example.test".into()], &k.rcgen()))});
    let (b1, b2) = (body(&AcctKey::generate()), body(&AcctKey::generate()));
    let (r1, r2) = tokio::join!(
        raw.signed(&key, Some(&kid), &fin, Some(&b1)),
        raw.signed(&key, Some(&kid), &fin, Some(&b2))
    );
    let mut sts = [r1.status, r2.status];
    sts.sort();
    assert_eq!(
        sts,
        [200, 403],
        "concurrent finalize:\n{}\n{}",
        r1.describe(),
        r2.describe()
    );
    let loser = if r1.status == 403 { &r1 } else { &r2 };
    loser.expect_problem(403, "orderNotReady", "losing concurrent finalize");

    // A wrong http-01 response: challenge and authorization invalid,
    // the order invalid (§7.1.6, §8.3).
    let mut order = acct
        .new_order(&NewOrder::new(&[dns("wrong.example.test")]))
        .await
        .unwrap();
    let az_url = order.state().authorizations[0].url.clone();
    let az = raw.signed(&key, Some(&kid), &az_url, None).await.json();
    let ch = az["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .unwrap()
        .clone();
    env.h01
        .set(ch["token"].as_str().unwrap(), "not-the-key-authorization");
    let r = raw
        .signed(
            &key,
            Some(&kid),
            ch["url"].as_str().unwrap(),
            Some(&json!({})),
        )
        .await;
    r.expect_status(200, "challenge POST");
    let mut c = r.json();
    for _ in 0..50 {
        if c["status"] != "processing" && c["status"] != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        c = raw
            .signed(&key, Some(&kid), ch["url"].as_str().unwrap(), None)
            .await
            .json();
    }
    assert_eq!(c["status"], "invalid", "{c}");
    assert_eq!(c["error"]["type"], format!("{ERR}incorrectResponse"), "{c}");
    let az = raw.signed(&key, Some(&kid), &az_url, None).await.json();
    assert_eq!(az["status"], "invalid", "{az}");
    let st = order.refresh().await.map(|s| s.status);
    assert!(
        matches!(st, Ok(instant_acme::OrderStatus::Invalid)),
        "order after failed validation: {st:?}"
    );
}

/// Identifier validation at newOrder (§7.4, rfc-divergences "§7.4
/// identifiers") and JWK checks at newAccount (badPublicKey).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_identifiers_and_account_keys_refused() {
    let env = Env::start("idents").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    let no = raw.url("newOrder");
    let order = |ids: Value| json!({ "identifiers": ids });

    let v = raw
        .signed(
            &key,
            Some(&kid),
            &no,
            Some(&order(
                json!([{"type": "email", "value": "a@example.test"}]),
            )),
        )
        .await
        .expect_problem(400, "unsupportedIdentifier", "unknown identifier type");
    assert_eq!(v["subproblems"].as_array().map(Vec::len), Some(1), "{v}");

    let v = raw
        .signed(
            &key,
            Some(&kid),
            &no,
            Some(&order(
                json!([{"type": "dns", "value": "bad..name.example"}]),
            )),
        )
        .await
        .expect_problem(400, "malformed", "one bad DNS name");
    assert_eq!(
        v["identifier"],
        json!({"type": "dns", "value": "bad..name.example"}),
        "{v}"
    );

    for (bad, what) in [
        (
            json!({"type": "ip", "value": "127.000.0.1"}),
            "non-canonical IP",
        ),
        (
            json!({"type": "dns", "value": "a.*.example.test"}),
            "inner wildcard",
        ),
        (
            json!({"type": "dns", "value": "-x.example.test"}),
            "leading hyphen",
        ),
    ] {
        raw.signed(&key, Some(&kid), &no, Some(&order(json!([bad]))))
            .await
            .expect_problem(400, "malformed", what);
    }
    raw.signed(&key, Some(&kid), &no, Some(&order(json!([]))))
        .await
        .expect_problem(400, "malformed", "no identifiers");

    let r = raw
        .signed(
            &key,
            Some(&kid),
            &no,
            Some(&order(json!([
                {"type": "dns", "value": "bad..one.example"},
                {"type": "dns", "value": "ok.example.test"},
                {"type": "dns", "value": "bad..two.example"}
            ]))),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.describe());
    let v = r.json();
    let subs = v["subproblems"]
        .as_array()
        .unwrap_or_else(|| panic!("no subproblems: {v}"));
    assert_eq!(subs.len(), 2, "{v}");
    for s in subs {
        assert_eq!(s["type"], format!("{ERR}malformed"), "{v}");
        assert!(
            s["identifier"]["value"]
                .as_str()
                .unwrap()
                .starts_with("bad.."),
            "{v}"
        );
    }
    eprintln!("[idents] two bad DNS names: top-level type {}", v["type"]);

    // Upper-case and duplicate names collapse to one identifier (§7.4: case-insensitive).
    let r = raw
        .signed(
            &key,
            Some(&kid),
            &no,
            Some(&order(json!([
                {"type": "dns", "value": "Dup.Example.Test"},
                {"type": "dns", "value": "dup.example.test"}
            ]))),
        )
        .await;
    r.expect_status(201, "duplicate names");
    assert_eq!(
        r.json()["identifiers"],
        json!([{"type": "dns", "value": "dup.example.test"}])
    );

    // JWK checks at newAccount. A private member is refused as malformed
    // (docs/rfc-divergences.md §6.2 groups it with badPublicKey; the server
    // answers malformed, which is what a structurally wrong JWK is).
    let na = raw.url("newAccount");
    let mut with_d = key.jwk.clone();
    with_d["d"] = json!(b64([7u8; 32]));
    let fresh = AcctKey::generate();
    let n = raw.nonce().await;
    let h = json!({"alg": "ES256", "jwk": with_d, "nonce": n, "url": na});
    raw.post_body(
        &na,
        &jws_with(&fresh, &h, &new_account_payload().to_string()),
    )
    .await
    .expect_problem(400, "malformed", "JWK with a private member");
    let mut nbytes = [0u8; 128];
    aws_lc_rs::rand::fill(&mut nbytes).unwrap();
    nbytes[0] |= 0x80;
    let n = raw.nonce().await;
    let h = json!({"alg": "RS256", "jwk": {"kty": "RSA", "n": b64(nbytes), "e": "AQAB"}, "nonce": n, "url": na});
    raw.post_body(
        &na,
        &jws_with(&fresh, &h, &new_account_payload().to_string()),
    )
    .await
    .expect_problem(400, "badPublicKey", "RSA-1024 JWK");
    // alg that does not fit the key type.
    let n = raw.nonce().await;
    let h = json!({"alg": "RS256", "jwk": fresh.jwk, "nonce": n, "url": na});
    raw.post_body(
        &na,
        &jws_with(&fresh, &h, &new_account_payload().to_string()),
    )
    .await
    .expect_problem(400, "badSignatureAlgorithm", "RS256 with an EC key");
}

/// §6.2: "kid" MUST be the account URL the server returned. A kid naming
/// another host (same path) is not this server's account URL; Pebble refuses
/// it (malformed, "Key ID (kid) in JWS header missing expected URL prefix").
/// Any 400/403 of malformed / accountDoesNotExist / unauthorized passes here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kid_must_be_this_servers_account_url() {
    let env = Env::start("foreign-kid").await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    let foreign = kid.replace(&format!("localhost:{}", env.srv.port), "attacker.example");
    assert_ne!(foreign, kid);
    let n = raw.nonce().await;
    let r = raw
        .post_body(
            &kid,
            &jws_with(&key, &header(&key, Some(&foreign), Some(&n), &kid), ""),
        )
        .await;
    let t = if r.status == 200 {
        String::new()
    } else {
        r.json()["type"].as_str().unwrap_or("").to_string()
    };
    assert!(
        [400, 403].contains(&r.status)
            && ["malformed", "accountDoesNotExist", "unauthorized"]
                .iter()
                .any(|k| t == format!("{ERR}{k}")),
        "kid {foreign:?} (foreign host) was accepted as {kid:?}:\n{}",
        r.describe()
    );
}

/// The URLs a response names use the authority the client asked for, over
/// HTTP/1.1 (Host) and over HTTP/2 (`:authority`, RFC 9113 §8.3.1): a client
/// that reached the server as 127.0.0.1 (not its first name, localhost)
/// must not be sent to localhost, which may resolve elsewhere (a balancer
/// in front of other servers did in the scale-out benchmark).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_urls_follow_the_requested_authority_on_http1_and_http2() {
    let env = Env::start("authority").await;
    let port = env.srv.port;
    let root = env.srv.root();
    for version in ["--http1.1", "--http2"] {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--fail",
                version,
                "-w",
                "\n%{http_version}",
                "--cacert",
            ])
            .arg(&root)
            .arg(format!("https://127.0.0.1:{port}/directory"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, used) = text.rsplit_once('\n').unwrap();
        let expected_version = if version == "--http2" { "2" } else { "1.1" };
        assert_eq!(used, expected_version, "curl {version} spoke HTTP/{used}");
        let dir: Value = serde_json::from_str(body).unwrap();
        let new_nonce = dir["newNonce"].as_str().unwrap();
        assert_eq!(
            new_nonce,
            format!("https://127.0.0.1:{port}/acme/new-nonce"),
            "HTTP/{used}: {body}"
        );
    }
}

/// Issue 10 item 4: expired orders and authorizations are purged (at start
/// and then every `[acme] purge_interval_minutes`), so nobody grows the
/// store without bound; certificates stay. With lifetimes of 0 every new
/// order and authorization is expired at once: after a restart (the purge
/// runs at start) they are gone (404), the purge is logged and counted,
/// and a certificate issued before the switch still downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_orders_and_authorizations_are_purged() {
    let mut env = Env::start("purge").await;
    let (acct, key) = env.account().await;
    let kid = acct.id().to_string();
    let issued = issue(&acct, &env.h01, None, &[dns("kept.purge.test")], None)
        .await
        .unwrap();

    blocking(|| env.srv.stop());
    env.srv.set_config(
        "[acme]\norder_lifetime_hours = 0\nauthz_lifetime_days = 0\npurge_after_hours = 0\npurge_interval_minutes = 1\n",
    );
    blocking(|| env.srv.start());
    let raw = env.raw().await;
    let order = raw
        .signed(
            &key,
            Some(&kid),
            &raw.url("newOrder"),
            Some(&json!({"identifiers": [
                {"type": "dns", "value": "a.purge.test"},
                {"type": "dns", "value": "b.purge.test"}
            ]})),
        )
        .await;
    order.expect_status(201, "newOrder");
    let order_url = order.header("location").expect("order Location");
    let authz_urls: Vec<String> = order.json()["authorizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert_eq!(authz_urls.len(), 2);
    let r = raw.try_signed(&key, &kid, &order_url, None).await.unwrap();
    assert_eq!(
        r.status,
        200,
        "the order before the purge: {}",
        r.describe()
    );

    blocking(|| env.srv.restart());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !env
        .srv
        .log_tail()
        .contains("purged expired orders and authorizations")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no purge logged:\n{}",
            env.srv.log_tail()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let raw = env.raw().await;
    for url in std::iter::once(&order_url).chain(authz_urls.iter()) {
        let r = raw.try_signed(&key, &kid, url, None).await.unwrap();
        assert_eq!(r.status, 404, "{url} survived the purge: {}", r.describe());
    }
    let r = raw
        .try_signed(&key, &kid, &issued.cert_url, None)
        .await
        .unwrap();
    assert_eq!(
        r.status,
        200,
        "the certificate was purged: {}",
        r.describe()
    );
    assert_eq!(r.body.as_ref(), issued.chain.as_bytes());
    let metrics = blocking(|| {
        ironseal_conformance::client::get(&format!("{}/metrics", env.srv.http_base_url()), None)
    })
    .unwrap()
    .text();
    let purged = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(purged("ironseal_orders_purged_total") >= 1, "{metrics}");
    assert!(purged("ironseal_authzs_purged_total") >= 2, "{metrics}");
}
