//! JSON representations of ACME resources (RFC 8555 §7.1.2-§7.1.6).

use ironseal_protocol::acme::types::{ChallengeStatus, OrderStatus};
use ironseal_storage::{AccountRecord, AuthzRecord, ChallengeRecord, OrderRecord};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Ctx;

/// RFC 3339 timestamp as ACME uses them.
pub fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// RFC 8555 §7.1.2 account object.
pub fn account(ctx: &Ctx, a: &AccountRecord) -> Value {
    json!({
        "status": a.status,
        "contact": a.contact,
        "orders": ctx.url(&format!("/acme/acct/{}/orders", a.id)),
        "createdAt": ts(a.created_at),
    })
}

/// RFC 8555 §7.1.3 order object.
pub fn order(ctx: &Ctx, o: &OrderRecord) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), json!(o.status));
    m.insert("expires".into(), json!(ts(o.expires)));
    m.insert("identifiers".into(), json!(o.identifiers));
    if let Some(nb) = o.not_before {
        m.insert("notBefore".into(), json!(ts(nb)));
    }
    if let Some(na) = o.not_after {
        m.insert("notAfter".into(), json!(ts(na)));
    }
    m.insert(
        "authorizations".into(),
        json!(o
            .authz_ids
            .iter()
            .map(|id| ctx.authz_url(id))
            .collect::<Vec<_>>()),
    );
    m.insert(
        "finalize".into(),
        json!(ctx.url(&format!("/acme/order/{}/finalize", o.id))),
    );
    if o.status == OrderStatus::Valid {
        if let Some(serial) = &o.cert_serial {
            m.insert("certificate".into(), json!(ctx.cert_url(serial)));
        }
    }
    if let Some(err) = &o.error {
        m.insert("error".into(), err.clone());
    }
    if let Some(r) = &o.replaces {
        m.insert("replaces".into(), json!(r));
    }
    if let Some(p) = &o.profile {
        m.insert("profile".into(), json!(p));
    }
    Value::Object(m)
}

/// RFC 8555 §7.1.4 authorization object. A wildcard authorization shows the
/// base domain and `"wildcard": true`.
pub fn authz(ctx: &Ctx, a: &AuthzRecord) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), json!(a.status));
    m.insert("expires".into(), json!(ts(a.expires)));
    m.insert("identifier".into(), json!(a.identifier));
    m.insert(
        "challenges".into(),
        Value::Array(
            a.challenges
                .iter()
                .map(|c| challenge(ctx, &a.id, c))
                .collect(),
        ),
    );
    if a.wildcard {
        m.insert("wildcard".into(), json!(true));
    }
    Value::Object(m)
}

/// RFC 8555 §8 challenge object.
pub fn challenge(ctx: &Ctx, authz_id: &str, c: &ChallengeRecord) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(c.kind));
    m.insert("url".into(), json!(ctx.challenge_url(authz_id, &c.id)));
    m.insert("status".into(), json!(c.status));
    m.insert("token".into(), json!(c.token));
    if let Some(v) = c.validated {
        m.insert("validated".into(), json!(ts(v)));
    }
    if let Some(e) = &c.error {
        if c.status == ChallengeStatus::Invalid {
            m.insert("error".into(), e.clone());
        }
    }
    Value::Object(m)
}
