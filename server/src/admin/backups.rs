//! `POST /admin/v1/backups`: a consistent online snapshot of the embedded
//! store, written on the server into the backup directory (`[storage]
//! backup_dir`, default `<data_dir>/backups`).
//!
//! The file ([`ironseal_storage::backup`] format) is written under a
//! temporary name, synced, and renamed, so a file with the final name is
//! always complete. It holds the sealed CA keys but never the key-encryption
//! key, which must be kept (and backed up) apart. The snapshot is taken with
//! the store's writes paused (reads go on) and CA changes held, so the
//! issuing-CA file it carries agrees with the CA records. One backup runs at
//! a time; a second call meanwhile gets 409.

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hyper::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

use super::auth::Principal;
use super::{Answer, ApiError};
use crate::bootstrap::ISSUING_FILE;
use crate::state::AppState;

/// Set while a backup runs.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Clears [`RUNNING`] when the backup ends, however it ends.
struct RunningGuard;

impl Drop for RunningGuard {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::SeqCst);
    }
}

/// Extension of backup files.
pub const EXTENSION: &str = "ironseal-backup";

/// `ironseal-20261205T221500Z-3f2a.ironseal-backup`: sortable by time,
/// unique within a second.
fn file_name(now: OffsetDateTime) -> String {
    let mut r = [0u8; 2];
    let _ = aws_lc_rs::rand::fill(&mut r);
    format!(
        "ironseal-{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}.{EXTENSION}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        hex::encode(r)
    )
}

fn io_err(what: &Path) -> impl Fn(std::io::Error) -> ApiError + '_ {
    move |e| ApiError::internal(format!("backup: {}: {e}", what.display()))
}

/// Creates `dir` and opens the partial file of a new backup in it:
/// (final path, partial path, open file).
fn open_partial(dir: &Path) -> Result<(PathBuf, PathBuf, fs::File), ApiError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    let path = dir.join(file_name(OffsetDateTime::now_utc()));
    let partial = path.with_extension(format!("{EXTENSION}.partial"));
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io_err(&partial))?;
    Ok((path, partial, file))
}

/// Flushes and syncs the written backup and gives it its final name.
fn seal_file(
    out: BufWriter<fs::File>,
    partial: &Path,
    path: &Path,
    dir: &Path,
) -> Result<(), ApiError> {
    let mut out = out;
    out.flush().map_err(io_err(partial))?;
    let file = out
        .into_inner()
        .map_err(|e| ApiError::internal(format!("backup: {e}")))?;
    file.sync_all().map_err(io_err(partial))?;
    fs::rename(partial, path).map_err(io_err(path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes the snapshot; returns its final path. The file work and the
/// snapshot itself (a synchronous [`ironseal_storage::Store::backup`]) run
/// on blocking threads.
async fn write(
    state: &AppState,
    dir: &Path,
) -> Result<(PathBuf, ironseal_storage::backup::Summary), ApiError> {
    let d = dir.to_path_buf();
    let (path, partial, file) = tokio::task::spawn_blocking(move || open_partial(&d))
        .await
        .map_err(ApiError::internal)??;
    let result = async {
        // CA changes (which rewrite the issuing-CA file) wait too.
        let ca = state.ca_admin.lock().await;
        let mut files = Vec::new();
        // The issuing-CA pin (in the store, not part of its records)
        // travels as the file older data directories had; a restore
        // writes it there and the next start imports it.
        let issuing = crate::bootstrap::read_issuing(&state.config, state.store.as_ref())
            .await
            .map_err(ApiError::internal)?;
        if let Some(id) = issuing {
            files.push((ISSUING_FILE.to_string(), format!("{id}\n").into_bytes()));
        }
        let store = state.store.clone();
        let (out, summary) = tokio::task::spawn_blocking(move || {
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let summary = store
                .backup(&mut out, &files, &mut |_| {})
                .map_err(|e| ApiError::internal(format!("backup: {e}")))?;
            Ok::<_, ApiError>((out, summary))
        })
        .await
        .map_err(ApiError::internal)??;
        drop(ca);
        let (p, f, d) = (partial.clone(), path.clone(), dir.to_path_buf());
        tokio::task::spawn_blocking(move || seal_file(out, &p, &f, &d))
            .await
            .map_err(ApiError::internal)??;
        Ok(summary)
    }
    .await;
    match result {
        Ok(summary) => Ok((path, summary)),
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// `POST /admin/v1/backups` (admin role).
pub async fn create(state: &Arc<AppState>, caller: &Principal) -> Result<Answer, ApiError> {
    if RUNNING.swap(true, Ordering::SeqCst) {
        return Err(ApiError::conflict(
            "backup_running",
            "a backup is being written; try again when it is done",
        ));
    }
    let guard = RunningGuard;
    let st = state.clone();
    let dir = state.config.backup_dir.clone();
    let started = Instant::now();
    // A task of its own: a client that goes away does not cut the backup
    // short (nor leave its partial file behind).
    let written = tokio::spawn(async move {
        let _guard = guard;
        write(&st, &dir).await
    })
    .await
    .map_err(|e| ApiError::internal(format!("backup: {e}")))?;
    let seconds = started.elapsed().as_secs_f64();
    match written {
        Ok((path, summary)) => {
            state.metrics.inc("backups_written");
            tracing::info!(
                path = %path.display(),
                entries = summary.entries,
                bytes = summary.bytes,
                seconds,
                actor = %caller.actor(),
                "backup written"
            );
            Ok(Answer {
                status: StatusCode::CREATED,
                body: json!({
                    "path": path.display().to_string(),
                    "entries": summary.entries,
                    "bytes": summary.bytes,
                    "sha256": summary.sha256,
                    "seconds": seconds,
                }),
                note: Some(format!(
                    "{} ({} entries, {} bytes)",
                    path.display(),
                    summary.entries,
                    summary.bytes
                )),
            })
        }
        Err(e) => {
            state.metrics.inc("backup_failures");
            tracing::error!(error = %e.message, "backup failed");
            Err(e)
        }
    }
}
