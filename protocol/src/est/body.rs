//! EST request and response bodies (RFC 7030 §4.2.1, §4.1.3; RFC 8951 §3).
//!
//! RFC 8951 §3 settles that EST bodies are base64 (RFC 4648 §4) whatever the
//! `Content-Transfer-Encoding` header says, and that a receiver ignores that
//! header. Devices in the field differ anyway (globalsign/est#23,
//! Azure/iot-identity-service#319), so [`decode_body`] accepts:
//!
//! - base64 with or without line breaks (LF or CRLF, any line length) and
//!   with or without padding;
//! - the same inside PEM armour (`-----BEGIN CERTIFICATE REQUEST-----`,
//!   `NEW CERTIFICATE REQUEST`, any label), headers-free;
//! - raw DER when the sender said `Content-Transfer-Encoding: binary` or the
//!   body plainly is DER (starts with a SEQUENCE tag followed by a long-form
//!   length byte, which base64 text cannot contain).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use thiserror::Error;

/// Largest request body accepted, in bytes (base64 text of a 64 KiB CSR
/// plus line breaks and armour).
pub const MAX_BODY_LEN: usize = 96 * 1024;

/// Standard alphabet, padding optional on input.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an EST body could not be decoded. The text goes into the 400 body.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BodyError {
    /// The body is empty (or only whitespace / armour).
    #[error("empty body: expected a base64-encoded PKCS#10 request (RFC 7030 section 4.2.1)")]
    Empty,
    /// The body is larger than [`MAX_BODY_LEN`].
    #[error("body larger than {MAX_BODY_LEN} bytes")]
    TooLarge,
    /// PEM armour without its END line, or text after it.
    #[error("malformed PEM armour: {0}")]
    Armour(&'static str),
    /// The text is not base64.
    #[error("invalid base64 (RFC 8951 section 3 requires base64): {0}")]
    Base64(String),
    /// The header named an encoding EST does not use.
    #[error("unsupported Content-Transfer-Encoding {0:?} (RFC 8951: base64)")]
    Encoding(String),
}

/// Decodes an EST request body to DER.
///
/// `content_transfer_encoding` is the header's value, if any. Per RFC 8951
/// §3 `base64` (or absent) means base64; `binary` or `8bit` mean raw DER
/// (accepted for devices that predate RFC 8951); anything else is refused.
pub fn decode_body(
    body: &[u8],
    content_transfer_encoding: Option<&str>,
) -> Result<Vec<u8>, BodyError> {
    if body.len() > MAX_BODY_LEN {
        return Err(BodyError::TooLarge);
    }
    let cte = content_transfer_encoding.map(|v| v.trim().to_ascii_lowercase());
    match cte.as_deref() {
        None | Some("") | Some("base64") => {}
        Some("binary") | Some("8bit") | Some("7bit") => {
            if looks_like_der(body) {
                return Ok(body.to_vec());
            }
        }
        Some(other) => return Err(BodyError::Encoding(other.to_string())),
    }
    if looks_like_der(body) {
        return Ok(body.to_vec());
    }
    let text = strip_armour(body)?;
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(BodyError::Empty);
    }
    LENIENT
        .decode(&compact)
        .map_err(|e| BodyError::Base64(e.to_string()))
}

/// Whether `body` starts like DER: a SEQUENCE tag and then a long-form
/// length (0x81..=0x84). Neither 0x81..0x84 nor any non-ASCII byte can occur
/// in base64 text, so this never mistakes base64 for DER.
fn looks_like_der(body: &[u8]) -> bool {
    matches!(body, [0x30, 0x81..=0x84, ..])
}

/// The base64 text inside PEM armour (RFC 7468 §2), or the whole body when
/// there is no armour. Text before BEGIN is ignored, as RFC 7468 §5.2 allows
/// for explanatory text; text after END is refused.
fn strip_armour(body: &[u8]) -> Result<&[u8], BodyError> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"-----END ";
    let Some(begin) = find(body, BEGIN) else {
        return Ok(body);
    };
    let after_begin = &body[begin + BEGIN.len()..];
    let Some(eol) = after_begin.iter().position(|&b| b == b'\n') else {
        return Err(BodyError::Armour("no line break after the BEGIN line"));
    };
    let inner = &after_begin[eol + 1..];
    let Some(end) = find(inner, END) else {
        return Err(BodyError::Armour("no END line"));
    };
    let after_end = &inner[end + END.len()..];
    let rest = match after_end.iter().position(|&b| b == b'\n') {
        Some(i) => &after_end[i + 1..],
        None => &[][..],
    };
    if rest.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(BodyError::Armour("text after the END line"));
    }
    Ok(&inner[..end])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Encodes a response body as RFC 8951 §3 wants it: base64 per RFC 4648
