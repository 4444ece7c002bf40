//! Backup files (`ironseal restore` input): header, base64 entries and the
//! trailer's count and SHA-256 check, with a consumer that accepts every
//! entry. Must refuse or accept, never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = std::io::BufReader::new(data);
    let _ = ironseal_protocol::backup::read(&mut input, "sled", &mut |_| Ok(()), &mut |_| {});
});
