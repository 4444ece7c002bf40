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
    /// `[scep.intune]`: the Entra app that validates Intune challenges.
    pub intune: Option<super::intune::config::IntuneFileConfig>,
    /// Hours a finished transaction record is kept after it was last
    /// written (default 720; 0 keeps them for ever).
    pub transaction_retention_hours: Option<u32>,
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
    /// `static` (default), `dynamic`, `static+dynamic` or `intune`.
    pub challenge_kind: Option<String>,
}

/// Which challenge passwords a SCEP path accepts in a PKCSReq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// The path's configured password (compared in constant time).
    Static,
    /// A one-time challenge issued through the admin API.
    Dynamic,
    /// Either of the two.
    StaticOrDynamic,
    /// An Intune-issued challenge, validated by Intune (`[scep.intune]`).
    Intune,
}

impl ChallengeKind {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Static => "static",
            ChallengeKind::Dynamic => "dynamic",
            ChallengeKind::StaticOrDynamic => "static+dynamic",
            ChallengeKind::Intune => "intune",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(s: &str) -> Option<ChallengeKind> {
        [
            ChallengeKind::Static,
            ChallengeKind::Dynamic,
            ChallengeKind::StaticOrDynamic,
            ChallengeKind::Intune,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether the path's static password is accepted.
    pub fn accepts_static(self) -> bool {
        matches!(self, ChallengeKind::Static | ChallengeKind::StaticOrDynamic)
    }

    /// Whether one-time challenges are accepted.
    pub fn accepts_dynamic(self) -> bool {
        matches!(
            self,
            ChallengeKind::Dynamic | ChallengeKind::StaticOrDynamic
        )
    }
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
    /// `[scep.intune]`, when configured.
    pub intune: Option<super::intune::config::IntuneConfig>,
    /// How long a finished transaction record is kept (`None`: for ever),
    /// see `scep::purge`.
    pub transaction_retention: Option<std::time::Duration>,
}

/// Default of `[scep] transaction_retention_hours`: 30 days.
pub const DEFAULT_TRANSACTION_RETENTION_HOURS: u32 = 720;

fn retention(hours: u32) -> Option<std::time::Duration> {
    (hours > 0).then(|| std::time::Duration::from_secs(u64::from(hours) * 3600))
}

impl Default for ScepConfig {
    fn default() -> Self {
        ScepConfig {
            enabled: true,
            des3: false,
            profiles: Vec::new(),
            intune: None,
            transaction_retention: retention(DEFAULT_TRANSACTION_RETENTION_HOURS),
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
    /// The static challenge password (empty unless the kind accepts one).
    pub challenge: String,
    /// Which challenges a PKCSReq may carry.
    pub challenge_kind: ChallengeKind,
}

impl std::fmt::Debug for ScepProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScepProfile")
            .field("path", &self.path)
            .field("profile", &self.profile)
            .field("tenant", &self.tenant)
            .field("challenge", &"<redacted>")
            .field("challenge_kind", &self.challenge_kind)
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
        let kind_name = p.challenge_kind.as_deref().unwrap_or("static");
        let challenge_kind = ChallengeKind::parse(kind_name).ok_or_else(|| {
            bad(
                i,
                &format!(
                    "challenge_kind {kind_name:?} is not one of static, dynamic, static+dynamic, intune"
                ),
            )
        })?;
        let challenge = p.challenge.clone().filter(|c| !c.is_empty());
        let challenge = match (challenge_kind.accepts_static(), challenge) {
            (true, Some(c)) => c,
            (true, None) => return Err(bad(i, "challenge is required")),
            (false, None) => String::new(),
            (false, Some(_)) => {
                return Err(bad(
                    i,
                    &format!(
                        "challenge is set but challenge_kind = {:?} never accepts it",
                        challenge_kind.as_str()
                    ),
                ))
            }
        };
        if challenge_kind == ChallengeKind::Intune && file.intune.is_none() {
            return Err(bad(
                i,
                "challenge_kind = \"intune\" needs a [scep.intune] section",
            ));
        }
        out.push(ScepProfile {
            path,
            profile,
            tenant: p.tenant.clone(),
            challenge,
            challenge_kind,
        });
    }
    let intune = match &file.intune {
        Some(f) => Some(super::intune::config::resolve(f)?),
        None => None,
    };
    Ok(ScepConfig {
        enabled: file.enabled.unwrap_or(true),
        des3: file.des3.unwrap_or(false),
        profiles: out,
        intune,
        transaction_retention: retention(
            file.transaction_retention_hours
                .unwrap_or(DEFAULT_TRANSACTION_RETENTION_HOURS),
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::config::{Config, ServeArgs};

    fn resolve_toml(extra: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let text = format!(
            "[[profiles]]\nname = \"tls\"\nlifetime_days = 90\nekus = [\"serverAuth\"]\n\n[[profiles]]\nname = \"devices\"\nkind = \"device\"\nlifetime_days = 30\nekus = [\"clientAuth\"]\n\n{extra}"
        );
        std::fs::write(&path, text).unwrap();
        Config::resolve(&ServeArgs {
            config: Some(path),
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
    }

    #[test]
    fn defaults_and_path_lookup() {
        let c = resolve_toml("").unwrap();
        assert!(c.scep.enabled && !c.scep.des3 && c.scep.profiles.is_empty());
        assert!(c.scep.for_path(None).is_none());
        let c = resolve_toml(
            "[scep]\ndes3 = true\n[[scep.profiles]]\npath = \"a\"\nprofile = \"devices\"\nchallenge = \"x\"\n\
             [[scep.profiles]]\npath = \"b\"\nprofile = \"devices\"\nchallenge = \"y\"\n",
        )
        .unwrap();
        assert!(c.scep.des3);
        assert_eq!(c.scep.for_path(None).unwrap().path, "a");
        assert_eq!(c.scep.for_path(Some("b")).unwrap().challenge, "y");
        assert!(c.scep.for_path(Some("c")).is_none());
        assert_eq!(
            c.scep.for_path(Some("a")).unwrap().challenge_kind,
            ChallengeKind::Static
        );
        let c = resolve_toml(
            "[[scep.profiles]]\npath = \"d\"\nprofile = \"devices\"\nchallenge_kind = \"dynamic\"\n",
        )
        .unwrap();
        let d = c.scep.for_path(Some("d")).unwrap();
        assert!(d.challenge_kind.accepts_dynamic() && !d.challenge_kind.accepts_static());
        assert!(
            !format!("{:?}", c.scep).contains("\"y\""),
            "challenge redacted"
        );
    }

    #[test]
    fn bad_entries_are_refused_with_their_reason() {
        for (entry, why) in [
            ("path = \"a\"\nprofile = \"devices\"\n", "challenge"),
            (
                "path = \"a\"\nprofile = \"tls\"\nchallenge = \"x\"\n",
                "device",
            ),
            (
                "path = \"a\"\nprofile = \"nope\"\nchallenge = \"x\"\n",
                "nope",
            ),
            (
                "path = \"a/b\"\nprofile = \"devices\"\nchallenge = \"x\"\n",
                "path",
            ),
            (
                "path = \"a\"\nprofile = \"devices\"\nchallenge_kind = \"magic\"\n",
                "magic",
            ),
            (
                "path = \"a\"\nprofile = \"devices\"\nchallenge_kind = \"dynamic\"\nchallenge = \"x\"\n",
                "never accepts",
            ),
            (
                "path = \"a\"\nprofile = \"devices\"\nchallenge_kind = \"static+dynamic\"\n",
                "challenge is required",
            ),
            (
                "path = \"a\"\nprofile = \"devices\"\nchallenge_kind = \"intune\"\n",
                "[scep.intune]",
            ),
        ] {
            let err = resolve_toml(&format!("[[scep.profiles]]\n{entry}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
