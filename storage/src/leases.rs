//! Named leases kept in the store, so that one replica among several on one
//! database does a piece of work at a time (issue 11): the processing of an
//! order or an authorization, the CRLs of a CA, the OCSP responder
//! certificate of a CA.
//!
//! A lease has a holder (a replica id), an expiry and a fencing token. One
//! call is one atomic step ([`acquire_step`] in the in-process backends, one
//! `INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING` on PostgreSQL):
//!
//! * **acquire** succeeds when the lease is free (never taken, released or
//!   expired) or already ours and live (a renewal). It sets the expiry to
//!   now + TTL. The token stays the same on a renewal and goes up by one
//!   whenever the lease is taken anew (by another holder, or by the same one
//!   after it lapsed), so a token names one uninterrupted tenure and tokens
//!   of one name strictly increase;
//! * **release** ends our tenure at once (the row stays, so the token keeps
//!   counting), and does nothing if the lease is someone else's;
//! * **read** returns the lease as stored; [`Lease::live`] says whether it
//!   is held at a given time.
//!
//! Leases are coordination state, not records: they are not exported (a
//! store moved elsewhere starts with no leases, which only means the first
//! replica to ask takes each one), and
//! [`Store::purge_leases`](crate::Store::purge_leases) forgets long-expired
//! ones (a purged name starts again at token 1; any former holder had lost
//! it long before).

use serde::{Deserialize, Serialize};

/// The expiry a released lease gets: before any clock reading.
pub const RELEASED: i64 = i64::MIN;

/// One lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The lease's name (`order:<id>`, `crl:<ca id>`, ...).
    pub name: String,
    /// The replica that holds (or last held) it.
    pub holder: String,
    /// Fencing token: constant during one tenure, higher for each new one.
    pub token: u64,
    /// Held until this time (ns since the Unix epoch); [`RELEASED`] once
    /// released.
    pub expires_ns: i64,
}

impl Lease {
    /// Whether the lease is held at `now_ns`.
    pub fn live(&self, now_ns: i64) -> bool {
        self.expires_ns > now_ns
    }

    /// Whether `holder` holds the lease at `now_ns`.
    pub fn held_by(&self, holder: &str, now_ns: i64) -> bool {
        self.live(now_ns) && self.holder == holder
    }
}

/// The acquire step on the stored lease (`None`: never taken): the lease to
/// store and return, or `None` when another holder's lease is live.
pub fn acquire_step(
    stored: Option<&Lease>,
    name: &str,
    holder: &str,
    now_ns: i64,
    ttl_ns: i64,
) -> Option<Lease> {
    let expires_ns = now_ns.saturating_add(ttl_ns.max(1));
    let token = match stored {
        None => 1,
        Some(l) if l.held_by(holder, now_ns) => l.token,
        Some(l) if !l.live(now_ns) => l.token.saturating_add(1),
        Some(_) => return None,
    };
    Some(Lease {
        name: name.to_owned(),
        holder: holder.to_owned(),
        token,
        expires_ns,
    })
}

/// The release step: the lease to store, or `None` if it is not `holder`'s
/// (or absent) and nothing changes.
pub fn release_step(stored: Option<&Lease>, holder: &str) -> Option<Lease> {
    match stored {
        Some(l) if l.holder == holder && l.expires_ns != RELEASED => Some(Lease {
            expires_ns: RELEASED,
            ..l.clone()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn tenure_rules() {
        let a = acquire_step(None, "n", "a", 100, 10).unwrap();
        assert_eq!((a.token, a.expires_ns), (1, 110));
        assert!(acquire_step(Some(&a), "n", "b", 109, 10).is_none());
        let renewed = acquire_step(Some(&a), "n", "a", 105, 10).unwrap();
        assert_eq!((renewed.token, renewed.expires_ns), (1, 115));
        let taken = acquire_step(Some(&renewed), "n", "b", 115, 10).unwrap();
        assert_eq!((taken.holder.as_str(), taken.token), ("b", 2));
        assert!(release_step(Some(&taken), "a").is_none());
        let released = release_step(Some(&taken), "b").unwrap();
        assert!(!released.live(0));
        let again = acquire_step(Some(&released), "n", "b", 116, 10).unwrap();
        assert_eq!(again.token, 3, "a new tenure after a release");
    }
}
