//! External account binding parsing and verification (RFC 8555 §7.3.4).
#![no_main]

use ironseal_protocol::acme::{eab, jwk::Jwk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(binding) = eab::parse(&value) {
        if let Ok(key) = Jwk::from_json(&serde_json::json!({"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}))
        {
            let _ = binding.verify(b"fuzz-key", &key);
        }
    }
});
