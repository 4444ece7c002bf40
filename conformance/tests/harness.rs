//! Self-checks of the harness that need no ACME server: the ARI certID
//! computation against certbot's own (acme.client._renewal_info_path_component),
//! and problem-type extraction.

use ironseal_conformance::certs;
use ironseal_conformance::clients::{acme_problem_types, venv};
use ironseal_conformance::proc;
use std::process::Command;
use std::time::Duration;

fn openssl(args: &[&str], dir: &std::path::Path) {
    let mut c = Command::new("openssl");
    c.args(args).current_dir(dir);
    proc::run(c, Duration::from_secs(30)).expect_success("openssl");
}

#[test]
fn ari_cert_id_matches_certbot() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path();
    std::fs::write(
        p.join("ext.cnf"),
        "subjectAltName=DNS:a.example.test\nauthorityKeyIdentifier=keyid:always\nsubjectKeyIdentifier=hash\n",
    )
    .expect("write");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        p,
    );
    // Serials with the high bit set (DER adds a 0x00 byte) and with a leading zero nibble.
    for (i, serial) in ["0x80a1b2c3d4e5f60718", "0x01020304", "0x7f"]
        .iter()
        .enumerate()
    {
        openssl(
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=leaf",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
            ],
            p,
        );
        let out = format!("leaf{i}.pem");
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "1",
                "-extfile",
                "ext.cnf",
                "-out",
                &out,
            ],
            p,
        );
        let ours = certs::ari_cert_id(&p.join(&out));
        let py = "import sys\nfrom cryptography import x509\nfrom acme.client import _renewal_info_path_component as f\n\
                  print(f(x509.load_pem_x509_certificate(open(sys.argv[1],'rb').read())))";
        let mut c = Command::new(venv().join("bin/python"));
        c.arg("-c").arg(py).arg(p.join(&out));
        let o = proc::run(c, Duration::from_secs(30));
        o.expect_success("python certID");
        assert_eq!(
            ours,
            o.stdout.trim(),
            "certID differs from certbot's for serial {serial}"
        );
    }
}

#[test]
fn acme_problem_types_are_extracted_from_client_output() {
    let t = "acme: error: 400 :: POST :: https://x/revoke :: urn:ietf:params:acme:error:alreadyRevoked :: gone.\n\
             \"type\": \"urn:ietf:params:acme:error:connection\",";
    assert_eq!(
        acme_problem_types(t),
        vec![
            "urn:ietf:params:acme:error:alreadyRevoked",
            "urn:ietf:params:acme:error:connection"
        ]
    );
}
