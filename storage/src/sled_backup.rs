//! Online backup and offline restore of the embedded store (format:
//! [`crate::backup`]).
//!
//! sled has no snapshot across trees (its iterators see each tree as it is
//! when they reach a key), so a backup takes the store's write gate
//! exclusively: writers wait while the snapshot is written, readers
//! (OCSP, CRLs, downloads) go on. Every tree of the database is copied as
//! stored, the default tree (schema version) included, so a restore is the
//! same database, indexes and audit chain included.

use std::io::{BufRead, Write};
use std::path::Path;

use crate::backup::{self, BackupError, Entry, Progress, Summary};
use crate::{SledStore, StoreError};

/// Files of the data directory carried by a backup: (name, content).
pub type BackupFiles = Vec<(String, Vec<u8>)>;

/// The `engine` of sled backups.
pub const ENGINE: &str = "sled";

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn tree_name(name: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(name.to_vec())
        .map_err(|_| StoreError::Corrupt("a tree name is not UTF-8".into()))
}

impl SledStore {
    /// Writes a consistent snapshot of every tree to `out`, then `files`
    /// (small files of the data directory that belong with the store, by
    /// name). Writes to the store wait until it is done; reads do not.
    /// `progress` is called every 1,000 entries and at the end.
    pub fn write_backup(
        &self,
        out: &mut dyn Write,
        files: &[(String, Vec<u8>)],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Summary, StoreError> {
        // Called on a thread outside the runtime (a blocking task, the
        // offline command line), so it may block for the lock.
        let _exclusive = self.gate.blocking_write();
        let mut w = backup::Writer::new(out, ENGINE)?;
        let mut names = self.db.tree_names();
        names.sort();
        for name in names {
            let tree = self.db.open_tree(&name).map_err(backend)?;
            let tree_name = tree_name(&name)?;
            for item in tree.iter() {
                let (k, v) = item.map_err(backend)?;
                w.entry(&Entry::Kv {
                    tree: tree_name.clone(),
                    key: k.to_vec(),
                    value: v.to_vec(),
                })?;
                let p = w.progress();
                if p.entries.is_multiple_of(1000) {
                    progress(p);
                }
            }
        }
        for (name, content) in files {
            w.entry(&Entry::File {
                name: name.clone(),
                content: content.clone(),
            })?;
        }
        progress(w.progress());
        let (summary, _) = w.finish()?;
        Ok(summary)
    }

    /// Restores a backup into a new database at `db_path`, which must not
    /// exist. Returns the summary and the files the backup carried, for the
    /// caller to put beside the database. On any error (a truncated or
    /// altered file included) the partial database is removed.
    pub fn restore(
        db_path: &Path,
        input: &mut dyn BufRead,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(Summary, BackupFiles), StoreError> {
        if db_path.exists() {
            return Err(StoreError::Conflict(format!(
                "{} exists; restore only into a new data directory",
                db_path.display()
            )));
        }
        let result = Self::restore_into(db_path, input, progress);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(db_path);
        }
        result
    }

    fn restore_into(
        db_path: &Path,
        input: &mut dyn BufRead,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(Summary, BackupFiles), StoreError> {
        let db = sled::Config::new()
            .path(db_path)
            .flush_every_ms(None)
            .open()
            .map_err(backend)?;
        let mut files = Vec::new();
        let mut current: Option<(String, sled::Tree)> = None;
        let (_, summary) = backup::read(
            input,
            ENGINE,
            &mut |entry| {
                let target = |e: sled::Error| BackupError::Target(e.to_string());
                match entry {
                    Entry::Kv { tree, key, value } => {
                        let t = match &current {
                            Some((name, t)) if *name == tree => t.clone(),
                            _ => {
                                let t = db.open_tree(tree.as_bytes()).map_err(target)?;
                                current = Some((tree, t.clone()));
                                t
                            }
                        };
                        t.insert(key, value).map_err(target)?;
                    }
                    Entry::File { name, content } => files.push((name, content)),
                    Entry::Record(_) => return Err(BackupError::Corrupt(
                        "a logical record in a backup (use `ironseal store import` for exports)"
                            .into(),
                    )),
                }
                Ok(())
            },
            progress,
        )?;
        db.flush().map_err(backend)?;
        drop(current);
        drop(db);
        // Open it the normal way: checks the schema version and syncs.
        let store = SledStore::open(db_path)?;
        crate::Store::flush(&store)?;
        Ok((summary, files))
    }
}
