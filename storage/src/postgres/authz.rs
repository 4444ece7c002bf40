//! ACME authorizations (RFC 8555 §7.1.4): `authzs`, indexed by account and
//! normalised identifier for reuse.

use deadpool_postgres::Pool;

use crate::keys;
use crate::postgres::sql::{doc_of, docs_of, enc, status_text, Cached};
use crate::records::AuthzRecord;
use crate::types::{AuthzStatus, Identifier, IdentifierKind};
use crate::StoreError;

/// The (kind, wildcard, value) an authorization is indexed under: DNS
/// values lowercased, as `keys::authz_key` does for sled.
fn index_parts(identifier: &Identifier, wildcard: bool) -> (&'static str, bool, String) {
    match identifier.kind {
        IdentifierKind::Dns => ("dns", wildcard, identifier.value.to_ascii_lowercase()),
        IdentifierKind::Ip => ("ip", wildcard, identifier.value.clone()),
    }
}

/// What an order identifier matches: `*.` marks a wildcard on the base name
/// (see `Store::find_reusable_authz`).
fn query_parts(identifier: &Identifier) -> (&'static str, bool, String) {
    let (kind, _, value) = index_parts(identifier, false);
    match (identifier.kind, value.strip_prefix("*.")) {
        (IdentifierKind::Dns, Some(base)) => (kind, true, base.to_owned()),
        _ => (kind, false, value),
    }
}

pub(crate) async fn put(pool: &Pool, authz: &AuthzRecord) -> Result<(), StoreError> {
    let c = pool.get().await?;
    upsert(&c, authz).await
}

/// `Store::transition_authz`: one compare-and-swap statement (the row
/// lock of the `UPDATE` re-checks the status against a concurrent writer's
/// change); a miss is told apart from an absent row only on that path.
pub(crate) async fn transition(
    pool: &Pool,
    authz: &AuthzRecord,
    expected: AuthzStatus,
) -> Result<bool, StoreError> {
    let c = pool.get().await?;
    let (kind, wildcard, value) = index_parts(&authz.identifier, authz.wildcard);
    let n = c
        .execute_cached(
            "UPDATE authzs SET account_id = $2, kind = $3, wildcard = $4, value = $5, doc = $6
             WHERE id = $1 AND (doc::jsonb->>'status') = $7",
            &[
                &authz.id,
                &authz.account_id,
                &kind,
                &wildcard,
                &value,
                &enc(authz)?,
                &status_text(&expected)?,
            ],
        )
        .await?;
    if n == 1 {
        return Ok(true);
    }
    match c
        .query_opt_cached("SELECT 1 FROM authzs WHERE id = $1", &[&authz.id])
        .await?
    {
        Some(_) => Ok(false),
        None => Err(StoreError::NotFound),
    }
}

async fn upsert<C: Cached>(c: &C, authz: &AuthzRecord) -> Result<(), StoreError> {
    let (kind, wildcard, value) = index_parts(&authz.identifier, authz.wildcard);
    c.execute_cached(
        "INSERT INTO authzs (id, account_id, kind, wildcard, value, doc)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id,
             kind = excluded.kind, wildcard = excluded.wildcard,
             value = excluded.value, doc = excluded.doc",
        &[
            &authz.id,
            &authz.account_id,
            &kind,
            &wildcard,
            &value,
            &enc(authz)?,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get(pool: &Pool, id: &str) -> Result<Option<AuthzRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached("SELECT doc FROM authzs WHERE id = $1", &[&id])
            .await?,
    )
}

pub(crate) async fn find_reusable(
    pool: &Pool,
    account_id: &str,
    identifier: &Identifier,
    now: time::OffsetDateTime,
) -> Result<Option<AuthzRecord>, StoreError> {
    let c = pool.get().await?;
    let (kind, wildcard, value) = query_parts(identifier);
    let rows = c
        .query_cached(
            "SELECT doc FROM authzs
             WHERE account_id = $1 AND kind = $2 AND wildcard = $3 AND value = $4",
            &[&account_id, &kind, &wildcard, &value],
        )
        .await?;
    // The same selection rule as the other backends.
    let mut best = None;
    for a in docs_of::<AuthzRecord>(rows)? {
        if keys::reusable(&a, now) {
            best = Some(keys::better(best, a));
        }
    }
    Ok(best)
}
