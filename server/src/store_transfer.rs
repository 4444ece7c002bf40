//! `ironseal store export` and `ironseal store import`: move a whole store
//! between engines (sled to PostgreSQL and back), offline.
//!
//! An export is a logical, engine-neutral file (`ironseal_storage::export`:
//! every record as its typed JSON, the issuing-CA pin file, a trailer with
//! the count and SHA-256). An import checks the whole file first (a damaged
//! or truncated file imports nothing), refuses a target store that already
//! holds data, then writes every record verbatim through the target's own
//! methods and checks the audit chain link by link.
//!
//! Sealed CA keys travel sealed: the server on the target store needs the
//! same key-encryption key. Stop the servers of the source store first
//! (sled allows one process anyway; a PostgreSQL export reads one snapshot,
//! but writes after it would not be carried).
//!
//! Each command runs on one tokio runtime of its own (the store is async).
//! An export streams from the store into the file inside it; an import
//! reads the file on the command's thread and hands each record to the
//! store with `block_on` from there (`read_export` calls back
//! synchronously), never from an async worker.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, BufWriter};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use ironseal_storage::export::{self, DataFiles, KindCounts};
use ironseal_storage::{Store, PG_DEFAULT_POOL_SIZE};
use serde_json::json;

use crate::bootstrap::{self, ISSUING_FILE};
use crate::config::{Config, LogFormat, ServeArgs, StorageBackend};
use crate::progress::{self, CountingReader, Progress};

/// `ironseal store …`.
#[derive(Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

/// What `ironseal store` does.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Write every record of a store into an export file (server stopped).
    Export(ExportArgs),
    /// Load an export file into an empty store (server stopped).
    Import(ImportArgs),
}

/// Which store: the `[storage]` of a configuration file, a data directory
/// (sled), or a PostgreSQL URL.
#[derive(Args, Clone)]
pub struct StoreLocation {
    /// TOML configuration file whose `[storage]` section names the store.
    #[arg(long, env = "IRONSEAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: the sled store (`<dir>/db`) and the issuing-CA pin.
    #[arg(long, env = "IRONSEAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL connection string; the store is that database instead
    /// of what the configuration says.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// human (progress on a terminal) or json (no progress).
    #[arg(long, env = "IRONSEAL_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// `ironseal store export` options.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub from: StoreLocation,
    /// The export file to write; must not exist.
    #[arg(long)]
    pub out: PathBuf,
}

/// `ironseal store import` options.
#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub to: StoreLocation,
    /// The export file (written by `ironseal store export`).
    #[arg(long)]
    pub from: PathBuf,
}

/// The resolved store location.
struct Target {
    config: Config,
    engine: &'static str,
}

impl StoreLocation {
    fn resolve(&self) -> Result<Target, String> {
        let args = ServeArgs {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            ..ServeArgs::default()
        };
        let mut config = Config::resolve(&args).map_err(|e| e.to_string())?;
        if let Some(url) = &self.postgres_url {
            config.storage = StorageBackend::Postgres {
                url: url.clone(),
                pool_size: PG_DEFAULT_POOL_SIZE.min(4),
            };
        }
        let engine = match config.storage {
            StorageBackend::Sled => "sled",
            StorageBackend::Postgres { .. } => "postgres",
        };
        Ok(Target { config, engine })
    }

    fn show_progress(&self) -> bool {
        progress::enabled(self.log_format == Some(LogFormat::Json))
    }
}

async fn open(target: &Target) -> Result<Arc<dyn Store>, String> {
    bootstrap::open_store(&target.config)
        .await
        .map_err(|e| e.to_string())
}

fn counts_json(counts: &KindCounts) -> serde_json::Value {
    let map: BTreeMap<&str, u64> = counts.iter().map(|(k, v)| (*k, *v)).collect();
    json!(map)
}

