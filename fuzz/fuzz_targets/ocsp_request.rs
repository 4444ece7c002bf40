//! OCSP request decoding, DER (RFC 6960 §4.1.1) and GET path (Appendix A.1).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ironseal_protocol::ocsp::OcspRequest::from_der(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(der) = ironseal_protocol::ocsp::decode_get_path(s) {
            let _ = ironseal_protocol::ocsp::OcspRequest::from_der(&der);
        }
    }
});
