//! The OCSP responder (RFC 6960), served over plain HTTP with the RFC 5019
//! profile: `GET /ocsp/{url-encoded base64 DER}` (RFC 6960 Appendix A.1.1,
//! RFC 5019 §5) and `POST /ocsp` with `application/ocsp-request`, both
//! answered with `application/ocsp-response`.
//!
//! Design (after cfssl's `ocspserve`, certctl and Boulder's old responder):
//!
//! - **Delegated responders** (RFC 6960 §4.2.2.2): one responder
//!   certificate per CA that can sign (`CaSet::by_id`), issued by that CA,
//!   with id-kp-OCSPSigning and id-pkix-ocsp-nocheck, valid
//!   [`RESPONDER_VALIDITY`] (30 days, notBefore backdated by
//!   [`RESPONDER_BACKDATE`]), key of the CA's own algorithm. It is re-issued
//!   once less than a third of its validity remains. The responder and its
//!   key (sealed under the KEK) are kept in the store, so every replica
//!   signs with the same one and a restart reuses it; the replica holding
//!   the CA's `ocsp-responder:<ca id>` lease issues and rotates it
//!   ([`crate::ocsp_responders`]).
//! - **Validity of responses**: thisUpdate = producedAt = now, nextUpdate =
//!   now + [`RESPONSE_VALIDITY`] (4 days; CA/B Forum BR §4.9.10 allows 8 h to
//!   10 days and asks for a refresh no later than 4 days after thisUpdate),
//!   never past the responder certificate's notAfter.
//! - **Pre-signed cache** for nonce-less single-CertID requests (RFC 5019
//!   §2.2.1 pre-produced responses), keyed by (issuer id, serial) and then
//!   by the exact CertID bytes (SHA-1 and SHA-256 CertIDs get their own
//!   response, each echoing its CertID). Entries older than
//!   [`RESPONSE_REFRESH`] (a quarter of the validity) are re-signed on the
//!   next request; [`OcspService::invalidate`] drops a serial at once on
//!   revocation. The cache is bounded by [`MAX_CACHE_ENTRIES`].
//! - **Brief `unknown` cache**: a nonce-less answer `unknown` is kept
//!   apart, for [`OcspLimits::unknown_ttl`] (`[ocsp] unknown_cache_secs`,
//!   default 60 s; 0 turns it off), at most [`MAX_UNKNOWN_ENTRIES`] (the
//!   map is emptied when full), so asking again and again about one
//!   serial that is not ours costs one signature per TTL rather than one
//!   per request. It is never served with HTTP caching headers. A serial
//!   cannot be answered `unknown` and then issued within the TTL in
//!   practice: serials are random and a certificate is durable before
//!   anyone can read it (hence its serial).
//! - **Bounded live signing**: every answer that needs the store or a
//!   signature takes a permit of a semaphore sized by
//!   [`OcspLimits::max_live_signing`] (`[ocsp] max_live_signing`, default
//!   the number of CPUs, at least 2) before its work starts (store reads
//!   awaited, the signature on a blocking thread).
//!   When none is free, a request with a nonce is answered at once with
//!   the pre-signed nonce-less response of its certificate if one is
//!   cached (RFC 5019 §2.2.1 and RFC 8954 §2.1 let a responder omit the
//!   nonce; counted in `ironseal_ocsp_nonce_fallbacks_total`); any other
//!   request waits at most [`OcspLimits::queue_wait`] (`[ocsp]
//!   queue_wait_ms`, default 2000) for a permit and is otherwise answered
//!   `tryLater` (RFC 6960 §2.3; `ironseal_ocsp_busy_total`). A flood of
//!   random serials or nonces thus costs at most that many CPUs.
//!   An epoch counter bumped by `invalidate` keeps a response computed from
//!   a pre-revocation read from being cached after the revocation. Hits
//!   are served on the async worker ([`OcspService::cached_answer`]); only
//!   misses, nonces and multi-CertID requests take a permit, and only
//!   their signatures go to a blocking thread.
//! - **Live signing** when the request carries a nonce (echoed, RFC 6960
//!   §4.4.1, RFC 8954) or asks about several certificates.
//! - **Remembered statuses**: a status read from the store (not
//!   `unknown`) is kept by (issuer id, serial), bounded by
//!   [`MAX_STATUS_ENTRIES`], so nonce and multi-CertID requests sign live
//!   without reading the store again; `invalidate` and the epoch govern it
//!   exactly as they govern the pre-signed cache.
//! - **Status** from the store: a certificate record of the matched CA
//!   with `revocation` → `revoked` (time, reason); without → `good`;
//!   absent or of another CA → `unknown`. A CertID naming an issuer we do
//!   not have (or a hash other than SHA-1/SHA-256) → `unauthorized`
//!   (RFC 5019 §2.2.3). Undecodable requests → `malformedRequest`; store
//!   failures → `internalError`. OCSP-level errors travel as HTTP 200 with
//!   an unsigned `OCSPResponse` (RFC 6960 §2.3, Appendix A.1.2), since
//!   clients parse the body; only a wrong HTTP method is an HTTP error.
//! - **HTTP caching** (RFC 5019 §6.2, GET only, for pre-signed responses):
//!   `Cache-Control: max-age=N, public, no-transform, must-revalidate` with
//!   N = seconds until our own refresh point (never past nextUpdate),
//!   `Last-Modified` = thisUpdate, `Expires` = nextUpdate, `ETag` = SHA-256
//!   of the response; `If-None-Match` gets 304. Live-signed and error
//!   responses carry `Cache-Control: no-store`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, EXPIRES, IF_NONE_MATCH, LAST_MODIFIED,
};
use hyper::{Method, Request, Response, StatusCode};
use ironseal_ca_core::hierarchy::Issuer;
use ironseal_ca_core::ocsp::{revoked_status, OcspResponder};
use ironseal_ca_core::serial::Serial;
use ironseal_protocol::ocsp::{
    decode_get_path, encode_error_response, CertId, CertStatus, OcspRequest, ResponseStatus,
    MAX_REQUEST_SIZE,
};
use ironseal_storage::{Store, StoreError};
use time::format_description::well_known::Rfc2822;
use time::{Duration, OffsetDateTime};

use crate::authority::IssuingCa;
use crate::http::{full, text, Body};
use crate::state::AppState;

/// Validity of a delegated responder certificate.
pub const RESPONDER_VALIDITY: Duration = Duration::days(30);
/// notBefore of a responder certificate is set this far back (clock skew).
pub const RESPONDER_BACKDATE: Duration = Duration::hours(1);
/// nextUpdate − thisUpdate of every response.
pub const RESPONSE_VALIDITY: Duration = Duration::days(4);
/// A pre-signed response older than this is re-signed (¼ of the validity).
pub const RESPONSE_REFRESH: Duration = Duration::days(1);
/// Upper bound on cached responses (one per serial and CertID form).
pub const MAX_CACHE_ENTRIES: usize = 100_000;
/// Upper bound on remembered certificate statuses (see [`OcspService`]);
/// about 100 bytes each. The map is emptied when it is full.
pub const MAX_STATUS_ENTRIES: usize = 262_144;
/// Most CertIDs answered in one request (RFC 5019 §2.1.1 clients send one).
pub const MAX_CERT_IDS: usize = 16;
/// Upper bound on briefly cached `unknown` answers (see the module docs);
/// the map is emptied when it is full.
pub const MAX_UNKNOWN_ENTRIES: usize = 16_384;

