//! GetNextCACert (RFC 8894 §4.7, §3.5.2's "GetNextCACert" capability):
//! during a CA rollover, the successor of the issuing CA — the CA whose
//! record names the active one as its predecessor, made by `POST
//! /admin/v1/cas/{id}/rollover` without `activate` — with its chain up to
//! the root, in a degenerate SignedData signed by the RA
//! (`application/x-x509-next-ca-cert`, §4.7.1). The RA stays the same
//! certificate (it is renewed under the issuing CA of its time), so no new
//! RA certificate is sent. Without a waiting successor the answer is 404
//! and GetCACaps does not list the capability.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use hyper::header::CONTENT_TYPE;
use hyper::{Response, StatusCode};
use ironseal_storage::{CaRecord, CaStatus, StoreError};

use crate::http::{full, text, Body};
use crate::state::AppState;

/// The successor waiting to take over from the active issuing CA.
async fn successor(state: &AppState) -> Result<Option<CaRecord>, StoreError> {
    let active = state.ca_set().active.issuer.id().to_string();
    Ok(state.store.list_cas().await?.into_iter().find(|r| {
        r.predecessor_id.as_deref() == Some(active.as_str())
            && r.id != active
            && r.status == CaStatus::Active
            && !r.cert_der.is_empty()
    }))
}

/// Whether GetNextCACert has something to say.
pub(super) async fn successor_waits(state: &Arc<AppState>) -> bool {
    matches!(successor(state).await, Ok(Some(_)))
}

/// GetNextCACert: the successor and its chain, signed by the RA.
pub(super) async fn get_next_ca_cert(state: &Arc<AppState>) -> Response<Body> {
    let found = match successor(state).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "GetNextCACert: store");
            return text(StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n");
        }
    };
    let Some(next) = found else {
        return text(
            StatusCode::NOT_FOUND,
            "no CA rollover in progress: there is no next CA certificate\n",
        );
    };
    let Some(ra) = state.scep_ra.get() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "SCEP RA not ready\n");
    };
    let cas = state.ca_set();
    // The successor first, then its ancestors and the root.
    let mut certs: Vec<Vec<u8>> = match cas.by_id.get(&next.id) {
        Some(ca) => ca.chain_der.clone(),
        None => vec![next.cert_der.clone()],
    };
    if certs.first() != Some(&next.cert_der) {
        certs.insert(0, next.cert_der.clone());
    }
    if let Ok((_, root)) = der::pem::decode_vec(cas.active_root_pem.as_bytes()) {
        if !certs.contains(&root) {
            certs.push(root);
        }
    }
    let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    match ironseal_protocol::scep::next_ca_cert(&refs, &ra.key, now, &SystemRandom::new()) {
        Ok(der) => Response::builder()
            .header(CONTENT_TYPE, "application/x-x509-next-ca-cert")
            .body(full(der))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "")),
        Err(e) => {
            tracing::error!(error = %e, "GetNextCACert encoding failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "")
        }
    }
}
