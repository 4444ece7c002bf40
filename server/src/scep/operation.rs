//! PKIOperation (RFC 8894 §3.3, §4.3): PKCSReq and RenewalReq go to the
//! authority once per transaction ([`super::transaction`]); CertPoll,
//! GetCert and GetCRL are answered from the store. Every answer the client can attribute to its transaction is a CertRep
//! (SUCCESS, PENDING or FAILURE with failInfo); only a message whose
//! attributes cannot be read at all gets a plain HTTP 400.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use base64::Engine;
use hyper::header::CONTENT_TYPE;
use hyper::{Response, StatusCode};
use ironseal_protocol::scep::{
    challenge_password, decrypt_envelope, parse_issuer_and_serial, parse_issuer_and_subject,
    peek_attributes, CertRep, ContentCipher, DigestAlg, FailInfo, MessageType, PkiMessage, Reply,
    ScepAttributes, SignerCertificate,
};
use ironseal_storage::ScepTransactionState;
use x509_cert::name::Name;
use x509_cert::Certificate;

use super::config::{ChallengeKind, ScepProfile};
use super::ra::Ra;
use super::transaction::{self, Claim, Standing, MAX_TRANSACTION_ID_LEN};
use crate::authority::{self, IssuanceRequest, Outcome, ProfileChoice, Requester};
use crate::http::{full, text, Body};
use crate::state::AppState;

/// Decodes `%XX` escapes (and nothing else: a `+` stays a `+`, as
/// base64 needs).
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The PKIMessage of a GET PKIOperation (RFC 8894 §4.3): base64, whether
/// URL-escaped or not, with or without line breaks, standard or URL-safe
/// alphabet, padded or not (Cisco sends `%0A`, macOS unescaped `+`/`/`).
pub fn decode_get_message(raw: &str) -> Option<Vec<u8>> {
    let cleaned: Vec<u8> = percent_decode(raw)
        .into_iter()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(|c| match c {
            b'-' => b'+',
            b'_' => b'/',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cleaned)
        .ok()
}

fn pki_message(der: Vec<u8>) -> Response<Body> {
    Response::builder()
        .header(CONTENT_TYPE, "application/x-pki-message")
        .body(full(der))
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""))
}

/// What the request decoded to, before the authority is asked.
enum Decoded {
    /// A PKCSReq with the right challenge, or a RenewalReq signed by the
    /// certificate of serial `renewal_of`.
    Enrol {
        msg: Box<PkiMessage>,
        csr: Vec<u8>,
        cipher: ContentCipher,
        entry: ScepProfile,
        renewal_of: Option<String>,
        gate: Gate,
    },
    /// CertPoll (§3.3.3): how is this transaction doing?
    Poll {
        msg: Box<PkiMessage>,
        cipher: ContentCipher,
    },
    /// GetCert (§3.3.4): the certificate of this serial (hex) and issuer.
    GetCert {
        msg: Box<PkiMessage>,
        cipher: ContentCipher,
        serial: String,
        issuer: Name,
    },
    /// GetCRL (§3.3.5): the CRL of this issuer.
    GetCrl {
        msg: Box<PkiMessage>,
        cipher: ContentCipher,
        issuer: Name,
    },
    /// Refused before issuance; answer with this failInfo.
    Refuse(ScepAttributes, DigestAlg, FailInfo),
}

/// What must still happen, once the transaction is claimed, before the
/// authority is asked: a retry of a claimed request is answered from its
/// record and never redeems or validates twice.
#[derive(Debug, Clone)]
enum Gate {
    /// Nothing: a static challenge matched, or a renewal.
    Open,
    /// Redeem this one-time challenge (SHA-256 hex); its tenant applies.
    Dynamic {
        hash: String,
        tenant: Option<String>,
    },
    /// Ask Intune to validate the request.
    Intune,
}

