//! ACME from the client side: a hand-rolled JWS client (josekit
//! signatures over the harness's [`HttpClient`]) for the negative cases that
//! must break requests in every way, and instant-acme helpers for the
//! positive flows (new account, authorize, finalize, download), plus ARI.

#![allow(
    clippy::unwrap_used,
    reason = "test harness: a panic is a test failure"
)]

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus,
    RetryPolicy,
};
use josekit::jwk::KeyPair as _;
use josekit::jws::JwsSigner as _;
use serde_json::{json, Value};

use crate::challtestsrv::ChallTestSrv;
use crate::client::{HttpClient, Response};
use crate::env::{blocking, Http01};

/// Prefix of every ACME problem type (RFC 8555 §6.7).
pub const ERR: &str = "urn:ietf:params:acme:error:";

pub fn api_type(e: &instant_acme::Error) -> String {
    match e {
        instant_acme::Error::Api(p) => p.r#type.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Keys and JWS (josekit signs; we assemble the flattened JSON by hand so the
// negative cases can break it in every way).
// ---------------------------------------------------------------------------

pub struct AcctKey {
    /// PKCS#8 DER of a P-256 key.
    pub pkcs8: Vec<u8>,
    /// Public JWK (kty, crv, x, y only).
    pub jwk: Value,
    signer: josekit::jws::alg::ecdsa::EcdsaJwsSigner,
}

impl AcctKey {
    pub fn generate() -> AcctKey {
        let kp = rcgen::KeyPair::generate().expect("keygen");
        AcctKey::from_pkcs8(&kp.serialize_der())
    }

    pub fn from_pkcs8(der: &[u8]) -> AcctKey {
        let kp = josekit::jws::ES256
            .key_pair_from_der(der)
            .expect("josekit key");
        let pubjwk = kp.to_jwk_public_key();
        let m = pubjwk.as_ref();
        let jwk = json!({
            "kty": m["kty"], "crv": m["crv"], "x": m["x"], "y": m["y"],
        });
        let signer = josekit::jws::ES256
            .signer_from_der(der)
            .expect("josekit signer");
        AcctKey {
            pkcs8: der.to_vec(),
            jwk,
            signer,
        }
    }

    pub fn rcgen(&self) -> rcgen::KeyPair {
        rcgen::KeyPair::try_from(self.pkcs8.as_slice()).expect("rcgen key from pkcs8")
    }

    pub fn thumbprint(&self) -> String {
        let canon = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["crv"].as_str().unwrap(),
            self.jwk["x"].as_str().unwrap(),
            self.jwk["y"].as_str().unwrap()
        );
        B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canon.as_bytes(),
        ))
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        self.signer.sign(input).expect("sign")
    }
}

pub fn b64(data: impl AsRef<[u8]>) -> String {
    B64.encode(data)
}

/// Flattened JWS of `payload` (already serialized; "" for POST-as-GET)
/// with the given protected header, signed by `key`.
pub fn jws_with(key: &AcctKey, protected: &Value, payload: &str) -> Value {
    let p = b64(protected.to_string());
    let pl = b64(payload);
    let sig = key.sign(format!("{p}.{pl}").as_bytes());
    json!({ "protected": p, "payload": pl, "signature": b64(sig) })
}

/// The ordinary ES256 protected header: kid when given, else jwk.
pub fn header(key: &AcctKey, kid: Option<&str>, nonce: Option<&str>, url: &str) -> Value {
    let mut h = json!({ "alg": "ES256", "url": url });
    match kid {
        Some(k) => h["kid"] = json!(k),
        None => h["jwk"] = key.jwk.clone(),
    }
    if let Some(n) = nonce {
        h["nonce"] = json!(n);
    }
    h
}

// ---------------------------------------------------------------------------
// Raw ACME client: our own hyper + rustls, trusting root.pem.
// ---------------------------------------------------------------------------

/// An HTTP answer of the server (the harness's one [`Response`] type).
pub type Resp = Response;

/// ACME assertions on an answer.
impl Response {
    /// Asserts an RFC 7807 problem of `urn:ietf:params:acme:error:{kind}`
    /// with HTTP `status`, and a fresh Replay-Nonce on the error.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, kind: &str, what: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{what}: HTTP status\n{}",
            self.describe()
        );
        let ct = self.header("Content-Type").unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "{what}: Content-Type {ct:?}\n{}",
            self.describe()
        );
        let v = self.json();
        assert_eq!(
            v["type"].as_str().unwrap_or(""),
            format!("{ERR}{kind}"),
            "{what}: problem type\n{}",
            self.describe()
        );
        assert!(
            self.nonce().is_some_and(|n| !n.is_empty()),
            "{what}: error response carries no Replay-Nonce\n{}",
            self.describe()
        );
        v
    }
    #[track_caller]
    pub fn expect_status(&self, status: u16, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}\n{}", self.describe());
        self
    }
}

