//! SCEP GetNextCACert (RFC 8894 §4.7) around a CA rollover: before it,
//! GetCACaps does not offer the capability and GetNextCACert is 404; after
//! `cas rollover` (without `--activate`) GetCACaps lists it and the answer
//! is a SignedData by the RA, which openssl verifies against the root,
//! whose content is a certificates-only SignedData with the successor
//! (`… G2`, the certificate the admin API shows) and its chain. Once the
//! successor is activated there is no next CA again.
//! (micromdm's scepclient 2.1 has no GetNextCACert operation, so openssl
//! reads the answer.)

use std::path::Path;
use std::process::Command;

use ironseal_conformance::prelude::*;

const CONFIG: &str = r#"
ca_key_algorithm = "rsa3072"

[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth", "clientAuth"]

[[profiles]]
name = "devices"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]

[[scep.profiles]]
path = "devices"
profile = "devices"
challenge = "next-ca-challenge"
"#;

/// GET `url`: (status, content type, body).
fn get(url: &str) -> (u16, String, Vec<u8>) {
    let o = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{content_type}",
            url,
        ])
        .output()
        .expect("curl");
    assert!(o.status.success(), "curl {url}");
    let out = o.stdout;
    let split = out.iter().rposition(|&b| b == b'\n').expect("trailer");
    let trailer = String::from_utf8_lossy(&out[split + 1..]).to_string();
    let (code, ctype) = trailer.split_once(' ').unwrap_or((&trailer, ""));
    (
        code.parse().expect("status"),
        ctype.to_string(),
        out[..split].to_vec(),
    )
}

fn openssl(args: &[&str], dir: &Path) -> String {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn caps(base: &str) -> String {
    let (status, _, body) = get(&format!("{base}?operation=GetCACaps"));
    assert_eq!(status, 200);
    String::from_utf8(body).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_next_ca_cert_follows_a_rollover() {
    let env = Env::start_with_config("scep-next-ca", CONFIG).await;
    let srv = &env.srv;
    let base = format!("{}/scep/devices", srv.http_base_url());
    let work = env.path().join("next-ca");
    std::fs::create_dir_all(&work).expect("mkdir");

    // No rollover: not offered, 404 with a reason.
    assert!(
        !caps(&base).lines().any(|l| l == "GetNextCACert"),
        "{}",
        caps(&base)
    );
    let (status, _, body) = get(&format!("{base}?operation=GetNextCACert"));
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("no CA rollover"));

    // Rollover without activation: the successor waits.
    let list = admin_ok(srv, &["cas", "list"]);
    let current = issuing_in(&list)["id"].as_str().expect("id").to_string();
    let g2 = admin_ok(srv, &["cas", "rollover", &current]);
    let g2_id = g2["id"].as_str().expect("id").to_string();
    assert!(
        g2["name"].as_str().unwrap_or_default().ends_with("G2"),
        "{g2:#}"
    );
    assert!(
        caps(&base).lines().any(|l| l == "GetNextCACert"),
        "{}",
        caps(&base)
    );

    let (status, ctype, body) = get(&format!("{base}?operation=GetNextCACert"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/x-x509-next-ca-cert");
    std::fs::write(work.join("next.der"), &body).expect("write");
    // The RA's chain: GetCACert's certificates.
    let (_, _, cacert) = get(&format!("{base}?operation=GetCACert"));
    std::fs::write(work.join("cacert.p7b"), &cacert).expect("write");
    openssl(
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "cacert.p7b",
            "-print_certs",
            "-out",
            "chain.pem",
        ],
        &work,
    );
    // Trusted: the root and the current CA, as a client that enrolled
    // knows them (openssl cms takes no untrusted chain for the signer).
    let mut bundle = std::fs::read_to_string(srv.root()).expect("root");
    bundle.push_str(&std::fs::read_to_string(work.join("chain.pem")).expect("chain"));
    std::fs::write(work.join("trusted.pem"), bundle).expect("write");
    openssl(
        &[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            "next.der",
            "-CAfile",
            "trusted.pem",
            "-purpose",
            "any",
            "-out",
            "inner.der",
        ],
        &work,
    );
    let inner = openssl(
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "inner.der",
            "-print_certs",
        ],
        &work,
    );
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    assert!(
        norm(&inner).contains(&norm(
            g2["certificatePem"]
                .as_str()
                .expect("certificatePem")
                .trim_start_matches("-----BEGIN CERTIFICATE-----")
                .trim_end()
                .trim_end_matches("-----END CERTIFICATE-----")
        )),
        "the successor is not in the answer:\n{inner}"
    );
    assert!(inner.contains("G2"), "{inner}");

    // Once the successor issues, there is no next CA.
    admin_ok(srv, &["cas", "activate", &g2_id]);
    let (status, _, _) = get(&format!("{base}?operation=GetNextCACert"));
    assert_eq!(status, 404);
    assert!(!caps(&base).lines().any(|l| l == "GetNextCACert"));
}