/// Handles a PKIOperation body for `/scep[/sub]`.
pub async fn pki_operation(
    state: &Arc<AppState>,
    sub: Option<String>,
    body: Vec<u8>,
) -> Response<Body> {
    let Some(ra) = state.scep_ra.get() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "SCEP RA not ready\n");
    };
    // The RA's private-key operation (decrypting the envelope) runs on a
    // blocking thread; the checks against the store are awaited here.
    let ra2 = ra.clone();
    let opened = tokio::task::spawn_blocking(move || open_message(&ra2, &body))
        .await
        .unwrap_or(None);
    let decoded = match opened {
        Some(opened) => Some(check_enrolment(state, sub.as_deref(), opened).await),
        None => None,
    };
    let Some(decoded) = decoded else {
        state.metrics.inc("scep_malformed");
        return text(StatusCode::BAD_REQUEST, "not a SCEP PKIMessage\n");
    };
    let rep = match decoded {
        Decoded::Refuse(attrs, digest, info) => Answer::Fail(attrs, digest, info),
        Decoded::Enrol {
            msg,
            csr,
            cipher,
            entry,
            renewal_of,
            gate,
        } => enrol(state, msg, csr, cipher, entry, renewal_of, gate).await,
        Decoded::Poll { msg, cipher } => poll(state, &msg, cipher).await,
        Decoded::GetCert {
            msg,
            cipher,
            serial,
            issuer,
        } => get_cert(state, &msg, cipher, &serial, &issuer).await,
        Decoded::GetCrl {
            msg,
            cipher,
            issuer,
        } => get_crl(state, &msg, cipher, &issuer).await,
    };
    let ra3 = ra.clone();
    let encoded = tokio::task::spawn_blocking(move || rep.encode(&ra3)).await;
    match encoded {
        Ok(Ok(der)) => pki_message(der),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "CertRep encoding failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "")
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, ""),
    }
}

/// The CertRep to send, owned so it can move to a blocking thread.
enum Answer {
    /// SUCCESS with certificates (issued first) or CRLs.
    Success {
        attrs: ScepAttributes,
        digest: DigestAlg,
        certs: Vec<Vec<u8>>,
        crls: Vec<Vec<u8>>,
        recipient: Box<SignerCertificate>,
        cipher: ContentCipher,
    },
    Pending(ScepAttributes, DigestAlg),
    Fail(ScepAttributes, DigestAlg, FailInfo),
}

