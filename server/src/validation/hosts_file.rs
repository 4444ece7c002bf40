//! An operator-chosen hosts file consulted before DNS (`[validation]
//! hosts_file`, `--validation-hosts`).
//!
//! A CA validates what the DNS says (RFC 8555 §8.3: "the CA … resolves the
//! domain name"), so by default no local override is read. Internal PKIs
//! often name their machines only in `/etc/hosts` or a similar file; an
//! operator who opts in lets validation resolve those names from it. The
//! format is the one of hosts(5): an address, then one or more names, `#`
//! starts a comment. Names are compared case-insensitively without a
//! trailing dot. The file is read once at start.
//!
//! The addresses the file names are the operator's own statement, so the
//! address policy admits them (see [`HostsFile::addresses`]); names not in
//! the file still go to DNS under the normal policy.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// Name → addresses, in file order (IPv4 and IPv6 as listed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsFile {
    names: BTreeMap<String, Vec<IpAddr>>,
}

/// Why a hosts file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HostsFileError {
    #[error("cannot read validation hosts file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("validation hosts file {path}, line {line}: {reason}")]
    Syntax {
        path: String,
        line: usize,
        reason: String,
    },
}

impl HostsFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<HostsFile, HostsFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| HostsFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        HostsFile::parse(&text).map_err(|(line, reason)| HostsFileError::Syntax {
            path: path.display().to_string(),
            line,
            reason,
        })
    }

    /// Parses hosts(5) text. A line whose first field is not an IP address
    /// is an error (line number, reason); IPv6 zone ids (`fe80::1%eth0`) are
    /// refused, since validation cannot use them.
    pub fn parse(text: &str) -> Result<HostsFile, (usize, String)> {
        let mut names: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let Some(addr) = fields.next() else { continue };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| (i + 1, format!("`{addr}` is not an IP address")))?;
            let mut any = false;
            for name in fields {
                any = true;
                let key = normalise(name);
                let list = names.entry(key).or_default();
                if !list.contains(&ip) {
                    list.push(ip);
                }
            }
            if !any {
                return Err((i + 1, format!("no name after {addr}")));
            }
        }
        Ok(HostsFile { names })
    }

    /// The addresses of `name`, if the file lists it.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.names.get(&normalise(name)).map(Vec::as_slice)
    }

    /// How many names the file lists.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the file lists no name.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Every address the file names (deduplicated), for the address policy.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for ip in self.names.values().flatten() {
            if !out.contains(ip) {
                out.push(*ip);
            }
        }
        out
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn parses_hosts_syntax_with_comments_aliases_and_both_families() {
        let h = HostsFile::parse(
            "# comment\n127.0.0.1 localhost\n\n10.1.2.3  app.internal.example  App2.Internal.Example. # two names\n::1 localhost ip6-localhost\n",
        )
        .unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(
            h.lookup("app2.internal.example"),
            Some(&["10.1.2.3".parse().unwrap()][..])
        );
        assert_eq!(
            h.lookup("LOCALHOST."),
            Some(&["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()][..])
        );
        assert_eq!(h.lookup("other.example"), None);
        assert_eq!(h.addresses().len(), 3);
    }

    #[test]
    fn refuses_lines_it_cannot_use() {
        assert_eq!(HostsFile::parse("ok.example 10.0.0.1\n").unwrap_err().0, 1);
        assert_eq!(HostsFile::parse("10.0.0.1 a\n10.0.0.2\n").unwrap_err().0, 2);
        assert!(HostsFile::parse("fe80::1%eth0 a\n").is_err());
    }
}