/// Bounds on the responder's work (`[ocsp]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcspLimits {
    /// Answers signed (or looked up in the store) at once; at least 1.
    pub max_live_signing: usize,
    /// How long a request without a nonce fallback waits for a signing
    /// slot before it is answered `tryLater`.
    pub queue_wait: std::time::Duration,
    /// How long a nonce-less `unknown` answer is reused; zero: never.
    pub unknown_ttl: Duration,
}

impl Default for OcspLimits {
    fn default() -> Self {
        OcspLimits {
            max_live_signing: default_max_live_signing(),
            queue_wait: std::time::Duration::from_secs(2),
            unknown_ttl: Duration::seconds(60),
        }
    }
}

/// The default of `[ocsp] max_live_signing`: the number of CPUs, at least 2.
pub fn default_max_live_signing() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .max(2)
}

/// The media types of RFC 6960 Appendix C.
pub const OCSP_REQUEST_TYPE: &str = "application/ocsp-request";
/// See [`OCSP_REQUEST_TYPE`].
pub const OCSP_RESPONSE_TYPE: &str = "application/ocsp-response";

/// Why a responder could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OcspServiceError {
    /// Issuing the responder certificate failed (e.g. the CA has expired).
    #[error("responder for CA {ca}: {err}")]
    Responder {
        ca: String,
        err: crate::authority::signing::SigningError,
    },
}

/// A signed response kept for nonce-less requests.
#[derive(Debug, Clone)]
pub struct CachedResponse {
    /// The DER `OCSPResponse`.
    pub der: Bytes,
    /// thisUpdate (= producedAt).
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// Strong ETag (quoted).
    pub etag: String,
}

/// Where an answer came from (for the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Signed for this request (or an error status).
    Live,
    /// The pre-signed response of a nonce-less request.
    Presigned,
    /// A briefly cached `unknown` answer.
    UnknownCached,
    /// The pre-signed nonce-less response given to a nonce request
    /// because every signing slot was busy.
    NonceFallback,
}

/// What the responder answers, before HTTP framing.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The DER `OCSPResponse` (signed, or an unsigned error status).
    pub der: Bytes,
    /// The response status.
    pub status: ResponseStatus,
    /// Set when the response is a pre-produced one that HTTP caches may
    /// keep (RFC 5019 §6).
    pub cacheable: Option<Arc<CachedResponse>>,
    /// Where it came from.
    pub source: Source,
}

impl Answer {
    fn error(status: ResponseStatus) -> Answer {
        Answer {
            der: Bytes::from(encode_error_response(status)),
            status,
            cacheable: None,
            source: Source::Live,
        }
    }
}

type CacheKey = (String, String);
/// Responses of one certificate, by the exact CertID DER they echo.
type ByCertId = HashMap<Vec<u8>, Arc<CachedResponse>>;
/// (issuer id, CertID DER) of a cached `unknown` answer.
type UnknownKey = (String, Vec<u8>);

/// Per-CA delegated responders and the pre-signed response cache. Lives in
/// `AppState` (field `ocsp`).
pub struct OcspService {
    limits: OcspLimits,
    /// Permits for live answers (see the module docs).
    live: Arc<tokio::sync::Semaphore>,
    /// Nonce-less `unknown` answers by (issuer id, CertID DER), each until
    /// `this_update + unknown_ttl`.
    unknown: Mutex<HashMap<UnknownKey, Arc<CachedResponse>>>,
    responders: RwLock<HashMap<String, Arc<OcspResponder>>>,
    /// Serializes responder (re)issuance so two requests never both mint one.
    issuing: tokio::sync::Mutex<()>,
    /// Responders kept in the store and shared by replicas; `None`: in
    /// memory only (unit tests).
    share: Option<crate::ocsp_responders::ResponderShare>,
    cache: Mutex<HashMap<CacheKey, ByCertId>>,
    cache_len: AtomicU64,
    /// Statuses read from the store, by (issuer id, serial): nonce and
    /// multi-CertID requests are signed live but need not read the store
    /// again for a certificate already looked up. `unknown` is never kept;
    /// the same epoch discipline as the response cache applies, and
    /// `invalidate` drops the entry on revocation.
    statuses: Mutex<HashMap<CacheKey, CertStatus>>,
    /// Bumped by every invalidation (see the module docs).
    epoch: AtomicU64,
}

impl Default for OcspService {
    fn default() -> Self {
        OcspService::new(OcspLimits::default())
    }
}

pub(crate) fn needs_renewal(r: &OcspResponder, issuer: &Issuer, now: OffsetDateTime) -> bool {
    let total = r.not_after() - r.not_before();
    let left = r.not_after() - now;
    // Renew when under a third is left, unless a new one could not outlive
    // the current one (the CA itself ends first).
    left * 3 < total && issuer.not_after() > r.not_after()
}

fn http_date(t: OffsetDateTime) -> String {
    t.format(&Rfc2822)
        .unwrap_or_default()
        .replace("+0000", "GMT")
}

impl OcspService {
    /// A service with no responders yet, bounded by `limits`.
    pub fn new(limits: OcspLimits) -> OcspService {
        OcspService {
            live: Arc::new(tokio::sync::Semaphore::new(limits.max_live_signing.max(1))),
            limits,
            unknown: Mutex::new(HashMap::new()),
            responders: RwLock::default(),
            issuing: tokio::sync::Mutex::new(()),
            share: None,
            cache: Mutex::new(HashMap::new()),
            cache_len: AtomicU64::new(0),
            statuses: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        }
    }

    /// A service whose responders live in the store, shared with every
    /// replica (see [`crate::ocsp_responders`]).
    pub fn shared(
        limits: OcspLimits,
        share: crate::ocsp_responders::ResponderShare,
    ) -> OcspService {
        OcspService {
            share: Some(share),
            ..OcspService::new(limits)
        }
    }

    /// The bounds this service runs with.
    pub fn limits(&self) -> OcspLimits {
        self.limits
    }

    fn unknown_get(&self, issuer_id: &str, cert_id: &[u8], now: OffsetDateTime) -> Option<Answer> {
        let map = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        let c = map.get(&(issuer_id.to_string(), cert_id.to_vec()))?;
        if now >= c.this_update + self.limits.unknown_ttl || now >= c.next_update {
            return None;
        }
        Some(Answer {
            der: c.der.clone(),
            status: ResponseStatus::Successful,
            cacheable: None,
            source: Source::UnknownCached,
        })
    }

    fn unknown_put(&self, issuer_id: &str, cert_id: Vec<u8>, entry: Arc<CachedResponse>) {
        if self.limits.unknown_ttl <= Duration::ZERO {
            return;
        }
        let mut map = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_UNKNOWN_ENTRIES {
            map.clear();
        }
        map.insert((issuer_id.to_string(), cert_id), entry);
    }

