//! Prometheus metrics in the text exposition format (version 0.0.4), served
//! on the plain HTTP listener at /metrics. Counters, gauges and fixed-bucket
//! histograms, no external dependency.
//!
//! Naming follows the Prometheus conventions (`ironseal_` prefix, `_total`
//! for counters, base units: `_seconds`, `_timestamp_seconds`) and the
//! expiry gauges of cert-manager (`..._expiration_timestamp_seconds`).
//! docs/metrics.md lists every metric with its labels.
//!
//! Events are recorded through typed methods ([`Metrics::certificate_issued`],
//! [`Metrics::validation`], ...), so call sites stay one line. Gauges that
//! describe the current state (CA and OCSP responder expiry) are read at
//! scrape time by [`render`]. Label values that come from configuration or
//! the store (profile, CA id) are escaped; none comes from a request, so
//! cardinality is bounded by the configuration (profiles, CAs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ironseal_storage::{CertificateRecord, ChallengeType, OrderRecord, StoreError};
use time::OffsetDateTime;

use crate::state::AppState;

/// Histogram upper bounds in seconds (request latencies).
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Upper bounds (seconds) of the remaining-lifetime histogram: 1 h, 6 h,
/// 1 d, 3 d, 7 d, 14 d, 30 d, 60 d, 90 d, 180 d, 1 y, 2 y.
const LIFETIME_BUCKETS: [i64; 12] = [
    3_600, 21_600, 86_400, 259_200, 604_800, 1_209_600, 2_592_000, 5_184_000, 7_776_000,
    15_552_000, 31_536_000, 63_072_000,
];

/// Granularity of the remaining-lifetime tracker: notAfter is rounded up to
/// the hour, so a profile holds at most (lifetime in hours) entries however
/// many certificates it has.
const LIFETIME_SLOT_SECS: i64 = 3_600;

/// The front end a certificate event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// RFC 8555 ACME.
    Acme,
    /// The admin API.
    Admin,
    /// The server itself (its HTTPS listener certificate).
    Server,
    /// RFC 8894 SCEP.
    Scep,
    /// RFC 7030 EST.
    Est,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Acme => "acme",
            Protocol::Admin => "admin",
            Protocol::Server => "server",
            Protocol::Scep => "scep",
            Protocol::Est => "est",
        }
    }

    /// The protocol of a certificate's origin (`CertOrigin::protocol`).
    pub fn from_name(name: &str) -> Protocol {
        match name {
            "acme" => Protocol::Acme,
            "scep" => Protocol::Scep,
            "est" => Protocol::Est,
            "server" => Protocol::Server,
            _ => Protocol::Admin,
        }
    }
}

/// The HTTP surface a request was served by, for the latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HttpProtocol {
    Acme,
    Admin,
    Ocsp,
    Crl,
    /// CA certificates, /health, /metrics.
    Pki,
    /// EST (RFC 7030) under `/.well-known/est/`.
    Est,
}

impl HttpProtocol {
    fn as_str(self) -> &'static str {
        match self {
            HttpProtocol::Acme => "acme",
            HttpProtocol::Admin => "admin",
            HttpProtocol::Ocsp => "ocsp",
            HttpProtocol::Crl => "crl",
            HttpProtocol::Pki => "pki",
            HttpProtocol::Est => "est",
        }
    }

    /// The surface of a request on the HTTPS listener.
    pub fn of_https_path(path: &str) -> HttpProtocol {
        if path.starts_with("/admin/") {
            HttpProtocol::Admin
        } else if path.starts_with("/.well-known/est/") {
            HttpProtocol::Est
        } else {
            HttpProtocol::Acme
        }
    }

    /// The surface of a request on the plain HTTP listener.
    pub fn of_plain_path(path: &str) -> HttpProtocol {
        if path == "/ocsp" || path.starts_with("/ocsp/") {
            HttpProtocol::Ocsp
        } else if path.starts_with("/crl/") {
            HttpProtocol::Crl
        } else {
            HttpProtocol::Pki
        }
    }
}

/// Whether an issuance attempt produced a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Issued,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Issued => "issued",
            Outcome::Failed => "failed",
        }
    }
}

