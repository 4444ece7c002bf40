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
//! With `admin_client_ca` configured, a client certificate can stand in
//! for a key (see [`super::client_cert`] and [`authenticate_request`]).
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
use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;

use crate::client_cert::ClientCertAuth;

/// Prefix of every key this server generates.
pub const KEY_PREFIX: &str = "isk_";
/// Id of the first admin key when its string was chosen by the operator or
/// imported from `admin-key.sha256`.
pub const INITIAL_KEY_ID: &str = "initial";
/// Longest bearer token looked at.
const MAX_TOKEN_LEN: usize = 512;

/// What a route needs (the route table is the protocol crate's).
pub use ironseal_protocol::admin::Permission;

/// Whether `role` grants `perm`.
pub fn allows(role: ApiRole, perm: Permission) -> bool {
    match role {
        ApiRole::Admin => true,
        ApiRole::Operator => matches!(perm, Permission::Read | Permission::Operate),
        ApiRole::Auditor => matches!(perm, Permission::Read | Permission::Audit),
    }
}

/// How the caller of a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <API key>`.
    ApiKey,
    /// A TLS client certificate mapped by `[[admin_client_certs]]`.
    ClientCertificate,
}

impl Credential {
    /// The wire name (`whoami`'s `credential`).
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::ApiKey => "apiKey",
            Credential::ClientCertificate => "clientCertificate",
        }
    }
}

/// The caller of an authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// API key id, or for a certificate `<commonName>/<16 hex digits of
    /// its SHA-256>` ([`crate::client_cert::CertInfo::label`]).
    pub id: String,
    /// The key's name, or the certificate's subject (RFC 4514).
    pub name: String,
    /// The key's role, or the role of the first matching certificate rule.
    pub role: ApiRole,
    /// Key or certificate.
    pub credential: Credential,
    /// The tenant the caller is scoped to (API keys only); `None` sees
    /// everything its role allows.
    pub tenant: Option<String>,
}

impl Principal {
    /// Whether the caller may see or act on something of `tenant`
    /// (`None`: belongs to no tenant). Unscoped callers may; a scoped one
    /// only on its own tenant's.
    pub fn may_touch(&self, tenant: Option<&str>) -> bool {
        match &self.tenant {
            None => true,
            Some(mine) => tenant == Some(mine.as_str()),
        }
    }

    /// The actor string written to the audit log: `key:<id>` or
    /// `cert:<commonName>/<fingerprint prefix>`.
    pub fn actor(&self) -> String {
        match self.credential {
            Credential::ApiKey => format!("key:{}", self.id),
            Credential::ClientCertificate => format!("cert:{}", self.id),
        }
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
    /// No API key, and the connection's client certificate does not
    /// authenticate (untrusted, expired, wrong EKU, revoked, unreadable).
    #[error("the client certificate (SHA-256 {fingerprint}...) is not accepted: {reason}")]
    CertRejected {
        /// Fingerprint prefix of the presented leaf.
        fingerprint: String,
        reason: String,
    },
    /// A trusted client certificate that no `[[admin_client_certs]]` rule
    /// gives a role: authenticated, but allowed nothing (403).
    #[error(
        "the client certificate {label} is trusted but no admin_client_certs rule gives it a role"
    )]
    NoRole {
        /// [`crate::client_cert::CertInfo::label`].
        label: String,
        /// The subject, RFC 4514.
        subject: String,
    },
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
    crate::ids::sha256_hex(key.as_bytes())
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
            tenant_id: None,
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
pub async fn authenticate(
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
        if let Some(rec) = store.get_api_key(id).await? {
            if matches(&rec, token) {
                if rec.disabled_at.is_some() {
                    return Err(AuthError::Invalid);
                }
                return Ok(Principal {
                    id: rec.id,
                    name: rec.name,
                    role: rec.role,
                    credential: Credential::ApiKey,
                    tenant: rec.tenant_id,
                });
            }
        }
    }
    Err(AuthError::Invalid)
}

