//! Admin API keys and roles.
//!
//! A key reads `isk_<id>_<secret>`: `<id>` is 16 lowercase hex characters
//! (public, shown in listings and the audit log), `<secret>` is 32 random
//! bytes in unpadded base64url. The store keeps only SHA-256 of the whole
//! key string. A fast hash is enough here: the secret carries 256 bits of
//! entropy, so the hash cannot be brute-forced the way a human password
//! could (slow hashes such as Argon2 exist to stretch low-entropy secrets).
//! The presented key's hash is compared with the stored one in constant
//! time (`aws_lc_rs::constant_time::verify_slices_are_equal`).
//!
//! The first admin key may be chosen by the operator
//! (`IRONSEAL_INITIAL_ADMIN_KEY`, any string of at least 16 characters) or
//! come from an older data directory (`admin-key.sha256`); it is stored
//! under the fixed id [`INITIAL_KEY_ID`] and tried whenever a presented
//! key does not match a key by its own id.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hyper::header::HeaderValue;
use ironseal_storage::{ApiKeyRecord, ApiRole, Store, StoreError};
use time::OffsetDateTime;

/// Prefix of every key this server generates.
pub const KEY_PREFIX: &str = "isk_";
/// Id of the first admin key when its string was chosen by the operator or
/// imported from `admin-key.sha256`.
pub const INITIAL_KEY_ID: &str = "initial";
/// Longest bearer token looked at.
const MAX_TOKEN_LEN: usize = 512;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read certificates, CAs, one's own identity.
    Read,
    /// Read the audit log.
    Audit,
    /// Revoke, mark for early renewal.
    Operate,
    /// Manage API keys.
    Admin,
}

/// Whether `role` grants `perm`.
pub fn allows(role: ApiRole, perm: Permission) -> bool {
    match role {
        ApiRole::Admin => true,
        ApiRole::Operator => matches!(perm, Permission::Read | Permission::Operate),
        ApiRole::Auditor => matches!(perm, Permission::Read | Permission::Audit),
    }
}

/// The caller of an authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// API key id.
    pub id: String,
    /// The key's name.
    pub name: String,
    /// The key's role.
    pub role: ApiRole,
}

impl Principal {
    /// The actor string written to the audit log.
    pub fn actor(&self) -> String {
        format!("key:{}", self.id)
    }
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("a valid admin API key is required (Authorization: Bearer ...)")]
    Missing,
    /// Unknown, wrong or disabled key.
    #[error("the API key is not valid")]
    Invalid,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// A freshly generated key: the string to hand out once and its record.
pub struct NewKey {
    /// `isk_<id>_<secret>`; never stored.
    pub key: String,
    /// What the store keeps.
    pub record: ApiKeyRecord,
}

/// Lowercase hex SHA-256 of a key string.
pub fn key_hash(key: &str) -> String {
    crate::state::sha256_hex(key.as_bytes())
}

/// Generates a key `isk_<id>_<secret>` for `role`.
pub fn generate_key(name: &str, role: ApiRole, created_by: &str, now: OffsetDateTime) -> NewKey {
    let id_bytes: [u8; 8] = rand::random();
    let secret: [u8; 32] = rand::random();
    let id = hex::encode(id_bytes);
    let key = format!("{KEY_PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
    NewKey {
        record: ApiKeyRecord {
            id,
            name: name.to_string(),
            role,
            secret_sha256: key_hash(&key),
            created_at: now,
            created_by: created_by.to_string(),
            disabled_at: None,
        },
        key,
    }
}

/// The `<id>` of `isk_<id>_<secret>`, if the token has that form.
pub fn parse_key_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !secret.is_empty();
    ok.then_some(id)
}

