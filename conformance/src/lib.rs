#![forbid(unsafe_code)]
//! Black-box conformance harness: runs the server under test on loopback
//! together with `pebble-challtestsrv` as fake DNS, and drives it with real
//! clients (certbot, lego, openssl, the `ironseal admin` CLI) and our own.
//! Every subprocess is killed on drop and every wait is bounded.
//!
//! One server handle, one HTTP client:
//! - [`server::Server`]: the release binary on free loopback ports; extra
//!   `serve` flags and a config file; start, SIGTERM stop, SIGKILL, restart
//!   on the same data dir and ports; admin key, `root.pem`, and the base
//!   URLs of the HTTPS listener ([`server::Server::base_url`]) and the plain
//!   HTTP listener ([`server::Server::http_base_url`]).
//! - [`client::HttpClient`]: hyper + rustls trusting the server's root, TLS
//!   and plain HTTP, optional client certificate; async and blocking.
//! - [`env::Env`]: one ironseal test's world (temp dir, DNS, server, an
//!   http-01 responder); [`subject::TestEnv`]: the same for the certbot /
//!   lego tests, which can also run against Pebble.
//! - [`acme`] (raw JWS client, instant-acme flows, ARI), [`pki`] (admin CLI,
//!   openssl, CRLs, pkilint), [`certs`] (issued-chain checks), [`clients`]
//!   (certbot, lego). Test files start with `use ironseal_conformance::prelude::*;`.
//!
//! Running:
//!
//! ```text
//! scripts/install-test-deps.sh                      # certbot + pkilint venv, lego, pebble
//! cargo build --release -p ironseal                 # the suite never builds the server
//! cargo test -p ironseal-conformance -- --test-threads=2
//! IRONSEAL_TEST_SUBJECT=pebble cargo test -p ironseal-conformance -- --test-threads=2
//! ```
//!
//! Environment:
//! - `IRONSEAL_TEST_SUBJECT`: `ironseal` (default) or `pebble`. Only Pebble runs
//!   may skip a check (printed as `SKIPPED for pebble: ...`); ironseal runs never skip.
//! - `IRONSEAL_BIN`: the server binary; else `$CARGO_TARGET_DIR/release/ironseal`
//!   if present, else `<workspace>/target/release/ironseal`.
//! - `IRONSEAL_VENV`: venv holding `certbot` and `lint_pkix_cert` (default `<workspace>/.venv`).
//! - `IRONSEAL_PEBBLE`, `IRONSEAL_CHALLTESTSRV`, `IRONSEAL_LEGO`: override those binaries.
//! - `IRONSEAL_KEEP_TMP=1`: keep every test's work dir (kept anyway when a test fails).
//! - `IRONSEAL_CONF_VERBOSE=1`: print every client's full output.
//!
//! Outside tools used: `curl` (only in the hook scripts in
//! `conformance/scripts/`), `openssl`, pkilint, certbot, lego,
//! `pebble-challtestsrv` (fake DNS; its challenge responders are disabled).

pub mod acme;
pub mod bench;
pub mod certs;
pub mod challtestsrv;
pub mod client;
pub mod clients;
pub mod env;
pub mod est_tls;
pub mod intune_fake;
pub mod net;
pub mod pg;
pub mod pki;
pub mod proc;
pub mod pty;
pub mod replicas;
pub mod server;
pub mod subject;

pub use env::Env;
pub use server::Server;
pub use subject::{Subject, TestEnv};

/// Everything a test file needs: `use ironseal_conformance::prelude::*;`.
pub mod prelude {
    pub use crate::acme::*;
    pub use crate::client::{ClientConfig, HttpClient, Response};
    pub use crate::env::*;
    pub use crate::pki::*;
    pub use crate::server::{ironseal_bin, Server};
}
