//! Admin API requests: routing (`METHOD /admin/v1/...`), path parameters,
//! query strings and JSON bodies, decoded as the handlers do before they
//! touch any state, plus the audit-log summary of the call.
//!
//! Input: a request line `METHOD PATH[?QUERY]`, a newline, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let (method, target) = line.split_once(' ').unwrap_or(("POST", line));
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let _ = ironseal::admin::decode_for_fuzzing(method, path, query, body);
});