/// Authenticates an admin request.
///
/// A bearer token, when the request has one, decides alone: a wrong key is
/// refused even on a connection with a good client certificate, so that
/// what a request asks for is what it gets. Without one, and with
/// client-certificate authentication configured, the connection's client
/// certificate (`chain`, leaf first, as the TLS layer received it) decides:
/// verified against `admin_client_ca` at `now`, refused if ironseal issued
/// exactly this certificate and has revoked it, then mapped to a role.
pub async fn authenticate_request(
    store: &dyn Store,
    header: Option<&HeaderValue>,
    client_certs: Option<&ClientCertAuth>,
    chain: Option<&[CertificateDer<'_>]>,
    now: UnixTime,
) -> Result<Principal, AuthError> {
    match (client_certs, chain) {
        (Some(auth), Some(chain)) if bearer(header).is_none() && !chain.is_empty() => {
            authenticate_cert(store, auth, chain, now).await
        }
        _ => authenticate(store, header).await,
    }
}

/// Client-certificate half of [`authenticate_request`].
async fn authenticate_cert(
    store: &dyn Store,
    auth: &ClientCertAuth,
    chain: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<Principal, AuthError> {
    let cert = auth
        .verify(chain, now)
        .map_err(|r| AuthError::CertRejected {
            fingerprint: r.fingerprint,
            reason: r.reason,
        })?;
    // A certificate ironseal issued: its store record (same serial, same
    // DER, hence same issuer) says whether it is revoked (RFC 5280 §3.3).
    if let Some(record) = store.get_certificate(&cert.serial_hex).await? {
        let same = chain
            .first()
            .is_some_and(|leaf| leaf.as_ref() == record.der.as_slice());
        if same && record.revocation.is_some() {
            return Err(AuthError::CertRejected {
                fingerprint: cert.fingerprint().chars().take(16).collect(),
                reason: format!("serial {} is revoked", cert.serial_hex),
            });
        }
    }
    let Some(rule) = auth.rule_for(&cert) else {
        return Err(AuthError::NoRole {
            label: cert.label(),
            subject: cert.subject,
        });
    };
    // The start-up rule (no name rules when the bundle holds one of
    // ironseal's own CAs, which issue clientAuth certificates over ACME)
    // must hold for CAs created or imported since: checked against the
    // store's CAs now.
    if rule.matcher.is_name_based() {
        let own = crate::bootstrap::own_ca_certs(store).await?;
        if auth.holds_own_ca(&own) {
            tracing::error!(
                rule = %rule,
                "admin_client_ca now holds one of ironseal's own CAs (added at runtime): name rules no longer authenticate; pin certificates by sha256 or use a dedicated client CA"
            );
            return Err(AuthError::CertRejected {
                fingerprint: cert.fingerprint().chars().take(16).collect(),
                reason: format!(
                    "name rule {rule} refused: the client CA bundle holds one of ironseal's own CAs (pin by sha256)"
                ),
            });
        }
    }
    Ok(Principal {
        id: cert.label(),
        name: cert.subject.clone(),
        role: rule.role,
        credential: Credential::ClientCertificate,
        tenant: None,
    })
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

    #[tokio::test]
    async fn generated_keys_parse_and_authenticate() {
        let store = MemoryStore::new();
        let now = OffsetDateTime::now_utc();
        let k = generate_key("ops", ApiRole::Operator, "system", now);
        assert_eq!(parse_key_id(&k.key), Some(k.record.id.as_str()));
        assert_eq!(k.record.id.len(), 16);
        assert!(!k.record.secret_sha256.contains(&k.key));
        store.create_api_key(&k.record).await.unwrap();
        let p = authenticate(&store, Some(&hv(&format!("Bearer {}", k.key))))
            .await
            .unwrap();
        assert_eq!(p.role, ApiRole::Operator);
        assert_eq!(p.actor(), format!("key:{}", k.record.id));
        // Scheme is case-insensitive.
        assert!(
            authenticate(&store, Some(&hv(&format!("bearer {}", k.key))))
                .await
                .is_ok()
        );
        // Wrong secret, same id.
        let wrong = format!("{KEY_PREFIX}{}_AAAA", k.record.id);
        assert!(matches!(
            authenticate(&store, Some(&hv(&format!("Bearer {wrong}")))).await,
            Err(AuthError::Invalid)
        ));
        // Missing / other schemes.
        assert!(matches!(
            authenticate(&store, None).await,
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            authenticate(&store, Some(&hv(&format!("Basic {}", k.key)))).await,
            Err(AuthError::Missing)
        ));
        // Disabled keys stop working.
        store.disable_api_key(&k.record.id, now).await.unwrap();
        assert!(matches!(
            authenticate(&store, Some(&hv(&format!("Bearer {}", k.key)))).await,
            Err(AuthError::Invalid)
        ));
    }

    #[tokio::test]
    async fn initial_key_of_any_form() {
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
                    tenant_id: None,
                })
                .await
                .unwrap();
            let p = authenticate(&store2, Some(&hv(&format!("Bearer {chosen}"))))
                .await
                .unwrap();
            assert_eq!(p.id, INITIAL_KEY_ID);
            assert_eq!(p.role, ApiRole::Admin);
            assert!(
                authenticate(&store2, Some(&hv("Bearer constraints-test-admin-kez")))
                    .await
                    .is_err()
            );
        }
        assert!(matches!(
            authenticate(&store, Some(&hv("Bearer whatever-key-1234"))).await,
            Err(AuthError::Invalid)
        ));
        let long = format!("Bearer {}", "a".repeat(600));
        assert!(matches!(
            authenticate(&store, Some(&hv(&long))).await,
            Err(AuthError::Invalid)
        ));
    }

    mod client_certificates {
        #![allow(clippy::unwrap_used, reason = "tests")]
        use super::super::*;
        use crate::client_cert::testing::TestCa;
        use crate::client_cert::CertInfo;
        use ironseal_storage::{
            CertificateRecord, MemoryStore, RevocationReason, RevocationRecord,
        };

        fn hv(s: &str) -> HeaderValue {
            HeaderValue::from_str(s).unwrap()
        }

        fn record(der: &[u8], serial_hex: &str) -> CertificateRecord {
            let now = OffsetDateTime::now_utc();
            CertificateRecord {
                serial: serial_hex.to_string(),
                issuer_id: "int-test".into(),
                account_id: "acct".into(),
                order_id: "order".into(),
                der: der.to_vec(),
                not_before: now,
                not_after: now,
                public_key_sha256: String::new(),
                identifiers: Vec::new(),
                revocation: None,
                replaced_by: None,
                renew_early: false,
                origin: Default::default(),
            }
        }

        #[tokio::test]
        async fn certificates_authenticate_without_a_key() {
            let dir = tempfile::tempdir().unwrap();
            let ca = TestCa::new("admin client CA");
            let other = TestCa::new("untrusted");
            let auth = ClientCertAuth::new(
                &ca.write(dir.path()),
                vec![
                    "operator=subject_cn:ops".parse().unwrap(),
                    "auditor=subject_cn:audit".parse().unwrap(),
                ],
                &[],
            )
            .unwrap();
            let store = MemoryStore::new();
            let now = OffsetDateTime::now_utc();
            let key = generate_key("k", ApiRole::Admin, "system", now);
            store.create_api_key(&key.record).await.unwrap();
            let bearer_ok = hv(&format!("Bearer {}", key.key));
            let t = UnixTime::now();
            let run = async |header: Option<&HeaderValue>, der: &[u8]| {
                let chain = [CertificateDer::from(der.to_vec())];
                authenticate_request(&store, header, Some(&auth), Some(&chain), t).await
            };

            // Mapped: the rule's role, a cert: actor naming CN and fingerprint.
            let ops = ca.client("ops");
            let fp = crate::ids::sha256_hex(&ops);
            let p = run(None, &ops).await.unwrap();
            assert_eq!(p.role, ApiRole::Operator);
            assert_eq!(p.credential, Credential::ClientCertificate);
            assert_eq!(p.actor(), format!("cert:ops/{}", &fp[..16]));
            assert!(p.name.contains("CN=ops"), "{}", p.name);
            assert_eq!(
                run(None, &ca.client("audit")).await.unwrap().role,
                ApiRole::Auditor
            );

            // Trusted but unmapped: NoRole (403), naming the certificate.
            match run(None, &ca.client("intern")).await {
                Err(AuthError::NoRole { label, subject }) => {
                    assert!(label.starts_with("intern/"), "{label}");
                    assert!(subject.contains("CN=intern"), "{subject}");
                }
                other => panic!("expected NoRole, got {other:?}"),
            }

            // Untrusted: refused without a key, the key decides with one.
            let stranger = other.client("ops");
            assert!(matches!(
                run(None, &stranger).await,
                Err(AuthError::CertRejected { .. })
            ));
            let p = run(Some(&bearer_ok), &stranger).await.unwrap();
            assert_eq!((p.credential, p.role), (Credential::ApiKey, ApiRole::Admin));
            // A key always decides: a wrong one is 401 even with a good
            // certificate, a good one wins over the certificate's role.
            assert!(matches!(
                run(Some(&hv("Bearer isk_0123456789abcdef_nope")), &ops).await,
                Err(AuthError::Invalid)
            ));
            assert_eq!(
                run(Some(&bearer_ok), &ops).await.unwrap().role,
                ApiRole::Admin
            );
            // A non-bearer Authorization header does not hide the certificate.
            assert_eq!(
                run(Some(&hv("Basic Zm9vOmJhcg==")), &ops)
                    .await
                    .unwrap()
                    .role,
                ApiRole::Operator
            );

            // Without client-certificate authentication configured, or
            // without a certificate, only keys count.
            let chain = [CertificateDer::from(ops.clone())];
            assert!(matches!(
                authenticate_request(&store, None, None, Some(&chain), t).await,
                Err(AuthError::Missing)
            ));
            assert!(matches!(
                authenticate_request(&store, None, Some(&auth), None, t).await,
                Err(AuthError::Missing)
            ));
            assert!(matches!(
                authenticate_request(&store, None, Some(&auth), Some(&[]), t).await,
                Err(AuthError::Missing)
            ));
        }

        /// Issue 10 item 13: a CA that becomes one of ironseal's own at
        /// runtime (imported with its key) turns the bundle's name rules
        /// off at once; sha256 rules keep working. Without the check the
        /// name rule went on authenticating certificates that CA issues.
        #[tokio::test]
        async fn name_rules_stop_when_the_client_ca_becomes_one_of_ours() {
            let dir = tempfile::tempdir().unwrap();
            let ca = TestCa::new("admin client CA");
            let pinned = ca.client("pinned");
            let auth = ClientCertAuth::new(
                &ca.write(dir.path()),
                vec![
                    "operator=subject_cn:ops".parse().unwrap(),
                    format!("admin=sha256:{}", crate::ids::sha256_hex(&pinned))
                        .parse()
                        .unwrap(),
                ],
                &[],
            )
            .unwrap();
            let store = MemoryStore::new();
            let t = UnixTime::now();
            let ops = ca.client("ops");
            let run = async |der: &[u8]| {
                let chain = [CertificateDer::from(der.to_vec())];
                authenticate_request(&store, None, Some(&auth), Some(&chain), t).await
            };
            assert_eq!(run(&ops).await.unwrap().role, ApiRole::Operator);
            store
                .put_ca(&ironseal_storage::CaRecord {
                    id: "imported".into(),
                    name: "imported".into(),
                    parent_id: None,
                    cert_der: ca.der.clone(),
                    sealed_key: vec![1],
                    algorithm: None,
                    status: ironseal_storage::CaStatus::Active,
                    created_at: OffsetDateTime::now_utc(),
                    cross_certs: Vec::new(),
                    csr_der: Vec::new(),
                    predecessor_id: None,
                })
                .await
                .unwrap();
            match run(&ops).await {
                Err(AuthError::CertRejected { reason, .. }) => {
                    assert!(reason.contains("own CAs"), "{reason}")
                }
                other => panic!("expected CertRejected, got {other:?}"),
            }
            assert_eq!(run(&pinned).await.unwrap().role, ApiRole::Admin);
        }

        #[tokio::test]
        async fn certificates_revoked_in_the_store_are_refused() {
            let dir = tempfile::tempdir().unwrap();
            let ca = TestCa::new("admin client CA");
            let auth = ClientCertAuth::new(
                &ca.write(dir.path()),
                vec!["operator=subject_cn:ops".parse().unwrap()],
                &[],
            )
            .unwrap();
            let store = MemoryStore::new();
            let t = UnixTime::now();
            let ops = ca.client("ops");
            let serial = CertInfo::parse(&ops).unwrap().serial_hex;
            store
                .insert_certificate(&record(&ops, &serial))
                .await
                .unwrap();
            let chain = [CertificateDer::from(ops.clone())];
            let run =
                async || authenticate_request(&store, None, Some(&auth), Some(&chain), t).await;
            assert!(run().await.is_ok(), "issued by us, not revoked");
            store
                .revoke_certificate(
                    &serial,
                    RevocationRecord {
                        revoked_at: OffsetDateTime::now_utc(),
                        reason: RevocationReason::KeyCompromise,
                    },
                )
                .await
                .unwrap();
            match run().await {
                Err(AuthError::CertRejected { reason, .. }) => {
                    assert!(reason.contains("revoked"), "{reason}")
                }
                other => panic!("expected CertRejected, got {other:?}"),
            }

            // A revoked record with the same serial but other bytes is
            // another certificate (another issuer): not this one.
            let other = ca.client("ops");
            let other_serial = CertInfo::parse(&other).unwrap().serial_hex;
            let mut rec = record(&ops, &other_serial);
            rec.revocation = Some(RevocationRecord {
                revoked_at: OffsetDateTime::now_utc(),
                reason: RevocationReason::Superseded,
            });
            store.insert_certificate(&rec).await.unwrap();
            let chain = [CertificateDer::from(other)];
            assert!(
                authenticate_request(&store, None, Some(&auth), Some(&chain), t)
                    .await
                    .is_ok()
            );
        }
    }
}