    /// Issues a responder for every CA in `issuers` that has none or whose
    /// responder has less than a third of its validity left; drops
    /// responders of CAs no longer listed. Returns how many were issued.
    /// Key generation (slow for RSA) runs on a blocking thread. CAs that
    /// cannot get a responder (expired) are reported in the error after
    /// the others were handled.
    pub async fn ensure(
        &self,
        store: &Arc<dyn Store>,
        issuers: &[Arc<IssuingCa>],
        now: OffsetDateTime,
    ) -> Result<usize, OcspServiceError> {
        let _guard = self.issuing.lock().await;
        let current = self
            .responders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut next: HashMap<String, Arc<OcspResponder>> = HashMap::new();
        let mut issued = 0;
        let mut first_err = None;
        for ca in issuers {
            let issuer = &ca.issuer;
            match current.get(issuer.id()) {
                Some(r) if !needs_renewal(r, issuer, now) && r.not_after() > now => {
                    next.insert(issuer.id().to_string(), r.clone());
                }
                old => match self.fresh_responder(store, ca, now).await {
                    Ok(Some((r, new))) => {
                        if new {
                            tracing::info!(ca = issuer.id(), not_after = %r.not_after(), "OCSP responder certificate issued");
                        } else {
                            tracing::info!(ca = issuer.id(), not_after = %r.not_after(), "OCSP responder certificate loaded from the store");
                        }
                        next.insert(issuer.id().to_string(), Arc::new(r));
                        issued += 1;
                    }
                    Ok(None) => {
                        if let Some(r) = old.filter(|r| r.not_after() > now) {
                            next.insert(issuer.id().to_string(), r.clone());
                        }
                    }
                    Err(err) => {
                        tracing::error!(ca = issuer.id(), error = %err, "cannot issue an OCSP responder certificate");
                        if let Some(r) = old.filter(|r| r.not_after() > now) {
                            next.insert(issuer.id().to_string(), r.clone());
                        }
                        first_err.get_or_insert(OcspServiceError::Responder {
                            ca: issuer.id().to_string(),
                            err,
                        });
                    }
                },
            }
        }
        *self.responders.write().unwrap_or_else(|e| e.into_inner()) = next;
        match first_err {
            Some(e) => Err(e),
            None => Ok(issued),
        }
    }

    /// A new responder for `issuer`: from the store when shared (`true`
    /// if this call issued it), else issued here.
    async fn fresh_responder(
        &self,
        store: &Arc<dyn Store>,
        ca: &Arc<IssuingCa>,
        now: OffsetDateTime,
    ) -> Result<Option<(OcspResponder, bool)>, crate::authority::signing::SigningError> {
        match &self.share {
            Some(share) => share.obtain(store, ca, now).await,
            None => crate::authority::signing::sign_ocsp_responder(
                store,
                ca,
                now,
                RESPONDER_VALIDITY,
                RESPONDER_BACKDATE,
            )
            .await
            .map(|r| Some((r, true))),
        }
    }

    /// The responder of CA `issuer_id`, if one is set up.
    pub fn responder(&self, issuer_id: &str) -> Option<Arc<OcspResponder>> {
        self.responders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(issuer_id)
            .cloned()
    }

