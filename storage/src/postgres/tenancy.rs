//! Tenants and their external account binding keys (RFC 8555 §7.3.4).
//! Disabling is one-way and checked under the row lock.

use deadpool_postgres::Pool;
use time::OffsetDateTime;

use crate::postgres::sql::{conflict_on_unique, doc_of, docs_of, enc, Cached};
use crate::tenancy::{EabKeyRecord, TenantRecord};
use crate::StoreError;

pub(crate) async fn create_tenant(pool: &Pool, tenant: &TenantRecord) -> Result<(), StoreError> {
    let c = pool.get().await?;
    conflict_on_unique(
        c.execute_cached(
            "INSERT INTO tenants (id, doc) VALUES ($1, $2)",
            &[&tenant.id, &enc(tenant)?],
        )
        .await,
        "tenant id exists",
    )?;
    Ok(())
}

pub(crate) async fn get_tenant(pool: &Pool, id: &str) -> Result<Option<TenantRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached("SELECT doc FROM tenants WHERE id = $1", &[&id])
            .await?,
    )
}

pub(crate) async fn list_tenants(pool: &Pool) -> Result<Vec<TenantRecord>, StoreError> {
    let c = pool.get().await?;
    docs_of(
        c.query_cached("SELECT doc FROM tenants ORDER BY id", &[])
            .await?,
    )
}

pub(crate) async fn disable_tenant(
    pool: &Pool,
    id: &str,
    at: OffsetDateTime,
) -> Result<TenantRecord, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_opt_cached("SELECT doc FROM tenants WHERE id = $1 FOR UPDATE", &[&id])
        .await?;
    let mut t: TenantRecord = doc_of(row)?.ok_or(StoreError::NotFound)?;
    if t.disabled_at.is_some() {
        return Err(StoreError::Conflict("tenant already disabled".into()));
    }
    t.disabled_at = Some(at);
    tx.execute_cached(
        "UPDATE tenants SET doc = $2 WHERE id = $1",
        &[&id, &enc(&t)?],
    )
    .await?;
    tx.commit().await?;
    Ok(t)
}

pub(crate) async fn create_eab_key(pool: &Pool, key: &EabKeyRecord) -> Result<(), StoreError> {
    let c = pool.get().await?;
    conflict_on_unique(
        c.execute_cached(
            "INSERT INTO eab_keys (kid, tenant_id, doc) VALUES ($1, $2, $3)",
            &[&key.kid, &key.tenant_id, &enc(key)?],
        )
        .await,
        "EAB key id exists",
    )?;
    Ok(())
}

pub(crate) async fn get_eab_key(
    pool: &Pool,
    kid: &str,
) -> Result<Option<EabKeyRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached("SELECT doc FROM eab_keys WHERE kid = $1", &[&kid])
            .await?,
    )
}

pub(crate) async fn list_eab_keys(
    pool: &Pool,
    tenant_id: Option<&str>,
) -> Result<Vec<EabKeyRecord>, StoreError> {
    let c = pool.get().await?;
    let rows = match tenant_id {
        None => {
            c.query_cached("SELECT doc FROM eab_keys ORDER BY kid", &[])
                .await?
        }
        Some(t) => {
            c.query_cached(
                "SELECT doc FROM eab_keys WHERE tenant_id = $1 ORDER BY kid",
                &[&t],
            )
            .await?
        }
    };
    docs_of(rows)
}

pub(crate) async fn disable_eab_key(
    pool: &Pool,
    kid: &str,
    at: OffsetDateTime,
) -> Result<EabKeyRecord, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_opt_cached(
            "SELECT doc FROM eab_keys WHERE kid = $1 FOR UPDATE",
            &[&kid],
        )
        .await?;
    let mut k: EabKeyRecord = doc_of(row)?.ok_or(StoreError::NotFound)?;
    if k.disabled_at.is_some() {
        return Err(StoreError::Conflict("EAB key already disabled".into()));
    }
    k.disabled_at = Some(at);
    tx.execute_cached(
        "UPDATE eab_keys SET doc = $2 WHERE kid = $1",
        &[&kid, &enc(&k)?],
    )
    .await?;
    tx.commit().await?;
    Ok(k)
}
