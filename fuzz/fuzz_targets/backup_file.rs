//! Backup files (`ironseal restore` input) and export files (`ironseal
//! store import` input, the same framing with JSON record entries): header,
//! entries and the trailer's count and SHA-256 check, with a consumer that
//! accepts every entry. Must refuse or accept, never panic or allocate
//! without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = std::io::BufReader::new(data);
    let _ = ironseal_protocol::backup::read(&mut input, "sled", &mut |_| Ok(()), &mut |_| {});
    let mut input = std::io::BufReader::new(data);
    let _ = ironseal_protocol::backup::read_format(
        &mut input,
        "ironseal-export",
        None,
        &mut |_| Ok(()),
        &mut |_| {},
    );
});
