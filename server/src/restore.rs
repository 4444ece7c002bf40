//! `ironseal restore`: a backup (`ironseal backup`) into a new data
//! directory, offline (no server runs on it).
//!
//! The file is checked as it is read (header, every entry, the trailer's
//! count and SHA-256); a damaged or truncated file restores nothing. The
//! key-encryption key is not in a backup: the restored server needs the same
//! KEK (copied to `<new data dir>.kek`, the default beside the directory,
//! or given with `--kek-file` / `IRONSEAL_KEK`; never inside the data
//! directory), or it cannot unseal its CA keys and refuses to start.

use std::fs;
use std::io::BufReader;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ironseal_storage::SledStore;
use serde_json::json;

use crate::bootstrap::ISSUING_FILE;
use crate::config::LogFormat;
use crate::progress::{self, CountingReader, Progress};

/// `ironseal restore` options.
#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file (written by `ironseal backup`).
    #[arg(long)]
    pub from: PathBuf,
    /// The new data directory; must not hold a database yet.
    #[arg(long, env = "IRONSEAL_DATA_DIR")]
    pub data_dir: PathBuf,
    /// human (progress on a terminal) or json (no progress).
    #[arg(long, env = "IRONSEAL_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

fn restore(args: &RestoreArgs) -> Result<serde_json::Value, String> {
    let db = args.data_dir.join("db");
    if db.exists() {
        return Err(format!(
            "{} already holds a database; restore into a new data directory",
            args.data_dir.display()
        ));
    }
    let file = fs::File::open(&args.from).map_err(|e| format!("{}: {e}", args.from.display()))?;
    let total = file.metadata().map(|m| m.len()).ok();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.data_dir)
        .map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    let (counting, read) = CountingReader::new(file);
    let mut input = BufReader::with_capacity(1 << 20, counting);
    let show = progress::enabled(args.log_format == Some(LogFormat::Json));
    let mut bar = Progress::new("restoring", "bytes", total, show);
    let (summary, files) = SledStore::restore(&db, &mut input, &mut |_| bar.update(read.get()))
        .map_err(|e| e.to_string())?;
    bar.finish(read.get());
    let mut restored_files = Vec::new();
    for (name, content) in files {
        // Only the files a backup is known to carry; nothing else is
        // written into the data directory.
        if name != ISSUING_FILE {
            return Err(format!("the backup carries an unexpected file {name:?}"));
        }
        let path = args.data_dir.join(&name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        std::io::Write::write_all(&mut f, &content)
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        restored_files.push(name);
    }
    let kek_place = crate::config::default_kek_file(&args.data_dir)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "a file outside the data directory".to_string());
    Ok(json!({
        "dataDir": args.data_dir.display().to_string(),
        "entries": summary.entries,
        "bytes": summary.bytes,
        "sha256": summary.sha256,
        "files": restored_files,
        "next": format!(
            "give the server the same key-encryption key (copy it to {kek_place}, the default \
             beside this data directory, or use --kek-file / IRONSEAL_KEK; never into the data \
             directory), then start it with --data-dir on this directory"
        ),
    }))
}

/// Runs `ironseal restore`: exit 0 and a JSON summary on stdout, or 1 and
/// the reason on stderr (nothing restored).
pub fn run(args: RestoreArgs) -> ExitCode {
    summary_or_error("ironseal restore", restore(&args))
}

/// How the offline commands (`restore`, `store export|import`) end: the
/// JSON summary on stdout and exit 0, or `<command>: <reason>` on stderr
/// and exit 1.
pub fn summary_or_error(command: &str, result: Result<serde_json::Value, String>) -> ExitCode {
    match result {
        Ok(v) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{command}: {e}");
            ExitCode::FAILURE
        }
    }
}
