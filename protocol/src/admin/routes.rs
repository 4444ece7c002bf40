//! The admin route table: the one list that the server's dispatch uses
//! and that its OpenAPI test compares with `docs/openapi.yaml`.

/// What a route needs; the server grants it by the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read certificates, CAs, one's own identity.
    Read,
    /// Read the audit log.
    Audit,
    /// Revoke, mark for early renewal.
    Operate,
    /// Manage API keys.
    Admin,
}

/// Largest body of a bulk revocation (10,000 serials of up to 40 hex
/// digits with JSON punctuation fit well below this).
pub const BULK_MAX_BODY: usize = 1024 * 1024;
/// Most serials in one bulk revocation.
pub const BULK_MAX_SERIALS: usize = 10_000;

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Whoami,
    CreateKey,
    ListKeys,
    DeleteKey,
    GetCertificate,
    RenewEarly,
    RevokeCertificate,
    BulkRevoke,
    ListCas,
    CreateCa,
    ActivateCa,
    SetCaStatus,
    CrossSignCa,
    GetCa,
    CreateCaCsr,
    ImportSignedCa,
    RegisterExternalCa,
    ImportCa,
    RolloverCa,
    CreateTenant,
    ListTenants,
    GetTenant,
    DisableTenant,
    CreateEabKey,
    ListEabKeys,
    DisableEabKey,
    CreateEstUser,
    ListEstUsers,
    DisableEstUser,
    CreateScepChallenge,
    ListScepChallenges,
    DeleteScepChallenge,
    IssueCertificate,
    ListApprovals,
    GetApproval,
    Approve,
    Reject,
    Audit,
    CreateAuditCheckpoint,
    CreateBackup,
}

/// One admin route. `path` is an OpenAPI path template (`{name}` matches
/// one non-empty path segment).
#[derive(Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub op: Op,
    pub permission: Permission,
    /// Body size cap; `None`: the server's `max_body_bytes`.
    pub max_body: Option<usize>,
}

const fn route(method: &'static str, path: &'static str, op: Op, permission: Permission) -> Route {
    Route {
        method,
        path,
        op,
        permission,
        max_body: None,
    }
}

/// Every admin route.
pub static ROUTES: &[Route] = &[
    route("GET", "/admin/v1/whoami", Op::Whoami, Permission::Read),
    route("POST", "/admin/v1/keys", Op::CreateKey, Permission::Admin),
    route("GET", "/admin/v1/keys", Op::ListKeys, Permission::Admin),
    route(
        "DELETE",
        "/admin/v1/keys/{id}",
        Op::DeleteKey,
        Permission::Admin,
    ),
    route(
        "GET",
        "/admin/v1/certificates/{serial}",
        Op::GetCertificate,
        Permission::Read,
    ),
    route(
        "POST",
        "/admin/v1/certificates/{serial}/renew-early",
        Op::RenewEarly,
        Permission::Operate,
    ),
    route(
        "POST",
        "/admin/v1/certificates/{serial}/revoke",
        Op::RevokeCertificate,
        Permission::Operate,
    ),
    Route {
        max_body: Some(BULK_MAX_BODY),
        ..route(
            "POST",
            "/admin/v1/revocations",
            Op::BulkRevoke,
            Permission::Operate,
        )
    },
    route("GET", "/admin/v1/cas", Op::ListCas, Permission::Read),
    route("POST", "/admin/v1/cas", Op::CreateCa, Permission::Admin),
    route(
        "POST",
        "/admin/v1/cas/{id}/activate",
        Op::ActivateCa,
        Permission::Admin,
    ),
    route(
        "POST",
        "/admin/v1/cas/{id}/status",
        Op::SetCaStatus,
        Permission::Admin,
    ),
    route(
        "POST",
        "/admin/v1/cas/{id}/cross-sign",
        Op::CrossSignCa,
        Permission::Admin,
    ),
    route("GET", "/admin/v1/cas/{id}", Op::GetCa, Permission::Read),
    route(
        "POST",
        "/admin/v1/cas/csr",
        Op::CreateCaCsr,
        Permission::Admin,
    ),
    route(
        "POST",
        "/admin/v1/cas/{id}/certificate",
        Op::ImportSignedCa,
        Permission::Admin,
    ),
    route(
        "POST",
        "/admin/v1/cas/external",
        Op::RegisterExternalCa,
        Permission::Admin,
    ),
    route(
        "POST",
        "/admin/v1/cas/import",
        Op::ImportCa,
        Permission::Admin,
    ),
    route(
        "POST",
        "/admin/v1/cas/{id}/rollover",
        Op::RolloverCa,
        Permission::Admin,
    ),
    route(
        "POST",
        "/admin/v1/tenants",
        Op::CreateTenant,
        Permission::Admin,
    ),
    route(
        "GET",
        "/admin/v1/tenants",
        Op::ListTenants,
        Permission::Read,
    ),
    route(
        "GET",
        "/admin/v1/tenants/{id}",
        Op::GetTenant,
        Permission::Read,
    ),
    route(
        "POST",
        "/admin/v1/tenants/{id}/disable",
        Op::DisableTenant,
        Permission::Admin,
    ),
    route(
        "POST",
        "/admin/v1/tenants/{id}/eab-keys",
        Op::CreateEabKey,
        Permission::Operate,
    ),
    route(
        "GET",
        "/admin/v1/tenants/{id}/eab-keys",
        Op::ListEabKeys,
        Permission::Read,
    ),
    route(
        "POST",
        "/admin/v1/eab-keys/{kid}/disable",
        Op::DisableEabKey,
        Permission::Operate,
    ),
    route(
        "POST",
        "/admin/v1/est-users",
        Op::CreateEstUser,
        Permission::Operate,
    ),
    route(
        "GET",
        "/admin/v1/est-users",
        Op::ListEstUsers,
        Permission::Read,
    ),
    route(
        "POST",
        "/admin/v1/est-users/{username}/disable",
        Op::DisableEstUser,
        Permission::Operate,
    ),
    route(
        "POST",
        "/admin/v1/scep-challenges",
        Op::CreateScepChallenge,
        Permission::Operate,
    ),
    route(
        "GET",
        "/admin/v1/scep-challenges",
        Op::ListScepChallenges,
        Permission::Read,
    ),
    route(
        "DELETE",
        "/admin/v1/scep-challenges/{id}",
        Op::DeleteScepChallenge,
        Permission::Operate,
    ),
    route(
        "POST",
        "/admin/v1/certificates",
        Op::IssueCertificate,
        Permission::Operate,
    ),
    route(
        "GET",
        "/admin/v1/approvals",
        Op::ListApprovals,
        Permission::Read,
    ),
    route(
        "GET",
        "/admin/v1/approvals/{id}",
        Op::GetApproval,
        Permission::Read,
    ),
    route(
        "POST",
        "/admin/v1/approvals/{id}/approve",
        Op::Approve,
        Permission::Operate,
    ),
    route(
        "POST",
        "/admin/v1/approvals/{id}/reject",
        Op::Reject,
        Permission::Operate,
    ),
    route("GET", "/admin/v1/audit", Op::Audit, Permission::Audit),
    route(
        "POST",
        "/admin/v1/audit/checkpoints",
        Op::CreateAuditCheckpoint,
        Permission::Audit,
    ),
    route(
        "POST",
        "/admin/v1/backups",
        Op::CreateBackup,
        Permission::Admin,
    ),
];

