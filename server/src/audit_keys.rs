//! The audit log's keys (issue 10 item 14): the MAC key that every new
//! entry carries a MAC under, and the P-256 key that signs checkpoints of
//! the head (see `ironseal_storage::audit` and `audit_checkpoint`).
//!
//! Both are made on the first start of a store (or the first start of this
//! version on an older store), kept in the store sealed under the KEK like
//! the CA keys, never in clear. The sealing binds each key's name and the
//! first audit seq it covers (`keyed_from`), so a database writer can
//! neither swap the keys between records nor move the keyed part of the
//! chain. Every replica of a shared store opens the same keys.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use ironseal_ca_core::sealed::{open, seal, Kek};
use ironseal_storage::{
    AuditHead, AuditKeyRecord, AuditMacKey, Checkpoint, CheckpointSigner, Store, StoreError,
    AUDIT_CHECKPOINT_KEY, AUDIT_MAC_KEY,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::bootstrap::BootError;

/// The opened audit keys.
#[derive(Debug)]
pub struct AuditKeys {
    /// The MAC key (the store has it too, for appends).
    pub mac: AuditMacKey,
    /// The first seq written with the MAC key.
    pub keyed_from: u64,
    /// Signs checkpoints.
    pub signer: CheckpointSigner,
    /// The head of the last checkpoint this process wrote (an async lock:
    /// held while the checkpoint line is synced to its file).
    last: tokio::sync::Mutex<Option<AuditHead>>,
}

/// The authenticated data a key is sealed under.
fn aad(name: &str, keyed_from: u64) -> Vec<u8> {
    format!("ironseal-audit-key:{name}:from={keyed_from}").into_bytes()
}

/// Opens the record `name`, or makes, seals and stores a new key with
/// `make` (which returns the secret and the public key, if any). Of
/// replicas racing to make it, one wins and all use the winner's.
async fn ensure_record(
    store: &Arc<dyn Store>,
    kek: &Kek,
    name: &str,
    make: impl FnOnce() -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), BootError>,
) -> Result<(AuditKeyRecord, Zeroizing<Vec<u8>>), BootError> {
    if store.get_audit_key(name).await?.is_none() {
        let keyed_from = store
            .audit_head()
            .await?
            .map_or(1, |h| h.seq.saturating_add(1));
        let (secret, public_key) = make()?;
        let record = AuditKeyRecord {
            name: name.to_string(),
            sealed_key: seal(kek, &secret, &aad(name, keyed_from), rand::random())?,
            public_key,
            keyed_from,
            created_at: OffsetDateTime::now_utc(),
        };
        if store.create_audit_key(&record).await? {
            crate::durability::flush(store).await?;
            tracing::info!(
                key = name,
                keyed_from,
                "created an audit key, sealed under the key-encryption key"
            );
        }
    }
    let record = store
        .get_audit_key(name)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("audit key {name} vanished")))?;
    let secret = open(kek, &record.sealed_key, &aad(name, record.keyed_from)).map_err(|e| {
        BootError::Kek(format!(
            "cannot unseal the audit key {name} ({e}): wrong key-encryption key, or the \
             record was edited"
        ))
    })?;
    Ok((record, secret))
}

/// Opens (on first start: makes) the audit keys and hands the MAC key to
/// the store. Call before anything is appended to the audit log.
pub async fn ensure(store: &Arc<dyn Store>, kek: &Kek) -> Result<AuditKeys, BootError> {
    let (mac_record, mac_secret) = ensure_record(store, kek, AUDIT_MAC_KEY, || {
        let key: [u8; AuditMacKey::LEN] = rand::random();
        Ok((Zeroizing::new(key.to_vec()), Vec::new()))
    })
    .await?;
    let mac = AuditMacKey::from_bytes(&mac_secret).map_err(BootError::Kek)?;
    let (cp_record, pkcs8) = ensure_record(store, kek, AUDIT_CHECKPOINT_KEY, || {
        let (signer, pkcs8) = CheckpointSigner::generate().map_err(BootError::Kek)?;
        Ok((Zeroizing::new(pkcs8), signer.public_key_der().to_vec()))
    })
    .await?;
    let signer = CheckpointSigner::from_pkcs8(&pkcs8).map_err(BootError::Kek)?;
    if signer.public_key_der() != cp_record.public_key.as_slice() {
        return Err(BootError::Kek(
            "the stored public key of the audit checkpoint key does not match its sealed key"
                .into(),
        ));
    }
    store.set_audit_mac_key(mac.clone());
    Ok(AuditKeys {
        mac,
        keyed_from: mac_record.keyed_from,
        signer,
        last: tokio::sync::Mutex::new(None),
    })
}

