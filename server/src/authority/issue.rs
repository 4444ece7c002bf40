//! The issuance pipeline, in the order every request passes through it:
//! profile → tenant policy → CSR and key checks (blocked keys included) →
//! signing CA → validity → name constraints of every ancestor and the TBS
//! checks (in `ca-core`) → sign → one atomic store write with the audit
//! entry. Durability is the caller's next step (see [`super::issue`]).

use std::sync::Arc;

use ironseal_ca_core::csr::{check_csr, CheckedCsr, CsrPolicy};
use ironseal_ca_core::issuance::{issue_template, LeafTemplate};
use ironseal_ca_core::names::SubjectName;
use ironseal_ca_core::profile::{ProfileError, TemplateRequest};
use ironseal_ca_core::serial::Serial;
use ironseal_storage::{
    AuditEvent, CaStatus, CertOrigin, CertificateRecord, IssuanceWrite, ScepSettle,
    ScepTransactionRecord, ScepTransactionState, StoreError,
};
use time::OffsetDateTime;

use super::error::{AuthorityError, ErrorKind};
use super::keygen::GeneratedKey;
use super::request::{IssuanceRequest, ProfileChoice};
use super::IssuingCa;
use super::{tenant, Ctx};
use crate::config::Profile;
use crate::ids::sha256_hex;

/// How far notBefore is backdated to absorb relying parties' clock skew.
pub const BACKDATE: time::Duration = time::Duration::minutes(5);
/// Serial collisions tolerated before giving up (each is a 2^-127 event).
const SERIAL_ATTEMPTS: usize = 4;

/// A certificate the authority signed and stored.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The stored record (DER, serial, validity, origin).
    pub record: CertificateRecord,
    /// Sequence number of its audit entry.
    pub audit_seq: u64,
    /// The private key the authority generated, when the request asked
    /// for one ([`IssuanceRequest::generate_key`]); never stored.
    pub generated_key: Option<GeneratedKey>,
}

/// What the pipeline did with a request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Signed and stored.
    Issued(Box<Issued>),
    /// Held for approval (the profile requires it); nothing was signed.
    Held(Box<ironseal_storage::ApprovalRecord>),
}

/// The profile a request names: a configured one or the server's own.
pub fn resolve_profile(ctx: &Ctx<'_>, choice: &ProfileChoice) -> Result<Profile, AuthorityError> {
    match choice {
        ProfileChoice::Builtin(p) => Ok((**p).clone()),
        ProfileChoice::Configured(None) => Ok(ctx.config.default_profile().clone()),
        ProfileChoice::Configured(Some(name)) => {
            ctx.config.profile(name).cloned().ok_or_else(|| {
                AuthorityError::new(
                    ErrorKind::UnknownProfile,
                    format!("profile {name:?} is not offered by this server"),
                )
            })
        }
    }
}

/// The CA that signs under `profile`: its configured CA when that is an
/// active intermediate, else the active issuing CA.
pub async fn profile_issuer(
    ctx: &Ctx<'_>,
    profile: &Profile,
    override_ca: Option<&str>,
) -> Result<Arc<IssuingCa>, AuthorityError> {
    let Some(id) = override_ca.or(profile.ca.as_deref()) else {
        return Ok(ctx.cas.active.clone());
    };
    let unusable = |why: &str| {
        AuthorityError::new(
            ErrorKind::CaUnavailable,
            format!(
                "profile {:?} names CA {id:?}, which {why}; an operator must fix the profile",
                profile.name
            ),
        )
    };
    if override_ca.is_none() {
        let record = ctx
            .store
            .get_ca(id)
            .await?
            .ok_or_else(|| unusable("does not exist"))?;
        if record.parent_id.is_none() {
            return Err(unusable("is a root, not an intermediate"));
        }
        if record.status != CaStatus::Active {
            return Err(unusable("is not active"));
        }
    }
    ctx.cas
        .by_id
        .get(id)
        .cloned()
        .ok_or_else(|| unusable("is not loaded"))
}

/// A CSR checked against the request and the profile, and the leaf it
/// becomes: subject, SANs and EKUs decided by the profile's kind (TLS:
/// exactly the names asked for; device: subject and allowed SANs from the
/// CSR, optional SID; SPIFFE: one SPIFFE ID under the tenant's URI
/// prefixes).
pub struct Prepared {
    /// The checked CSR.
    pub csr: CheckedCsr,
    /// The leaf to sign.
    pub template: LeafTemplate,
}

