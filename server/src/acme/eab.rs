//! newAccount's external account binding (RFC 8555 §7.3.4): checks the
//! binding against the EAB key it names and returns that key's tenant.

use ironseal_ca_core::sealed::open;
use ironseal_protocol::acme::eab::{self, EabError};
use ironseal_protocol::acme::jwk::Jwk;
use ironseal_protocol::acme::problem::ProblemType;
use serde_json::Value;

use super::error::AcmeError;
use crate::admin::tenants::eab_aad;
use crate::authority;
use crate::state::AppState;

/// A binding that verified: the key id to bind and its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The EAB key id.
    pub kid: String,
    /// The tenant the new account joins.
    pub tenant_id: String,
}

/// Verifies `binding` (the `externalAccountBinding` member) for an account
/// key `jwk` sent to `url`: well formed, for this URL, naming a usable key
/// of an active tenant, MAC valid under that key, payload equal to `jwk`.
pub async fn verify(
    state: &AppState,
    binding: &Value,
    jwk: &Jwk,
    url: &str,
) -> Result<Binding, AcmeError> {
    let parsed = eab::parse(binding).map_err(|e| AcmeError::malformed(e.to_string()))?;
    if parsed.url != url {
        return Err(AcmeError::malformed(
            "externalAccountBinding: its url differs from the newAccount request's url",
        ));
    }
    let unauthorized = |why: &str| {
        AcmeError::unauthorized(format!(
            "externalAccountBinding: EAB key {:?} {why}",
            parsed.kid
        ))
    };
    let key = state
        .store
        .get_eab_key(&parsed.kid)
        .await?
        .ok_or_else(|| unauthorized("is not known to this server"))?;
    if key.disabled_at.is_some() {
        return Err(unauthorized("is disabled"));
    }
    if key.bound_account.is_some() {
        return Err(unauthorized(
            "is already bound to an account; each EAB key binds one account",
        ));
    }
    authority::tenant::load(state.store.as_ref(), &key.tenant_id).await?;
    let hmac_key =
        open(&state.kek, &key.sealed_hmac_key, &eab_aad(&key.kid)).map_err(AcmeError::internal)?;
    parsed.verify(&hmac_key, jwk).map_err(|e| match e {
        EabError::Malformed(_) => AcmeError::malformed(e.to_string()),
        EabError::BadMac | EabError::KeyMismatch => {
            AcmeError::new(ProblemType::Unauthorized, e.to_string())
        }
    })?;
    Ok(Binding {
        kid: key.kid,
        tenant_id: key.tenant_id,
    })
}
