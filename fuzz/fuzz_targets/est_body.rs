//! EST request bodies (RFC 7030 §4.2.1, RFC 8951 §3): base64 / PEM / DER
//! decoding, then the challengePassword extraction of RFC 7030 §3.5 on
//! whatever decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(der) = ironseal_protocol::est::decode_body(data, None) {
        let _ = ironseal_protocol::est::challenge_password(&der);
    }
});