/// Result of looking a request up in [`ROUTES`].
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The route and its path parameters, in template order.
    Found(&'static Route, Vec<&'a str>),
    /// The path exists with other methods.
    MethodNotAllowed(Vec<&'static str>),
    /// No such path.
    NotFound,
}

/// Path parameters if `path` matches `template`.
fn match_path<'a>(template: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let mut t = template.split('/');
    let mut p = path.split('/');
    let mut params = Vec::new();
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) => {
                if ts.starts_with('{') && ts.ends_with('}') {
                    if ps.is_empty() {
                        return None;
                    }
                    params.push(ps);
                } else if ts != ps {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Finds the route for `method` and `path`.
pub fn lookup<'a>(method: &str, path: &'a str) -> Lookup<'a> {
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(params) = match_path(r.path, path) {
            if r.method == method {
                return Lookup::Found(r, params);
            }
            allowed.push(r.method);
        }
    }
    if allowed.is_empty() {
        Lookup::NotFound
    } else {
        Lookup::MethodNotAllowed(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        match lookup("GET", "/admin/v1/certificates/0abc") {
            Lookup::Found(r, p) => {
                assert_eq!(r.op, Op::GetCertificate);
                assert_eq!(p, ["0abc"]);
            }
            other => panic!("{other:?}"),
        }
        match lookup("POST", "/admin/v1/certificates/0abc/revoke") {
            Lookup::Found(r, p) => {
                assert_eq!(r.op, Op::RevokeCertificate);
                assert_eq!(p, ["0abc"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            lookup("PUT", "/admin/v1/keys"),
            Lookup::MethodNotAllowed(m) if m == ["POST", "GET"]
        ));
        assert!(matches!(
            lookup("GET", "/admin/v1/certificates/"),
            Lookup::NotFound
        ));
        assert!(matches!(lookup("GET", "/admin/v1/nope"), Lookup::NotFound));
        assert!(matches!(
            lookup("GET", "/admin/v1/cas/x/y"),
            Lookup::NotFound
        ));
        assert!(matches!(
            lookup("GET", "/admin/v1/cas/int-x"),
            Lookup::Found(r, _) if r.op == Op::GetCa
        ));
        // Fixed segments win over the `{id}` template for their method.
        assert!(matches!(
            lookup("POST", "/admin/v1/cas/csr"),
            Lookup::Found(r, _) if r.op == Op::CreateCaCsr
        ));
        assert!(matches!(
            lookup("DELETE", "/admin/v1/cas/csr"),
            Lookup::MethodNotAllowed(m) if m == ["GET", "POST"]
        ));
        match lookup("POST", "/admin/v1/cas/int-ab12/activate") {
            Lookup::Found(r, p) => {
                assert_eq!(r.op, Op::ActivateCa);
                assert_eq!(p, ["int-ab12"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            lookup("GET", "/admin/v1/cas/x/status"),
            Lookup::MethodNotAllowed(m) if m == ["POST"]
        ));
    }

    #[test]
    fn table_is_unambiguous() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "duplicate {} {}",
                    a.method,
                    a.path
                );
            }
        }
    }
}
