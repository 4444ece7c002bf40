//! [`MemoryStore`]: every record in maps behind one mutex. For tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

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
use crate::pending::{self, PendingCounts};
use crate::purge::{self, Purged};
use crate::rate_buckets::{self, Bucket, BucketOp, Gcra};
use crate::records::ApiRole;
use crate::records::{
    AccountRecord, ApiKeyRecord, AuthzRecord, CaRecord, CertificateRecord, OrderRecord,
    RevocationRecord,
};
use crate::scep::ScepTransactionRecord;
use crate::scep_challenges::ScepChallengeRecord;
use crate::settings::{NamedSetting, SettingRecord};
use crate::tenancy::{EabKeyRecord, TenantRecord};
use crate::types::{AccountStatus, AuthzStatus, Identifier, OrderStatus};
use crate::{Store, StoreError};

#[derive(Default)]
struct Inner {
    accounts: HashMap<String, AccountRecord>,
    thumbprints: HashMap<String, String>,
    orders: HashMap<String, OrderRecord>,
    orders_by_account: BTreeMap<Vec<u8>, String>,
    authzs: HashMap<String, AuthzRecord>,
    authz_by_identifier: BTreeMap<Vec<u8>, String>,
    certs: HashMap<String, CertificateRecord>,
    revoked: BTreeMap<Vec<u8>, (String, RevocationRecord)>,
    blocked_keys: HashSet<String>,
    cas: HashMap<String, CaRecord>,
    crl_numbers: HashMap<String, u64>,
    api_keys: HashMap<String, ApiKeyRecord>,
    audit: Vec<AuditEntry>,
    audit_keys: BTreeMap<String, AuditKeyRecord>,
    used_nonces: HashMap<u128, u64>,
    rate_buckets: HashMap<String, i64>,
    audit_mac: Option<AuditMacKey>,
    tenants: BTreeMap<String, TenantRecord>,
    eab_keys: BTreeMap<String, EabKeyRecord>,
    approvals: HashMap<String, ApprovalRecord>,
    scep_transactions: HashMap<String, ScepTransactionRecord>,
    est_users: BTreeMap<String, EstUserRecord>,
    scep_challenges: BTreeMap<String, ScepChallengeRecord>,
    settings: BTreeMap<String, SettingRecord>,
    leases: HashMap<String, Lease>,
    crls: HashMap<(String, CrlPart), StoredCrl>,
    crl_generations: HashMap<String, u64>,
    ocsp_responders: HashMap<String, OcspResponderRecord>,
}

impl Inner {
    fn index_revocation(&mut self, stored: Option<&CertificateRecord>, cert: &CertificateRecord) {
        if let Some(old) = stored {
            self.revoked.remove(&keys::revoked_key(old));
        }
        if let Some(rev) = cert.revocation {
            self.revoked.insert(
                keys::revoked_key(cert),
                (keys::serial_key(&cert.serial), rev),
            );
        }
    }
}

/// Replaces `record` under `id` and its entry in `index`. With `admits`,
/// only if a record is stored (else `NotFound`) and passes it (else
/// `Ok(false)`, nothing written): the status compare-and-swap of
/// `transition_order` / `transition_authz`.
fn write_indexed<T: Clone>(
    records: &mut HashMap<String, T>,
    index: &mut BTreeMap<Vec<u8>, String>,
    id: &str,
    record: &T,
    index_key: fn(&T) -> Vec<u8>,
    admits: Option<&dyn Fn(&T) -> bool>,
) -> Result<bool, StoreError> {
    match (records.get(id), admits) {
        (None, Some(_)) => return Err(StoreError::NotFound),
        (Some(stored), Some(ok)) if !ok(stored) => return Ok(false),
        _ => {}
    }
    if let Some(old) = records.get(id) {
        index.remove(&index_key(old));
    }
    index.insert(index_key(record), id.to_string());
    records.insert(id.to_string(), record.clone());
    Ok(true)
}

/// Removes up to `limit` records (lowest ids first) that `purgeable`
/// admits, with their `index` entries; returns how many.
fn purge_map<T>(
    records: &mut HashMap<String, T>,
    index: &mut BTreeMap<Vec<u8>, String>,
    index_key: fn(&T) -> Vec<u8>,
    purgeable: impl Fn(&T) -> bool,
    limit: usize,
) -> u64 {
    let mut ids: Vec<String> = records
        .iter()
        .filter(|(_, r)| purgeable(r))
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids.truncate(limit);
    for id in &ids {
        if let Some(r) = records.remove(id) {
            index.remove(&index_key(&r));
        }
    }
    ids.len() as u64
}

