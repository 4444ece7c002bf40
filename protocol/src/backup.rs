//! The backup file format: a consistent snapshot of an embedded store, as
//! `ironseal-storage`'s `SledStore::write_backup` writes it and
//! `SledStore::restore` reads it. A file format, so it lives here: no I/O
//! beyond the `Read`/`Write` it is given, fuzzed (`fuzz/fuzz_targets/
//! backup_file.rs`).
//!
//! One JSON object per line, so a backup can be inspected with `head` and
//! `jq`, compressed by any tool, and read in one pass with bounded memory:
//!
//! 1. a header: `{"format":"ironseal-backup","version":1,"engine":"sled",
//!    "created_at":"…"}`;
//! 2. entries, either `{"tree":"certificates","k":"<base64>","v":"<base64>"}`
//!    (one key/value of an engine tree, bytes as they are stored) or
//!    `{"file":"issuing-ca","v":"<base64>"}` (a small file of the data
//!    directory that belongs with the store);
//! 3. a trailer: `{"end":{"entries":N,"sha256":"<hex>"}}`, the count of
//!    entries and the SHA-256 of every byte before the trailer line.
//!
//! A reader accepts the file only when the trailer is present and both
//! figures match: a truncated or altered backup is refused, never half
//! restored.

use std::io::{BufRead, Write};

use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Why a backup could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing the file failed.
    #[error("backup file: {0}")]
    Io(String),
    /// The file is not a complete, intact backup this build can read.
    #[error("not a usable ironseal backup: {0}")]
    Corrupt(String),
    /// The consumer of the entries refused one (e.g. the engine failed).
    #[error("{0}")]
    Target(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `format` value of the header line.
pub const FORMAT: &str = "ironseal-backup";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;
/// The longest line a reader accepts (a record with a large certificate
/// chain is a few tens of KiB; this bounds memory on a hostile file).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// The first line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub engine: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One entry of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A key/value of the engine tree named `tree`.
    Kv {
        tree: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// A file of the data directory, by name (no path).
    File { name: String, content: Vec<u8> },
    /// One record of a logical export (`ironseal-export` files), as JSON;
    /// the storage crate gives it its type.
    Record(serde_json::Value),
}

#[derive(Serialize, Deserialize)]
struct KvLine {
    tree: String,
    k: String,
    v: String,
}

#[derive(Serialize, Deserialize)]
struct FileLine {
    file: String,
    v: String,
}

#[derive(Serialize, Deserialize)]
struct RecordLine {
    record: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    entries: u64,
    sha256: String,
}

#[derive(Serialize, Deserialize)]
struct TrailerLine {
    end: Trailer,
}

/// What a finished backup or restore covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Entries (tree key/values and files).
    pub entries: u64,
    /// Bytes of the backup file.
    pub bytes: u64,
    /// SHA-256 of the file up to the trailer (what the trailer records).
    pub sha256: String,
}

/// Progress of a running backup or restore, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub entries: u64,
    pub bytes: u64,
}

/// Writes a backup file: [`Writer::new`] (header), [`Writer::entry`] for
/// each entry, [`Writer::finish`] (trailer).
pub struct Writer<W: Write> {
    out: W,
    hash: digest::Context,
    entries: u64,
    bytes: u64,
}

fn io(e: std::io::Error) -> BackupError {
    BackupError::Io(e.to_string())
}

impl<W: Write> Writer<W> {
    /// Starts a backup of `engine` and writes the header.
    pub fn new(out: W, engine: &str) -> Result<Writer<W>, BackupError> {
        Writer::with_format(out, FORMAT, engine)
    }

    /// Starts a file of `format` (e.g. `ironseal-export`) from `engine`.
    pub fn with_format(out: W, format: &str, engine: &str) -> Result<Writer<W>, BackupError> {
        let mut w = Writer {
            out,
            hash: digest::Context::new(&digest::SHA256),
            entries: 0,
            bytes: 0,
        };
        let header = Header {
            format: format.into(),
            version: VERSION,
            engine: engine.into(),
            created_at: OffsetDateTime::now_utc(),
        };
        w.line(&header)?;
        Ok(w)
    }

