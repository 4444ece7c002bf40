//! Tenant policy as the authority applies it: the tenant must exist and be
//! active, may use only its profiles, and gets only its names.

use ironseal_ca_core::name_policy::NamePolicy;
use ironseal_ca_core::names::SubjectName;
use ironseal_storage::{Store, TenantRecord};

use super::error::{AuthorityError, ErrorKind};

/// A loaded, active tenant with its parsed name policy.
#[derive(Debug, Clone)]
pub struct TenantPolicy {
    /// The stored tenant.
    pub record: TenantRecord,
    /// Its names, parsed.
    pub names: NamePolicy,
}

/// Loads tenant `id`: `Unauthorized` when it does not exist or is disabled.
pub async fn load(store: &dyn Store, id: &str) -> Result<TenantPolicy, AuthorityError> {
    let record = store.get_tenant(id).await?.ok_or_else(|| {
        AuthorityError::new(
            ErrorKind::Unauthorized,
            format!("tenant {id:?} does not exist"),
        )
    })?;
    if !record.is_active() {
        return Err(AuthorityError::new(
            ErrorKind::Unauthorized,
            format!("tenant {id:?} is disabled"),
        ));
    }
    let n = &record.names;
    let names = NamePolicy::parse(&n.dns, &n.ip, &n.uri, &n.email).map_err(|e| {
        AuthorityError::internal(format!("tenant {id:?} has an invalid name policy: {e}"))
    })?;
    Ok(TenantPolicy { record, names })
}

impl TenantPolicy {
    /// `ProfileNotAllowed` unless the tenant lists `profile`.
    pub fn check_profile(&self, profile: &str) -> Result<(), AuthorityError> {
        if self.record.profiles.iter().any(|p| p == profile) {
            return Ok(());
        }
        Err(AuthorityError::new(
            ErrorKind::ProfileNotAllowed,
            format!(
                "tenant {:?} may not use profile {profile:?}; its profiles: {}",
                self.record.id,
                self.record.profiles.join(", ")
            ),
        ))
    }

    /// `RejectedName` for the first name outside the tenant's policy.
    pub fn check_names(&self, names: &[SubjectName]) -> Result<(), AuthorityError> {
        for n in names {
            self.names.check(n).map_err(|v| {
                AuthorityError::new(
                    ErrorKind::RejectedName,
                    format!("tenant {:?}: {v}", self.record.id),
                )
            })?;
        }
        Ok(())
    }
}
