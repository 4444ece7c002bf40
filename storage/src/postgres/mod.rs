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

use std::future::Future;

use deadpool_postgres::Pool;
use time::OffsetDateTime;

use crate::approvals::{ApprovalRecord, ApprovalStatus};
use crate::audit::{AuditEntry, AuditEvent, AuditHead, AuditKeyRecord, AuditMacKey};
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
        let schema = options.schema.clone();
        store
            .run(move |p| async move { migrations::migrate(&p, schema.as_deref()).await })
            .await?;
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

    /// Runs one operation with a handle to the pool.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        f(self.pool.clone()).await
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        let account = account.clone();
        self.run(move |p| async move { accounts::create(&p, &account).await })
            .await
    }

    async fn get_account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { accounts::get(&p, &id).await })
            .await
    }

    async fn account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let thumbprint = thumbprint.to_owned();
        self.run(move |p| async move { accounts::by_thumbprint(&p, &thumbprint).await })
            .await
    }

    async fn update_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        let account = account.clone();
        self.run(move |p| async move { accounts::update(&p, &account).await })
            .await
    }

    async fn change_account_key(
        &self,
        account: &AccountRecord,
        old_thumbprint: &str,
    ) -> Result<(), StoreError> {
        let account = account.clone();
        let old_thumbprint = old_thumbprint.to_owned();
        self.run(move |p| async move { accounts::change_key(&p, &account, &old_thumbprint).await })
            .await
    }

    async fn put_order(&self, order: &OrderRecord) -> Result<(), StoreError> {
        let order = order.clone();
        self.run(move |p| async move { orders::put(&p, &order).await })
            .await
    }

    async fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { orders::get(&p, &id).await })
            .await
    }

    async fn list_orders(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let account_id = account_id.to_owned();
        let after = after.map(str::to_owned);
        self.run(
            move |p| async move { orders::list(&p, &account_id, after.as_deref(), limit).await },
        )
        .await
    }

    async fn transition_order(
        &self,
        order: &OrderRecord,
        expected: OrderStatus,
    ) -> Result<bool, StoreError> {
        let order = order.clone();
        self.run(move |p| async move { orders::transition(&p, &order, expected).await })
            .await
    }

    async fn put_authz(&self, authz: &AuthzRecord) -> Result<(), StoreError> {
        let authz = authz.clone();
        self.run(move |p| async move { authz::put(&p, &authz).await })
            .await
    }

    async fn transition_authz(
        &self,
        authz: &AuthzRecord,
        expected: AuthzStatus,
    ) -> Result<bool, StoreError> {
        let authz = authz.clone();
        self.run(move |p| async move { authz::transition(&p, &authz, expected).await })
            .await
    }

    async fn get_authz(&self, id: &str) -> Result<Option<AuthzRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { authz::get(&p, &id).await })
            .await
    }

    async fn find_reusable_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzRecord>, StoreError> {
        let account_id = account_id.to_owned();
        let identifier = identifier.clone();
        self.run(
            move |p| async move { authz::find_reusable(&p, &account_id, &identifier, now).await },
        )
        .await
    }

    async fn insert_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
        let cert = cert.clone();
        self.run(move |p| async move { certificates::insert(&p, &cert).await })
            .await
    }

    async fn get_certificate(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let serial_hex = serial_hex.to_owned();
        self.run(move |p| async move { certificates::get(&p, &serial_hex).await })
            .await
    }

    async fn certificate_status(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateStatus>, StoreError> {
        let serial_hex = serial_hex.to_owned();
        self.run(move |p| async move { certificates::status(&p, &serial_hex).await })
            .await
    }

    async fn update_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
        let cert = cert.clone();
        self.run(move |p| async move { certificates::update(&p, &cert).await })
            .await
    }

    async fn revoke_certificate(
        &self,
        serial_hex: &str,
        revocation: RevocationRecord,
    ) -> Result<(), StoreError> {
        let serial_hex = serial_hex.to_owned();
        self.run(move |p| async move { certificates::revoke(&p, &serial_hex, revocation).await })
            .await
    }

    async fn mark_replaced(&self, serial_hex: &str, order_id: &str) -> Result<(), StoreError> {
        let serial_hex = serial_hex.to_owned();
        let order_id = order_id.to_owned();
        self.run(
            move |p| async move { certificates::mark_replaced(&p, &serial_hex, &order_id).await },
        )
        .await
    }

    async fn revoked_certificates(
        &self,
        issuer_id: &str,
    ) -> Result<Vec<(String, RevocationRecord)>, StoreError> {
        let issuer_id = issuer_id.to_owned();
        self.run(move |p| async move { certificates::revoked(&p, &issuer_id).await })
            .await
    }

    async fn block_key(&self, public_key_sha256: &str) -> Result<(), StoreError> {
        let public_key_sha256 = public_key_sha256.to_owned();
        self.run(move |p| async move { certificates::block_key(&p, &public_key_sha256).await })
            .await
    }

    async fn is_key_blocked(&self, public_key_sha256: &str) -> Result<bool, StoreError> {
        let public_key_sha256 = public_key_sha256.to_owned();
        self.run(move |p| async move { certificates::is_key_blocked(&p, &public_key_sha256).await })
            .await
    }

    async fn put_ca(&self, ca: &CaRecord) -> Result<(), StoreError> {
        let ca = ca.clone();
        self.run(move |p| async move { cas::put(&p, &ca).await })
            .await
    }

    async fn get_ca(&self, id: &str) -> Result<Option<CaRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { cas::get(&p, &id).await })
            .await
    }

    async fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        self.run(move |p| async move { cas::list(&p).await }).await
    }

    async fn next_crl_number(&self, ca_id: &str) -> Result<u64, StoreError> {
        let ca_id = ca_id.to_owned();
        self.run(move |p| async move { cas::next_crl_number(&p, &ca_id).await })
            .await
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |p| async move { api_keys::create(&p, &key).await })
            .await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { api_keys::get(&p, &id).await })
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.run(move |p| async move { api_keys::list(&p).await })
            .await
    }

    async fn disable_api_key(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<ApiKeyRecord, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { api_keys::disable(&p, &id, at).await })
            .await
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry, StoreError> {
        let event = event.clone();
        let mac = self.audit_mac();
        self.run(move |p| async move { audit::append(&p, &event, mac.as_ref()).await })
            .await
    }

    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.run(move |p| async move { audit::entries(&p, after, limit).await })
            .await
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        self.run(move |p| async move { audit::head(&p).await })
            .await
    }

    fn set_audit_mac_key(&self, key: AuditMacKey) {
        *self
            .audit_mac
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
    }

    async fn create_audit_key(&self, record: &AuditKeyRecord) -> Result<bool, StoreError> {
        let record = record.clone();
        self.run(move |p| async move { audit::create_key(&p, &record).await })
            .await
    }

    async fn get_audit_key(&self, name: &str) -> Result<Option<AuditKeyRecord>, StoreError> {
        let name = name.to_owned();
        self.run(move |p| async move { audit::get_key(&p, &name).await })
            .await
    }

    /// A no-op: every method commits its transaction before it returns,
    /// and a PostgreSQL commit is durable (with the server's default
    /// `synchronous_commit = on`), so there is nothing left to sync.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn import_audit_entry(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.run(move |p| async move { export::import_audit_entry(&p, &entry).await })
            .await
    }

    async fn export_records(&self, sink: &mut ExportSink<'_>) -> Result<u64, StoreError> {
        export::export(&self.pool, sink).await
    }

    async fn count_records(&self) -> Result<u64, StoreError> {
        self.run(move |p| async move { export::count(&p).await })
            .await
    }

    async fn purge_expired(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<crate::Purged, StoreError> {
        self.run(move |p| async move { purge::purge_expired(&p, before, limit).await })
            .await
    }

    async fn count_pending(
        &self,
        account_id: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<crate::PendingCounts, StoreError> {
        let account_id = account_id.to_owned();
        self.run(move |p| async move { pending::count_pending(&p, &account_id, now, limit).await })
            .await
    }

    async fn rate_bucket(
        &self,
        key: &str,
        op: crate::BucketOp,
        gcra: crate::Gcra,
        now_ns: i64,
    ) -> Result<crate::Bucket, StoreError> {
        let key = key.to_owned();
        self.run(
            move |p| async move { rate_buckets::rate_bucket(&p, &key, op, gcra, now_ns).await },
        )
        .await
    }

    async fn purge_rate_buckets(&self, now_ns: i64) -> Result<u64, StoreError> {
        self.run(move |p| async move { rate_buckets::purge_rate_buckets(&p, now_ns).await })
            .await
    }

    async fn redeem_nonce(&self, id: u128, expires: u64) -> Result<bool, StoreError> {
        self.run(move |p| async move { nonces::redeem_nonce(&p, id, expires).await })
            .await
    }

    async fn purge_nonces(&self, now: u64) -> Result<u64, StoreError> {
        self.run(move |p| async move { nonces::purge_nonces(&p, now).await })
            .await
    }

    async fn set_crl_number(&self, ca_id: &str, last: u64) -> Result<(), StoreError> {
        let ca_id = ca_id.to_owned();
        self.run(move |p| async move { export::set_crl_number(&p, &ca_id, last).await })
            .await
    }

    async fn record_issuance(&self, write: &IssuanceWrite) -> Result<AuditEntry, StoreError> {
        let write = write.clone();
        let mac = self.audit_mac();
        self.run(move |p| async move { issuance::record(&p, &write, mac.as_ref()).await })
            .await
    }

    async fn create_account_bound(
        &self,
        account: &AccountRecord,
        eab_kid: &str,
    ) -> Result<(), StoreError> {
        let account = account.clone();
        let eab_kid = eab_kid.to_owned();
        self.run(move |p| async move { accounts::create_bound(&p, &account, &eab_kid).await })
            .await
    }

    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        self.run(move |p| async move { tenancy::create_tenant(&p, &tenant).await })
            .await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { tenancy::get_tenant(&p, &id).await })
            .await
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        self.run(move |p| async move { tenancy::list_tenants(&p).await })
            .await
    }

    async fn disable_tenant(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<TenantRecord, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { tenancy::disable_tenant(&p, &id, at).await })
            .await
    }

    async fn create_eab_key(&self, key: &EabKeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |p| async move { tenancy::create_eab_key(&p, &key).await })
            .await
    }

    async fn get_eab_key(&self, kid: &str) -> Result<Option<EabKeyRecord>, StoreError> {
        let kid = kid.to_owned();
        self.run(move |p| async move { tenancy::get_eab_key(&p, &kid).await })
            .await
    }

    async fn list_eab_keys(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<EabKeyRecord>, StoreError> {
        let tenant_id = tenant_id.map(str::to_owned);
        self.run(move |p| async move { tenancy::list_eab_keys(&p, tenant_id.as_deref()).await })
            .await
    }

    async fn disable_eab_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
    ) -> Result<EabKeyRecord, StoreError> {
        let kid = kid.to_owned();
        self.run(move |p| async move { tenancy::disable_eab_key(&p, &kid, at).await })
            .await
    }

    async fn create_est_user(&self, user: &EstUserRecord) -> Result<(), StoreError> {
        let user = user.clone();
        self.run(move |p| async move { est_users::create(&p, &user).await })
            .await
    }

    async fn get_est_user(&self, username: &str) -> Result<Option<EstUserRecord>, StoreError> {
        let username = username.to_owned();
        self.run(move |p| async move { est_users::get(&p, &username).await })
            .await
    }

    async fn list_est_users(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<EstUserRecord>, StoreError> {
        let tenant_id = tenant_id.map(str::to_owned);
        self.run(move |p| async move { est_users::list(&p, tenant_id.as_deref()).await })
            .await
    }

    async fn disable_est_user(
        &self,
        username: &str,
        at: OffsetDateTime,
    ) -> Result<EstUserRecord, StoreError> {
        let username = username.to_owned();
        self.run(move |p| async move { est_users::disable(&p, &username, at).await })
            .await
    }

    async fn create_approval(&self, approval: &ApprovalRecord) -> Result<(), StoreError> {
        let approval = approval.clone();
        self.run(move |p| async move { approvals::create(&p, &approval).await })
            .await
    }

    async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { approvals::get(&p, &id).await })
            .await
    }

    async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.run(move |p| async move { approvals::list(&p, status).await })
            .await
    }

    async fn update_approval(
        &self,
        approval: &ApprovalRecord,
        expected: ApprovalStatus,
    ) -> Result<bool, StoreError> {
        let approval = approval.clone();
        self.run(move |p| async move { approvals::update(&p, &approval, expected).await })
            .await
    }

    async fn get_scep_transaction(
        &self,
        id: &str,
    ) -> Result<Option<ScepTransactionRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |p| async move { scep::get(&p, &id).await })
            .await
    }

    async fn put_scep_transaction(
        &self,
        record: &ScepTransactionRecord,
        expected: Option<&ScepTransactionRecord>,
    ) -> Result<bool, StoreError> {
        let record = record.clone();
        let expected = expected.cloned();
        self.run(move |p| async move { scep::put(&p, &record, expected.as_ref()).await })
            .await
    }

    async fn delete_scep_transaction(
        &self,
        expected: &ScepTransactionRecord,
    ) -> Result<bool, StoreError> {
        let expected = expected.clone();
        self.run(move |p| async move { scep::delete(&p, &expected).await })
            .await
    }

    async fn create_scep_challenge(
        &self,
        challenge: &ScepChallengeRecord,
    ) -> Result<(), StoreError> {
        let challenge = challenge.clone();
        self.run(move |p| async move { scep_challenges::create(&p, &challenge).await })
            .await
    }

    async fn get_scep_challenge(
        &self,
        hash: &str,
    ) -> Result<Option<ScepChallengeRecord>, StoreError> {
        let hash = hash.to_owned();
        self.run(move |p| async move { scep_challenges::get(&p, &hash).await })
            .await
    }

    async fn list_scep_challenges(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<ScepChallengeRecord>, StoreError> {
        let tenant_id = tenant_id.map(str::to_owned);
        self.run(move |p| async move { scep_challenges::list(&p, tenant_id.as_deref()).await })
            .await
    }

    async fn redeem_scep_challenge(
        &self,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<Option<ScepChallengeRecord>, StoreError> {
        let hash = hash.to_owned();
        self.run(move |p| async move { scep_challenges::redeem(&p, &hash, at).await })
            .await
    }

    async fn remove_scep_challenge(&self, hash: &str) -> Result<bool, StoreError> {
        let hash = hash.to_owned();
        self.run(move |p| async move { scep_challenges::remove(&p, &hash).await })
            .await
    }

    async fn scep_transactions_before(
        &self,
        before: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ScepTransactionRecord>, StoreError> {
        let after = after.map(str::to_string);
        self.run(move |p| async move { scep::before(&p, before, after.as_deref(), limit).await })
            .await
    }

    async fn change_generations(&self) -> Result<Generations, StoreError> {
        self.run(move |p| async move { settings::generations(&p).await })
            .await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<SettingRecord>, StoreError> {
        let name = name.to_owned();
        self.run(move |p| async move { settings::get(&p, &name).await })
            .await
    }

    async fn put_setting(
        &self,
        name: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<Option<u64>, StoreError> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.run(move |p| async move { settings::put(&p, &name, &value, expected).await })
            .await
    }

    async fn bootstrap_lock(&self) -> Result<StoreLock, StoreError> {
        let client = self
            .run(move |p| async move { settings::bootstrap_lock(&p).await })
            .await?;
        Ok(StoreLock::holding(Box::new(client)))
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ns: i64,
        ttl_ns: i64,
    ) -> Result<Option<crate::Lease>, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |p| async move { leases::acquire(&p, &name, &holder, now_ns, ttl_ns).await })
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |p| async move { leases::release(&p, &name, &holder).await })
            .await
    }

    async fn get_lease(&self, name: &str) -> Result<Option<crate::Lease>, StoreError> {
        let name = name.to_owned();
        self.run(move |p| async move { leases::get(&p, &name).await })
            .await
    }

    async fn purge_leases(&self, before_ns: i64) -> Result<u64, StoreError> {
        self.run(move |p| async move { leases::purge(&p, before_ns).await })
            .await
    }

    async fn put_crl(&self, crl: &crate::StoredCrl) -> Result<bool, StoreError> {
        let crl = crl.clone();
        self.run(move |p| async move { crls::put(&p, &crl).await })
            .await
    }

    async fn get_crl(
        &self,
        ca_id: &str,
        part: crate::CrlPart,
    ) -> Result<Option<crate::StoredCrl>, StoreError> {
        let ca_id = ca_id.to_owned();
        self.run(move |p| async move { crls::get(&p, &ca_id, part).await })
            .await
    }

    async fn crl_head(
        &self,
        ca_id: &str,
        part: crate::CrlPart,
    ) -> Result<(u64, Option<crate::CrlHead>), StoreError> {
        let ca_id = ca_id.to_owned();
        self.run(move |p| async move { crls::head(&p, &ca_id, part).await })
            .await
    }

    async fn bump_crl_generation(&self, ca_id: &str) -> Result<u64, StoreError> {
        let ca_id = ca_id.to_owned();
        self.run(move |p| async move { crls::bump_generation(&p, &ca_id).await })
            .await
    }

    async fn put_ocsp_responder(
        &self,
        record: &crate::OcspResponderRecord,
    ) -> Result<(), StoreError> {
        let record = record.clone();
        self.run(move |p| async move { crls::put_responder(&p, &record).await })
            .await
    }

    async fn get_ocsp_responder(
        &self,
        ca_id: &str,
    ) -> Result<Option<crate::OcspResponderRecord>, StoreError> {
        let ca_id = ca_id.to_owned();
        self.run(move |p| async move { crls::get_responder(&p, &ca_id).await })
            .await
    }
}
