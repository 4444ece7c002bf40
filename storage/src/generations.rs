//! Change generations: one counter per kind of record that a server keeps
//! a copy of in memory (issue 11). Every change of such a record bumps its
//! kind's counter — on PostgreSQL by a trigger, inside the transaction of
//! the change itself; on sled and in memory right after the write, in the
//! process (one process owns a sled store, so nobody else polls it).
//!
//! A replica reads every counter at once with
//! [`Store::change_generations`](crate::Store::change_generations) (one
//! small query), compares with what it read last, and reloads only the
//! kinds that moved. A counter only ever grows while the store is open;
//! sled and memory counters start again at 0 when the process does.

use std::sync::atomic::{AtomicU64, Ordering};

/// A kind of record whose changes replicas must see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// CA records (created, imported, activated, status, cross-signed).
    Cas,
    /// Settings (issuing-CA pin, SCEP RA certificate; see [`crate::settings`]).
    Settings,
    /// Tenants.
    Tenants,
    /// ACME external account binding keys (created, bound, disabled).
    EabKeys,
    /// Admin API keys.
    ApiKeys,
    /// EST Basic users.
    EstUsers,
    /// Certificate revocations.
    Revocations,
}

impl ChangeKind {
    /// Every kind, in a fixed order (the index into [`Generations`]).
    pub const ALL: [ChangeKind; 7] = [
        ChangeKind::Cas,
        ChangeKind::Settings,
        ChangeKind::Tenants,
        ChangeKind::EabKeys,
        ChangeKind::ApiKeys,
        ChangeKind::EstUsers,
        ChangeKind::Revocations,
    ];

    /// The kind's name (the PostgreSQL row key and the metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Cas => "cas",
            ChangeKind::Settings => "settings",
            ChangeKind::Tenants => "tenants",
            ChangeKind::EabKeys => "eab_keys",
            ChangeKind::ApiKeys => "api_keys",
            ChangeKind::EstUsers => "est_users",
            ChangeKind::Revocations => "revocations",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Every kind's counter at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generations([u64; ChangeKind::ALL.len()]);

impl Generations {
    /// The counter of `kind`.
    pub fn get(&self, kind: ChangeKind) -> u64 {
        self.0[kind.index()]
    }

    /// Sets the counter of `kind` (backends building a snapshot).
    pub fn set(&mut self, kind: ChangeKind, generation: u64) {
        self.0[kind.index()] = generation;
    }

    /// The kinds whose counter differs from `earlier`'s.
    pub fn changed_since(&self, earlier: &Generations) -> Vec<ChangeKind> {
        ChangeKind::ALL
            .into_iter()
            .filter(|k| self.get(*k) != earlier.get(*k))
            .collect()
    }
}

/// The in-process counters of the sled and memory backends.
#[derive(Debug, Default)]
pub(crate) struct Counters([AtomicU64; ChangeKind::ALL.len()]);

impl Counters {
    /// Counts one change of `kind`.
    pub(crate) fn bump(&self, kind: ChangeKind) {
        self.0[kind.index()].fetch_add(1, Ordering::SeqCst);
    }

    /// Every counter now.
    pub(crate) fn snapshot(&self) -> Generations {
        let mut g = Generations::default();
        for k in ChangeKind::ALL {
            g.set(k, self.0[k.index()].load(Ordering::SeqCst));
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_changes_are_listed() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::from_name(k.as_str()), Some(k));
        }
        let c = Counters::default();
        let before = c.snapshot();
        c.bump(ChangeKind::Revocations);
        c.bump(ChangeKind::Cas);
        assert_eq!(
            c.snapshot().changed_since(&before),
            vec![ChangeKind::Cas, ChangeKind::Revocations]
        );
    }
}
