//! OCSP (RFC 6960, RFC 5019) and CRLs (RFC 5280 §5) of the real release
//! binary, checked with outside tools only: `openssl ocsp` (POST with nonce,
//! `-respin` for GET responses), `curl` (GET, caching headers, 304),
//! `openssl verify -crl_check[_all]`, and pkilint's `lint_crl` and
//! `lint_ocsp_response`. Certificates are issued and revoked through ACME
//! (instant-acme).
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test ocsp_crl`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use instant_acme::{RevocationReason, RevocationRequest};
use ironseal_conformance::prelude::*;
use ironseal_conformance::proc;
use rustls_pki_types::CertificateDer;

// ---------------------------------------------------------------------------
// Outside tools
// ---------------------------------------------------------------------------

fn tool(program: &str, args: &[&str]) -> proc::Output {
    let mut c = Command::new(program);
    c.args(args);
    let o = proc::run(c, Duration::from_secs(60));
    assert!(
        !o.stderr.starts_with("spawn failed"),
        "{program} could not run (is it installed?): {}",
        o.describe()
    );
    assert!(o.status.is_some(), "{program} {args:?} timed out");
    o
}

/// `lint_ocsp_response` (pkilint): no ERROR or FATAL finding.
fn lint_ocsp(resp: &Path) {
    pkilint_der("lint_ocsp_response", &[], resp);
}

/// One plain-HTTP exchange: status, lower-cased headers, body (also
/// written to `work/<tag>.body`).
struct Http {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// GET `url` (POST `body` when given) with `headers`, through the harness client.
fn fetch(
    url: &str,
    work: &Path,
    tag: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Http {
    let method = if body.is_some() { "POST" } else { "GET" };
    let r = HttpClient::new(ClientConfig::plain())
        .and_then(|c| c.request_blocking(method, url, headers, body.unwrap_or_default()))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(work.join(format!("{tag}.body")), &r.body).unwrap();
    Http {
        status: r.status,
        headers: r
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        body: r.body.to_vec(),
    }
}

/// `openssl ocsp` against the responder (POST, nonce unless `-no_nonce`
/// is in `args`); returns the combined output.
fn ocsp_post(url: &str, root: &Path, args: &[&str], respout: &Path) -> String {
    let mut all = vec![
        "ocsp",
        "-url",
        url,
        "-CAfile",
        p(root),
        "-respout",
        p(respout),
    ];
    all.extend_from_slice(args);
    all.extend(["-resp_text", "-timeout", "20"]);
    tool("openssl", &all).combined()
}

fn crl_text(crl_der: &Path) -> String {
    let o = tool(
        "openssl",
        &[
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-text",
            "-in",
            p(crl_der),
        ],
    );
    o.expect_success("openssl crl -text");
    o.stdout
}

fn crl_to_pem(crl_der: &Path) -> PathBuf {
    let out = crl_der.with_extension("pem");
    tool(
        "openssl",
        &["crl", "-inform", "DER", "-in", p(crl_der), "-out", p(&out)],
    )
    .expect_success("openssl crl DER → PEM");
    out
}

fn serials_in(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number:").map(norm_serial))
        .collect()
}

fn verify(args: &[&str], leaf: &Path) -> String {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    all.push(p(leaf));
    tool("openssl", &all).combined()
}

/// A throwaway P-256 CA made by openssl (`subj` e.g. "/CN=other").
fn openssl_ca(work: &Path, name: &str, subj: &str) -> PathBuf {
    openssl_self_signed(work, name, subj, 2, &[]).0
}

fn subject_of(cert: &Path) -> String {
    let o = tool(
        "openssl",
        &[
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "compat",
            "-in",
            p(cert),
        ],
    );
    o.expect_success("openssl x509 -subject");
    o.stdout
        .trim()
        .strip_prefix("subject=")
        .unwrap_or_else(|| panic!("no subject: {}", o.stdout))
        .trim()
        .to_string()
}

/// Percent-encoded standard base64 (RFC 6960 Appendix A.1).
fn get_path(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(der)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

struct Leaf {
    pem: PathBuf,
    serial: String,
    der: Vec<u8>,
}

async fn issue_leaf(env: &Env, acct: &instant_acme::Account, name: &str, work: &Path) -> Leaf {
    let c = issue(acct, &env.h01, None, &[dns(name)], None)
        .await
        .unwrap_or_else(|e| panic!("issue {name}: {e}"));
    let pem = work.join(format!("{name}.pem"));
    std::fs::write(&pem, c.leaf_pem()).unwrap();
    let inter = ironseal_conformance::certs::pem_blocks(&c.chain)
        .get(1)
        .cloned()
        .expect("chain has the intermediate");
    std::fs::write(work.join("inter.pem"), inter).unwrap();
    Leaf {
        pem,
        serial: der_serial(&c.leaf_der),
        der: c.leaf_der,
    }
}

async fn revoke(acct: &instant_acme::Account, leaf: &Leaf, reason: RevocationReason) {
    let der = CertificateDer::from(leaf.der.clone());
    acct.revoke(&RevocationRequest {
        certificate: &der,
        reason: Some(reason),
    })
    .await
    .unwrap_or_else(|e| panic!("revoke {}: {e}", leaf.serial));
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Three leaves through ACME, one revoked (keyCompromise): OCSP over POST
/// (nonce) and GET (RFC 5019, pre-signed, cache headers, 304), every
/// response status, CRL checks with `openssl verify`, pkilint on each CRL
/// and OCSP response, and the CRL number moving forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_and_crls_with_outside_tools() {
    let env = Env::start("ocsp-crl").await;
    let (acct, _) = env.account().await;
    let work = env.path().join("ocsp");
    std::fs::create_dir_all(&work).unwrap();
    let root = env.srv.root();
    let inter = work.join("inter.pem");
    let ocsp_url = format!("{}/ocsp", env.srv.http_base_url());

    let good = issue_leaf(&env, &acct, "good.ocsp.test", &work).await;
    let revoked = issue_leaf(&env, &acct, "revoked.ocsp.test", &work).await;
    let later = issue_leaf(&env, &acct, "later.ocsp.test", &work).await;
    let bundle = work.join("inter+root.pem");
    std::fs::write(
        &bundle,
        format!(
            "{}{}",
            std::fs::read_to_string(&inter).unwrap(),
            std::fs::read_to_string(&root).unwrap()
        ),
    )
    .unwrap();

    // The housekeeping loop builds every CA's CRLs at start, before any
    // request: the first fetch gets CRL number 1 from the cache.
    let log = env.srv.log_path();
    let built = blocking(|| {
        proc::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            let n = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("\"CRLs built\"")
                .count();
            (n >= 2).then_some(n)
        })
    });
    assert!(
        built.is_some(),
        "no scheduled CRL build at start:\n{}",
        env.srv.log_tail()
    );
    let leaf_crl_url = blocking(|| crl_dp(&good.pem));
    let inter_crl_url = blocking(|| crl_dp(&inter));
    assert_ne!(
        leaf_crl_url, inter_crl_url,
        "root and intermediate share a CRL"
    );
    let crl0 = blocking(|| crl_fetch(&leaf_crl_url, &work));
    let n0 = blocking(|| crl_number(&crl0));
    assert_eq!(n0, 1, "the first fetch must get the CRL built at start");
    let root_crl0 = blocking(|| crl_fetch(&inter_crl_url, &work));
    assert_eq!(blocking(|| crl_number(&root_crl0)), 1);
    assert!(blocking(|| serials_in(&crl_text(&crl0))).is_empty());

    revoke(&acct, &revoked, RevocationReason::KeyCompromise).await;

    blocking(|| {
        // --- OCSP POST with a nonce: good, revoked, unknown, unauthorized.
        let r = work.join("good.post.der");
        let out = ocsp_post(
            &ocsp_url,
            &root,
            &["-issuer", p(&inter), "-cert", p(&good.pem)],
            &r,
        );
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains(&format!("{}: good", p(&good.pem))), "{out}");
        assert!(out.contains("OCSP Nonce"), "nonce not echoed:\n{out}");
        assert!(!out.contains("WARNING"), "{out}");
        lint_ocsp(&r);

        let r = work.join("revoked.post.der");
        let out = ocsp_post(
            &ocsp_url,
            &root,
            &["-issuer", p(&inter), "-cert", p(&revoked.pem)],
            &r,
        );
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(
            out.contains(&format!("{}: revoked", p(&revoked.pem))),
            "{out}"
        );
        assert!(out.contains("Reason: keyCompromise"), "{out}");
        assert!(out.contains("Revocation Time:"), "{out}");
        lint_ocsp(&r);

        let r = work.join("unknown.post.der");
        let out = ocsp_post(
            &ocsp_url,
            &root,
            &["-issuer", p(&inter), "-serial", "0x1234"],
            &r,
        );
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains("0x1234: unknown"), "{out}");
        lint_ocsp(&r);

        // Nonce-less `unknown` (hardening item 6): signed once, then the
        // same bytes within `[ocsp] unknown_cache_secs`, never HTTP-cacheable.
        let ureq = work.join("unknown.get.req");
        tool(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                p(&inter),
                "-serial",
                "0x5678",
                "-no_nonce",
                "-reqout",
                p(&ureq),
            ],
        )
        .expect_success("openssl ocsp -reqout (unknown)");
        let url = format!("{ocsp_url}/{}", get_path(&std::fs::read(&ureq).unwrap()));
        let a = fetch(&url, &work, "unknown.get1", &[], None);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = fetch(&url, &work, "unknown.get2", &[], None);
        assert_eq!((a.status, b.status), (200, 200));
        assert_eq!(a.body, b.body, "an unknown answer is reused, not re-signed");
        assert_eq!(b.headers["cache-control"], "no-store");
        let uresp = work.join("unknown.get.der");
        std::fs::write(&uresp, &b.body).unwrap();
        let out = tool(
            "openssl",
            &[
                "ocsp",
                "-respin",
                p(&uresp),
                "-issuer",
                p(&inter),
                "-CAfile",
                p(&root),
                "-serial",
                "0x5678",
                "-no_nonce",
                "-resp_text",
            ],
        )
        .combined();
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains("0x5678: unknown"), "{out}");

        // An issuer that is not ours, and one that copies our
        // intermediate's name with another key: unauthorized (RFC 5019 §2.2.3).
        let other = openssl_ca(&work, "other", "/CN=someone else's CA");
        let inter_subject = subject_of(&inter);
        assert!(inter_subject.starts_with('/'), "{inter_subject}");
        let twin = openssl_ca(&work, "twin", &inter_subject);
        assert_eq!(subject_of(&twin), subject_of(&inter));
        for (name, ca) in [("other", &other), ("twin", &twin)] {
            let r = work.join(format!("{name}.post.der"));
            let out = ocsp_post(
                &ocsp_url,
                &root,
                &["-issuer", p(ca), "-serial", "0x1234"],
                &r,
            );
            assert!(
                out.contains("Responder Error: unauthorized"),
                "{name}: {out}"
            );
            lint_ocsp(&r);
        }

        // --- Nonce POSTs are signed live: two requests, two responses.
        let mut posted = Vec::new();
        for i in 0..2 {
            let req = work.join(format!("nonce{i}.req"));
            tool(
                "openssl",
                &[
                    "ocsp",
                    "-issuer",
                    p(&inter),
                    "-cert",
                    p(&good.pem),
                    "-reqout",
                    p(&req),
                ],
            )
            .expect_success("openssl ocsp -reqout");
            let h = fetch(
                &ocsp_url,
                &work,
                &format!("nonce{i}"),
                &[("Content-Type", "application/ocsp-request")],
                Some(std::fs::read(&req).unwrap()),
            );
            assert_eq!(h.status, 200);
            assert_eq!(h.headers["content-type"], "application/ocsp-response");
            assert_eq!(h.headers["cache-control"], "no-store");
            let resp = work.join(format!("nonce{i}.der"));
            std::fs::write(&resp, &h.body).unwrap();
            let out = tool(
                "openssl",
                &[
                    "ocsp",
                    "-reqin",
                    p(&req),
                    "-respin",
                    p(&resp),
                    "-issuer",
                    p(&inter),
                    "-CAfile",
                    p(&root),
                    "-resp_text",
                ],
            )
            .combined();
            // -reqin: openssl checks the echoed nonce against this request.
            assert!(
                out.contains("Response verify OK") && out.contains("Cert Status: good"),
                "{out}"
            );
            assert!(!out.contains("WARNING"), "nonce mismatch?\n{out}");
            lint_ocsp(&resp);
            posted.push(h.body);
        }
        assert_ne!(posted[0], posted[1], "nonce responses must be fresh");

        // --- GET (RFC 5019): pre-signed, cacheable, byte-identical, 304.
        for leaf in [&good, &revoked] {
            let name = leaf.pem.file_stem().unwrap().to_str().unwrap().to_string();
            let req = work.join(format!("{name}.get.req"));
            tool(
                "openssl",
                &[
                    "ocsp",
                    "-issuer",
                    p(&inter),
                    "-cert",
                    p(&leaf.pem),
                    "-no_nonce",
                    "-reqout",
                    p(&req),
                ],
            )
            .expect_success("openssl ocsp -reqout -no_nonce");
            let url = format!("{ocsp_url}/{}", get_path(&std::fs::read(&req).unwrap()));
            let a = fetch(&url, &work, &format!("{name}.get1"), &[], None);
            assert_eq!(a.status, 200, "GET {url}");
            assert_eq!(a.headers["content-type"], "application/ocsp-response");
            let cc = &a.headers["cache-control"];
            let max_age: i64 = cc
                .split(',')
                .find_map(|d| d.trim().strip_prefix("max-age="))
                .unwrap_or_else(|| panic!("no max-age in {cc}"))
                .parse()
                .unwrap();
            assert!(max_age > 0, "{cc}");
            assert!(cc.contains("public"), "{cc}");
            for h in ["last-modified", "expires", "etag"] {
                assert!(
                    a.headers.get(h).is_some_and(|v| !v.is_empty()),
                    "GET response lacks {h}: {:?}",
                    a.headers
                );
            }
            let resp = work.join(format!("{name}.get.der"));
            std::fs::write(&resp, &a.body).unwrap();
            let out = tool(
                "openssl",
                &[
                    "ocsp",
                    "-respin",
                    p(&resp),
                    "-issuer",
                    p(&inter),
                    "-CAfile",
                    p(&root),
                    "-cert",
                    p(&leaf.pem),
                    "-no_nonce",
                    "-resp_text",
                ],
            )
            .combined();
            assert!(out.contains("Response verify OK"), "{out}");
            let want = if std::ptr::eq(leaf, &good) {
                ": good"
            } else {
                ": revoked"
            };
            assert!(out.contains(want), "{want}: {out}");
            lint_ocsp(&resp);

            let b = fetch(&url, &work, &format!("{name}.get2"), &[], None);
            assert_eq!(b.status, 200);
            assert_eq!(
                a.body, b.body,
                "second GET must return the pre-signed bytes"
            );
            assert_eq!(a.headers["etag"], b.headers["etag"]);
            let inm = a.headers["etag"].clone();
            let c = fetch(
                &url,
                &work,
                &format!("{name}.get3"),
                &[("If-None-Match", &inm)],
                None,
            );
            assert_eq!(c.status, 304, "If-None-Match on OCSP GET");
            assert!(c.body.is_empty());
        }

        // --- CRLs from the URLs in the certificates.
        let inter_crl = crl_fetch(&leaf_crl_url, &work);
        let root_crl = crl_fetch(&inter_crl_url, &work);
        crl_check(&inter_crl, &bundle);
        crl_check(&root_crl, &root);
        let n1 = crl_number(&inter_crl);
        assert!(n1 > n0, "CRL number {n1} after a revocation, was {n0}");
        let text = crl_text(&inter_crl);
        let listed = serials_in(&text);
        assert_eq!(
            listed,
            BTreeSet::from([revoked.serial.clone()]),
            "intermediate CRL:\n{text}"
        );
        assert!(text.contains("Key Compromise"), "{text}");
        let (inter_pem, root_pem) = (crl_to_pem(&inter_crl), crl_to_pem(&root_crl));

        let base = [
            "-CAfile",
            p(&root),
            "-untrusted",
            p(&inter),
            "-purpose",
            "sslserver",
        ];
        let with = |extra: &[&str]| -> Vec<String> {
            base.iter()
                .chain(extra.iter())
                .map(|s| s.to_string())
                .collect()
        };
        let crl_check_args = with(&["-crl_check", "-CRLfile", p(&inter_pem)]);
        let crl_all_args = with(&[
            "-crl_check_all",
            "-CRLfile",
            p(&inter_pem),
            "-CRLfile",
            p(&root_pem),
        ]);
        for args in [&crl_check_args, &crl_all_args] {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = verify(&a, &good.pem);
            assert!(out.contains(": OK"), "verify {a:?} good leaf:\n{out}");
            let out = verify(&a, &revoked.pem);
            assert!(
                out.contains("certificate revoked") && !out.contains(": OK"),
                "verify {a:?} revoked leaf:\n{out}"
            );
        }
        // -crl_check_all without the root's CRL cannot succeed.
        let out = verify(
            &with(&["-crl_check_all", "-CRLfile", p(&inter_pem)])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &good.pem,
        );
        assert!(!out.contains(": OK"), "{out}");

        // --- CRL caching headers and 304.
        let h = fetch(&leaf_crl_url, &work, "crl1", &[], None);
        assert_eq!(h.status, 200);
        assert_eq!(h.headers["content-type"], "application/pkix-crl");
        for k in ["etag", "last-modified", "cache-control", "expires"] {
            assert!(h.headers.contains_key(k), "CRL lacks {k}: {:?}", h.headers);
        }
        assert!(h.headers["cache-control"].contains("max-age="));
        let inm = h.headers["etag"].clone();
        let h304 = fetch(
            &leaf_crl_url,
            &work,
            "crl2",
            &[("If-None-Match", &inm)],
            None,
        );
        assert_eq!(h304.status, 304, "If-None-Match on the CRL");
    });

    // Another revocation: the CRL number moves on and lists both; OCSP GET
    // is no longer served from the pre-revocation cache.
    revoke(&acct, &later, RevocationReason::Superseded).await;
    blocking(|| {
        let crl = crl_fetch(&leaf_crl_url, &work);
        let n2 = crl_number(&crl);
        let n1 = crl_number(&work.join("crl1.body"));
        assert!(
            n2 > n1,
            "CRL number {n2} after another revocation, was {n1}"
        );
        let listed = serials_in(&crl_text(&crl));
        assert_eq!(
            listed,
            BTreeSet::from([revoked.serial.clone(), later.serial.clone()])
        );
        crl_check(&crl, &bundle);
        let r = work.join("later.post.der");
        let out = ocsp_post(
            &ocsp_url,
            &root,
            &["-issuer", p(&inter), "-cert", p(&later.pem)],
            &r,
        );
        assert!(
            out.contains(": revoked") && out.contains("superseded"),
            "{out}"
        );
        lint_ocsp(&r);
    });
}

/// With N shards, each CA also serves `/crl/{ca}/{k}.crl` for k < N: a
/// critical issuingDistributionPoint naming that URL (onlyContainsUserCerts
/// for the pathLen-0 intermediate), disjoint shards whose union is the full
/// CRL, each pkilint-clean; k ≥ N is 404. The full CRL stays in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_crls_partition_the_full_crl() {
    const SHARDS: u32 = 4;
    let env = Env::start_with("crl-shards", &["--crl-shards", "4"]).await;
    let (acct, _) = env.account().await;
    let work = env.path().join("shards");
    std::fs::create_dir_all(&work).unwrap();
    let root = env.srv.root();
    let inter = work.join("inter.pem");
    let mut leaves = Vec::new();
    for i in 0..5 {
        leaves.push(issue_leaf(&env, &acct, &format!("s{i}.shard.test"), &work).await);
    }
    for leaf in &leaves[..4] {
        revoke(&acct, leaf, RevocationReason::Superseded).await;
    }
    blocking(|| {
        let bundle = work.join("inter+root.pem");
        std::fs::write(
            &bundle,
            format!(
                "{}{}",
                std::fs::read_to_string(&inter).unwrap(),
                std::fs::read_to_string(&root).unwrap()
            ),
        )
        .unwrap();
        // Each leaf names its own shard, /crl/{ca}/{k}.crl (RFC 5280
        // §4.2.1.13); the full CRL stays at /crl/{ca}.crl.
        let leaf_url = crl_dp(&leaves[0].pem);
        let (base, _) = leaf_url.rsplit_once('/').expect("…/crl/{ca}/{k}.crl");
        let base = base.to_string();
        let full_url = format!("{base}.crl");
        assert!(
            leaf_url.ends_with(".crl") && leaf_url != full_url,
            "leaf CRL DP must be a shard URL, got {leaf_url}"
        );
        let full = crl_fetch(&full_url, &work);
        let full_text = crl_text(&full);
        assert!(
            !full_text.contains("Issuing Distribution Point"),
            "{full_text}"
        );
        let all = serials_in(&full_text);
        let want: BTreeSet<String> = leaves[..4].iter().map(|l| l.serial.clone()).collect();
        assert_eq!(all, want);

        let mut union = BTreeSet::new();
        let mut total = 0;
        for k in 0..SHARDS {
            let url = format!("{base}/{k}.crl");
            let f = crl_fetch(&url, &work);
            let text = crl_text(&f);
            assert!(
                text.contains("X509v3 Issuing Distribution Point: critical"),
                "shard {k}:\n{text}"
            );
            assert!(text.contains(&format!("URI:{url}")), "shard {k}:\n{text}");
            assert!(
                text.contains("Only User Certificates"),
                "shard {k}:\n{text}"
            );
            crl_check(&f, &bundle);
            let s = serials_in(&text);
            total += s.len();
            union.extend(s);
            let h = fetch(&url, &work, &format!("shard{k}"), &[], None);
            assert_eq!(h.status, 200);
            assert!(h.headers.contains_key("etag"));
        }
        assert_eq!(total, union.len(), "a serial is in two shards");
        // Every revoked leaf is listed by exactly the shard its certificate names.
        for leaf in &leaves[..4] {
            let url = crl_dp(&leaf.pem);
            assert!(url.starts_with(&format!("{base}/")), "{url}");
            let listed = serials_in(&crl_text(&crl_fetch(&url, &work)));
            assert!(
                listed.contains(&leaf.serial),
                "{} not listed by its own shard {url}",
                leaf.serial
            );
        }
        assert_eq!(union, all, "shards do not add up to the full CRL");
        let h = fetch(&format!("{base}/{SHARDS}.crl"), &work, "noshard", &[], None);
        assert_eq!(h.status, 404);

        // The root's shards: it certifies a CA, so no onlyContainsUserCerts.
        let root_url = crl_dp(&inter);
        let rbase = root_url.strip_suffix(".crl").unwrap();
        let f = crl_fetch(&format!("{rbase}/0.crl"), &work);
        let text = crl_text(&f);
        assert!(
            text.contains("Issuing Distribution Point: critical")
                && !text.contains("Only User Certificates"),
            "{text}"
        );
        crl_check(&f, &root);
    });
}

/// A CRL rebuild with `[crl] stage_log_entries` revocations or more logs
/// its two stages in the human log format (issue 12: long work shows
/// progress); JSON logs never get them, and below the threshold (default
/// 50,000) a human log does not either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_crl_rebuilds_log_their_stages_in_human_format_only() {
    let mut env = Env::start_with_config("crl-stages", "[crl]\nstage_log_entries = 1\n").await;
    let work = env.path().join("stages");
    std::fs::create_dir_all(&work).unwrap();
    let (acct, _) = env.account().await;
    // CRLs are kept in the store across restarts: each start revokes one
    // more leaf, so the fetch after it rebuilds.
    let mut leaves = Vec::new();
    for n in 0..3 {
        leaves.push(issue_leaf(&env, &acct, &format!("stages{n}.crl.test"), &work).await);
    }
    let url = blocking(|| crl_dp(&leaves[0].pem));
    let fetch_log = |env: &Env, leaf: &Leaf| {
        let (serials, text) = blocking(|| crl_serials(&url, &work));
        assert!(serials.contains(&leaf.serial), "{text}");
        env.srv.log_tail()
    };
    revoke(&acct, &leaves[0], RevocationReason::KeyCompromise).await;
    const STAGE1: &str = "CRL rebuild 1/2: revocations read";
    const STAGE2: &str = "CRL rebuild 2/2: encoding and signing";

    let json_log = fetch_log(&env, &leaves[0]);
    assert!(!json_log.contains("CRL rebuild 1/2"), "{json_log}");

    blocking(|| env.srv.stop());
    env.srv.log_format = "human";
    blocking(|| env.srv.start());
    revoke(&acct, &leaves[1], RevocationReason::KeyCompromise).await;
    let human_log = fetch_log(&env, &leaves[1]);
    assert!(
        human_log.contains(STAGE1) && human_log.contains(STAGE2),
        "no CRL stage lines in the human log:\n{human_log}"
    );

    blocking(|| env.srv.stop());
    env.srv.set_config("");
    blocking(|| env.srv.start());
    revoke(&acct, &leaves[2], RevocationReason::KeyCompromise).await;
    let below = fetch_log(&env, &leaves[2]);
    assert!(
        !below.contains("CRL rebuild 1/2"),
        "stage lines below the default threshold:\n{below}"
    );
}
