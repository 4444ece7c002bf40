//! OCSPRequest decoding (RFC 6960 §4.1.1) against real OpenSSL requests
//! (`tests/vectors/ocsp/`) and hand-built malformed ones: truncation,
//! trailing bytes, wrong version, bad nonces (RFC 8954 §2.1 / RFC 9654),
//! unknown critical extensions, oversize input. Nothing may panic.
#![allow(clippy::unwrap_used, reason = "tests panic on unexpected failures")]

use base64::Engine as _;
use ironseal_protocol::ocsp::request::CertIdHash;
use ironseal_protocol::ocsp::{decode_get_path, OcspError, OcspRequest, MAX_REQUEST_SIZE};

fn vector(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/ocsp")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const VECTORS: [&str; 6] = [
    "openssl-ocsp-request-nonce-sha1.der",
    "openssl-ocsp-request-nononce-sha1.der",
    "openssl-ocsp-request-nonce-sha256.der",
    "openssl-ocsp-request-nononce-sha256.der",
    "openssl-ocsp-request-two-serials.der",
    "openssl-ocsp-request-signed.der",
];

// --- a minimal DER builder for hand-made requests ---------------------------

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else if len < 0x10000 {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend([0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn octets(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}

const SHA1_ALG: [u8; 11] = [
    0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
];
const NONCE_OID: [u8; 11] = [
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02,
];

fn cert_id(serial: &[u8]) -> Vec<u8> {
    seq(&[
        &SHA1_ALG,
        &octets(&[1; 20]),
        &octets(&[2; 20]),
        &tlv(0x02, serial),
    ])
}

fn request(cid: &[u8], single_exts: Option<&[u8]>) -> Vec<u8> {
    match single_exts {
        Some(e) => seq(&[cid, &tlv(0xa0, e)]),
        None => seq(&[cid]),
    }
}

fn nonce_ext(extn_value: &[u8]) -> Vec<u8> {
    seq(&[&NONCE_OID, &octets(extn_value)])
}

fn ocsp_request(version: Option<&[u8]>, requests: &[Vec<u8>], exts: Option<&[Vec<u8>]>) -> Vec<u8> {
    let mut tbs = Vec::new();
    if let Some(v) = version {
        tbs.extend(tlv(0xa0, &tlv(0x02, v)));
    }
    tbs.extend(seq(&requests.iter().map(Vec::as_slice).collect::<Vec<_>>()));
    if let Some(e) = exts {
        tbs.extend(tlv(
            0xa2,
            &seq(&e.iter().map(Vec::as_slice).collect::<Vec<_>>()),
        ));
    }
    seq(&[&tlv(0x30, &tbs)])
}

fn simple(exts: Option<&[Vec<u8>]>) -> Vec<u8> {
    ocsp_request(None, &[request(&cert_id(&[0x12, 0x34]), None)], exts)
}

// --- real requests -----------------------------------------------------------

#[test]
fn openssl_vectors_decode() {
    let r = OcspRequest::from_der(&vector(VECTORS[0])).unwrap();
    assert_eq!(r.requests.len(), 1);
    assert_eq!(r.nonce.as_ref().map(Vec::len), Some(16));
    assert!(!r.signed);
    let id = &r.requests[0].cert_id;
    assert_eq!(id.hash(), Some(CertIdHash::Sha1));
    assert_eq!(id.issuer_name_hash.as_bytes().len(), 20);
    assert_eq!(id.serial_bytes().len(), 16);
    // The CertID re-encodes to the bytes OpenSSL sent (it is echoed).
    let raw = vector(VECTORS[0]);
    let cid = id.to_der_bytes().unwrap();
    assert!(raw.windows(cid.len()).any(|w| w == cid.as_slice()));

    let r = OcspRequest::from_der(&vector(VECTORS[1])).unwrap();
    assert_eq!(r.nonce, None);

    let r = OcspRequest::from_der(&vector(VECTORS[2])).unwrap();
    let id = &r.requests[0].cert_id;
    assert_eq!(id.hash(), Some(CertIdHash::Sha256));
    assert_eq!(id.issuer_key_hash.as_bytes().len(), 32);
    assert!(r.nonce.is_some());
    assert_eq!(
        OcspRequest::from_der(&vector(VECTORS[3])).unwrap().nonce,
        None
    );

    let r = OcspRequest::from_der(&vector(VECTORS[4])).unwrap();
    assert_eq!(r.requests.len(), 2);
    assert_eq!(r.requests[0].cert_id.serial_bytes(), [0x01]);
    assert_eq!(r.requests[1].cert_id.serial_bytes(), [0x7f, 0x00, 0xaa]);

    let r = OcspRequest::from_der(&vector(VECTORS[5])).unwrap();
    assert!(r.signed, "optionalSignature is accepted (and ignored)");
    assert_eq!(r.requests.len(), 1);
}

#[test]
fn truncation_and_trailing_bytes_are_rejected() {
    for name in VECTORS {
        let der = vector(name);
        for n in 0..der.len() {
            assert!(
                OcspRequest::from_der(&der[..n]).is_err(),
                "{name}: prefix of {n} bytes accepted"
            );
        }
        for tail in [&[0x00][..], &[0x30, 0x00], &[0xff; 7]] {
            let mut d = der.clone();
            d.extend_from_slice(tail);
            assert!(
                matches!(OcspRequest::from_der(&d), Err(OcspError::Der(_))),
                "{name}: trailing {tail:?} accepted"
            );
        }
        // Flipping any single byte never panics.
        for i in 0..der.len() {
            let mut d = der.clone();
            d[i] ^= 0xff;
            let _ = OcspRequest::from_der(&d);
        }
    }
}

#[test]
fn version_must_be_v1() {
    assert!(OcspRequest::from_der(&simple(None)).is_ok());
    // v1 written out explicitly (DEFAULT, so non-canonical) is tolerated.
    let v1 = ocsp_request(Some(&[0]), &[request(&cert_id(&[1]), None)], None);
    assert!(OcspRequest::from_der(&v1).is_ok());
    for bad in [&[1u8][..], &[2], &[0x7f], &[0xff], &[0x01, 0x00]] {
        let d = ocsp_request(Some(bad), &[request(&cert_id(&[1]), None)], None);
        assert!(
            matches!(OcspRequest::from_der(&d), Err(OcspError::Version(_))),
            "version {bad:?}"
        );
    }
}

#[test]
fn nonce_lengths_follow_rfc9654() {
    for len in [1usize, 16, 32, 33, 127, 128] {
        let d = simple(Some(&[nonce_ext(&octets(&vec![0xab; len]))]));
        let r = OcspRequest::from_der(&d).unwrap_or_else(|e| panic!("len {len}: {e}"));
        assert_eq!(r.nonce, Some(vec![0xab; len]));
    }
    for len in [0usize, 129, 1000] {
        let d = simple(Some(&[nonce_ext(&octets(&vec![0xab; len]))]));
        assert!(
            matches!(OcspRequest::from_der(&d), Err(OcspError::BadNonce(_))),
            "len {len}"
        );
    }
    // extnValue must hold an OCTET STRING (RFC 8954 §2.1), not raw bytes.
    let raw = simple(Some(&[nonce_ext(&[0xab; 16])]));
    assert!(matches!(
        OcspRequest::from_der(&raw),
        Err(OcspError::BadNonce(_))
    ));
    // ... with nothing after it.
    let mut inner = octets(&[0xab; 16]);
    inner.push(0);
    let trailing = simple(Some(&[nonce_ext(&inner)]));
    assert!(matches!(
        OcspRequest::from_der(&trailing),
        Err(OcspError::BadNonce(_))
    ));
    // Twice is an error.
    let n = nonce_ext(&octets(&[1; 16]));
    let twice = simple(Some(&[n.clone(), n]));
    assert!(matches!(
        OcspRequest::from_der(&twice),
        Err(OcspError::DuplicateExtension(_))
    ));
}

#[test]
fn extensions_and_request_list() {
    // Unknown critical extension: rejected; unknown non-critical: ignored.
    let unknown_oid = [0x06, 0x03, 0x2a, 0x03, 0x04];
    let crit = seq(&[&unknown_oid, &[0x01, 0x01, 0xff], &octets(&[0x05, 0x00])]);
    assert!(matches!(
        OcspRequest::from_der(&simple(Some(std::slice::from_ref(&crit)))),
        Err(OcspError::UnsupportedCriticalExtension(_))
    ));
    let non_crit = seq(&[&unknown_oid, &octets(&[0x05, 0x00])]);
    assert!(OcspRequest::from_der(&simple(Some(&[non_crit]))).is_ok());
    // A critical nonce is understood.
    let crit_nonce = seq(&[&NONCE_OID, &[0x01, 0x01, 0xff], &octets(&octets(&[9; 20]))]);
    assert_eq!(
        OcspRequest::from_der(&simple(Some(&[crit_nonce])))
            .unwrap()
            .nonce,
        Some(vec![9; 20])
    );
    // Same rules for singleRequestExtensions.
    let single = ocsp_request(None, &[request(&cert_id(&[1]), Some(&seq(&[&crit])))], None);
    assert!(matches!(
        OcspRequest::from_der(&single),
        Err(OcspError::UnsupportedCriticalExtension(_))
    ));
    // Empty requestList.
    let empty = ocsp_request(None, &[], None);
    assert_eq!(OcspRequest::from_der(&empty), Err(OcspError::NoRequests));
    // Not DER: a long-form length where the short form fits.
    let good = simple(None);
    let mut bad = vec![0x30, 0x81, good[1]];
    bad.extend_from_slice(&good[2..]);
    assert!(matches!(
        OcspRequest::from_der(&bad),
        Err(OcspError::Der(_))
    ));
    // BER indefinite length.
    let mut indef = vec![0x30, 0x80];
    indef.extend_from_slice(&good[2..]);
    indef.extend([0, 0]);
    assert!(OcspRequest::from_der(&indef).is_err());
    // Garbage.
    for g in [&b""[..], b"\x30", b"\x30\x00", b"\x04\x00", b"hello"] {
        assert!(OcspRequest::from_der(g).is_err());
    }
}

#[test]
fn oversize_input_is_rejected_before_parsing() {
    let d = vec![0x30; MAX_REQUEST_SIZE + 1];
    assert_eq!(OcspRequest::from_der(&d), Err(OcspError::TooLarge));
    // A real request padded with many CertIDs just under the cap parses.
    let one = request(&cert_id(&[0x11; 16]), None);
    let n = (MAX_REQUEST_SIZE - 64) / one.len();
    let big = ocsp_request(None, &vec![one.clone(); n], None);
    assert!(big.len() <= MAX_REQUEST_SIZE);
    assert_eq!(OcspRequest::from_der(&big).unwrap().requests.len(), n);
    let bigger = ocsp_request(None, &vec![one; n + 10], None);
    assert_eq!(OcspRequest::from_der(&bigger), Err(OcspError::TooLarge));
}

#[test]
fn get_path_round_trip() {
    for name in VECTORS {
        let der = vector(name);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let escaped = b64
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert_eq!(decode_get_path(&b64).unwrap(), der);
        assert_eq!(decode_get_path(&escaped).unwrap(), der);
        assert!(OcspRequest::from_der(&decode_get_path(&escaped).unwrap()).is_ok());
    }
}