    fn line<T: Serialize>(&mut self, value: &T) -> Result<(), BackupError> {
        let mut bytes =
            serde_json::to_vec(value).map_err(|e| BackupError::Io(format!("encode: {e}")))?;
        bytes.push(b'\n');
        self.hash.update(&bytes);
        self.out.write_all(&bytes).map_err(io)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Appends one entry.
    pub fn entry(&mut self, entry: &Entry) -> Result<(), BackupError> {
        match entry {
            Entry::Kv { tree, key, value } => self.line(&KvLine {
                tree: tree.clone(),
                k: B64.encode(key),
                v: B64.encode(value),
            })?,
            Entry::File { name, content } => self.line(&FileLine {
                file: name.clone(),
                v: B64.encode(content),
            })?,
            Entry::Record(record) => self.line(&RecordLine {
                record: record.clone(),
            })?,
        }
        self.entries += 1;
        Ok(())
    }

    /// How far the writer has come.
    pub fn progress(&self) -> Progress {
        Progress {
            entries: self.entries,
            bytes: self.bytes,
        }
    }

    /// Writes the trailer and flushes; returns the summary and the writer's
    /// output (for the caller to sync).
    pub fn finish(mut self) -> Result<(Summary, W), BackupError> {
        let sha256 = hex(self.hash.clone().finish().as_ref());
        let trailer = TrailerLine {
            end: Trailer {
                entries: self.entries,
                sha256: sha256.clone(),
            },
        };
        let mut bytes =
            serde_json::to_vec(&trailer).map_err(|e| BackupError::Io(format!("encode: {e}")))?;
        bytes.push(b'\n');
        self.out.write_all(&bytes).map_err(io)?;
        self.out.flush().map_err(io)?;
        let summary = Summary {
            entries: self.entries,
            bytes: self.bytes + bytes.len() as u64,
            sha256,
        };
        Ok((summary, self.out))
    }
}

fn bad(what: impl std::fmt::Display) -> BackupError {
    BackupError::Corrupt(what.to_string())
}

/// Reads a backup file: checks the header (format, version and `engine`),
/// hands every entry to `each` in file order, and checks the trailer. An
/// error from `each` stops the read. `progress` is called after each entry.
///
/// The caller must treat everything it did in `each` as provisional until
/// this returns `Ok`: only then is the file known to be complete and intact.
pub fn read(
    input: &mut dyn BufRead,
    engine: &str,
    each: &mut dyn FnMut(Entry) -> Result<(), BackupError>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Header, Summary), BackupError> {
    read_format(input, FORMAT, Some(engine), each, progress)
}

/// [`read`] for a file of `format`; `engine: None` accepts a file written
/// from any engine (a logical export).
pub fn read_format(
    input: &mut dyn BufRead,
    format: &str,
    engine: Option<&str>,
    each: &mut dyn FnMut(Entry) -> Result<(), BackupError>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Header, Summary), BackupError> {
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    let mut entries = 0u64;
    let mut next_line = |buf: &mut Vec<u8>| -> Result<bool, BackupError> {
        buf.clear();
        let n = std::io::Read::take(&mut *input, MAX_LINE as u64 + 1)
            .read_until(b'\n', buf)
            .map_err(io)?;
        if n > MAX_LINE {
            return Err(bad(format!("a line is longer than {MAX_LINE} bytes")));
        }
        Ok(n > 0)
    };
    if !next_line(&mut buf)? {
        return Err(bad("the file is empty"));
    }
    let header: Header = serde_json::from_slice(&buf).map_err(|e| bad(format!("header: {e}")))?;
    if header.format != format {
        return Err(bad(format!(
            "format {:?} (expected {format:?})",
            header.format
        )));
    }
    if header.version != VERSION {
        return Err(bad(format!(
            "version {} (this build reads {VERSION})",
            header.version
        )));
    }
    if let Some(engine) = engine.filter(|e| *e != header.engine) {
        return Err(bad(format!(
            "a backup of the {} engine cannot be restored into {engine}",
            header.engine
        )));
    }
    hash.update(&buf);
    bytes += buf.len() as u64;
    loop {
        if !next_line(&mut buf)? {
            return Err(bad("it ends without its trailer (truncated?)"));
        }
        if !buf.ends_with(b"\n") {
            return Err(bad("the last line is incomplete (truncated?)"));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&buf).map_err(|e| bad(format!("line {}: {e}", entries + 2)))?;
        if value.get("end").is_some() {
            let trailer_len = buf.len() as u64;
            let t: TrailerLine =
                serde_json::from_value(value).map_err(|e| bad(format!("trailer: {e}")))?;
            let sha256 = hex(hash.finish().as_ref());
            if t.end.entries != entries || t.end.sha256 != sha256 {
                return Err(bad(format!(
                    "the trailer says {} entries, sha256 {}; the file has {entries}, sha256 {sha256}",
                    t.end.entries, t.end.sha256
                )));
            }
            if next_line(&mut buf)? {
                return Err(bad("data after the trailer"));
            }
            let summary = Summary {
                entries,
                bytes: bytes + trailer_len,
                sha256,
            };
            return Ok((header, summary));
        }
        hash.update(&buf);
        bytes += buf.len() as u64;
        let decode = |s: &str| B64.decode(s).map_err(|e| bad(format!("base64: {e}")));
        let entry = if value.get("tree").is_some() {
            let l: KvLine =
                serde_json::from_value(value).map_err(|e| bad(format!("entry: {e}")))?;
            Entry::Kv {
                tree: l.tree,
                key: decode(&l.k)?,
                value: decode(&l.v)?,
            }
        } else if value.get("file").is_some() {
            let l: FileLine =
                serde_json::from_value(value).map_err(|e| bad(format!("entry: {e}")))?;
            if l.file.is_empty() || l.file.contains(['/', '\\']) || l.file.starts_with('.') {
                return Err(bad(format!("file name {:?}", l.file)));
            }
            Entry::File {
                name: l.file,
                content: decode(&l.v)?,
            }
        } else if value.get("record").is_some() {
            let l: RecordLine =
                serde_json::from_value(value).map_err(|e| bad(format!("entry: {e}")))?;
            Entry::Record(l.record)
        } else {
            return Err(bad(format!("line {}: unknown entry", entries + 2)));
        };
        each(entry)?;
        entries += 1;
        progress(Progress { entries, bytes });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), "sled").unwrap();
        w.entry(&Entry::Kv {
            tree: "certificates".into(),
            key: b"01ab".to_vec(),
            value: b"{\"x\":1}".to_vec(),
        })
        .unwrap();
        w.entry(&Entry::File {
            name: "issuing-ca".into(),
            content: b"ca-1\n".to_vec(),
        })
        .unwrap();
        let (s, out) = w.finish().unwrap();
        assert_eq!(s.entries, 2);
        assert_eq!(s.bytes, out.len() as u64);
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Entry>, BackupError> {
        let mut got = Vec::new();
        read(
            &mut std::io::BufReader::new(bytes),
            "sled",
            &mut |e| {
                got.push(e);
                Ok(())
            },
            &mut |_| {},
        )?;
        Ok(got)
    }

