//! ACME accounts (RFC 8555 §7.3): `accounts`, unique by id and by key
//! thumbprint; creation bound to an external account binding key.

use deadpool_postgres::{Pool, Transaction};

use crate::postgres::sql::{conflict_on_unique, dec, doc_of, enc, Cached};
use crate::records::AccountRecord;
use crate::tenancy::EabKeyRecord;
use crate::types::AccountStatus;
use crate::StoreError;

/// Inserts a new account in `tx`; the unique constraints on id and
/// thumbprint make concurrent creates of one key conflict.
async fn insert(tx: &Transaction<'_>, account: &AccountRecord) -> Result<(), StoreError> {
    // The unique violation aborts the transaction; the caller returns.
    let exists = tx
        .query_opt_cached(
            "SELECT 1 FROM accounts WHERE thumbprint = $1",
            &[&account.thumbprint],
        )
        .await?;
    if exists.is_some() {
        return Err(StoreError::Conflict("account key already in use".into()));
    }
    conflict_on_unique(
        tx.execute_cached(
            "INSERT INTO accounts (id, thumbprint, doc) VALUES ($1, $2, $3)",
            &[&account.id, &account.thumbprint, &enc(account)?],
        )
        .await,
        "account id or key already in use",
    )?;
    Ok(())
}

pub(crate) async fn create(pool: &Pool, account: &AccountRecord) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    insert(&tx, account).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn create_bound(
    pool: &Pool,
    account: &AccountRecord,
    eab_kid: &str,
) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    insert(&tx, account).await?;
    // The key row is locked until commit: of two accounts racing for one
    // key, the second sees it bound.
    let row = tx
        .query_opt_cached(
            "SELECT doc FROM eab_keys WHERE kid = $1 FOR UPDATE",
            &[&eab_kid],
        )
        .await?;
    let mut key: EabKeyRecord = doc_of(row)?.ok_or(StoreError::NotFound)?;
    if key.disabled_at.is_some() {
        return Err(StoreError::Conflict("the EAB key is disabled".into()));
    }
    if key.bound_account.is_some() {
        return Err(StoreError::Conflict("the EAB key is already bound".into()));
    }
    key.bound_account = Some(account.id.clone());
    tx.execute_cached(
        "UPDATE eab_keys SET doc = $2 WHERE kid = $1",
        &[&eab_kid, &enc(&key)?],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get(pool: &Pool, id: &str) -> Result<Option<AccountRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached("SELECT doc FROM accounts WHERE id = $1", &[&id])
            .await?,
    )
}

pub(crate) async fn by_thumbprint(
    pool: &Pool,
    thumbprint: &str,
) -> Result<Option<AccountRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached(
            "SELECT doc FROM accounts WHERE thumbprint = $1",
            &[&thumbprint],
        )
        .await?,
    )
}

/// The stored account, locked for the rest of `tx`.
async fn lock(tx: &Transaction<'_>, id: &str) -> Result<AccountRecord, StoreError> {
    let row = tx
        .query_opt_cached("SELECT doc FROM accounts WHERE id = $1 FOR UPDATE", &[&id])
        .await?
        .ok_or(StoreError::NotFound)?;
    dec(crate::postgres::sql::col(&row, 0)?)
}

pub(crate) async fn update(pool: &Pool, account: &AccountRecord) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let stored = lock(&tx, &account.id).await?;
    if stored.thumbprint != account.thumbprint {
        return Err(StoreError::Conflict(
            "thumbprint differs; use change_account_key".into(),
        ));
    }
    if stored.status != AccountStatus::Valid && account.status != stored.status {
        return Err(StoreError::AccountNotValid);
    }
    tx.execute_cached(
        "UPDATE accounts SET doc = $2 WHERE id = $1",
        &[&account.id, &enc(account)?],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn change_key(
    pool: &Pool,
    account: &AccountRecord,
    old_thumbprint: &str,
) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let stored = lock(&tx, &account.id).await?;
    if stored.thumbprint != old_thumbprint {
        return Err(StoreError::Conflict("account key changed meanwhile".into()));
    }
    if stored.status != AccountStatus::Valid {
        return Err(StoreError::AccountNotValid);
    }
    if account.thumbprint == stored.thumbprint {
        return Err(StoreError::Conflict("new key already in use".into()));
    }
    conflict_on_unique(
        tx.execute_cached(
            "UPDATE accounts SET thumbprint = $2, doc = $3 WHERE id = $1",
            &[&account.id, &account.thumbprint, &enc(account)?],
        )
        .await,
        "new key already in use",
    )?;
    tx.commit().await?;
    Ok(())
}