/// §4, to be sent with `Content-Transfer-Encoding: base64`, as one
/// unbroken line. RFC 4648 §3.1 forbids line feeds unless the referring
/// specification asks for them, and RFC 8951 does not; strict clients
/// read it that way (strongSwan's `pki --est` decodes the body four
/// characters at a time and turns a line break into garbage). With
/// `openssl base64 -d` use `-A` (single line).
pub fn encode_base64_body(der: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(der)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DER: &[u8] = &[0x30, 0x81, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 9];

    fn b64(d: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(d)
    }

    fn long_der() -> Vec<u8> {
        let mut v = vec![0x30, 0x82, 0x01, 0x00];
        v.extend((0..=255u8).cycle().take(256));
        v
    }

    #[test]
    fn unwrapped_base64() {
        assert_eq!(decode_body(b64(DER).as_bytes(), None).unwrap(), DER);
    }

    #[test]
    fn responses_are_one_unbroken_line() {
        let der = long_der();
        let body = String::from_utf8(encode_base64_body(&der)).unwrap();
        assert!(!body.contains(['\n', '\r']), "{body}");
        assert_eq!(body.len() % 4, 0, "padded");
        assert_eq!(decode_body(body.as_bytes(), None).unwrap(), der);
    }

    fn wrapped(der: &[u8], width: usize) -> String {
        b64(der)
            .as_bytes()
            .chunks(width)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect()
    }

    #[test]
    fn wrapped_at_64_columns_lf_and_crlf() {
        let der = long_der();
        let body = wrapped(&der, 64);
        assert!(body.lines().all(|l| l.len() <= 64));
        assert_eq!(decode_body(body.as_bytes(), Some("base64")).unwrap(), der);
        let lf = body.replace('\n', "\r\n");
        assert_eq!(decode_body(lf.as_bytes(), None).unwrap(), der);
        let odd = wrapped(&der, 76);
        assert_eq!(decode_body(odd.as_bytes(), None).unwrap(), der);
    }

    #[test]
    fn pem_armour() {
        let der = long_der();
        let pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}-----END CERTIFICATE REQUEST-----\n",
            wrapped(&der, 64)
        );
        assert_eq!(decode_body(pem.as_bytes(), None).unwrap(), der);
        let trailing = format!("{pem}junk\n");
        assert!(matches!(
            decode_body(trailing.as_bytes(), None),
            Err(BodyError::Armour(_))
        ));
        let cut = "-----BEGIN CERTIFICATE REQUEST-----\nMAAA\n";
        assert!(matches!(
            decode_body(cut.as_bytes(), None),
            Err(BodyError::Armour(_))
        ));
    }

    #[test]
    fn missing_padding_accepted() {
        let der = [0x30, 0x81, 0x01, 0x00];
        let text = b64(&der);
        let bare = text.trim_end_matches('=');
        assert_eq!(decode_body(bare.as_bytes(), None).unwrap(), der);
    }

    #[test]
    fn raw_der_with_or_without_binary_header() {
        assert_eq!(decode_body(DER, Some("binary")).unwrap(), DER);
        assert_eq!(decode_body(DER, None).unwrap(), DER);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert_eq!(decode_body(b"", None), Err(BodyError::Empty));
        assert_eq!(decode_body(b" \r\n", None), Err(BodyError::Empty));
        assert!(matches!(
            decode_body(b"not base64!", None),
            Err(BodyError::Base64(_))
        ));
        assert!(matches!(
            decode_body(b"MAAA", Some("quoted-printable")),
            Err(BodyError::Encoding(_))
        ));
        let big = vec![b'A'; MAX_BODY_LEN + 1];
        assert_eq!(decode_body(&big, None), Err(BodyError::TooLarge));
    }
}
