//! Public JWK parsing (RFC 7517) plus thumbprint and key bits of accepted keys.
#![no_main]

use ironseal_protocol::acme::jwk::Jwk;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(jwk) = Jwk::from_json(&value) {
            let _ = (jwk.thumbprint(), jwk.public_key_bits());
        }
    }
});
