//! Decoding a whole admin request: route, path parameters, query and body.

use serde::de::DeserializeOwned;

use super::routes::{lookup, Lookup, Op, Route};
use super::{
    ca_name, csr_der, decode_est_user, decode_scep_challenge, normalize_serial, parse_audit_query,
    parse_body, parse_status, parse_tenant_query, tenant_id, ApprovalStatus, AuditQuery,
    BulkRequest, CaStatusRequest, CreateCaRequest, CreateEstUserRequest, CreateKeyRequest,
    CreateScepChallengeRequest, CreateTenantRequest, CrossSignRequest, CsrRequest, DecisionRequest,
    ExternalCaRequest, ImportCaRequest, IssueRequest, RequestError, RevokeRequest, RolloverRequest,
    SignedCertificateRequest,
};

/// What an admin call carries beyond its route, decoded; `A` and `S` are
/// the key algorithm and subtree types (see [`super::cas`]).
#[derive(Debug)]
pub enum AdminRequest<A, S> {
    /// `POST /admin/v1/keys`.
    CreateKey(CreateKeyRequest),
    /// `POST /admin/v1/certificates/{serial}/revoke`.
    Revoke(RevokeRequest),
    /// `POST /admin/v1/revocations`.
    BulkRevoke(BulkRequest),
    /// `POST /admin/v1/cas`.
    CreateCa(CreateCaRequest<A, S>),
    /// `POST /admin/v1/cas/{id}/status`.
    SetCaStatus(CaStatusRequest),
    /// `POST /admin/v1/cas/{id}/cross-sign`.
    CrossSignCa(CrossSignRequest),
    /// `POST /admin/v1/cas/csr`.
    CreateCaCsr(CsrRequest<A, S>),
    /// `POST /admin/v1/cas/{id}/certificate`.
    ImportSignedCa(SignedCertificateRequest),
    /// `POST /admin/v1/cas/external`.
    RegisterExternalCa(ExternalCaRequest),
    /// `POST /admin/v1/cas/import`.
    ImportCa(ImportCaRequest),
    /// `POST /admin/v1/cas/{id}/rollover`.
    RolloverCa(RolloverRequest),
    /// `GET /admin/v1/audit`.
    Audit(AuditQuery),
    /// `POST /admin/v1/certificates`, with the DER of its CSR.
    IssueCertificate(IssueRequest, Vec<u8>),
    /// `GET /admin/v1/approvals`: the status filter.
    ListApprovals(Option<ApprovalStatus>),
    /// `POST /admin/v1/approvals/{id}/approve` or `.../reject`.
    Decide(DecisionRequest),
    /// `POST /admin/v1/tenants`.
    CreateTenant(CreateTenantRequest),
    /// `POST /admin/v1/est-users`.
    CreateEstUser(CreateEstUserRequest),
    /// `GET /admin/v1/est-users`: the tenant filter.
    ListEstUsers(Option<String>),
    /// `POST /admin/v1/scep-challenges`.
    CreateScepChallenge(CreateScepChallengeRequest),
    /// `GET /admin/v1/scep-challenges`: the tenant filter.
    ListScepChallenges(Option<String>),
    /// A call whose only input is its route and path parameters.
    Bare,
}

/// Decodes the query and body of a call to `op` the way its handler does
/// before it touches any state, and reports the first refusal. Checks that
/// need the CA core (certificates, keys, reasons) are the caller's.
pub fn decode_body<A: DeserializeOwned, S: DeserializeOwned>(
    op: Op,
    query: Option<&str>,
    body: &[u8],
) -> Result<AdminRequest<A, S>, RequestError> {
    Ok(match op {
        Op::CreateKey => AdminRequest::CreateKey(parse_body(body)?),
        Op::RevokeCertificate => AdminRequest::Revoke(parse_body(body)?),
        Op::BulkRevoke => {
            let r: BulkRequest = parse_body(body)?;
            // Bad serials are reported per serial, not refused here.
            r.serials.iter().for_each(|s| drop(normalize_serial(s)));
            AdminRequest::BulkRevoke(r)
        }
        Op::CreateCa => {
            let r: CreateCaRequest<A, S> = parse_body(body)?;
            ca_name(&r.name)?;
            AdminRequest::CreateCa(r)
        }
        Op::SetCaStatus => AdminRequest::SetCaStatus(parse_body(body)?),
        Op::CrossSignCa => AdminRequest::CrossSignCa(parse_body(body)?),
        Op::CreateCaCsr => {
            let r: CsrRequest<A, S> = parse_body(body)?;
            ca_name(&r.name)?;
            AdminRequest::CreateCaCsr(r)
        }
        Op::ImportSignedCa => AdminRequest::ImportSignedCa(parse_body(body)?),
        Op::RegisterExternalCa => {
            let r: ExternalCaRequest = parse_body(body)?;
            ca_name(&r.name)?;
            AdminRequest::RegisterExternalCa(r)
        }
        Op::ImportCa => {
            let r: ImportCaRequest = parse_body(body)?;
            ca_name(&r.name)?;
            AdminRequest::ImportCa(r)
        }
        Op::RolloverCa => AdminRequest::RolloverCa(parse_body(body)?),
        Op::Audit => AdminRequest::Audit(parse_audit_query(query)?),
        Op::IssueCertificate => {
            let r: IssueRequest = parse_body(body)?;
            let der = csr_der(&r.csr_pem)?;
            AdminRequest::IssueCertificate(r, der)
        }
        Op::ListApprovals => AdminRequest::ListApprovals(parse_status(query)?),
        Op::CreateEstUser => AdminRequest::CreateEstUser(decode_est_user(body)?),
        Op::ListEstUsers => AdminRequest::ListEstUsers(parse_tenant_query(query)?),
        Op::CreateScepChallenge => AdminRequest::CreateScepChallenge(decode_scep_challenge(body)?),
        Op::ListScepChallenges => AdminRequest::ListScepChallenges(parse_tenant_query(query)?),
        Op::Approve | Op::Reject => AdminRequest::Decide(parse_body(body)?),
        Op::CreateTenant => {
            let r: CreateTenantRequest = parse_body(body)?;
            tenant_id(&r.id)?;
            AdminRequest::CreateTenant(r)
        }
        Op::Whoami
        | Op::ListKeys
        | Op::DeleteKey
        | Op::GetCertificate
        | Op::RenewEarly
        | Op::ListCas
        | Op::ActivateCa
        | Op::GetCa
        | Op::ListTenants
        | Op::GetTenant
        | Op::DisableTenant
        | Op::CreateEabKey
        | Op::ListEabKeys
        | Op::DisableEstUser
        | Op::DeleteScepChallenge
        | Op::DisableEabKey
        | Op::GetApproval
        | Op::CreateAuditCheckpoint
        | Op::CreateBackup => AdminRequest::Bare,
    })
}

