//! Shared server state: configuration, store, CA material, nonces,
//! validator, caches and metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ironseal_ca_core::sealed::Kek;
use ironseal_storage::Store;

use crate::acme::error::AcmeError;
use crate::acme::nonce::NonceStore;
use crate::config::{url_host, Config, EabPolicy};
use crate::crl::CrlCache;
use crate::metrics::Metrics;
use crate::validation::Validator;

use crate::authority::{CaSet, IssuingCa};

/// Everything a request handler needs.
pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub nonces: NonceStore,
    pub validator: Validator,
    pub cas: RwLock<Arc<CaSet>>,
    /// The key-encryption key, for sealing the keys of CAs created
    /// through the admin API.
    pub kek: Kek,
    /// Admin client-certificate authentication, when `admin_client_ca`
    /// is configured.
    pub client_certs: Option<Arc<crate::client_cert::ClientCertAuth>>,
    /// Serializes changes to the CA hierarchy (create, activate, status)
    /// and the reload of [`AppState::cas`] that follows each (an async
    /// lock: it is held across store calls).
    pub ca_admin: tokio::sync::Mutex<()>,
    /// The HTTPS listener's certificate (renewed and moved to a new
    /// issuing CA live, see [`crate::listener_cert`]).
    pub listener_cert: Arc<crate::listener_cert::ListenerCert>,
    pub crl_cache: CrlCache,
    pub ocsp: crate::ocsp::OcspService,
    pub metrics: Metrics,
    flusher: crate::durability::Flusher,
    pub flush_stats: Arc<crate::durability::FlushStats>,
    /// Validations in flight, by authorization id.
    pub validating: crate::in_flight::InFlight,
    /// Issuances in flight, by order id.
    pub issuing: crate::in_flight::InFlight,
    /// This replica's leases in the store (holder id: `replica_id`).
    pub leases: Arc<crate::leases::Leases>,
    /// Rate limits per account, tenant and client IP.
    pub rate_limits: crate::rate_limits::RateLimits,
    /// Some EAB key exists (set at start from the store, then on creation);
    /// drives `externalAccountRequired` under [`EabPolicy::Auto`].
    eab_in_use: AtomicBool,
    /// The SCEP RA certificate and key, see [`crate::scep::ra`].
    pub scep_ra: crate::scep::ra::RaSlot,
    /// The Intune validation client, when `[scep.intune]` is configured.
    pub scep_intune: Option<Arc<crate::scep::intune::IntuneClient>>,
    /// The audit MAC and checkpoint keys, see [`crate::audit_keys`].
    pub audit_keys: Arc<crate::audit_keys::AuditKeys>,
    /// The store's change generations the in-memory copies reflect (see
    /// [`crate::propagate`]); `None`: refresh everything at the next poll.
    seen_generations: Mutex<Option<ironseal_storage::Generations>>,
}

