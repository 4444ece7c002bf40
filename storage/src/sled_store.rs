//! [`SledStore`]: the embedded backend on sled 0.34.
//!
//! # Layout
//!
//! One tree per record kind, values are the records' JSON (byte fields as
//! base64 inside the JSON, see [`crate::records::b64`]):
//!
//! | tree                  | key                                          | value                 |
//! |-----------------------|----------------------------------------------|-----------------------|
//! | `accounts`            | account id                                   | `AccountRecord`       |
//! | `account_thumbprints` | RFC 7638 thumbprint                          | account id            |
//! | `orders`              | order id                                     | `OrderRecord`         |
//! | `orders_by_account`   | account ‖ created_at (sortable) ‖ order id   | order id              |
//! | `orders_by_account`   | FF×4 ‖ account ‖ expires ‖ order id (pending) | order id             |
//! | `authzs`              | authz id                                     | `AuthzRecord`         |
//! | `authz_by_identifier` | account ‖ kind ‖ wildcard ‖ value ‖ authz id | authz id              |
//! | `authz_by_identifier` | FF×4 ‖ account ‖ expires ‖ authz id (pending) | authz id             |
//! | `certificates`        | serial (lowercase hex)                       | `CertificateRecord`   |
//! | `cert_status`         | serial (lowercase hex)                       | `CertificateStatus`   |
//! | `revoked`             | issuer id ‖ serial                           | `RevocationRecord`    |
//! | `blocked_keys`        | public key SHA-256 (lowercase hex)           | empty                 |
//! | `cas`                 | CA id                                        | `CaRecord`            |
//! | `crl_numbers`         | CA id                                        | last number, u64 BE   |
//! | `api_keys`            | API key id                                   | `ApiKeyRecord`        |
//! | `audit`               | seq, u64 BE                                  | `AuditEntry`          |
//! | `audit_meta`          | `head`                                       | `AuditHead`           |
//! | `audit_meta`          | `key:` ‖ name (`audit-mac`, `audit-checkpoint`) | `AuditKeyRecord`   |
//! | `tenants`             | tenant id                                    | `TenantRecord`        |
//! | `eab_keys`            | EAB key id                                   | `EabKeyRecord`        |
//! | `approvals`           | approval id                                  | `ApprovalRecord`      |
//! | `scep_transactions`   | SCEP transactionID                           | `ScepTransactionRecord` |
//! | `est_users`           | user name                                    | `EstUserRecord`       |
//! | `scep_challenges`     | SHA-256 of the password (hex)                | `ScepChallengeRecord` |
//! | `used_nonces`         | ACME nonce id, u128 BE                       | expiry, u64 BE (Unix s) |
//! | `rate_buckets`        | limit ‖ `:` ‖ key                            | GCRA TAT, i64 BE (ns) |
//! | `settings`            | setting name (`issuing-ca`, `scep-ra`)       | `SettingRecord`       |
//! | `leases`              | lease name                                   | `Lease`               |
//! | `crls`                | CA id ‖ 00 ‖ part code, i64 BE               | head length, u32 BE ‖ `CrlHead` ‖ DER |
//! | `crl_generations`     | CA id                                        | generation, u64 BE    |
//! | `ocsp_responders`     | CA id                                        | `OcspResponderRecord` |
//!
//! Strings inside composite keys are length-prefixed (see `keys.rs`). The
//! default tree holds `schema_version`, `cert_status_built` (set once
//! `cert_status` covers every certificate; a store written before that
//! index existed is indexed at open) and `pending_index_built` (likewise
//! for the pending keys of unfinished orders and authorizations, which
//! [`Store::count_pending`] counts; see [`crate::pending`]).
//!
//! `cert_status` repeats the issuer and revocation of each certificate so
//! that OCSP lookups read a small value: with a million certificates the
//! full records (JSON with base64 DER, about 1.2 KB) no longer fit sled's
//! page cache and each status read became a log read and a page decode
//! (docs/benchmarks.md, "Scale").
//!
//! # Atomicity and durability
//!
//! Every check-and-write spans its record tree and index tree in one sled
//! transaction (sled serializes transactions with a process-wide lock, so
//! they are linearizable). Writes are not synced by themselves: the flusher
//! thread is off (`flush_every_ms(None)`) and [`Store::flush`] makes them
//! durable in two steps:
//!
//! 1. `Db::flush` writes sled's in-memory log buffers to the `db` file. On
//!    Linux sled 0.34 ends that with `sync_file_range(2)`, which neither
//!    writes file metadata (the file size after an append) nor flushes the
//!    drive's write cache, so by itself it is not durable across power loss.
//! 2. So we then `fdatasync` the `db` file ourselves, and `fsync` any new
//!    blob file under `blobs/` (sled writes those without any sync) plus the
//!    directories. Step 2 is a group commit: a sync that *starts* after a
//!    caller's step 1 finished covers that caller, so concurrent callers
//!    piggyback on one sync instead of queueing one each.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionResult, Transactional,
};
use sled::{Db, Tree};
use time::OffsetDateTime;

use crate::approvals::{ApprovalRecord, ApprovalStatus};
use crate::audit::{AuditEntry, AuditEvent, AuditHead, AuditKeyRecord, AuditMacKey};
use crate::crls::{CrlHead, CrlPart, StoredCrl};
use crate::domain_writes::{CaWrite, RevocationWrite};
use crate::est_users::EstUserRecord;
use crate::export::{CrlNumber, ExportRecord, ExportSink};
use crate::generations::{ChangeKind, Counters, Generations};
use crate::issuance::IssuanceWrite;
use crate::keys;
use crate::leases::{self, Lease};
use crate::ocsp_responders::OcspResponderRecord;
use crate::pending::PendingCounts;
use crate::purge::{self, Purged};
use crate::rate_buckets::{self, Bucket, BucketOp, Gcra};
use crate::records::ApiRole;
use crate::records::{
    AccountRecord, ApiKeyRecord, AuthzRecord, CaRecord, CertificateRecord, CertificateStatus,
    OrderRecord, RevocationRecord,
};
use crate::scep::ScepTransactionRecord;
use crate::scep_challenges::ScepChallengeRecord;
use crate::settings::{NamedSetting, SettingRecord};
use crate::tenancy::{EabKeyRecord, TenantRecord};
use crate::types::{AccountStatus, AuthzStatus, Identifier, OrderStatus};
use crate::{Store, StoreError};

/// Page cache size: keeps memory bounded however large the database grows.
const CACHE_CAPACITY: u64 = 32 * 1024 * 1024;
/// Key of the audit head in `audit_meta`.
const AUDIT_HEAD: &[u8] = b"head";
/// Prefix of the audit key records in `audit_meta`.
const AUDIT_KEY_PREFIX: &str = "key:";
/// On-disk layout version, stored under `schema_version` in the default tree.
const SCHEMA_VERSION: u64 = 1;
/// Marker in the default tree: `cert_status` is complete.
const CERT_STATUS_BUILT: &[u8] = b"cert_status_built";
/// Set once the order and authorization index trees hold the pending keys.
const PENDING_INDEX_BUILT: &[u8] = b"pending_index_built";

/// State of the group-committed `fdatasync` (see the module docs).
struct Syncer {
    /// The database directory.
    dir: PathBuf,
    /// A handle on sled's log file, `<dir>/db`, used only to sync it.
    log: File,
    /// Flush requests so far; a sync covers every request counted before it
    /// started.
    requested: AtomicU64,
    /// Held while syncing: the highest request number covered so far, and
    /// the blob files already synced.
    synced: Mutex<(u64, HashSet<OsString>)>,
}

fn io_error(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what}: {e}"))
}

impl Syncer {
    fn open(dir: &Path) -> Result<Self, StoreError> {
        let log = File::open(dir.join("db")).map_err(|e| io_error("open log for sync", e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            log,
            requested: AtomicU64::new(0),
            synced: Mutex::new((0, HashSet::new())),
        })
    }

    /// Sync everything sled has written so far. Call after `Db::flush`.
    fn sync(&self) -> Result<(), StoreError> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut guard = self
            .synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.0 >= ticket {
            // A sync that started after our request finished meanwhile.
            return Ok(());
        }
        let covers = self.requested.load(Ordering::SeqCst);
        self.sync_new_blobs(&mut guard.1)?;
        self.log
            .sync_data()
            .map_err(|e| io_error("fdatasync log", e))?;
        guard.0 = covers;
        Ok(())
    }

    /// fsync blob files not synced before, then their directory.
    fn sync_new_blobs(&self, seen: &mut HashSet<OsString>) -> Result<(), StoreError> {
        let blobs = self.dir.join("blobs");
        let entries = match std::fs::read_dir(&blobs) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("list blobs", e)),
        };
        let mut present = HashSet::new();
        let mut new = false;
        for entry in entries {
            let name = entry.map_err(|e| io_error("list blobs", e))?.file_name();
            if !seen.contains(&name) {
                match File::open(blobs.join(&name)) {
                    Ok(f) => f.sync_all().map_err(|e| io_error("fsync blob", e))?,
                    // Garbage-collected by sled between listing and opening.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error("open blob", e)),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&blobs)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error("fsync blobs dir", e))?;
        }
        *seen = present;
        Ok(())
    }
}

