//! Logical export and import of a whole store (`ironseal store export` /
//! `ironseal store import`, issue 11): every record as the typed value the
//! [`Store`] trait speaks, so a deployment can move from sled to PostgreSQL
//! and back.
//!
//! A backup (`sled_backup`) copies one engine's trees byte for byte and can
//! only go back into that engine; an export is engine-neutral. Both use the
//! same checked line file ([`crate::backup`]): an export is a file of format
//! [`EXPORT_FORMAT`] whose entries are [`ExportRecord`]s.
//!
//! Import writes each record verbatim (ids, timestamps, statuses, the audit
//! chain with its hashes) through the store's own methods, so every index
//! the target engine keeps is built as for a live write. It refuses a target
//! that already holds data, and checks the audit chain link by link as it
//! goes.

use serde::{Deserialize, Serialize};

use crate::approvals::ApprovalRecord;
use crate::audit::{AuditEntry, AuditKeyRecord};
use crate::est_users::EstUserRecord;
use crate::records::{
    AccountRecord, ApiKeyRecord, AuthzRecord, CaRecord, CertificateRecord, OrderRecord,
};
use crate::scep::ScepTransactionRecord;
use crate::scep_challenges::ScepChallengeRecord;
use crate::settings::NamedSetting;
use crate::tenancy::{EabKeyRecord, TenantRecord};
use crate::{backup, Store, StoreError};

/// The `format` of an export file's header line.
pub const EXPORT_FORMAT: &str = "ironseal-export";

/// One record of an export. Serialized as `{"kind":"account","doc":{…}}`;
/// `doc` is the record's usual JSON document (the one sled and PostgreSQL
/// store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "doc", rename_all = "snake_case")]
pub enum ExportRecord {
    Ca(CaRecord),
    /// A sealed audit key (MAC or checkpoint signing key): without it the
    /// target server would make new keys and the entries' MACs would no
    /// longer verify.
    AuditKey(AuditKeyRecord),
    /// A setting (issuing-CA pin, SCEP RA certificate and sealed key).
    Setting(NamedSetting),
    Tenant(TenantRecord),
    ApiKey(ApiKeyRecord),
    EabKey(EabKeyRecord),
    EstUser(EstUserRecord),
    Account(AccountRecord),
    Order(OrderRecord),
    Authz(AuthzRecord),
    Certificate(CertificateRecord),
    /// A blocked public key (SHA-256 of its SPKI, lowercase hex).
    BlockedKey(String),
    /// The last CRL number issued for a CA.
    CrlNumber(CrlNumber),
    Approval(ApprovalRecord),
    ScepTransaction(ScepTransactionRecord),
    /// A one-time SCEP challenge (its hash, never the password).
    ScepChallenge(ScepChallengeRecord),
    /// Audit entries come last, in sequence order.
    AuditEntry(AuditEntry),
}

/// The last CRL number a CA used (RFC 5280 §5.2.3: numbers only grow, so
/// an import must carry it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlNumber {
    pub ca_id: String,
    pub last: u64,
}

impl ExportRecord {
    /// The `kind` tag, for counts and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ExportRecord::Ca(_) => "ca",
            ExportRecord::AuditKey(_) => "audit_key",
            ExportRecord::Setting(_) => "setting",
            ExportRecord::Tenant(_) => "tenant",
            ExportRecord::ApiKey(_) => "api_key",
            ExportRecord::EabKey(_) => "eab_key",
            ExportRecord::EstUser(_) => "est_user",
            ExportRecord::Account(_) => "account",
            ExportRecord::Order(_) => "order",
            ExportRecord::Authz(_) => "authz",
            ExportRecord::Certificate(_) => "certificate",
            ExportRecord::BlockedKey(_) => "blocked_key",
            ExportRecord::CrlNumber(_) => "crl_number",
            ExportRecord::Approval(_) => "approval",
            ExportRecord::ScepTransaction(_) => "scep_transaction",
            ExportRecord::ScepChallenge(_) => "scep_challenge",
            ExportRecord::AuditEntry(_) => "audit_entry",
        }
    }
}

/// The sink an export hands each record to.
pub type ExportSink<'a> = dyn FnMut(ExportRecord) -> Result<(), StoreError> + Send + 'a;

/// Whether `store` holds nothing an import could collide with: no CA, no
/// account key, no API key, no tenant and an empty audit log. (A server
/// creates CAs, an admin key and audit entries on its first start, so a
/// store any server has run on is never empty.)
pub async fn is_empty(store: &dyn Store) -> Result<bool, StoreError> {
    Ok(store.list_cas().await?.is_empty()
        && store.list_api_keys().await?.is_empty()
        && store.list_tenants().await?.is_empty()
        && store.audit_head().await?.is_none()
        && store.count_records().await? == 0)
}