/// Where a storage error surfaced (`ironseal_storage_errors_total{op}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageOp {
    /// Waiting for durability (flush + fdatasync).
    Flush,
    /// A read or write on behalf of an ACME or admin request.
    Request,
    /// Building a CRL.
    Crl,
    /// An OCSP status lookup.
    Ocsp,
}

const STORAGE_OPS: [StorageOp; 4] = [
    StorageOp::Flush,
    StorageOp::Request,
    StorageOp::Crl,
    StorageOp::Ocsp,
];

impl StorageOp {
    fn as_str(self) -> &'static str {
        match self {
            StorageOp::Flush => "flush",
            StorageOp::Request => "request",
            StorageOp::Crl => "crl",
            StorageOp::Ocsp => "ocsp",
        }
    }
}

/// Storage error counts by [`StorageOp`], process-wide so that the error
/// conversions (which have no state at hand) can count too.
static STORAGE_ERRORS: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

/// Counts `e` as a storage error if it is one: engine failures and corrupt
/// records. Logical outcomes (not found, conflict, already revoked) are not
/// errors of the store and are not counted.
pub fn storage_error(op: StorageOp, e: &StoreError) {
    if matches!(e, StoreError::Backend(_) | StoreError::Corrupt(_)) {
        count_storage_error(op);
    }
}

