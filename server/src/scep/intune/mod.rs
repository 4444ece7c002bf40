//! Intune SCEP challenge validation (Microsoft's "third-party CA" SCEP
//! contract; see docs/scep.md, "Intune", and the research note): before
//! anything is signed the CSR goes to Intune's `ScepActions/validateRequest`;
//! after issuing, `successNotification`; on any failure after validation,
//! `failureNotification`. Tokens come from Entra by client credentials
//! ([`token`]), the ScepActions endpoint from Graph service discovery
//! ([`discovery`]), and every call retries 429 and 5xx ([`http`]).

pub mod config;
mod discovery;
mod http;
mod token;
pub mod wire;

use base64::Engine;
use serde_json::Value;

use self::config::IntuneConfig;
use self::http::{request_id, Call, Http};
use self::wire::{ActionResult, Issued, Verdict, API_VERSION, INTUNE_SCOPE};
use crate::metrics::Metrics;

/// Why an Intune call could not give an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntuneError {
    /// Connection, TLS, timeout, or still 429/5xx after the last attempt.
    #[error("Intune unreachable: {0}")]
    Unreachable(String),
    /// No token from Entra.
    #[error("Entra token: {0}")]
    Token(String),
    /// Service discovery found no ScepActions endpoint.
    #[error("Intune service discovery: {0}")]
    Discovery(String),
    /// An answer that is not Intune's JSON, or an unexpected status.
    #[error("Intune answered {status}: {detail}")]
    BadAnswer { status: u16, detail: String },
}

/// The Intune client; one per server, shared.
pub struct IntuneClient {
    cfg: IntuneConfig,
    http: Http,
    tokens: token::Tokens,
    endpoint: discovery::Endpoint,
}

impl std::fmt::Debug for IntuneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntuneClient")
            .field("cfg", &self.cfg)
            .finish()
    }
}

/// The base64 of a DER CSR, as the calls carry it.
pub fn csr_b64(csr_der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(csr_der)
}

impl IntuneClient {
    /// Builds the client (reads `ca_file`).
    pub fn new(cfg: IntuneConfig) -> Result<IntuneClient, String> {
        let http = Http::new(
            cfg.ca_file.as_deref(),
            cfg.timeout,
            cfg.max_attempts,
            cfg.backoff,
        )?;
        Ok(IntuneClient {
            cfg,
            http,
            tokens: token::Tokens::default(),
            endpoint: discovery::Endpoint::default(),
        })
    }

    /// POSTs `body` to `ScepActions/{action}`; a 401 drops the cached
    /// token and tries once more with a new one.
    async fn action(&self, action: &str, body: &Value) -> Result<ActionResult, IntuneError> {
        let base = self
            .endpoint
            .get(&self.http, &self.cfg, &self.tokens)
            .await?;
        let url = format!("{base}/ScepActions/{action}");
        let payload = serde_json::to_vec(body)
            .map_err(|e| IntuneError::Unreachable(format!("encoding {action}: {e}")))?;
        for round in 0..2 {
            let token = self.tokens.get(&self.http, &self.cfg, INTUNE_SCOPE).await?;
            let answer = self
                .http
                .send(&Call {
                    method: hyper::Method::POST,
                    url: &url,
                    headers: vec![
                        ("authorization", format!("Bearer {token}")),
                        ("content-type", "application/json".into()),
                        ("accept", "application/json".into()),
                        ("api-version", API_VERSION.into()),
                        ("client-request-id", request_id()),
                        ("useragent", wire::caller_info()),
                        ("user-agent", wire::caller_info()),
                    ],
                    body: payload.clone(),
                })
                .await?;
            if answer.status == 401 && round == 0 {
                self.tokens.forget(INTUNE_SCOPE).await;
                continue;
            }
            if answer.status == 429 || answer.status >= 500 {
                return Err(IntuneError::Unreachable(format!(
                    "{url}: still {} after {} attempts",
                    answer.status, self.cfg.max_attempts
                )));
            }
            if answer.status == 404 {
                // The scale unit may have moved: discover again next time.
                self.endpoint.forget().await;
            }
            let detail = || {
                String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(300)
                    .collect()
            };
            if answer.status != 200 {
                return Err(IntuneError::BadAnswer {
                    status: answer.status,
                    detail: detail(),
                });
            }
            return ActionResult::parse(&answer.body).ok_or_else(|| IntuneError::BadAnswer {
                status: 200,
                detail: detail(),
            });
        }
        Err(IntuneError::Token(
            "ScepActions refused a fresh token (401)".into(),
        ))
    }

    /// `validateRequest`: is this CSR, with its challenge, one Intune
    /// issued for this device?
    pub async fn validate(
        &self,
        metrics: &Metrics,
        transaction_id: &str,
        csr_der: &[u8],
    ) -> Result<Verdict, IntuneError> {
        let body = wire::validate_body(transaction_id, &csr_b64(csr_der));
        let result = self.action("validateRequest", &body).await;
        match &result {
            Ok(r) if r.code == "Success" => metrics.inc("scep_intune_validations_success"),
            Ok(_) => metrics.inc("scep_intune_validations_rejected"),
            Err(_) => metrics.inc("scep_intune_validations_failed"),
        }
        result.map(ActionResult::verdict)
    }

    /// `successNotification` after issuing.
    pub async fn notify_success(
        &self,
        metrics: &Metrics,
        transaction_id: &str,
        csr_der: &[u8],
        issued: &Issued,
    ) -> Result<(), IntuneError> {
        let body = wire::success_body(transaction_id, &csr_b64(csr_der), issued);
        self.notify(metrics, "successNotification", &body).await
    }

    /// `failureNotification` after a validated request was not issued.
    pub async fn notify_failure(
        &self,
        metrics: &Metrics,
        transaction_id: &str,
        csr_der: &[u8],
        description: &str,
    ) -> Result<(), IntuneError> {
        let body = wire::failure_body(transaction_id, &csr_b64(csr_der), description);
        self.notify(metrics, "failureNotification", &body).await
    }

    async fn notify(
        &self,
        metrics: &Metrics,
        action: &str,
        body: &Value,
    ) -> Result<(), IntuneError> {
        let r = self.action(action, body).await;
        let r = match r {
            Ok(a) if a.code == "Success" => Ok(()),
            Ok(a) => Err(IntuneError::BadAnswer {
                status: 200,
                detail: format!("{}: {}", a.code, a.error_description.unwrap_or_default()),
            }),
            Err(e) => Err(e),
        };
        if r.is_err() {
            metrics.inc("scep_intune_notifications_failed");
        } else {
            metrics.inc("scep_intune_notifications_sent");
        }
        r
    }
}