/// Raw ACME client: the harness's [`HttpClient`] trusting `root.pem`, and
/// the directory it read.
pub struct Raw {
    pub client: HttpClient,
    pub dir: Value,
}

impl Raw {
    pub async fn new(srv: &crate::server::Server) -> Raw {
        let raw = Raw {
            client: srv.client(),
            dir: Value::Null,
        };
        let r = raw.get(&srv.directory_url()).await;
        assert_eq!(r.status, 200, "directory: {}", r.describe());
        Raw {
            dir: r.json(),
            ..raw
        }
    }

    pub fn url(&self, name: &str) -> String {
        self.dir[name]
            .as_str()
            .unwrap_or_else(|| panic!("directory has no {name}"))
            .to_string()
    }

    pub async fn request(
        &self,
        method: &str,
        url: &str,
        ctype: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        self.try_request(method, url, ctype, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like `request` but returns Err instead of panicking (for the crash test).
    pub async fn try_request(
        &self,
        method: &str,
        url: &str,
        ctype: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        let headers: Vec<(&str, &str)> = ctype.map(|c| ("Content-Type", c)).into_iter().collect();
        self.client.request(method, url, &headers, body).await
    }

    pub async fn get(&self, url: &str) -> Resp {
        self.request("GET", url, None, Vec::new()).await
    }

    pub async fn nonce(&self) -> String {
        let r = self
            .request("HEAD", &self.url("newNonce"), None, Vec::new())
            .await;
        assert_eq!(r.status, 200, "newNonce: {}", r.describe());
        r.nonce().expect("newNonce has no Replay-Nonce")
    }

    /// POSTs a JWS body (any JSON) as application/jose+json.
    pub async fn post_body(&self, url: &str, body: &Value) -> Resp {
        self.request(
            "POST",
            url,
            Some("application/jose+json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// A correctly signed request: kid when given, else jwk; `payload` None
    /// is POST-as-GET.
    pub async fn signed(
        &self,
        key: &AcctKey,
        kid: Option<&str>,
        url: &str,
        payload: Option<&Value>,
    ) -> Resp {
        let nonce = self.nonce().await;
        let pl = payload.map(|p| p.to_string()).unwrap_or_default();
        let body = jws_with(key, &header(key, kid, Some(&nonce), url), &pl);
        self.post_body(url, &body).await
    }

    pub async fn try_signed(
        &self,
        key: &AcctKey,
        kid: &str,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<Resp, String> {
        let mut last = String::new();
        for _ in 0..3 {
            let n = self
                .try_request("HEAD", &self.url("newNonce"), None, Vec::new())
                .await?
                .nonce()
                .ok_or("no nonce")?;
            let pl = payload.map(|p| p.to_string()).unwrap_or_default();
            let body = jws_with(key, &header(key, Some(kid), Some(&n), url), &pl);
            let r = self
                .try_request(
                    "POST",
                    url,
                    Some("application/jose+json"),
                    body.to_string().into_bytes(),
                )
                .await?;
            if r.status == 400 && r.text().contains("badNonce") {
                last = r.describe();
                continue;
            }
            return Ok(r);
        }
        Err(format!("badNonce three times: {last}"))
    }
}

// ---------------------------------------------------------------------------
// Orders with instant-acme
// ---------------------------------------------------------------------------

pub struct Issued {
    pub chain: String,
    pub leaf_der: Vec<u8>,
    pub cert_url: String,
    pub order_url: String,
    /// Certificate key (PKCS#8).
    pub key_pkcs8: Vec<u8>,
}

impl Issued {
    /// Serial from the certificate URL (`/acme/cert/{serial}`).
    pub fn url_serial(&self) -> String {
        self.cert_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }
    /// The leaf's serial in lowercase hex without leading zeros, as the
    /// admin API and CLI name certificates.
    pub fn serial_hex(&self) -> String {
        crate::pki::der_serial(&self.leaf_der).to_ascii_lowercase()
    }
    pub fn leaf_pem(&self) -> String {
        crate::certs::pem_blocks(&self.chain)
            .into_iter()
            .next()
            .expect("leaf")
    }
}

pub fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.to_string())
}

pub fn ip(addr: &str) -> Identifier {
    Identifier::Ip(addr.parse().expect("ip"))
}

pub fn ident_name(i: &Identifier) -> String {
    match i {
        Identifier::Dns(d) => d.clone(),
        Identifier::Ip(a) => a.to_string(),
        other => panic!("unexpected identifier {other:?}"),
    }
}

pub fn retry() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(100))
        .backoff(1.5)
        .timeout(Duration::from_secs(30))
}

/// Answers every pending authorization of `order` (http-01, or dns-01 via
/// challtestsrv for wildcards) and waits for `ready`.
pub async fn authorize(
    order: &mut Order,
    h01: &Http01,
    dns: Option<&ChallTestSrv>,
) -> Result<(), String> {
    let mut auths = order.authorizations();
    while let Some(a) = auths.next().await {
        let mut a = a.map_err(|e| format!("authz: {e}"))?;
        if a.status != AuthorizationStatus::Pending {
            continue;
        }
        let kind = if a.wildcard {
            ChallengeType::Dns01
        } else {
            ChallengeType::Http01
        };
        let mut ch = a
            .challenge(kind.clone())
            .ok_or_else(|| format!("no {kind:?} challenge"))?;
        let ka = ch.key_authorization();
        match kind {
            ChallengeType::Dns01 => {
                let name = ch.identifier().identifier.clone();
                let Identifier::Dns(d) = name else {
                    return Err("dns-01 on non-DNS".into());
                };
                let dns = dns.ok_or("dns-01 needs challtestsrv")?;
                let host = format!("_acme-challenge.{}.", d.trim_start_matches("*."));
                let v = ka.dns_value();
                blocking(|| dns.set_txt(&host, &v))?;
            }
            _ => h01.set(&ch.token, ka.as_str()),
        }
        ch.set_ready()
            .await
            .map_err(|e| format!("set_ready: {e}"))?;
    }
    match order.poll_ready(&retry()).await {
        Ok(OrderStatus::Ready) => Ok(()),
        Ok(s) => Err(format!("order became {s:?}: {:?}", order.state().error)),
        Err(e) => Err(format!("poll_ready: {e}")),
    }
}

/// A CSR for `names` with `key`.
pub fn csr(names: &[String], key: &rcgen::KeyPair) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(names.to_vec()).expect("csr params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(key).expect("csr").der().to_vec()
}

/// newOrder → authorize → finalize (fresh key unless given) → download.
pub async fn issue(
    acct: &Account,
    h01: &Http01,
    dns: Option<&ChallTestSrv>,
    idents: &[Identifier],
    key: Option<&AcctKey>,
) -> Result<Issued, String> {
    let mut order = acct
        .new_order(&NewOrder::new(idents))
        .await
        .map_err(|e| format!("newOrder: {e}"))?;
    finish(&mut order, h01, dns, idents, key).await
}

pub async fn finish(
    order: &mut Order,
    h01: &Http01,
    dns: Option<&ChallTestSrv>,
    idents: &[Identifier],
    key: Option<&AcctKey>,
) -> Result<Issued, String> {
    authorize(order, h01, dns).await?;
    let names: Vec<String> = idents.iter().map(ident_name).collect();
    let owned;
    let key = match key {
        Some(k) => k,
        None => {
            owned = AcctKey::generate();
            &owned
        }
    };
    order
        .finalize_csr(&csr(&names, &key.rcgen()))
        .await
        .map_err(|e| format!("finalize: {e}"))?;
    let chain = order
        .poll_certificate(&retry())
        .await
        .map_err(|e| format!("certificate: {e}"))?;
    let cert_url = order
        .state()
        .certificate
        .clone()
        .ok_or("valid order without certificate URL")?;
    let leaf_pem = crate::certs::pem_blocks(&chain)
        .into_iter()
        .next()
        .ok_or("no certificate in chain")?;
    let leaf_der = pem_to_der(&leaf_pem);
    Ok(Issued {
        chain,
        leaf_der,
        cert_url,
        order_url: order.url().to_string(),
        key_pkcs8: key.pkcs8.clone(),
    })
}

pub fn pem_to_der(pem: &str) -> Vec<u8> {
    let b: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .expect("PEM base64")
}

// ---------------------------------------------------------------------------

/// GET renewalInfo/{certID}: (start, end, Retry-After).
pub async fn ari(
    raw: &Raw,
    cert_id: &str,
) -> (time::OffsetDateTime, time::OffsetDateTime, Option<String>) {
    let r = raw
        .get(&format!("{}/{cert_id}", raw.url("renewalInfo")))
        .await;
    assert_eq!(r.status, 200, "renewalInfo {cert_id}: {}", r.describe());
    let v = r.json();
    let p = |k: &str| {
        time::OffsetDateTime::parse(
            v["suggestedWindow"][k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k}: {v}")),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
    };
    (p("start"), p("end"), r.header("Retry-After"))
}

/// ARI certID of a PEM certificate file (conformance::certs, x509-cert based).
pub fn cert_id_of(pem: &str, work: &Path) -> String {
    let n = std::fs::read_dir(work).map(|d| d.count()).unwrap_or(0);
    let f = work.join(format!("ari-{n}.pem"));
    std::fs::write(&f, pem).expect("write pem");
    crate::certs::ari_cert_id(&f)
}

pub fn new_account_payload() -> Value {
    json!({ "termsOfServiceAgreed": true })
}