/// Counts one storage error of `op` unconditionally (e.g. a failed flush).
pub fn count_storage_error(op: StorageOp) {
    let i = STORAGE_OPS.iter().position(|o| *o == op).unwrap_or(0);
    STORAGE_ERRORS[i].fetch_add(1, Ordering::Relaxed);
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// (protocol, profile, tenant, outcome)
type IssuedKey = (&'static str, String, String, &'static str);

#[derive(Default)]
struct Inner {
    counters: BTreeMap<&'static str, u64>,
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    flush: Histogram,
    http: BTreeMap<HttpProtocol, Histogram>,
    issued: BTreeMap<IssuedKey, u64>,
    renewed: BTreeMap<(&'static str, String, String), u64>,
    revoked: BTreeMap<(&'static str, &'static str), u64>,
    validations: BTreeMap<(&'static str, &'static str), u64>,
    rate_limited: BTreeMap<&'static str, u64>,
    /// Reloads after a change through another replica, by kind.
    store_reloads: BTreeMap<&'static str, u64>,
    bad_nonce: u64,
    approval_len: u64,
    approval_oldest_secs: f64,
    /// Per CA: (thisUpdate, nextUpdate) of the last CRL built, unix seconds.
    crl: BTreeMap<String, (i64, i64)>,
    /// Per profile: unexpired, unrevoked, unreplaced certificates by
    /// notAfter rounded up to [`LIFETIME_SLOT_SECS`].
    lifetimes: BTreeMap<String, BTreeMap<i64, u64>>,
}

/// Process-wide metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Escapes a label value (text format: backslash, quote, newline).
fn esc(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn slot(not_after: OffsetDateTime) -> i64 {
    let t = not_after.unix_timestamp();
    (t + LIFETIME_SLOT_SECS - 1).div_euclid(LIFETIME_SLOT_SECS) * LIFETIME_SLOT_SECS
}

/// The profile label of an order: its named profile, else the server's
/// default profile (what newOrder applied).
pub fn profile_of(state: &AppState, order: &OrderRecord) -> String {
    order
        .profile
        .clone()
        .unwrap_or_else(|| state.config.default_profile().name.clone())
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Increments a named event counter (`ironseal_<name>_total`).
    pub fn inc(&self, name: &'static str) {
        self.add(name, 1);
    }

    /// Adds `n` to a named event counter (`ironseal_<name>_total`); the
    /// counter appears once `n` is non-zero.
    pub fn add(&self, name: &'static str, n: u64) {
        if n > 0 {
            self.with(|i| *i.counters.entry(name).or_default() += n);
        }
    }

    /// Records one ACME request's route, status and latency.
    pub fn observe_acme(&self, route: &'static str, status: u16, took: Duration) {
        self.with(|i| {
            *i.requests.entry((route, status)).or_default() += 1;
            i.latency
                .entry(route)
                .or_default()
                .observe(took.as_secs_f64());
        });
    }

    /// Records one HTTP request's latency by surface
    /// (`ironseal_http_request_duration_seconds{protocol}`).
    pub fn observe_http(&self, protocol: HttpProtocol, took: Duration) {
        self.with(|i| {
            i.http
                .entry(protocol)
                .or_default()
                .observe(took.as_secs_f64())
        });
    }

    /// Records one store flush (durability wait).
    pub fn observe_flush(&self, took: Duration) {
        self.with(|i| i.flush.observe(took.as_secs_f64()));
    }

    /// Counts one issuance attempt (`ironseal_certificates_issued_total`).
    pub fn certificate_issued(
        &self,
        protocol: Protocol,
        profile: &str,
        tenant: &str,
        outcome: Outcome,
    ) {
        self.with(|i| {
            *i.issued
                .entry((
                    protocol.as_str(),
                    profile.to_string(),
                    tenant.to_string(),
                    outcome.as_str(),
                ))
                .or_default() += 1
        });
    }

    /// Counts one renewal: an issuance whose order named the certificate it
    /// replaces (RFC 9773 §5, `ironseal_certificates_renewed_total`).
    pub fn certificate_renewed(&self, protocol: Protocol, profile: &str, tenant: &str) {
        self.with(|i| {
            *i.renewed
                .entry((protocol.as_str(), profile.to_string(), tenant.to_string()))
                .or_default() += 1
        });
    }

    /// Counts one revocation (`ironseal_certificates_revoked_total`);
    /// `reason` is the RFC 5280 §5.3.1 reason name.
    pub fn certificate_revoked(&self, protocol: Protocol, reason: &'static str) {
        self.with(|i| *i.revoked.entry((protocol.as_str(), reason)).or_default() += 1);
    }

    /// Counts one challenge validation (`ironseal_validations_total`).
    pub fn validation(&self, kind: ChallengeType, valid: bool) {
        let kind = match kind {
            ChallengeType::Http01 => "http-01",
            ChallengeType::Dns01 => "dns-01",
            ChallengeType::TlsAlpn01 => "tls-alpn-01",
        };
        let outcome = if valid { "valid" } else { "invalid" };
        self.with(|i| *i.validations.entry((kind, outcome)).or_default() += 1);
    }

    /// Counts one reload of in-memory state after the store's change
    /// generation of `kind` moved (see [`crate::propagate`]).
    pub fn store_reloaded(&self, kind: &'static str) {
        self.with(|i| *i.store_reloads.entry(kind).or_default() += 1);
    }

    /// Counts one request refused by the rate limit `limit`.
    pub fn rate_limited(&self, limit: &'static str) {
        self.with(|i| *i.rate_limited.entry(limit).or_default() += 1);
    }

    /// Counts one `badNonce` answer (RFC 8555 §6.5).
    pub fn bad_nonce(&self) {
        self.with(|i| i.bad_nonce += 1);
    }

    /// Sets the approval queue gauges: requests waiting and the age of the
    /// oldest, in seconds.
    pub fn set_approval_queue(&self, len: u64, oldest_age_secs: f64) {
        self.with(|i| {
            i.approval_len = len;
            i.approval_oldest_secs = oldest_age_secs;
        });
    }

    /// Records a CRL build of `ca` (thisUpdate / nextUpdate gauges).
    pub fn crl_built(&self, ca: &str, this_update: OffsetDateTime, next_update: OffsetDateTime) {
        self.with(|i| {
            *i.counters.entry("crls_built").or_default() += 1;
            i.crl.insert(
                ca.to_string(),
                (this_update.unix_timestamp(), next_update.unix_timestamp()),
            );
        });
    }

    /// Adds a live certificate of `profile` to the remaining-lifetime
    /// histogram.
    pub fn track_certificate(&self, profile: &str, not_after: OffsetDateTime) {
        self.with(|i| {
            *i.lifetimes
                .entry(profile.to_string())
                .or_default()
                .entry(slot(not_after))
                .or_default() += 1
        });
    }

    /// Removes a certificate (revoked or replaced) from the histogram; a
    /// certificate that was never tracked (issued before this process
    /// started) is ignored.
    pub fn untrack_certificate(&self, profile: &str, not_after: OffsetDateTime) {
        self.with(|i| {
            if let Some(slots) = i.lifetimes.get_mut(profile) {
                let k = slot(not_after);
                if let Some(n) = slots.get_mut(&k) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        slots.remove(&k);
                    }
                }
            }
        });
    }

    /// Renders the event metrics (everything kept in this struct and the
    /// storage error counts) in the Prometheus text format.
    pub fn render(&self) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.with(|i| {
            let mut out = String::new();
            for (name, v) in &i.counters {
                let _ = writeln!(out, "# TYPE ironseal_{name}_total counter");
                let _ = writeln!(out, "ironseal_{name}_total {v}");
            }
            let _ = writeln!(out, "# TYPE ironseal_acme_requests_total counter");
            for ((route, status), v) in &i.requests {
                let _ = writeln!(
                    out,
                    "ironseal_acme_requests_total{{route=\"{route}\",status=\"{status}\"}} {v}"
                );
            }
            let _ = writeln!(
                out,
                "# TYPE ironseal_acme_request_duration_seconds histogram"
            );
            for (route, h) in &i.latency {
                h.render(
                    &mut out,
                    "ironseal_acme_request_duration_seconds",
                    &format!("route=\"{route}\""),
                );
            }
            let _ = writeln!(
                out,
                "# TYPE ironseal_store_flush_duration_seconds histogram"
            );
            i.flush
                .render(&mut out, "ironseal_store_flush_duration_seconds", "");

            help(
                &mut out,
                "ironseal_http_request_duration_seconds",
                "histogram",
                "HTTP request latency by protocol (acme, admin, ocsp, crl, pki).",
            );
            for (p, h) in &i.http {
                h.render(
                    &mut out,
                    "ironseal_http_request_duration_seconds",
                    &format!("protocol=\"{}\"", p.as_str()),
                );
            }

            help(
                &mut out,
                "ironseal_certificates_issued_total",
                "counter",
                "Issuance attempts by protocol, profile, tenant and outcome (issued, failed).",
            );
            for ((proto, profile, tenant, outcome), v) in &i.issued {
                let _ = writeln!(
                    out,
                    "ironseal_certificates_issued_total{{protocol=\"{proto}\",profile=\"{}\",tenant=\"{}\",outcome=\"{outcome}\"}} {v}",
                    esc(profile),
                    esc(tenant)
                );
            }
            help(
                &mut out,
                "ironseal_certificates_renewed_total",
                "counter",
                "Certificates issued for an order that replaces another (ARI, RFC 9773).",
            );
            for ((proto, profile, tenant), v) in &i.renewed {
                let _ = writeln!(
                    out,
                    "ironseal_certificates_renewed_total{{protocol=\"{proto}\",profile=\"{}\",tenant=\"{}\"}} {v}",
                    esc(profile),
                    esc(tenant)
                );
            }
            help(
                &mut out,
                "ironseal_certificates_revoked_total",
                "counter",
                "Revocations by protocol and RFC 5280 reason.",
            );
            for ((proto, reason), v) in &i.revoked {
                let _ = writeln!(
                    out,
                    "ironseal_certificates_revoked_total{{protocol=\"{proto}\",reason=\"{reason}\"}} {v}"
                );
            }
            help(
                &mut out,
                "ironseal_validations_total",
                "counter",
                "Challenge validations by type and outcome (valid, invalid).",
            );
            for ((kind, outcome), v) in &i.validations {
                let _ = writeln!(
                    out,
                    "ironseal_validations_total{{type=\"{kind}\",outcome=\"{outcome}\"}} {v}"
                );
            }
            help(
                &mut out,
                "ironseal_rate_limited_total",
                "counter",
                "Requests refused by a rate limit, by limit.",
            );
            let mut limits = i.rate_limited.clone();
            limits.entry("new_order_per_account").or_default();
            for (limit, v) in &limits {
                let _ = writeln!(out, "ironseal_rate_limited_total{{limit=\"{limit}\"}} {v}");
            }
            help(
                &mut out,
                "ironseal_store_change_reloads_total",
                "counter",
                "In-memory state reloaded because the store's change generation of a kind moved (PostgreSQL change poll), by kind.",
            );
            for (kind, v) in &i.store_reloads {
                let _ = writeln!(
                    out,
                    "ironseal_store_change_reloads_total{{kind=\"{kind}\"}} {v}"
                );
            }
            help(
                &mut out,
                "ironseal_acme_bad_nonce_total",
                "counter",
                "ACME requests refused with badNonce.",
            );
            let _ = writeln!(out, "ironseal_acme_bad_nonce_total {}", i.bad_nonce);
            help(
                &mut out,
                "ironseal_storage_errors_total",
                "counter",
                "Storage engine errors (I/O, corrupt records) by where they surfaced.",
            );
            for (k, op) in STORAGE_OPS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "ironseal_storage_errors_total{{op=\"{}\"}} {}",
                    op.as_str(),
                    STORAGE_ERRORS[k].load(Ordering::Relaxed)
                );
            }
            {
                use crate::http::connections::{CLOSED_IDLE, REFUSED_FULL, REFUSED_PER_IP};
                help(
                    &mut out,
                    "ironseal_connections_refused_total",
                    "counter",
                    "Connections closed at accept: listener full or the client IP over its share.",
                );
                for (reason, c) in [("listener_full", &REFUSED_FULL), ("per_ip", &REFUSED_PER_IP)] {
                    let _ = writeln!(
                        out,
                        "ironseal_connections_refused_total{{reason=\"{reason}\"}} {}",
                        c.load(Ordering::Relaxed)
                    );
                }
                help(
                    &mut out,
                    "ironseal_connections_closed_idle_total",
                    "counter",
                    "Connections closed for sending nothing in time or staying idle.",
                );
                let _ = writeln!(
                    out,
                    "ironseal_connections_closed_idle_total {}",
                    CLOSED_IDLE.load(Ordering::Relaxed)
                );
            }
            help(
                &mut out,
                "ironseal_approval_queue_length",
                "gauge",
                "Certificate requests waiting for approval.",
            );
            let _ = writeln!(out, "ironseal_approval_queue_length {}", i.approval_len);
            help(
                &mut out,
                "ironseal_approval_oldest_age_seconds",
                "gauge",
                "Age of the oldest request waiting for approval (0 when none).",
            );
            let _ = writeln!(
                out,
                "ironseal_approval_oldest_age_seconds {}",
                i.approval_oldest_secs
            );
            help(
                &mut out,
                "ironseal_crl_this_update_timestamp_seconds",
                "gauge",
                "thisUpdate of the CA's last built CRL (unix seconds).",
            );
            for (ca, (this, _)) in &i.crl {
                let _ = writeln!(
                    out,
                    "ironseal_crl_this_update_timestamp_seconds{{ca=\"{}\"}} {this}",
                    esc(ca)
                );
            }
            help(
                &mut out,
                "ironseal_crl_next_update_timestamp_seconds",
                "gauge",
                "nextUpdate of the CA's last built CRL (unix seconds).",
            );
            for (ca, (_, next)) in &i.crl {
                let _ = writeln!(
                    out,
                    "ironseal_crl_next_update_timestamp_seconds{{ca=\"{}\"}} {next}",
                    esc(ca)
                );
            }
            render_lifetimes(&mut out, &mut i.lifetimes, now);
            out
        })
    }
}

