//! Free loopback ports. Each test asks for its own; a process-wide set makes
//! sure two tests in the same binary never get the same number.

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn claim(port: u16) -> bool {
    let mut g = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    g.get_or_insert_with(HashSet::new).insert(port)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    for _ in 0..200 {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = l.local_addr() else { continue };
        drop(l);
        if claim(addr.port()) {
            return addr.port();
        }
    }
    panic!("no free TCP port on 127.0.0.1");
}

/// A port free for both TCP and UDP on 127.0.0.1 (for the fake DNS server).
pub fn free_tcp_udp_port() -> u16 {
    for _ in 0..200 {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = l.local_addr() else { continue };
        let udp = UdpSocket::bind(("127.0.0.1", addr.port()));
        drop(l);
        if udp.is_ok() && claim(addr.port()) {
            return addr.port();
        }
    }
    panic!("no port free for both TCP and UDP on 127.0.0.1");
}
