//! [`PgStore`]: the PostgreSQL backend (issue 11, phase 1).
//!
//! # Layout
//!
//! Plain SQL (`migrations/`), one table per record kind. Each record is
//! its JSON document (the same serde JSON sled stores) in a `doc` column;
//! what uniqueness and lookups need is repeated in real columns with
//! constraints and indexes (account thumbprint, order account and creation
//! time, authorization identifier, certificate issuer and revoked flag,
//! approval status, ...). Migrations are embedded in the binary and applied
//! at open under an advisory lock ([`migrations`]).
//!
//! # Atomicity and durability
//!
//! Every method is one transaction (or one statement). The checks-and-writes
//! the [`Store`] trait documents as linearizable lock the rows they check
//! (`SELECT … FOR UPDATE`, re-read after a concurrent commit under READ
//! COMMITTED), rely on a unique constraint (`ON CONFLICT`, unique
//! violations), or are single statements (`next_crl_number` is one
//! `INSERT … ON CONFLICT DO UPDATE … RETURNING`). Audit appends lock the
//! one-row head, so the chain is serialised across connections and
//! processes. A commit is durable, so [`Store::flush`] is a no-op.
//!
//! # Shared by replicas
//!
//! Besides the records: nonces, rate buckets, settings (issuing-CA pin,
//! SCEP RA), change generations that replicas poll (`settings.rs`),
//! leases (processing, CRL and OCSP-responder holders; `leases.rs`), and
//! the stored CRLs and responders (`crls.rs`). What still lives in each
//! process is listed in docs/storage-postgres.md.

mod accounts;
mod api_keys;
mod approvals;
mod audit;
mod authz;
mod cas;
mod certificates;
mod crls;
mod domain_writes;
mod est_users;
mod export;
mod issuance;
mod leases;
mod migrations;
mod nonces;
mod orders;
mod pending;
mod pool;
mod purge;
mod rate_buckets;
mod scep;
mod scep_challenges;
mod settings;
mod sql;
mod tenancy;

use deadpool_postgres::Pool;
use time::OffsetDateTime;

use crate::approvals::{ApprovalRecord, ApprovalStatus};
use crate::audit::{AuditEntry, AuditEvent, AuditHead, AuditKeyRecord, AuditMacKey};
use crate::domain_writes::{CaWrite, RevocationWrite};
use crate::est_users::EstUserRecord;
use crate::export::ExportSink;
use crate::generations::Generations;
use crate::issuance::IssuanceWrite;
use crate::records::{
    AccountRecord, ApiKeyRecord, AuthzRecord, CaRecord, CertificateRecord, CertificateStatus,
    OrderRecord, RevocationRecord,
};
use crate::scep::ScepTransactionRecord;
use crate::scep_challenges::ScepChallengeRecord;
use crate::settings::SettingRecord;
use crate::tenancy::{EabKeyRecord, TenantRecord};
use crate::types::{AuthzStatus, Identifier, OrderStatus};
use crate::{Store, StoreError, StoreLock};

pub use pool::PgOptions;

/// The default number of pooled connections.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// A [`Store`] on PostgreSQL. Cheap to share behind an `Arc`; several
/// handles (in one process or many) may use one database at once.
pub struct PgStore {
    pool: Pool,
    /// The MAC key of new audit entries (see [`Store::set_audit_mac_key`]).
    audit_mac: std::sync::RwLock<Option<AuditMacKey>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, applies the missing migrations and returns the store.
    /// Fails if the database is unreachable or its schema is newer than
    /// this binary.
    pub async fn open(options: &PgOptions) -> Result<PgStore, StoreError> {
        let pool = pool::build(options)?;
        let store = PgStore {
            pool,
            audit_mac: std::sync::RwLock::new(None),
        };
        migrations::migrate(&store.pool, options.schema.as_deref()).await?;
        Ok(store)
    }

    /// The schema version this binary writes.
    pub fn schema_version() -> i32 {
        migrations::latest()
    }

    /// The MAC key of new audit entries, if set.
    fn audit_mac(&self) -> Option<AuditMacKey> {
        self.audit_mac
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        accounts::create(&self.pool, account).await
    }

    async fn get_account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError> {
        accounts::get(&self.pool, id).await
    }

