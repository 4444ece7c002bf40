//! Rate limits per account and per client IP (RFC 8555 §6.6): over the
//! configured budget, newAccount, newOrder and challenge responses get
//! `rateLimited` (HTTP 429) with a Retry-After that says when to come back,
//! and the problem names the limit.

use ironseal_conformance::prelude::*;
use serde_json::json;

fn retry_after(r: &Resp) -> u64 {
    r.header("Retry-After")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric Retry-After\n{}", r.describe()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_orders_and_new_accounts_are_limited_with_retry_after() {
    let env = Env::start_with_config(
        "rate-orders",
        "[limits]\nnew_orders_per_account_per_minute = 2\nnew_accounts_per_ip_per_hour = 3\n",
    )
    .await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    let new_order = raw.url("newOrder");
    for n in 0..2 {
        let body = json!({"identifiers": [{"type": "dns", "value": format!("o{n}.example.test")}]});
        raw.signed(&key, Some(acct.id()), &new_order, Some(&body))
            .await
            .expect_status(201, "an order within the limit");
    }
    let body = json!({"identifiers": [{"type": "dns", "value": "o2.example.test"}]});
    let r = raw
        .signed(&key, Some(acct.id()), &new_order, Some(&body))
        .await;
    let p = r.expect_problem(429, "rateLimited", "the third order in a minute");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("new_orders_per_account")),
        "the problem names the limit: {p}"
    );
    let wait = retry_after(&r);
    assert!(
        (1..=60).contains(&wait),
        "Retry-After {wait} for a 2/minute limit"
    );
    // Another account is not affected.
    let (acct2, key2) = env.account().await;
    let body = json!({"identifiers": [{"type": "dns", "value": "other.example.test"}]});
    raw.signed(&key2, Some(acct2.id()), &new_order, Some(&body))
        .await
        .expect_status(201, "another account's order");

    // Two accounts so far from 127.0.0.1; the third is admitted, the fourth not.
    let _third = env.account().await;
    let fresh = AcctKey::generate();
    let r = raw
        .signed(
            &fresh,
            None,
            &raw.url("newAccount"),
            Some(&json!({"termsOfServiceAgreed": true})),
        )
        .await;
    let p = r.expect_problem(429, "rateLimited", "the fourth account in an hour");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("new_accounts_per_ip")),
        "{p}"
    );
    let wait = retry_after(&r);
    assert!(
        wait > 60,
        "a 3/hour budget refills in minutes, not {wait} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validations_stop_new_attempts() {
    let env = Env::start_with_config(
        "rate-fails",
        "[limits]\nfailed_validations_per_account_per_hour = 1\n",
    )
    .await;
    let raw = env.raw().await;
    let (acct, key) = env.account().await;
    // Each order's http-01 challenge is answered while nothing serves the
    // token, so validation fails.
    let mut last = None;
    for n in 0..3 {
        let body = json!({"identifiers": [{"type": "dns", "value": format!("f{n}.example.test")}]});
        let order = raw
            .signed(&key, Some(acct.id()), &raw.url("newOrder"), Some(&body))
            .await;
        order.expect_status(201, "newOrder");
        let az_url = order.json()["authorizations"][0]
            .as_str()
            .expect("authz url")
            .to_string();
        let az = raw
            .signed(&key, Some(acct.id()), &az_url, None)
            .await
            .json();
        let ch = az["challenges"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "http-01"))
            .expect("http-01 challenge")["url"]
            .as_str()
            .expect("challenge url")
            .to_string();
        let r = raw
            .signed(&key, Some(acct.id()), &ch, Some(&json!({})))
            .await;
        if r.status == 429 {
            last = Some(r);
            break;
        }
        r.expect_status(200, "challenge response");
        // Wait for the failure to be recorded.
        for _ in 0..50 {
            let s = raw
                .signed(&key, Some(acct.id()), &az_url, None)
                .await
                .json();
            if s["status"] == "invalid" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let r = last.expect("the third challenge response must be rate limited");
    let p = r.expect_problem(429, "rateLimited", "a challenge after the failure budget");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("failed_validations_per_account")),
        "{p}"
    );
    assert!(retry_after(&r) > 60);
}

/// Issue 10 item 4: one account may hold at most `max_pending_orders_per_account`
/// unfinished orders and `max_pending_authzs_per_account` pending
/// authorizations; a newOrder over either is `rateLimited` and writes
/// nothing; reused authorizations do not count twice, and a deactivated one
/// frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_caps_refuse_new_orders() {
    let env = Env::start_with_config(
        "pending-caps",
        "[limits]\nmax_pending_orders_per_account = 3\nmax_pending_authzs_per_account = 3\n",
    )
    .await;
    let raw = env.raw().await;
    let new_order = raw.url("newOrder");
    let order = |names: &[&str]| {
        json!({"identifiers": names
            .iter()
            .map(|n| json!({"type": "dns", "value": format!("{n}.example.test")}))
            .collect::<Vec<_>>()})
    };

    // Orders: three pending ones, then the fourth is refused even though it
    // needs no new authorization.
    let (a, ka) = env.account().await;
    for n in ["a0", "a1", "a2"] {
        raw.signed(&ka, Some(a.id()), &new_order, Some(&order(&[n])))
            .await
            .expect_status(201, "an order within the cap");
    }
    let r = raw
        .signed(&ka, Some(a.id()), &new_order, Some(&order(&["a0"])))
        .await;
    let p = r.expect_problem(429, "rateLimited", "a fourth unfinished order");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("max_pending_orders_per_account")),
        "the problem names the cap: {p}"
    );

    // Authorizations: b1+b2 pending; an order needing b3 and b4 as well
    // would make four. It is refused and creates nothing.
    let (b, kb) = env.account().await;
    let first = raw
        .signed(&kb, Some(b.id()), &new_order, Some(&order(&["b1", "b2"])))
        .await;
    first.expect_status(201, "two new authorizations");
    let r = raw
        .signed(
            &kb,
            Some(b.id()),
            &new_order,
            Some(&order(&["b1", "b3", "b4"])),
        )
        .await;
    let p = r.expect_problem(429, "rateLimited", "two more authorizations than allowed");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("max_pending_authzs_per_account")),
        "the problem names the cap: {p}"
    );
    // b1 is reused, b3 is new: three pending in all, allowed.
    let second = raw
        .signed(&kb, Some(b.id()), &new_order, Some(&order(&["b1", "b3"])))
        .await;
    second.expect_status(201, "one new authorization, one reused");
    assert_eq!(
        first.json()["authorizations"][0],
        second.json()["authorizations"][0],
        "b1's authorization is reused"
    );
    // Full: b5 would be the fourth.
    raw.signed(&kb, Some(b.id()), &new_order, Some(&order(&["b5"])))
        .await
        .expect_problem(429, "rateLimited", "a fourth pending authorization");
    // Deactivating b3 frees a place; had the refused order created b4, this
    // would still be over the cap.
    let b3 = second.json()["authorizations"][1]
        .as_str()
        .expect("the second authorization's URL")
        .to_string();
    raw.signed(
        &kb,
        Some(b.id()),
        &b3,
        Some(&json!({"status": "deactivated"})),
    )
    .await
    .expect_status(200, "deactivate b3");
    raw.signed(&kb, Some(b.id()), &new_order, Some(&order(&["b5"])))
        .await
        .expect_status(201, "b5 fits once b3 is deactivated");

    // Another account is not affected by a's and b's caps.
    let (c, kc) = env.account().await;
    raw.signed(&kc, Some(c.id()), &new_order, Some(&order(&["c0"])))
        .await
        .expect_status(201, "another account's order");
}