fn profile_error(profile: &Profile, e: ProfileError) -> AuthorityError {
    if let ProfileError::KeyTypeNotAllowed { key, .. } = &e {
        return AuthorityError::new(
            ErrorKind::BadKey,
            format!(
                "profile {:?} does not accept {} keys; allowed key types: {}",
                profile.name,
                key.as_str(),
                profile.key_types_list()
            ),
        );
    }
    let kind = match &e {
        ProfileError::KeyTypeNotAllowed { .. } => ErrorKind::BadKey,
        ProfileError::UnsupportedIdentifier(_)
        | ProfileError::SanKindNotAllowed(_)
        | ProfileError::UriNotAllowed { .. } => ErrorKind::RejectedName,
        ProfileError::InvalidProfile { .. } => ErrorKind::CaUnavailable,
        _ => ErrorKind::BadCsr,
    };
    AuthorityError::new(kind, e.to_string())
}

/// Checks a CSR against the request, the profile and the tenant without
/// signing: well formed, signature over the original bytes, an accepted
/// key that is neither forbidden nor blocked, the names the profile
/// allows, and every resulting name inside the tenant's policy. ACME
/// finalize calls this before the order turns `processing`, so a bad CSR
/// leaves the order `ready`; [`prepare_and_sign`] runs it again.
pub async fn check_request_csr(
    ctx: &Ctx<'_>,
    req: &IssuanceRequest,
    profile: &Profile,
) -> Result<Prepared, AuthorityError> {
    let policy = CsrPolicy {
        allow_ed25519: true,
        ..CsrPolicy::default()
    };
    let csr = check_csr(&req.csr_der, &policy)?;
    let tenant = match &req.tenant {
        Some(id) => {
            let t = tenant::load(ctx.store.as_ref(), id).await?;
            t.check_profile(&profile.name)?;
            Some(t)
        }
        None => None,
    };
    // Without a tenant, URI names are limited only by the profile (and the
    // CA's name constraints): allow the CSR's own.
    let own_uris: Vec<String> = csr
        .san_names
        .iter()
        .filter_map(|n| match n {
            SubjectName::Uri(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    let allowed_uri_prefixes = match &tenant {
        Some(t) => t.names.uri_prefixes(),
        None => &own_uris,
    };
    let template = profile
        .to_cert_profile()
        .template(
            &csr,
            &TemplateRequest {
                requested: &req.names,
                extra_sid: req.sid.as_deref(),
                allowed_uri_prefixes,
            },
        )
        .map_err(|e| profile_error(profile, e))?;
    if let Some(t) = &tenant {
        t.check_names(template.sans())?;
    }
    if let Some(bits) = &req.forbidden_key {
        csr.require_key_differs(bits)?;
    }
    if ctx
        .store
        .is_key_blocked(&sha256_hex(&csr.public_key_bits))
        .await?
    {
        return Err(AuthorityError::new(
            ErrorKind::ForbiddenKey,
            "the CSR's key was reported compromised (keyCompromise) and cannot be certified",
        ));
    }
    Ok(Prepared { csr, template })
}

/// Runs the whole pipeline for `req` at `now` and stores the result; not
/// yet durable.
pub async fn prepare_and_sign(
    ctx: &Ctx<'_>,
    req: &IssuanceRequest,
    now: OffsetDateTime,
) -> Result<Outcome, AuthorityError> {
    // 1. Profile. 2-3. Tenant policy, CSR and key, the leaf's names.
    let profile = resolve_profile(ctx, &req.profile)?;
    // 0. A server-generated key (RFC 7030 §4.4): the request becomes one
    //    for the new key; the pipeline then treats it like any other.
    let rekeyed;
    let (req, generated_key) = match req.generate_key {
        None => (req, None),
        Some(key_type) => {
            if profile.requires_approval {
                return Err(AuthorityError::new(
                    ErrorKind::ProfileNotAllowed,
                    format!(
                        "profile {:?} requires approval; a server-generated key cannot wait \
                         for it (it would have to be stored); enrol with your own key",
                        profile.name
                    ),
                ));
            }
            // Key generation (RSA: a second or more) runs on a blocking
            // thread, not on an async worker.
            let template = req.csr_der.clone();
            let (csr_der, key) = tokio::task::spawn_blocking(move || {
                super::keygen::rekey_request(&template, key_type)
            })
            .await
            .map_err(|e| AuthorityError::internal(format!("key generation task: {e}")))??;
            let mut r = req.clone();
            r.csr_der = csr_der;
            rekeyed = r;
            (&rekeyed, Some(key))
        }
    };
    let Prepared { csr, template } = check_request_csr(ctx, req, &profile).await?;
    // 4. Approval: held until a second person decides.
    if profile.requires_approval {
        match &req.approval {
            None => {
                return Ok(Outcome::Held(Box::new(
                    super::approvals::hold(ctx, req, &profile.name, now).await?,
                )))
            }
            Some(id) => super::approvals::require_approved(ctx.store.as_ref(), id).await?,
        }
    }
    // 5. Signing CA and validity.
    let issuer = profile_issuer(ctx, &profile, req.signing_ca.as_deref()).await?;
    let (default_nb, default_na) = profile.to_cert_profile().validity(now, BACKDATE);
    let not_before = req.validity.not_before.unwrap_or(default_nb);
    let not_after = req.validity.not_after.unwrap_or(default_na);
    if not_after > issuer.issuer.not_after() {
        return Err(AuthorityError::new(
            ErrorKind::CaUnavailable,
            "the issuing CA expires before the requested notAfter; an operator must rotate it",
        ));
    }
    let origin = CertOrigin {
        protocol: req.requester.protocol().to_string(),
        requester: req.requester.actor(),
        tenant_id: req.tenant.clone(),
        profile: profile.name.clone(),
    };
    // 6. Build, check (name constraints of every ancestor, TBS self-check)
    //    and sign; 7. one atomic write with the audit entry.
    for _ in 0..SERIAL_ATTEMPTS {
        let serial = Serial::from_random(rand::random());
        // With partitioned CRLs the certificate names the shard that will list it.
        let crl_url = crate::crl::crl_url_for(ctx.config, issuer.issuer.id(), &serial);
        let issued = issue_template(
            &issuer.issuer,
            &template,
            serial.clone(),
            not_before,
            not_after,
            Some(&crl_url),
        )?;
        let record = CertificateRecord {
            serial: serial.to_hex(),
            issuer_id: issuer.issuer.id().to_string(),
            account_id: match &req.requester {
                super::Requester::Acme { account_id } => account_id.clone(),
                other => other.actor(),
            },
            order_id: req.order.as_ref().map(|o| o.id.clone()).unwrap_or_default(),
            der: issued.der,
            not_before: issued.not_before,
            not_after: issued.not_after,
            public_key_sha256: sha256_hex(&csr.public_key_bits),
            identifiers: super::identifiers_of(template.sans()),
            revocation: None,
            replaced_by: None,
            renew_early: false,
            origin: origin.clone(),
        };
        let order = req.order.clone().map(|mut o| {
            o.status = ironseal_storage::OrderStatus::Valid;
            o.cert_serial = Some(record.serial.clone());
            o.approval_id.clone_from(&req.approval);
            o
        });
        let audit = AuditEvent {
            at: now,
            actor: origin.requester.clone(),
            action: "certificate.issue".into(),
            summary: format!(
                "serial={} issuer={} protocol={} profile={} tenant={} names={} not_after={}{}",
                record.serial,
                record.issuer_id,
                origin.protocol,
                origin.profile,
                origin.tenant_id.as_deref().unwrap_or("-"),
                super::names_summary(template.sans()),
                record.not_after,
                req.approval
                    .as_deref()
                    .map(|a| format!(" approval={a}"))
                    .unwrap_or_default()
            ),
            outcome: None,
        };
        let scep_transaction = req.scep_claim.as_ref().map(|claim| ScepSettle {
            expected: claim.clone(),
            settled: ScepTransactionRecord {
                state: ScepTransactionState::Issued {
                    serial: record.serial.clone(),
                },
                updated_at: now,
                ..claim.clone()
            },
        });
        let write = IssuanceWrite {
            certificate: record,
            order,
            replaces: req.replaces.clone(),
            audit,
            scep_transaction,
        };
        match ctx.store.record_issuance(&write).await {
            Ok(entry) => {
                return Ok(Outcome::Issued(Box::new(Issued {
                    record: write.certificate,
                    audit_seq: entry.seq,
                    generated_key,
                })))
            }
            Err(StoreError::DuplicateSerial) => {
                tracing::warn!(serial = %write.certificate.serial, "serial collision; drawing another");
                continue;
            }
            Err(StoreError::Conflict(why)) => {
                return Err(AuthorityError::new(ErrorKind::Conflict, why));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AuthorityError::internal("could not find a unique serial"))
}
