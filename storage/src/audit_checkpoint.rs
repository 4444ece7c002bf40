//! Signed checkpoints of the audit head.
//!
//! A keyed chain ([`crate::audit`]) stops a database writer from forging
//! entries, but not from cutting the tail off or from putting back an
//! older copy of the whole log. A checkpoint pins the head at one moment,
//! signed with a P-256 key (kept sealed under the KEK like the CA keys), in
//! a file or a log line that operators ship away from the CA host. A later
//! log that no longer reaches the checkpoint's `seq`, or whose entry at
//! that `seq` has another hash, does not match it.
//!
//! File format (JSON; one checkpoint per line in the periodic file):
//!
//! ```text
//! {"checkpoint": {"format": "ironseal-audit-checkpoint/1", "seq": N,
//!                 "hash": "<entry_hash of entry N>", "at": "<RFC 3339>",
//!                 "keyedFrom": K | null},
//!  "signature": "<base64 DER ECDSA-P256-SHA256 over the canonical JSON
//!                 of the checkpoint member>",
//!  "publicKey": "<PEM SubjectPublicKeyInfo of the signing key>"}
//! ```
//!
//! The canonical JSON is [`crate::audit::canonical_json`] (sorted keys, no
//! whitespace): `jq -cjS .checkpoint` prints the same bytes, so the
//! signature can be checked offline with `openssl dgst -sha256 -verify`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::audit::{canonical_json, AuditHead};

/// The `format` member of checkpoints made by this version.
pub const CHECKPOINT_FORMAT: &str = "ironseal-audit-checkpoint/1";

/// DER prefix of a P-256 SubjectPublicKeyInfo (RFC 5480 §2): SEQUENCE {
/// SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) }
/// followed by the 65-octet uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// What a checkpoint states: the head at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckpointBody {
    /// [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// The head's seq.
    pub seq: u64,
    /// The head's entry hash (lowercase hex).
    pub hash: String,
    /// When the checkpoint was made.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The first keyed entry of the chain, if it is keyed.
    pub keyed_from: Option<u64>,
}

/// A signed checkpoint (the file format above).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    /// What is signed.
    pub checkpoint: CheckpointBody,
    /// Base64 DER ECDSA signature (P-256, SHA-256) over the canonical JSON
    /// of `checkpoint`.
    pub signature: String,
    /// PEM SubjectPublicKeyInfo of the signing key.
    pub public_key: String,
}

/// Why a checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not a checkpoint document.
    #[error("not an audit checkpoint: {0}")]
    Format(String),
    /// Signed by another key than the one expected.
    #[error("the checkpoint is signed by another key than this server's checkpoint key (forged, or from another CA)")]
    OtherKey,
    /// The signature does not verify.
    #[error("the checkpoint's signature does not verify (forged or edited)")]
    Signature,
    /// The log no longer reaches the checkpoint.
    #[error(
        "the log ends at entry {head_seq}, before the checkpoint's entry {seq} (truncated log)"
    )]
    Truncated {
        /// The checkpoint's seq.
        seq: u64,
        /// The log's last seq.
        head_seq: u64,
    },
    /// The entry at the checkpoint's seq has another hash.
    #[error("entry {seq} does not have the checkpoint's hash (the log up to the checkpoint was rewritten)")]
    Mismatch {
        /// The checkpoint's seq.
        seq: u64,
    },
}

/// The checkpoint signing key.
#[derive(Debug)]
pub struct CheckpointSigner {
    pair: EcdsaKeyPair,
    spki: Vec<u8>,
}

impl CheckpointSigner {
    /// A new random key, and its PKCS#8 document to seal.
    pub fn generate() -> Result<(CheckpointSigner, Vec<u8>), String> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| "cannot generate a P-256 key".to_string())?;
        let pkcs8 = doc.as_ref().to_vec();
        Ok((CheckpointSigner::from_pkcs8(&pkcs8)?, pkcs8))
    }

    /// Loads a key from its PKCS#8 document.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<CheckpointSigner, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)
            .map_err(|e| format!("checkpoint key: {e}"))?;
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        Ok(CheckpointSigner { pair, spki })
    }

    /// SubjectPublicKeyInfo DER of the key.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// PEM of [`CheckpointSigner::public_key_der`].
    pub fn public_key_pem(&self) -> String {
        spki_pem(&self.spki)
    }

    /// Signs a checkpoint of `head` at `at`.
    pub fn sign(
        &self,
        head: &AuditHead,
        keyed_from: Option<u64>,
        at: OffsetDateTime,
    ) -> Result<Checkpoint, String> {
        let body = CheckpointBody {
            format: CHECKPOINT_FORMAT.into(),
            seq: head.seq,
            hash: head.hash.clone(),
            // Whole seconds: RFC 3339 round trips exactly.
            at: at.replace_nanosecond(0).map_err(|e| e.to_string())?,
            keyed_from,
        };
        let sig = self
            .pair
            .sign(&SystemRandom::new(), &signed_bytes(&body)?)
            .map_err(|_| "cannot sign the checkpoint".to_string())?;
        Ok(Checkpoint {
            checkpoint: body,
            signature: STANDARD.encode(sig.as_ref()),
            public_key: self.public_key_pem(),
        })
    }
}

