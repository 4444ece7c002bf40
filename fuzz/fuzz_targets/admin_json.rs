//! Admin API requests: routing (`METHOD /admin/v1/...`), path parameters,
//! query strings and JSON bodies, decoded by the protocol crate as the
//! server's handlers do before they touch any state, then the checks the
//! CA core makes on what they carry (certificates, keys, reason codes),
//! plus the audit-log summary of the call.
//!
//! Input: a request line `METHOD PATH[?QUERY]`, a newline, then the body.
#![no_main]

use ironseal_ca_core::cert::{cert_issuer_der, cert_subject_der};
use ironseal_ca_core::constraints::GeneralSubtree;
use ironseal_ca_core::hierarchy_ops::{check_external_ca, decode_certificate, import_ca};
use ironseal_ca_core::keys::KeyAlgorithm;
use ironseal_ca_core::revocation::RevocationReason;
use ironseal_protocol::admin::{decode_request, summarize, AdminRequest, ReasonInput};
use libfuzzer_sys::fuzz_target;

fn reason(r: Option<ReasonInput>) {
    if let Some(ReasonInput::Code(c)) = r {
        let _ = RevocationReason::try_from(c);
    }
}

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
    let _ = summarize(query, body);
    let Ok(Some(decoded)) =
        decode_request::<KeyAlgorithm, GeneralSubtree>(method, path, query, body)
    else {
        return;
    };
    match decoded.request {
        AdminRequest::Revoke(r) => reason(r.reason),
        AdminRequest::BulkRevoke(r) => reason(r.reason),
        AdminRequest::ImportSignedCa(r) => {
            let _ = decode_certificate(r.certificate_pem.as_bytes());
        }
        AdminRequest::RegisterExternalCa(r) => {
            if let Ok(der) = decode_certificate(r.certificate_pem.as_bytes()) {
                let _ = (cert_subject_der(&der), cert_issuer_der(&der));
                let _ = check_external_ca(&der, &[], time::OffsetDateTime::now_utc());
            }
        }
        AdminRequest::ImportCa(r) => {
            let _ = import_ca(r.certificate_pem.as_bytes(), r.private_key_pem.as_bytes());
        }
        _ => {}
    }
});
