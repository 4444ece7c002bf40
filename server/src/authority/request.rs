//! What a front end hands the authority: who asks, for which tenant and
//! profile, the CSR, the names, the validity.

use ironseal_ca_core::names::SubjectName;
use ironseal_ca_core::profile::KeyType;
use ironseal_storage::OrderRecord;
use time::OffsetDateTime;

use crate::config::Profile;

/// Why the server itself needs a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerPurpose {
    /// The HTTPS listener's certificate.
    Listener,
    /// The SCEP RA certificate (RFC 8894 §2.1.1).
    ScepRa,
}

/// Who asks for a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// An ACME account (RFC 8555).
    Acme {
        /// The account id.
        account_id: String,
    },
    /// A SCEP client (RFC 8894), by transaction or device identity.
    Scep {
        /// How the client is known.
        client: String,
    },
    /// An EST client (RFC 7030), by its authenticated identity.
    Est {
        /// How the client is known.
        client: String,
    },
    /// An admin API caller (key or client certificate).
    Admin {
        /// Its audit actor (`key:<id>` or `cert:<label>`).
        actor: String,
    },
    /// The server itself.
    Server(ServerPurpose),
}

impl Requester {
    /// The front end, as a metric and record label.
    pub fn protocol(&self) -> &'static str {
        match self {
            Requester::Acme { .. } => "acme",
            Requester::Scep { .. } => "scep",
            Requester::Est { .. } => "est",
            Requester::Admin { .. } => "admin",
            Requester::Server(_) => "server",
        }
    }

    /// The requester as an audit actor (`acme:<account>`, `key:<id>`, ...).
    pub fn actor(&self) -> String {
        match self {
            Requester::Acme { account_id } => format!("acme:{account_id}"),
            Requester::Scep { client } => format!("scep:{client}"),
            Requester::Est { client } => format!("est:{client}"),
            Requester::Admin { actor } => actor.clone(),
            Requester::Server(ServerPurpose::Listener) => "server:listener".into(),
            Requester::Server(ServerPurpose::ScepRa) => "server:scep-ra".into(),
        }
    }
}

/// Which profile governs the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileChoice {
    /// A configured profile by name; `None` is the default profile.
    Configured(Option<String>),
    /// A profile the server uses for itself (never offered to clients).
    Builtin(Box<Profile>),
}

/// Requested validity; unset fields come from the profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Validity {
    /// notBefore; default now minus the backdate.
    pub not_before: Option<OffsetDateTime>,
    /// notAfter; default notBefore plus the profile's lifetime.
    pub not_after: Option<OffsetDateTime>,
}

/// One request for a certificate.
#[derive(Debug, Clone)]
pub struct IssuanceRequest {
    /// Who asks.
    pub requester: Requester,
    /// The requester's tenant, whose name policy and profiles apply.
    pub tenant: Option<String>,
    /// The issuance profile.
    pub profile: ProfileChoice,
    /// The PKCS#10 request, DER (RFC 2986).
    pub csr_der: Vec<u8>,
    /// The names asked for; the CSR must name exactly these.
    pub names: Vec<SubjectName>,
    /// Requested validity.
    pub validity: Validity,
    /// A Microsoft SID (`S-1-5-…`) the requester vouches for (Intune):
    /// added as the strong-mapping URI SAN where the profile allows it.
    pub sid: Option<String>,
    /// Key bits that must not be certified (the requester's account key,
    /// RFC 8555 §11.1).
    pub forbidden_key: Option<Vec<u8>>,
    /// Sign with this CA instead of the profile's (server certificates only).
    pub signing_ca: Option<String>,
    /// The ACME order in `processing` this issuance completes; it turns
    /// `valid` in the same store write as the certificate.
    pub order: Option<OrderRecord>,
    /// Hex serial of the certificate this one replaces (RFC 9773 §5).
    pub replaces: Option<String>,
    /// The approval this request was held under, once approved: the
    /// pipeline then signs instead of holding it again.
    pub approval: Option<String>,
    /// Generate the key pair in the authority (EST `/serverkeygen`,
    /// RFC 7030 §4.4): `csr_der` is then only a template (subject and
    /// extension requests; its key and signature are ignored) and the new
    /// private key comes back in [`super::Issued::generated_key`]. Never
    /// held for approval (the key would have to be kept).
    pub generate_key: Option<KeyType>,
    /// The SCEP transaction record this request claimed (RFC 8894
    /// §3.2.1.1): an issuance settles it as `Issued` in the same store
    /// write as the certificate, and fails with `Conflict` if the claim
    /// changed meanwhile (see [`ironseal_storage::ScepSettle`]).
    pub scep_claim: Option<ironseal_storage::ScepTransactionRecord>,
}

impl IssuanceRequest {
    /// A request with the given requester, CSR and names; no tenant, the
    /// default profile, default validity and nothing else set.
    pub fn new(requester: Requester, csr_der: Vec<u8>, names: Vec<SubjectName>) -> Self {
        IssuanceRequest {
            requester,
            tenant: None,
            profile: ProfileChoice::Configured(None),
            csr_der,
            names,
            validity: Validity::default(),
            sid: None,
            forbidden_key: None,
            signing_ca: None,
            order: None,
            replaces: None,
            approval: None,
            generate_key: None,
            scep_claim: None,
        }
    }
}
