//! ironseal storage: the [`Store`] trait and its backends.
//!
//! * [`SledStore`]: the embedded default (sled 0.34), one tree per record
//!   kind plus index trees; see `docs/decisions/0002-storage-engine.md`.
//! * [`PgStore`]: PostgreSQL, for several replicas on one database
//!   (issue 11; see `docs/storage-postgres.md`).
//! * [`MemoryStore`]: an in-process map, for tests.
//!
//! Every backend passes the same test battery (`tests/battery.rs`,
//! `tests/battery_postgres.rs`).
//!
//! # Semantics shared by every backend
//!
//! * Records are JSON documents (see [`records`]). Ids are opaque URL-safe
//!   strings; [`new_id`] makes one from 16 random bytes.
//! * Writes are visible to readers at once. They are *durable* only after
//!   [`Store::flush`] returns: the server calls `flush()` before it answers a
//!   request that changed state, so concurrent requests share one disk sync
//!   (group commit).
//! * Certificate serials are hex, case-insensitive; they are stored and
//!   returned in lowercase.
//! * Revocation and replacement are one-way: [`Store::update_certificate`]
//!   never clears `revocation` or `replaced_by` once set.
#![forbid(unsafe_code)]

pub mod approvals;
pub mod audit;
pub mod audit_checkpoint;
pub mod crls;
pub mod domain_writes;
pub mod est_users;
pub mod export;
pub mod generations;
pub mod issuance;
mod keys;
pub mod leases;
mod memory;
pub mod ocsp_responders;
pub mod pending;
mod postgres;
pub mod purge;
pub mod rate_buckets;
pub mod records;
pub mod scep;
pub mod scep_challenges;
pub mod settings;
mod sled_backup;
mod sled_store;
pub mod tenancy;
pub mod types;

use time::OffsetDateTime;

pub use approvals::{ApprovalRecord, ApprovalStatus};
pub use audit::{
    verify_chain, AuditEntry, AuditEvent, AuditHead, AuditKeyRecord, AuditMacKey, ChainError,
    ChainVerifier, AUDIT_CHECKPOINT_KEY, AUDIT_MAC_KEY,
};
pub use audit_checkpoint::{Checkpoint, CheckpointError, CheckpointSigner};
pub use crls::{CrlHead, CrlPart, StoredCrl};
pub use domain_writes::{CaExpect, CaUpdate, CaWrite, RevocationWrite};
pub use est_users::EstUserRecord;
pub use export::{CrlNumber, ExportRecord, ExportSink};
pub use generations::{ChangeKind, Generations};
/// The backup file format (defined in the protocol crate, where it is fuzzed).
pub use ironseal_protocol::backup;
pub use issuance::{CertOrigin, IssuanceWrite, ScepSettle};
pub use leases::Lease;
pub use memory::MemoryStore;
pub use ocsp_responders::OcspResponderRecord;
pub use pending::PendingCounts;
pub use postgres::{PgOptions, PgStore, DEFAULT_POOL_SIZE as PG_DEFAULT_POOL_SIZE};
pub use purge::Purged;
pub use rate_buckets::{Bucket, BucketOp, Gcra};
pub use records::{
    AccountRecord, ApiKeyRecord, ApiRole, AuthzRecord, CaRecord, CaStatus, CertificateRecord,
    CertificateStatus, ChallengeRecord, CrossCert, OrderRecord, RevocationRecord,
};
pub use scep::{ScepTransactionRecord, ScepTransactionState};
pub use scep_challenges::ScepChallengeRecord;
pub use settings::SettingRecord;
pub use sled_store::SledStore;
pub use tenancy::{EabKeyRecord, TenantNames, TenantRecord};
pub use types::{
    AccountStatus, AuthzStatus, ChallengeStatus, ChallengeType, Identifier, IdentifierKind,
    KeyAlgorithm, OrderStatus, RevocationReason,
};

