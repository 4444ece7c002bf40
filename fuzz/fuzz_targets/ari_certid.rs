//! ARI CertID parsing (RFC 9773 §4.1); accepted values must round-trip.
#![no_main]

use ironseal_protocol::acme::ari::CertId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(id) = CertId::parse(s) {
            assert_eq!(id.to_string(), s);
        }
    }
});
