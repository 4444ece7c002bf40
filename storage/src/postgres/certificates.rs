//! Issued certificates: `certificates` keyed by lowercase hex serial, with
//! the issuer and a revoked flag as columns for CRLs; blocked keys.
//! Revocation and replacement are one-way and checked under a row lock.

use deadpool_postgres::Pool;

use crate::keys;
use crate::postgres::sql::{col, dec, doc_of, enc, Cached};
use crate::records::{CertificateRecord, CertificateStatus, RevocationRecord};
use crate::StoreError;

/// Inserts a certificate; `DuplicateSerial` if the serial exists (the
/// primary key decides between concurrent inserts).
pub(crate) async fn insert_in<C: Cached>(
    c: &C,
    cert: &CertificateRecord,
) -> Result<(), StoreError> {
    let mut cert = cert.clone();
    cert.serial = keys::serial_key(&cert.serial);
    let n = c
        .execute_cached(
            "INSERT INTO certificates (serial, issuer_id, revoked, doc) VALUES ($1, $2, $3, $4)
             ON CONFLICT (serial) DO NOTHING",
            &[
                &cert.serial,
                &cert.issuer_id,
                &cert.revocation.is_some(),
                &enc(&cert)?,
            ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::DuplicateSerial);
    }
    Ok(())
}

pub(crate) async fn insert(pool: &Pool, cert: &CertificateRecord) -> Result<(), StoreError> {
    let c = pool.get().await?;
    insert_in(&c, cert).await
}

pub(crate) async fn get(
    pool: &Pool,
    serial_hex: &str,
) -> Result<Option<CertificateRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached(
            "SELECT doc FROM certificates WHERE serial = $1",
            &[&keys::serial_key(serial_hex)],
        )
        .await?,
    )
}

pub(crate) async fn status(
    pool: &Pool,
    serial_hex: &str,
) -> Result<Option<CertificateStatus>, StoreError> {
    Ok(get(pool, serial_hex)
        .await?
        .as_ref()
        .map(CertificateStatus::from))
}

/// The stored certificate, locked for the rest of the transaction.
pub(crate) async fn lock<C: Cached>(
    c: &C,
    serial: &str,
) -> Result<Option<CertificateRecord>, StoreError> {
    doc_of(
        c.query_opt_cached(
            "SELECT doc FROM certificates WHERE serial = $1 FOR UPDATE",
            &[&serial],
        )
        .await?,
    )
}

/// Rewrites a locked certificate.
pub(crate) async fn rewrite<C: Cached>(c: &C, cert: &CertificateRecord) -> Result<(), StoreError> {
    c.execute_cached(
        "UPDATE certificates SET issuer_id = $2, revoked = $3, doc = $4 WHERE serial = $1",
        &[
            &cert.serial,
            &cert.issuer_id,
            &cert.revocation.is_some(),
            &enc(cert)?,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn update(pool: &Pool, cert: &CertificateRecord) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let serial = keys::serial_key(&cert.serial);
    let stored = lock(&tx, &serial).await?.ok_or(StoreError::NotFound)?;
    rewrite(&tx, &keys::merge_certificate(&stored, cert)).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn revoke(
    pool: &Pool,
    serial_hex: &str,
    revocation: RevocationRecord,
) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let mut cert = lock(&tx, &keys::serial_key(serial_hex))
        .await?
        .ok_or(StoreError::NotFound)?;
    if cert.revocation.is_some() {
        return Err(StoreError::AlreadyRevoked);
    }
    cert.revocation = Some(revocation);
    rewrite(&tx, &cert).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn mark_replaced(
    pool: &Pool,
    serial_hex: &str,
    order_id: &str,
) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let mut cert = lock(&tx, &keys::serial_key(serial_hex))
        .await?
        .ok_or(StoreError::NotFound)?;
    if cert.replaced_by.is_some() {
        return Err(StoreError::AlreadyReplaced);
    }
    cert.replaced_by = Some(order_id.to_owned());
    rewrite(&tx, &cert).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn revoked(
    pool: &Pool,
    issuer_id: &str,
) -> Result<Vec<(String, RevocationRecord)>, StoreError> {
    let c = pool.get().await?;
    let rows = c
        .query_cached(
            "SELECT doc FROM certificates WHERE issuer_id = $1 AND revoked ORDER BY serial",
            &[&issuer_id],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let cert: CertificateRecord = dec(col::<&str>(r, 0)?)?;
        let rev = cert
            .revocation
            .ok_or_else(|| StoreError::Corrupt(format!("{} flagged revoked", cert.serial)))?;
        out.push((cert.serial, rev));
    }
    Ok(out)
}

pub(crate) async fn block_key(pool: &Pool, public_key_sha256: &str) -> Result<(), StoreError> {
    let c = pool.get().await?;
    c.execute_cached(
        "INSERT INTO blocked_keys (public_key_sha256) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&public_key_sha256.to_ascii_lowercase()],
    )
    .await?;
    Ok(())
}

pub(crate) async fn is_key_blocked(
    pool: &Pool,
    public_key_sha256: &str,
) -> Result<bool, StoreError> {
    let c = pool.get().await?;
    Ok(c.query_opt_cached(
        "SELECT 1 FROM blocked_keys WHERE public_key_sha256 = $1",
        &[&public_key_sha256.to_ascii_lowercase()],
    )
    .await?
    .is_some())
}