/// Renders the remaining-lifetime histogram and drops expired slots.
fn render_lifetimes(
    out: &mut String,
    lifetimes: &mut BTreeMap<String, BTreeMap<i64, u64>>,
    now: i64,
) {
    help(
        out,
        "ironseal_certificate_remaining_lifetime_seconds",
        "histogram",
        "Unexpired, unrevoked, not replaced certificates issued since start, by remaining lifetime and profile.",
    );
    for (profile, slots) in lifetimes.iter_mut() {
        slots.retain(|t, _| *t > now);
        let mut counts = [0u64; LIFETIME_BUCKETS.len()];
        let (mut total, mut sum) = (0u64, 0i64);
        for (t, n) in slots.iter() {
            let left = t - now;
            for (k, b) in LIFETIME_BUCKETS.iter().enumerate() {
                if left <= *b {
                    counts[k] += n;
                }
            }
            total += n;
            sum += left.saturating_mul(*n as i64);
        }
        let p = esc(profile);
        for (k, b) in LIFETIME_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "ironseal_certificate_remaining_lifetime_seconds_bucket{{profile=\"{p}\",le=\"{b}\"}} {}",
                counts[k]
            );
        }
        let _ = writeln!(
            out,
            "ironseal_certificate_remaining_lifetime_seconds_bucket{{profile=\"{p}\",le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            out,
            "ironseal_certificate_remaining_lifetime_seconds_sum{{profile=\"{p}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "ironseal_certificate_remaining_lifetime_seconds_count{{profile=\"{p}\"}} {total}"
        );
    }
}

