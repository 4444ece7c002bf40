//! SCEP PKIMessages captured from micromdm's scepclient 2.1 (Debian
//! `scep`), see `vectors/scep/README.md`.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use der::Decode;
use ironseal_protocol::pkcs7::certificates_of;
use ironseal_protocol::scep::{
    challenge_password, decrypt_envelope, CertRep, CertRepView, ContentCipher, DigestAlg, FailInfo,
    MessageType, PkiMessage, RaKey, Reply, ScepError, SignerCertificate,
};
use x509_cert::Certificate;

const PKCSREQ: &[u8] = include_bytes!("vectors/scep/scepclient-2.1-pkcsreq.der");
const RENEWAL: &[u8] = include_bytes!("vectors/scep/scepclient-2.1-renewalreq.der");
const ISSUED: &[u8] = include_bytes!("vectors/scep/scepclient-2.1-issued.der");
const CLIENT_KEY: &[u8] = include_bytes!("vectors/scep/scepclient-2.1-client.pk8");
const RA_CERT: &[u8] = include_bytes!("vectors/scep/micromdm-ca-ra.der");
const RA_KEY: &[u8] = include_bytes!("vectors/scep/micromdm-ca-ra.pk8");

fn ra() -> RaKey {
    RaKey::new(RA_CERT, RA_KEY).unwrap()
}

#[test]
fn pkcsreq_decodes_verifies_and_decrypts() {
    let msg = PkiMessage::decode(PKCSREQ).unwrap();
    assert_eq!(msg.attributes.message_type, MessageType::PkcsReq);
    assert!(!msg.attributes.transaction_id.is_empty());
    assert_eq!(msg.attributes.sender_nonce.len(), 16);
    assert_eq!(msg.digest, DigestAlg::Sha1);
    let opened = decrypt_envelope(&ra(), &msg.envelope, &SystemRandom::new()).unwrap();
    assert_eq!(opened.cipher, ContentCipher::Des);
    assert_eq!(
        challenge_password(&opened.content).unwrap().as_deref(),
        Some("secret")
    );
}

#[test]
fn renewalreq_is_signed_by_the_issued_certificate() {
    let msg = PkiMessage::decode(RENEWAL).unwrap();
    assert_eq!(msg.attributes.message_type, MessageType::RenewalReq);
    assert_eq!(msg.signer_cert_der, ISSUED);
    let opened = decrypt_envelope(&ra(), &msg.envelope, &SystemRandom::new()).unwrap();
    // scepclient reuses its saved CSR (csr.pem), challenge included.
    assert_eq!(
        challenge_password(&opened.content).unwrap().as_deref(),
        Some("secret")
    );
}

#[test]
fn a_flipped_signature_bit_is_bad_message_check() {
    let mut bad = PKCSREQ.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = PkiMessage::decode(&bad).unwrap_err();
    assert!(matches!(err, ScepError::BadSignature), "{err:?}");
    assert_eq!(err.fail_info(), FailInfo::BadMessageCheck);
}

#[test]
fn tampered_content_fails_the_message_digest() {
    let msg = PkiMessage::decode(PKCSREQ).unwrap();
    let pos = PKCSREQ
        .windows(msg.envelope.len())
        .position(|w| w == msg.envelope.as_slice())
        .unwrap();
    let mut bad = PKCSREQ.to_vec();
    bad[pos + msg.envelope.len() - 3] ^= 0x40;
    assert!(matches!(
        PkiMessage::decode(&bad),
        Err(ScepError::BadSignature)
    ));
}

#[test]
fn garbage_and_truncation_are_refused_without_panicking() {
    for n in [0, 1, 10, 100, PKCSREQ.len() / 2, PKCSREQ.len() - 1] {
        assert!(PkiMessage::decode(&PKCSREQ[..n]).is_err());
    }
    let err = PkiMessage::decode(b"not cms").unwrap_err();
    assert_eq!(err.fail_info(), FailInfo::BadRequest);
}

#[test]
fn an_envelope_for_another_key_does_not_open() {
    // The client's own key is not the RA's: PKCS#1 v1.5 implicit rejection
    // turns that into a content error, not a distinguishable key error.
    let msg = PkiMessage::decode(PKCSREQ).unwrap();
    let other = RaKey::new(ISSUED, CLIENT_KEY).unwrap();
    let err = decrypt_envelope(&other, &msg.envelope, &SystemRandom::new()).unwrap_err();
    assert_eq!(err.fail_info(), FailInfo::BadMessageCheck);
}