    fn matching(&self, id: &CertId) -> Option<Arc<OcspResponder>> {
        self.responders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|r| r.matches(id))
            .cloned()
    }

    /// Drops the pre-signed responses for one certificate; call after its
    /// revocation is durable.
    pub fn invalidate(&self, issuer_id: &str, serial_hex: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let key = (issuer_id.to_string(), serial_hex.to_ascii_lowercase());
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.remove(&key) {
            self.cache_len.fetch_sub(m.len() as u64, Ordering::Relaxed);
        }
    }

    /// Drops every pre-signed response and remembered status (a
    /// revocation through another replica, serial unknown here: see
    /// [`crate::propagate`]). The epoch bump keeps answers computed from
    /// earlier reads out of the caches.
    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.clear();
        self.cache_len.store(0, Ordering::Relaxed);
    }

    /// The status of `id` under CA `issuer_id`: remembered, or read from
    /// the store (and remembered unless `unknown`, or unless an
    /// invalidation happened since `epoch` was read — checked under the
    /// lock, as in `cache_put`).
    async fn status(
        &self,
        store: &dyn Store,
        issuer_id: &str,
        id: &CertId,
        epoch: u64,
    ) -> Result<CertStatus, StoreError> {
        let Ok(serial) = Serial::from_bytes(id.serial_bytes()) else {
            return Ok(CertStatus::Unknown); // zero, negative or over-long: never ours
        };
        let key = (issuer_id.to_string(), serial.to_hex());
        if let Some(s) = self
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(s.clone());
        }
        let status = status_of(store, issuer_id, &serial).await?;
        if status != CertStatus::Unknown {
            let mut statuses = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
            if self.epoch.load(Ordering::SeqCst) == epoch {
                if statuses.len() >= MAX_STATUS_ENTRIES {
                    statuses.clear();
                }
                statuses.insert(key, status.clone());
            }
        }
        Ok(status)
    }

    /// Number of cached responses.
    #[cfg(test)]
    pub fn cached(&self) -> usize {
        self.cache_len.load(Ordering::Relaxed) as usize
    }

    fn cache_get(
        &self,
        key: &CacheKey,
        cert_id: &[u8],
        now: OffsetDateTime,
    ) -> Option<Arc<CachedResponse>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .and_then(|m| m.get(cert_id))
            .filter(|c| now - c.this_update < RESPONSE_REFRESH && now < c.next_update)
            .cloned()
    }

    fn cache_put(
        &self,
        key: CacheKey,
        cert_id: Vec<u8>,
        entry: Arc<CachedResponse>,
        epoch: u64,
        now: OffsetDateTime,
    ) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock: invalidate() bumps the epoch before it
        // takes the lock, so a response computed before a revocation can
        // never land after the invalidation.
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if self.cache_len.load(Ordering::Relaxed) as usize >= MAX_CACHE_ENTRIES {
            cache.retain(|_, m| {
                m.retain(|_, c| now - c.this_update < RESPONSE_REFRESH);
                !m.is_empty()
            });
            let mut n: usize = cache.values().map(HashMap::len).sum();
            if n >= MAX_CACHE_ENTRIES {
                cache.clear();
                n = 0;
            }
            self.cache_len.store(n as u64, Ordering::Relaxed);
        }
        if cache
            .entry(key)
            .or_default()
            .insert(cert_id, entry)
            .is_none()
        {
            self.cache_len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The pre-signed answer to `der` when the cache holds one (a nonce-less
    /// request for one certificate of a CA whose responder is set up), else
    /// `None` and the caller goes through [`OcspService::respond`]. Reads
    /// neither the store nor any key, so it can run on an async worker.
    /// `is_current` says whether a CA id is still served (as `respond` checks
    /// against its `issuers`).
    ///
    /// With `drop_nonce`, a request with a nonce is answered the same way,
    /// without the nonce (RFC 5019 §2.2.1, RFC 8954 §2.1): the fallback
    /// when no signing slot is free.
    pub fn cached_answer(
        &self,
        der: &[u8],
        now: OffsetDateTime,
        is_current: impl Fn(&str) -> bool,
        drop_nonce: bool,
    ) -> Option<Answer> {
        let req = OcspRequest::from_der(der).ok()?;
        if (req.nonce.is_some() && !drop_nonce) || req.requests.len() != 1 {
            return None;
        }
        let id = &req.requests[0].cert_id;
        let responder = self.matching(id).filter(|r| is_current(r.issuer_id()))?;
        let serial = Serial::from_bytes(id.serial_bytes()).ok()?;
        let key = (responder.issuer_id().to_string(), serial.to_hex());
        let cert_id = id.to_der_bytes().ok()?;
        let mut answer = match self.cache_get(&key, &cert_id, now) {
            Some(c) => Answer {
                der: c.der.clone(),
                status: ResponseStatus::Successful,
                cacheable: Some(c),
                source: Source::Presigned,
            },
            None => self.unknown_get(responder.issuer_id(), &cert_id, now)?,
        };
        if req.nonce.is_some() {
            answer.source = Source::NonceFallback;
            // Not for shared HTTP caches: the request asked for a fresh one.
            answer.cacheable = None;
        }
        Some(answer)
    }

    /// Answers `der` within the service's bounds: from the caches when
    /// possible, else by `run` (which calls [`OcspService::respond`]) in a
    /// task of its own holding a signing permit; when every permit is
    /// taken, a nonce request gets the pre-signed nonce-less response if
    /// one is cached, and anything else waits up to
    /// [`OcspLimits::queue_wait`] before `tryLater`. `is_current` says
    /// whether a CA id is still served.
    pub async fn answer<F, Fut>(
        &self,
        der: Vec<u8>,
        now: OffsetDateTime,
        is_current: impl Fn(&str) -> bool,
        run: F,
    ) -> Answer
    where
        F: FnOnce(Vec<u8>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Answer> + Send + 'static,
    {
        if let Some(a) = self.cached_answer(&der, now, &is_current, false) {
            return a;
        }
        let permit = match self.live.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if let Some(a) = self.cached_answer(&der, now, &is_current, true) {
                    return a;
                }
                let wait = self.live.clone().acquire_owned();
                match tokio::time::timeout(self.limits.queue_wait, wait).await {
                    Ok(Ok(p)) => p,
                    _ => return Answer::error(ResponseStatus::TryLater),
                }
            }
        };
        // The permit travels with the work: a request given up by its
        // client still holds its slot until the task is done.
        let work = async move {
            let _permit = permit;
            run(der).await
        };
        match tokio::spawn(work).await {
            Ok(a) => a,
            Err(_) => Answer::error(ResponseStatus::InternalError),
        }
    }

    /// Answers one DER `OCSPRequest`. `issuers` are the CAs we may answer
    /// for (responders are set up lazily for any that lack one). Store
    /// reads are awaited; the signature is made on a blocking thread.
    pub async fn respond(
        &self,
        der: &[u8],
        store: &Arc<dyn Store>,
        issuers: &[Arc<IssuingCa>],
        now: OffsetDateTime,
    ) -> Answer {
        let req = match OcspRequest::from_der(der) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "malformed OCSP request");
                return Answer::error(ResponseStatus::MalformedRequest);
            }
        };
        if req.requests.len() > MAX_CERT_IDS {
            return Answer::error(ResponseStatus::MalformedRequest);
        }
        let first = &req.requests[0].cert_id;
        let responder = match self.matching(first) {
            Some(r) => r,
            None => {
                // A CA may have been added since start: set responders up and retry.
                let missing = issuers
                    .iter()
                    .any(|i| self.responder(i.issuer.id()).is_none());
                if missing {
                    let _ = self.ensure(store, issuers, now).await;
                }
                match self.matching(first) {
                    Some(r) => r,
                    None => return Answer::error(ResponseStatus::Unauthorized),
                }
            }
        };
        let Some(issuer) = issuers
            .iter()
            .map(|i| &i.issuer)
            .find(|i| i.id() == responder.issuer_id())
        else {
            return Answer::error(ResponseStatus::Unauthorized);
        };
        let responder = if needs_renewal(&responder, issuer, now) || responder.not_after() <= now {
            let _ = self.ensure(store, issuers, now).await;
            match self.responder(issuer.id()) {
                Some(r) if r.not_after() > now => r,
                _ => return Answer::error(ResponseStatus::TryLater),
            }
        } else {
            responder
        };
        if !req.requests.iter().all(|r| responder.matches(&r.cert_id)) {
            // One response is signed by one responder: every CertID must name its CA.
            return Answer::error(ResponseStatus::Unauthorized);
        }

        let single = req.nonce.is_none() && req.requests.len() == 1;
        let cache_key = if single {
            Serial::from_bytes(first.serial_bytes())
                .ok()
                .map(|s| (responder.issuer_id().to_string(), s.to_hex()))
        } else {
            None
        };
        let cert_id_der = first.to_der_bytes().unwrap_or_default();
        if let Some(key) = &cache_key {
            if let Some(c) = self.cache_get(key, &cert_id_der, now) {
                return Answer {
                    der: c.der.clone(),
                    status: ResponseStatus::Successful,
                    cacheable: Some(c),
                    source: Source::Presigned,
                };
            }
            if let Some(a) = self.unknown_get(responder.issuer_id(), &cert_id_der, now) {
                return a;
            }
        }

        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut items = Vec::with_capacity(req.requests.len());
        for r in &req.requests {
            match self
                .status(store.as_ref(), responder.issuer_id(), &r.cert_id, epoch)
                .await
            {
                Ok(s) => items.push((r.cert_id.clone(), s)),
                Err(e) => {
                    crate::metrics::storage_error(crate::metrics::StorageOp::Ocsp, &e);
                    tracing::error!(error = %e, "OCSP status lookup failed");
                    return Answer::error(ResponseStatus::InternalError);
                }
            }
        }
        let this_update = now.replace_nanosecond(0).unwrap_or(now);
        let next_update = (this_update + RESPONSE_VALIDITY).min(responder.not_after());
        let first_status = items.first().map(|(_, s)| s.clone());
        let signer = responder.clone();
        let nonce = req.nonce.clone();
        let signed = tokio::task::spawn_blocking(move || {
            signer.sign_response(
                &items,
                this_update,
                this_update,
                next_update,
                nonce.as_deref(),
            )
        })
        .await;
        let der = match signed {
            Ok(Ok(d)) => Bytes::from(d),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "OCSP signing failed");
                return Answer::error(ResponseStatus::InternalError);
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP signing task failed");
                return Answer::error(ResponseStatus::InternalError);
            }
        };
        let entry = || {
            Arc::new(CachedResponse {
                etag: format!("\"{}\"", &crate::ids::sha256_hex(&der)[..32]),
                der: der.clone(),
                this_update,
                next_update,
            })
        };
        let cacheable = match (cache_key, first_status) {
            (Some(key), Some(status)) if status != CertStatus::Unknown => {
                let entry = entry();
                self.cache_put(key, cert_id_der, entry.clone(), epoch, now);
                Some(entry)
            }
            (Some(_), Some(_)) => {
                self.unknown_put(responder.issuer_id(), cert_id_der, entry());
                None
            }
            _ => None,
        };
        Answer {
            der,
            status: ResponseStatus::Successful,
            cacheable,
            source: Source::Live,
        }
    }
}

