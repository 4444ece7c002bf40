//! Shared server state: configuration, store, CA material, nonces,
//! validator, caches and metrics.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper::header::HeaderValue;
use ironseal_ca_core::hierarchy::Issuer;
use ironseal_ca_core::sealed::Kek;
use ironseal_protocol::acme::problem::ProblemType;
use ironseal_storage::Store;

use crate::acme::error::AcmeError;
use crate::acme::nonce::NonceStore;
use crate::config::{url_host, Config};
use crate::crl::CrlCache;
use crate::metrics::Metrics;
use crate::validation::Validator;

/// One CA that can sign, with the PEM chain that follows its certificates
/// up to (not including) the root.
pub struct IssuingCa {
    pub issuer: Issuer,
    /// The certificates (DER) that follow a leaf of this CA: this CA, then
    /// its ancestors up to (not including) the root.
    pub chain_der: Vec<Vec<u8>>,
    /// The PEM chains offered after a leaf: the first is the default chain,
    /// later ones are alternates (RFC 8555 §7.4.2).
    pub chains: Vec<String>,
}

/// The CA material loaded from the store at start.
pub struct CaSet {
    /// The CA that signs new leaves.
    pub active: Arc<IssuingCa>,
    /// Every CA that can sign something (CRLs, leaves), by id.
    pub by_id: HashMap<String, Arc<IssuingCa>>,
    /// Certificates (DER) of the CAs whose key is held outside ironseal
    /// (offline or external roots and intermediates), by id.
    pub external_by_id: HashMap<String, Vec<u8>>,
    /// The root certificate in PEM: the root of the active issuing CA
    /// when the server started (the root of its HTTPS certificate), served
    /// as `root.pem`.
    pub root_pem: String,
    /// The root (PEM) of the active issuing CA now; differs from
    /// `root_pem` after `activate` moved issuance under another root.
    pub active_root_pem: String,
}

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
    pub client_certs: Option<Arc<crate::admin::client_cert::ClientCertAuth>>,
    /// Serializes changes to the CA hierarchy (create, activate, status)
    /// and the reload of [`AppState::cas`] that follows each.
    pub ca_admin: Mutex<()>,
    /// The HTTPS listener's certificate (renewed and moved to a new
    /// issuing CA live, see [`crate::listener_cert`]).
    pub listener_cert: Arc<crate::listener_cert::ListenerCert>,
    pub crl_cache: CrlCache,
    pub ocsp: crate::ocsp::OcspService,
    pub metrics: Metrics,
    flusher: crate::durability::Flusher,
    pub flush_stats: Arc<crate::durability::FlushStats>,
    validating: Mutex<HashSet<String>>,
    issuing: Mutex<HashSet<String>>,
    order_limiter: DefaultKeyedRateLimiter<String>,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        validator: Validator,
        cas: CaSet,
        kek: Kek,
        client_certs: Option<Arc<crate::admin::client_cert::ClientCertAuth>>,
        listener_cert: Arc<crate::listener_cert::ListenerCert>,
    ) -> std::io::Result<AppState> {
        let per_minute = NonZeroU32::new(config.new_orders_per_account_per_minute.max(1))
            .unwrap_or(NonZeroU32::MIN);
        let flush_stats = Arc::new(crate::durability::FlushStats::default());
        let flusher = crate::durability::Flusher::start(store.clone(), flush_stats.clone())?;
        Ok(AppState {
            flusher,
            flush_stats,
            order_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            config,
            store,
            nonces: NonceStore::new(),
            validator,
            cas: RwLock::new(Arc::new(cas)),
            kek,
            client_certs,
            listener_cert,
            ca_admin: Mutex::new(()),
            crl_cache: CrlCache::default(),
            ocsp: crate::ocsp::OcspService::default(),
            metrics: Metrics::default(),
            validating: Mutex::new(HashSet::new()),
            issuing: Mutex::new(HashSet::new()),
        })
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
    pub fn refresh_listener_cert(
        &self,
    ) -> Result<Option<crate::listener_cert::Refreshed>, crate::bootstrap::BootError> {
        self.listener_cert.refresh(
            &self.config,
            self.store.as_ref(),
            &self.ca_set(),
            time::OffsetDateTime::now_utc(),
        )
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

    /// The https base URL to put in responses: the request's Host when it is
    /// one of our names, else the first configured hostname.
    pub fn base_url_for(&self, host: Option<&HeaderValue>) -> String {
        if let Some(h) = host.and_then(|h| h.to_str().ok()) {
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

    /// Per-account newOrder rate limit (GCRA via governor).
    pub fn check_order_rate(&self, account_id: &str) -> Result<(), AcmeError> {
        match self.order_limiter.check_key(&account_id.to_string()) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.metrics.rate_limited("new_order_per_account");
                Err(AcmeError::new(
                    ProblemType::RateLimited,
                    format!(
                        "more than {} new orders per minute for this account; retry later",
                        self.config.new_orders_per_account_per_minute
                    ),
                ))
            }
        }
    }

    /// Forgets rate-limit state of idle keys so memory stays bounded.
    pub fn prune_rate_limits(&self) {
        self.order_limiter.retain_recent();
        self.order_limiter.shrink_to_fit();
    }

    /// Marks an authorization as being validated; false if it already is.
    pub fn begin_validation(&self, authz_id: &str) -> bool {
        self.validating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(authz_id.to_string())
    }

    /// Clears the mark set by [`AppState::begin_validation`].
    pub fn end_validation(&self, authz_id: &str) {
        self.validating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(authz_id);
    }

    /// True while this process validates a challenge of `authz_id`.
    pub fn is_validating(&self, authz_id: &str) -> bool {
        self.validating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(authz_id)
    }

    /// Marks an order as being issued by this process; false if it already is.
    pub fn begin_issuing(&self, order_id: &str) -> bool {
        self.issuing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(order_id.to_string())
    }

    /// Clears the mark set by [`AppState::begin_issuing`].
    pub fn end_issuing(&self, order_id: &str) {
        self.issuing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(order_id);
    }

    /// True while this process issues the certificate of `order_id`.
    pub fn is_issuing(&self, order_id: &str) -> bool {
        self.issuing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(order_id)
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

/// A new opaque identifier for accounts, orders, authorizations, challenges.
pub fn new_id() -> String {
    let b: [u8; 12] = rand::random();
    URL_SAFE_NO_PAD.encode(b)
}

/// A challenge token: 128 bits of entropy, base64url (RFC 8555 §8.1).
pub fn new_token() -> String {
    let b: [u8; 16] = rand::random();
    URL_SAFE_NO_PAD.encode(b)
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
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

    #[test]
    fn ids_are_url_safe_and_distinct() {
        let a = new_id();
        assert_ne!(a, new_id());
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(new_token().len(), 22);
    }
}