async fn export(args: &ExportArgs) -> Result<serde_json::Value, String> {
    let target = args.from.resolve()?;
    if target.engine == "sled" && !target.config.data_dir.join("db").exists() {
        return Err(format!(
            "{} holds no store (no db)",
            target.config.data_dir.display()
        ));
    }
    if args.out.exists() {
        return Err(format!("{} exists; choose a new file", args.out.display()));
    }
    let store = open(&target).await?;
    let mut files = Vec::new();
    if let Some(id) = bootstrap::read_issuing(&target.config, &*store)
        .await
        .map_err(|e| e.to_string())?
    {
        files.push((ISSUING_FILE.to_string(), format!("{id}\n").into_bytes()));
    }
    let total = store.count_records().await.map_err(|e| e.to_string())?;
    let partial = partial_path(&args.out);
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut bar = Progress::new(
        "exporting",
        "records",
        Some(total),
        args.from.show_progress(),
    );
    let written = export::write_export(&*store, target.engine, &mut out, &files, &mut |n| {
        bar.update(n)
    })
    .await;
    let (summary, counts) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e.to_string());
        }
    };
    bar.finish(summary.entries);
    let file = out
        .into_inner()
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    file.sync_all()
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    fs::rename(&partial, &args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    sync_parent(&args.out)?;
    Ok(json!({
        "file": args.out.display().to_string(),
        "engine": target.engine,
        "records": counts_json(&counts),
        "entries": summary.entries,
        "bytes": summary.bytes,
        "sha256": summary.sha256,
        "files": files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
    }))
}

/// Reads `path` once through `each`, with a progress line over its bytes.
fn read_pass(
    path: &Path,
    label: &'static str,
    show: bool,
    each: &mut dyn FnMut(export::ExportRecord) -> Result<(), ironseal_storage::StoreError>,
) -> Result<(ironseal_storage::backup::Summary, DataFiles), String> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let total = file.metadata().map(|m| m.len()).ok();
    let (counting, read) = CountingReader::new(file);
    let mut input = BufReader::with_capacity(1 << 20, counting);
    let mut bar = Progress::new(label, "bytes", total, show);
    let (_, summary, files) =
        export::read_export(&mut input, each, &mut |_| bar.update(read.get()))
            .map_err(|e| e.to_string())?;
    bar.finish(read.get());
    Ok((summary, files))
}

/// Imports on the command's thread; `rt` runs every store call (one
/// `block_on` per record, as `read_export` calls back synchronously).
fn import(rt: &tokio::runtime::Runtime, args: &ImportArgs) -> Result<serde_json::Value, String> {
    let target = args.to.resolve()?;
    let show = args.to.show_progress();
    // First pass: the whole file is intact and every record decodes, before
    // anything is written.
    let mut counts = KindCounts::new();
    let (_, files) = read_pass(&args.from, "checking", show, &mut |r| {
        *counts.entry(r.kind()).or_default() += 1;
        Ok(())
    })?;
    for (name, _) in &files {
        if name != ISSUING_FILE {
            return Err(format!("the export carries an unexpected file {name:?}"));
        }
    }
    // The sled store lives in the data directory; the issuing-CA pin does
    // for either engine.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&target.config.data_dir)
        .map_err(|e| format!("{}: {e}", target.config.data_dir.display()))?;
    let store = rt.block_on(open(&target))?;
    if !rt
        .block_on(export::is_empty(&*store))
        .map_err(|e| e.to_string())?
    {
        return Err(
            "the target store already holds data (CAs, keys or audit entries); import into a new \
             data directory or an empty database"
                .into(),
        );
    }
    let (summary, _) = read_pass(&args.from, "importing", show, &mut |r| {
        rt.block_on(export::import_record(&*store, &r))
    })
    .map_err(|e| {
        format!("{e}; the target store is now partly written: remove it (new data directory or database) before trying again")
    })?;
    // The command's own thread, not an async worker: a direct disk sync.
    store.flush().map_err(|e| e.to_string())?;
    for (_, content) in &files {
        let id = String::from_utf8_lossy(content).trim().to_string();
        rt.block_on(bootstrap::write_issuing(&*store, &id))
            .map_err(|e| e.to_string())?;
    }
    Ok(json!({
        "engine": target.engine,
        "records": counts_json(&counts),
        "entries": summary.entries,
        "sha256": summary.sha256,
        "files": files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "next": "start the server on this store with the same key-encryption key as the source (it unseals the CA keys)",
    }))
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn sync_parent(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Runs `ironseal store …`: exit 0 and a JSON summary on stdout, or 1 and
/// the reason on stderr.
pub fn run(args: StoreArgs) -> ExitCode {
    let what = match &args.command {
        StoreCommand::Export(_) => "export",
        StoreCommand::Import(_) => "import",
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return crate::restore::summary_or_error(
                &format!("ironseal store {what}"),
                Err(format!("cannot start the runtime: {e}")),
            )
        }
    };
    let result = match &args.command {
        StoreCommand::Export(a) => rt.block_on(export(a)),
        StoreCommand::Import(a) => import(&rt, a),
    };
    crate::restore::summary_or_error(&format!("ironseal store {what}"), result)
}