/// Renders every metric: the events in `state.metrics` plus the gauges read
/// from the server's state at scrape time (CA and OCSP responder expiry).
pub async fn render(state: &AppState) -> String {
    // The approval queue, read from the store at scrape time.
    if let Ok(pending) = state
        .store
        .list_approvals(Some(ironseal_storage::ApprovalStatus::Pending))
        .await
    {
        let oldest = pending
            .first()
            .map(|a| {
                (OffsetDateTime::now_utc() - a.requested_at)
                    .as_seconds_f64()
                    .max(0.0)
            })
            .unwrap_or(0.0);
        state
            .metrics
            .set_approval_queue(pending.len() as u64, oldest);
    }
    let mut out = state.metrics.render();
    let cas = state.ca_set();
    let mut expiry: BTreeMap<String, i64> = BTreeMap::new();
    for (id, ca) in &cas.by_id {
        expiry.insert(id.clone(), ca.issuer.not_after().unix_timestamp());
    }
    for (id, der) in &cas.external_by_id {
        if let Some(t) = der_not_after(der) {
            expiry.insert(id.clone(), t);
        }
    }
    help(
        &mut out,
        "ironseal_ca_expiration_timestamp_seconds",
        "gauge",
        "notAfter of each CA certificate (unix seconds).",
    );
    for (id, t) in &expiry {
        let _ = writeln!(
            out,
            "ironseal_ca_expiration_timestamp_seconds{{ca=\"{}\"}} {t}",
            esc(id)
        );
    }
    help(
        &mut out,
        "ironseal_ocsp_responder_expiration_timestamp_seconds",
        "gauge",
        "notAfter of each CA's delegated OCSP responder certificate (unix seconds).",
    );
    let mut ids: Vec<&String> = cas.by_id.keys().collect();
    ids.sort();
    for id in ids {
        if let Some(r) = state.ocsp.responder(id) {
            let _ = writeln!(
                out,
                "ironseal_ocsp_responder_expiration_timestamp_seconds{{ca=\"{}\"}} {}",
                esc(id),
                r.not_after().unix_timestamp()
            );
        }
    }
    out
}