#[test]
fn success_certrep_round_trips_with_the_clients_cipher() {
    let msg = PkiMessage::decode(PKCSREQ).unwrap();
    let recipient = SignerCertificate::from_der(ISSUED).unwrap();
    let rng = SystemRandom::new();
    for cipher in [ContentCipher::Aes256, ContentCipher::Des3] {
        let reply = Reply {
            transaction_id: &msg.attributes.transaction_id,
            recipient_nonce: &msg.attributes.sender_nonce,
            digest: msg.digest,
        };
        let rep = CertRep::Success {
            certs: vec![ISSUED],
            crls: vec![],
            recipient: &recipient,
            cipher,
        }
        .encode(reply, &ra(), Duration::from_secs(1_800_000_000), &rng)
        .unwrap();
        let view = CertRepView::decode(&rep).unwrap();
        assert_eq!(view.pki_status, "0");
        assert_eq!(view.fail_info, None);
        assert_eq!(view.attributes.message_type, MessageType::CertRep);
        assert_eq!(
            view.attributes.transaction_id,
            msg.attributes.transaction_id
        );
        assert_eq!(
            view.recipient_nonce.as_deref(),
            Some(msg.attributes.sender_nonce.as_slice())
        );
        assert_ne!(view.attributes.sender_nonce, msg.attributes.sender_nonce);
        assert_eq!(view.signer_cert_der, RA_CERT);
        let client = RaKey::new(ISSUED, CLIENT_KEY).unwrap();
        let opened = decrypt_envelope(&client, &view.envelope.unwrap(), &rng).unwrap();
        assert_eq!(opened.cipher, cipher);
        assert_eq!(
            certificates_of(&opened.content).unwrap(),
            vec![ISSUED.to_vec()]
        );
    }
}

#[test]
fn failure_and_pending_certreps_carry_status_and_fail_info() {
    let rng = SystemRandom::new();
    let reply = Reply {
        transaction_id: "tx-1",
        recipient_nonce: &[1; 16],
        digest: DigestAlg::Sha256,
    };
    let now = Duration::from_secs(1_800_000_000);
    let rep = CertRep::Failure(FailInfo::BadRequest)
        .encode(reply, &ra(), now, &rng)
        .unwrap();
    let view = CertRepView::decode(&rep).unwrap();
    assert_eq!(
        (view.pki_status.as_str(), view.fail_info.as_deref()),
        ("2", Some("2"))
    );
    assert!(view.envelope.is_none());
    let rep = CertRep::Pending.encode(reply, &ra(), now, &rng).unwrap();
    let view = CertRepView::decode(&rep).unwrap();
    assert_eq!((view.pki_status.as_str(), view.fail_info), ("3", None));
}

/// scepclient reused a cached self-signed certificate (`self.pem`) of
/// another key: the signature does not verify with the certificate sent.
#[test]
fn a_signer_certificate_of_another_key_is_bad_message_check() {
    const STALE: &[u8] = include_bytes!("vectors/scep/scepclient-2.1-pkcsreq-stale-signer.der");
    let err = PkiMessage::decode(STALE).unwrap_err();
    assert!(matches!(err, ScepError::BadSignature), "{err:?}");
}

/// openssl, an independent CMS implementation, verifies the CertRep's RA
/// signature and opens its envelope for each cipher we answer with.
#[test]
fn openssl_verifies_and_decrypts_our_certreps() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("client.pk8"), CLIENT_KEY).unwrap();
    std::fs::write(p("client.der"), ISSUED).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        "client.pk8",
        "-out",
        "client.key",
    ]);
    run(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        "client.der",
        "-out",
        "client.pem",
    ]);
    let msg = PkiMessage::decode(PKCSREQ).unwrap();
    let recipient = SignerCertificate::from_der(ISSUED).unwrap();
    for cipher in [
        ContentCipher::Aes128,
        ContentCipher::Aes256,
        ContentCipher::Des3,
    ] {
        let rep = CertRep::Success {
            certs: vec![ISSUED],
            crls: vec![],
            recipient: &recipient,
            cipher,
        }
        .encode(
            Reply {
                transaction_id: &msg.attributes.transaction_id,
                recipient_nonce: &msg.attributes.sender_nonce,
                digest: DigestAlg::Sha256,
            },
            &ra(),
            Duration::from_secs(1_800_000_000),
            &SystemRandom::new(),
        )
        .unwrap();
        std::fs::write(p("rep.der"), &rep).unwrap();
        run(&[
            "cms",
            "-verify",
            "-noverify",
            "-inform",
            "DER",
            "-in",
            "rep.der",
            "-binary",
            "-out",
            "env.der",
        ]);
        run(&[
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            "env.der",
            "-recip",
            "client.pem",
            "-inkey",
            "client.key",
            "-binary",
            "-out",
            "p7.der",
        ]);
        let p7 = std::fs::read(p("p7.der")).unwrap();
        assert_eq!(
            certificates_of(&p7).unwrap(),
            vec![ISSUED.to_vec()],
            "{cipher:?}"
        );
    }
}