/// The values of a map in key order (exports are deterministic).
fn by_key<V: Clone>(map: &HashMap<String, V>) -> Vec<V> {
    let mut entries: Vec<(&String, &V)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.into_iter().map(|(_, v)| v.clone()).collect()
}

/// A [`Store`] in memory: one `Mutex` around plain maps, so every method is
/// trivially atomic. Nothing survives the process; `flush` is a no-op.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    generations: Counters,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied write:
        // each method checks before it mutates. Keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    fn check_new_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        if self.thumbprints.contains_key(&account.thumbprint) {
            return Err(StoreError::Conflict("account key already in use".into()));
        }
        if self.accounts.contains_key(&account.id) {
            return Err(StoreError::Conflict("account id exists".into()));
        }
        Ok(())
    }

    fn insert_account(&mut self, account: &AccountRecord) {
        self.thumbprints
            .insert(account.thumbprint.clone(), account.id.clone());
        self.accounts.insert(account.id.clone(), account.clone());
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.check_new_account(account)?;
        g.insert_account(account);
        Ok(())
    }

    async fn get_account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.lock().accounts.get(id).cloned())
    }

    async fn account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let g = self.lock();
        Ok(g.thumbprints
            .get(thumbprint)
            .and_then(|id| g.accounts.get(id))
            .cloned())
    }

    async fn update_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        let stored = g.accounts.get(&account.id).ok_or(StoreError::NotFound)?;
        if stored.thumbprint != account.thumbprint {
            return Err(StoreError::Conflict(
                "thumbprint differs; use change_account_key".into(),
            ));
        }
        if stored.status != AccountStatus::Valid && account.status != stored.status {
            return Err(StoreError::AccountNotValid);
        }
        g.accounts.insert(account.id.clone(), account.clone());
        Ok(())
    }

    async fn change_account_key(
        &self,
        account: &AccountRecord,
        old_thumbprint: &str,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        let stored = g.accounts.get(&account.id).ok_or(StoreError::NotFound)?;
        if stored.thumbprint != old_thumbprint {
            return Err(StoreError::Conflict("account key changed meanwhile".into()));
        }
        if stored.status != AccountStatus::Valid {
            return Err(StoreError::AccountNotValid);
        }
        if g.thumbprints.contains_key(&account.thumbprint) {
            return Err(StoreError::Conflict("new key already in use".into()));
        }
        g.thumbprints.remove(old_thumbprint);
        g.thumbprints
            .insert(account.thumbprint.clone(), account.id.clone());
        g.accounts.insert(account.id.clone(), account.clone());
        Ok(())
    }

    async fn put_order(&self, order: &OrderRecord) -> Result<(), StoreError> {
        let g = &mut *self.lock();
        let index = &mut g.orders_by_account;
        write_indexed(
            &mut g.orders,
            index,
            &order.id,
            order,
            keys::order_key,
            None,
        )?;
        Ok(())
    }

    async fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        Ok(self.lock().orders.get(id).cloned())
    }

    async fn list_orders(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let g = self.lock();
        let prefix = keys::order_prefix(account_id);
        let start = match after {
            None => Bound::Included(prefix.clone()),
            Some(cursor) => match g.orders.get(cursor) {
                Some(o) if o.account_id == account_id => Bound::Excluded(keys::order_key(o)),
                _ => return Err(StoreError::NotFound),
            },
        };
        Ok(g.orders_by_account
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn transition_order(
        &self,
        order: &OrderRecord,
        expected: OrderStatus,
    ) -> Result<bool, StoreError> {
        let g = &mut *self.lock();
        let index = &mut g.orders_by_account;
        let admits = |stored: &OrderRecord| stored.status == expected;
        write_indexed(
            &mut g.orders,
            index,
            &order.id,
            order,
            keys::order_key,
            Some(&admits),
        )
    }

    async fn put_authz(&self, authz: &AuthzRecord) -> Result<(), StoreError> {
        let g = &mut *self.lock();
        let index = &mut g.authz_by_identifier;
        write_indexed(
            &mut g.authzs,
            index,
            &authz.id,
            authz,
            keys::authz_key,
            None,
        )?;
        Ok(())
    }

    async fn transition_authz(
        &self,
        authz: &AuthzRecord,
        expected: AuthzStatus,
    ) -> Result<bool, StoreError> {
        let g = &mut *self.lock();
        let index = &mut g.authz_by_identifier;
        let admits = |stored: &AuthzRecord| stored.status == expected;
        write_indexed(
            &mut g.authzs,
            index,
            &authz.id,
            authz,
            keys::authz_key,
            Some(&admits),
        )
    }

    async fn get_authz(&self, id: &str) -> Result<Option<AuthzRecord>, StoreError> {
        Ok(self.lock().authzs.get(id).cloned())
    }

    async fn find_reusable_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzRecord>, StoreError> {
        let g = self.lock();
        let prefix = keys::authz_query_prefix(account_id, identifier);
        let mut best = None;
        for (_, id) in g
            .authz_by_identifier
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            if let Some(a) = g.authzs.get(id) {
                if keys::reusable(a, now) {
                    best = Some(keys::better(best, a.clone()));
                }
            }
        }
        Ok(best)
    }

    async fn insert_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        let serial = keys::serial_key(&cert.serial);
        if g.certs.contains_key(&serial) {
            return Err(StoreError::DuplicateSerial);
        }
        let mut cert = cert.clone();
        cert.serial.clone_from(&serial);
        g.index_revocation(None, &cert);
        if cert.revocation.is_some() {
            self.generations.bump(ChangeKind::Revocations);
        }
        g.certs.insert(serial, cert);
        Ok(())
    }

    async fn get_certificate(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        Ok(self
            .lock()
            .certs
            .get(&keys::serial_key(serial_hex))
            .cloned())
    }

    async fn update_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        let serial = keys::serial_key(&cert.serial);
        let stored = g.certs.get(&serial).cloned().ok_or(StoreError::NotFound)?;
        let merged = keys::merge_certificate(&stored, cert);
        g.index_revocation(Some(&stored), &merged);
        if stored.revocation.is_none() && merged.revocation.is_some() {
            self.generations.bump(ChangeKind::Revocations);
        }
        g.certs.insert(serial, merged);
        Ok(())
    }

    async fn revoke_certificate(
        &self,
        serial_hex: &str,
        revocation: RevocationRecord,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        let serial = keys::serial_key(serial_hex);
        let stored = g.certs.get(&serial).cloned().ok_or(StoreError::NotFound)?;
        if stored.revocation.is_some() {
            return Err(StoreError::AlreadyRevoked);
        }
        let mut cert = stored.clone();
        cert.revocation = Some(revocation);
        g.index_revocation(Some(&stored), &cert);
        g.certs.insert(serial, cert);
        self.generations.bump(ChangeKind::Revocations);
        Ok(())
    }

    async fn mark_replaced(&self, serial_hex: &str, order_id: &str) -> Result<(), StoreError> {
        let mut g = self.lock();
        let cert = g
            .certs
            .get_mut(&keys::serial_key(serial_hex))
            .ok_or(StoreError::NotFound)?;
        if cert.replaced_by.is_some() {
            return Err(StoreError::AlreadyReplaced);
        }
        cert.replaced_by = Some(order_id.to_owned());
        Ok(())
    }

    async fn revoked_certificates(
        &self,
        issuer_id: &str,
    ) -> Result<Vec<(String, RevocationRecord)>, StoreError> {
        let g = self.lock();
        let prefix = keys::revoked_prefix(issuer_id);
        Ok(g.revoked
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn block_key(&self, public_key_sha256: &str) -> Result<(), StoreError> {
        self.lock()
            .blocked_keys
            .insert(public_key_sha256.to_ascii_lowercase());
        Ok(())
    }

    async fn is_key_blocked(&self, public_key_sha256: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .blocked_keys
            .contains(&public_key_sha256.to_ascii_lowercase()))
    }

    async fn put_ca(&self, ca: &CaRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.cas.insert(ca.id.clone(), ca.clone());
        self.generations.bump(ChangeKind::Cas);
        Ok(())
    }

    async fn get_ca(&self, id: &str) -> Result<Option<CaRecord>, StoreError> {
        Ok(self.lock().cas.get(id).cloned())
    }

    async fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        let mut cas: Vec<CaRecord> = self.lock().cas.values().cloned().collect();
        cas.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(cas)
    }

    async fn next_crl_number(&self, ca_id: &str) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let n = g.crl_numbers.entry(ca_id.to_owned()).or_insert(0);
        *n = n
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("CRL number overflow".into()))?;
        Ok(*n)
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.api_keys.contains_key(&key.id) {
            return Err(StoreError::Conflict("API key id exists".into()));
        }
        g.api_keys.insert(key.id.clone(), key.clone());
        self.generations.bump(ChangeKind::ApiKeys);
        Ok(())
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.lock().api_keys.get(id).cloned())
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut keys: Vec<ApiKeyRecord> = self.lock().api_keys.values().cloned().collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn disable_api_key(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<ApiKeyRecord, StoreError> {
        let mut g = self.lock();
        let enabled_admins = g
            .api_keys
            .values()
            .filter(|k| k.role == ApiRole::Admin && k.disabled_at.is_none())
            .count();
        let key = g.api_keys.get_mut(id).ok_or(StoreError::NotFound)?;
        if key.disabled_at.is_some() {
            return Err(StoreError::Conflict("API key already disabled".into()));
        }
        if key.role == ApiRole::Admin && enabled_admins <= 1 {
            return Err(StoreError::LastAdminKey);
        }
        key.disabled_at = Some(at);
        self.generations.bump(ChangeKind::ApiKeys);
        Ok(key.clone())
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry, StoreError> {
        let mut g = self.lock();
        let head = g.audit.last().map(AuditEntry::head);
        let entry = AuditEntry::next(head.as_ref(), event, g.audit_mac.as_ref())
            .map_err(StoreError::Backend)?;
        g.audit.push(entry.clone());
        Ok(entry)
    }

    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let g = self.lock();
        // Entries are stored in seq order, seq n at index n - 1.
        let start = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(g.audit.iter().skip(start).take(limit).cloned().collect())
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        Ok(self.lock().audit.last().map(AuditEntry::head))
    }

    fn set_audit_mac_key(&self, key: AuditMacKey) {
        self.lock().audit_mac = Some(key);
    }

    async fn create_audit_key(&self, record: &AuditKeyRecord) -> Result<bool, StoreError> {
        let mut g = self.lock();
        if g.audit_keys.contains_key(&record.name) {
            return Ok(false);
        }
        g.audit_keys.insert(record.name.clone(), record.clone());
        Ok(true)
    }

    async fn get_audit_key(&self, name: &str) -> Result<Option<AuditKeyRecord>, StoreError> {
        Ok(self.lock().audit_keys.get(name).cloned())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn import_audit_entry(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut g = self.lock();
        let head = g.audit.last().map(AuditEntry::head);
        entry
            .check_follows(head.as_ref())
            .map_err(StoreError::Corrupt)?;
        g.audit.push(entry.clone());
        Ok(())
    }

    async fn export_records(&self, sink: &mut ExportSink<'_>) -> Result<u64, StoreError> {
        // A copy, so that `sink` runs without the lock.
        let records = {
            let g = self.lock();
            let mut out = Vec::new();
            out.extend(by_key(&g.cas).into_iter().map(ExportRecord::Ca));
            out.extend(g.audit_keys.values().cloned().map(ExportRecord::AuditKey));
            out.extend(g.settings.iter().map(|(name, r)| {
                ExportRecord::Setting(NamedSetting {
                    name: name.clone(),
                    value: r.value.clone(),
                })
            }));
            out.extend(g.tenants.values().cloned().map(ExportRecord::Tenant));
            out.extend(by_key(&g.api_keys).into_iter().map(ExportRecord::ApiKey));
            out.extend(g.eab_keys.values().cloned().map(ExportRecord::EabKey));
            out.extend(g.est_users.values().cloned().map(ExportRecord::EstUser));
            out.extend(by_key(&g.accounts).into_iter().map(ExportRecord::Account));
            out.extend(by_key(&g.orders).into_iter().map(ExportRecord::Order));
            out.extend(by_key(&g.authzs).into_iter().map(ExportRecord::Authz));
            out.extend(by_key(&g.certs).into_iter().map(ExportRecord::Certificate));
            let mut blocked: Vec<String> = g.blocked_keys.iter().cloned().collect();
            blocked.sort();
            out.extend(blocked.into_iter().map(ExportRecord::BlockedKey));
            let mut numbers: Vec<CrlNumber> = g
                .crl_numbers
                .iter()
                .map(|(ca_id, last)| CrlNumber {
                    ca_id: ca_id.clone(),
                    last: *last,
                })
                .collect();
            numbers.sort_by(|a, b| a.ca_id.cmp(&b.ca_id));
            out.extend(numbers.into_iter().map(ExportRecord::CrlNumber));
            out.extend(by_key(&g.approvals).into_iter().map(ExportRecord::Approval));
            out.extend(
                by_key(&g.scep_transactions)
                    .into_iter()
                    .map(ExportRecord::ScepTransaction),
            );
            out.extend(
                g.scep_challenges
                    .values()
                    .cloned()
                    .map(ExportRecord::ScepChallenge),
            );
            out.extend(g.audit.iter().cloned().map(ExportRecord::AuditEntry));
            out
        };
        let n = records.len() as u64;
        for r in records {
            sink(r)?;
        }
        Ok(n)
    }

    async fn count_records(&self) -> Result<u64, StoreError> {
        let g = self.lock();
        let n = g.cas.len()
            + g.audit_keys.len()
            + g.settings.len()
            + g.tenants.len()
            + g.api_keys.len()
            + g.eab_keys.len()
            + g.est_users.len()
            + g.accounts.len()
            + g.orders.len()
            + g.authzs.len()
            + g.certs.len()
            + g.blocked_keys.len()
            + g.crl_numbers.len()
            + g.approvals.len()
            + g.scep_transactions.len()
            + g.scep_challenges.len()
            + g.audit.len();
        Ok(n as u64)
    }

    async fn purge_expired(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        let g = &mut *self.lock();
        let orders = purge_map(
            &mut g.orders,
            &mut g.orders_by_account,
            keys::order_key,
            |o| purge::order_purgeable(o, before),
            limit,
        );
        let authzs = purge_map(
            &mut g.authzs,
            &mut g.authz_by_identifier,
            keys::authz_key,
            |a| purge::authz_purgeable(a, before),
            limit,
        );
        Ok(Purged { orders, authzs })
    }

    async fn count_pending(
        &self,
        account_id: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<PendingCounts, StoreError> {
        let g = self.lock();
        let count = |n: usize| (n.min(limit)) as u64;
        Ok(PendingCounts {
            orders: count(
                g.orders
                    .values()
                    .filter(|o| o.account_id == account_id && pending::order_counts(o, now))
                    .count(),
            ),
            authzs: count(
                g.authzs
                    .values()
                    .filter(|a| a.account_id == account_id && pending::authz_counts(a, now))
                    .count(),
            ),
        })
    }

    async fn rate_bucket(
        &self,
        key: &str,
        op: BucketOp,
        gcra: Gcra,
        now_ns: i64,
    ) -> Result<Bucket, StoreError> {
        let mut g = self.lock();
        let (bucket, store) =
            rate_buckets::step(g.rate_buckets.get(key).copied(), op, gcra, now_ns);
        if let Some(tat) = store {
            g.rate_buckets.insert(key.to_owned(), tat);
        }
        Ok(bucket)
    }

    async fn purge_rate_buckets(&self, now_ns: i64) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.rate_buckets.len();
        g.rate_buckets.retain(|_, tat| *tat >= now_ns);
        Ok((before - g.rate_buckets.len()) as u64)
    }

    async fn redeem_nonce(&self, id: u128, expires: u64) -> Result<bool, StoreError> {
        let mut g = self.lock();
        if g.used_nonces.contains_key(&id) {
            return Ok(false);
        }
        g.used_nonces.insert(id, expires);
        Ok(true)
    }

    async fn purge_nonces(&self, now: u64) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.used_nonces.len();
        g.used_nonces.retain(|_, expires| *expires >= now);
        Ok((before - g.used_nonces.len()) as u64)
    }

    async fn set_crl_number(&self, ca_id: &str, last: u64) -> Result<(), StoreError> {
        self.lock().crl_numbers.insert(ca_id.to_owned(), last);
        Ok(())
    }

    async fn record_issuance(&self, write: &IssuanceWrite) -> Result<AuditEntry, StoreError> {
        let mut g = self.lock();
        let serial = keys::serial_key(&write.certificate.serial);
        if g.certs.contains_key(&serial) {
            return Err(StoreError::DuplicateSerial);
        }
        if let Some(order) = &write.order {
            let stored = g.orders.get(&order.id).ok_or(StoreError::NotFound)?;
            if stored.status != OrderStatus::Processing {
                return Err(StoreError::Conflict("the order left processing".into()));
            }
        }
        if let Some(settle) = &write.scep_transaction {
            if g.scep_transactions.get(&settle.expected.transaction_id) != Some(&settle.expected) {
                return Err(StoreError::Conflict("the SCEP transaction changed".into()));
            }
        }
        let head = g.audit.last().map(AuditEntry::head);
        let entry = AuditEntry::next(head.as_ref(), &write.audit, g.audit_mac.as_ref())
            .map_err(StoreError::Backend)?;
        // Every check passed: apply.
        let mut cert = write.certificate.clone();
        cert.serial.clone_from(&serial);
        g.index_revocation(None, &cert);
        g.certs.insert(serial, cert);
        if let Some(order) = &write.order {
            if let Some(old) = g.orders.get(&order.id) {
                let old_key = keys::order_key(old);
                g.orders_by_account.remove(&old_key);
            }
            g.orders_by_account
                .insert(keys::order_key(order), order.id.clone());
            g.orders.insert(order.id.clone(), order.clone());
        }
        if let (Some(replaced), Some(order)) = (&write.replaces, &write.order) {
            if let Some(old) = g.certs.get_mut(&keys::serial_key(replaced)) {
                if old.replaced_by.is_none() {
                    old.replaced_by = Some(order.id.clone());
                }
            }
        }
        if let Some(settle) = &write.scep_transaction {
            g.scep_transactions.insert(
                settle.settled.transaction_id.clone(),
                settle.settled.clone(),
            );
        }
        g.audit.push(entry.clone());
        Ok(entry)
    }

    async fn record_revocation(&self, write: &RevocationWrite) -> Result<AuditEntry, StoreError> {
        let mut g = self.lock();
        let serial = keys::serial_key(&write.serial);
        let stored = g.certs.get(&serial).cloned().ok_or(StoreError::NotFound)?;
        if stored.revocation.is_some() {
            return Err(StoreError::AlreadyRevoked);
        }
        let head = g.audit.last().map(AuditEntry::head);
        let entry = AuditEntry::next(head.as_ref(), &write.audit, g.audit_mac.as_ref())
            .map_err(StoreError::Backend)?;
        // Every check passed: apply.
        let mut cert = stored.clone();
        cert.revocation = Some(write.revocation);
        g.index_revocation(Some(&stored), &cert);
        g.certs.insert(serial, cert);
        if let Some(k) = &write.block_key {
            g.blocked_keys.insert(k.to_ascii_lowercase());
        }
        let n = g
            .crl_generations
            .entry(write.issuer_id.clone())
            .or_insert(0);
        *n = n.saturating_add(1);
        g.audit.push(entry.clone());
        self.generations.bump(ChangeKind::Revocations);
        Ok(entry)
    }

    async fn record_ca_change(&self, write: &CaWrite) -> Result<AuditEntry, StoreError> {
        let mut g = self.lock();
        for update in &write.records {
            if !update.expects(g.cas.get(&update.record.id)) {
                return Err(CaWrite::conflict(update));
            }
        }
        let head = g.audit.last().map(AuditEntry::head);
        let entry = AuditEntry::next(head.as_ref(), &write.audit, g.audit_mac.as_ref())
            .map_err(StoreError::Backend)?;
        // Every check passed: apply.
        for update in &write.records {
            g.cas
                .insert(update.record.id.clone(), update.record.clone());
        }
        if let Some(id) = &write.issuing_pin {
            let version = g
                .settings
                .get(crate::settings::ISSUING_CA)
                .map_or(0, |r| r.version);
            g.settings.insert(
                crate::settings::ISSUING_CA.to_owned(),
                SettingRecord {
                    version: version + 1,
                    value: id.as_bytes().to_vec(),
                },
            );
            self.generations.bump(ChangeKind::Settings);
        }
        if !write.records.is_empty() {
            self.generations.bump(ChangeKind::Cas);
        }
        g.audit.push(entry.clone());
        Ok(entry)
    }

    async fn create_account_bound(
        &self,
        account: &AccountRecord,
        eab_kid: &str,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.check_new_account(account)?;
        let key = g.eab_keys.get(eab_kid).ok_or(StoreError::NotFound)?;
        if key.disabled_at.is_some() {
            return Err(StoreError::Conflict("the EAB key is disabled".into()));
        }
        if key.bound_account.is_some() {
            return Err(StoreError::Conflict("the EAB key is already bound".into()));
        }
        g.insert_account(account);
        if let Some(key) = g.eab_keys.get_mut(eab_kid) {
            key.bound_account = Some(account.id.clone());
        }
        self.generations.bump(ChangeKind::EabKeys);
        Ok(())
    }

    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.tenants.contains_key(&tenant.id) {
            return Err(StoreError::Conflict("tenant id exists".into()));
        }
        g.tenants.insert(tenant.id.clone(), tenant.clone());
        self.generations.bump(ChangeKind::Tenants);
        Ok(())
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        Ok(self.lock().tenants.get(id).cloned())
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        Ok(self.lock().tenants.values().cloned().collect())
    }

    async fn disable_tenant(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<TenantRecord, StoreError> {
        let mut g = self.lock();
        let t = g.tenants.get_mut(id).ok_or(StoreError::NotFound)?;
        if t.disabled_at.is_some() {
            return Err(StoreError::Conflict("tenant already disabled".into()));
        }
        t.disabled_at = Some(at);
        self.generations.bump(ChangeKind::Tenants);
        Ok(t.clone())
    }

    async fn create_eab_key(&self, key: &EabKeyRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.eab_keys.contains_key(&key.kid) {
            return Err(StoreError::Conflict("EAB key id exists".into()));
        }
        g.eab_keys.insert(key.kid.clone(), key.clone());
        self.generations.bump(ChangeKind::EabKeys);
        Ok(())
    }

    async fn get_eab_key(&self, kid: &str) -> Result<Option<EabKeyRecord>, StoreError> {
        Ok(self.lock().eab_keys.get(kid).cloned())
    }

    async fn list_eab_keys(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<EabKeyRecord>, StoreError> {
        Ok(self
            .lock()
            .eab_keys
            .values()
            .filter(|k| tenant_id.is_none_or(|t| k.tenant_id == t))
            .cloned()
            .collect())
    }

    async fn disable_eab_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
    ) -> Result<EabKeyRecord, StoreError> {
        let mut g = self.lock();
        let k = g.eab_keys.get_mut(kid).ok_or(StoreError::NotFound)?;
        if k.disabled_at.is_some() {
            return Err(StoreError::Conflict("EAB key already disabled".into()));
        }
        k.disabled_at = Some(at);
        self.generations.bump(ChangeKind::EabKeys);
        Ok(k.clone())
    }

    async fn create_est_user(&self, user: &EstUserRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.est_users.contains_key(&user.username) {
            return Err(StoreError::Conflict("EST user exists".into()));
        }
        g.est_users.insert(user.username.clone(), user.clone());
        self.generations.bump(ChangeKind::EstUsers);
        Ok(())
    }

    async fn get_est_user(&self, username: &str) -> Result<Option<EstUserRecord>, StoreError> {
        Ok(self.lock().est_users.get(username).cloned())
    }

    async fn list_est_users(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<EstUserRecord>, StoreError> {
        Ok(self
            .lock()
            .est_users
            .values()
            .filter(|u| tenant_id.is_none_or(|t| u.tenant_id.as_deref() == Some(t)))
            .cloned()
            .collect())
    }

    async fn disable_est_user(
        &self,
        username: &str,
        at: OffsetDateTime,
    ) -> Result<EstUserRecord, StoreError> {
        let mut g = self.lock();
        let u = g.est_users.get_mut(username).ok_or(StoreError::NotFound)?;
        if u.disabled_at.is_some() {
            return Err(StoreError::Conflict("EST user already disabled".into()));
        }
        u.disabled_at = Some(at);
        self.generations.bump(ChangeKind::EstUsers);
        Ok(u.clone())
    }

    async fn create_approval(&self, approval: &ApprovalRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.approvals.contains_key(&approval.id) {
            return Err(StoreError::Conflict("approval id exists".into()));
        }
        g.approvals.insert(approval.id.clone(), approval.clone());
        Ok(())
    }

    async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        Ok(self.lock().approvals.get(id).cloned())
    }

    async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let mut out: Vec<ApprovalRecord> = self
            .lock()
            .approvals
            .values()
            .filter(|a| status.is_none_or(|s| a.status == s))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.requested_at, &a.id).cmp(&(b.requested_at, &b.id)));
        Ok(out)
    }

    async fn update_approval(
        &self,
        approval: &ApprovalRecord,
        expected: ApprovalStatus,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let stored = g.approvals.get(&approval.id).ok_or(StoreError::NotFound)?;
        if stored.status != expected {
            return Ok(false);
        }
        g.approvals.insert(approval.id.clone(), approval.clone());
        Ok(true)
    }

    async fn get_scep_transaction(
        &self,
        id: &str,
    ) -> Result<Option<ScepTransactionRecord>, StoreError> {
        Ok(self.lock().scep_transactions.get(id).cloned())
    }

    async fn put_scep_transaction(
        &self,
        record: &ScepTransactionRecord,
        expected: Option<&ScepTransactionRecord>,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock();
        if g.scep_transactions.get(&record.transaction_id) != expected {
            return Ok(false);
        }
        g.scep_transactions
            .insert(record.transaction_id.clone(), record.clone());
        Ok(true)
    }

    async fn delete_scep_transaction(
        &self,
        expected: &ScepTransactionRecord,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock();
        if g.scep_transactions.get(&expected.transaction_id) != Some(expected) {
            return Ok(false);
        }
        g.scep_transactions.remove(&expected.transaction_id);
        Ok(true)
    }

    async fn create_scep_challenge(
        &self,
        challenge: &ScepChallengeRecord,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.scep_challenges.contains_key(&challenge.challenge_hash) {
            return Err(StoreError::Conflict("SCEP challenge exists".into()));
        }
        g.scep_challenges
            .insert(challenge.challenge_hash.clone(), challenge.clone());
        Ok(())
    }

    async fn get_scep_challenge(
        &self,
        hash: &str,
    ) -> Result<Option<ScepChallengeRecord>, StoreError> {
        Ok(self.lock().scep_challenges.get(hash).cloned())
    }

    async fn list_scep_challenges(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<ScepChallengeRecord>, StoreError> {
        Ok(self
            .lock()
            .scep_challenges
            .values()
            .filter(|c| tenant_id.is_none_or(|t| c.tenant_id.as_deref() == Some(t)))
            .cloned()
            .collect())
    }

    async fn redeem_scep_challenge(
        &self,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<Option<ScepChallengeRecord>, StoreError> {
        let mut g = self.lock();
        match g.scep_challenges.get_mut(hash) {
            Some(c) if c.is_redeemable(at) => {
                c.redeemed_at = Some(at);
                Ok(Some(c.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn remove_scep_challenge(&self, hash: &str) -> Result<bool, StoreError> {
        Ok(self.lock().scep_challenges.remove(hash).is_some())
    }

    async fn scep_transactions_before(
        &self,
        before: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ScepTransactionRecord>, StoreError> {
        let g = self.lock();
        let mut out: Vec<ScepTransactionRecord> = g
            .scep_transactions
            .values()
            .filter(|r| r.updated_at < before)
            .filter(|r| after.is_none_or(|a| r.transaction_id.as_str() > a))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
        out.truncate(limit);
        Ok(out)
    }

    async fn change_generations(&self) -> Result<Generations, StoreError> {
        Ok(self.generations.snapshot())
    }

    async fn get_setting(&self, name: &str) -> Result<Option<SettingRecord>, StoreError> {
        Ok(self.lock().settings.get(name).cloned())
    }

    async fn put_setting(
        &self,
        name: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<Option<u64>, StoreError> {
        let mut g = self.lock();
        let stored = g.settings.get(name).map(|r| r.version);
        if stored != expected {
            return Ok(None);
        }
        let version = expected.map_or(1, |v| v + 1);
        g.settings.insert(
            name.to_owned(),
            SettingRecord {
                version,
                value: value.to_vec(),
            },
        );
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
        let mut g = self.lock();
        let next = leases::acquire_step(g.leases.get(name), name, holder, now_ns, ttl_ns);
        if let Some(l) = &next {
            g.leases.insert(name.to_owned(), l.clone());
        }
        Ok(next)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        let mut g = self.lock();
        match leases::release_step(g.leases.get(name), holder) {
            Some(l) => {
                g.leases.insert(name.to_owned(), l);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn get_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        Ok(self.lock().leases.get(name).cloned())
    }

    async fn purge_leases(&self, before_ns: i64) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.leases.len();
        g.leases.retain(|_, l| l.expires_ns >= before_ns);
        Ok((before - g.leases.len()) as u64)
    }

    async fn put_crl(&self, crl: &StoredCrl) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let key = (crl.ca_id.clone(), crl.part);
        if g.crls
            .get(&key)
            .is_some_and(|c| c.head.number > crl.head.number)
        {
            return Ok(false);
        }
        g.crls.insert(key, crl.clone());
        Ok(true)
    }

    async fn get_crl(&self, ca_id: &str, part: CrlPart) -> Result<Option<StoredCrl>, StoreError> {
        Ok(self.lock().crls.get(&(ca_id.to_owned(), part)).cloned())
    }

    async fn crl_head(
        &self,
        ca_id: &str,
        part: CrlPart,
    ) -> Result<(u64, Option<CrlHead>), StoreError> {
        let g = self.lock();
        Ok((
            g.crl_generations.get(ca_id).copied().unwrap_or(0),
            g.crls.get(&(ca_id.to_owned(), part)).map(|c| c.head),
        ))
    }

    async fn bump_crl_generation(&self, ca_id: &str) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let n = g.crl_generations.entry(ca_id.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        Ok(*n)
    }

    async fn put_ocsp_responder(&self, record: &OcspResponderRecord) -> Result<(), StoreError> {
        self.lock()
            .ocsp_responders
            .insert(record.ca_id.clone(), record.clone());
        Ok(())
    }

    async fn get_ocsp_responder(
        &self,
        ca_id: &str,
    ) -> Result<Option<OcspResponderRecord>, StoreError> {
        Ok(self.lock().ocsp_responders.get(ca_id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_is_object_safe() {
        let s: std::sync::Arc<dyn Store> = std::sync::Arc::new(MemoryStore::new());
        assert!(s.get_account("x").await.is_ok_and(|a| a.is_none()));
    }
}
