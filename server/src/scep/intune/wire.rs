//! The JSON of Intune's `ScepActions` service (api-version 2018-02-20), as
//! Microsoft's reference client `microsoft/Intune-Resource-Access`
//! (`IntuneScepServiceClient`) sends and reads it; see
//! docs/scep.md, "Intune".

use serde::Deserialize;
use serde_json::{json, Value};

use ironseal_protocol::scep::FailInfo;

/// The `api-version` header of the ScepActions calls.
pub const API_VERSION: &str = "2018-02-20";
/// The service whose endpoint validates SCEP requests.
pub const SERVICE_NAME: &str = "ScepRequestValidationFEService";
/// Intune's application id, whose service endpoints Graph lists.
pub const INTUNE_APP_ID: &str = "0000000a-0000-0000-c000-000000000000";
/// The token scope of the ScepActions calls (the double slash is what
/// Entra expects for this resource).
pub const INTUNE_SCOPE: &str = "https://api.manage.microsoft.com//.default";
/// The token scope of the Graph service-discovery call.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// `E_FAIL`, the HRESULT a failure notification carries.
pub const E_FAIL: i64 = 0x8000_4005_u32 as i32 as i64;
/// Longest `errorDescription` Intune accepts.
pub const MAX_ERROR_DESCRIPTION: usize = 255;

/// What Intune answered for a validation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `Success`: the challenge is Intune's, fresh, and the CSR matches.
    Valid,
    /// Any other code: issue nothing.
    Rejected {
        /// The code as Intune sent it.
        code: String,
        /// Its `errorDescription`, if any.
        description: String,
    },
}

impl Verdict {
    /// The failInfo (RFC 8894 §3.2.1.4) of a rejection: `badTime` for an
    /// expired challenge, `badRequest` for the rest.
    pub fn fail_info(&self) -> Option<FailInfo> {
        match self {
            Verdict::Valid => None,
            Verdict::Rejected { code, .. } if code == "ChallengeExpired" => Some(FailInfo::BadTime),
            Verdict::Rejected { .. } => Some(FailInfo::BadRequest),
        }
    }
}

/// `{"code","errorDescription"}`, the answer of every ScepActions call.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    pub code: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl ActionResult {
    /// Parses an answer body; `None` when it is not the expected JSON.
    pub fn parse(body: &[u8]) -> Option<ActionResult> {
        serde_json::from_slice(body).ok()
    }

    /// The verdict of a validation answer.
    pub fn verdict(self) -> Verdict {
        if self.code == "Success" {
            Verdict::Valid
        } else {
            Verdict::Rejected {
                code: self.code,
                description: self.error_description.unwrap_or_default(),
            }
        }
    }
}

/// Who is calling (`callerInfo`): the provider name and version.
pub fn caller_info() -> String {
    format!("ironseal/{}", env!("CARGO_PKG_VERSION"))
}

/// `validateRequest`: the transaction and the base64 PKCS#10.
pub fn validate_body(transaction_id: &str, csr_b64: &str) -> Value {
    json!({
        "request": {
            "transactionId": transaction_id,
            "certificateRequest": csr_b64,
            "callerInfo": caller_info(),
        }
    })
}

/// What a success notification says about the issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// SHA-1 thumbprint, uppercase hex (as Windows shows it).
    pub thumbprint: String,
    /// Serial, hex.
    pub serial: String,
    /// notAfter, RFC 3339 UTC.
    pub expires: String,
    /// The issuing CA's subject (RFC 4514).
    pub issuer: String,
}

/// `successNotification`.
pub fn success_body(transaction_id: &str, csr_b64: &str, issued: &Issued) -> Value {
    json!({
        "notification": {
            "transactionId": transaction_id,
            "certificateRequest": csr_b64,
            "certificateThumbprint": issued.thumbprint,
            "certificateSerialNumber": issued.serial,
            "certificateExpirationDateUtc": issued.expires,
            "issuingCertificateAuthority": issued.issuer,
            "caConfiguration": "ironseal",
            "certificateAuthority": "ironseal",
            "callerInfo": caller_info(),
        }
    })
}

/// `failureNotification`, the description cut to what Intune accepts.
pub fn failure_body(transaction_id: &str, csr_b64: &str, description: &str) -> Value {
    let mut d = description.to_string();
    if d.len() > MAX_ERROR_DESCRIPTION {
        let mut end = MAX_ERROR_DESCRIPTION;
        while !d.is_char_boundary(end) {
            end -= 1;
        }
        d.truncate(end);
    }
    json!({
        "notification": {
            "transactionId": transaction_id,
            "certificateRequest": csr_b64,
            "hResult": E_FAIL,
            "errorDescription": d,
            "callerInfo": caller_info(),
        }
    })
}

/// The `uri` of [`SERVICE_NAME`] in Graph's `servicePrincipals/.../endpoints`
/// answer (`{"value":[{"providerName","uri"}]}`).
pub fn service_uri(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Endpoint {
        provider_name: String,
        uri: String,
    }
    #[derive(Deserialize)]
    struct Endpoints {
        value: Vec<Endpoint>,
    }
    let e: Endpoints = serde_json::from_slice(body).ok()?;
    e.value
        .into_iter()
        .find(|x| x.provider_name.eq_ignore_ascii_case(SERVICE_NAME))
        .map(|x| x.uri.trim_end_matches('/').to_string())
        .filter(|u| u.starts_with("https://"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn verdicts_and_fail_info() {
        let v = ActionResult::parse(br#"{"code":"Success","errorDescription":""}"#)
            .unwrap()
            .verdict();
        assert_eq!(v, Verdict::Valid);
        assert_eq!(v.fail_info(), None);
        let v = ActionResult::parse(br#"{"code":"ChallengeExpired"}"#)
            .unwrap()
            .verdict();
        assert_eq!(v.fail_info(), Some(FailInfo::BadTime));
        let v = ActionResult::parse(br#"{"code":"SubjectNameMismatch","errorDescription":"x"}"#)
            .unwrap()
            .verdict();
        assert_eq!(v.fail_info(), Some(FailInfo::BadRequest));
        assert!(ActionResult::parse(b"<html>").is_none());
        assert_eq!(E_FAIL, -2_147_467_259);
    }

    #[test]
    fn discovery_and_bodies() {
        let body = br#"{"value":[{"providerName":"Other","uri":"https://a"},
            {"providerName":"ScepRequestValidationFEService","uri":"https://fef.msua01.manage.microsoft.com/ScepRequestValidationFEService/"}]}"#;
        assert_eq!(
            service_uri(body).unwrap(),
            "https://fef.msua01.manage.microsoft.com/ScepRequestValidationFEService"
        );
        assert!(service_uri(br#"{"value":[]}"#).is_none());
        assert!(service_uri(
            br#"{"value":[{"providerName":"ScepRequestValidationFEService","uri":"http://x"}]}"#
        )
        .is_none());
        let f = failure_body("t", "c", &"é".repeat(200));
        let d = f["notification"]["errorDescription"].as_str().unwrap();
        assert!(d.len() <= MAX_ERROR_DESCRIPTION);
        assert_eq!(validate_body("t", "c")["request"]["transactionId"], "t");
    }
}
