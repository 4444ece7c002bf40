//! Flattened JSON JWS parsing (RFC 8555 §6.2) and, for embedded keys, verification.
#![no_main]

use ironseal_protocol::acme::jws;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = jws::parse(data) {
        if let Some(key) = parsed.embedded_jwk().cloned() {
            let _ = parsed.verify(&key);
        }
    }
});