/// Hands every record of `tree` to `sink` as `wrap(record)`, in key
/// order; returns how many.
fn export_tree<T: DeserializeOwned>(
    tree: &Tree,
    wrap: fn(T) -> ExportRecord,
    sink: &mut ExportSink<'_>,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for item in tree.iter() {
        let (_, v) = item.map_err(backend)?;
        sink(wrap(decode::<T>(&v)?))?;
        n += 1;
    }
    Ok(n)
}

/// The embedded [`Store`] on sled 0.34. Cheap to clone and share.
#[derive(Clone)]
pub struct SledStore {
    pub(crate) db: Db,
    /// Every write holds this shared; a backup holds it exclusively, so
    /// the snapshot it reads across trees is consistent (see `backup`).
    /// An async lock: a write waiting for a backup to end waits as a
    /// task, not by blocking a runtime worker (with a blocking lock two
    /// such writes stalled every request of a two-worker server, reads
    /// and OCSP included, until the backup ended).
    pub(crate) gate: Arc<tokio::sync::RwLock<()>>,
    syncer: Arc<Syncer>,
    accounts: Tree,
    thumbprints: Tree,
    orders: Tree,
    orders_by_account: Tree,
    authzs: Tree,
    authz_by_identifier: Tree,
    certs: Tree,
    revoked: Tree,
    cert_status: Tree,
    blocked_keys: Tree,
    cas: Tree,
    crl_numbers: Tree,
    api_keys: Tree,
    /// [`ENABLED_ADMINS`]: the count of enabled admin keys, kept in step
    /// with `api_keys` in the same transactions.
    api_key_meta: Tree,
    audit: Tree,
    audit_meta: Tree,
    /// The MAC key of new audit entries (see [`Store::set_audit_mac_key`]).
    audit_mac: Arc<RwLock<Option<AuditMacKey>>>,
    tenants: Tree,
    eab_keys: Tree,
    approvals: Tree,
    scep_transactions: Tree,
    est_users: Tree,
    used_nonces: Tree,
    /// Rate-limit buckets (ephemeral; see `crate::rate_buckets`).
    rate_buckets: Tree,
    scep_challenges: Tree,
    /// Settings (see [`crate::settings`]): name → `SettingRecord`.
    settings: Tree,
    /// Change generations, counted in the process (see
    /// [`crate::generations`]): one process owns a sled store.
    generations: Arc<Counters>,
    /// Leases, stored CRLs and responders (see `crate::leases`,
    /// `crate::crls`, `crate::ocsp_responders`).
    leases: Tree,
    crls: Tree,
    crl_generations: Tree,
    ocsp_responders: Tree,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Abort a transaction with a store error.
fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

fn tx_result<T>(r: TransactionResult<T, StoreError>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    })
}

/// The audit head, read inside a transaction.
fn audit_head_in(
    meta: &sled::transaction::TransactionalTree,
) -> Result<Option<AuditHead>, ConflictableTransactionError<StoreError>> {
    match meta.get(AUDIT_HEAD)? {
        Some(v) => Ok(Some(decode(&v).map_err(abort)?)),
        None => Ok(None),
    }
}

/// Appends `event` after the head inside a transaction (the audit entry
/// of a domain write, or a plain append): chained and MAC'd as
/// [`AuditEntry::next`] makes it, the head moved along.
fn append_audit_in(
    audit: &sled::transaction::TransactionalTree,
    meta: &sled::transaction::TransactionalTree,
    event: &AuditEvent,
    mac: Option<&AuditMacKey>,
) -> Result<AuditEntry, ConflictableTransactionError<StoreError>> {
    let head = audit_head_in(meta)?;
    let entry =
        AuditEntry::next(head.as_ref(), event, mac).map_err(|e| abort(StoreError::Backend(e)))?;
    if audit.get(entry.seq.to_be_bytes())?.is_some() {
        return Err(abort(StoreError::Corrupt(format!(
            "audit entry {} exists beyond the head",
            entry.seq
        ))));
    }
    audit.insert(&entry.seq.to_be_bytes(), encode(&entry).map_err(abort)?)?;
    meta.insert(AUDIT_HEAD, encode(&entry.head()).map_err(abort)?)?;
    Ok(entry)
}

/// Key of the enabled-admin-key count in the `api_key_meta` tree.
const ENABLED_ADMINS: &[u8] = b"enabled_admins";

/// The enabled-admin-key count, read inside a transaction.
fn enabled_admins(
    meta: &sled::transaction::TransactionalTree,
) -> Result<u64, ConflictableTransactionError<StoreError>> {
    match meta.get(ENABLED_ADMINS)? {
        Some(v) => <[u8; 8]>::try_from(v.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| abort(StoreError::Corrupt("enabled_admins".into()))),
        None => Ok(0),
    }
}

/// Inserts every index key of every record of `records` into `index`
/// (building a new kind of index key at open; re-inserting is harmless).
fn add_index_keys<T: DeserializeOwned>(
    records: &Tree,
    index: &Tree,
    index_keys: fn(&T) -> Vec<Vec<u8>>,
) -> Result<(), StoreError> {
    for item in records.iter() {
        let (id, v) = item.map_err(backend)?;
        for k in index_keys(&decode(&v)?) {
            index.insert(k, &id).map_err(backend)?;
        }
    }
    Ok(())
}

/// A stored rate-bucket TAT (i64 big-endian).
fn tat_from(bytes: &[u8]) -> Result<i64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(i64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("rate bucket".into()))
}

fn crl_key(ca_id: &str, part: CrlPart) -> Vec<u8> {
    let mut k = ca_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&part.code().to_be_bytes());
    k
}

/// A stored CRL's value: the head's length, the head, the DER, so a reader
/// of the head decodes a few bytes, not the CRL.
fn crl_value(crl: &StoredCrl) -> Result<Vec<u8>, StoreError> {
    let head = encode(&crl.head)?;
    let len = u32::try_from(head.len()).map_err(|_| StoreError::Backend("CRL head".into()))?;
    let mut v = Vec::with_capacity(4 + head.len() + crl.der.len());
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&head);
    v.extend_from_slice(&crl.der);
    Ok(v)
}

/// The head and the DER of a stored CRL value.
fn crl_parts(v: &[u8]) -> Result<(CrlHead, &[u8]), StoreError> {
    let corrupt = || StoreError::Corrupt("stored CRL".into());
    let len = v
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(corrupt)? as usize;
    let head = v.get(4..4 + len).ok_or_else(corrupt)?;
    let der = v.get(4 + len..).ok_or_else(corrupt)?;
    Ok((decode(head)?, der))
}

fn u64_from(bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("counter".into()))
}

