//! Key rotation of an intermediate (`POST /admin/v1/cas/{id}/rollover`):
//! a successor with a new key and the same profile — organization, key
//! algorithm, pathLenConstraint, name constraints and policies, the
//! commonName with the next generation suffix (`… G2`) — certified by the
//! same parent, with a validity of the same length clamped into the
//! parent's (ca-core `rollover_profile`, RFC 5280 §4.2.1.1/§4.2.1.2).
//! With `activate`, the successor takes over issuance in the same call and
//! the predecessor becomes `retiring`.

use std::sync::Arc;

use hyper::StatusCode;
use ironseal_ca_core::hierarchy_ops::rollover_profile;
use ironseal_protocol::admin::RolloverRequest;
use ironseal_storage::{CaRecord, CaStatus, CaUpdate};
use time::{Duration, OffsetDateTime};

use super::auth::Principal;
use super::cas::{
    activate_in, ca_change, ca_error, load_ca, require_key_and_cert, save_signed_ca, seal_key,
    Reply,
};
use super::handlers::parse_body;
use super::{Answer, ApiError};
use crate::authority::ca_ops;
use crate::ids::new_id;
use crate::state::AppState;

/// `POST /admin/v1/cas/{id}/rollover`: see the module documentation.
/// Refused for a root (409 `not_intermediate`: make a new root and
/// cross-sign instead), a retired CA (`ca_retired`), a parent that cannot
/// sign here (`ca_not_active`, `ca_external`: for a CA under an offline
/// root, `cas csr` makes the successor).
pub(super) async fn rollover(
    state: &Arc<AppState>,
    caller: &Principal,
    id: &str,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: RolloverRequest = parse_body(body)?;
    let id = id.to_string();
    let caller = caller.clone();
    ca_change(state, move |state| async move {
        let current = load_ca(state, &id).await?;
        require_key_and_cert(&current)?;
        let Some(parent_id) = current.parent_id.clone() else {
            return Err(ApiError::conflict(
                "not_intermediate",
                "a root is not rolled over here; create a new root and cross-sign",
            ));
        };
        if current.status == CaStatus::Retired {
            return Err(ApiError::conflict(
                "ca_retired",
                format!("CA {id} is retired"),
            ));
        }
        let parent_record = load_ca(state, &parent_id).await?;
        require_key_and_cert(&parent_record)?;
        if parent_record.status != CaStatus::Active {
            return Err(ApiError::conflict(
                "ca_not_active",
                format!(
                    "the parent, CA {parent_id}, is {}; only an active CA certifies a successor",
                    parent_record.status.as_str()
                ),
            ));
        }
        let set = state.ca_set();
        let loaded = |cid: &str| {
            set.by_id
                .get(cid)
                .cloned()
                .ok_or_else(|| ApiError::internal(format!("CA {cid} is not loaded")))
        };
        let (cur, parent) = (loaded(&id)?, loaded(&parent_id)?);
        let now = OffsetDateTime::now_utc();
        let mut profile = rollover_profile(&cur.issuer, now).map_err(ca_error)?;
        profile.not_before = (now - Duration::hours(1)).max(parent.issuer.not_before());
        profile.not_after = profile.not_after.min(parent.issuer.not_after());
        let signed = ca_ops::sign_ca_off_worker(profile.clone(), Some(parent))
            .await
            .map_err(ca_error)?;
        let (key, der) = signed.get();
        let new = format!("int-{}", &new_id()[..8]).to_lowercase();
        let sealed = seal_key(state, key, &new)?;
        let record = CaRecord {
            id: new.clone(),
            name: profile.common_name.clone(),
            parent_id: Some(parent_id.clone()),
            cert_der: der.clone(),
            sealed_key: sealed,
            algorithm: Some(profile.algorithm),
            status: CaStatus::Active,
            created_at: now,
            cross_certs: Vec::new(),
            csr_der: Vec::new(),
            predecessor_id: Some(id.clone()),
        };
        tracing::info!(id = %new, predecessor = %id, "CA rolled over");
        let (created, _) = save_signed_ca(
            state,
            &caller,
            signed,
            CaUpdate::create(record.clone()),
            "ca.rollover",
            format!("id={new} predecessor={id} parent={parent_id}"),
            Reply {
                status: StatusCode::CREATED,
                note: format!("CA {new} succeeds {id}"),
            },
        )
        .await?;
        if !req.activate {
            return Ok(created);
        }
        let mut activated = activate_in(state, &caller, &new).await?;
        activated.status = StatusCode::CREATED;
        Ok(activated)
    })
    .await
}
