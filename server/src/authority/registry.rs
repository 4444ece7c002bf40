//! The CA registry: the CAs in force, loaded from the store at start and
//! after every hierarchy change (`bootstrap::load_cas`), read by the
//! authority to pick the signing CA and by the PKI endpoints to build
//! chains, CRLs and OCSP answers.

use std::collections::HashMap;
use std::sync::Arc;

use ironseal_ca_core::hierarchy::Issuer;

/// One CA that can sign, with the PEM chain that follows its certificates
/// up to (not including) the root.
pub struct IssuingCa {
    pub issuer: Issuer,
    /// The certificates (DER) that follow a leaf of this CA: this CA, then
    /// its ancestors up to (not including) the root.
    pub chain_der: Vec<Vec<u8>>,
    /// The PEM chains offered after a leaf: the first is the default chain,
    /// later ones are alternates (RFC 8555 §7.4.2).
    pub chains: Vec<String>,
}

/// The CA material loaded from the store at start.
pub struct CaSet {
    /// The CA that signs new leaves.
    pub active: Arc<IssuingCa>,
    /// Every CA that can sign something (CRLs, leaves), by id.
    pub by_id: HashMap<String, Arc<IssuingCa>>,
    /// Certificates (DER) of the CAs whose key is held outside ironseal
    /// (offline or external roots and intermediates), by id.
    pub external_by_id: HashMap<String, Vec<u8>>,
    /// The root certificate in PEM: the root of the active issuing CA
    /// when the server started (the root of its HTTPS certificate), served
    /// as `root.pem`.
    pub root_pem: String,
    /// The root (PEM) of the active issuing CA now; differs from
    /// `root_pem` after `activate` moved issuance under another root.
    pub active_root_pem: String,
}
