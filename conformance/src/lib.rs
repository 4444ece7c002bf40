#![forbid(unsafe_code)]
//! Black-box conformance harness: runs the ACME server under test (ironseal,
//! or Pebble with `IRONSEAL_TEST_SUBJECT=pebble`) on loopback together with
//! `pebble-challtestsrv` as fake DNS, and drives real clients (certbot, lego)
//! against it. Every subprocess is killed on drop and every wait is bounded.
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
//! Outside tools used: `curl` (harness HTTP and the hook scripts in
//! `conformance/scripts/`), `openssl`, pkilint, certbot, lego,
//! `pebble-challtestsrv` (fake DNS; its challenge responders are disabled).

pub mod certs;
pub mod challtestsrv;
pub mod clients;
pub mod http;
pub mod net;
pub mod proc;
pub mod subject;

pub use subject::{Subject, TestEnv};
