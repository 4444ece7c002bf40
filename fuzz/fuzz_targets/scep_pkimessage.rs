//! SCEP PKIMessage decoding (RFC 8894 §3): the outer SignedData with its
//! signature check, and the EnvelopedData opened with a fixed test RA key
//! (fed the raw input too, so the envelope parser is reached without a
//! valid signature), and the decrypted contents of CertPoll, GetCert and
//! GetCRL (IssuerAndSubject, IssuerAndSerialNumber) fed the raw input.
#![no_main]

use std::sync::OnceLock;

use ironseal_protocol::scep::{
    decrypt_envelope, parse_issuer_and_serial, parse_issuer_and_subject, PkiMessage, RaKey,
};
use libfuzzer_sys::fuzz_target;

fn ra() -> &'static RaKey {
    static RA: OnceLock<RaKey> = OnceLock::new();
    RA.get_or_init(|| {
        RaKey::new(
            include_bytes!("../../protocol/tests/vectors/scep/micromdm-ca-ra.der"),
            include_bytes!("../../protocol/tests/vectors/scep/micromdm-ca-ra.pk8"),
        )
        .expect("the test RA key loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    if let Ok(msg) = PkiMessage::decode(data) {
        let _ = decrypt_envelope(ra(), &msg.envelope, &rng);
    }
    let _ = decrypt_envelope(ra(), data, &rng);
    let _ = parse_issuer_and_serial(data);
    let _ = parse_issuer_and_subject(data);
});
