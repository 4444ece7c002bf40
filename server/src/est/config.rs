//! The `[est]` configuration section: EST labels (RFC 7030 §3.2.2), each
//! bound to an issuance profile, an optional tenant and the ways its
//! clients authenticate.
//!
//! ```toml
//! [[est.labels]]
//! label = "default"          # serves /.well-known/est/ too
//! profile = "devices"
//! tenant = "acme-corp"       # optional
//! auth = ["bootstrap", "client_cert", "basic"]
//! bootstrap_ca = "/etc/ironseal/manufacturer-ca.pem"
//! channel_binding = true
//! ```
//!
//! The unlabelled path `/.well-known/est/` serves the label named
//! [`DEFAULT_LABEL`] when one is configured, and answers 404 otherwise.

use std::path::PathBuf;

use serde::Deserialize;

/// The label the unlabelled path `/.well-known/est/` serves.
pub const DEFAULT_LABEL: &str = "default";

/// `[est]` as written in the file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EstFileConfig {
    /// `[[est.labels]]`.
    pub labels: Vec<EstLabelFileConfig>,
}

/// One `[[est.labels]]` entry as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EstLabelFileConfig {
    pub label: Option<String>,
    pub profile: Option<String>,
    pub tenant: Option<String>,
    pub auth: Option<Vec<String>>,
    pub channel_binding: Option<bool>,
    pub bootstrap_ca: Option<PathBuf>,
}

/// How an EST client may authenticate for a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstAuth {
    /// A TLS client certificate ironseal issued, unexpired and unrevoked
    /// (RFC 7030 §3.3.2). Always what `/simplereenroll` requires.
    ClientCert,
    /// A TLS client certificate chaining to the label's `bootstrap_ca`
    /// (a manufacturer CA, IEEE 802.1AR IDevID style).
    Bootstrap,
    /// HTTP Basic (RFC 7030 §3.2.3, RFC 7617) with an EST user of the
    /// label's tenant, created through the admin API (`/admin/v1/est-users`).
    /// Never enough for `/simplereenroll`.
    Basic,
}

impl EstAuth {
    fn parse(s: &str) -> Option<EstAuth> {
        match s {
            "client_cert" => Some(EstAuth::ClientCert),
            "bootstrap" => Some(EstAuth::Bootstrap),
            "basic" => Some(EstAuth::Basic),
            _ => None,
        }
    }
}

/// A resolved label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstLabel {
    /// The path segment (`[A-Za-z0-9_-]`, 1-64 characters).
    pub label: String,
    /// The issuance profile (must exist).
    pub profile: String,
    /// The tenant whose policy applies, if any.
    pub tenant: Option<String>,
    /// Accepted authentication methods (any one suffices).
    pub auth: Vec<EstAuth>,
    /// Require the RFC 7030 §3.5 / RFC 9266 channel binding.
    pub channel_binding: bool,
    /// Manufacturer CA bundle for [`EstAuth::Bootstrap`].
    pub bootstrap_ca: Option<PathBuf>,
}

/// Resolved `[est]`: the labels in file order (empty: EST is off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EstConfig {
    /// The labels.
    pub labels: Vec<EstLabel>,
}

impl EstConfig {
    /// The label a path segment names (`None`: the unlabelled path).
    pub fn label(&self, name: Option<&str>) -> Option<&EstLabel> {
        let name = name.unwrap_or(DEFAULT_LABEL);
        self.labels.iter().find(|l| l.label == name)
    }

    /// Whether any label is configured (the listener then asks for
    /// client certificates).
    pub fn enabled(&self) -> bool {
        !self.labels.is_empty()
    }
}