/// A request we build (as the conformance suite and benchmark do) is one
/// the server's decoder verifies and opens, for every message type.
#[test]
fn built_requests_decode_verify_and_open() {
    use ironseal_protocol::scep::{issuer_and_serial, parse_issuer_and_serial, Request};
    let client = RaKey::new(ISSUED, CLIENT_KEY).unwrap();
    let ra_cert = Certificate::from_der(RA_CERT).unwrap();
    let rng = SystemRandom::new();
    let content = issuer_and_serial(ISSUED).unwrap();
    for (kind, cipher, digest) in [
        (
            MessageType::GetCert,
            ContentCipher::Aes128,
            DigestAlg::Sha256,
        ),
        (MessageType::GetCrl, ContentCipher::Des3, DigestAlg::Sha512),
        (
            MessageType::CertPoll,
            ContentCipher::Aes256,
            DigestAlg::Sha256,
        ),
    ] {
        let (der, nonce) = Request {
            message_type: kind,
            transaction_id: "tx-1",
            content: &content,
            recipient: &ra_cert,
            cipher,
            digest,
        }
        .encode(&client, Duration::from_secs(1_800_000_000), &rng)
        .unwrap();
        let msg = PkiMessage::decode(&der).unwrap();
        assert_eq!(msg.attributes.message_type, kind);
        assert_eq!(msg.attributes.transaction_id, "tx-1");
        assert_eq!(msg.attributes.sender_nonce, nonce);
        assert_eq!(msg.digest, digest);
        assert_eq!(msg.signer_cert_der, ISSUED);
        let opened = decrypt_envelope(&ra(), &msg.envelope, &rng).unwrap();
        assert_eq!(opened.cipher, cipher);
        assert_eq!(opened.content, content);
        let ias = parse_issuer_and_serial(&opened.content).unwrap();
        let issued = Certificate::from_der(ISSUED).unwrap();
        assert_eq!(&ias.serial_number, issued.tbs_certificate().serial_number());
    }
    // SHA-1 is read, never written.
    assert!(Request {
        message_type: MessageType::GetCert,
        transaction_id: "tx-1",
        content: &content,
        recipient: &ra_cert,
        cipher: ContentCipher::Aes128,
        digest: DigestAlg::Sha1,
    }
    .encode(&client, Duration::from_secs(1_800_000_000), &rng)
    .is_err());
}

/// certmonger signs with a transient certificate whose serial is 32
/// octets (its transactionID): the message verifies, and a CertRep is
/// encrypted to that certificate under the serial it gave itself.
#[test]
fn certmonger_signer_with_a_32_octet_serial_is_accepted_and_answered() {
    const CERTMONGER: &[u8] = include_bytes!("vectors/scep/certmonger-0.79-pkcsreq.der");
    let msg = PkiMessage::decode(CERTMONGER).unwrap();
    assert_eq!(msg.attributes.message_type, MessageType::PkcsReq);
    assert_eq!(msg.digest, DigestAlg::Sha256);
    let serial = msg
        .signer_cert
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .to_vec();
    assert_eq!(serial.len(), 33, "sign byte + 32 octets");
    assert!(
        Certificate::from_der(&msg.signer_cert_der).is_err(),
        "the RFC 5280 profile refuses it, which is why the signer is read leniently"
    );

    let ra = ra();
    let issued = ISSUED.to_vec();
    let rep = CertRep::Success {
        certs: vec![&issued],
        crls: vec![],
        recipient: &msg.signer_cert,
        cipher: ContentCipher::Aes256,
    }
    .encode(
        Reply {
            transaction_id: &msg.attributes.transaction_id,
            recipient_nonce: &msg.attributes.sender_nonce,
            digest: msg.digest,
        },
        &ra,
        Duration::from_secs(1_800_000_000),
        &SystemRandom::new(),
    )
    .unwrap();
    let view = CertRepView::decode(&rep).unwrap();
    let envelope = view.envelope.unwrap();
    // The recipient is named by issuer and the full serial (RFC 5652
    // §6.2.1), so the client finds its key.
    let hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        envelope
            .windows(serial.len())
            .any(|w| w == serial.as_slice()),
        "serial {hex} missing from the envelope"
    );
}
