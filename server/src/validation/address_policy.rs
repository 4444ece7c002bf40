//! Which addresses challenge validation may connect to.
//!
//! A CA that dials whatever an applicant's DNS (or redirect) names is a
//! server-side request forgery tool: it would probe loopback services, the
//! operator's internal networks and cloud metadata endpoints on the
//! applicant's behalf. So by default validation only connects to *globally
//! reachable* addresses, as listed in the IANA special-purpose address
//! registries (RFC 6890, updated by RFC 8190), and the operator opts
//! internal ranges in explicitly (`[validation] allow_addresses`).
//!
//! The policy is applied to every address right before it is dialled
//! ([`super::connect_first`]), so it covers IP identifiers, every DNS
//! answer, every http-01 redirect hop and tls-alpn-01 alike.
//!
//! IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) and IPv4-compatible
//! (`::a.b.c.d`, deprecated) IPv6 forms are judged as the IPv4 address they
//! carry, so `::ffff:127.0.0.1` is loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use ironseal_ca_core::constraints::embedded_ipv4;

/// The set of non-public addresses validation may still connect to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    /// Operator-allowed ranges (checked against the canonical form of the
    /// address, so an IPv4 range also admits its IPv4-mapped IPv6 form).
    pub allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// Public addresses only.
    pub fn public_only() -> AddressPolicy {
        AddressPolicy::default()
    }

    /// Public addresses plus `allowed`.
    pub fn with_allowed(allowed: Vec<IpNet>) -> AddressPolicy {
        AddressPolicy { allowed }
    }

    /// Adds loopback (127.0.0.0/8 and ::1/128); what the test knobs imply.
    pub fn allow_loopback(mut self) -> AddressPolicy {
        for net in ["127.0.0.0/8", "::1/128"] {
            if let Ok(n) = net.parse::<IpNet>() {
                if !self.allowed.contains(&n) {
                    self.allowed.push(n);
                }
            }
        }
        self
    }

    /// Adds single addresses (the ones an operator's hosts file names).
    pub fn allow_hosts(mut self, ips: &[std::net::IpAddr]) -> AddressPolicy {
        for ip in ips {
            let net = IpNet::from(*ip);
            if !self.allowed.contains(&net) {
                self.allowed.push(net);
            }
        }
        self
    }

    /// `Ok` when `ip` may be dialled; otherwise the reason (a short,
    /// fixed phrase naming the address class).
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        let canon = canonical(ip);
        if self.allowed.iter().any(|n| n.contains(&canon)) {
            return Ok(());
        }
        match special_purpose(canon) {
            None => Ok(()),
            Some(class) => Err(class),
        }
    }
}

/// The address as IPv4 when it is an IPv4-mapped or IPv4-compatible IPv6
/// address; unchanged otherwise.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_ipv4(&v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The special-purpose class `ip` (already canonical) belongs to, or `None`
/// for a globally reachable unicast address.
fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

/// RFC 6890 §2.2.2 and the IANA IPv4 special-purpose registry.
fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let v = u32::from(ip);
    let in_net = |base: [u8; 4], len: u32| {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        v & mask == u32::from(Ipv4Addr::from(base)) & mask
    };
    if in_net([0, 0, 0, 0], 8) {
        Some("unspecified or \"this network\" address (0.0.0.0/8)")
    } else if in_net([127, 0, 0, 0], 8) {
        Some("loopback address")
    } else if in_net([10, 0, 0, 0], 8)
        || in_net([172, 16, 0, 0], 12)
        || in_net([192, 168, 0, 0], 16)
    {
        Some("private address (RFC 1918)")
    } else if in_net([169, 254, 0, 0], 16) {
        Some("link-local address (169.254.0.0/16)")
    } else if in_net([100, 64, 0, 0], 10) {
        Some("shared address space (100.64.0.0/10, RFC 6598)")
    } else if in_net([192, 0, 0, 0], 24) {
        Some("IETF protocol assignment (192.0.0.0/24)")
    } else if in_net([192, 0, 2, 0], 24)
        || in_net([198, 51, 100, 0], 24)
        || in_net([203, 0, 113, 0], 24)
    {
        Some("documentation address (RFC 5737)")
    } else if in_net([198, 18, 0, 0], 15) {
        Some("benchmarking address (198.18.0.0/15)")
    } else if in_net([192, 88, 99, 0], 24) {
        Some("6to4 relay anycast (192.88.99.0/24)")
    } else if o[0] >= 224 {
        Some("multicast, reserved or broadcast address")
    } else {
        None
    }
}

/// RFC 6890 §2.2.3 and the IANA IPv6 special-purpose registry. Only
/// 2000::/3 (global unicast) is public, minus its special blocks.
fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified address (::)");
    }
    if ip.is_loopback() {
        return Some("loopback address");
    }
    if s[0] & 0xff00 == 0xff00 {
        return Some("multicast address");
    }
    if s[0] & 0xfe00 == 0xfc00 {
        return Some("unique local address (fc00::/7)");
    }
    if s[0] & 0xffc0 == 0xfe80 {
        return Some("link-local address (fe80::/10)");
    }
    if s[0] & 0xe000 != 0x2000 {
        return Some("address outside global unicast (2000::/3)");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Some("documentation address (2001:db8::/32)");
    }
    if s[0] == 0x2001 && s[1] < 0x0200 {
        return Some("IETF protocol assignment (2001::/23)");
    }
    if s[0] == 0x2002 {
        return Some("6to4 address (2002::/16)");
    }
    if s[0] == 0x3fff && s[1] & 0xf000 == 0 {
        return Some("documentation address (3fff::/20)");
    }
    None
}

#[cfg(test)]
mod unit {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_refuses_special_purpose_ranges() {
        let p = AddressPolicy::public_only();
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
        ] {
            assert!(p.check(ip(a)).is_err(), "{a} must be refused");
        }
    }

    #[test]
    fn default_accepts_public_addresses() {
        let p = AddressPolicy::public_only();
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(p.check(ip(a)).is_ok(), "{a} must be accepted");
        }
    }

    #[test]
    fn operator_ranges_and_loopback_knob() {
        let p = AddressPolicy::with_allowed(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(p.check(ip("10.9.9.9")).is_ok());
        assert!(p.check(ip("::ffff:10.9.9.9")).is_ok());
        assert!(p.check(ip("192.168.0.1")).is_err());
        assert!(p.check(ip("127.0.0.1")).is_err());
        let p = p.allow_loopback();
        assert!(p.check(ip("127.0.0.1")).is_ok());
        assert!(p.check(ip("::1")).is_ok());
        assert!(p.check(ip("169.254.169.254")).is_err());
    }
}
