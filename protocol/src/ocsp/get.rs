//! HTTP GET requests (RFC 6960 Appendix A.1.1, RFC 5019 §5):
//! `GET {url}/{url-encoding of base-64 encoding of the DER encoding of the OCSPRequest}`.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};

use super::{OcspError, MAX_REQUEST_SIZE};

/// Standard alphabet, padding optional (some clients and CDNs drop it).
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe alphabet, padding optional: not what RFC 6960 says, but some
/// clients send it and the two alphabets never conflict.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes (RFC 3986 §2.1) a path segment.
fn percent_decode(s: &str) -> Result<Vec<u8>, OcspError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).copied().and_then(hex_val);
            let lo = b.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(OcspError::BadGetEncoding("bad percent escape".into())),
            }
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// Decodes the part of a GET request path after the responder's prefix
/// (e.g. everything after `/ocsp/`) into the DER `OCSPRequest`.
///
/// The segment is percent-decoded, then base64-decoded (RFC 4648 §4,
/// padding optional; the URL-safe alphabet of §5 is also accepted).
/// Unencoded `/` characters (legal base64 that clients often fail to
/// escape) are kept, and a space is read as `+` (an unescaped `+` that
/// some intermediaries turn into a space). The result is capped at
/// [`MAX_REQUEST_SIZE`]; the caller then decodes it with
/// [`super::OcspRequest::from_der`].
pub fn decode_get_path(segment: &str) -> Result<Vec<u8>, OcspError> {
    // base64 of 64 KiB is ~87 KiB; with percent escapes at most three times that.
    if segment.len() > MAX_REQUEST_SIZE * 4 {
        return Err(OcspError::TooLarge);
    }
    let decoded = percent_decode(segment)?;
    let text: Vec<u8> = decoded
        .into_iter()
        .filter(|c| !matches!(c, b'\r' | b'\n'))
        .map(|c| if c == b' ' { b'+' } else { c })
        .collect();
    if text.is_empty() {
        return Err(OcspError::BadGetEncoding("empty request".into()));
    }
    let der = STANDARD_LENIENT
        .decode(&text)
        .or_else(|_| URL_SAFE_LENIENT.decode(&text))
        .map_err(|e| OcspError::BadGetEncoding(format!("base64: {e}")))?;
    if der.len() > MAX_REQUEST_SIZE {
        return Err(OcspError::TooLarge);
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escaped_and_unescaped() {
        // 0xfb 0xff 0xfe encodes to "+//+" in standard base64.
        let raw = [0xfbu8, 0xff, 0xbe];
        assert_eq!(decode_get_path("+/++").unwrap(), raw);
        assert_eq!(decode_get_path("%2B%2F%2B%2B").unwrap(), raw);
        assert_eq!(decode_get_path("%2b/%2B+").unwrap(), raw);
        assert_eq!(decode_get_path(" / +").unwrap(), raw);
        assert_eq!(decode_get_path("-_--").unwrap(), raw);
        assert_eq!(decode_get_path("MAA%3D").unwrap(), vec![0x30, 0]);
        assert_eq!(decode_get_path("MAA").unwrap(), vec![0x30, 0]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_get_path("").is_err());
        assert!(decode_get_path("%").is_err());
        assert!(decode_get_path("%zz").is_err());
        assert!(decode_get_path("%2").is_err());
        assert!(decode_get_path("!!!!").is_err());
        assert!(decode_get_path("ab+_").is_err());
        assert_eq!(
            decode_get_path(&"A".repeat(MAX_REQUEST_SIZE * 4 + 1)),
            Err(OcspError::TooLarge)
        );
        assert_eq!(
            decode_get_path(&"A".repeat(MAX_REQUEST_SIZE * 2)),
            Err(OcspError::TooLarge)
        );
    }
}
