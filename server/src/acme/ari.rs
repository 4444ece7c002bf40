//! ACME Renewal Information (RFC 9773 §4): a suggested renewal window per
//! certificate, in the past for revoked certificates and for certificates an
//! operator marked for early renewal.

use std::sync::Arc;

use hyper::StatusCode;
use ironseal_protocol::acme::ari::CertId;
use serde_json::json;
use time::OffsetDateTime;

use super::error::AcmeError;
use super::render::ts;
use super::Reply;
use crate::state::AppState;

/// GET renewalInfo/{certID}.
pub async fn renewal_info(state: &Arc<AppState>, cert_id: &str) -> Result<Reply, AcmeError> {
    let id = CertId::parse(cert_id)
        .map_err(|e| AcmeError::malformed(format!("not a valid ARI certID: {e}")))?;
    let serial = hex::encode(&id.serial);
    let cert = state
        .store
        .get_certificate(&serial)
        .await?
        .filter(|c| state.issuer_key_id_matches(&c.issuer_id, &id.key_identifier))
        .ok_or_else(|| AcmeError::not_found("no certificate with that certID"))?;
    let now = OffsetDateTime::now_utc();
    let (start, end, why) = if cert.revocation.is_some() {
        (
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
            Some("revoked"),
        )
    } else if cert.renew_early {
        (
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
            Some("operator requested early renewal"),
        )
    } else {
        window(cert.not_before, cert.not_after)
    };
    let mut body = json!({ "suggestedWindow": { "start": ts(start), "end": ts(end) } });
    if let Some(w) = why {
        body["explanationURL"] = json!(format!("{}#{}", state.config.website, w.replace(' ', "-")));
    }
    let retry = retry_after(
        state.config.ari_retry_after,
        cert.not_after - cert.not_before,
    );
    Ok(Reply::json(StatusCode::OK, &body).retry_after(retry))
}

/// Retry-After of a renewalInfo answer (RFC 9773 §4.3): the configured
/// interval, but never more than a tenth of the certificate's lifetime
/// (at least a minute), so a client that honours it still checks several
/// times before the window of a short-lived certificate (an hour or less)
/// closes.
fn retry_after(configured: std::time::Duration, lifetime: time::Duration) -> u64 {
    let tenth = (lifetime.whole_seconds() / 10).max(60);
    configured
        .as_secs()
        .min(u64::try_from(tenth).unwrap_or(u64::MAX))
}

/// The ordinary window: the middle of the last third of the lifetime
/// (start at 2/3 of the lifetime, end at 5/6), as Let's Encrypt suggests.
fn window(
    nb: OffsetDateTime,
    na: OffsetDateTime,
) -> (OffsetDateTime, OffsetDateTime, Option<&'static str>) {
    let life = na - nb;
    (nb + life * 2 / 3, nb + life * 5 / 6, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_bounded_by_the_lifetime() {
        let six_hours = std::time::Duration::from_secs(6 * 3600);
        assert_eq!(retry_after(six_hours, time::Duration::days(90)), 6 * 3600);
        assert_eq!(retry_after(six_hours, time::Duration::hours(1)), 360);
        assert_eq!(retry_after(six_hours, time::Duration::minutes(5)), 60);
        let (s, e, _) = window(
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1),
        );
        assert_eq!(
            (e - s).whole_minutes(),
            10,
            "a one-hour certificate gets a ten-minute window"
        );
    }

    #[test]
    fn window_is_inside_lifetime_and_ordered() {
        let nb = OffsetDateTime::UNIX_EPOCH;
        let na = nb + time::Duration::days(90);
        let (s, e, _) = window(nb, na);
        assert_eq!(s, nb + time::Duration::days(60));
        assert_eq!(e, nb + time::Duration::days(75));
        assert!(s < e && e < na);
    }
}