impl Answer {
    fn encode(&self, ra: &Ra) -> Result<Vec<u8>, ironseal_protocol::scep::ScepError> {
        let (attrs, digest) = match self {
            Answer::Success { attrs, digest, .. }
            | Answer::Pending(attrs, digest)
            | Answer::Fail(attrs, digest, _) => (attrs, *digest),
        };
        let reply = Reply {
            transaction_id: &attrs.transaction_id,
            recipient_nonce: &attrs.sender_nonce,
            digest,
        };
        let rep = match self {
            Answer::Success {
                certs,
                crls,
                recipient,
                cipher,
                ..
            } => CertRep::Success {
                certs: certs.iter().map(Vec::as_slice).collect(),
                crls: crls.iter().map(Vec::as_slice).collect(),
                recipient,
                cipher: *cipher,
            },
            Answer::Pending(..) => CertRep::Pending,
            Answer::Fail(_, _, info) => CertRep::Failure(*info),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        rep.encode(reply, &ra.key, now, &SystemRandom::new())
    }
}

/// A message verified and decrypted by [`open_message`]: decoded, or an
/// enrolment whose authentication (challenge or renewal) still needs the
/// store ([`check_enrolment`]).
enum Opened {
    /// Nothing more to check.
    Decoded(Decoded),
    /// A PKCSReq or RenewalReq: the CSR and the cipher it came under.
    Enrol {
        msg: Box<PkiMessage>,
        csr: Vec<u8>,
        cipher: ContentCipher,
        renewal: bool,
    },
}

/// Verifies and decrypts (the RA's private key: call on a blocking
/// thread). `None`: not even the transaction can be read.
fn open_message(ra: &Ra, body: &[u8]) -> Option<Opened> {
    let msg = match PkiMessage::decode(body) {
        Ok(m) => m,
        Err(e) => {
            tracing::info!(error = %e, "SCEP message refused");
            let attrs = peek_attributes(body)?;
            return Some(Opened::Decoded(Decoded::Refuse(
                attrs,
                DigestAlg::Sha256,
                e.fail_info(),
            )));
        }
    };
    let attrs = msg.attributes.clone();
    let digest = msg.digest;
    let refuse = |info| {
        Some(Opened::Decoded(Decoded::Refuse(
            attrs.clone(),
            digest,
            info,
        )))
    };
    let id_len = msg.attributes.transaction_id.len();
    if id_len == 0 || id_len > MAX_TRANSACTION_ID_LEN {
        tracing::info!(len = id_len, "SCEP transactionID empty or too long");
        return refuse(FailInfo::BadRequest);
    }
    let kind = msg.attributes.message_type;
    if kind == MessageType::CertRep {
        tracing::info!("SCEP CertRep sent to the server");
        return refuse(FailInfo::BadRequest);
    }
    let opened = match decrypt_envelope(&ra.key, &msg.envelope, &SystemRandom::new()) {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(error = %e, "SCEP envelope refused");
            return refuse(e.fail_info());
        }
    };
    let renewal = match kind {
        MessageType::PkcsReq => false,
        MessageType::RenewalReq => true,
        MessageType::CertPoll => {
            if let Err(e) = parse_issuer_and_subject(&opened.content) {
                tracing::info!(error = %e, "SCEP CertPoll content is not an IssuerAndSubject");
                return refuse(FailInfo::BadRequest);
            }
            return Some(Opened::Decoded(Decoded::Poll {
                msg: Box::new(msg),
                cipher: opened.cipher,
            }));
        }
        MessageType::GetCert | MessageType::GetCrl => {
            let ias = match parse_issuer_and_serial(&opened.content) {
                Ok(i) => i,
                Err(e) => {
                    tracing::info!(error = %e, "SCEP GetCert/GetCRL content is not an IssuerAndSerialNumber");
                    return refuse(FailInfo::BadRequest);
                }
            };
            let cipher = opened.cipher;
            let msg = Box::new(msg);
            return Some(Opened::Decoded(match kind {
                MessageType::GetCert => Decoded::GetCert {
                    msg,
                    cipher,
                    serial: hex::encode(ias.serial_number.as_bytes()),
                    issuer: ias.issuer,
                },
                _ => Decoded::GetCrl {
                    msg,
                    cipher,
                    issuer: ias.issuer,
                },
            }));
        }
        MessageType::CertRep => return refuse(FailInfo::BadRequest),
    };
    Some(Opened::Enrol {
        msg: Box::new(msg),
        csr: opened.content,
        cipher: opened.cipher,
        renewal,
    })
}

/// Checks what authenticates an enrolment: the path's profile, then the
/// renewal's signer or the challenge password (looked up in the store).
async fn check_enrolment(state: &AppState, sub: Option<&str>, opened: Opened) -> Decoded {
    let (msg, csr, cipher, renewal) = match opened {
        Opened::Decoded(d) => return d,
        Opened::Enrol {
            msg,
            csr,
            cipher,
            renewal,
        } => (msg, csr, cipher, renewal),
    };
    let refuse = |info| Decoded::Refuse(msg.attributes.clone(), msg.digest, info);
    let Some(entry) = state.config.scep.for_path(sub) else {
        tracing::info!("SCEP enrolment on /scep with no [[scep.profiles]] configured");
        return refuse(FailInfo::BadRequest);
    };
    if renewal {
        // RFC 8894 §3.3.1.2: signed with the existing certificate, which
        // authenticates the client instead of a challenge.
        return match renewal_check(state, &msg, &csr).await {
            Ok(serial) => Decoded::Enrol {
                msg,
                csr,
                cipher,
                entry: entry.clone(),
                renewal_of: Some(serial),
                gate: Gate::Open,
            },
            Err(info) => refuse(info),
        };
    }
    let given = match challenge_password(&csr) {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            tracing::info!(error = %e, "SCEP CSR refused");
            return refuse(e.fail_info());
        }
    };
    let gate = match challenge_gate(state, entry, &given).await {
        Ok(g) => g,
        Err(why) => {
            tracing::info!(path = %entry.path, %why, "SCEP challenge password refused");
            state.metrics.inc("scep_bad_challenge");
            return refuse(FailInfo::BadRequest);
        }
    };
    Decoded::Enrol {
        msg,
        csr,
        cipher,
        entry: entry.clone(),
        renewal_of: None,
        gate,
    }
}

