//! Microsoft security identifiers (SIDs, MS-DTYP §2.4.2.1) in the URI
//! subjectAltName form Active Directory's strong certificate mapping
//! accepts since KB5014754: `tag:microsoft.com,2022-09-14:sid:<SID>`
//! (a `tag:` URI, RFC 4151).

/// The URI prefix of a SID subjectAltName.
pub const SID_URI_PREFIX: &str = "tag:microsoft.com,2022-09-14:sid:";

/// Checks the string form of a SID (MS-DTYP §2.4.2.1): `S-1-` then the
/// identifier authority (decimal, below 2^48) then 1 to 15 sub-authorities,
/// each a decimal 32-bit value; no signs, no empty or overlong parts.
pub fn check_sid(sid: &str) -> Result<(), String> {
    let rest = sid
        .strip_prefix("S-1-")
        .ok_or("a SID starts with S-1- (revision 1)")?;
    let mut parts = rest.split('-');
    let authority = parts.next().unwrap_or_default();
    let digits = |p: &str| !p.is_empty() && p.len() <= 15 && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(authority) || authority.parse::<u64>().map_or(true, |a| a >= 1 << 48) {
        return Err("invalid identifier authority".into());
    }
    let mut n = 0usize;
    for p in parts {
        n += 1;
        if !digits(p) || p.parse::<u32>().is_err() {
            return Err(format!("invalid sub-authority {p:?}"));
        }
    }
    if !(1..=15).contains(&n) {
        return Err("a SID has 1 to 15 sub-authorities".into());
    }
    Ok(())
}

/// The SID of a SID URI, if `uri` is one (prefix matched exactly).
pub fn sid_of_uri(uri: &str) -> Option<&str> {
    uri.strip_prefix(SID_URI_PREFIX)
}

/// The SID URI for `sid` (not validated; see [`check_sid`]).
pub fn sid_uri(sid: &str) -> String {
    format!("{SID_URI_PREFIX}{sid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_syntax() {
        assert!(check_sid("S-1-5-21-3623811015-3361044348-30300820-1013").is_ok());
        assert!(check_sid("S-1-5-32-544").is_ok());
        for bad in [
            "",
            "S-1-5",
            "S-2-5-21",
            "s-1-5-21",
            "S-1-5-21-",
            "S-1-5--21",
            "S-1-5-+21",
            "S-1-5-4294967296",
            "S-1-281474976710656-1",
            "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
        ] {
            assert!(check_sid(bad).is_err(), "{bad}");
        }
    }
}