fn der_not_after(der: &[u8]) -> Option<i64> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(
        cert.tbs_certificate()
            .validity()
            .not_after
            .to_unix_duration()
            .as_secs() as i64,
    )
}

/// After the authority issued `record` and made it durable: counts the
/// issuance by protocol, profile and tenant (and the renewal when it
/// replaces `replaced`, RFC 9773 §5) and keeps the remaining-lifetime
/// histogram in step.
pub async fn on_issued(state: &AppState, record: &CertificateRecord, replaced: Option<&str>) {
    let o = &record.origin;
    let protocol = Protocol::from_name(&o.protocol);
    let tenant = o.tenant_id.as_deref().unwrap_or("");
    state
        .metrics
        .certificate_issued(protocol, &o.profile, tenant, Outcome::Issued);
    state
        .metrics
        .track_certificate(&o.profile, record.not_after);
    if let Some(serial) = replaced {
        state
            .metrics
            .certificate_renewed(protocol, &o.profile, tenant);
        if let Ok(Some(old)) = state.store.get_certificate(serial).await {
            untrack(state, &old).await;
        }
    }
}

/// After an issuance attempt failed.
pub fn on_issue_failed(state: &AppState, protocol: &str, profile: &str, tenant: Option<&str>) {
    state.metrics.certificate_issued(
        Protocol::from_name(protocol),
        profile,
        tenant.unwrap_or(""),
        Outcome::Failed,
    );
}