/// Checks a PKCSReq's challenge password against what the path accepts
/// (`challenge_kind`); a one-time challenge is only looked up here and
/// redeemed once the transaction is claimed.
async fn challenge_gate(
    state: &AppState,
    entry: &ScepProfile,
    given: &str,
) -> Result<Gate, String> {
    let kind = entry.challenge_kind;
    if kind == ChallengeKind::Intune {
        return match given.is_empty() {
            true => Err("no challenge password (Intune)".into()),
            false => Ok(Gate::Intune),
        };
    }
    if kind.accepts_static() && challenge_matches(given, &entry.challenge) {
        return Ok(Gate::Open);
    }
    if !kind.accepts_dynamic() || given.is_empty() {
        return Err("does not match".into());
    }
    let hash = super::dynamic::hash(given);
    let record = state
        .store
        .get_scep_challenge(&hash)
        .await
        .map_err(|e| format!("store: {e}"))?
        .ok_or_else(|| super::dynamic::Refusal::Unknown.to_string())?;
    let tenant = super::dynamic::check(
        &record,
        &entry.path,
        entry.tenant.as_deref(),
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|r| r.to_string())?;
    Ok(Gate::Dynamic { hash, tenant })
}

/// A RenewalReq's signer must be a certificate this CA issued (the very
/// DER in the store), unexpired and unrevoked, and the new CSR must keep
/// its subject. Answers the signer's serial (lowercase hex). Refusals:
/// badCertId for an unknown, expired or revoked certificate, badRequest
/// for a changed subject.
async fn renewal_check(state: &AppState, msg: &PkiMessage, csr: &[u8]) -> Result<String, FailInfo> {
    use der::Decode;
    let serial = ironseal_ca_core::cert::cert_serial(&msg.signer_cert_der)
        .map_err(|_| FailInfo::BadCertId)?
        .to_hex();
    let record = match state.store.get_certificate(&serial).await {
        Ok(Some(r)) if r.der == msg.signer_cert_der => r,
        Ok(_) => {
            tracing::info!(%serial, "SCEP renewal signed by a certificate we did not issue");
            return Err(FailInfo::BadCertId);
        }
        Err(e) => {
            tracing::error!(error = %e, "SCEP renewal: store lookup failed");
            return Err(FailInfo::BadRequest);
        }
    };
    let now = time::OffsetDateTime::now_utc();
    if record.revocation.is_some() || record.not_after <= now || record.not_before > now {
        tracing::info!(%serial, "SCEP renewal signed by a revoked or expired certificate");
        return Err(FailInfo::BadCertId);
    }
    let req = x509_cert::request::CertReq::from_der(csr).map_err(|_| FailInfo::BadRequest)?;
    // Compared as RFC 4514 strings: issuance may re-encode the string
    // types (PrintableString in the CSR, UTF8String in the certificate).
    let old = msg.signer_cert.tbs_certificate().subject().to_string();
    let new = req.info.subject.to_string();
    match old == new {
        true => Ok(record.serial),
        false => {
            tracing::info!(%serial, "SCEP renewal changes the subject");
            Err(FailInfo::BadRequest)
        }
    }
}

/// Compares challenge passwords in constant time (over their SHA-256, so
/// the length does not leak either).
fn challenge_matches(given: &str, expected: &str) -> bool {
    use aws_lc_rs::digest::{digest, SHA256};
    aws_lc_rs::constant_time::verify_slices_are_equal(
        digest(&SHA256, given.as_bytes()).as_ref(),
        digest(&SHA256, expected.as_bytes()).as_ref(),
    )
    .is_ok()
}

