//! Settings: small named values every replica must agree on, kept in the
//! store with a version for compare-and-swap (issue 11).
//!
//! * [`ISSUING_CA`]: the id of the CA that signs new leaves (was the
//!   `issuing-ca` file of the data directory);
//! * [`SCEP_RA`]: the SCEP RA certificate and its sealed key (were
//!   `scep-ra.der` and `scep-ra.key.sealed`).
//!
//! [`Store::put_setting`](crate::Store::put_setting) writes only if the
//! stored version is the expected one (`None`: only if there is none), so
//! of two replicas creating or rotating a setting at once exactly one wins
//! and the other reads the winner's value. An export carries every
//! setting ([`NamedSetting`]; the SCEP RA keeps its sealed key, so the
//! target needs the same key-encryption key, as for the CA keys) and, for
//! older importers, the issuing-CA pin as a file entry too.

/// The issuing-CA pin: the CA id in UTF-8.
pub const ISSUING_CA: &str = "issuing-ca";

/// The SCEP RA certificate and sealed key (JSON, see the server's
/// `scep::ra`).
pub const SCEP_RA: &str = "scep-ra";

/// A setting as an export carries it: its name and value (an import
/// writes it as version 1).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NamedSetting {
    pub name: String,
    pub value: Vec<u8>,
}

/// A stored setting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SettingRecord {
    /// 1 when created, then one more per write.
    pub version: u64,
    /// The value (what it means depends on the name).
    pub value: Vec<u8>,
}

/// The issuing-CA pin as stored, if set (an empty value counts as unset):
/// for offline tools that open a stopped server's store.
pub async fn issuing_ca(store: &dyn crate::Store) -> Result<Option<String>, crate::StoreError> {
    Ok(store
        .get_setting(ISSUING_CA)
        .await?
        .map(|r| String::from_utf8_lossy(&r.value).trim().to_string())
        .filter(|id| !id.is_empty()))
}
