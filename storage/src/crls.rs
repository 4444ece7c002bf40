//! Signed CRLs kept in the store (issue 11), so that every replica serves
//! the same bytes under the same number. The replica holding the CA's
//! `crl:<ca id>` lease ([`crate::leases`]) builds every part (the full CRL
//! and the shards, RFC 5280 §5.2.5), numbers them with
//! [`Store::next_crl_number`](crate::Store::next_crl_number) and stores
//! them here; every replica reads them.
//!
//! Freshness across replicas: each CA has a *generation*, bumped by every
//! revocation ([`Store::bump_crl_generation`](crate::Store::bump_crl_generation))
//! after the revocation is written. A builder reads the generation before it
//! reads the revocations and stores it with the CRL, so a stored CRL whose
//! generation is below the CA's current one may miss a revocation and is
//! rebuilt before it is served.
//!
//! Stored CRLs and generations are derived state, not records: they are not
//! exported (the importing store builds its CRLs on first fetch, numbered
//! after the imported CRL numbers).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Which CRL of a CA: the full one or shard k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CrlPart {
    Full,
    Shard(u32),
}

impl CrlPart {
    /// The part as one integer (the PostgreSQL `part` column, the sled key
    /// suffix): -1 for the full CRL, k for shard k.
    pub fn code(self) -> i64 {
        match self {
            CrlPart::Full => -1,
            CrlPart::Shard(k) => i64::from(k),
        }
    }
}

/// What a reader needs to decide whether a stored CRL may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlHead {
    /// The CRL number (RFC 5280 §5.2.3).
    pub number: u64,
    /// The CA's generation the CRL was built from.
    pub generation: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
}

/// One stored, signed CRL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCrl {
    pub ca_id: String,
    pub part: CrlPart,
    #[serde(flatten)]
    pub head: CrlHead,
    /// The signed CRL.
    #[serde(with = "crate::records::b64")]
    pub der: Vec<u8>,
}
