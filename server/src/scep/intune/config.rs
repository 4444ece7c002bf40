//! `[scep.intune]`: the Entra (Azure AD) app registration ironseal uses to
//! validate Intune SCEP challenges (see docs/scep.md, "Intune").

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// Entra's token service.
pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";
/// Microsoft Graph, where the Intune service endpoints are discovered.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";

/// `[scep.intune]` as written in the file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct IntuneFileConfig {
    /// The Entra tenant (GUID or `contoso.onmicrosoft.com`).
    pub tenant: Option<String>,
    /// The app registration's application (client) id.
    pub client_id: Option<String>,
    /// A file holding the client secret; read again for each new token,
    /// so a rotated secret needs no restart.
    pub client_secret_file: Option<PathBuf>,
    /// Base URL of the token service (default Entra's).
    pub login_url: Option<String>,
    /// Base URL of Microsoft Graph (default `https://graph.microsoft.com`).
    pub graph_url: Option<String>,
    /// Extra PEM trust anchors for these HTTPS connections, beside the
    /// system's (e.g. a TLS-inspecting proxy; tests use it for a fake).
    pub ca_file: Option<PathBuf>,
    /// Attempts per call when Intune answers 429 or 5xx or cannot be
    /// reached (default 4, at most 10).
    pub max_attempts: Option<u32>,
    /// Timeout of one HTTP exchange in seconds (default 30).
    pub timeout_secs: Option<u64>,
    /// First backoff in milliseconds, doubled per retry (default 500).
    pub backoff_ms: Option<u64>,
}

/// The resolved `[scep.intune]` section.
#[derive(Clone, PartialEq, Eq)]
pub struct IntuneConfig {
    pub tenant: String,
    pub client_id: String,
    pub client_secret_file: PathBuf,
    /// Without a trailing slash.
    pub login_url: String,
    /// Without a trailing slash.
    pub graph_url: String,
    pub ca_file: Option<PathBuf>,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub backoff: Duration,
}

impl std::fmt::Debug for IntuneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntuneConfig")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret_file", &self.client_secret_file)
            .field("login_url", &self.login_url)
            .field("graph_url", &self.graph_url)
            .field("ca_file", &self.ca_file)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// An `https://` base URL, trailing slashes removed. Plain HTTP is
/// refused: the token request carries the client secret.
fn https_base(key: &str, value: &str) -> Result<String, ConfigError> {
    let ok = value
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(['?', '#', ' ']));
    if !ok {
        return Err(ConfigError::Invalid(format!(
            "[scep.intune] {key} must be an https:// URL without query, got {value:?}"
        )));
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// Checks `[scep.intune]`; the secret file must be readable and not empty.
pub fn resolve(f: &IntuneFileConfig) -> Result<IntuneConfig, ConfigError> {
    let need = |v: &Option<String>, key: &str| {
        v.clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ConfigError::Invalid(format!("[scep.intune] {key} is required")))
    };
    let tenant = need(&f.tenant, "tenant")?;
    if !tenant
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(ConfigError::Invalid(
            "[scep.intune] tenant must be a GUID or a domain name".into(),
        ));
    }
    let client_id = need(&f.client_id, "client_id")?;
    let client_secret_file = f.client_secret_file.clone().ok_or_else(|| {
        ConfigError::Invalid("[scep.intune] client_secret_file is required".into())
    })?;
    super::token::read_secret(&client_secret_file)
        .map_err(|e| ConfigError::Invalid(format!("[scep.intune] {e}")))?;
    let max_attempts = f.max_attempts.unwrap_or(4);
    if !(1..=10).contains(&max_attempts) {
        return Err(ConfigError::Invalid(
            "[scep.intune] max_attempts must be 1 to 10".into(),
        ));
    }
    Ok(IntuneConfig {
        tenant,
        client_id,
        client_secret_file,
        login_url: https_base(
            "login_url",
            f.login_url.as_deref().unwrap_or(DEFAULT_LOGIN_URL),
        )?,
        graph_url: https_base(
            "graph_url",
            f.graph_url.as_deref().unwrap_or(DEFAULT_GRAPH_URL),
        )?,
        ca_file: f.ca_file.clone(),
        max_attempts,
        timeout: Duration::from_secs(f.timeout_secs.unwrap_or(30).clamp(1, 300)),
        backoff: Duration::from_millis(f.backoff_ms.unwrap_or(500).min(60_000)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn urls_must_be_https_and_the_secret_readable() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "abc\n").unwrap();
        let mut f = IntuneFileConfig {
            tenant: Some("contoso.onmicrosoft.com".into()),
            client_id: Some("app".into()),
            client_secret_file: Some(secret.clone()),
            ..Default::default()
        };
        let c = resolve(&f).unwrap();
        assert_eq!(c.login_url, DEFAULT_LOGIN_URL);
        assert_eq!(c.max_attempts, 4);
        assert!(!format!("{c:?}").contains("abc"));
        f.graph_url = Some("http://127.0.0.1:1/".into());
        assert!(resolve(&f).unwrap_err().to_string().contains("https://"));
        f.graph_url = Some("https://127.0.0.1:1/".into());
        assert_eq!(resolve(&f).unwrap().graph_url, "https://127.0.0.1:1");
        f.client_secret_file = Some(dir.path().join("missing"));
        assert!(resolve(&f).is_err());
        std::fs::write(&secret, "  \n").unwrap();
        f.client_secret_file = Some(secret);
        assert!(resolve(&f).unwrap_err().to_string().contains("empty"));
        f.tenant = Some("a/b".into());
        assert!(resolve(&f).is_err());
    }
}
