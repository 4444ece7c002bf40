//! Stored CRLs and CRL generations (`crls`, `crl_generations`, migration 6;
//! see [`crate::crls`]) and OCSP responders (`ocsp_responders`).

use deadpool_postgres::Pool;
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::crls::{CrlHead, CrlPart, StoredCrl};
use crate::ocsp_responders::OcspResponderRecord;
use crate::postgres::sql::{big, col, doc_of, enc, ns, unbig, Cached};
use crate::StoreError;

fn time_of(ns: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .map_err(|e| StoreError::Corrupt(format!("timestamp: {e}")))
}

/// The head in columns `at..at + 4` (number, generation, thisUpdate,
/// nextUpdate).
fn head_of(r: &Row, at: usize) -> Result<CrlHead, StoreError> {
    Ok(CrlHead {
        number: unbig(col(r, at)?)?,
        generation: unbig(col(r, at + 1)?)?,
        this_update: time_of(col(r, at + 2)?)?,
        next_update: time_of(col(r, at + 3)?)?,
    })
}

/// Upsert unless the stored number is higher (one statement).
pub(crate) async fn put(pool: &Pool, crl: &StoredCrl) -> Result<bool, StoreError> {
    let c = pool.get().await?;
    let n = c
        .execute_cached(
            "INSERT INTO crls AS c
                 (ca_id, part, number, generation, this_update_ns, next_update_ns, der)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (ca_id, part) DO UPDATE
             SET number = excluded.number, generation = excluded.generation,
                 this_update_ns = excluded.this_update_ns,
                 next_update_ns = excluded.next_update_ns, der = excluded.der
             WHERE c.number <= excluded.number",
            &[
                &crl.ca_id,
                &crl.part.code(),
                &big(crl.head.number)?,
                &big(crl.head.generation)?,
                &ns(crl.head.this_update)?,
                &ns(crl.head.next_update)?,
                &crl.der,
            ],
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn get(
    pool: &Pool,
    ca_id: &str,
    part: CrlPart,
) -> Result<Option<StoredCrl>, StoreError> {
    let c = pool.get().await?;
    let row = c
        .query_opt_cached(
            "SELECT number, generation, this_update_ns, next_update_ns, der FROM crls
             WHERE ca_id = $1 AND part = $2",
            &[&ca_id, &part.code()],
        )
        .await?;
    row.map(|r| {
        Ok(StoredCrl {
            ca_id: ca_id.to_owned(),
            part,
            head: head_of(&r, 0)?,
            der: col(&r, 4)?,
        })
    })
    .transpose()
}

/// The generation and the head in one round trip.
pub(crate) async fn head(
    pool: &Pool,
    ca_id: &str,
    part: CrlPart,
) -> Result<(u64, Option<CrlHead>), StoreError> {
    let c = pool.get().await?;
    let row = c
        .query_one_cached(
            "SELECT (SELECT generation FROM crl_generations WHERE ca_id = $1),
                    c.number, c.generation, c.this_update_ns, c.next_update_ns
             FROM (SELECT 1) AS one
             LEFT JOIN crls AS c ON c.ca_id = $1 AND c.part = $2",
            &[&ca_id, &part.code()],
        )
        .await?;
    let generation: Option<i64> = col(&row, 0)?;
    let number: Option<i64> = col(&row, 1)?;
    let head = match number {
        Some(_) => Some(head_of(&row, 1)?),
        None => None,
    };
    Ok((generation.map(unbig).transpose()?.unwrap_or(0), head))
}

pub(crate) async fn bump_generation(pool: &Pool, ca_id: &str) -> Result<u64, StoreError> {
    let c = pool.get().await?;
    let row = c
        .query_one_cached(
            "INSERT INTO crl_generations AS g (ca_id, generation) VALUES ($1, 1)
             ON CONFLICT (ca_id) DO UPDATE SET generation = g.generation + 1
             RETURNING generation",
            &[&ca_id],
        )
        .await?;
    unbig(col(&row, 0)?)
}

pub(crate) async fn put_responder(
    pool: &Pool,
    record: &OcspResponderRecord,
) -> Result<(), StoreError> {
    let c = pool.get().await?;
    c.execute_cached(
        "INSERT INTO ocsp_responders (ca_id, doc) VALUES ($1, $2)
         ON CONFLICT (ca_id) DO UPDATE SET doc = excluded.doc",
        &[&record.ca_id, &enc(record)?],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get_responder(
    pool: &Pool,
    ca_id: &str,
) -> Result<Option<OcspResponderRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached(
            "SELECT doc FROM ocsp_responders WHERE ca_id = $1",
            &[&ca_id],
        )
        .await?,
    )
}
