//! The `/serverkeygen` answer (RFC 7030 §4.4.2, with the framing of
//! RFC 8951 §3): a `multipart/mixed` body with the private key
//! (`application/pkcs8`, an unencrypted PKCS#8 OneAsymmetricKey, RFC 5958;
//! or, encrypted to the client, `application/pkcs7-mime;
//! smime-type=server-generated-key`, see [`super::key_delivery`]) and the
//! certificate (`application/pkcs7-mime; smime-type=certs-only`), each part
//! base64 with `Content-Transfer-Encoding: base64`.
//!
//! Both EST clients in the field (libest before RFC 8951, globalsign/est)
//! read a part's `Content-Transfer-Encoding`, so it is always sent.

use super::body::encode_base64_body;

/// A `/serverkeygen` response: the `Content-Type` header value (with the
/// boundary) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeygenResponse {
    /// `multipart/mixed; boundary=...`.
    pub content_type: String,
    /// The multipart body.
    pub body: Vec<u8>,
}

/// The private-key part of a `/serverkeygen` answer (RFC 7030 §4.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart<'a> {
    /// The unencrypted PKCS#8 (`application/pkcs8`).
    Pkcs8(&'a [u8]),
    /// The key encrypted to the client, a CMS EnvelopedData
    /// (`application/pkcs7-mime; smime-type=server-generated-key`).
    Encrypted(&'a [u8]),
}

/// Builds the response for `key` (the generated key) and
/// `certs_only_der` (the certs-only PKCS#7 with the new certificate).
///
/// `boundary` must not occur in either base64 text; a boundary containing a
/// character outside the base64 alphabet (such as `_` or `.`) can never
/// occur there, and this function refuses any other.
pub fn serverkeygen_response(
    key: KeyPart<'_>,
    certs_only_der: &[u8],
    boundary: &str,
) -> Option<ServerKeygenResponse> {
    let safe = !boundary.is_empty()
        && boundary.len() <= 70
        && boundary
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-=+".contains(&b))
        && boundary.bytes().any(|b| b"_.-".contains(&b));
    if !safe {
        return None;
    }
    let mut body = Vec::new();
    let part = |body: &mut Vec<u8>, ctype: &str, der: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(format!("Content-Type: {ctype}\r\n").as_bytes());
        body.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
        body.extend_from_slice(&encode_base64_body(der));
        body.extend_from_slice(b"\r\n");
    };
    match key {
        KeyPart::Pkcs8(der) => part(&mut body, "application/pkcs8", der),
        KeyPart::Encrypted(der) => part(
            &mut body,
            "application/pkcs7-mime; smime-type=server-generated-key",
            der,
        ),
    }
    part(
        &mut body,
        "application/pkcs7-mime; smime-type=certs-only",
        certs_only_der,
    );
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Some(ServerKeygenResponse {
        content_type: format!("multipart/mixed; boundary={boundary}"),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_base64_parts_with_cte() {
        let r = serverkeygen_response(
            KeyPart::Pkcs8(&[0x30, 0x00]),
            &[0x30, 0x01, 0x00],
            "est_b0undary",
        )
        .unwrap();
        assert_eq!(r.content_type, "multipart/mixed; boundary=est_b0undary");
        let text = String::from_utf8(r.body).unwrap();
        assert_eq!(
            text,
            "--est_b0undary\r\nContent-Type: application/pkcs8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nMAA=\r\n\
             --est_b0undary\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nMAEA\r\n--est_b0undary--\r\n"
        );
    }

    #[test]
    fn encrypted_key_part_says_server_generated_key() {
        let r =
            serverkeygen_response(KeyPart::Encrypted(&[0x30, 0x00]), &[0x30, 0x00], "b_1").unwrap();
        let text = String::from_utf8(r.body).unwrap();
        assert!(text.starts_with(
            "--b_1\r\nContent-Type: application/pkcs7-mime; smime-type=server-generated-key\r\n"
        ));
        assert!(!text.contains("application/pkcs8"));
    }

    #[test]
    fn boundary_that_could_appear_in_base64_refused() {
        let k = KeyPart::Pkcs8(&[]);
        assert!(serverkeygen_response(k, &[], "abc").is_none());
        assert!(serverkeygen_response(k, &[], "").is_none());
        assert!(serverkeygen_response(k, &[], "a\r\nb_").is_none());
    }
}
