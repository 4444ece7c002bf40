//! One issuance as one transaction (see [`crate::issuance`]): certificate,
//! order transition (checked under the order's row lock), `replaces` link,
//! SCEP transaction outcome (checked under its row lock) and audit entry
//! commit together or not at all.

use deadpool_postgres::Pool;

use crate::audit::{AuditEntry, AuditMacKey};
use crate::issuance::IssuanceWrite;
use crate::keys;
use crate::postgres::{audit, certificates, orders, scep};
use crate::types::OrderStatus;
use crate::StoreError;

pub(crate) async fn record(
    pool: &Pool,
    write: &IssuanceWrite,
    mac: Option<&AuditMacKey>,
) -> Result<AuditEntry, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    // Locks are taken in one order: the new serial, the order row, the
    // replaced certificate, the SCEP transaction, the audit head (appends
    // lock only the head).
    certificates::insert_in(&tx, &write.certificate).await?;
    if let Some(order) = &write.order {
        match orders::replace_if_status(&tx, order, OrderStatus::Processing).await? {
            None => return Err(StoreError::NotFound),
            Some(true) => {}
            Some(false) => return Err(StoreError::Conflict("the order left processing".into())),
        }
        if let Some(replaced) = &write.replaces {
            let serial = keys::serial_key(replaced);
            if let Some(mut old) = certificates::lock(&tx, &serial).await? {
                if old.replaced_by.is_none() {
                    old.replaced_by = Some(order.id.clone());
                    certificates::rewrite(&tx, &old).await?;
                }
            }
        }
    }
    if let Some(settle) = &write.scep_transaction {
        if !scep::replace_in(&tx, &settle.expected, &settle.settled).await? {
            return Err(StoreError::Conflict("the SCEP transaction changed".into()));
        }
    }
    let entry = audit::append_in(&tx, &write.audit, mac).await?;
    tx.commit().await?;
    Ok(entry)
}