/// After a revocation of `record` is durable: removes it from the
/// remaining-lifetime histogram.
pub async fn on_revoked(state: &AppState, record: &CertificateRecord) {
    untrack(state, record).await;
}

async fn untrack(state: &AppState, record: &CertificateRecord) {
    let profile = if record.origin.profile.is_empty() {
        // Certificates stored before origins were recorded.
        match state.store.get_order(&record.order_id).await {
            Ok(Some(order)) => profile_of(state, &order),
            _ => return,
        }
    } else {
        record.origin.profile.clone()
    };
    state
        .metrics
        .untrack_certificate(&profile, record.not_after);
}

/// The remaining-lifetime histogram holds at most this many slots per
/// profile (lifetime in hours); exposed for the cardinality test.
#[cfg(test)]
fn slots_of(m: &Metrics, profile: &str) -> usize {
    m.with(|i| i.lifetimes.get(profile).map_or(0, |s| s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.inc("orders_created");
        m.inc("orders_created");
        m.observe_acme("new-order", 201, Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("ironseal_orders_created_total 2"), "{text}");
        assert!(
            text.contains("route=\"new-order\",status=\"201\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "ironseal_acme_request_duration_seconds_bucket{route=\"new-order\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("ironseal_acme_request_duration_seconds_bucket{route=\"new-order\",le=\"0.0025\"} 0"), "{text}");
    }

    #[test]
    fn labelled_events_render_with_their_labels() {
        let m = Metrics::default();
        m.certificate_issued(Protocol::Acme, "tls", "", Outcome::Issued);
        m.certificate_issued(Protocol::Acme, "tls", "", Outcome::Failed);
        m.certificate_renewed(Protocol::Acme, "tls", "");
        m.certificate_revoked(Protocol::Admin, "keyCompromise");
        m.validation(ChallengeType::Dns01, false);
        m.rate_limited("new_order_per_account");
        m.bad_nonce();
        m.observe_http(HttpProtocol::Ocsp, Duration::from_millis(2));
        m.set_approval_queue(3, 42.5);
        m.certificate_issued(Protocol::Est, "devices", "", Outcome::Issued);
        m.observe_http(
            HttpProtocol::of_https_path("/.well-known/est/iot/simpleenroll"),
            Duration::from_millis(2),
        );
        let t = m.render();
        for want in [
            "ironseal_certificates_issued_total{protocol=\"est\",profile=\"devices\",tenant=\"\",outcome=\"issued\"} 1",
            "ironseal_http_request_duration_seconds_count{protocol=\"est\"} 1",
            "ironseal_certificates_issued_total{protocol=\"acme\",profile=\"tls\",tenant=\"\",outcome=\"issued\"} 1",
            "ironseal_certificates_issued_total{protocol=\"acme\",profile=\"tls\",tenant=\"\",outcome=\"failed\"} 1",
            "ironseal_certificates_renewed_total{protocol=\"acme\",profile=\"tls\",tenant=\"\"} 1",
            "ironseal_certificates_revoked_total{protocol=\"admin\",reason=\"keyCompromise\"} 1",
            "ironseal_validations_total{type=\"dns-01\",outcome=\"invalid\"} 1",
            "ironseal_rate_limited_total{limit=\"new_order_per_account\"} 1",
            "ironseal_acme_bad_nonce_total 1",
            "ironseal_http_request_duration_seconds_bucket{protocol=\"ocsp\",le=\"0.0025\"} 1",
            "ironseal_approval_queue_length 3",
            "ironseal_approval_oldest_age_seconds 42.5",
            "ironseal_storage_errors_total{op=\"flush\"}",
        ] {
            assert!(t.contains(want), "missing {want}\n{t}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.certificate_issued(Protocol::Acme, "a\"b\\c\nd", "", Outcome::Issued);
        let t = m.render();
        assert!(t.contains("profile=\"a\\\"b\\\\c\\nd\""), "{t}");
    }

    #[test]
    fn crl_gauges_keep_the_last_build() {
        let m = Metrics::default();
        let t0 = OffsetDateTime::from_unix_timestamp(1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        m.crl_built("ca1", t0, t0 + time::Duration::hours(24));
        m.crl_built(
            "ca1",
            t0 + time::Duration::hours(6),
            t0 + time::Duration::hours(30),
        );
        let t = m.render();
        assert!(
            t.contains("ironseal_crl_this_update_timestamp_seconds{ca=\"ca1\"} 22600"),
            "{t}"
        );
        assert!(
            t.contains("ironseal_crl_next_update_timestamp_seconds{ca=\"ca1\"} 109000"),
            "{t}"
        );
        assert!(t.contains("ironseal_crls_built_total 2"), "{t}");
    }

    #[test]
    fn remaining_lifetime_is_bucketed_and_bounded() {
        let m = Metrics::default();
        let now = OffsetDateTime::now_utc();
        // 10,000 certificates spread over 90 days: at most 90*24+1 slots.
        for k in 0..10_000i64 {
            m.track_certificate("tls", now + time::Duration::seconds(60 + k * 777));
        }
        assert!(
            slots_of(&m, "tls") <= 90 * 24 + 1,
            "{}",
            slots_of(&m, "tls")
        );
        // Two expire within a day; one of them is revoked.
        m.track_certificate("short", now + time::Duration::hours(2));
        m.track_certificate("short", now + time::Duration::hours(20));
        m.track_certificate("short", now + time::Duration::days(10));
        m.untrack_certificate("short", now + time::Duration::hours(2));
        // Already expired: dropped at render.
        m.track_certificate("short", now - time::Duration::hours(2));
        let t = m.render();
        for want in [
            "ironseal_certificate_remaining_lifetime_seconds_bucket{profile=\"short\",le=\"3600\"} 0",
            "ironseal_certificate_remaining_lifetime_seconds_bucket{profile=\"short\",le=\"86400\"} 1",
            "ironseal_certificate_remaining_lifetime_seconds_bucket{profile=\"short\",le=\"+Inf\"} 2",
            "ironseal_certificate_remaining_lifetime_seconds_count{profile=\"short\"} 2",
            "ironseal_certificate_remaining_lifetime_seconds_bucket{profile=\"tls\",le=\"+Inf\"} 10000",
        ] {
            assert!(t.contains(want), "missing {want}\n{t}");
        }
        let series = t
            .lines()
            .filter(|l| l.starts_with("ironseal_certificate_remaining_lifetime_seconds"))
            .count();
        assert_eq!(series, 2 * (LIFETIME_BUCKETS.len() + 3));
    }

    #[test]
    fn storage_errors_count_engine_failures_only() {
        let before = STORAGE_ERRORS[3].load(Ordering::Relaxed);
        storage_error(StorageOp::Ocsp, &StoreError::NotFound);
        storage_error(StorageOp::Ocsp, &StoreError::AlreadyRevoked);
        storage_error(StorageOp::Ocsp, &StoreError::Backend("io".into()));
        assert_eq!(STORAGE_ERRORS[3].load(Ordering::Relaxed), before + 1);
    }

    #[test]
    fn plain_paths_map_to_protocols() {
        assert_eq!(
            HttpProtocol::of_plain_path("/ocsp/MEow"),
            HttpProtocol::Ocsp
        );
        assert_eq!(
            HttpProtocol::of_plain_path("/crl/abc.crl"),
            HttpProtocol::Crl
        );
        assert_eq!(
            HttpProtocol::of_plain_path("/ca/root.pem"),
            HttpProtocol::Pki
        );
        assert_eq!(
            HttpProtocol::of_https_path("/admin/v1/keys"),
            HttpProtocol::Admin
        );
        assert_eq!(
            HttpProtocol::of_https_path("/acme/new-order"),
            HttpProtocol::Acme
        );
    }
}
