//! CAA checking (RFC 8659, with RFC 8657 `accounturi` and
//! `validationmethods`), done when a challenge has been validated and
//! before the authorization turns valid.
//!
//! * **Relevant RRset** (RFC 8659 §3): the CAA RRset of the name itself,
//!   else of its parent, and so on up to and including the top-level
//!   label (the root is never asked). A CNAME at any step is followed by
//!   the resolver, so an alias's answer is its target's CAA RRset.
//!   NXDOMAIN and NODATA mean "empty here, climb"; any other failure
//!   (SERVFAIL, REFUSED, timeout) refuses issuance with `caa`.
//! * **No relevant RRset** anywhere → allowed.
//! * **Critical flag** (§4.1): a record with the issuer-critical bit and a
//!   tag other than `issue`, `issuewild`, `iodef` → refused.
//! * **Property** (§4.2, §4.3): for a wildcard authorization the
//!   `issuewild` records when the RRset has any, else `issue`; no such
//!   record → allowed (only `iodef` or unknown non-critical tags).
//!   Otherwise issuance needs one record whose issuer domain name is one
//!   of ours (`[acme] caa_identities`, case-insensitive) and whose
//!   parameters allow it: `accounturi` must equal the requesting account's
//!   URL (RFC 8657 §3), `validationmethods` must list the challenge type
//!   that was used (RFC 8657 §4). Other parameters are ignored. A value
//!   that does not parse (§4.2 grammar) matches nothing; `issue ";"`
//!   forbids everyone.
//! * `iodef` is never acted on (reports are optional, §4.4).

use std::future::Future;

use super::resolve::LookupFailure;
use super::{ChallengeKind, ValidationError};

/// One CAA resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaRecord {
    /// The issuer-critical flag (bit 0 of the flags octet).
    pub critical: bool,
    /// The property tag as received.
    pub tag: String,
    /// The property value as received.
    pub value: Vec<u8>,
}

impl CaaRecord {
    /// A record from its presentation parts (tests and fakes).
    pub fn new(critical: bool, tag: &str, value: &str) -> CaaRecord {
        CaaRecord {
            critical,
            tag: tag.to_string(),
            value: value.as_bytes().to_vec(),
        }
    }
}

/// Where CAA RRsets come from: the validator's resolver, or a fake in tests.
pub trait CaaSource: Sync {
    /// The CAA RRset of the absolute-or-relative `name` (no trailing dot
    /// needed). `Ok(vec![])` and `Err(NxDomain | NoData)` both mean empty.
    fn lookup_caa(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<CaaRecord>, LookupFailure>> + Send;
}

/// What issuance asks CAA to allow.
#[derive(Debug, Clone)]
pub struct CaaRequest<'a> {
    /// The DNS name, without `*.`, normalised (lower case, no trailing dot).
    pub name: &'a str,
    /// A wildcard authorization (`*.name`).
    pub wildcard: bool,
    /// Our issuer domain names (`[acme] caa_identities`).
    pub identities: &'a [String],
    /// The requesting account's URL (RFC 8657 §3).
    pub account_uri: &'a str,
    /// The challenge that was validated (RFC 8657 §4).
    pub method: ChallengeKind,
}

/// Finds the relevant RRset of `name` (RFC 8659 §3) and decides.
pub async fn check<S: CaaSource>(source: &S, req: &CaaRequest<'_>) -> Result<(), ValidationError> {
    let labels: Vec<&str> = req.name.split('.').filter(|l| !l.is_empty()).collect();
    for start in 0..labels.len() {
        let candidate = labels[start..].join(".");
        let rrset = match source.lookup_caa(&candidate).await {
            Ok(r) => r,
            Err(LookupFailure::NxDomain | LookupFailure::NoData) => Vec::new(),
            Err(LookupFailure::Other(e)) => {
                return Err(ValidationError::Caa(format!(
                    "CAA lookup of {candidate} failed ({e}); issuance is refused until it succeeds (RFC 8659 §3)"
                )))
            }
        };
        if !rrset.is_empty() {
            return decide(&candidate, &rrset, req);
        }
    }
    Ok(())
}

