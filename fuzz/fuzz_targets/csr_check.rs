//! PKCS#10 CSR decoding and policy checks (ca-core).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ironseal_ca_core::csr::check_csr(data, &ironseal_ca_core::csr::CsrPolicy::default());
});