/// A routed, decoded admin request.
#[derive(Debug)]
pub struct Decoded<'a, A, S> {
    /// The route that matched.
    pub route: &'static Route,
    /// Its path parameters, in template order.
    pub params: Vec<&'a str>,
    /// Query and body.
    pub request: AdminRequest<A, S>,
}

/// Routes `method path` (`None` if no route matches, whatever the method)
/// and decodes its parameters, query and body (see [`decode_body`]).
/// Any input gives a value or a [`RequestError`], never a panic: this is
/// the entry point of the `admin_json` fuzz target.
pub fn decode_request<'a, A: DeserializeOwned, S: DeserializeOwned>(
    method: &str,
    path: &'a str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Option<Decoded<'a, A, S>>, RequestError> {
    match lookup(method, path) {
        Lookup::Found(route, params) => {
            for p in &params {
                // Serial parameters are normalized; ids are looked up verbatim.
                let _ = normalize_serial(p);
            }
            let request = decode_body(route.op, query, body)?;
            Ok(Some(Decoded {
                route,
                params,
                request,
            }))
        }
        Lookup::MethodNotAllowed(_) | Lookup::NotFound => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes with the CA-core types stood in for by their text form.
    fn decode(
        method: &str,
        path: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Option<AdminRequest<String, String>>, RequestError> {
        decode_request::<String, String>(method, path, query, body).map(|d| d.map(|d| d.request))
    }

    /// The `admin_json` fuzz target's seeds decode; their halves and their
    /// variants with an unknown member are refused.
    #[test]
    fn fuzz_seeds_decode_and_their_mutants_are_refused() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/admin_json");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let (line, body) = text.split_once('\n').unwrap();
            let (method, target) = line.split_once(' ').unwrap();
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            let decoded = decode(method, path, query, body.as_bytes())
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(decoded.is_some(), "{line}: no route");
            if !body.is_empty() {
                let cut = &body.as_bytes()[..body.len() / 2];
                assert!(decode(method, path, query, cut).is_err(), "{line}");
                let extra = body.replacen('{', r#"{"unknownField": 1, "#, 1);
                assert!(
                    decode(method, path, query, extra.as_bytes()).is_err(),
                    "{line}: unknown field accepted"
                );
            }
            n += 1;
        }
        assert!(n >= 10, "only {n} seeds");
    }

    #[test]
    fn requests_are_typed_and_checked() {
        assert!(matches!(
            decode("GET", "/admin/v1/nope", None, b"{"),
            Ok(None)
        ));
        assert!(matches!(
            decode("PUT", "/admin/v1/keys", None, b"{"),
            Ok(None)
        ));
        match decode(
            "POST",
            "/admin/v1/keys",
            None,
            br#"{"name":"ci","role":"operator"}"#,
        ) {
            Ok(Some(AdminRequest::CreateKey(r))) => {
                assert_eq!(
                    (r.name.as_str(), r.role),
                    ("ci", super::super::ApiRole::Operator)
                )
            }
            other => panic!("{other:?}"),
        }
        let e = decode(
            "POST",
            "/admin/v1/keys",
            None,
            br#"{"name":"ci","role":"root"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "bad_request");
        assert!(decode(
            "POST",
            "/admin/v1/cas",
            None,
            br#"{"name":" ","algorithm":"p256","validityDays":1}"#
        )
        .is_err());
        assert!(decode("POST", "/admin/v1/tenants", None, br#"{"id":"-a"}"#).is_err());
        assert!(decode("POST", "/admin/v1/certificates", None, br#"{"csrPem":"x"}"#).is_err());
        assert!(decode("GET", "/admin/v1/approvals", Some("status=maybe"), b"").is_err());
        assert!(matches!(
            decode("GET", "/admin/v1/approvals", Some("status=pending"), b""),
            Ok(Some(AdminRequest::ListApprovals(Some(
                ApprovalStatus::Pending
            ))))
        ));
        assert!(decode("GET", "/admin/v1/audit", Some("limit=-1"), b"").is_err());
    }
}