/// The decision on the relevant RRset found at `at` (RFC 8659 §4).
pub fn decide(at: &str, rrset: &[CaaRecord], req: &CaaRequest<'_>) -> Result<(), ValidationError> {
    let tag_is = |r: &CaaRecord, t: &str| r.tag.eq_ignore_ascii_case(t);
    if let Some(r) = rrset
        .iter()
        .find(|r| r.critical && !["issue", "issuewild", "iodef"].iter().any(|t| tag_is(r, t)))
    {
        return Err(ValidationError::Caa(format!(
            "CAA record at {at} has the critical flag on unknown tag {:?} (RFC 8659 §4.1)",
            r.tag
        )));
    }
    let wild: Vec<&CaaRecord> = rrset.iter().filter(|r| tag_is(r, "issuewild")).collect();
    let (property, set) = if req.wildcard && !wild.is_empty() {
        ("issuewild", wild)
    } else {
        (
            "issue",
            rrset.iter().filter(|r| tag_is(r, "issue")).collect(),
        )
    };
    if set.is_empty() {
        return Ok(());
    }
    let mut reasons = Vec::new();
    for r in &set {
        match permits(r, req) {
            Ok(()) => return Ok(()),
            Err(why) => reasons.push(why),
        }
    }
    let name = if req.wildcard {
        format!("*.{}", req.name)
    } else {
        req.name.to_string()
    };
    Err(ValidationError::Caa(format!(
        "CAA records at {at} forbid issuance for {name} ({property}: {})",
        reasons.join("; ")
    )))
}

/// Whether one `issue`/`issuewild` record lets us issue; `Err` says why not.
fn permits(r: &CaaRecord, req: &CaaRequest<'_>) -> Result<(), String> {
    let text = std::str::from_utf8(&r.value).map_err(|_| "value is not text".to_string())?;
    let (domain, params) =
        parse_issue_value(text).ok_or_else(|| format!("{text:?} is malformed"))?;
    let Some(domain) = domain else {
        return Err("no CA may issue".into());
    };
    if !req
        .identities
        .iter()
        .any(|id| id.trim_end_matches('.').eq_ignore_ascii_case(&domain))
    {
        return Err(format!("{domain} is not this CA"));
    }
    for (k, v) in &params {
        if k.eq_ignore_ascii_case("accounturi") && v != req.account_uri {
            return Err(format!("accounturi {v} is not the requesting account"));
        }
        if k.eq_ignore_ascii_case("validationmethods")
            && !v.split(',').any(|m| m == req.method.as_str())
        {
            return Err(format!(
                "validationmethods {v} does not include {}",
                req.method
            ));
        }
    }
    Ok(())
}

/// A parsed `issue`/`issuewild` value: the issuer domain name (lower
/// case; `None` when absent) and the parameters in order.
pub type IssueValue = (Option<String>, Vec<(String, String)>);