/// Errors a [`Store`] returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (thumbprint taken, id exists, a
    /// thumbprint change through `update_account`, a stale key change).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A certificate with this serial already exists.
    #[error("duplicate certificate serial")]
    DuplicateSerial,
    /// The certificate is already revoked.
    #[error("certificate already revoked")]
    AlreadyRevoked,
    /// The certificate was already replaced (RFC 9773 §5 `alreadyReplaced`).
    #[error("certificate already replaced")]
    AlreadyReplaced,
    /// The record to update, revoke or page after does not exist.
    #[error("not found")]
    NotFound,
    /// A stored value could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The storage engine failed (I/O, engine error).
    #[error("storage backend: {0}")]
    Backend(String),
    /// Disabling this key would leave no enabled admin key.
    #[error("the last enabled admin key cannot be disabled")]
    LastAdminKey,
    /// The account is deactivated (or revoked), which is final (RFC 8555
    /// §7.3.6): it cannot be made valid again or get a new key.
    #[error("the account is deactivated; deactivation is final")]
    AccountNotValid,
}

impl From<backup::BackupError> for StoreError {
    fn from(e: backup::BackupError) -> StoreError {
        match e {
            backup::BackupError::Corrupt(_) => StoreError::Corrupt(e.to_string()),
            backup::BackupError::Io(_) | backup::BackupError::Target(_) => {
                StoreError::Backend(e.to_string())
            }
        }
    }
}

/// Held while a process runs its first-start work (see
/// [`Store::bootstrap_lock`]); dropping it releases the lock.
pub struct StoreLock(
    #[allow(dead_code, reason = "held for its Drop")] Option<Box<dyn std::any::Any + Send>>,
);

impl StoreLock {
    /// A lock that excludes nobody (a store only one process can open).
    pub fn local() -> StoreLock {
        StoreLock(None)
    }

    pub(crate) fn holding(guard: Box<dyn std::any::Any + Send>) -> StoreLock {
        StoreLock(Some(guard))
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "StoreLock(held)"
        } else {
            "StoreLock(local)"
        })
    }
}