impl AppState {
    #[allow(
        clippy::too_many_arguments,
        reason = "each is a separately prepared start-up part, passed once from main"
    )]
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        validator: Validator,
        cas: CaSet,
        kek: Kek,
        client_certs: Option<Arc<crate::client_cert::ClientCertAuth>>,
        listener_cert: Arc<crate::listener_cert::ListenerCert>,
        audit_keys: Arc<crate::audit_keys::AuditKeys>,
    ) -> std::io::Result<AppState> {
        let flush_stats = Arc::new(crate::durability::FlushStats::default());
        let flusher = crate::durability::Flusher::start(store.clone(), flush_stats.clone())?;
        let eab_in_use = !store
            .list_eab_keys(None)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .is_empty();
        // Replicas on one PostgreSQL database share nonces (issue 11).
        let nonces = match config.storage {
            crate::config::StorageBackend::Postgres { .. } => NonceStore::shared(
                &kek,
                Box::new(crate::acme::nonce::StoreLedger::new(store.clone())),
            ),
            crate::config::StorageBackend::Sled => NonceStore::new(),
        };
        // ... and rate-limit buckets.
        let rate_limits = match config.storage {
            crate::config::StorageBackend::Postgres { .. } => {
                crate::rate_limits::RateLimits::shared(&config.rate_limits(), store.clone())
            }
            crate::config::StorageBackend::Sled => {
                crate::rate_limits::RateLimits::new(&config.rate_limits())
            }
        };
        let shared = matches!(
            config.storage,
            crate::config::StorageBackend::Postgres { .. }
        );
        let leases = Arc::new(crate::leases::Leases::new(
            store.clone(),
            config
                .replica_id
                .clone()
                .unwrap_or_else(crate::leases::Leases::random_holder),
            config.lease_ttl,
            shared,
        ));
        let ocsp = crate::ocsp::OcspService::shared(
            config.ocsp,
            crate::ocsp_responders::ResponderShare::new(kek.clone(), leases.clone()),
        );
        let scep_intune = match &config.scep.intune {
            Some(c) => Some(Arc::new(
                crate::scep::intune::IntuneClient::new(c.clone())
                    .map_err(|e| std::io::Error::other(format!("[scep.intune] {e}")))?,
            )),
            None => None,
        };
        Ok(AppState {
            scep_intune,
            eab_in_use: AtomicBool::new(eab_in_use),
            scep_ra: Default::default(),
            audit_keys,
            seen_generations: Mutex::new(None),
            flusher,
            flush_stats,
            rate_limits,

            config,
            store,
            nonces,
            validator,
            cas: RwLock::new(Arc::new(cas)),
            kek,
            client_certs,
            listener_cert,
            ca_admin: tokio::sync::Mutex::new(()),
            crl_cache: CrlCache::default(),
            ocsp,
            metrics: Metrics::default(),
            validating: Default::default(),
            issuing: Default::default(),
            leases,
        })
    }

    /// Whether newAccount requires an external account binding (RFC 8555
    /// §7.3.4), per `external_account_required`.
    pub fn eab_required(&self) -> bool {
        match self.config.external_account_required {
            EabPolicy::Always => true,
            EabPolicy::Never => false,
            EabPolicy::Auto => self.eab_in_use.load(Ordering::Relaxed),
        }
    }

    /// The change generations the in-memory copies reflect.
    pub fn seen_generations(&self) -> Option<ironseal_storage::Generations> {
        *self
            .seen_generations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Records the change generations the in-memory copies now reflect.
    pub fn set_seen_generations(&self, generations: ironseal_storage::Generations) {
        *self
            .seen_generations
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(generations);
    }

    /// Records that an EAB key now exists.
    pub fn eab_created(&self) {
        self.eab_in_use.store(true, Ordering::Relaxed);
    }

    /// The CA set currently in force.
    pub fn ca_set(&self) -> Arc<CaSet> {
        self.cas.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new CA set in force (after the hierarchy changed).
    pub fn replace_cas(&self, set: CaSet) {
        *self.cas.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    /// Renews the HTTPS listener's certificate if due, or moves it to a
    /// new issuing CA under the served root (see [`crate::listener_cert`]).
    pub async fn refresh_listener_cert(
        &self,
    ) -> Result<Option<crate::listener_cert::Refreshed>, crate::bootstrap::BootError> {
        self.listener_cert
            .refresh(
                &self.config,
                &self.store,
                &self.ca_set(),
                time::OffsetDateTime::now_utc(),
            )
            .await
    }

    /// The CA that signs new leaves.
    pub fn active_issuer(&self) -> Arc<IssuingCa> {
        self.ca_set().active.clone()
    }

    /// The PEM chains (default first) for certificates of `issuer_id`.
    pub fn chains_for(&self, issuer_id: &str) -> Vec<String> {
        self.ca_set()
            .by_id
            .get(issuer_id)
            .map(|c| c.chains.clone())
            .unwrap_or_default()
    }

    /// True when `key_id` is the subject key identifier of CA `issuer_id`
    /// (the AKI half of an ARI certID, RFC 9773 §4.1).
    pub fn issuer_key_id_matches(&self, issuer_id: &str, key_id: &[u8]) -> bool {
        self.ca_set()
            .by_id
            .get(issuer_id)
            .is_some_and(|c| c.issuer.key_identifier() == key_id)
    }

    /// The https base URL to put in responses: the request's authority
    /// (HTTP/1.1 Host, HTTP/2 `:authority`) when it is one of our names,
    /// else the first configured hostname.
    pub fn base_url_for(&self, host: Option<&str>) -> String {
        if let Some(h) = host {
            if self.is_our_authority(h) {
                return format!("https://{h}");
            }
        }
        let first = self
            .config
            .hostnames
            .first()
            .map(String::as_str)
            .unwrap_or("localhost");
        format!("https://{}:{}", url_host(first), self.config.listen.port())
    }

    /// True when `authority` (host[:port]) names this server.
    pub fn is_our_authority(&self, authority: &str) -> bool {
        let (host, port) = split_authority(authority);
        let port_ok = port.is_none_or(|p| p == self.config.listen.port());
        port_ok
            && self
                .config
                .hostnames
                .iter()
                .any(|n| n.eq_ignore_ascii_case(host.trim_start_matches('[').trim_end_matches(']')))
    }

    /// Makes every write so far durable before a response acknowledges it.
    /// Concurrent callers share flushes (group commit in the flusher thread).
    pub async fn durable(&self) -> Result<(), AcmeError> {
        let started = std::time::Instant::now();
        let r = self.flusher.durable().await;
        self.metrics.observe_flush(started.elapsed());
        if r.is_err() {
            crate::metrics::count_storage_error(crate::metrics::StorageOp::Flush);
        }
        r.map_err(AcmeError::internal)
    }

    /// [`AppState::durable`] for work outside a request (CRL numbers,
    /// purges, admin changes), with the store's error type.
    pub async fn durable_store(&self) -> Result<(), ironseal_storage::StoreError> {
        self.durable()
            .await
            .map_err(|e| ironseal_storage::StoreError::Backend(e.problem.detail))
    }

    /// Counts one event of `limit` for each key; the first refusal is a
    /// `rateLimited` problem with Retry-After.
    pub async fn check_rate(
        &self,
        checks: &[(crate::rate_limits::Limit, String)],
    ) -> Result<(), AcmeError> {
        for (limit, key) in checks {
            self.rate_limits.check(*limit, key).await.map_err(|r| {
                self.metrics.rate_limited(r.limit.as_str());
                AcmeError::rate_limited(r)
            })?;
        }
        Ok(())
    }

    /// Forgets rate-limit state of idle keys so memory stays bounded.
    pub async fn prune_rate_limits(&self) {
        self.rate_limits.prune().await;
    }

    /// This process's holder id in leases (`[storage] replica_id`, else
    /// random at start).
    pub fn replica_id(&self) -> &str {
        self.leases.holder()
    }

    /// Drops the cached CRL of `issuer_id` so the next fetch rebuilds it.
    pub fn invalidate_crl(&self, issuer_id: &str) {
        self.crl_cache.invalidate(issuer_id);
    }
}

fn split_authority(a: &str) -> (&str, Option<u16>) {
    if let Some(rest) = a.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let host = &rest[..end];
            let port = rest[end + 1..]
                .strip_prefix(':')
                .and_then(|p| p.parse().ok());
            return (host, port);
        }
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (a, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_split() {
        assert_eq!(
            split_authority("localhost:14000"),
            ("localhost", Some(14000))
        );
        assert_eq!(split_authority("localhost"), ("localhost", None));
        assert_eq!(split_authority("[::1]:8"), ("::1", Some(8)));
        assert_eq!(split_authority("127.0.0.1:9"), ("127.0.0.1", Some(9)));
    }
}