/// The status of certificate `serial` under CA `issuer_id` from the store.
async fn status_of(
    store: &dyn Store,
    issuer_id: &str,
    serial: &Serial,
) -> Result<CertStatus, StoreError> {
    Ok(match store.certificate_status(&serial.to_hex()).await? {
        Some(rec) if rec.issuer_id == issuer_id => match rec.revocation {
            Some(r) => revoked_status(r.revoked_at, r.reason).unwrap_or(CertStatus::Unknown),
            None => CertStatus::Good,
        },
        _ => CertStatus::Unknown,
    })
}

/// Sets up (or renews) the delegated responder of every CA. Call at start
/// and from the housekeeping loop (key generation runs on a blocking
/// thread). Requests also do this lazily when needed.
pub async fn ensure_responders(state: &AppState) -> Result<usize, OcspServiceError> {
    let cas = state.ca_set();
    let issuers: Vec<Arc<IssuingCa>> = cas.by_id.values().cloned().collect();
    state
        .ocsp
        .ensure(&state.store, &issuers, OffsetDateTime::now_utc())
        .await
}

fn ocsp_response(
    answer: &Answer,
    get: bool,
    if_none_match: Option<&HeaderValue>,
) -> Response<Body> {
    let mut b = Response::builder().header(CONTENT_TYPE, OCSP_RESPONSE_TYPE);
    match (&answer.cacheable, get) {
        (Some(c), true) => {
            let now = OffsetDateTime::now_utc();
            let refresh_at = (c.this_update + RESPONSE_REFRESH).min(c.next_update);
            let max_age = (refresh_at - now).whole_seconds().max(0);
            b = b
                .header(
                    CACHE_CONTROL,
                    format!("max-age={max_age}, public, no-transform, must-revalidate"),
                )
                .header(LAST_MODIFIED, http_date(c.this_update))
                .header(EXPIRES, http_date(c.next_update))
                .header(ETAG, &c.etag);
            let hit = if_none_match
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == c.etag || t.trim() == "*"));
            if hit {
                return b
                    .status(StatusCode::NOT_MODIFIED)
                    .body(full(Bytes::new()))
                    .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""));
            }
        }
        _ => b = b.header(CACHE_CONTROL, "no-store"),
    }
    b.body(full(answer.der.clone()))
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""))
}

fn metric(state: &AppState, a: &Answer) {
    state.metrics.inc(match (a.status, a.source) {
        (ResponseStatus::Successful, Source::Presigned) => "ocsp_responses_presigned",
        (ResponseStatus::Successful, Source::UnknownCached) => "ocsp_responses_unknown_cached",
        (ResponseStatus::Successful, Source::NonceFallback) => "ocsp_nonce_fallbacks",
        (ResponseStatus::Successful, Source::Live) => "ocsp_responses_signed",
        (ResponseStatus::MalformedRequest, _) => "ocsp_malformed",
        (ResponseStatus::Unauthorized, _) => "ocsp_unauthorized",
        (ResponseStatus::TryLater, _) => "ocsp_busy",
        _ => "ocsp_errors",
    });
}