/// The persistence interface of the server.
///
/// Async and object safe (`async_trait`): the server holds an
/// `Arc<dyn Store>` and awaits it from its handlers. On PostgreSQL a call is
/// a network round trip whose commit is durable; sled and memory do their
/// work inline (sled's writes land in its in-memory log; durability comes
/// from [`Store::flush`], which stays synchronous because it is a disk sync
/// that only the group-commit thread calls). Every method is atomic on its
/// own; the ones that check-and-write (noted below) are linearizable
/// against concurrent callers.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Create an account. `Conflict` if the thumbprint or the id is taken;
    /// atomic against a concurrent create with the same thumbprint.
    async fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError>;

    /// Fetch an account by id.
    async fn get_account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError>;

    /// Fetch an account by its key's RFC 7638 thumbprint.
    async fn account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AccountRecord>, StoreError>;

    /// Replace an account (contact, status). `NotFound` if absent; `Conflict`
    /// if `account.thumbprint` differs from the stored one (use
    /// [`Store::change_account_key`] for that); `AccountNotValid` if the
    /// stored account is no longer valid and the write would change its
    /// status (a racing update cannot undo a deactivation).
    async fn update_account(&self, account: &AccountRecord) -> Result<(), StoreError>;

    /// Roll an account over to a new key (RFC 8555 §7.3.5), atomically:
    /// `NotFound` if the account is absent; `Conflict` if the stored
    /// thumbprint is not `old_thumbprint` or if `account.thumbprint` (the new
    /// key) is already in use by any account; `AccountNotValid` if the
    /// stored account is deactivated or revoked.
    async fn change_account_key(
        &self,
        account: &AccountRecord,
        old_thumbprint: &str,
    ) -> Result<(), StoreError>;

    /// Create or replace an order.
    async fn put_order(&self, order: &OrderRecord) -> Result<(), StoreError>;

    /// Fetch an order by id.
    async fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError>;

    /// Ids of an account's orders, oldest first (by `created_at`, then id),
    /// at most `limit`, strictly after the order id `after` if given
    /// (RFC 8555 §7.1.2.1 pagination). `NotFound` if `after` is not an order
    /// of this account.
    async fn list_orders(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Compare-and-swap on the stored order's status: write `order` only if
    /// the stored order's status equals `expected`. `Ok(true)` if written,
    /// `Ok(false)` if the stored status differs, `NotFound` if absent.
    async fn transition_order(
        &self,
        order: &OrderRecord,
        expected: OrderStatus,
    ) -> Result<bool, StoreError>;

    /// Create or replace an authorization.
    async fn put_authz(&self, authz: &AuthzRecord) -> Result<(), StoreError>;

    /// Replace an authorization only if its stored status is still
    /// `expected` (compare-and-swap): a validation that finishes after the
    /// client deactivated the authorization must not make it valid, and a
    /// deactivation must not undo a concurrent outcome unseen (RFC 8555
    /// §7.1.6: deactivated, invalid and revoked are final). `Ok(false)`
    /// when the stored status differs (nothing written); `NotFound` if
    /// there is no such authorization.
    async fn transition_authz(
        &self,
        authz: &AuthzRecord,
        expected: AuthzStatus,
    ) -> Result<bool, StoreError>;

    /// Fetch an authorization by id.
    async fn get_authz(&self, id: &str) -> Result<Option<AuthzRecord>, StoreError>;

    /// An authorization of `account_id` that can be reused for `identifier`
    /// (RFC 8555 §7.1.4): status valid or pending and `expires > now`,
    /// preferring valid, then the latest expiry.
    ///
    /// `identifier` is given as it appears in the order: a DNS value starting
    /// with `*.` matches only wildcard authorizations for the base name, any
    /// other value only non-wildcard ones. DNS values compare
    /// case-insensitively.
    async fn find_reusable_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzRecord>, StoreError>;

    /// Insert a newly issued certificate. `DuplicateSerial` if the serial
    /// exists (atomic: of concurrent inserts of one serial, one wins).
    async fn insert_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError>;

    /// Fetch a certificate by hex serial (case-insensitive).
    async fn get_certificate(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateRecord>, StoreError>;

    /// The issuer and revocation of a certificate by hex serial
    /// (case-insensitive): what an OCSP answer needs. Backends may answer
    /// from a compact index; by default it reads the full record.
    async fn certificate_status(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateStatus>, StoreError> {
        Ok(self
            .get_certificate(serial_hex)
            .await?
            .as_ref()
            .map(CertificateStatus::from))
    }

    /// Replace a certificate record. `NotFound` if absent. A stored
    /// `revocation` or `replaced_by` is kept if `cert` has `None` there.
    async fn update_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError>;

    /// Revoke a certificate. `NotFound` if absent, `AlreadyRevoked` if it is.
    async fn revoke_certificate(
        &self,
        serial_hex: &str,
        revocation: RevocationRecord,
    ) -> Result<(), StoreError>;

    /// Record that `order_id` replaces this certificate (RFC 9773 §5).
    /// `NotFound` if absent, `AlreadyReplaced` if `replaced_by` is set.
    async fn mark_replaced(&self, serial_hex: &str, order_id: &str) -> Result<(), StoreError>;

    /// Every revoked certificate of one issuer as (lowercase hex serial,
    /// revocation), ordered by serial. Expired entries are included; the CRL
    /// builder decides what to drop.
    async fn revoked_certificates(
        &self,
        issuer_id: &str,
    ) -> Result<Vec<(String, RevocationRecord)>, StoreError>;

    /// Block a public key (hex SHA-256 of its key bits), e.g. after a
    /// keyCompromise revocation. Idempotent.
    async fn block_key(&self, public_key_sha256: &str) -> Result<(), StoreError>;

    /// Whether a public key is blocked.
    async fn is_key_blocked(&self, public_key_sha256: &str) -> Result<bool, StoreError>;

    /// Create or replace a CA record.
    async fn put_ca(&self, ca: &CaRecord) -> Result<(), StoreError>;

    /// Fetch a CA by id.
    async fn get_ca(&self, id: &str) -> Result<Option<CaRecord>, StoreError>;

    /// Every CA, ordered by `created_at`, then id.
    async fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError>;

    /// The next CRL number for a CA (RFC 5280 §5.2.3): 1 on the first call,
    /// then strictly increasing, persisted like any other write.
    async fn next_crl_number(&self, ca_id: &str) -> Result<u64, StoreError>;

    /// Store a new admin API key. `Conflict` if the id exists (atomic
    /// against a concurrent create of the same id).
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    /// Fetch an API key by id (disabled keys included).
    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Every API key (disabled ones included), ordered by `created_at`, then id.
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Disable (revoke) an API key at `at`; one-way. Returns the updated
    /// record. `NotFound` if absent; `Conflict` if already disabled;
    /// `LastAdminKey` if it is the last enabled admin key, checked
    /// atomically with the write (two concurrent disables of the last two
    /// admin keys leave one).
    async fn disable_api_key(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<ApiKeyRecord, StoreError>;

    /// Append to the audit log atomically: assigns the next sequence
    /// number, links to the previous entry's hash and moves the head, all
    /// in one transaction (see [`audit`]). Returns the stored entry.
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry, StoreError>;

    /// Audit entries with `seq > after`, ascending, at most `limit`.
    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// The last audit entry's seq and hash; `None` while the log is empty.
    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError>;

    /// Append `entry` verbatim (its seq, time and hashes as they are), for
    /// `ironseal store import`. Atomically checks that it follows the head
    /// ([`AuditEntry::check_follows`]); `Corrupt` if not.
    async fn import_audit_entry(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Every record, kind by kind in [`ExportRecord`]'s order (audit entries
    /// last, ascending), handed to `sink`; returns how many. An error from
    /// `sink` stops the export. PostgreSQL reads one snapshot; sled and
    /// memory are exported offline (no concurrent writers).
    async fn export_records(&self, sink: &mut ExportSink<'_>) -> Result<u64, StoreError>;

    /// How many records [`Store::export_records`] would hand out now (for
    /// a progress display).
    async fn count_records(&self) -> Result<u64, StoreError>;

    /// Deletes up to `limit` orders and up to `limit` authorizations that
    /// expired before `before` ([`purge`] says which), with their index
    /// entries; each deletion re-checks its record, so a concurrent update
    /// is never lost. Returns how many went.
    async fn purge_expired(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Purged, StoreError>;

    /// How many of `account_id`'s orders and authorizations are unfinished
    /// and unexpired at `now` ([`pending`] says which), each counted up to
    /// `limit`: the cost is bounded by `limit`, not by the account's history.
    async fn count_pending(
        &self,
        account_id: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<PendingCounts, StoreError>;

    /// Records ACME nonce `id` (its random part, RFC 8555 §6.5) as used
    /// until `expires` (Unix seconds): `Ok(true)` the first time, `Ok(false)`
    /// if it was recorded already: a replay, on whichever process redeemed
    /// it first. Atomic against concurrent callers on the same store.
    async fn redeem_nonce(&self, id: u128, expires: u64) -> Result<bool, StoreError>;

    /// [`Store::redeem_nonce`] and [`Store::get_account`] of the account
    /// that signed the request, in one call: every kid-signed ACME request
    /// does both (RFC 8555 §6.2, §6.5). The account is read whether or not
    /// the nonce was fresh. PostgreSQL answers both in one statement (one
    /// round trip instead of two, issue 11); the default calls the two in
    /// turn.
    async fn redeem_nonce_reading_account(
        &self,
        id: u128,
        expires: u64,
        account_id: &str,
    ) -> Result<(bool, Option<AccountRecord>), StoreError> {
        let fresh = self.redeem_nonce(id, expires).await?;
        Ok((fresh, self.get_account(account_id).await?))
    }

    /// Forgets used nonces that expired before `now` (Unix seconds);
    /// returns how many.
    async fn purge_nonces(&self, now: u64) -> Result<u64, StoreError>;

    /// Applies `op` to the rate-limit bucket `key` at `now_ns` (ns since
    /// the Unix epoch) under `gcra`, atomically against every other caller
    /// on the same store (and, on PostgreSQL, every replica); see
    /// [`rate_buckets`].
    async fn rate_bucket(
        &self,
        key: &str,
        op: BucketOp,
        gcra: Gcra,
        now_ns: i64,
    ) -> Result<Bucket, StoreError>;

    /// Forgets rate-limit buckets whose TAT is before `now_ns` (they equal
    /// empty ones); returns how many.
    async fn purge_rate_buckets(&self, now_ns: i64) -> Result<u64, StoreError>;

    /// Sets the last CRL number of `ca_id` (import only; numbers never go
    /// back in normal operation, see [`Store::next_crl_number`]).
    async fn set_crl_number(&self, ca_id: &str, last: u64) -> Result<(), StoreError>;

    /// From now on, every audit entry this store object appends (through
    /// [`Store::append_audit`] and [`Store::record_issuance`]) carries a MAC
    /// under `key` (see [`audit`]). Set at start, before the first append.
    fn set_audit_mac_key(&self, key: AuditMacKey);

    /// Store an audit key record unless one with its name exists, atomically
    /// (of concurrent creators, one wins). `Ok(true)` if stored, `Ok(false)`
    /// if a record of that name was there (read it with
    /// [`Store::get_audit_key`]). Records are never replaced.
    async fn create_audit_key(&self, record: &AuditKeyRecord) -> Result<bool, StoreError>;

    /// Fetch an audit key record by name.
    async fn get_audit_key(&self, name: &str) -> Result<Option<AuditKeyRecord>, StoreError>;

    /// Make everything written so far durable. Concurrent callers may share
    /// one disk sync.
    fn flush(&self) -> Result<(), StoreError>;

    /// Whether every write is durable when its method returns, so that
    /// [`Store::flush`] has nothing to do and callers need not wait for a
    /// group commit (PostgreSQL: each method commits). `false` by default
    /// (sled and memory make writes durable on `flush`).
    fn commits_are_durable(&self) -> bool {
        false
    }

    /// Writes a consistent snapshot of the whole store to `out` in the
    /// [`backup`] format, followed by `files` (small files of the data
    /// directory that belong with it). Engines with their own backup tools
    /// (PostgreSQL: `pg_dump`) answer `Backend` by default.
    fn backup(
        &self,
        out: &mut dyn std::io::Write,
        files: &[(String, Vec<u8>)],
        progress: &mut dyn FnMut(backup::Progress),
    ) -> Result<backup::Summary, StoreError> {
        let _ = (out, files, progress);
        Err(StoreError::Backend(
            "this storage engine is backed up with its own tools, not `ironseal backup`".into(),
        ))
    }

    /// Record one issuance atomically (see [`IssuanceWrite`]): insert the
    /// certificate (`DuplicateSerial` if the serial exists), move the order
    /// if one is given (`Conflict` unless the stored order is
    /// `processing`), link `replaces`, settle the SCEP transaction if one
    /// is given (`Conflict` unless the stored record equals the expected
    /// one), and append the audit entry. Nothing is written when any part
    /// fails. Returns the audit entry.
    async fn record_issuance(&self, write: &IssuanceWrite) -> Result<AuditEntry, StoreError>;

    /// Record one revocation atomically (see [`RevocationWrite`]): mark the
    /// certificate revoked (`NotFound` if absent, `AlreadyRevoked` if it
    /// is), block its key if asked, bump the issuer's CRL generation and
    /// append the audit entry. Nothing is written when any part fails.
    /// Returns the audit entry.
    async fn record_revocation(&self, write: &RevocationWrite) -> Result<AuditEntry, StoreError>;

    /// Record one change of the CA hierarchy atomically (see [`CaWrite`]):
    /// every record only if the stored one is what its update expects
    /// (`Conflict` otherwise: another request, on this replica or another,
    /// changed it first), the issuing-CA pin if given, and the audit entry.
    /// Nothing is written when any part fails. Returns the audit entry.
    async fn record_ca_change(&self, write: &CaWrite) -> Result<AuditEntry, StoreError>;

    /// Create an account bound to an external account binding key, atomically
    /// (RFC 8555 §7.3.4): `NotFound` if the key does not exist, `Conflict`
    /// if it is disabled or already bound, or if the account's thumbprint
    /// or id is taken. The key records the account as bound.
    async fn create_account_bound(
        &self,
        account: &AccountRecord,
        eab_kid: &str,
    ) -> Result<(), StoreError>;

    /// Store a new tenant. `Conflict` if the id exists.
    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError>;

    /// Fetch a tenant by id (disabled ones included).
    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError>;

    /// Every tenant, ordered by id.
    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError>;

    /// Disable a tenant at `at`; one-way. `NotFound` if absent, `Conflict`
    /// if already disabled.
    async fn disable_tenant(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<TenantRecord, StoreError>;

    /// Store a new EAB key. `Conflict` if the kid exists.
    async fn create_eab_key(&self, key: &EabKeyRecord) -> Result<(), StoreError>;

    /// Fetch an EAB key by kid.
    async fn get_eab_key(&self, kid: &str) -> Result<Option<EabKeyRecord>, StoreError>;

    /// EAB keys, of one tenant or all, ordered by kid.
    async fn list_eab_keys(&self, tenant_id: Option<&str>)
        -> Result<Vec<EabKeyRecord>, StoreError>;

    /// Disable an EAB key at `at`; one-way. `NotFound` / `Conflict` as for
    /// tenants.
    async fn disable_eab_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
    ) -> Result<EabKeyRecord, StoreError>;

    /// Store a new EST user (RFC 7030 §3.2.3 Basic). `Conflict` if the
    /// user name exists.
    async fn create_est_user(&self, user: &EstUserRecord) -> Result<(), StoreError>;

    /// Fetch an EST user by name (disabled ones included).
    async fn get_est_user(&self, username: &str) -> Result<Option<EstUserRecord>, StoreError>;

    /// EST users, of one tenant or all, ordered by name.
    async fn list_est_users(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<EstUserRecord>, StoreError>;

    /// Disable an EST user at `at`; one-way. `NotFound` / `Conflict` as
    /// for tenants.
    async fn disable_est_user(
        &self,
        username: &str,
        at: OffsetDateTime,
    ) -> Result<EstUserRecord, StoreError>;

    /// Queue a held issuance request. `Conflict` if the id exists.
    async fn create_approval(&self, approval: &ApprovalRecord) -> Result<(), StoreError>;

    /// Fetch a held request by id.
    async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError>;

    /// Held requests, all or of one status, oldest first (by
    /// `requested_at`, then id).
    async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<ApprovalRecord>, StoreError>;

    /// Compare-and-swap on a held request's status: write `approval` only if
    /// the stored status equals `expected`. `Ok(false)` if it differs,
    /// `NotFound` if absent.
    async fn update_approval(
        &self,
        approval: &ApprovalRecord,
        expected: ApprovalStatus,
    ) -> Result<bool, StoreError>;

    /// Fetch the SCEP transaction with this transactionID.
    async fn get_scep_transaction(
        &self,
        id: &str,
    ) -> Result<Option<ScepTransactionRecord>, StoreError>;

    /// Compare-and-swap on a SCEP transaction: write `record` (keyed by its
    /// `transaction_id`) only if the stored record equals `expected`
    /// (`None`: only if there is none). `Ok(false)` if it differs.
    async fn put_scep_transaction(
        &self,
        record: &ScepTransactionRecord,
        expected: Option<&ScepTransactionRecord>,
    ) -> Result<bool, StoreError>;

    /// Remove a SCEP transaction only if the stored record equals
    /// `expected` (a failed issuance leaves nothing behind). `Ok(false)`
    /// if it differs or is absent.
    async fn delete_scep_transaction(
        &self,
        expected: &ScepTransactionRecord,
    ) -> Result<bool, StoreError>;

    /// Store a new one-time SCEP challenge (keyed by its hash).
    /// `Conflict` if the hash exists.
    async fn create_scep_challenge(
        &self,
        challenge: &ScepChallengeRecord,
    ) -> Result<(), StoreError>;

    /// Fetch a one-time SCEP challenge by the SHA-256 (hex) of its
    /// password, redeemed and expired ones included.
    async fn get_scep_challenge(
        &self,
        hash: &str,
    ) -> Result<Option<ScepChallengeRecord>, StoreError>;

    /// One-time SCEP challenges, of one tenant or all, ordered by hash.
    async fn list_scep_challenges(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<ScepChallengeRecord>, StoreError>;

    /// Redeem a one-time SCEP challenge atomically: if the one with this
    /// hash is unredeemed and unexpired at `at`, mark it redeemed and
    /// answer it; otherwise `Ok(None)` and nothing changes. Of concurrent
    /// redemptions (on any replica) exactly one wins.
    async fn redeem_scep_challenge(
        &self,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<Option<ScepChallengeRecord>, StoreError>;

    /// Remove the one-time SCEP challenge with this hash (withdrawn by an
    /// operator, or expired and purged); false if there was none. A
    /// removed challenge can no longer be redeemed on any replica.
    async fn remove_scep_challenge(&self, hash: &str) -> Result<bool, StoreError>;

    /// SCEP transactions last written before `before`, in transactionID
    /// order after `after` (exclusive; `None`: from the start), at most
    /// `limit`: the candidates of the retention purge, which decides on
    /// each and removes it with [`Store::delete_scep_transaction`].
    async fn scep_transactions_before(
        &self,
        before: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ScepTransactionRecord>, StoreError>;

    /// Every change generation at once (see [`generations`]): one small
    /// read, cheap enough to poll every second.
    async fn change_generations(&self) -> Result<Generations, StoreError>;

    /// Fetch a setting (see [`settings`]).
    async fn get_setting(&self, name: &str) -> Result<Option<SettingRecord>, StoreError>;

    /// Compare-and-swap on a setting: write `value` only if the stored
    /// version is `expected` (`None`: only if there is no such setting).
    /// `Ok(Some(version))` with the new version (1 for a new setting) if
    /// written, `Ok(None)` if the stored version differs (nothing written).
    /// Of concurrent writers with the same `expected`, exactly one wins.
    async fn put_setting(
        &self,
        name: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<Option<u64>, StoreError>;

    /// Excludes every other process on this store from first-start work
    /// (creating the CA hierarchy and the first admin key) until the
    /// returned lock is dropped: on PostgreSQL a session advisory lock,
    /// released also when the process dies. Stores one process owns
    /// (sled, memory) answer [`StoreLock::local`].
    async fn bootstrap_lock(&self) -> Result<StoreLock, StoreError> {
        Ok(StoreLock::local())
    }

    /// Takes or renews the lease `name` for `holder` until `now_ns + ttl_ns`
    /// (ns since the Unix epoch) if it is free, expired or already
    /// `holder`'s, atomically against every other caller (on PostgreSQL,
    /// every replica); see [`leases`]. `Ok(Some)` with the lease now held,
    /// `Ok(None)` if another holder's lease is live.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ns: i64,
        ttl_ns: i64,
    ) -> Result<Option<Lease>, StoreError>;

    /// Ends `holder`'s tenure of lease `name` at once; `Ok(false)` (nothing
    /// changes) if the lease is absent, already released or another's.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError>;

    /// The lease `name` as stored (live or not).
    async fn get_lease(&self, name: &str) -> Result<Option<Lease>, StoreError>;

    /// Forgets leases that expired (or were released) before `before_ns`;
    /// returns how many.
    async fn purge_leases(&self, before_ns: i64) -> Result<u64, StoreError>;

    /// Stores a signed CRL (see [`crls`]) unless a CRL of the same CA and
    /// part with a higher number is stored (a slow builder never replaces a
    /// newer CRL). `Ok(false)` if it was not written.
    async fn put_crl(&self, crl: &StoredCrl) -> Result<bool, StoreError>;

    /// The stored CRL of `ca_id` and `part`.
    async fn get_crl(&self, ca_id: &str, part: CrlPart) -> Result<Option<StoredCrl>, StoreError>;

    /// The CA's current CRL generation (0 before the first revocation) and
    /// the head of the stored CRL of `part`, without its bytes: what a
    /// reader checks on every fetch.
    async fn crl_head(
        &self,
        ca_id: &str,
        part: CrlPart,
    ) -> Result<(u64, Option<CrlHead>), StoreError>;

    /// Bumps the CA's CRL generation after a revocation is written, so that
    /// every stored CRL of the CA is rebuilt before it is served again;
    /// returns the new generation.
    async fn bump_crl_generation(&self, ca_id: &str) -> Result<u64, StoreError>;

    /// Stores (replaces) the OCSP responder of a CA (see [`ocsp_responders`]).
    async fn put_ocsp_responder(&self, record: &OcspResponderRecord) -> Result<(), StoreError>;

    /// The stored OCSP responder of `ca_id`.
    async fn get_ocsp_responder(
        &self,
        ca_id: &str,
    ) -> Result<Option<OcspResponderRecord>, StoreError>;
}

/// A new opaque id: 16 random bytes as unpadded base64url (22 characters,
/// `[A-Za-z0-9_-]`). The caller supplies the randomness.
pub fn new_id(random: [u8; 16]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    URL_SAFE_NO_PAD.encode(random)
}