/// The SUCCESS answer carrying `certs`, encrypted to the request's signer.
fn success(msg: &PkiMessage, cipher: ContentCipher, certs: Vec<Vec<u8>>) -> Answer {
    Answer::Success {
        attrs: msg.attributes.clone(),
        digest: msg.digest,
        certs,
        crls: Vec::new(),
        recipient: Box::new(msg.signer_cert.clone()),
        cipher,
    }
}

/// The answer for a transaction that exists: its certificate, PENDING,
/// or FAILURE (badRequest) with the reason logged.
async fn answer_standing(
    state: &Arc<AppState>,
    record: &ironseal_storage::ScepTransactionRecord,
    msg: &PkiMessage,
    cipher: ContentCipher,
) -> Answer {
    let (attrs, digest) = (msg.attributes.clone(), msg.digest);
    match transaction::standing(state, record).await {
        Ok(Standing::Issued(cert)) => success(msg, cipher, vec![cert]),
        Ok(Standing::Pending) => Answer::Pending(attrs, digest),
        Ok(Standing::Failed(why)) => {
            tracing::info!(transaction = %record.transaction_id, %why, "SCEP transaction failed");
            Answer::Fail(attrs, digest, FailInfo::BadRequest)
        }
        Err(e) => {
            tracing::error!(error = %e, "SCEP transaction lookup failed");
            Answer::Fail(attrs, digest, FailInfo::BadRequest)
        }
    }
}

/// Claims the transaction, asks the authority once, and records the
/// outcome; a retry of the same request is answered from the record.
async fn enrol(
    state: &Arc<AppState>,
    msg: Box<PkiMessage>,
    csr: Vec<u8>,
    cipher: ContentCipher,
    entry: ScepProfile,
    renewal_of: Option<String>,
    gate: Gate,
) -> Answer {
    let attrs = msg.attributes.clone();
    let digest = msg.digest;
    let request = transaction::request_digest(attrs.message_type, &msg.signer_cert_der, &csr);
    let key = transaction::signer_key(&msg);
    let now = time::OffsetDateTime::now_utc();
    let claimed = transaction::claim(
        state.store.as_ref(),
        &attrs.transaction_id,
        &request,
        &key,
        renewal_of.as_deref(),
        now,
    )
    .await;
    let claim = match claimed {
        Ok(Claim::New(c)) => c,
        Ok(Claim::Existing(r)) => {
            state.metrics.inc("scep_retries_answered");
            tracing::info!(transaction = %attrs.transaction_id, "SCEP request retried; answering from the transaction record");
            return answer_standing(state, &r, &msg, cipher).await;
        }
        Ok(Claim::Replayed) => {
            state.metrics.inc("scep_transactions_replayed");
            tracing::info!(transaction = %attrs.transaction_id, "SCEP transactionID reused with a different request");
            return Answer::Fail(attrs, digest, FailInfo::BadRequest);
        }
        Err(e) => {
            tracing::error!(error = %e, "SCEP transaction claim failed");
            return Answer::Fail(attrs, digest, FailInfo::BadRequest);
        }
    };
    let tx_id = attrs.transaction_id.clone();
    let mut tenant = entry.tenant.clone();
    let intune = match passed_gate(state, &gate, &tx_id, &csr).await {
        Ok(GatePassed::Open) => None,
        Ok(GatePassed::Tenant(t)) => {
            tenant = t;
            None
        }
        Ok(GatePassed::Intune(client)) => Some(client),
        Err(info) => {
            if let Err(e) = transaction::settle(state.store.as_ref(), &claim, None).await {
                tracing::error!(error = %e, "SCEP transaction claim not released");
            }
            return Answer::Fail(attrs, digest, info);
        }
    };
    let mut req = IssuanceRequest::new(
        Requester::Scep {
            client: attrs.transaction_id.clone(),
        },
        csr.clone(),
        Vec::new(),
    );
    req.tenant = tenant;
    req.profile = ProfileChoice::Configured(Some(entry.profile.clone()));
    // An issuance settles the claim in its own store write.
    req.scep_claim = Some(claim.clone());
    let (answer, outcome) = match authority::issue(state, &req).await {
        Ok(Outcome::Issued(issued)) => {
            state.metrics.inc("scep_issued");
            if let Some(client) = &intune {
                // Before the CertRep goes out, as Intune expects; a lost
                // notification is logged and counted, the certificate
                // (issued and recorded) is still returned.
                let facts = super::intune_flow::issued_facts(&issued.record);
                if let Err(e) = client
                    .notify_success(&state.metrics, &tx_id, &csr, &facts)
                    .await
                {
                    tracing::warn!(error = %e, transaction = %tx_id, "Intune success notification failed");
                }
            }
            (
                success(&msg, cipher, vec![issued.record.der.clone()]),
                Settle::Done,
            )
        }
        Ok(Outcome::Held(approval)) => {
            tracing::info!(approval = %approval.id, "SCEP request held for approval");
            (
                Answer::Pending(attrs, digest),
                Settle::To(ScepTransactionState::Held {
                    approval_id: approval.id.clone(),
                    intune: intune.is_some(),
                }),
            )
        }
        Err(e) => {
            tracing::info!(error = %e, "SCEP enrolment refused by the authority");
            if let Some(client) = &intune {
                let why = format!("certificate not issued: {e}");
                if let Err(e) = client
                    .notify_failure(&state.metrics, &tx_id, &csr, &why)
                    .await
                {
                    tracing::warn!(error = %e, transaction = %tx_id, "Intune failure notification failed");
                }
            }
            (
                Answer::Fail(attrs, digest, super::error::fail_info(&e)),
                Settle::Release,
            )
        }
    };
    let settled = match outcome {
        Settle::Done => Ok(()),
        Settle::To(s) => transaction::settle(state.store.as_ref(), &claim, Some(s)).await,
        Settle::Release => transaction::settle(state.store.as_ref(), &claim, None).await,
    };
    if let Err(e) = settled {
        tracing::error!(error = %e, "SCEP transaction record not written");
    }
    if let Err(e) = state.durable().await {
        tracing::error!(error = %e.problem.detail, "SCEP transaction record not durable");
    }
    answer
}

