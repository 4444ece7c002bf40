//! ACME orders (RFC 8555 §7.1.3): `orders`, listed per account by
//! (created_at, id); status moves by compare-and-swap.

use deadpool_postgres::Pool;

use crate::postgres::sql::{col, doc_of, enc, ns, status_text, Cached};
use crate::records::OrderRecord;
use crate::types::OrderStatus;
use crate::StoreError;

/// Inserts or replaces an order (in a transaction or not).
pub(crate) async fn upsert<C: Cached>(c: &C, order: &OrderRecord) -> Result<(), StoreError> {
    c.execute_cached(
        "INSERT INTO orders (id, account_id, created_ns, doc) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE
         SET account_id = excluded.account_id, created_ns = excluded.created_ns, doc = excluded.doc",
        &[&order.id, &order.account_id, &ns(order.created_at)?, &enc(order)?],
    )
    .await?;
    Ok(())
}

pub(crate) async fn put(pool: &Pool, order: &OrderRecord) -> Result<(), StoreError> {
    let c = pool.get().await?;
    upsert(&c, order).await
}

pub(crate) async fn get(pool: &Pool, id: &str) -> Result<Option<OrderRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached("SELECT doc FROM orders WHERE id = $1", &[&id])
            .await?,
    )
}

pub(crate) async fn list(
    pool: &Pool,
    account_id: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let c = pool.get().await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = match after {
        None => {
            c.query_cached(
                "SELECT id FROM orders WHERE account_id = $1
                 ORDER BY created_ns, id LIMIT $2",
                &[&account_id, &limit],
            )
            .await?
        }
        Some(cursor) => {
            let row = c
                .query_opt_cached(
                    "SELECT created_ns FROM orders WHERE id = $1 AND account_id = $2",
                    &[&cursor, &account_id],
                )
                .await?
                .ok_or(StoreError::NotFound)?;
            let created: i64 = col(&row, 0)?;
            c.query_cached(
                "SELECT id FROM orders WHERE account_id = $1 AND (created_ns, id) > ($2, $3)
                 ORDER BY created_ns, id LIMIT $4",
                &[&account_id, &created, &cursor, &limit],
            )
            .await?
        }
    };
    rows.iter().map(|r| col::<String>(r, 0)).collect()
}

/// Replaces the stored order with `order` if its stored status is
/// `expected`, in one statement (the row lock of the `UPDATE` is the
/// compare-and-swap: a concurrent writer's change is re-checked against the
/// condition before this one applies). `None` if there is no such order,
/// `Some(false)` if its status differs.
pub(crate) async fn replace_if_status<C: Cached>(
    c: &C,
    order: &OrderRecord,
    expected: OrderStatus,
) -> Result<Option<bool>, StoreError> {
    let n = c
        .execute_cached(
            "UPDATE orders SET account_id = $2, created_ns = $3, doc = $4
             WHERE id = $1 AND (doc::jsonb->>'status') = $5",
            &[
                &order.id,
                &order.account_id,
                &ns(order.created_at)?,
                &enc(order)?,
                &status_text(&expected)?,
            ],
        )
        .await?;
    if n == 1 {
        return Ok(Some(true));
    }
    let exists = c
        .query_opt_cached("SELECT 1 FROM orders WHERE id = $1", &[&order.id])
        .await?
        .is_some();
    Ok(exists.then_some(false))
}

/// `Store::transition_order`: one compare-and-swap statement.
pub(crate) async fn transition(
    pool: &Pool,
    order: &OrderRecord,
    expected: OrderStatus,
) -> Result<bool, StoreError> {
    let c = pool.get().await?;
    replace_if_status(&c, order, expected)
        .await?
        .ok_or(StoreError::NotFound)
}
