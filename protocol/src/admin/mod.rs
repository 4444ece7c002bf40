//! The admin API's requests (`docs/admin-api.md`, `docs/openapi.yaml`):
//! the route table (`METHOD /admin/v1/...` and what each needs), path
//! parameters, query strings and JSON bodies as typed values, their
//! validation, and the audit-log summary of a call. No I/O: the server
//! authenticates, reads the body and runs the handler; this module only
//! turns bytes into requests or a [`RequestError`] (HTTP 400).

mod approvals;
mod audit;
mod body;
mod ca_status;
pub mod cas;
mod certificates;
mod error;
mod est_users;
mod issuance;
mod keys;
mod request;
mod roles;
pub mod routes;
mod scep_challenges;
mod serial;
mod summary;
mod tenants;

pub use approvals::{parse_status, ApprovalStatus, DecisionRequest};
pub use audit::{parse_audit_query, AuditQuery, AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT};
pub use body::parse_body;
pub use ca_status::{CaStatus, CaStatusRequest};
pub use cas::{
    ca_name, CreateCaRequest, CrossSignRequest, CsrRequest, ExternalCaRequest, ImportCaRequest,
    NameConstraintsInput, RolloverRequest, SignedCertificateRequest,
};
pub use certificates::{BulkRequest, ReasonInput, RevokeRequest};
pub use error::RequestError;
pub use est_users::{
    decode_create as decode_est_user, parse_tenant_query, username as est_username,
    CreateEstUserRequest, MAX_CREDENTIAL_LEN, MIN_PASSWORD_LEN,
};
pub use issuance::{csr_der, IssueRequest};
pub use keys::CreateKeyRequest;
pub use request::{decode_body, decode_request, AdminRequest, Decoded};
pub use roles::ApiRole;
pub use routes::{lookup, Lookup, Op, Permission, Route, ROUTES};
pub use scep_challenges::{
    decode_create as decode_scep_challenge, CreateScepChallengeRequest,
    SCEP_CHALLENGE_DEFAULT_MINUTES, SCEP_CHALLENGE_MAX_MINUTES,
};
pub use serial::normalize_serial;
pub use summary::summarize;
pub use tenants::{tenant_id, CreateTenantRequest, TenantNames};