fn id_from(bytes: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SledStore {
    /// Open (or create) the database directory at `path` with a 32 MiB page
    /// cache and no background flusher: writes become durable on
    /// [`Store::flush`] (and best effort when the last handle drops).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .flush_every_ms(None)
            .open()
            .map_err(backend)?;
        let syncer = Syncer::open(path)?;
        // The directory entries of `db`, `conf` and `blobs/` must survive too.
        File::open(path)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("fsync db dir", e))?;
        Self::from_db(db, syncer)
    }

    fn from_db(db: Db, syncer: Syncer) -> Result<Self, StoreError> {
        match db.get("schema_version").map_err(backend)? {
            None => {
                db.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(backend)?;
            }
            Some(v) => {
                let found = <[u8; 8]>::try_from(v.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("schema_version".into()))?;
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Corrupt(format!(
                        "schema_version {found}, expected {SCHEMA_VERSION}"
                    )));
                }
            }
        }
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let certs = tree("certificates")?;
        let api_keys = tree("api_keys")?;
        let cert_status = tree("cert_status")?;
        if db.get(CERT_STATUS_BUILT).map_err(backend)?.is_none() {
            // Index every certificate (idempotent; a crash before the marker
            // is written makes the next open do it again), flush, then mark.
            for item in certs.iter() {
                let (k, v) = item.map_err(backend)?;
                let rec: CertificateRecord = decode(&v)?;
                cert_status
                    .insert(k, encode(&CertificateStatus::from(&rec))?)
                    .map_err(backend)?;
            }
            db.flush().map_err(backend)?;
            db.insert(CERT_STATUS_BUILT, &[1u8]).map_err(backend)?;
            db.flush().map_err(backend)?;
        }
        let orders = tree("orders")?;
        let orders_by_account = tree("orders_by_account")?;
        let authzs = tree("authzs")?;
        let authz_by_identifier = tree("authz_by_identifier")?;
        if db.get(PENDING_INDEX_BUILT).map_err(backend)?.is_none() {
            // Stores written before the pending keys existed: add them once
            // (idempotent, like `cert_status` above).
            add_index_keys::<OrderRecord>(&orders, &orders_by_account, keys::order_keys)?;
            add_index_keys::<AuthzRecord>(&authzs, &authz_by_identifier, keys::authz_keys)?;
            db.flush().map_err(backend)?;
            db.insert(PENDING_INDEX_BUILT, &[1u8]).map_err(backend)?;
            db.flush().map_err(backend)?;
        }
        Ok(Self {
            accounts: tree("accounts")?,
            thumbprints: tree("account_thumbprints")?,
            orders,
            orders_by_account,
            authzs,
            authz_by_identifier,
            certs,
            revoked: tree("revoked")?,
            cert_status,
            blocked_keys: tree("blocked_keys")?,
            cas: tree("cas")?,
            crl_numbers: tree("crl_numbers")?,
            api_key_meta: {
                let meta = tree("api_key_meta")?;
                if meta.get(ENABLED_ADMINS).map_err(backend)?.is_none() {
                    // Older databases: count once at open, before any
                    // concurrent writer exists.
                    let mut n: u64 = 0;
                    for item in api_keys.iter() {
                        let (_, v) = item.map_err(backend)?;
                        let k: ApiKeyRecord = decode(&v)?;
                        if k.role == ApiRole::Admin && k.disabled_at.is_none() {
                            n += 1;
                        }
                    }
                    meta.insert(ENABLED_ADMINS, &n.to_be_bytes())
                        .map_err(backend)?;
                }
                meta
            },
            api_keys,
            audit: tree("audit")?,
            audit_meta: tree("audit_meta")?,
            audit_mac: Arc::new(RwLock::new(None)),
            tenants: tree("tenants")?,
            eab_keys: tree("eab_keys")?,
            approvals: tree("approvals")?,
            scep_transactions: tree("scep_transactions")?,
            est_users: tree("est_users")?,
            used_nonces: tree("used_nonces")?,
            rate_buckets: tree("rate_buckets")?,
            scep_challenges: tree("scep_challenges")?,
            settings: tree("settings")?,
            generations: Arc::default(),
            leases: tree("leases")?,
            crls: tree("crls")?,
            crl_generations: tree("crl_generations")?,
            ocsp_responders: tree("ocsp_responders")?,
            db,
            gate: Arc::new(tokio::sync::RwLock::new(())),
            syncer: Arc::new(syncer),
        })
    }

    /// The MAC key of new audit entries, if set.
    fn audit_mac(&self) -> Option<AuditMacKey> {
        self.audit_mac
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Held (shared) by every write method; see [`SledStore::gate`].
    async fn writing(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    fn get_json<T: DeserializeOwned>(tree: &Tree, key: &[u8]) -> Result<Option<T>, StoreError> {
        tree.get(key)
            .map_err(backend)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Write an order and keep its index entry in step, optionally only if
    /// the stored status is `expected`.
    fn write_order(
        &self,
        order: &OrderRecord,
        expected: Option<OrderStatus>,
    ) -> Result<bool, StoreError> {
        Self::write_indexed(
            (&self.orders, &self.orders_by_account),
            &order.id,
            order,
            keys::order_keys,
            |stored| expected.is_none_or(|e| stored.status == e),
            expected.is_some(),
        )
    }

    /// Writes an authorization and its index entry; with `expected`, only
    /// if the stored status is that (see `Store::transition_authz`).
    fn write_authz(
        &self,
        authz: &AuthzRecord,
        expected: Option<AuthzStatus>,
    ) -> Result<bool, StoreError> {
        Self::write_indexed(
            (&self.authzs, &self.authz_by_identifier),
            &authz.id,
            authz,
            keys::authz_keys,
            |stored| expected.is_none_or(|e| stored.status == e),
            expected.is_some(),
        )
    }

    /// One transaction over a record tree and its index tree: the stored
    /// record (if any) must satisfy `admits` (else `Ok(false)`, nothing
    /// written) and must exist when `must_exist` (else `NotFound`); its old
    /// index entries are replaced by `index_keys(record)`.
    fn write_indexed<T: Serialize + DeserializeOwned>(
        (records, index): (&Tree, &Tree),
        id: &str,
        record: &T,
        index_keys: fn(&T) -> Vec<Vec<u8>>,
        admits: impl Fn(&T) -> bool,
        must_exist: bool,
    ) -> Result<bool, StoreError> {
        let value = encode(record)?;
        let new_keys = index_keys(record);
        tx_result((records, index).transaction(|(records, index)| {
            let stored: Option<T> = match records.get(id.as_bytes())? {
                Some(v) => Some(decode(&v).map_err(abort)?),
                None => None,
            };
            match &stored {
                None if must_exist => return Err(abort(StoreError::NotFound)),
                Some(s) if !admits(s) => return Ok(false),
                _ => {}
            }
            if let Some(old) = &stored {
                for k in index_keys(old) {
                    index.remove(k)?;
                }
            }
            for k in &new_keys {
                index.insert(k.as_slice(), id.as_bytes())?;
            }
            records.insert(id.as_bytes(), value.as_slice())?;
            Ok(true)
        }))
    }

    /// Deletes up to `limit` records of `records` that `purgeable` admits,
    /// with their `index` entries: found by a scan, each deleted in its own
    /// transaction that re-reads it (a record changed meanwhile and no
    /// longer admitted stays). Returns how many went.
    async fn purge_tree<T: DeserializeOwned>(
        (records, index): (&Tree, &Tree),
        index_keys: fn(&T) -> Vec<Vec<u8>>,
        purgeable: impl Fn(&T) -> bool,
        limit: usize,
        gate: &tokio::sync::RwLock<()>,
    ) -> Result<u64, StoreError> {
        let mut candidates = Vec::new();
        for item in records.iter() {
            if candidates.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(backend)?;
            if purgeable(&decode::<T>(&v)?) {
                candidates.push(k);
            }
        }
        let mut purged = 0;
        for k in candidates {
            let _writing = gate.read().await;
            let gone = tx_result((records, index).transaction(|(records, index)| {
                let Some(v) = records.get(&k)? else {
                    return Ok(false);
                };
                let stored: T = decode(&v).map_err(abort)?;
                if !purgeable(&stored) {
                    return Ok(false);
                }
                for key in index_keys(&stored) {
                    index.remove(key)?;
                }
                records.remove(&k)?;
                Ok(true)
            }))?;
            purged += u64::from(gone);
        }
        Ok(purged)
    }

    /// Insert a JSON record under `id` unless the key exists (`Conflict`
    /// naming `what`).
    fn create_json<T: Serialize>(
        tree: &Tree,
        id: &str,
        value: &T,
        what: &str,
    ) -> Result<(), StoreError> {
        let value = encode(value)?;
        tx_result(tree.transaction(|t| {
            if t.get(id.as_bytes())?.is_some() {
                return Err(abort(StoreError::Conflict(format!("{what} id exists"))));
            }
            t.insert(id.as_bytes(), value.as_slice())?;
            Ok(())
        }))
    }

    /// Every record of a tree, in key order.
    fn list_json<T: DeserializeOwned>(tree: &Tree) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in tree.iter() {
            let (_, v) = item.map_err(backend)?;
            out.push(decode::<T>(&v)?);
        }
        Ok(out)
    }

    /// Read-modify-write of one record in a transaction; `NotFound` if absent.
    fn update_json<T, R, F>(tree: &Tree, id: &str, change: F) -> Result<R, StoreError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(T) -> Result<(Option<T>, R), StoreError>,
    {
        tx_result(tree.transaction(|t| {
            let stored: T = match t.get(id.as_bytes())? {
                Some(v) => decode(&v).map_err(abort)?,
                None => return Err(abort(StoreError::NotFound)),
            };
            let (next, out) = change(stored).map_err(abort)?;
            if let Some(next) = next {
                t.insert(id.as_bytes(), encode(&next).map_err(abort)?)?;
            }
            Ok(out)
        }))
    }

    /// Replace a certificate inside a transaction, keeping the revoked index
    /// in step.
    fn write_certificate<F>(&self, serial_hex: &str, change: F) -> Result<(), StoreError>
    where
        F: Fn(CertificateRecord) -> Result<CertificateRecord, StoreError>,
    {
        let serial = keys::serial_key(serial_hex);
        tx_result((&self.certs, &self.revoked, &self.cert_status).transaction(
            |(certs, revoked, status)| {
                let stored: CertificateRecord = match certs.get(serial.as_bytes())? {
                    Some(v) => decode(&v).map_err(abort)?,
                    None => return Err(abort(StoreError::NotFound)),
                };
                let old_index = keys::revoked_key(&stored);
                let new = change(stored).map_err(abort)?;
                revoked.remove(old_index)?;
                if let Some(rev) = &new.revocation {
                    revoked.insert(keys::revoked_key(&new), encode(rev).map_err(abort)?)?;
                }
                status.insert(
                    serial.as_bytes(),
                    encode(&CertificateStatus::from(&new)).map_err(abort)?,
                )?;
                certs.insert(serial.as_bytes(), encode(&new).map_err(abort)?)?;
                Ok(())
            },
        ))
    }
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let value = encode(account)?;
        tx_result(
            (&self.accounts, &self.thumbprints).transaction(|(accounts, thumbs)| {
                if thumbs.get(account.thumbprint.as_bytes())?.is_some() {
                    return Err(abort(StoreError::Conflict(
                        "account key already in use".into(),
                    )));
                }
                if accounts.get(account.id.as_bytes())?.is_some() {
                    return Err(abort(StoreError::Conflict("account id exists".into())));
                }
                thumbs.insert(account.thumbprint.as_bytes(), account.id.as_bytes())?;
                accounts.insert(account.id.as_bytes(), value.as_slice())?;
                Ok(())
            }),
        )
    }

    async fn get_account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError> {
        Self::get_json(&self.accounts, id.as_bytes())
    }

    async fn account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        match self.thumbprints.get(thumbprint).map_err(backend)? {
            None => Ok(None),
            Some(id) => Self::get_json(&self.accounts, &id),
        }
    }

    async fn update_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let value = encode(account)?;
        tx_result(self.accounts.transaction(|accounts| {
            let stored: AccountRecord = match accounts.get(account.id.as_bytes())? {
                Some(v) => decode(&v).map_err(abort)?,
                None => return Err(abort(StoreError::NotFound)),
            };
            if stored.thumbprint != account.thumbprint {
                return Err(abort(StoreError::Conflict(
                    "thumbprint differs; use change_account_key".into(),
                )));
            }
            if stored.status != AccountStatus::Valid && account.status != stored.status {
                return Err(abort(StoreError::AccountNotValid));
            }
            accounts.insert(account.id.as_bytes(), value.as_slice())?;
            Ok(())
        }))
    }

    async fn change_account_key(
        &self,
        account: &AccountRecord,
        old_thumbprint: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let value = encode(account)?;
        tx_result(
            (&self.accounts, &self.thumbprints).transaction(|(accounts, thumbs)| {
                let stored: AccountRecord = match accounts.get(account.id.as_bytes())? {
                    Some(v) => decode(&v).map_err(abort)?,
                    None => return Err(abort(StoreError::NotFound)),
                };
                if stored.thumbprint != old_thumbprint {
                    return Err(abort(StoreError::Conflict(
                        "account key changed meanwhile".into(),
                    )));
                }
                if stored.status != AccountStatus::Valid {
                    return Err(abort(StoreError::AccountNotValid));
                }
                if thumbs.get(account.thumbprint.as_bytes())?.is_some() {
                    return Err(abort(StoreError::Conflict("new key already in use".into())));
                }
                thumbs.remove(old_thumbprint.as_bytes())?;
                thumbs.insert(account.thumbprint.as_bytes(), account.id.as_bytes())?;
                accounts.insert(account.id.as_bytes(), value.as_slice())?;
                Ok(())
            }),
        )
    }

    async fn put_order(&self, order: &OrderRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        self.write_order(order, None).map(|_| ())
    }

    async fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        Self::get_json(&self.orders, id.as_bytes())
    }

    async fn list_orders(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = keys::order_prefix(account_id);
        let start = match after {
            None => Bound::Included(prefix.clone()),
            Some(cursor) => match self.get_order(cursor).await? {
                Some(o) if o.account_id == account_id => Bound::Excluded(keys::order_key(&o)),
                _ => return Err(StoreError::NotFound),
            },
        };
        let mut ids = Vec::new();
        if limit == 0 {
            return Ok(ids);
        }
        for item in self
            .orders_by_account
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
        {
            let (k, v) = item.map_err(backend)?;
            if !k.starts_with(&prefix) {
                break;
            }
            ids.push(id_from(&v)?);
            if ids.len() >= limit {
                break;
            }
        }
        Ok(ids)
    }

    async fn transition_order(
        &self,
        order: &OrderRecord,
        expected: OrderStatus,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        self.write_order(order, Some(expected))
    }

    async fn put_authz(&self, authz: &AuthzRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        self.write_authz(authz, None).map(|_| ())
    }

    async fn transition_authz(
        &self,
        authz: &AuthzRecord,
        expected: AuthzStatus,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        self.write_authz(authz, Some(expected))
    }

    async fn get_authz(&self, id: &str) -> Result<Option<AuthzRecord>, StoreError> {
        Self::get_json(&self.authzs, id.as_bytes())
    }

    async fn find_reusable_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzRecord>, StoreError> {
        let prefix = keys::authz_query_prefix(account_id, identifier);
        let mut best = None;
        for item in self.authz_by_identifier.scan_prefix(&prefix) {
            let (_, id) = item.map_err(backend)?;
            if let Some(a) = Self::get_json::<AuthzRecord>(&self.authzs, &id)? {
                if keys::reusable(&a, now) {
                    best = Some(keys::better(best, a));
                }
            }
        }
        Ok(best)
    }

    async fn insert_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let r = {
            let serial = keys::serial_key(&cert.serial);
            let mut cert = cert.clone();
            cert.serial.clone_from(&serial);
            let value = encode(&cert)?;
            let status_value = encode(&CertificateStatus::from(&cert))?;
            let revoked_entry = match &cert.revocation {
                Some(rev) => Some((keys::revoked_key(&cert), encode(rev)?)),
                None => None,
            };
            tx_result((&self.certs, &self.revoked, &self.cert_status).transaction(
                |(certs, revoked, status)| {
                    if certs.get(serial.as_bytes())?.is_some() {
                        return Err(abort(StoreError::DuplicateSerial));
                    }
                    if let Some((k, v)) = &revoked_entry {
                        revoked.insert(k.as_slice(), v.as_slice())?;
                    }
                    status.insert(serial.as_bytes(), status_value.as_slice())?;
                    certs.insert(serial.as_bytes(), value.as_slice())?;
                    Ok(())
                },
            ))
        };
        if r.is_ok() && cert.revocation.is_some() {
            self.generations.bump(ChangeKind::Revocations);
        }
        r
    }

    async fn get_certificate(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        Self::get_json(&self.certs, keys::serial_key(serial_hex).as_bytes())
    }

    async fn certificate_status(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateStatus>, StoreError> {
        Self::get_json(&self.cert_status, keys::serial_key(serial_hex).as_bytes())
    }

    async fn update_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let r = {
            self.write_certificate(&cert.serial, |stored| {
                Ok(keys::merge_certificate(&stored, cert))
            })
        };
        if r.is_ok() && cert.revocation.is_some() {
            self.generations.bump(ChangeKind::Revocations);
        }
        r
    }

    async fn revoke_certificate(
        &self,
        serial_hex: &str,
        revocation: RevocationRecord,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let r = {
            self.write_certificate(serial_hex, |mut stored| {
                if stored.revocation.is_some() {
                    return Err(StoreError::AlreadyRevoked);
                }
                stored.revocation = Some(revocation);
                Ok(stored)
            })
        };
        if r.is_ok() {
            self.generations.bump(ChangeKind::Revocations);
        }
        r
    }

    async fn mark_replaced(&self, serial_hex: &str, order_id: &str) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        self.write_certificate(serial_hex, |mut stored| {
            if stored.replaced_by.is_some() {
                return Err(StoreError::AlreadyReplaced);
            }
            stored.replaced_by = Some(order_id.to_owned());
            Ok(stored)
        })
    }

    async fn revoked_certificates(
        &self,
        issuer_id: &str,
    ) -> Result<Vec<(String, RevocationRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.revoked.scan_prefix(keys::revoked_prefix(issuer_id)) {
            let (k, v) = item.map_err(backend)?;
            let serial = keys::serial_from_revoked_key(issuer_id, &k)
                .ok_or_else(|| StoreError::Corrupt("revoked index key".into()))?;
            out.push((serial, decode(&v)?));
        }
        Ok(out)
    }

    async fn block_key(&self, public_key_sha256: &str) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        self.blocked_keys
            .insert(public_key_sha256.to_ascii_lowercase(), &[])
            .map_err(backend)?;
        Ok(())
    }

    async fn is_key_blocked(&self, public_key_sha256: &str) -> Result<bool, StoreError> {
        self.blocked_keys
            .contains_key(public_key_sha256.to_ascii_lowercase())
            .map_err(backend)
    }

    async fn put_ca(&self, ca: &CaRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let r = {
            self.cas
                .insert(ca.id.as_bytes(), encode(ca)?)
                .map_err(backend)?;
            Ok(())
        };
        if r.is_ok() {
            self.generations.bump(ChangeKind::Cas);
        }
        r
    }

    async fn get_ca(&self, id: &str) -> Result<Option<CaRecord>, StoreError> {
        Self::get_json(&self.cas, id.as_bytes())
    }

    async fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        let mut cas = Vec::new();
        for item in self.cas.iter() {
            let (_, v) = item.map_err(backend)?;
            cas.push(decode::<CaRecord>(&v)?);
        }
        cas.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(cas)
    }

    async fn next_crl_number(&self, ca_id: &str) -> Result<u64, StoreError> {
        let _writing = self.writing().await;
        tx_result(self.crl_numbers.transaction(|numbers| {
            let last = match numbers.get(ca_id.as_bytes())? {
                None => 0,
                Some(v) => <[u8; 8]>::try_from(v.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| abort(StoreError::Corrupt("CRL number".into())))?,
            };
            let next = last
                .checked_add(1)
                .ok_or_else(|| abort(StoreError::Backend("CRL number overflow".into())))?;
            numbers.insert(ca_id.as_bytes(), &next.to_be_bytes())?;
            Ok(next)
        }))
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let r = {
            let value = encode(key)?;
            let counts = key.role == ApiRole::Admin && key.disabled_at.is_none();
            tx_result(
                (&self.api_keys, &self.api_key_meta).transaction(|(keys, meta)| {
                    if keys.get(key.id.as_bytes())?.is_some() {
                        return Err(abort(StoreError::Conflict("API key id exists".into())));
                    }
                    keys.insert(key.id.as_bytes(), value.as_slice())?;
                    if counts {
                        let n = enabled_admins(meta)?;
                        meta.insert(ENABLED_ADMINS, &(n + 1).to_be_bytes())?;
                    }
                    Ok(())
                }),
            )
        };
        if r.is_ok() {
            self.generations.bump(ChangeKind::ApiKeys);
        }
        r
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Self::get_json(&self.api_keys, id.as_bytes())
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.api_keys.iter() {
            let (_, v) = item.map_err(backend)?;
            out.push(decode::<ApiKeyRecord>(&v)?);
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn disable_api_key(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<ApiKeyRecord, StoreError> {
        let _writing = self.writing().await;
        let r = {
            tx_result(
                (&self.api_keys, &self.api_key_meta).transaction(|(keys, meta)| {
                    let mut key: ApiKeyRecord = match keys.get(id.as_bytes())? {
                        Some(v) => decode(&v).map_err(abort)?,
                        None => return Err(abort(StoreError::NotFound)),
                    };
                    if key.disabled_at.is_some() {
                        return Err(abort(StoreError::Conflict(
                            "API key already disabled".into(),
                        )));
                    }
                    if key.role == ApiRole::Admin {
                        let n = enabled_admins(meta)?;
                        if n <= 1 {
                            return Err(abort(StoreError::LastAdminKey));
                        }
                        meta.insert(ENABLED_ADMINS, &(n - 1).to_be_bytes())?;
                    }
                    key.disabled_at = Some(at);
                    keys.insert(id.as_bytes(), encode(&key).map_err(abort)?)?;
                    Ok(key)
                }),
            )
        };
        if r.is_ok() {
            self.generations.bump(ChangeKind::ApiKeys);
        }
        r
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry, StoreError> {
        let _writing = self.writing().await;
        let mac = self.audit_mac();
        tx_result(
            (&self.audit, &self.audit_meta)
                .transaction(|(audit, meta)| append_audit_in(audit, meta, event, mac.as_ref())),
        )
    }

    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let start = after.to_be_bytes().to_vec();
        for item in self
            .audit
            .range::<Vec<u8>, _>((Bound::Excluded(start), Bound::Unbounded))
        {
            let (_, v) = item.map_err(backend)?;
            out.push(decode::<AuditEntry>(&v)?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        Self::get_json(&self.audit_meta, AUDIT_HEAD)
    }

    fn set_audit_mac_key(&self, key: AuditMacKey) {
        *self
            .audit_mac
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
    }

    async fn create_audit_key(&self, record: &AuditKeyRecord) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        let key = format!("{AUDIT_KEY_PREFIX}{}", record.name);
        let swapped = self
            .audit_meta
            .compare_and_swap(key.as_bytes(), None::<&[u8]>, Some(encode(record)?))
            .map_err(backend)?;
        Ok(swapped.is_ok())
    }

    async fn get_audit_key(&self, name: &str) -> Result<Option<AuditKeyRecord>, StoreError> {
        Self::get_json(
            &self.audit_meta,
            format!("{AUDIT_KEY_PREFIX}{name}").as_bytes(),
        )
    }

    fn backup(
        &self,
        out: &mut dyn std::io::Write,
        files: &[(String, Vec<u8>)],
        progress: &mut dyn FnMut(crate::backup::Progress),
    ) -> Result<crate::backup::Summary, StoreError> {
        self.write_backup(out, files, progress)
    }

    async fn import_audit_entry(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let value = encode(entry)?;
        tx_result(
            (&self.audit, &self.audit_meta).transaction(|(audit, meta)| {
                entry
                    .check_follows(audit_head_in(meta)?.as_ref())
                    .map_err(|e| abort(StoreError::Corrupt(e)))?;
                audit.insert(&entry.seq.to_be_bytes(), value.as_slice())?;
                meta.insert(AUDIT_HEAD, encode(&entry.head()).map_err(abort)?)?;
                Ok(())
            }),
        )
    }

    async fn export_records(&self, sink: &mut ExportSink<'_>) -> Result<u64, StoreError> {
        // Exclusive, like a backup: no write lands between two trees.
        let _exclusive = self.gate.write().await;
        let mut n = 0;
        n += export_tree(&self.cas, ExportRecord::Ca, sink)?;
        for item in self.audit_meta.scan_prefix(AUDIT_KEY_PREFIX) {
            let (_, v) = item.map_err(backend)?;
            sink(ExportRecord::AuditKey(decode(&v)?))?;
            n += 1;
        }
        for item in self.settings.iter() {
            let (k, v) = item.map_err(backend)?;
            let stored: SettingRecord = decode(&v)?;
            sink(ExportRecord::Setting(NamedSetting {
                name: id_from(&k)?,
                value: stored.value,
            }))?;
            n += 1;
        }
        n += export_tree(&self.tenants, ExportRecord::Tenant, sink)?;
        n += export_tree(&self.api_keys, ExportRecord::ApiKey, sink)?;
        n += export_tree(&self.eab_keys, ExportRecord::EabKey, sink)?;
        n += export_tree(&self.est_users, ExportRecord::EstUser, sink)?;
        n += export_tree(&self.accounts, ExportRecord::Account, sink)?;
        n += export_tree(&self.orders, ExportRecord::Order, sink)?;
        n += export_tree(&self.authzs, ExportRecord::Authz, sink)?;
        n += export_tree(&self.certs, ExportRecord::Certificate, sink)?;
        for item in self.blocked_keys.iter() {
            let (k, _) = item.map_err(backend)?;
            sink(ExportRecord::BlockedKey(id_from(&k)?))?;
            n += 1;
        }
        for item in self.crl_numbers.iter() {
            let (k, v) = item.map_err(backend)?;
            let last = <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("CRL number".into()))?;
            sink(ExportRecord::CrlNumber(CrlNumber {
                ca_id: id_from(&k)?,
                last,
            }))?;
            n += 1;
        }
        n += export_tree(&self.approvals, ExportRecord::Approval, sink)?;
        n += export_tree(&self.scep_transactions, ExportRecord::ScepTransaction, sink)?;
        n += export_tree(&self.scep_challenges, ExportRecord::ScepChallenge, sink)?;
        // Keys are big-endian seqs: ascending.
        n += export_tree(&self.audit, ExportRecord::AuditEntry, sink)?;
        Ok(n)
    }

    async fn count_records(&self) -> Result<u64, StoreError> {
        let trees = [
            &self.cas,
            &self.settings,
            &self.tenants,
            &self.api_keys,
            &self.eab_keys,
            &self.est_users,
            &self.accounts,
            &self.orders,
            &self.authzs,
            &self.certs,
            &self.blocked_keys,
            &self.crl_numbers,
            &self.approvals,
            &self.scep_transactions,
            &self.scep_challenges,
            &self.audit,
        ];
        let audit_keys = self.audit_meta.scan_prefix(AUDIT_KEY_PREFIX).count() as u64;
        Ok(trees.iter().map(|t| t.len() as u64).sum::<u64>() + audit_keys)
    }

    async fn purge_expired(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        let orders = Self::purge_tree(
            (&self.orders, &self.orders_by_account),
            keys::order_keys,
            |o: &OrderRecord| purge::order_purgeable(o, before),
            limit,
            &self.gate,
        )
        .await?;
        let authzs = Self::purge_tree(
            (&self.authzs, &self.authz_by_identifier),
            keys::authz_keys,
            |a: &AuthzRecord| purge::authz_purgeable(a, before),
            limit,
            &self.gate,
        )
        .await?;
        Ok(Purged { orders, authzs })
    }

    async fn count_pending(
        &self,
        account_id: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<PendingCounts, StoreError> {
        let count = |index: &Tree| -> Result<u64, StoreError> {
            let prefix = keys::pending_prefix(account_id);
            let mut n = 0;
            for item in index.range(keys::pending_after(account_id, now)..) {
                let (k, _) = item.map_err(backend)?;
                if !k.starts_with(&prefix) || n >= limit {
                    break;
                }
                n += 1;
            }
            Ok(n as u64)
        };
        Ok(PendingCounts {
            orders: count(&self.orders_by_account)?,
            authzs: count(&self.authz_by_identifier)?,
        })
    }

    async fn rate_bucket(
        &self,
        key: &str,
        op: BucketOp,
        gcra: Gcra,
        now_ns: i64,
    ) -> Result<Bucket, StoreError> {
        let _writing = self.writing().await;
        loop {
            let old = self.rate_buckets.get(key).map_err(backend)?;
            let stored = old.as_deref().map(tat_from).transpose()?;
            let (bucket, store) = rate_buckets::step(stored, op, gcra, now_ns);
            let Some(tat) = store else {
                return Ok(bucket);
            };
            let swapped = self
                .rate_buckets
                .compare_and_swap(key, old, Some(&tat.to_be_bytes()[..]))
                .map_err(backend)?;
            if swapped.is_ok() {
                return Ok(bucket);
            }
        }
    }

    async fn purge_rate_buckets(&self, now_ns: i64) -> Result<u64, StoreError> {
        let mut gone = 0;
        for item in self.rate_buckets.iter() {
            let (k, v) = item.map_err(backend)?;
            if tat_from(&v)? < now_ns {
                let _writing = self.writing().await;
                // Only if unchanged since read: a concurrent take wins.
                let removed = self
                    .rate_buckets
                    .compare_and_swap(&k, Some(v), None::<&[u8]>)
                    .map_err(backend)?;
                gone += u64::from(removed.is_ok());
            }
        }
        Ok(gone)
    }

    async fn redeem_nonce(&self, id: u128, expires: u64) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        let swapped = self
            .used_nonces
            .compare_and_swap(
                id.to_be_bytes(),
                None::<&[u8]>,
                Some(&expires.to_be_bytes()[..]),
            )
            .map_err(backend)?;
        Ok(swapped.is_ok())
    }

    async fn purge_nonces(&self, now: u64) -> Result<u64, StoreError> {
        let mut gone = 0;
        for item in self.used_nonces.iter() {
            let (k, v) = item.map_err(backend)?;
            let expires = <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("used nonce expiry".into()))?;
            if expires < now {
                let _writing = self.writing().await;
                self.used_nonces.remove(k).map_err(backend)?;
                gone += 1;
            }
        }
        Ok(gone)
    }

    async fn set_crl_number(&self, ca_id: &str, last: u64) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        self.crl_numbers
            .insert(ca_id.as_bytes(), &last.to_be_bytes())
            .map_err(backend)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(backend)?;
        self.syncer.sync()
    }

    async fn record_issuance(&self, write: &IssuanceWrite) -> Result<AuditEntry, StoreError> {
        let _writing = self.writing().await;
        let mac = self.audit_mac();
        let serial = keys::serial_key(&write.certificate.serial);
        let mut cert = write.certificate.clone();
        cert.serial.clone_from(&serial);
        let cert_value = encode(&cert)?;
        let status_value = encode(&CertificateStatus::from(&cert))?;
        let order_value = write.order.as_ref().map(encode).transpose()?;
        let replaced_key = write.replaces.as_deref().map(keys::serial_key);
        let settled_value = write
            .scep_transaction
            .as_ref()
            .map(|s| encode(&s.settled))
            .transpose()?;
        tx_result(
            (
                &self.certs,
                &self.cert_status,
                &self.orders,
                &self.orders_by_account,
                &self.audit,
                &self.audit_meta,
                &self.scep_transactions,
            )
                .transaction(|(certs, status, orders, index, audit, meta, scep)| {
                    if certs.get(serial.as_bytes())?.is_some() {
                        return Err(abort(StoreError::DuplicateSerial));
                    }
                    if let (Some(settle), Some(value)) = (&write.scep_transaction, &settled_value) {
                        let key = settle.expected.transaction_id.as_bytes();
                        let stored: Option<ScepTransactionRecord> = match scep.get(key)? {
                            Some(v) => Some(decode(&v).map_err(abort)?),
                            None => None,
                        };
                        if stored.as_ref() != Some(&settle.expected) {
                            return Err(abort(StoreError::Conflict(
                                "the SCEP transaction changed".into(),
                            )));
                        }
                        scep.insert(settle.settled.transaction_id.as_bytes(), value.as_slice())?;
                    }
                    if let (Some(order), Some(value)) = (&write.order, &order_value) {
                        let stored: OrderRecord = match orders.get(order.id.as_bytes())? {
                            Some(v) => decode(&v).map_err(abort)?,
                            None => return Err(abort(StoreError::NotFound)),
                        };
                        if stored.status != OrderStatus::Processing {
                            return Err(abort(StoreError::Conflict(
                                "the order left processing".into(),
                            )));
                        }
                        for k in keys::order_keys(&stored) {
                            index.remove(k)?;
                        }
                        for k in keys::order_keys(order) {
                            index.insert(k, order.id.as_bytes())?;
                        }
                        orders.insert(order.id.as_bytes(), value.as_slice())?;
                        if let Some(old_serial) = &replaced_key {
                            if let Some(v) = certs.get(old_serial.as_bytes())? {
                                let mut old: CertificateRecord = decode(&v).map_err(abort)?;
                                if old.replaced_by.is_none() {
                                    old.replaced_by = Some(order.id.clone());
                                    certs.insert(
                                        old_serial.as_bytes(),
                                        encode(&old).map_err(abort)?,
                                    )?;
                                }
                            }
                        }
                    }
                    status.insert(serial.as_bytes(), status_value.as_slice())?;
                    certs.insert(serial.as_bytes(), cert_value.as_slice())?;
                    append_audit_in(audit, meta, &write.audit, mac.as_ref())
                }),
        )
    }

    async fn record_revocation(&self, write: &RevocationWrite) -> Result<AuditEntry, StoreError> {
        let _writing = self.writing().await;
        let mac = self.audit_mac();
        let serial = keys::serial_key(&write.serial);
        let blocked = write.block_key.as_deref().map(str::to_ascii_lowercase);
        let entry = tx_result(
            (
                &self.certs,
                &self.revoked,
                &self.cert_status,
                &self.blocked_keys,
                &self.crl_generations,
                &self.audit,
                &self.audit_meta,
            )
                .transaction(
                    |(certs, revoked, status, blocked_keys, crl_gens, audit, meta)| {
                        let mut cert: CertificateRecord = match certs.get(serial.as_bytes())? {
                            Some(v) => decode(&v).map_err(abort)?,
                            None => return Err(abort(StoreError::NotFound)),
                        };
                        if cert.revocation.is_some() {
                            return Err(abort(StoreError::AlreadyRevoked));
                        }
                        cert.revocation = Some(write.revocation);
                        revoked.insert(
                            keys::revoked_key(&cert),
                            encode(&write.revocation).map_err(abort)?,
                        )?;
                        status.insert(
                            serial.as_bytes(),
                            encode(&CertificateStatus::from(&cert)).map_err(abort)?,
                        )?;
                        certs.insert(serial.as_bytes(), encode(&cert).map_err(abort)?)?;
                        if let Some(k) = &blocked {
                            blocked_keys.insert(k.as_bytes(), &[])?;
                        }
                        let generation = match crl_gens.get(write.issuer_id.as_bytes())? {
                            Some(v) => u64_from(&v).map_err(abort)?,
                            None => 0,
                        };
                        crl_gens.insert(
                            write.issuer_id.as_bytes(),
                            &generation.saturating_add(1).to_be_bytes(),
                        )?;
                        append_audit_in(audit, meta, &write.audit, mac.as_ref())
                    },
                ),
        )?;
        self.generations.bump(ChangeKind::Revocations);
        Ok(entry)
    }

    async fn record_ca_change(&self, write: &CaWrite) -> Result<AuditEntry, StoreError> {
        let _writing = self.writing().await;
        let mac = self.audit_mac();
        let values = write
            .records
            .iter()
            .map(|u| encode(&u.record))
            .collect::<Result<Vec<_>, _>>()?;
        let entry = tx_result(
            (&self.cas, &self.settings, &self.audit, &self.audit_meta).transaction(
                |(cas, settings, audit, meta)| {
                    for (update, value) in write.records.iter().zip(&values) {
                        let stored: Option<CaRecord> = match cas.get(update.record.id.as_bytes())? {
                            Some(v) => Some(decode(&v).map_err(abort)?),
                            None => None,
                        };
                        if !update.expects(stored.as_ref()) {
                            return Err(abort(CaWrite::conflict(update)));
                        }
                        cas.insert(update.record.id.as_bytes(), value.as_slice())?;
                    }
                    if let Some(id) = &write.issuing_pin {
                        let name = crate::settings::ISSUING_CA.as_bytes();
                        let version = match settings.get(name)? {
                            Some(v) => decode::<SettingRecord>(&v).map_err(abort)?.version,
                            None => 0,
                        };
                        let pin = SettingRecord {
                            version: version + 1,
                            value: id.as_bytes().to_vec(),
                        };
                        settings.insert(name, encode(&pin).map_err(abort)?)?;
                    }
                    append_audit_in(audit, meta, &write.audit, mac.as_ref())
                },
            ),
        )?;
        if !write.records.is_empty() {
            self.generations.bump(ChangeKind::Cas);
        }
        if write.issuing_pin.is_some() {
            self.generations.bump(ChangeKind::Settings);
        }
        Ok(entry)
    }

    async fn create_account_bound(
        &self,
        account: &AccountRecord,
        eab_kid: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let r = {
            let value = encode(account)?;
            tx_result(
                (&self.accounts, &self.thumbprints, &self.eab_keys).transaction(
                    |(accounts, thumbs, eab)| {
                        if thumbs.get(account.thumbprint.as_bytes())?.is_some() {
                            return Err(abort(StoreError::Conflict(
                                "account key already in use".into(),
                            )));
                        }
                        if accounts.get(account.id.as_bytes())?.is_some() {
                            return Err(abort(StoreError::Conflict("account id exists".into())));
                        }
                        let mut key: EabKeyRecord = match eab.get(eab_kid.as_bytes())? {
                            Some(v) => decode(&v).map_err(abort)?,
                            None => return Err(abort(StoreError::NotFound)),
                        };
                        if key.disabled_at.is_some() {
                            return Err(abort(StoreError::Conflict(
                                "the EAB key is disabled".into(),
                            )));
                        }
                        if key.bound_account.is_some() {
                            return Err(abort(StoreError::Conflict(
                                "the EAB key is already bound".into(),
                            )));
                        }
                        key.bound_account = Some(account.id.clone());
                        eab.insert(eab_kid.as_bytes(), encode(&key).map_err(abort)?)?;
                        thumbs.insert(account.thumbprint.as_bytes(), account.id.as_bytes())?;
                        accounts.insert(account.id.as_bytes(), value.as_slice())?;
                        Ok(())
                    },
                ),
            )
        };
        if r.is_ok() {
            self.generations.bump(ChangeKind::EabKeys);
        }
        r
    }

    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let r = { Self::create_json(&self.tenants, &tenant.id, tenant, "tenant") };
        if r.is_ok() {
            self.generations.bump(ChangeKind::Tenants);
        }
        r
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        Self::get_json(&self.tenants, id.as_bytes())
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        Self::list_json(&self.tenants)
    }

    async fn disable_tenant(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<TenantRecord, StoreError> {
        let _writing = self.writing().await;
        let r = {
            Self::update_json(&self.tenants, id, |mut t: TenantRecord| {
                if t.disabled_at.is_some() {
                    return Err(StoreError::Conflict("tenant already disabled".into()));
                }
                t.disabled_at = Some(at);
                Ok((Some(t.clone()), t))
            })
        };
        if r.is_ok() {
            self.generations.bump(ChangeKind::Tenants);
        }
        r
    }

    async fn create_eab_key(&self, key: &EabKeyRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let r = { Self::create_json(&self.eab_keys, &key.kid, key, "EAB key") };
        if r.is_ok() {
            self.generations.bump(ChangeKind::EabKeys);
        }
        r
    }

    async fn get_eab_key(&self, kid: &str) -> Result<Option<EabKeyRecord>, StoreError> {
        Self::get_json(&self.eab_keys, kid.as_bytes())
    }

    async fn list_eab_keys(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<EabKeyRecord>, StoreError> {
        let all: Vec<EabKeyRecord> = Self::list_json(&self.eab_keys)?;
        Ok(all
            .into_iter()
            .filter(|k| tenant_id.is_none_or(|t| k.tenant_id == t))
            .collect())
    }

    async fn disable_eab_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
    ) -> Result<EabKeyRecord, StoreError> {
        let _writing = self.writing().await;
        let r = {
            Self::update_json(&self.eab_keys, kid, |mut k: EabKeyRecord| {
                if k.disabled_at.is_some() {
                    return Err(StoreError::Conflict("EAB key already disabled".into()));
                }
                k.disabled_at = Some(at);
                Ok((Some(k.clone()), k))
            })
        };
        if r.is_ok() {
            self.generations.bump(ChangeKind::EabKeys);
        }
        r
    }

    async fn create_est_user(&self, user: &EstUserRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let r = { Self::create_json(&self.est_users, &user.username, user, "EST user") };
        if r.is_ok() {
            self.generations.bump(ChangeKind::EstUsers);
        }
        r
    }

    async fn get_est_user(&self, username: &str) -> Result<Option<EstUserRecord>, StoreError> {
        Self::get_json(&self.est_users, username.as_bytes())
    }

    async fn list_est_users(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<EstUserRecord>, StoreError> {
        let all: Vec<EstUserRecord> = Self::list_json(&self.est_users)?;
        Ok(all
            .into_iter()
            .filter(|u| tenant_id.is_none_or(|t| u.tenant_id.as_deref() == Some(t)))
            .collect())
    }

    async fn disable_est_user(
        &self,
        username: &str,
        at: OffsetDateTime,
    ) -> Result<EstUserRecord, StoreError> {
        let _writing = self.writing().await;
        let r = {
            Self::update_json(&self.est_users, username, |mut u: EstUserRecord| {
                if u.disabled_at.is_some() {
                    return Err(StoreError::Conflict("EST user already disabled".into()));
                }
                u.disabled_at = Some(at);
                Ok((Some(u.clone()), u))
            })
        };
        if r.is_ok() {
            self.generations.bump(ChangeKind::EstUsers);
        }
        r
    }

    async fn create_approval(&self, approval: &ApprovalRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        Self::create_json(&self.approvals, &approval.id, approval, "approval")
    }

    async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        Self::get_json(&self.approvals, id.as_bytes())
    }

    async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let mut out: Vec<ApprovalRecord> = Self::list_json(&self.approvals)?;
        out.retain(|a| status.is_none_or(|s| a.status == s));
        out.sort_by(|a, b| (a.requested_at, &a.id).cmp(&(b.requested_at, &b.id)));
        Ok(out)
    }

    async fn update_approval(
        &self,
        approval: &ApprovalRecord,
        expected: ApprovalStatus,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        Self::update_json(&self.approvals, &approval.id, |stored: ApprovalRecord| {
            if stored.status != expected {
                return Ok((None, false));
            }
            Ok((Some(approval.clone()), true))
        })
    }

    async fn get_scep_transaction(
        &self,
        id: &str,
    ) -> Result<Option<ScepTransactionRecord>, StoreError> {
        Self::get_json(&self.scep_transactions, id.as_bytes())
    }

    async fn put_scep_transaction(
        &self,
        record: &ScepTransactionRecord,
        expected: Option<&ScepTransactionRecord>,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        let value = encode(record)?;
        let key = record.transaction_id.as_bytes();
        tx_result(self.scep_transactions.transaction(|t| {
            let stored: Option<ScepTransactionRecord> = match t.get(key)? {
                Some(v) => Some(decode(&v).map_err(abort)?),
                None => None,
            };
            if stored.as_ref() != expected {
                return Ok(false);
            }
            t.insert(key, value.as_slice())?;
            Ok(true)
        }))
    }

    async fn delete_scep_transaction(
        &self,
        expected: &ScepTransactionRecord,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        let key = expected.transaction_id.as_bytes();
        tx_result(self.scep_transactions.transaction(|t| {
            let stored: Option<ScepTransactionRecord> = match t.get(key)? {
                Some(v) => Some(decode(&v).map_err(abort)?),
                None => None,
            };
            if stored.as_ref() != Some(expected) {
                return Ok(false);
            }
            t.remove(key)?;
            Ok(true)
        }))
    }

    async fn create_scep_challenge(
        &self,
        challenge: &ScepChallengeRecord,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        Self::create_json(
            &self.scep_challenges,
            &challenge.challenge_hash,
            challenge,
            "SCEP challenge",
        )
    }

    async fn get_scep_challenge(
        &self,
        hash: &str,
    ) -> Result<Option<ScepChallengeRecord>, StoreError> {
        Self::get_json(&self.scep_challenges, hash.as_bytes())
    }

    async fn list_scep_challenges(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<ScepChallengeRecord>, StoreError> {
        let all: Vec<ScepChallengeRecord> = Self::list_json(&self.scep_challenges)?;
        Ok(all
            .into_iter()
            .filter(|c| tenant_id.is_none_or(|t| c.tenant_id.as_deref() == Some(t)))
            .collect())
    }

    async fn redeem_scep_challenge(
        &self,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<Option<ScepChallengeRecord>, StoreError> {
        let _writing = self.writing().await;
        let key = hash.as_bytes();
        // One sled transaction: of concurrent redemptions exactly one sees
        // the challenge unredeemed.
        tx_result(self.scep_challenges.transaction(|t| {
            let mut c: ScepChallengeRecord = match t.get(key)? {
                Some(v) => decode(&v).map_err(abort)?,
                None => return Ok(None),
            };
            if !c.is_redeemable(at) {
                return Ok(None);
            }
            c.redeemed_at = Some(at);
            t.insert(key, encode(&c).map_err(abort)?)?;
            Ok(Some(c))
        }))
    }

    async fn remove_scep_challenge(&self, hash: &str) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        Ok(self
            .scep_challenges
            .remove(hash.as_bytes())
            .map_err(backend)?
            .is_some())
    }

    async fn scep_transactions_before(
        &self,
        before: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ScepTransactionRecord>, StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(a) => Bound::Excluded(a.as_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for kv in self
            .scep_transactions
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
        {
            if out.len() >= limit {
                break;
            }
            let (_, v) = kv.map_err(backend)?;
            let r: ScepTransactionRecord = decode(&v)?;
            if r.updated_at < before {
                out.push(r);
            }
        }
        Ok(out)
    }
    async fn change_generations(&self) -> Result<Generations, StoreError> {
        Ok(self.generations.snapshot())
    }

    async fn get_setting(&self, name: &str) -> Result<Option<SettingRecord>, StoreError> {
        Self::get_json(&self.settings, name.as_bytes())
    }

    async fn put_setting(
        &self,
        name: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<Option<u64>, StoreError> {
        let _writing = self.writing().await;
        let version = expected.map_or(1, |v| v + 1);
        let new = encode(&SettingRecord {
            version,
            value: value.to_vec(),
        })?;
        let written = tx_result(self.settings.transaction(|settings| {
            let stored = match settings.get(name.as_bytes())? {
                Some(v) => Some(decode::<SettingRecord>(&v).map_err(abort)?.version),
                None => None,
            };
            if stored != expected {
                return Ok(false);
            }
            settings.insert(name.as_bytes(), new.as_slice())?;
            Ok(true)
        }))?;
        if !written {
            return Ok(None);
        }
        self.generations.bump(ChangeKind::Settings);
        Ok(Some(version))
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ns: i64,
        ttl_ns: i64,
    ) -> Result<Option<Lease>, StoreError> {
        let _writing = self.writing().await;
        loop {
            let old = self.leases.get(name).map_err(backend)?;
            let stored: Option<Lease> = old.as_deref().map(decode).transpose()?;
            let Some(next) = leases::acquire_step(stored.as_ref(), name, holder, now_ns, ttl_ns)
            else {
                return Ok(None);
            };
            let swapped = self
                .leases
                .compare_and_swap(name, old, Some(encode(&next)?))
                .map_err(backend)?;
            if swapped.is_ok() {
                return Ok(Some(next));
            }
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        loop {
            let old = self.leases.get(name).map_err(backend)?;
            let stored: Option<Lease> = old.as_deref().map(decode).transpose()?;
            let Some(next) = leases::release_step(stored.as_ref(), holder) else {
                return Ok(false);
            };
            let swapped = self
                .leases
                .compare_and_swap(name, old, Some(encode(&next)?))
                .map_err(backend)?;
            if swapped.is_ok() {
                return Ok(true);
            }
        }
    }

    async fn get_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        Self::get_json(&self.leases, name.as_bytes())
    }

    async fn purge_leases(&self, before_ns: i64) -> Result<u64, StoreError> {
        let mut gone = 0;
        for item in self.leases.iter() {
            let (k, v) = item.map_err(backend)?;
            let l: Lease = decode(&v)?;
            if l.expires_ns < before_ns {
                let _writing = self.writing().await;
                // Only if unchanged since read: a concurrent acquire wins.
                let removed = self
                    .leases
                    .compare_and_swap(&k, Some(v), None::<&[u8]>)
                    .map_err(backend)?;
                gone += u64::from(removed.is_ok());
            }
        }
        Ok(gone)
    }

    async fn put_crl(&self, crl: &StoredCrl) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        let key = crl_key(&crl.ca_id, crl.part);
        let value = crl_value(crl)?;
        loop {
            let old = self.crls.get(&key).map_err(backend)?;
            if let Some(v) = &old {
                if crl_parts(v)?.0.number > crl.head.number {
                    return Ok(false);
                }
            }
            let swapped = self
                .crls
                .compare_and_swap(&key, old, Some(value.as_slice()))
                .map_err(backend)?;
            if swapped.is_ok() {
                return Ok(true);
            }
        }
    }

    async fn get_crl(&self, ca_id: &str, part: CrlPart) -> Result<Option<StoredCrl>, StoreError> {
        let Some(v) = self.crls.get(crl_key(ca_id, part)).map_err(backend)? else {
            return Ok(None);
        };
        let (head, der) = crl_parts(&v)?;
        Ok(Some(StoredCrl {
            ca_id: ca_id.to_owned(),
            part,
            head,
            der: der.to_vec(),
        }))
    }

    async fn crl_head(
        &self,
        ca_id: &str,
        part: CrlPart,
    ) -> Result<(u64, Option<CrlHead>), StoreError> {
        let generation = self
            .crl_generations
            .get(ca_id)
            .map_err(backend)?
            .map(|v| u64_from(&v))
            .transpose()?
            .unwrap_or(0);
        let head = self
            .crls
            .get(crl_key(ca_id, part))
            .map_err(backend)?
            .map(|v| crl_parts(&v).map(|(h, _)| h))
            .transpose()?;
        Ok((generation, head))
    }

    async fn bump_crl_generation(&self, ca_id: &str) -> Result<u64, StoreError> {
        let _writing = self.writing().await;
        let mut bad = false;
        let new = self
            .crl_generations
            .update_and_fetch(ca_id, |old| {
                let n = match old.map(u64_from) {
                    None => 0,
                    Some(Ok(n)) => n,
                    Some(Err(_)) => {
                        bad = true;
                        0
                    }
                };
                Some(n.saturating_add(1).to_be_bytes().to_vec())
            })
            .map_err(backend)?;
        if bad {
            return Err(StoreError::Corrupt("CRL generation".into()));
        }
        new.map(|v| u64_from(&v))
            .transpose()?
            .ok_or_else(|| StoreError::Backend("CRL generation vanished".into()))
    }

    async fn put_ocsp_responder(&self, record: &OcspResponderRecord) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        self.ocsp_responders
            .insert(record.ca_id.as_bytes(), encode(record)?)
            .map_err(backend)?;
        Ok(())
    }

    async fn get_ocsp_responder(
        &self,
        ca_id: &str,
    ) -> Result<Option<OcspResponderRecord>, StoreError> {
        Self::get_json(&self.ocsp_responders, ca_id.as_bytes())
    }
}
