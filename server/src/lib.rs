//! The ironseal CA server as a library: everything `ironseal serve` and
//! `ironseal admin` run (`src/main.rs` only parses the command line), and
//! what the fuzz targets (`fuzz/`) reach: admin API routing and request
//! bodies, configuration, and the other parsers of untrusted input.
#![forbid(unsafe_code)]

pub mod acme;
pub mod admin;
pub mod audit_keys;
pub mod authority;
pub mod bootstrap;
pub mod cli;
pub mod client_cert;
pub mod config;
pub mod crl;
pub mod durability;
pub mod est;
pub mod http;
pub mod ids;
pub mod in_flight;
pub mod leases;

pub mod listener_cert;
pub mod metrics;
pub mod ocsp;
pub mod ocsp_responders;
pub mod pki_http;
pub mod progress;
pub mod propagate;
pub mod rate_limits;
pub mod restore;
pub mod scep;
pub mod state;
pub mod store_transfer;
pub mod validation;