/// Parses an `issue`/`issuewild` value (RFC 8659 §4.2):
/// `[issuer-domain-name] *WSP [";" *WSP [parameters *WSP]]`, parameters
/// `tag "=" value` separated by `;`. Returns the domain (lower case, `None`
/// when absent) and the parameters, or `None` when malformed.
pub fn parse_issue_value(text: &str) -> Option<IssueValue> {
    let (domain, rest) = match text.split_once(';') {
        Some((d, r)) => (d.trim_matches([' ', '\t']), Some(r)),
        None => (text.trim_matches([' ', '\t']), None),
    };
    let domain = if domain.is_empty() {
        None
    } else {
        let ok = domain.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
        if !ok {
            return None;
        }
        Some(domain.to_ascii_lowercase())
    };
    let mut params = Vec::new();
    if let Some(rest) = rest {
        for p in rest.split(';') {
            let p = p.trim_matches([' ', '\t']);
            if p.is_empty() {
                continue;
            }
            let (k, v) = p.split_once('=')?;
            let (k, v) = (k.trim_matches([' ', '\t']), v.trim_matches([' ', '\t']));
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            if !v.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b';') {
                return None;
            }
            params.push((k.to_string(), v.to_string()));
        }
    }
    Some((domain, params))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on unexpected failures")]

    use std::collections::HashMap;

    use super::*;

    /// A fake DNS view: name → RRset or failure; names absent are NXDOMAIN.
    /// CNAMEs are modelled as the resolver shows them: the alias answers
    /// with its target's RRset.
    #[derive(Default)]
    struct Fake {
        zones: HashMap<String, Result<Vec<CaaRecord>, String>>,
        cnames: HashMap<String, String>,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl Fake {
        fn with(mut self, name: &str, recs: Vec<CaaRecord>) -> Fake {
            self.zones.insert(name.into(), Ok(recs));
            self
        }
        fn failing(mut self, name: &str) -> Fake {
            self.zones.insert(name.into(), Err("SERVFAIL".into()));
            self
        }
        fn alias(mut self, name: &str, target: &str) -> Fake {
            self.cnames.insert(name.into(), target.into());
            self
        }
    }

    impl CaaSource for Fake {
        async fn lookup_caa(&self, name: &str) -> Result<Vec<CaaRecord>, LookupFailure> {
            self.asked.lock().unwrap().push(name.to_string());
            let name = self.cnames.get(name).map(String::as_str).unwrap_or(name);
            match self.zones.get(name) {
                Some(Ok(r)) => Ok(r.clone()),
                Some(Err(e)) => Err(LookupFailure::Other(e.clone())),
                None => Err(LookupFailure::NxDomain),
            }
        }
    }

    fn ids() -> Vec<String> {
        vec!["ironseal.test".into()]
    }

    fn req<'a>(name: &'a str, wildcard: bool, ids: &'a [String]) -> CaaRequest<'a> {
        CaaRequest {
            name,
            wildcard,
            identities: ids,
            account_uri: "https://ca.test/acme/acct/1",
            method: ChallengeKind::Http01,
        }
    }

    async fn run(f: &Fake, r: &CaaRequest<'_>) -> Result<(), ValidationError> {
        check(f, r).await
    }

    #[tokio::test]
    async fn no_records_anywhere_allows_and_climbs_to_the_tld() {
        let f = Fake::default();
        let ids = ids();
        assert_eq!(run(&f, &req("a.b.example.com", false, &ids)).await, Ok(()));
        assert_eq!(
            *f.asked.lock().unwrap(),
            ["a.b.example.com", "b.example.com", "example.com", "com"]
        );
    }

    #[tokio::test]
    async fn issue_for_us_or_another_ca() {
        let ids = ids();
        let ours = Fake::default().with(
            "example.com",
            vec![CaaRecord::new(false, "issue", "ironseal.test")],
        );
        assert_eq!(
            run(&ours, &req("www.example.com", false, &ids)).await,
            Ok(())
        );
        let theirs = Fake::default().with(
            "example.com",
            vec![CaaRecord::new(false, "issue", "letsencrypt.org")],
        );
        let e = run(&theirs, &req("www.example.com", false, &ids))
            .await
            .unwrap_err();
        assert_eq!(e.acme_type(), "caa");
        assert!(
            e.to_string().contains("letsencrypt.org is not this CA"),
            "{e}"
        );
        // Either of two records suffices; identities compare case-insensitively.
        let both = Fake::default().with(
            "example.com",
            vec![
                CaaRecord::new(false, "issue", "letsencrypt.org"),
                CaaRecord::new(false, "ISSUE", "IronSeal.Test"),
            ],
        );
        assert_eq!(run(&both, &req("example.com", false, &ids)).await, Ok(()));
        // `issue ";"`: nobody.
        let none = Fake::default().with("example.com", vec![CaaRecord::new(false, "issue", ";")]);
        assert!(run(&none, &req("example.com", false, &ids)).await.is_err());
        // Only iodef or unknown non-critical tags: no restriction.
        let iodef = Fake::default().with(
            "example.com",
            vec![
                CaaRecord::new(false, "iodef", "mailto:sec@example.com"),
                CaaRecord::new(false, "futuretag", "x"),
            ],
        );
        assert_eq!(run(&iodef, &req("example.com", false, &ids)).await, Ok(()));
    }

    #[tokio::test]
    async fn the_closest_rrset_wins() {
        let ids = ids();
        // The subdomain's own RRset allows us even though the parent forbids.
        let f = Fake::default()
            .with(
                "example.com",
                vec![CaaRecord::new(false, "issue", "other.ca")],
            )
            .with(
                "www.example.com",
                vec![CaaRecord::new(false, "issue", "ironseal.test")],
            );
        assert_eq!(run(&f, &req("www.example.com", false, &ids)).await, Ok(()));
        assert!(run(&f, &req("api.example.com", false, &ids)).await.is_err());
    }

    #[tokio::test]
    async fn issuewild_governs_wildcards_only() {
        let ids = ids();
        let f = Fake::default().with(
            "example.com",
            vec![
                CaaRecord::new(false, "issue", "ironseal.test"),
                CaaRecord::new(false, "issuewild", ";"),
            ],
        );
        assert_eq!(run(&f, &req("example.com", false, &ids)).await, Ok(()));
        let e = run(&f, &req("example.com", true, &ids)).await.unwrap_err();
        assert!(
            e.to_string().contains("issuewild") && e.to_string().contains("*.example.com"),
            "{e}"
        );
        // No issuewild: issue applies to wildcards too.
        let g = Fake::default().with(
            "example.com",
            vec![CaaRecord::new(false, "issue", "other.ca")],
        );
        assert!(run(&g, &req("example.com", true, &ids)).await.is_err());
        let h = Fake::default().with(
            "example.com",
            vec![
                CaaRecord::new(false, "issue", "other.ca"),
                CaaRecord::new(false, "issuewild", "ironseal.test"),
            ],
        );
        assert_eq!(run(&h, &req("example.com", true, &ids)).await, Ok(()));
        assert!(run(&h, &req("example.com", false, &ids)).await.is_err());
    }

    #[tokio::test]
    async fn critical_unknown_tags_refuse() {
        let ids = ids();
        let f = Fake::default().with(
            "example.com",
            vec![
                CaaRecord::new(false, "issue", "ironseal.test"),
                CaaRecord::new(true, "tbs", "x"),
            ],
        );
        let e = run(&f, &req("example.com", false, &ids)).await.unwrap_err();
        assert!(e.to_string().contains("critical"), "{e}");
        // Critical on a known tag is fine.
        let g = Fake::default().with(
            "example.com",
            vec![CaaRecord::new(true, "issue", "ironseal.test")],
        );
        assert_eq!(run(&g, &req("example.com", false, &ids)).await, Ok(()));
    }

    #[tokio::test]
    async fn accounturi_and_validationmethods() {
        let ids = ids();
        let rec =
            |v: &str| Fake::default().with("example.com", vec![CaaRecord::new(false, "issue", v)]);
        let mine = rec("ironseal.test; accounturi=https://ca.test/acme/acct/1");
        assert_eq!(run(&mine, &req("example.com", false, &ids)).await, Ok(()));
        let other = rec("ironseal.test; accounturi=https://ca.test/acme/acct/2");
        let e = run(&other, &req("example.com", false, &ids))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("accounturi"), "{e}");
        let http = rec("ironseal.test; validationmethods=dns-01,http-01");
        assert_eq!(run(&http, &req("example.com", false, &ids)).await, Ok(()));
        let dns_only = rec("ironseal.test; validationmethods=dns-01");
        let e = run(&dns_only, &req("example.com", false, &ids))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("validationmethods"), "{e}");
        let mut r = req("example.com", false, &ids);
        r.method = ChallengeKind::Dns01;
        assert_eq!(run(&dns_only, &r).await, Ok(()));
        // Both parameters, unknown ones ignored.
        let all = rec(
            "ironseal.test; accounturi=https://ca.test/acme/acct/1; validationmethods=http-01; x=y",
        );
        assert_eq!(run(&all, &req("example.com", false, &ids)).await, Ok(()));
        // Malformed values match nothing.
        for bad in [
            "ironseal.test; accounturi",
            "iron seal.test",
            "ironseal.test; =x",
            "-x.test",
        ] {
            assert!(
                run(&rec(bad), &req("example.com", false, &ids))
                    .await
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn lookup_failures_refuse_with_caa() {
        let ids = ids();
        let f = Fake::default().failing("example.com");
        let e = run(&f, &req("www.example.com", false, &ids))
            .await
            .unwrap_err();
        assert_eq!(e.acme_type(), "caa");
        assert!(e.to_string().contains("SERVFAIL"), "{e}");
        // A failure above a non-empty RRset is never reached.
        let g = Fake::default().failing("example.com").with(
            "www.example.com",
            vec![CaaRecord::new(false, "issue", "ironseal.test")],
        );
        assert_eq!(run(&g, &req("www.example.com", false, &ids)).await, Ok(()));
    }

    #[tokio::test]
    async fn cnames_answer_with_the_target_rrset() {
        let ids = ids();
        let f = Fake::default()
            .alias("www.example.com", "cdn.other.net")
            .with(
                "cdn.other.net",
                vec![CaaRecord::new(false, "issue", "other.ca")],
            )
            .with(
                "example.com",
                vec![CaaRecord::new(false, "issue", "ironseal.test")],
            );
        assert!(run(&f, &req("www.example.com", false, &ids)).await.is_err());
        let g = Fake::default()
            .alias("www.example.com", "cdn.other.net")
            .with(
                "cdn.other.net",
                vec![CaaRecord::new(false, "issue", "ironseal.test")],
            );
        assert_eq!(run(&g, &req("www.example.com", false, &ids)).await, Ok(()));
    }

    #[test]
    fn issue_value_grammar() {
        assert_eq!(
            parse_issue_value("ca.example; a=b ;c=d"),
            Some((
                Some("ca.example".into()),
                vec![("a".into(), "b".into()), ("c".into(), "d".into())]
            ))
        );
        assert_eq!(parse_issue_value(";"), Some((None, vec![])));
        assert_eq!(parse_issue_value(""), Some((None, vec![])));
        assert_eq!(parse_issue_value("a..b"), None);
        assert_eq!(parse_issue_value("ca.example; k=v v"), None);
    }
}
