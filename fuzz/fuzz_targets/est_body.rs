//! EST request inputs (RFC 7030, RFC 8951, RFC 9266), all from one input:
//! - the body: base64 / PEM / DER decoding under each
//!   Content-Transfer-Encoding a client may send (RFC 8951 §3);
//! - on whatever decoded: the challengePassword extraction and the
//!   channel-binding comparison of RFC 7030 §3.5 / RFC 9266 (against a
//!   fixed exporter value and against none, as under TLS 1.2), and the
//!   `/serverkeygen` key-delivery attributes (RFC 7030 §4.4.1);
//! - the input as an `Authorization: Basic` header (RFC 7617 §2) and as a
//!   challengePassword text.
#![no_main]

use ironseal_protocol::est;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for cte in [None, Some("base64"), Some("binary"), Some("x-unknown")] {
        if let Ok(der) = est::decode_body(data, cte) {
            if let Ok(pw) = est::challenge_password(&der) {
                let _ = est::verify_channel_binding(pw.as_deref(), Some(&[7u8; 32]));
                let _ = est::verify_channel_binding(pw.as_deref(), None);
            }
            let _ = est::requested_key_delivery(&der);
        }
    }
    let _ = est::requested_key_delivery(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = est::basic_auth::parse_basic(text);
        let _ = est::verify_channel_binding(Some(text), Some(&[7u8; 32]));
    }
});
