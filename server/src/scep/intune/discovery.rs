//! Finding the ScepActions endpoint: Microsoft Graph lists the service
//! endpoints of the Intune application
//! (`GET /v1.0/servicePrincipals/appId=0000000a-0000-0000-c000-000000000000/endpoints`);
//! the one whose `providerName` is `ScepRequestValidationFEService` is the
//! tenant's scale unit. Cached for an hour, and forgotten after a 404.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::config::IntuneConfig;
use super::http::{request_id, Call, Http};
use super::token::Tokens;
use super::wire::{service_uri, GRAPH_SCOPE, INTUNE_APP_ID, SERVICE_NAME};
use super::IntuneError;

/// How long a discovered endpoint is used before asking Graph again.
const TTL: Duration = Duration::from_secs(3600);

/// The cached endpoint.
#[derive(Default)]
pub struct Endpoint {
    cache: Mutex<Option<(String, Instant)>>,
}

impl Endpoint {
    /// The ScepActions base URL (no trailing slash).
    pub async fn get(
        &self,
        http: &Http,
        cfg: &IntuneConfig,
        tokens: &Tokens,
    ) -> Result<String, IntuneError> {
        let mut cache = self.cache.lock().await;
        if let Some((uri, at)) = cache.as_ref() {
            if at.elapsed() < TTL {
                return Ok(uri.clone());
            }
        }
        let token = tokens.get(http, cfg, GRAPH_SCOPE).await?;
        let url = format!(
            "{}/v1.0/servicePrincipals/appId={INTUNE_APP_ID}/endpoints",
            cfg.graph_url
        );
        let answer = http
            .send(&Call {
                method: hyper::Method::GET,
                url: &url,
                headers: vec![
                    ("authorization", format!("Bearer {token}")),
                    ("accept", "application/json".into()),
                    ("client-request-id", request_id()),
                ],
                body: Vec::new(),
            })
            .await?;
        if answer.status == 401 {
            tokens.forget(GRAPH_SCOPE).await;
        }
        if answer.status != 200 {
            return Err(IntuneError::Discovery(format!(
                "Graph answered {} (the app needs Application.Read.All)",
                answer.status
            )));
        }
        let uri = service_uri(&answer.body).ok_or_else(|| {
            IntuneError::Discovery(format!("no https endpoint named {SERVICE_NAME}"))
        })?;
        *cache = Some((uri.clone(), Instant::now()));
        Ok(uri)
    }

    /// Forgets the endpoint.
    pub async fn forget(&self) {
        *self.cache.lock().await = None;
    }
}