    async fn account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        accounts::by_thumbprint(&self.pool, thumbprint).await
    }

    async fn update_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        accounts::update(&self.pool, account).await
    }

    async fn change_account_key(
        &self,
        account: &AccountRecord,
        old_thumbprint: &str,
    ) -> Result<(), StoreError> {
        accounts::change_key(&self.pool, account, old_thumbprint).await
    }

    async fn put_order(&self, order: &OrderRecord) -> Result<(), StoreError> {
        orders::put(&self.pool, order).await
    }

    async fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        orders::get(&self.pool, id).await
    }

    async fn list_orders(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        orders::list(&self.pool, account_id, after, limit).await
    }

    async fn transition_order(
        &self,
        order: &OrderRecord,
        expected: OrderStatus,
    ) -> Result<bool, StoreError> {
        orders::transition(&self.pool, order, expected).await
    }

    async fn put_authz(&self, authz: &AuthzRecord) -> Result<(), StoreError> {
        authz::put(&self.pool, authz).await
    }

    async fn transition_authz(
        &self,
        authz: &AuthzRecord,
        expected: AuthzStatus,
    ) -> Result<bool, StoreError> {
        authz::transition(&self.pool, authz, expected).await
    }

    async fn get_authz(&self, id: &str) -> Result<Option<AuthzRecord>, StoreError> {
        authz::get(&self.pool, id).await
    }

    async fn find_reusable_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzRecord>, StoreError> {
        authz::find_reusable(&self.pool, account_id, identifier, now).await
    }

    async fn insert_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
        certificates::insert(&self.pool, cert).await
    }

    async fn get_certificate(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        certificates::get(&self.pool, serial_hex).await
    }

    async fn certificate_status(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateStatus>, StoreError> {
        certificates::status(&self.pool, serial_hex).await
    }

    async fn update_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
        certificates::update(&self.pool, cert).await
    }

    async fn revoke_certificate(
        &self,
        serial_hex: &str,
        revocation: RevocationRecord,
    ) -> Result<(), StoreError> {
        certificates::revoke(&self.pool, serial_hex, revocation).await
    }

    async fn mark_replaced(&self, serial_hex: &str, order_id: &str) -> Result<(), StoreError> {
        certificates::mark_replaced(&self.pool, serial_hex, order_id).await
    }

    async fn revoked_certificates(
        &self,
        issuer_id: &str,
    ) -> Result<Vec<(String, RevocationRecord)>, StoreError> {
        certificates::revoked(&self.pool, issuer_id).await
    }

    async fn block_key(&self, public_key_sha256: &str) -> Result<(), StoreError> {
        certificates::block_key(&self.pool, public_key_sha256).await
    }

    async fn is_key_blocked(&self, public_key_sha256: &str) -> Result<bool, StoreError> {
        certificates::is_key_blocked(&self.pool, public_key_sha256).await
    }

    async fn put_ca(&self, ca: &CaRecord) -> Result<(), StoreError> {
        cas::put(&self.pool, ca).await
    }

    async fn get_ca(&self, id: &str) -> Result<Option<CaRecord>, StoreError> {
        cas::get(&self.pool, id).await
    }

    async fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        cas::list(&self.pool).await
    }

    async fn next_crl_number(&self, ca_id: &str) -> Result<u64, StoreError> {
        cas::next_crl_number(&self.pool, ca_id).await
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        api_keys::create(&self.pool, key).await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        api_keys::get(&self.pool, id).await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        api_keys::list(&self.pool).await
    }

    async fn disable_api_key(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<ApiKeyRecord, StoreError> {
        api_keys::disable(&self.pool, id, at).await
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry, StoreError> {
        let mac = self.audit_mac();
        audit::append(&self.pool, event, mac.as_ref()).await
    }

    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        audit::entries(&self.pool, after, limit).await
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        audit::head(&self.pool).await
    }

    fn set_audit_mac_key(&self, key: AuditMacKey) {
        *self
            .audit_mac
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
    }

    async fn create_audit_key(&self, record: &AuditKeyRecord) -> Result<bool, StoreError> {
        audit::create_key(&self.pool, record).await
    }

    async fn get_audit_key(&self, name: &str) -> Result<Option<AuditKeyRecord>, StoreError> {
        audit::get_key(&self.pool, name).await
    }

    /// Every method commits before it returns: see [`PgStore::flush`].
    fn commits_are_durable(&self) -> bool {
        true
    }

    /// A no-op: every method commits its transaction before it returns,
    /// and a PostgreSQL commit is durable (with the server's default
    /// `synchronous_commit = on`), so there is nothing left to sync.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn import_audit_entry(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        export::import_audit_entry(&self.pool, entry).await
    }

    async fn export_records(&self, sink: &mut ExportSink<'_>) -> Result<u64, StoreError> {
        export::export(&self.pool, sink).await
    }

    async fn count_records(&self) -> Result<u64, StoreError> {
        export::count(&self.pool).await
    }

    async fn purge_expired(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<crate::Purged, StoreError> {
        purge::purge_expired(&self.pool, before, limit).await
    }

    async fn count_pending(
        &self,
        account_id: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<crate::PendingCounts, StoreError> {
        pending::count_pending(&self.pool, account_id, now, limit).await
    }

    async fn rate_bucket(
        &self,
        key: &str,
        op: crate::BucketOp,
        gcra: crate::Gcra,
        now_ns: i64,
    ) -> Result<crate::Bucket, StoreError> {
        rate_buckets::rate_bucket(&self.pool, key, op, gcra, now_ns).await
    }

    async fn purge_rate_buckets(&self, now_ns: i64) -> Result<u64, StoreError> {
        rate_buckets::purge_rate_buckets(&self.pool, now_ns).await
    }

    async fn redeem_nonce(&self, id: u128, expires: u64) -> Result<bool, StoreError> {
        nonces::redeem_nonce(&self.pool, id, expires).await
    }

    async fn redeem_nonce_reading_account(
        &self,
        id: u128,
        expires: u64,
        account_id: &str,
    ) -> Result<(bool, Option<AccountRecord>), StoreError> {
        nonces::redeem_nonce_reading_account(&self.pool, id, expires, account_id).await
    }

    async fn purge_nonces(&self, now: u64) -> Result<u64, StoreError> {
        nonces::purge_nonces(&self.pool, now).await
    }

    async fn set_crl_number(&self, ca_id: &str, last: u64) -> Result<(), StoreError> {
        export::set_crl_number(&self.pool, ca_id, last).await
    }

    async fn record_revocation(&self, write: &RevocationWrite) -> Result<AuditEntry, StoreError> {
        domain_writes::record_revocation(&self.pool, write, self.audit_mac().as_ref()).await
    }

    async fn record_ca_change(&self, write: &CaWrite) -> Result<AuditEntry, StoreError> {
        domain_writes::record_ca_change(&self.pool, write, self.audit_mac().as_ref()).await
    }

    async fn record_issuance(&self, write: &IssuanceWrite) -> Result<AuditEntry, StoreError> {
        let mac = self.audit_mac();
        issuance::record(&self.pool, write, mac.as_ref()).await
    }

    async fn create_account_bound(
        &self,
        account: &AccountRecord,
        eab_kid: &str,
    ) -> Result<(), StoreError> {
        accounts::create_bound(&self.pool, account, eab_kid).await
    }

    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        tenancy::create_tenant(&self.pool, tenant).await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        tenancy::get_tenant(&self.pool, id).await
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        tenancy::list_tenants(&self.pool).await
    }

    async fn disable_tenant(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<TenantRecord, StoreError> {
        tenancy::disable_tenant(&self.pool, id, at).await
    }

    async fn create_eab_key(&self, key: &EabKeyRecord) -> Result<(), StoreError> {
        tenancy::create_eab_key(&self.pool, key).await
    }

    async fn get_eab_key(&self, kid: &str) -> Result<Option<EabKeyRecord>, StoreError> {
        tenancy::get_eab_key(&self.pool, kid).await
    }

    async fn list_eab_keys(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<EabKeyRecord>, StoreError> {
        tenancy::list_eab_keys(&self.pool, tenant_id).await
    }

    async fn disable_eab_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
    ) -> Result<EabKeyRecord, StoreError> {
        tenancy::disable_eab_key(&self.pool, kid, at).await
    }

    async fn create_est_user(&self, user: &EstUserRecord) -> Result<(), StoreError> {
        est_users::create(&self.pool, user).await
    }

    async fn get_est_user(&self, username: &str) -> Result<Option<EstUserRecord>, StoreError> {
        est_users::get(&self.pool, username).await
    }

    async fn list_est_users(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<EstUserRecord>, StoreError> {
        est_users::list(&self.pool, tenant_id).await
    }

    async fn disable_est_user(
        &self,
        username: &str,
        at: OffsetDateTime,
    ) -> Result<EstUserRecord, StoreError> {
        est_users::disable(&self.pool, username, at).await
    }

    async fn create_approval(&self, approval: &ApprovalRecord) -> Result<(), StoreError> {
        approvals::create(&self.pool, approval).await
    }

    async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        approvals::get(&self.pool, id).await
    }

    async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        approvals::list(&self.pool, status).await
    }

    async fn update_approval(
        &self,
        approval: &ApprovalRecord,
        expected: ApprovalStatus,
    ) -> Result<bool, StoreError> {
        approvals::update(&self.pool, approval, expected).await
    }

    async fn get_scep_transaction(
        &self,
        id: &str,
    ) -> Result<Option<ScepTransactionRecord>, StoreError> {
        scep::get(&self.pool, id).await
    }

    async fn put_scep_transaction(
        &self,
        record: &ScepTransactionRecord,
        expected: Option<&ScepTransactionRecord>,
    ) -> Result<bool, StoreError> {
        scep::put(&self.pool, record, expected).await
    }

    async fn delete_scep_transaction(
        &self,
        expected: &ScepTransactionRecord,
    ) -> Result<bool, StoreError> {
        scep::delete(&self.pool, expected).await
    }

    async fn create_scep_challenge(
        &self,
        challenge: &ScepChallengeRecord,
    ) -> Result<(), StoreError> {
        scep_challenges::create(&self.pool, challenge).await
    }

    async fn get_scep_challenge(
        &self,
        hash: &str,
    ) -> Result<Option<ScepChallengeRecord>, StoreError> {
        scep_challenges::get(&self.pool, hash).await
    }

    async fn list_scep_challenges(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<ScepChallengeRecord>, StoreError> {
        scep_challenges::list(&self.pool, tenant_id).await
    }

    async fn redeem_scep_challenge(
        &self,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<Option<ScepChallengeRecord>, StoreError> {
        scep_challenges::redeem(&self.pool, hash, at).await
    }

    async fn remove_scep_challenge(&self, hash: &str) -> Result<bool, StoreError> {
        scep_challenges::remove(&self.pool, hash).await
    }

    async fn scep_transactions_before(
        &self,
        before: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ScepTransactionRecord>, StoreError> {
        scep::before(&self.pool, before, after, limit).await
    }

    async fn change_generations(&self) -> Result<Generations, StoreError> {
        settings::generations(&self.pool).await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<SettingRecord>, StoreError> {
        settings::get(&self.pool, name).await
    }

    async fn put_setting(
        &self,
        name: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<Option<u64>, StoreError> {
        settings::put(&self.pool, name, value, expected).await
    }

    async fn bootstrap_lock(&self) -> Result<StoreLock, StoreError> {
        let client = settings::bootstrap_lock(&self.pool).await?;
        Ok(StoreLock::holding(Box::new(client)))
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ns: i64,
        ttl_ns: i64,
    ) -> Result<Option<crate::Lease>, StoreError> {
        leases::acquire(&self.pool, name, holder, now_ns, ttl_ns).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        leases::release(&self.pool, name, holder).await
    }

    async fn get_lease(&self, name: &str) -> Result<Option<crate::Lease>, StoreError> {
        leases::get(&self.pool, name).await
    }

    async fn purge_leases(&self, before_ns: i64) -> Result<u64, StoreError> {
        leases::purge(&self.pool, before_ns).await
    }

    async fn put_crl(&self, crl: &crate::StoredCrl) -> Result<bool, StoreError> {
        crls::put(&self.pool, crl).await
    }

    async fn get_crl(
        &self,
        ca_id: &str,
        part: crate::CrlPart,
    ) -> Result<Option<crate::StoredCrl>, StoreError> {
        crls::get(&self.pool, ca_id, part).await
    }

    async fn crl_head(
        &self,
        ca_id: &str,
        part: crate::CrlPart,
    ) -> Result<(u64, Option<crate::CrlHead>), StoreError> {
        crls::head(&self.pool, ca_id, part).await
    }

    async fn bump_crl_generation(&self, ca_id: &str) -> Result<u64, StoreError> {
        crls::bump_generation(&self.pool, ca_id).await
    }

    async fn put_ocsp_responder(
        &self,
        record: &crate::OcspResponderRecord,
    ) -> Result<(), StoreError> {
        crls::put_responder(&self.pool, record).await
    }

    async fn get_ocsp_responder(
        &self,
        ca_id: &str,
    ) -> Result<Option<crate::OcspResponderRecord>, StoreError> {
        crls::get_responder(&self.pool, ca_id).await
    }
}
