//! The `[scep]` configuration section (see docs/configuration.md).

use serde::Deserialize;

use crate::config::{ConfigError, Profile};

/// `[scep]` as written in the file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ScepFileConfig {
    /// Serve SCEP on the plain-HTTP listener (default true).
    pub enabled: Option<bool>,
    /// Advertise and answer with 3DES for old devices (default false;
    /// 3DES and DES requests are decrypted regardless).
    pub des3: Option<bool>,
    /// `[[scep.profiles]]`: one per URL path.
    pub profiles: Vec<ScepProfileFileConfig>,
}

/// One `[[scep.profiles]]` entry.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ScepProfileFileConfig {
    /// The path segment after `/scep/`.
    pub path: Option<String>,
    /// The issuance profile (a `kind = "device"` `[[profiles]]` entry).
    pub profile: Option<String>,
    /// The tenant whose policy applies (optional).
    pub tenant: Option<String>,
    /// The static challenge password the CSR must carry.
    pub challenge: Option<String>,
}

/// The resolved `[scep]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepConfig {
    /// Whether `/scep` is served.
    pub enabled: bool,
    /// Whether DES3 is advertised.
    pub des3: bool,
    /// Paths in file order; `/scep` alone uses the first.
    pub profiles: Vec<ScepProfile>,
}

impl Default for ScepConfig {
    fn default() -> Self {
        ScepConfig {
            enabled: true,
            des3: false,
            profiles: Vec::new(),
        }
    }
}

/// One SCEP path.
#[derive(Clone, PartialEq, Eq)]
pub struct ScepProfile {
    /// The path segment after `/scep/`.
    pub path: String,
    /// The issuance profile's name.
    pub profile: String,
    /// The tenant, if any.
    pub tenant: Option<String>,
    /// The static challenge password.
    pub challenge: String,
}

impl std::fmt::Debug for ScepProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScepProfile")
            .field("path", &self.path)
            .field("profile", &self.profile)
            .field("tenant", &self.tenant)
            .field("challenge", &"<redacted>")
            .finish()
    }
}

impl ScepConfig {
    /// The entry for `/scep/{path}`, or for `/scep` (`None`): the first.
    pub fn for_path(&self, path: Option<&str>) -> Option<&ScepProfile> {
        match path {
            None => self.profiles.first(),
            Some(p) => self.profiles.iter().find(|e| e.path == p),
        }
    }
}

/// Checks `[scep]` against the issuance profiles.
pub fn resolve(file: &ScepFileConfig, profiles: &[Profile]) -> Result<ScepConfig, ConfigError> {
    let bad = |i: usize, what: &str| {
        ConfigError::Invalid(format!("[[scep.profiles]] entry {}: {what}", i + 1))
    };
    let mut out = Vec::new();
    for (i, p) in file.profiles.iter().enumerate() {
        let path = p.path.clone().ok_or_else(|| bad(i, "path is required"))?;
        if path.is_empty()
            || !path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(bad(i, "path must be letters, digits, '-', '_' or '.'"));
        }
        if out.iter().any(|e: &ScepProfile| e.path == path) {
            return Err(bad(i, &format!("path {path:?} appears twice")));
        }
        let profile = p
            .profile
            .clone()
            .ok_or_else(|| bad(i, "profile is required"))?;
        let Some(pr) = profiles.iter().find(|x| x.name == profile) else {
            return Err(bad(
                i,
                &format!("no [[profiles]] entry is named {profile:?}"),
            ));
        };
        if !matches!(pr.kind, ironseal_ca_core::profile::ProfileKind::Device(_)) {
            return Err(bad(
                i,
                &format!("profile {profile:?} must have kind = \"device\""),
            ));
        }
        let challenge = p
            .challenge
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad(i, "challenge is required"))?;
        out.push(ScepProfile {
            path,
            profile,
            tenant: p.tenant.clone(),
            challenge,
        });
    }
    Ok(ScepConfig {
        enabled: file.enabled.unwrap_or(true),
        des3: file.des3.unwrap_or(false),
        profiles: out,
    })
}
