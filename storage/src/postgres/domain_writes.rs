//! A revocation and a change of the CA hierarchy, each as one transaction
//! (see [`crate::domain_writes`]).
//!
//! Locks are taken in the order issuance uses (certificate row, then the
//! audit head), with the CRL generation row in between for a revocation;
//! a hierarchy change locks its CA rows in id order, then the pin, then
//! the audit head, so two changes never wait on each other in a cycle.

use deadpool_postgres::Pool;

use crate::audit::{AuditEntry, AuditMacKey};
use crate::domain_writes::{CaExpect, CaUpdate, CaWrite, RevocationWrite};
use crate::keys;
use crate::postgres::sql::{doc_of, enc, ns, Cached};
use crate::postgres::{audit, certificates};
use crate::records::CaRecord;
use crate::StoreError;

pub(crate) async fn record_revocation(
    pool: &Pool,
    write: &RevocationWrite,
    mac: Option<&AuditMacKey>,
) -> Result<AuditEntry, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let mut cert = certificates::lock(&tx, &keys::serial_key(&write.serial))
        .await?
        .ok_or(StoreError::NotFound)?;
    if cert.revocation.is_some() {
        return Err(StoreError::AlreadyRevoked);
    }
    cert.revocation = Some(write.revocation);
    certificates::rewrite(&tx, &cert).await?;
    if let Some(key) = &write.block_key {
        tx.execute_cached(
            "INSERT INTO blocked_keys (public_key_sha256) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&key.to_ascii_lowercase()],
        )
        .await?;
    }
    tx.execute_cached(
        "INSERT INTO crl_generations AS g (ca_id, generation) VALUES ($1, 1)
         ON CONFLICT (ca_id) DO UPDATE SET generation = g.generation + 1",
        &[&write.issuer_id],
    )
    .await?;
    let entry = audit::append_in(&tx, &write.audit, mac).await?;
    tx.commit().await?;
    Ok(entry)
}

pub(crate) async fn record_ca_change(
    pool: &Pool,
    write: &CaWrite,
    mac: Option<&AuditMacKey>,
) -> Result<AuditEntry, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let mut updates: Vec<&CaUpdate> = write.records.iter().collect();
    updates.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    // Every row this change replaces is locked and checked before the
    // first write: a write fires the `cas` change-generation trigger, whose
    // row lock two changes would otherwise take in opposite order to their
    // CA rows (a deadlock PostgreSQL breaks by failing one of them).
    for update in &updates {
        check_ca(&tx, update).await?;
    }
    for update in updates {
        write_ca(&tx, update).await?;
    }
    if let Some(id) = &write.issuing_pin {
        tx.execute_cached(
            "INSERT INTO settings AS s (name, version, value) VALUES ($1, 1, $2)
             ON CONFLICT (name) DO UPDATE SET version = s.version + 1, value = excluded.value",
            &[&crate::settings::ISSUING_CA, &id.as_bytes()],
        )
        .await?;
    }
    let entry = audit::append_in(&tx, &write.audit, mac).await?;
    tx.commit().await?;
    Ok(entry)
}

/// Locks the stored record an update replaces and checks it is the one
/// expected (a new id is checked by its insert in [`write_ca`]).
async fn check_ca<C: Cached>(c: &C, update: &CaUpdate) -> Result<(), StoreError> {
    if let CaExpect::Is(_) = &update.expect {
        let stored: Option<CaRecord> = doc_of(
            c.query_opt_cached(
                "SELECT doc FROM cas WHERE id = $1 FOR UPDATE",
                &[&update.record.id],
            )
            .await?,
        )?;
        if !update.expects(stored.as_ref()) {
            return Err(CaWrite::conflict(update));
        }
    }
    Ok(())
}

/// Stores one CA record: a new id is inserted only if absent (the primary
/// key decides between concurrent creators); a replaced one was locked and
/// checked by [`check_ca`].
async fn write_ca<C: Cached>(c: &C, update: &CaUpdate) -> Result<(), StoreError> {
    let r = &update.record;
    match &update.expect {
        CaExpect::Absent => {
            let n = c
                .execute_cached(
                    "INSERT INTO cas (id, created_ns, doc) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO NOTHING",
                    &[&r.id, &ns(r.created_at)?, &enc(r)?],
                )
                .await?;
            if n != 1 {
                return Err(CaWrite::conflict(update));
            }
        }
        CaExpect::Is(_) => {
            // Locked and checked by `check_ca`.
            c.execute_cached(
                "UPDATE cas SET created_ns = $2, doc = $3 WHERE id = $1",
                &[&r.id, &ns(r.created_at)?, &enc(r)?],
            )
            .await?;
        }
    }
    Ok(())
}
