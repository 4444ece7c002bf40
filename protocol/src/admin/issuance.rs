//! `POST /admin/v1/certificates`: issuance from a CSR.

use serde::Deserialize;

use super::RequestError;

/// The body of an issuance call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssueRequest {
    /// The PKCS#10 request (RFC 2986) in PEM (`CERTIFICATE REQUEST`).
    pub csr_pem: String,
    /// Issuance profile (default: the server's).
    #[serde(default)]
    pub profile: Option<String>,
    /// The tenant to issue for (unscoped callers only).
    #[serde(default)]
    pub tenant: Option<String>,
}

/// The DER of a PEM certificate request (RFC 7468 §7 labels).
pub fn csr_der(pem: &str) -> Result<Vec<u8>, RequestError> {
    let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|e| RequestError::bad_request(format!("csrPem is not PEM: {e}")))?;
    if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
        return Err(RequestError::bad_request(format!(
            "csrPem has label {label:?}, expected CERTIFICATE REQUEST"
        )));
    }
    Ok(der)
}
