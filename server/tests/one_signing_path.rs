//! "No other code path signs with a CA key" (decision 0005): outside
//! `server/src/authority/`, the server's non-test code calls none of the CA
//! core's signing functions. Test modules (after `#[cfg(test)]`) may build
//! their own fixtures.

use std::path::{Path, PathBuf};

/// The CA core's functions that sign with a CA key (or make a key and sign
/// with it), and rcgen's signing calls.
const SIGNING_CALLS: &[&str] = &[
    "create_root(",
    "create_intermediate(",
    "cross_sign(",
    "intermediate_csr(",
    "issue_template(",
    "build_crl(",
    "build_partitioned_crl(",
    "issue_responder_cert(",
    "self_signed(",
    "signed_by(",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file before its test module, without comment lines.
fn production_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn only_the_authority_signs_with_ca_keys() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let authority = src.join("authority");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut offenders = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(&authority)) {
        let text = std::fs::read_to_string(f).expect("read source");
        // Whole test files (validation/tests.rs, admin/openapi_test.rs).
        if text.trim_start().starts_with("#![cfg(test)]")
            || f.file_stem().is_some_and(|s| {
                s.to_string_lossy().ends_with("tests") || s.to_string_lossy().ends_with("_test")
            })
        {
            continue;
        }
        let code = production_code(&text);
        for call in SIGNING_CALLS {
            if code.contains(call) {
                offenders.push(format!("{} calls {call}", f.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "signing outside the authority: {offenders:#?}"
    );
}

#[test]
fn the_scan_sees_the_authority_signing() {
    // The check above can fail: the authority itself does call these.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/authority/ca_ops.rs"),
    )
    .expect("read ca_ops.rs");
    let code = production_code(&text);
    assert!(code.contains("create_intermediate("));
    assert!(code.contains("cross_sign("));
}