/// The bearer token of an `Authorization` header value.
fn bearer(header: Option<&HeaderValue>) -> Option<&str> {
    let v = header?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Constant-time check of `token` against a stored key.
fn matches(record: &ApiKeyRecord, token: &str) -> bool {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let Ok(stored) = hex::decode(&record.secret_sha256) else {
        return false;
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(digest.as_ref(), &stored).is_ok()
}

/// Authenticates a request by its `Authorization` header.
pub fn authenticate(
    store: &dyn Store,
    header: Option<&HeaderValue>,
) -> Result<Principal, AuthError> {
    let token = bearer(header).ok_or(AuthError::Missing)?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::Invalid);
    }
    let mut candidates = Vec::with_capacity(2);
    if let Some(id) = parse_key_id(token) {
        candidates.push(id);
    }
    candidates.push(INITIAL_KEY_ID);
    for id in candidates {
        if let Some(rec) = store.get_api_key(id)? {
            if matches(&rec, token) {
                if rec.disabled_at.is_some() {
                    return Err(AuthError::Invalid);
                }
                return Ok(Principal {
                    id: rec.id,
                    name: rec.name,
                    role: rec.role,
                });
            }
        }
    }
    Err(AuthError::Invalid)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_storage::MemoryStore;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn role_matrix() {
        use Permission::*;
        for p in [Read, Audit, Operate, Admin] {
            assert!(allows(ApiRole::Admin, p));
        }
        assert!(allows(ApiRole::Operator, Read));
        assert!(allows(ApiRole::Operator, Operate));
        assert!(!allows(ApiRole::Operator, Admin));
        assert!(!allows(ApiRole::Operator, Audit));
        assert!(allows(ApiRole::Auditor, Read));
        assert!(allows(ApiRole::Auditor, Audit));
        assert!(!allows(ApiRole::Auditor, Operate));
        assert!(!allows(ApiRole::Auditor, Admin));
    }

    #[test]
    fn generated_keys_parse_and_authenticate() {
        let store = MemoryStore::new();
        let now = OffsetDateTime::now_utc();
        let k = generate_key("ops", ApiRole::Operator, "system", now);
        assert_eq!(parse_key_id(&k.key), Some(k.record.id.as_str()));
        assert_eq!(k.record.id.len(), 16);
        assert!(!k.record.secret_sha256.contains(&k.key));
        store.create_api_key(&k.record).unwrap();
        let p = authenticate(&store, Some(&hv(&format!("Bearer {}", k.key)))).unwrap();
        assert_eq!(p.role, ApiRole::Operator);
        assert_eq!(p.actor(), format!("key:{}", k.record.id));
        // Scheme is case-insensitive.
        assert!(authenticate(&store, Some(&hv(&format!("bearer {}", k.key)))).is_ok());
        // Wrong secret, same id.
        let wrong = format!("{KEY_PREFIX}{}_AAAA", k.record.id);
        assert!(matches!(
            authenticate(&store, Some(&hv(&format!("Bearer {wrong}")))),
            Err(AuthError::Invalid)
        ));
        // Missing / other schemes.
        assert!(matches!(
            authenticate(&store, None),
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            authenticate(&store, Some(&hv(&format!("Basic {}", k.key)))),
            Err(AuthError::Missing)
        ));
        // Disabled keys stop working.
        store.disable_api_key(&k.record.id, now).unwrap();
        assert!(matches!(
            authenticate(&store, Some(&hv(&format!("Bearer {}", k.key)))),
            Err(AuthError::Invalid)
        ));
    }

    #[test]
    fn initial_key_of_any_form() {
        let store = MemoryStore::new();
        let now = OffsetDateTime::now_utc();
        for chosen in ["constraints-test-admin-key", "isk_test_abcdefghijklmnop"] {
            let store2 = MemoryStore::new();
            store2
                .create_api_key(&ApiKeyRecord {
                    id: INITIAL_KEY_ID.into(),
                    name: "initial admin".into(),
                    role: ApiRole::Admin,
                    secret_sha256: key_hash(chosen),
                    created_at: now,
                    created_by: "system".into(),
                    disabled_at: None,
                })
                .unwrap();
            let p = authenticate(&store2, Some(&hv(&format!("Bearer {chosen}")))).unwrap();
            assert_eq!(p.id, INITIAL_KEY_ID);
            assert_eq!(p.role, ApiRole::Admin);
            assert!(authenticate(&store2, Some(&hv("Bearer constraints-test-admin-kez"))).is_err());
        }
        assert!(matches!(
            authenticate(&store, Some(&hv("Bearer whatever-key-1234"))),
            Err(AuthError::Invalid)
        ));
        let long = format!("Bearer {}", "a".repeat(600));
        assert!(matches!(
            authenticate(&store, Some(&hv(&long))),
            Err(AuthError::Invalid)
        ));
    }
}