fn signed_bytes(body: &CheckpointBody) -> Result<Vec<u8>, String> {
    let v = serde_json::to_value(body).map_err(|e| e.to_string())?;
    Ok(canonical_json(&v).into_bytes())
}

/// PEM "PUBLIC KEY" of a SubjectPublicKeyInfo DER.
fn spki_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

/// The DER inside a PEM "PUBLIC KEY" (e.g. a pinned checkpoint key).
pub fn spki_from_pem(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")?
        .strip_suffix("-----END PUBLIC KEY-----")?
        .split_whitespace()
        .collect();
    STANDARD.decode(body).ok()
}

impl Checkpoint {
    /// Parses a checkpoint file: one JSON document, or JSON lines (the
    /// periodic file) of which the last one counts.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        if let Ok(cp) = serde_json::from_str::<Checkpoint>(text) {
            return cp.checked_format();
        }
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| CheckpointError::Format("empty".into()))?;
        serde_json::from_str::<Checkpoint>(last)
            .map_err(|e| CheckpointError::Format(e.to_string()))?
            .checked_format()
    }

    fn checked_format(self) -> Result<Checkpoint, CheckpointError> {
        if self.checkpoint.format != CHECKPOINT_FORMAT {
            return Err(CheckpointError::Format(format!(
                "unknown format {:?}",
                self.checkpoint.format
            )));
        }
        Ok(self)
    }

    /// Checks the signature with `public_key_der` (SubjectPublicKeyInfo of
    /// the expected key), never with the key the file names: a forger
    /// would name their own.
    pub fn verify_signature(&self, public_key_der: &[u8]) -> Result<(), CheckpointError> {
        if spki_from_pem(&self.public_key).as_deref() != Some(public_key_der) {
            return Err(CheckpointError::OtherKey);
        }
        let point = public_key_der
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .ok_or(CheckpointError::OtherKey)?;
        let sig = STANDARD
            .decode(self.signature.trim())
            .map_err(|_| CheckpointError::Signature)?;
        let msg = signed_bytes(&self.checkpoint).map_err(CheckpointError::Format)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(&msg, &sig)
            .map_err(|_| CheckpointError::Signature)
    }

    /// Checks the log against the checkpoint: `head` is the log's head and
    /// `entry_hash` the hash of its entry at the checkpoint's seq (`None`
    /// if there is none). The chain itself is verified separately.
    pub fn matches(
        &self,
        head: Option<&AuditHead>,
        entry_hash: Option<&str>,
    ) -> Result<(), CheckpointError> {
        let seq = self.checkpoint.seq;
        let head_seq = head.map_or(0, |h| h.seq);
        if head_seq < seq {
            return Err(CheckpointError::Truncated { seq, head_seq });
        }
        if seq > 0 && entry_hash != Some(self.checkpoint.hash.as_str()) {
            return Err(CheckpointError::Mismatch { seq });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn head(seq: u64) -> AuditHead {
        AuditHead {
            seq,
            hash: format!("{seq:064x}"),
        }
    }

    #[test]
    fn signed_checkpoints_verify_and_forgeries_do_not() {
        let (signer, pkcs8) = CheckpointSigner::generate().unwrap();
        let again = CheckpointSigner::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(again.public_key_der(), signer.public_key_der());
        let cp = signer
            .sign(&head(7), Some(1), OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        let text = serde_json::to_string_pretty(&cp).unwrap();
        let parsed = Checkpoint::parse(&text).unwrap();
        assert_eq!(parsed, cp);
        parsed.verify_signature(signer.public_key_der()).unwrap();
        // JSON lines: the last line counts.
        let older = signer
            .sign(&head(3), Some(1), OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        let lines = format!(
            "{}\n{}\n",
            serde_json::to_string(&older).unwrap(),
            serde_json::to_string(&cp).unwrap()
        );
        assert_eq!(Checkpoint::parse(&lines).unwrap(), cp);
        // An edited checkpoint.
        let mut edited = cp.clone();
        edited.checkpoint.seq = 3;
        assert_eq!(
            edited.verify_signature(signer.public_key_der()),
            Err(CheckpointError::Signature)
        );
        // A checkpoint signed by another key that names that key.
        let (forger, _) = CheckpointSigner::generate().unwrap();
        let forged = forger
            .sign(&head(7), Some(1), OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(
            forged.verify_signature(signer.public_key_der()),
            Err(CheckpointError::OtherKey)
        );
        // ... or that names ours.
        let mut swapped = forged.clone();
        swapped.public_key = signer.public_key_pem();
        assert_eq!(
            swapped.verify_signature(signer.public_key_der()),
            Err(CheckpointError::Signature)
        );
        assert!(Checkpoint::parse("{}").is_err());
        assert!(Checkpoint::parse("").is_err());
    }

    #[test]
    fn checkpoints_match_the_log() {
        let (signer, _) = CheckpointSigner::generate().unwrap();
        let cp = signer
            .sign(&head(7), None, OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        let h7 = head(7).hash;
        assert_eq!(cp.matches(Some(&head(9)), Some(&h7)), Ok(()));
        assert_eq!(
            cp.matches(Some(&head(5)), None),
            Err(CheckpointError::Truncated {
                seq: 7,
                head_seq: 5
            })
        );
        assert_eq!(
            cp.matches(Some(&head(9)), Some(&head(8).hash)),
            Err(CheckpointError::Mismatch { seq: 7 })
        );
    }
}
