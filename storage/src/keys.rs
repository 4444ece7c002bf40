//! Index key encodings and selection rules shared by both backends, so they
//! order and match identically.
//!
//! Strings inside composite keys are length-prefixed (u32 big-endian), so no
//! separator byte can collide with id contents and one key is never a prefix
//! of a different account's keys.

use time::OffsetDateTime;

use crate::records::{AuthzRecord, CertificateRecord, OrderRecord};
use crate::types::{AuthzStatus, Identifier, IdentifierKind};

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Ids and names are far below 4 GiB; saturate rather than truncate silently.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Sortable big-endian encoding of a timestamp (nanoseconds, sign flipped).
fn time_key(t: OffsetDateTime) -> [u8; 16] {
    let nanos = t.unix_timestamp_nanos();
    // Flip the sign bit so negative times sort before positive ones.
    let ordered = (nanos as u128) ^ (1u128 << 127);
    ordered.to_be_bytes()
}

/// Prefix of every `orders_by_account` key of one account.
pub(crate) fn order_prefix(account_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + account_id.len());
    push_str(&mut k, account_id);
    k
}

/// `orders_by_account` key: account ‖ created_at ‖ order id.
pub(crate) fn order_key(order: &OrderRecord) -> Vec<u8> {
    let mut k = order_prefix(&order.account_id);
    k.extend_from_slice(&time_key(order.created_at));
    k.extend_from_slice(order.id.as_bytes());
    k
}

/// First bytes of every pending-index key. Ordinary index keys start with
/// a u32 length that is never `u32::MAX`, so the two never collide and the
/// prefix scans of one account never see a pending key.
const PENDING_MARK: [u8; 4] = [0xff; 4];

/// Prefix of one account's pending-index keys (in `orders_by_account` and
/// `authz_by_identifier`; see [`crate::pending`]).
pub(crate) fn pending_prefix(account_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + account_id.len());
    k.extend_from_slice(&PENDING_MARK);
    push_str(&mut k, account_id);
    k
}

/// Where `account_id`'s pending keys that expire after `now` begin:
/// counting from here skips the expired entries a purge has not removed
/// yet.
pub(crate) fn pending_after(account_id: &str, now: OffsetDateTime) -> Vec<u8> {
    let mut k = pending_prefix(account_id);
    k.extend_from_slice(&time_key(now + time::Duration::nanoseconds(1)));
    k
}

fn pending_key(account_id: &str, expires: OffsetDateTime, id: &str) -> Vec<u8> {
    let mut k = pending_prefix(account_id);
    k.extend_from_slice(&time_key(expires));
    k.extend_from_slice(id.as_bytes());
    k
}

/// Every `orders_by_account` key of `order`: the listing key and, while it
/// awaits finalization, its pending key (account ‖ expires ‖ id).
pub(crate) fn order_keys(order: &OrderRecord) -> Vec<Vec<u8>> {
    let mut keys = vec![order_key(order)];
    if crate::pending::order_is_pending(order) {
        keys.push(pending_key(&order.account_id, order.expires, &order.id));
    }
    keys
}

/// The normalized (kind, wildcard, value) an authorization is indexed under.
fn authz_parts(identifier: &Identifier) -> (u8, String) {
    match identifier.kind {
        IdentifierKind::Dns => (b'd', identifier.value.to_ascii_lowercase()),
        IdentifierKind::Ip => (b'i', identifier.value.clone()),
    }
}

fn authz_prefix_parts(account_id: &str, kind: u8, wildcard: bool, value: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + account_id.len() + value.len());
    push_str(&mut k, account_id);
    k.push(kind);
    k.push(u8::from(wildcard));
    push_str(&mut k, value);
    k
}

/// Prefix of the `authz_by_identifier` keys matching an order identifier
/// (`*.` marks a wildcard; see `Store::find_reusable_authz`).
pub(crate) fn authz_query_prefix(account_id: &str, identifier: &Identifier) -> Vec<u8> {
    let (kind, value) = authz_parts(identifier);
    match (identifier.kind, value.strip_prefix("*.")) {
        (IdentifierKind::Dns, Some(base)) => authz_prefix_parts(account_id, kind, true, base),
        _ => authz_prefix_parts(account_id, kind, false, &value),
    }
}

/// `authz_by_identifier` key: account ‖ kind ‖ wildcard ‖ value ‖ authz id.
pub(crate) fn authz_key(authz: &AuthzRecord) -> Vec<u8> {
    let (kind, value) = authz_parts(&authz.identifier);
    let mut k = authz_prefix_parts(&authz.account_id, kind, authz.wildcard, &value);
    k.extend_from_slice(authz.id.as_bytes());
    k
}

/// Every `authz_by_identifier` key of `authz`: the identifier key and,
/// while pending, its pending key (account ‖ expires ‖ id).
pub(crate) fn authz_keys(authz: &AuthzRecord) -> Vec<Vec<u8>> {
    let mut keys = vec![authz_key(authz)];
    if crate::pending::authz_is_pending(authz) {
        keys.push(pending_key(&authz.account_id, authz.expires, &authz.id));
    }
    keys
}

/// Whether an authorization may be reused at `now`.
pub(crate) fn reusable(authz: &AuthzRecord, now: OffsetDateTime) -> bool {
    matches!(authz.status, AuthzStatus::Valid | AuthzStatus::Pending) && authz.expires > now
}

/// Keep the better of two reusable candidates: valid over pending, then the
/// later expiry, then the smaller id (deterministic).
pub(crate) fn better(current: Option<AuthzRecord>, candidate: AuthzRecord) -> AuthzRecord {
    match current {
        None => candidate,
        Some(cur) => {
            let rank = |a: &AuthzRecord| (a.status == AuthzStatus::Valid, a.expires);
            let (rc, rn) = (rank(&cur), rank(&candidate));
            if rn > rc || (rn == rc && candidate.id < cur.id) {
                candidate
            } else {
                cur
            }
        }
    }
}

/// Certificate serials are keyed in lowercase hex.
pub(crate) fn serial_key(serial_hex: &str) -> String {
    serial_hex.to_ascii_lowercase()
}

/// Prefix of the `revoked` keys of one issuer.
pub(crate) fn revoked_prefix(issuer_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + issuer_id.len());
    push_str(&mut k, issuer_id);
    k
}

/// `revoked` key: issuer ‖ serial (lowercase hex).
pub(crate) fn revoked_key(cert: &CertificateRecord) -> Vec<u8> {
    let mut k = revoked_prefix(&cert.issuer_id);
    k.extend_from_slice(serial_key(&cert.serial).as_bytes());
    k
}

/// The serial part of a `revoked` key of `issuer_id`.
pub(crate) fn serial_from_revoked_key(issuer_id: &str, key: &[u8]) -> Option<String> {
    let rest = key.get(4 + issuer_id.len()..)?;
    String::from_utf8(rest.to_vec()).ok()
}

/// Merge an update into the stored certificate: revocation and replacement
/// are one-way, so a `None` in the update keeps the stored value.
pub(crate) fn merge_certificate(
    stored: &CertificateRecord,
    update: &CertificateRecord,
) -> CertificateRecord {
    let mut merged = update.clone();
    merged.serial = serial_key(&update.serial);
    if merged.revocation.is_none() {
        merged.revocation = stored.revocation;
    }
    if merged.replaced_by.is_none() {
        merged.replaced_by.clone_from(&stored.replaced_by);
    }
    merged
}