/// What becomes of the transaction's claim after the authority answered.
enum Settle {
    /// Issued: the issuance's store write settled it.
    Done,
    /// Record this state (held for approval).
    To(ScepTransactionState),
    /// Refused: remove the claim so a corrected request may use the ID.
    Release,
}

/// What passing the gate decided.
enum GatePassed {
    /// Nothing changes.
    Open,
    /// A one-time challenge was redeemed; this tenant's policy applies.
    Tenant(Option<String>),
    /// Intune validated the request; notify it of the outcome.
    Intune(Arc<super::intune::IntuneClient>),
}

/// Redeems the one-time challenge or asks Intune; the failInfo to answer
/// when the request may not go on (nothing is issued).
async fn passed_gate(
    state: &Arc<AppState>,
    gate: &Gate,
    tx_id: &str,
    csr: &[u8],
) -> Result<GatePassed, FailInfo> {
    match gate {
        Gate::Open => Ok(GatePassed::Open),
        Gate::Dynamic { hash, tenant } => {
            let now = time::OffsetDateTime::now_utc();
            match state.store.redeem_scep_challenge(hash, now).await {
                Ok(Some(_)) => {
                    state.metrics.inc("scep_challenges_redeemed");
                    Ok(GatePassed::Tenant(tenant.clone()))
                }
                Ok(None) => {
                    tracing::info!(transaction = %tx_id, "SCEP one-time challenge already used or expired");
                    state.metrics.inc("scep_bad_challenge");
                    Err(FailInfo::BadRequest)
                }
                Err(e) => {
                    tracing::error!(error = %e, "SCEP one-time challenge redemption failed");
                    Err(FailInfo::BadRequest)
                }
            }
        }
        Gate::Intune => super::intune_flow::validate(state, tx_id, csr)
            .await
            .map(GatePassed::Intune),
    }
}

