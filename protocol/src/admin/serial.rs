//! Certificate serial numbers as admin requests give them.

/// A serial as given in a path or list (hex, any case, colons allowed,
/// leading zeros optional) in the stored form: the DER INTEGER content
/// (RFC 5280 §4.1.2.2, X.690 §8.3) in lowercase hex, i.e. minimal, with one
/// `00` byte only before a high bit. `None` if it is not such a serial.
pub fn normalize_serial(s: &str) -> Option<String> {
    let s: String = s.trim().chars().filter(|c| *c != ':').collect();
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digits = s.trim_start_matches('0').to_ascii_lowercase();
    let mut out = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    if out.is_empty() {
        out = "00".into();
    } else if out
        .as_bytes()
        .first()
        .is_some_and(|b| b"89abcdef".contains(b))
    {
        out.insert_str(0, "00");
    }
    Some(out)
}
