//! Connection accounting for one listener: a cap on open connections and a
//! cap per client IP (IPv6 per /64, like the rate limits), so that silent
//! sockets cannot exhaust file descriptors and stop OCSP, CRLs and ACME
//! together. A connection over either cap is closed at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Connections closed at accept because the listener was full
/// (`ironseal_connections_refused_total{reason="listener_full"}`).
pub static REFUSED_FULL: AtomicU64 = AtomicU64::new(0);
/// ... because the client IP held its share (`reason="per_ip"`).
pub static REFUSED_PER_IP: AtomicU64 = AtomicU64::new(0);
/// Connections closed for sending nothing in time or idling
/// (`ironseal_connections_closed_idle_total`).
pub static CLOSED_IDLE: AtomicU64 = AtomicU64::new(0);

/// Counts one refusal.
pub fn count_refused(r: Refused) {
    match r {
        Refused::Total => REFUSED_FULL.fetch_add(1, Ordering::Relaxed),
        Refused::PerIp => REFUSED_PER_IP.fetch_add(1, Ordering::Relaxed),
    };
}

/// Caps for one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// Open connections on the listener.
    pub total: usize,
    /// Open connections from one client IP (IPv6: one /64).
    pub per_ip: usize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener is full.
    Total,
    /// This client holds its share.
    PerIp,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// The open connections of one listener.
pub struct Connections {
    caps: ConnectionCaps,
    counts: Mutex<Counts>,
}

/// One admitted connection; dropping it releases its slot.
pub struct Slot {
    owner: Arc<Connections>,
    ip: IpAddr,
}

/// The key a client's connections are counted under: the address, or its
/// /64 for IPv6 (one host usually owns a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Connections {
    /// Accounting under `caps`.
    pub fn new(caps: ConnectionCaps) -> Arc<Connections> {
        Arc::new(Connections {
            caps,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Admits a connection from `ip`, or says which cap it hits.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let key = client_key(ip);
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.total >= self.caps.total {
            return Err(Refused::Total);
        }
        let n = c.by_ip.entry(key).or_default();
        if *n >= self.caps.per_ip {
            return Err(Refused::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            owner: self.clone(),
            ip: key,
        })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.owner.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn caps_hold_and_slots_come_back() {
        let c = Connections::new(ConnectionCaps {
            total: 3,
            per_ip: 2,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = c.admit(a).unwrap();
        let _s2 = c.admit(a).unwrap();
        assert_eq!(c.admit(a).err(), Some(Refused::PerIp));
        let _s3 = c.admit(b).unwrap();
        assert_eq!(c.admit(b).err(), Some(Refused::Total));
        drop(s1);
        assert_eq!(c.open(), 2);
        assert!(c.admit(a).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let c = Connections::new(ConnectionCaps {
            total: 100,
            per_ip: 1,
        });
        let _x = c.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(
            c.admit("2001:db8::2".parse().unwrap()).err(),
            Some(Refused::PerIp)
        );
        assert!(c.admit("2001:db8:0:1::1".parse().unwrap()).is_ok());
        let _y = c.admit("198.51.100.7".parse().unwrap()).unwrap();
        assert_eq!(
            c.admit("::ffff:198.51.100.7".parse().unwrap()).err(),
            Some(Refused::PerIp)
        );
    }
}