impl EstFileConfig {
    /// Checks and resolves the section; `profile_exists` says whether an
    /// issuance profile of that name is configured.
    pub fn resolve(&self, profile_exists: impl Fn(&str) -> bool) -> Result<EstConfig, String> {
        let mut labels: Vec<EstLabel> = Vec::with_capacity(self.labels.len());
        for (i, l) in self.labels.iter().enumerate() {
            let at = |f: &str| format!("est.labels[{i}].{f}");
            let label = l
                .label
                .clone()
                .ok_or_else(|| format!("{} is required", at("label")))?;
            if label.is_empty()
                || label.len() > 64
                || !label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "{}: {label:?} must be 1-64 characters of A-Z a-z 0-9 - _",
                    at("label")
                ));
            }
            if labels.iter().any(|x| x.label == label) {
                return Err(format!("{}: duplicate label {label:?}", at("label")));
            }
            let profile = l
                .profile
                .clone()
                .ok_or_else(|| format!("{} is required", at("profile")))?;
            if !profile_exists(&profile) {
                return Err(format!("{}: no profile named {profile:?}", at("profile")));
            }
            let names = l.auth.clone().unwrap_or_else(|| vec!["client_cert".into()]);
            if names.is_empty() {
                return Err(format!("{} must name at least one method", at("auth")));
            }
            let mut auth = Vec::new();
            for n in &names {
                let a = EstAuth::parse(n).ok_or_else(|| {
                    format!(
                        "{}: unknown method {n:?} (client_cert, bootstrap, basic)",
                        at("auth")
                    )
                })?;
                auth.push(a);
            }
            match (auth.contains(&EstAuth::Bootstrap), &l.bootstrap_ca) {
                (true, None) => {
                    return Err(format!(
                        "{} is required when auth includes \"bootstrap\"",
                        at("bootstrap_ca")
                    ))
                }
                (false, Some(_)) => {
                    return Err(format!(
                        "{} is set but auth does not include \"bootstrap\"",
                        at("bootstrap_ca")
                    ))
                }
                _ => {}
            }
            labels.push(EstLabel {
                label,
                profile,
                tenant: l.tenant.clone(),
                auth,
                channel_binding: l.channel_binding.unwrap_or(false),
                bootstrap_ca: l.bootstrap_ca.clone(),
            });
        }
        Ok(EstConfig { labels })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn parse(s: &str) -> Result<EstConfig, String> {
        let f: EstFileConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        f.resolve(|p| p == "devices")
    }

    #[test]
    fn labels_resolve_with_defaults() {
        let c = parse(
            "[[labels]]\nlabel = \"default\"\nprofile = \"devices\"\n\
             [[labels]]\nlabel = \"iot\"\nprofile = \"devices\"\nauth = [\"bootstrap\"]\n\
             bootstrap_ca = \"/x.pem\"\nchannel_binding = true\n\
             [[labels]]\nlabel = \"pw\"\nprofile = \"devices\"\nauth = [\"basic\", \"client_cert\"]\n",
        )
        .unwrap();
        assert_eq!(c.label(None).unwrap().auth, vec![EstAuth::ClientCert]);
        let iot = c.label(Some("iot")).unwrap();
        assert!(iot.channel_binding);
        assert_eq!(iot.auth, vec![EstAuth::Bootstrap]);
        assert!(c.label(Some("nope")).is_none());
        assert_eq!(
            c.label(Some("pw")).unwrap().auth,
            vec![EstAuth::Basic, EstAuth::ClientCert]
        );
    }

    #[test]
    fn bad_labels_are_refused_with_the_field() {
        for (text, want) in [
            ("[[labels]]\nprofile = \"devices\"\n", "label is required"),
            ("[[labels]]\nlabel = \"a/b\"\nprofile = \"devices\"\n", "must be 1-64"),
            ("[[labels]]\nlabel = \"a\"\nprofile = \"x\"\n", "no profile named"),
            (
                "[[labels]]\nlabel = \"a\"\nprofile = \"devices\"\nauth = [\"bootstrap\"]\n",
                "bootstrap_ca",
            ),
            (
                "[[labels]]\nlabel = \"a\"\nprofile = \"devices\"\nauth = [\"magic\"]\n",
                "unknown method",
            ),
            (
                "[[labels]]\nlabel = \"a\"\nprofile = \"devices\"\n[[labels]]\nlabel = \"a\"\nprofile = \"devices\"\n",
                "duplicate",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