impl AuditKeys {
    /// Signs a checkpoint of the current head, logs it at info level and
    /// appends it to `file` (one JSON line) if given. `None` while the log
    /// is empty, or if `only_if_moved` and the head has not moved since
    /// this process's last checkpoint. The file is written and synced on a
    /// blocking thread.
    pub async fn checkpoint(
        &self,
        store: &dyn Store,
        file: Option<&Path>,
        only_if_moved: bool,
    ) -> Result<Option<Checkpoint>, String> {
        let Some(head) = store.audit_head().await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let mut last = self.last.lock().await;
        if only_if_moved && last.as_ref() == Some(&head) {
            return Ok(None);
        }
        let cp = self
            .signer
            .sign(&head, Some(self.keyed_from), OffsetDateTime::now_utc())?;
        let line = serde_json::to_string(&cp).map_err(|e| e.to_string())?;
        if let Some(path) = file {
            let (p, l) = (path.to_path_buf(), line.clone());
            tokio::task::spawn_blocking(move || append_line(&p, &l))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        tracing::info!(
            target: "audit",
            seq = head.seq,
            hash = %head.hash,
            checkpoint = %line,
            "audit checkpoint"
        );
        *last = Some(head);
        Ok(Some(cp))
    }
}

/// Appends one line and syncs it (the file is created with mode 0644: a
/// checkpoint is public; its worth is in being kept elsewhere).
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_storage::{AuditEvent, ChainVerifier, MemoryStore};

    fn event() -> AuditEvent {
        AuditEvent {
            at: OffsetDateTime::UNIX_EPOCH,
            actor: "system".into(),
            action: "test".into(),
            summary: String::new(),
            outcome: None,
        }
    }

    #[tokio::test]
    async fn keys_are_made_once_sealed_and_cover_what_follows() {
        let kek = Kek::from_bytes(&[3; 32]).unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        store.append_audit(&event()).await.unwrap();
        let keys = ensure(&store, &kek).await.unwrap();
        assert_eq!(keys.keyed_from, 2);
        let e = store.append_audit(&event()).await.unwrap();
        assert!(keys.mac.check(&e.entry_hash, e.mac.as_deref().unwrap()));
        // Next start: the same keys.
        let again = ensure(&store, &kek).await.unwrap();
        assert_eq!(again.keyed_from, 2);
        assert_eq!(again.signer.public_key_der(), keys.signer.public_key_der());
        // Sealed, never in clear: the record holds no key bytes a
        // MacKey made from them would match.
        let rec = store.get_audit_key(AUDIT_MAC_KEY).await.unwrap().unwrap();
        assert_eq!(rec.sealed_key.len(), 1 + 12 + 32 + 16);
        // Another KEK cannot open them.
        let other = Kek::from_bytes(&[4; 32]).unwrap();
        assert!(ensure(&store, &other).await.is_err());
        // Moving the keyed part (editing keyed_from) breaks the seal.
        let mut moved = rec.clone();
        moved.keyed_from = 3;
        let store2: Arc<dyn Store> = Arc::new(MemoryStore::new());
        store2.create_audit_key(&moved).await.unwrap();
        assert!(ensure(&store2, &kek).await.is_err());
        // Checkpoints: signed, logged once per head move.
        let cp = keys
            .checkpoint(store.as_ref(), None, true)
            .await
            .unwrap()
            .unwrap();
        cp.verify_signature(keys.signer.public_key_der()).unwrap();
        assert_eq!(cp.checkpoint.seq, 2);
        assert_eq!(cp.checkpoint.keyed_from, Some(2));
        assert!(keys
            .checkpoint(store.as_ref(), None, true)
            .await
            .unwrap()
            .is_none());
        assert!(keys
            .checkpoint(store.as_ref(), None, false)
            .await
            .unwrap()
            .is_some());
        let all = store.audit_entries(0, 10).await.unwrap();
        let mut v = ChainVerifier::new(Some(&keys.mac), Some(keys.keyed_from), None);
        v.feed(&all).unwrap();
    }

    #[tokio::test]
    async fn checkpoints_append_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cp.jsonl");
        let kek = Kek::from_bytes(&[3; 32]).unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let keys = ensure(&store, &kek).await.unwrap();
        assert!(keys
            .checkpoint(store.as_ref(), Some(&file), true)
            .await
            .unwrap()
            .is_none());
        store.append_audit(&event()).await.unwrap();
        keys.checkpoint(store.as_ref(), Some(&file), true)
            .await
            .unwrap();
        store.append_audit(&event()).await.unwrap();
        let last = keys
            .checkpoint(store.as_ref(), Some(&file), true)
            .await
            .unwrap()
            .unwrap();
        let text = fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert_eq!(Checkpoint::parse(&text).unwrap(), last);
    }
}
