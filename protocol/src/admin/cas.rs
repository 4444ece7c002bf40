//! CAs made by the admin API: creation, CSRs for an external issuer,
//! imports, cross-signing and rollover.
//!
//! The key algorithm (`A`) and name-constraint subtree (`S`) types belong
//! to the CA core; they are type parameters here so that this crate stays
//! below it (the server and the fuzz target use
//! `ironseal_ca_core::keys::KeyAlgorithm` and
//! `ironseal_ca_core::constraints::GeneralSubtree`).

use serde::Deserialize;

use super::RequestError;

/// Name constraints (RFC 5280 §4.2.1.10) as text subtrees
/// (`dns:example.com`, `ip:10.0.0.0/8`, ...).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub struct NameConstraintsInput<S> {
    /// permittedSubtrees.
    #[serde(default = "Vec::new")]
    pub permitted: Vec<S>,
    /// excludedSubtrees.
    #[serde(default = "Vec::new")]
    pub excluded: Vec<S>,
}

impl<S> Default for NameConstraintsInput<S> {
    fn default() -> Self {
        NameConstraintsInput {
            permitted: Vec::new(),
            excluded: Vec::new(),
        }
    }
}

/// `POST /admin/v1/cas`: a root (no `parent`) or an intermediate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[serde(bound(deserialize = "A: Deserialize<'de>, S: Deserialize<'de>"))]
pub struct CreateCaRequest<A, S> {
    /// Display name (see [`ca_name`]).
    pub name: String,
    /// Id of the issuing CA; none for a root.
    #[serde(default)]
    pub parent: Option<String>,
    /// Key algorithm.
    pub algorithm: A,
    /// Validity in days.
    pub validity_days: u32,
    /// pathLenConstraint (RFC 5280 §4.2.1.9).
    #[serde(default)]
    pub path_len: Option<u8>,
    /// Certificate policy OIDs (RFC 5280 §4.2.1.4).
    #[serde(default)]
    pub policies: Vec<String>,
    /// Name constraints.
    #[serde(default = "Option::default")]
    pub name_constraints: Option<NameConstraintsInput<S>>,
}

/// `POST /admin/v1/cas/{id}/cross-sign`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CrossSignRequest {
    /// Id of the signing CA.
    pub by: String,
    /// Validity in days.
    pub validity_days: u32,
}

/// `POST /admin/v1/cas/csr`: what the new intermediate asks its external
/// issuer for. The issuer decides what it signs; these become the
/// extensionRequest of the PKCS#10 request (RFC 2985 §5.4.2).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[serde(bound(deserialize = "A: Deserialize<'de>, S: Deserialize<'de>"))]
pub struct CsrRequest<A, S> {
    /// Display name (see [`ca_name`]).
    pub name: String,
    /// Key algorithm.
    pub algorithm: A,
    /// pathLenConstraint asked for.
    #[serde(default)]
    pub path_len: Option<u8>,
    /// Certificate policy OIDs asked for.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Name constraints asked for.
    #[serde(default = "Option::default")]
    pub name_constraints: Option<NameConstraintsInput<S>>,
}

/// `POST /admin/v1/cas/{id}/certificate`: the certificate the external
/// issuer signed for a pending CA.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignedCertificateRequest {
    /// PEM or DER (in a JSON string) certificate.
    pub certificate_pem: String,
}

/// `POST /admin/v1/cas/external`: a CA certificate kept without its key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalCaRequest {
    /// Display name (see [`ca_name`]).
    pub name: String,
    /// The CA certificate.
    pub certificate_pem: String,
}

/// `POST /admin/v1/cas/import`: an existing CA and its private key
/// (PKCS#8, SEC1 or PKCS#1, PEM).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImportCaRequest {
    /// Display name (see [`ca_name`]).
    pub name: String,
    /// The CA certificate.
    pub certificate_pem: String,
    /// Its private key.
    pub private_key_pem: String,
}

/// `POST /admin/v1/cas/{id}/rollover`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RolloverRequest {
    /// Hand issuance to the successor at once.
    #[serde(default)]
    pub activate: bool,
}

/// A CA's display name: trimmed, 1 to 64 characters, no control
/// characters.
pub fn ca_name(name: &str) -> Result<String, RequestError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(RequestError::bad_request(
            "name must be 1 to 64 characters without control characters",
        ));
    }
    Ok(name)
}