/// CertPoll (RFC 8894 §3.3.3): the transaction must exist and be polled
/// with the key that started it; badCertId otherwise.
async fn poll(state: &Arc<AppState>, msg: &PkiMessage, cipher: ContentCipher) -> Answer {
    let (attrs, digest) = (msg.attributes.clone(), msg.digest);
    match state
        .store
        .get_scep_transaction(&attrs.transaction_id)
        .await
    {
        Ok(Some(r)) if r.signer_key == transaction::signer_key(msg) => {
            answer_standing(state, &r, msg, cipher).await
        }
        Ok(_) => {
            tracing::info!(transaction = %attrs.transaction_id, "SCEP CertPoll for an unknown transaction or by another key");
            Answer::Fail(attrs, digest, FailInfo::BadCertId)
        }
        Err(e) => {
            tracing::error!(error = %e, "SCEP CertPoll lookup failed");
            Answer::Fail(attrs, digest, FailInfo::BadRequest)
        }
    }
}

/// The id of the CA (one of ours that signs) whose subject is `issuer`.
fn ca_named(state: &AppState, issuer: &Name) -> Option<String> {
    use der::Decode;
    state.ca_set().by_id.iter().find_map(|(id, ca)| {
        let cert = Certificate::from_der(ca.issuer.cert_der()).ok()?;
        (cert.tbs_certificate().subject() == issuer).then(|| id.clone())
    })
}

/// GetCert (RFC 8894 §3.3.4): a certificate we issued, by issuer and
/// serial; badCertId when there is none.
async fn get_cert(
    state: &Arc<AppState>,
    msg: &PkiMessage,
    cipher: ContentCipher,
    serial: &str,
    issuer: &Name,
) -> Answer {
    let (attrs, digest) = (msg.attributes.clone(), msg.digest);
    let record = state.store.get_certificate(serial).await;
    match (record, ca_named(state, issuer)) {
        (Ok(Some(c)), Some(ca)) if c.issuer_id == ca => success(msg, cipher, vec![c.der]),
        (Err(e), _) => {
            tracing::error!(error = %e, "SCEP GetCert lookup failed");
            Answer::Fail(attrs, digest, FailInfo::BadRequest)
        }
        _ => Answer::Fail(attrs, digest, FailInfo::BadCertId),
    }
}

/// GetCRL (RFC 8894 §3.3.5): the current full CRL of the named issuer;
/// badCertId when the issuer is not one of ours.
async fn get_crl(
    state: &Arc<AppState>,
    msg: &PkiMessage,
    cipher: ContentCipher,
    issuer: &Name,
) -> Answer {
    let (attrs, digest) = (msg.attributes.clone(), msg.digest);
    let Some(ca_id) = ca_named(state, issuer) else {
        return Answer::Fail(attrs, digest, FailInfo::BadCertId);
    };
    match crate::crl::current(state, &ca_id, crate::crl::Part::Full).await {
        Ok(crl) => Answer::Success {
            attrs,
            digest,
            certs: Vec::new(),
            crls: vec![crl.der.to_vec()],
            recipient: Box::new(msg.signer_cert.clone()),
            cipher,
        },
        Err(e) => {
            tracing::error!(error = %e, "SCEP GetCRL: no CRL");
            Answer::Fail(attrs, digest, FailInfo::BadRequest)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn get_messages_decode_escaped_or_not_with_or_without_newlines() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        let std = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let escaped = std
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let wrapped: String = std
            .as_bytes()
            .chunks(64)
            .map(|c| format!("{}%0A", std::str::from_utf8(c).unwrap()))
            .collect();
        let url_safe = std.replace('+', "-").replace('/', "_").replace('=', "");
        for form in [&std, &escaped, &wrapped, &url_safe, &format!("{std}\n")] {
            assert_eq!(
                decode_get_message(form).as_deref(),
                Some(&bytes[..]),
                "{form}"
            );
        }
        assert_eq!(decode_get_message("!!!"), None);
    }

    #[test]
    fn challenges_compare_exactly() {
        assert!(challenge_matches("s3cret", "s3cret"));
        assert!(!challenge_matches("s3cre", "s3cret"));
        assert!(!challenge_matches("", "s3cret"));
    }
}
