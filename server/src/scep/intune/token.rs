//! Entra access tokens by the OAuth 2.0 client credentials grant (RFC 6749
//! §4.4; Microsoft identity platform `/{tenant}/oauth2/v2.0/token`),
//! cached per scope until shortly before they expire.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::config::IntuneConfig;
use super::http::{form_encode, Call, Http};
use super::IntuneError;

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Reads the client secret: the file's content without surrounding white
/// space; an empty file is an error.
pub fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("client_secret_file {}: {e}", path.display()))?;
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("client_secret_file {} is empty", path.display()));
    }
    Ok(s.to_string())
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Tokens per scope.
#[derive(Default)]
pub struct Tokens {
    cache: Mutex<HashMap<&'static str, (String, Instant)>>,
}

impl Tokens {
    /// A valid token for `scope`, from the cache or a new grant. The lock
    /// is held across the grant so concurrent callers share one request.
    pub async fn get(
        &self,
        http: &Http,
        cfg: &IntuneConfig,
        scope: &'static str,
    ) -> Result<String, IntuneError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, renew_at)) = cache.get(scope) {
            if Instant::now() < *renew_at {
                return Ok(token.clone());
            }
        }
        let secret = read_secret(&cfg.client_secret_file).map_err(IntuneError::Token)?;
        let url = format!("{}/{}/oauth2/v2.0/token", cfg.login_url, cfg.tenant);
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            form_encode(&cfg.client_id),
            form_encode(&secret),
            form_encode(scope)
        );
        let answer = http
            .send(&Call {
                method: hyper::Method::POST,
                url: &url,
                headers: vec![(
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                )],
                body: body.into_bytes(),
            })
            .await?;
        if answer.status != 200 {
            return Err(IntuneError::Token(format!(
                "the token service answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )));
        }
        let t: TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| IntuneError::Token(format!("token answer: {e}")))?;
        let lifetime = Duration::from_secs(t.expires_in.unwrap_or(3600));
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        cache.insert(scope, (t.access_token.clone(), renew_at));
        Ok(t.access_token)
    }

    /// Forgets the token of `scope` (after a 401).
    pub async fn forget(&self, scope: &'static str) {
        self.cache.lock().await.remove(scope);
    }
}