    #[test]
    fn round_trips() {
        let got = read_all(&sample()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Entry::File {
                name: "issuing-ca".into(),
                content: b"ca-1\n".to_vec()
            }
        );
    }

    #[test]
    fn refuses_truncated_altered_or_foreign_files() {
        let good = sample();
        // Truncated anywhere.
        for cut in [0, 10, good.len() / 2, good.len() - 1] {
            assert!(read_all(&good[..cut]).is_err(), "cut at {cut}");
        }
        // One byte of an entry changed.
        let mut altered = good.clone();
        let pos = good.iter().position(|b| *b == b'M').unwrap();
        altered[pos] = b'N';
        let e = read_all(&altered).unwrap_err();
        assert!(e.to_string().contains("trailer"), "{e}");
        // Another engine.
        let mut r = std::io::BufReader::new(&good[..]);
        let e = read(&mut r, "postgres", &mut |_| Ok(()), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("engine"), "{e}");
        // Data after the trailer.
        let mut extra = good.clone();
        extra.extend_from_slice(b"{}\n");
        assert!(read_all(&extra).is_err());
        // A file entry that names a path.
        let mut w = Writer::new(Vec::new(), "sled").unwrap();
        w.entry(&Entry::File {
            name: "../kek".into(),
            content: vec![1],
        })
        .unwrap();
        let (_, out) = w.finish().unwrap();
        assert!(read_all(&out).is_err());
    }

    #[test]
    fn record_entries_in_another_format() {
        let mut w = Writer::with_format(Vec::new(), "ironseal-export", "postgres").unwrap();
        let rec = serde_json::json!({"kind": "blocked_key", "doc": "beef"});
        w.entry(&Entry::Record(rec.clone())).unwrap();
        let (_, out) = w.finish().unwrap();
        let mut got = Vec::new();
        let (header, _) = read_format(
            &mut std::io::BufReader::new(&out[..]),
            "ironseal-export",
            None,
            &mut |e| {
                got.push(e);
                Ok(())
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(header.engine, "postgres");
        assert_eq!(got, vec![Entry::Record(rec)]);
        // An export is not a backup, and a backup is not an export.
        let e = read_all(&out).unwrap_err();
        assert!(e.to_string().contains("format"), "{e}");
        let e = read_format(
            &mut std::io::BufReader::new(&sample()[..]),
            "ironseal-export",
            None,
            &mut |_| Ok(()),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("format"), "{e}");
    }
}