/// Serves `/ocsp` and `/ocsp/...` on the plain-HTTP listener: GET (and HEAD)
/// with the request in the path, POST with it in the body.
pub async fn handle(state: &Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let if_none_match = req.headers().get(IF_NONE_MATCH).cloned();
    let der: Result<Vec<u8>, ()> = if get {
        let path = req.uri().path();
        let seg = path.strip_prefix("/ocsp/").unwrap_or("");
        decode_get_path(seg).map_err(|e| tracing::debug!(error = %e, "bad OCSP GET path"))
    } else if req.method() == Method::POST {
        let ct_ok = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case(OCSP_REQUEST_TYPE))
            });
        if !ct_ok {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected application/ocsp-request\n",
            );
        }
        let limited = http_body_util::Limited::new(req.into_body(), MAX_REQUEST_SIZE);
        match limited.collect().await {
            Ok(c) => Ok(c.to_bytes().to_vec()),
            Err(_) => Err(()),
        }
    } else {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "OCSP takes GET or POST\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return r;
    };
    let answer = match der {
        // Cache hits are answered on the async worker (no store, no
        // signature); store reads, signing and (rarely) responder key
        // generation run within the signing bound, the signatures and key
        // generation on a blocking thread.
        Ok(der) => {
            let st = state.clone();
            let run = move |der: Vec<u8>| async move {
                let cas = st.ca_set();
                let issuers: Vec<Arc<IssuingCa>> = cas.by_id.values().cloned().collect();
                st.ocsp
                    .respond(&der, &st.store, &issuers, OffsetDateTime::now_utc())
                    .await
            };
            let cas = state.ca_set();
            state
                .ocsp
                .answer(
                    der,
                    OffsetDateTime::now_utc(),
                    |id| cas.by_id.contains_key(id),
                    run,
                )
                .await
        }
        Err(()) => Answer::error(ResponseStatus::MalformedRequest),
    };
    metric(state, &answer);
    ocsp_response(&answer, get, if_none_match.as_ref())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on unexpected failures")]

    use std::path::Path;
    use std::process::Command;

    use ironseal_ca_core::cert::pem_encode;
    use ironseal_ca_core::hierarchy::{create_intermediate, create_root, CaProfile, IssuerUrls};
    use ironseal_ca_core::keys::KeyAlgorithm;
    use ironseal_ca_core::revocation::RevocationReason;
    use ironseal_protocol::acme::types::{Identifier, IdentifierKind};
    use ironseal_protocol::ocsp::response_status;
    use ironseal_storage::{CertificateRecord, MemoryStore, RevocationRecord};

    use super::*;

    struct Pki {
        root: Arc<IssuingCa>,
        inter: Arc<IssuingCa>,
        other: Arc<IssuingCa>,
    }

    fn ca(issuer: Issuer) -> Arc<IssuingCa> {
        Arc::new(IssuingCa {
            issuer,
            chain_der: Vec::new(),
            chains: Vec::new(),
        })
    }

    /// A `run` for [`OcspService::answer`] that must not be called.
    fn never(_: Vec<u8>) -> std::future::Ready<Answer> {
        unreachable!("signed live")
    }

    fn profile(cn: &str, nb: OffsetDateTime, na: OffsetDateTime, pl: u8) -> CaProfile {
        CaProfile {
            common_name: cn.into(),
            organization: Some("ironseal test".into()),
            algorithm: KeyAlgorithm::EcdsaP256,
            not_before: nb,
            not_after: na,
            path_len: Some(pl),
            ..Default::default()
        }
    }

    fn pki() -> Pki {
        let t = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let mk_root = |cn: &str| {
            let (k, d) = create_root(
                &profile(cn, t - Duration::days(1), t + Duration::days(3650), 1),
                Serial::from_random(rand::random()),
            )
            .unwrap();
            Issuer::new(cn.into(), d, k, IssuerUrls::default()).unwrap()
        };
        let root = mk_root("root");
        let other = mk_root("other");
        let (k, d) = create_intermediate(
            &profile("inter", t - Duration::hours(2), t + Duration::days(365), 0),
            Serial::from_random(rand::random()),
            &root,
        )
        .unwrap();
        let inter = Issuer::new("inter".into(), d, k, IssuerUrls::default()).unwrap();
        Pki {
            root: ca(root),
            inter: ca(inter),
            other: ca(other),
        }
    }

    fn record(serial: &Serial, issuer: &str) -> CertificateRecord {
        let now = OffsetDateTime::now_utc();
        CertificateRecord {
            serial: serial.to_hex(),
            issuer_id: issuer.into(),
            account_id: "acct".into(),
            order_id: "order".into(),
            der: Vec::new(),
            not_before: now,
            not_after: now + Duration::days(90),
            public_key_sha256: "00".into(),
            identifiers: vec![Identifier {
                kind: IdentifierKind::Dns,
                value: "leaf.example".into(),
            }],
            revocation: None,
            replaced_by: None,
            renew_early: false,
            origin: Default::default(),
        }
    }

    /// A request made by the openssl CLI for `serial` under `issuer`.
    fn openssl_request(dir: &Path, issuer: &Issuer, serial: &Serial, nonce: bool) -> Vec<u8> {
        let issuer_pem = dir.join(format!("{}.pem", issuer.id()));
        std::fs::write(&issuer_pem, pem_encode("CERTIFICATE", issuer.cert_der())).unwrap();
        let out = dir.join("req.der");
        let mut c = Command::new("openssl");
        c.args(["ocsp", "-issuer"])
            .arg(&issuer_pem)
            .args(["-serial", &format!("0x{}", serial.to_hex())])
            .arg("-reqout")
            .arg(&out);
        if !nonce {
            c.arg("-no_nonce");
        }
        let o = c.output().expect("openssl CLI missing");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out).unwrap()
    }

    /// `openssl ocsp -respin` with the request: returns its output.
    fn openssl_check(dir: &Path, p: &Pki, req: &[u8], resp: &[u8]) -> String {
        let (rq, rs, ca, it) = (
            dir.join("check-req.der"),
            dir.join("check-resp.der"),
            dir.join("check-root.pem"),
            dir.join("check-inter.pem"),
        );
        std::fs::write(&rq, req).unwrap();
        std::fs::write(&rs, resp).unwrap();
        std::fs::write(&ca, pem_encode("CERTIFICATE", p.root.issuer.cert_der())).unwrap();
        std::fs::write(&it, pem_encode("CERTIFICATE", p.inter.issuer.cert_der())).unwrap();
        let o = Command::new("openssl")
            .args(["ocsp", "-respin"])
            .arg(&rs)
            .arg("-reqin")
            .arg(&rq)
            .arg("-issuer")
            .arg(&it)
            .arg("-CAfile")
            .arg(&ca)
            .arg("-resp_text")
            .output()
            .expect("openssl CLI missing");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && text.contains("Response verify OK"),
            "{text}"
        );
        text
    }

    #[tokio::test]
    async fn invalidate_all_forgets_every_status_a_replica_may_have_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let svc = OcspService::default();
        let issuers = [p.root.clone(), p.inter.clone()];
        let now = OffsetDateTime::now_utc();
        svc.ensure(&store, &issuers, now).await.unwrap();
        let serial = Serial::from_random(rand::random());
        store
            .insert_certificate(&record(&serial, "inter"))
            .await
            .unwrap();
        let nreq = openssl_request(dir.path(), &p.inter.issuer, &serial, true);
        let check = |der: &[u8]| openssl_check(dir.path(), &p, &nreq, der);
        assert!(check(&svc.respond(&nreq, &store, &issuers, now).await.der)
            .contains("Cert Status: good"));
        // Revoked by another replica: this one knows only that some
        // revocation happened.
        store
            .revoke_certificate(
                &serial.to_hex(),
                RevocationRecord {
                    revoked_at: now - Duration::minutes(1),
                    reason: RevocationReason::Superseded,
                },
            )
            .await
            .unwrap();
        assert!(check(&svc.respond(&nreq, &store, &issuers, now).await.der)
            .contains("Cert Status: good"));
        svc.invalidate_all();
        assert!(svc.statuses.lock().unwrap().is_empty());
        assert!(check(&svc.respond(&nreq, &store, &issuers, now).await.der)
            .contains("Cert Status: revoked"));
    }

    #[tokio::test]
    async fn nonce_statuses_are_remembered_until_invalidated() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let svc = OcspService::default();
        let issuers = [p.root.clone(), p.inter.clone()];
        let now = OffsetDateTime::now_utc();
        svc.ensure(&store, &issuers, now).await.unwrap();
        let serial = Serial::from_random(rand::random());
        store
            .insert_certificate(&record(&serial, "inter"))
            .await
            .unwrap();
        let nreq = openssl_request(dir.path(), &p.inter.issuer, &serial, true);
        let check = |der: &[u8]| openssl_check(dir.path(), &p, &nreq, der);
        assert!(check(&svc.respond(&nreq, &store, &issuers, now).await.der)
            .contains("Cert Status: good"));

        // Revoked in the store but not yet published: the remembered
        // status stands (as the pre-signed cache does until `publish`).
        store
            .revoke_certificate(
                &serial.to_hex(),
                RevocationRecord {
                    revoked_at: now - Duration::minutes(1),
                    reason: RevocationReason::Superseded,
                },
            )
            .await
            .unwrap();
        assert!(check(&svc.respond(&nreq, &store, &issuers, now).await.der)
            .contains("Cert Status: good"));
        // Published: the next nonce answer reads the store again.
        svc.invalidate("inter", &serial.to_hex());
        let text = check(&svc.respond(&nreq, &store, &issuers, now).await.der);
        assert!(
            text.contains("Cert Status: revoked") && text.contains("superseded"),
            "{text}"
        );

        // A status read before an invalidation is not remembered after it.
        let other = Serial::from_random(rand::random());
        store
            .insert_certificate(&record(&other, "inter"))
            .await
            .unwrap();
        let oreq = openssl_request(dir.path(), &p.inter.issuer, &other, true);
        let cert_id = OcspRequest::from_der(&oreq).unwrap().requests[0]
            .cert_id
            .clone();
        let stale = svc.epoch.load(Ordering::SeqCst);
        svc.invalidate("inter", "00ff");
        assert_eq!(
            svc.status(store.as_ref(), "inter", &cert_id, stale)
                .await
                .unwrap(),
            CertStatus::Good
        );
        let key = ("inter".to_string(), other.to_hex());
        assert!(!svc.statuses.lock().unwrap().contains_key(&key));
        let fresh = svc.epoch.load(Ordering::SeqCst);
        svc.status(store.as_ref(), "inter", &cert_id, fresh)
            .await
            .unwrap();
        assert!(svc.statuses.lock().unwrap().contains_key(&key));
        // Unknown serials are never remembered.
        let unknown = Serial::from_random(rand::random());
        let ureq = openssl_request(dir.path(), &p.inter.issuer, &unknown, true);
        let uid = OcspRequest::from_der(&ureq).unwrap().requests[0]
            .cert_id
            .clone();
        let remembered = svc.statuses.lock().unwrap().len();
        assert_eq!(
            svc.status(store.as_ref(), "inter", &uid, fresh)
                .await
                .unwrap(),
            CertStatus::Unknown
        );
        assert_eq!(svc.statuses.lock().unwrap().len(), remembered);
    }

    #[tokio::test]
    async fn statuses_cache_invalidation_and_nonces() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let svc = OcspService::default();
        let issuers = [p.root.clone(), p.inter.clone()];
        let now = OffsetDateTime::now_utc();
        assert_eq!(svc.ensure(&store, &issuers, now).await.unwrap(), 2);
        assert_eq!(svc.ensure(&store, &issuers, now).await.unwrap(), 0);

        let good = Serial::from_random(rand::random());
        store
            .insert_certificate(&record(&good, "inter"))
            .await
            .unwrap();
        let req = openssl_request(dir.path(), &p.inter.issuer, &good, false);
        let a = svc.respond(&req, &store, &issuers, now).await;
        assert_eq!(a.status, ResponseStatus::Successful);
        assert!(a.cacheable.is_some());
        let text = openssl_check(dir.path(), &p, &req, &a.der);
        assert!(text.contains("Cert Status: good"), "{text}");
        assert_eq!(svc.cached(), 1);
        // Served from the cache: identical bytes.
        let b = svc
            .respond(&req, &store, &issuers, now + Duration::minutes(1))
            .await;
        assert_eq!(a.der, b.der);

        // Revoked in the store: still cached until invalidated.
        let at = now - Duration::minutes(1);
        store
            .revoke_certificate(
                &good.to_hex(),
                RevocationRecord {
                    revoked_at: at,
                    reason: RevocationReason::KeyCompromise,
                },
            )
            .await
            .unwrap();
        assert_eq!(svc.respond(&req, &store, &issuers, now).await.der, a.der);
        svc.invalidate("inter", &good.to_hex().to_uppercase());
        assert_eq!(svc.cached(), 0);
        let r = svc.respond(&req, &store, &issuers, now).await;
        assert_ne!(r.der, a.der);
        let text = openssl_check(dir.path(), &p, &req, &r.der);
        assert!(
            text.contains("Cert Status: revoked") && text.contains("keyCompromise"),
            "{text}"
        );

        // Refreshed once older than a quarter of the validity.
        let later = svc
            .respond(
                &req,
                &store,
                &issuers,
                now + RESPONSE_REFRESH + Duration::seconds(1),
            )
            .await;
        assert_ne!(later.der, r.der);

        // Nonce: live-signed, echoed, not cached.
        let nreq = openssl_request(dir.path(), &p.inter.issuer, &good, true);
        let before = svc.cached();
        let n = svc.respond(&nreq, &store, &issuers, now).await;
        assert!(n.cacheable.is_none());
        assert_eq!(svc.cached(), before);
        let text = openssl_check(dir.path(), &p, &nreq, &n.der);
        assert!(
            !text.contains("WARNING: no nonce") && text.contains("OCSP Nonce"),
            "{text}"
        );

        // Unknown: answered, never HTTP-cacheable. Same for a cert of another CA.
        let unknown = Serial::from_random(rand::random());
        let ureq = openssl_request(dir.path(), &p.inter.issuer, &unknown, false);
        let u = svc.respond(&ureq, &store, &issuers, now).await;
        assert!(u.cacheable.is_none());
        assert!(openssl_check(dir.path(), &p, &ureq, &u.der).contains("Cert Status: unknown"));
        let elsewhere = Serial::from_random(rand::random());
        store
            .insert_certificate(&record(&elsewhere, "root"))
            .await
            .unwrap();
        let ereq = openssl_request(dir.path(), &p.inter.issuer, &elsewhere, false);
        let e = svc.respond(&ereq, &store, &issuers, now).await;
        assert!(openssl_check(dir.path(), &p, &ereq, &e.der).contains("Cert Status: unknown"));

        // A CA we do not serve: unauthorized. Garbage: malformedRequest.
        let foreign = openssl_request(dir.path(), &p.other.issuer, &good, false);
        let f = svc.respond(&foreign, &store, &issuers, now).await;
        assert_eq!(f.status, ResponseStatus::Unauthorized);
        assert_eq!(
            response_status(&f.der).unwrap(),
            ResponseStatus::Unauthorized
        );
        for bad in [&b""[..], b"\x30\x00", &req[..req.len() - 1]] {
            let m = svc.respond(bad, &store, &issuers, now).await;
            assert_eq!(
                response_status(&m.der).unwrap(),
                ResponseStatus::MalformedRequest
            );
        }
        let mut trailing = req.clone();
        trailing.push(0);
        assert_eq!(
            svc.respond(&trailing, &store, &issuers, now).await.status,
            ResponseStatus::MalformedRequest
        );
    }

    #[tokio::test]
    async fn responders_renew_lazily_and_by_ensure() {
        let p = pki();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let svc = OcspService::default();
        let issuers = [p.root.clone(), p.inter.clone()];
        let now = OffsetDateTime::now_utc();
        // No ensure() at start: the first request sets the responders up.
        let dir = tempfile::tempdir().unwrap();
        let s = Serial::from_random(rand::random());
        let req = openssl_request(dir.path(), &p.inter.issuer, &s, false);
        assert_eq!(
            svc.respond(&req, &store, &issuers, now).await.status,
            ResponseStatus::Successful
        );
        let first = svc.responder("inter").unwrap();
        assert_eq!(
            svc.ensure(&store, &issuers, now + Duration::days(5))
                .await
                .unwrap(),
            0
        );
        // Under a third of 30 days left (after day 20): re-issued.
        assert_eq!(
            svc.ensure(&store, &issuers, now + Duration::days(21))
                .await
                .unwrap(),
            2
        );
        let second = svc.responder("inter").unwrap();
        assert_ne!(first.cert_der(), second.cert_der());
        // Lazily on a request, too.
        let third_time = now + Duration::days(42);
        assert_eq!(
            svc.respond(&req, &store, &issuers, third_time).await.status,
            ResponseStatus::Successful
        );
        assert_ne!(
            svc.responder("inter").unwrap().cert_der(),
            second.cert_der()
        );
        // A CA that went away loses its responder.
        svc.ensure(&store, std::slice::from_ref(&p.inter), now)
            .await
            .unwrap();
        assert!(svc.responder("root").is_none());
    }

    #[test]
    fn stale_results_never_enter_the_cache() {
        let svc = OcspService::default();
        let now = OffsetDateTime::now_utc();
        let entry = Arc::new(CachedResponse {
            der: Bytes::from_static(b"x"),
            this_update: now,
            next_update: now + RESPONSE_VALIDITY,
            etag: "\"e\"".into(),
        });
        let epoch = svc.epoch.load(Ordering::SeqCst);
        svc.invalidate("inter", "01");
        svc.cache_put(
            ("inter".into(), "01".into()),
            vec![1],
            entry.clone(),
            epoch,
            now,
        );
        assert_eq!(svc.cached(), 0);
        let epoch = svc.epoch.load(Ordering::SeqCst);
        svc.cache_put(("inter".into(), "01".into()), vec![1], entry, epoch, now);
        assert_eq!(svc.cached(), 1);
    }

    /// Hardening (issue 10 item 6): a nonce-less `unknown` answer is
    /// signed once per TTL, not once per request.
    #[tokio::test]
    async fn unknown_answers_are_signed_once_per_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let svc = OcspService::new(OcspLimits {
            unknown_ttl: Duration::seconds(60),
            ..OcspLimits::default()
        });
        let issuers = [p.root.clone(), p.inter.clone()];
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let unknown = Serial::from_random(rand::random());
        let req = openssl_request(dir.path(), &p.inter.issuer, &unknown, false);
        let first = svc.respond(&req, &store, &issuers, now).await;
        assert_eq!(first.source, Source::Live);
        assert!(openssl_check(dir.path(), &p, &req, &first.der).contains("Cert Status: unknown"));
        // Within the TTL: the same bytes (a new signature would carry a
        // later producedAt), from the async path too; never HTTP-cacheable.
        let again = svc
            .respond(&req, &store, &issuers, now + Duration::seconds(30))
            .await;
        assert_eq!(again.der, first.der);
        assert_eq!(again.source, Source::UnknownCached);
        assert!(again.cacheable.is_none());
        let hit = svc
            .cached_answer(&req, now + Duration::seconds(59), |_| true, false)
            .unwrap();
        assert_eq!(hit.der, first.der);
        // After it: signed again.
        let later = svc
            .respond(&req, &store, &issuers, now + Duration::seconds(61))
            .await;
        assert_ne!(later.der, first.der);
        assert_eq!(later.source, Source::Live);
        // TTL zero: never kept.
        let off = OcspService::new(OcspLimits {
            unknown_ttl: Duration::ZERO,
            ..OcspLimits::default()
        });
        let a = off.respond(&req, &store, &issuers, now).await;
        let b = off
            .respond(&req, &store, &issuers, now + Duration::seconds(1))
            .await;
        assert_ne!(a.der, b.der);
    }

    /// Hardening (issue 10 item 6): with every signing slot taken, a
    /// nonce request gets the pre-signed nonce-less response at once
    /// (openssl still verifies it, warning about the missing nonce), and a
    /// request with nothing cached gets `tryLater` after the queue wait.
    #[tokio::test]
    async fn saturated_nonce_requests_fall_back_to_the_presigned_response() {
        let dir = tempfile::tempdir().unwrap();
        let p = Arc::new(pki());
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let svc = Arc::new(OcspService::new(OcspLimits {
            max_live_signing: 1,
            queue_wait: std::time::Duration::from_millis(100),
            unknown_ttl: Duration::seconds(60),
        }));
        let now = OffsetDateTime::now_utc();
        let good = Serial::from_random(rand::random());
        store
            .insert_certificate(&record(&good, "inter"))
            .await
            .unwrap();
        let plain = openssl_request(dir.path(), &p.inter.issuer, &good, false);
        let presigned = svc
            .respond(&plain, &store, &[p.root.clone(), p.inter.clone()], now)
            .await;
        assert!(presigned.cacheable.is_some());
        let nreq = openssl_request(dir.path(), &p.inter.issuer, &good, true);

        // A free slot: the nonce request is signed live (and echoes it).
        let run = {
            let (svc, store, p) = (svc.clone(), store.clone(), p.clone());
            move |der: Vec<u8>| async move {
                svc.respond(&der, &store, &[p.root.clone(), p.inter.clone()], now)
                    .await
            }
        };
        let live = svc.answer(nreq.clone(), now, |_| true, run).await;
        assert_eq!(live.source, Source::Live);
        assert!(openssl_check(dir.path(), &p, &nreq, &live.der).contains("OCSP Nonce"));

        // Every slot taken: the pre-signed response, promptly, unsigned anew.
        let held = svc.live.clone().try_acquire_owned().unwrap();
        let started = std::time::Instant::now();
        let fallback = svc.answer(nreq.clone(), now, |_| true, never).await;
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        assert_eq!(fallback.source, Source::NonceFallback);
        assert_eq!(fallback.der, presigned.der);
        assert!(fallback.cacheable.is_none());
        let text = openssl_check(dir.path(), &p, &nreq, &fallback.der);
        assert!(
            text.contains("WARNING: no nonce in response") && text.contains("Cert Status: good"),
            "{text}"
        );

        // Nothing cached for this one: tryLater after the queue wait.
        let other = Serial::from_random(rand::random());
        let oreq = openssl_request(dir.path(), &p.inter.issuer, &other, true);
        let busy = svc.answer(oreq, now, |_| true, never).await;
        assert_eq!(busy.status, ResponseStatus::TryLater);
        assert!(started.elapsed() >= std::time::Duration::from_millis(100));

        // A slot freed while waiting: served.
        let waiter = {
            let svc = svc.clone();
            let plain2 = openssl_request(dir.path(), &p.inter.issuer, &other, false);
            tokio::spawn(async move {
                svc.answer(
                    plain2,
                    now,
                    |_| true,
                    |_| async { Answer::error(ResponseStatus::InternalError) },
                )
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(held);
        assert_eq!(waiter.await.unwrap().status, ResponseStatus::InternalError);
    }

    #[test]
    fn rfc5019_headers() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let entry = Arc::new(CachedResponse {
            der: Bytes::from_static(b"resp"),
            this_update: now,
            next_update: now + RESPONSE_VALIDITY,
            etag: "\"abc\"".into(),
        });
        let a = Answer {
            der: entry.der.clone(),
            status: ResponseStatus::Successful,
            cacheable: Some(entry),
            source: Source::Presigned,
        };
        let r = ocsp_response(&a, true, None);
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[CONTENT_TYPE], OCSP_RESPONSE_TYPE);
        let cc = h[CACHE_CONTROL].to_str().unwrap();
        assert!(
            cc.ends_with(", public, no-transform, must-revalidate"),
            "{cc}"
        );
        let max_age: i64 = cc
            .trim_start_matches("max-age=")
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            max_age > 0 && max_age <= RESPONSE_REFRESH.whole_seconds(),
            "{max_age}"
        );
        assert_eq!(h[LAST_MODIFIED].to_str().unwrap(), http_date(now));
        assert!(h[LAST_MODIFIED].to_str().unwrap().ends_with(" GMT"));
        assert_eq!(
            h[EXPIRES].to_str().unwrap(),
            http_date(now + RESPONSE_VALIDITY)
        );
        assert_eq!(h[ETAG], "\"abc\"");
        let inm = HeaderValue::from_static("\"abc\"");
        assert_eq!(
            ocsp_response(&a, true, Some(&inm)).status(),
            StatusCode::NOT_MODIFIED
        );
        // POST and live responses are not for shared caches.
        assert_eq!(
            ocsp_response(&a, false, None).headers()[CACHE_CONTROL],
            "no-store"
        );
        let e = Answer::error(ResponseStatus::MalformedRequest);
        let r = ocsp_response(&e, true, None);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    }
}
