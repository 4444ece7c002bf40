//! Protocol and CA types this crate stores, re-exported from the crates that
//! define them (`ironseal-protocol` for ACME states and identifiers,
//! `ironseal-ca-core` for revocation reasons and key algorithms). Their serde
//! forms are the wire forms, so stored records read as they were written.

pub use ironseal_ca_core::keys::KeyAlgorithm;
pub use ironseal_ca_core::revocation::RevocationReason;
pub use ironseal_protocol::acme::types::{
    AccountStatus, AuthzStatus, ChallengeStatus, ChallengeType, Identifier, IdentifierKind,
    OrderStatus,
};