/// Writes one exported record into `store`, verbatim. Audit entries must
/// arrive in sequence order: each must follow the stored head, or the
/// import stops with `Corrupt` (see [`Store::import_audit_entry`]).
pub async fn import_record(store: &dyn Store, record: &ExportRecord) -> Result<(), StoreError> {
    match record {
        ExportRecord::Ca(r) => store.put_ca(r).await,
        ExportRecord::AuditKey(r) => {
            if store.create_audit_key(r).await? {
                Ok(())
            } else {
                Err(StoreError::Conflict(format!("audit key {} exists", r.name)))
            }
        }
        ExportRecord::Setting(r) => match store.put_setting(&r.name, &r.value, None).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::Conflict(format!("setting {} exists", r.name))),
        },
        ExportRecord::Tenant(r) => store.create_tenant(r).await,
        ExportRecord::ApiKey(r) => store.create_api_key(r).await,
        ExportRecord::EabKey(r) => store.create_eab_key(r).await,
        ExportRecord::EstUser(r) => store.create_est_user(r).await,
        ExportRecord::Account(r) => store.create_account(r).await,
        ExportRecord::Order(r) => store.put_order(r).await,
        ExportRecord::Authz(r) => store.put_authz(r).await,
        ExportRecord::Certificate(r) => store.insert_certificate(r).await,
        ExportRecord::BlockedKey(k) => store.block_key(k).await,
        ExportRecord::CrlNumber(n) => store.set_crl_number(&n.ca_id, n.last).await,
        ExportRecord::Approval(r) => store.create_approval(r).await,
        ExportRecord::ScepTransaction(r) => {
            if store.put_scep_transaction(r, None).await? {
                Ok(())
            } else {
                Err(StoreError::Conflict(format!(
                    "SCEP transaction {} exists",
                    r.transaction_id
                )))
            }
        }
        ExportRecord::ScepChallenge(r) => store.create_scep_challenge(r).await,
        ExportRecord::AuditEntry(e) => store.import_audit_entry(e).await,
    }
}

/// Small files of the data directory carried with the records: (name,
/// content).
pub type DataFiles = Vec<(String, Vec<u8>)>;

/// Records per kind, for the summary of an export or import.
pub type KindCounts = std::collections::BTreeMap<&'static str, u64>;

/// Writes an export file of `store` (written from `engine`) to `out`: every
/// record, then `files` (small files of the data directory that belong with
/// the store, such as the issuing-CA pin), then the trailer. `progress` gets
/// the number of records written so far.
pub async fn write_export(
    store: &dyn Store,
    engine: &str,
    out: &mut (dyn std::io::Write + Send),
    files: &[(String, Vec<u8>)],
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<(backup::Summary, KindCounts), StoreError> {
    let mut w = backup::Writer::with_format(out, EXPORT_FORMAT, engine)?;
    let mut counts = KindCounts::new();
    let mut done = 0u64;
    store
        .export_records(&mut |record| {
            *counts.entry(record.kind()).or_default() += 1;
            let value = serde_json::to_value(&record)
                .map_err(|e| StoreError::Backend(format!("encode {}: {e}", record.kind())))?;
            w.entry(&backup::Entry::Record(value))?;
            done += 1;
            progress(done);
            Ok(())
        })
        .await?;
    for (name, content) in files {
        w.entry(&backup::Entry::File {
            name: name.clone(),
            content: content.clone(),
        })?;
    }
    let (summary, _) = w.finish()?;
    Ok((summary, counts))
}

/// Reads an export file and hands every record to `each` (files are
/// collected and returned). Checks the header, every line and the trailer;
/// the caller must treat what `each` did as provisional until this returns
/// `Ok` (see [`backup::read`]).
pub fn read_export(
    input: &mut dyn std::io::BufRead,
    each: &mut dyn FnMut(ExportRecord) -> Result<(), StoreError>,
    progress: &mut dyn FnMut(backup::Progress),
) -> Result<(backup::Header, backup::Summary, DataFiles), StoreError> {
    let mut files = Vec::new();
    let (header, summary) = backup::read_format(
        input,
        EXPORT_FORMAT,
        None,
        &mut |entry| match entry {
            backup::Entry::Record(value) => {
                let record: ExportRecord = serde_json::from_value(value)
                    .map_err(|e| backup::BackupError::Corrupt(format!("record: {e}")))?;
                each(record).map_err(|e| backup::BackupError::Target(e.to_string()))
            }
            backup::Entry::File { name, content } => {
                files.push((name, content));
                Ok(())
            }
            backup::Entry::Kv { .. } => Err(backup::BackupError::Corrupt(
                "an engine tree entry in an export (use `ironseal restore` for backups)".into(),
            )),
        },
        progress,
    )?;
    Ok((header, summary, files))
}
