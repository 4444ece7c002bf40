//! Connection hygiene on the real binary (hardening issue, item 2): silent
//! sockets are closed after the first-byte timeout, an idle keep-alive
//! connection is closed, one client IP cannot hold more than its share of
//! connections while another IP is still served, and the refusals show in
//! `/metrics`. Loopback only: the second client is 127.0.0.2.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ironseal_conformance::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const CONFIG: &str = "[limits]\nheader_read_timeout_secs = 2\nidle_timeout_secs = 3\n\
                      max_connections_per_ip = 8\n";

async fn connect_from(src: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(format!("{src}:0").parse().expect("addr"))
        .expect("bind");
    s.connect(to).await.expect("connect")
}

/// Waits up to `limit` for the server to close `s` (EOF or reset);
/// answers how long that took, or `None` if it stayed open.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn metrics(env: &Env) -> String {
    let url = format!("{}/metrics", env.srv.http_base_url());
    blocking(move || ironseal_conformance::client::get(&url, None))
        .expect("metrics")
        .text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_idle_and_greedy_connections_are_closed() {
    let env = Env::start_with_config("connections", CONFIG).await;
    let addr: SocketAddr = format!("127.0.0.1:{}", env.srv.http_port)
        .parse()
        .expect("addr");

    // Silent sockets: closed after the 2 s first-byte timeout, not held.
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(connect_from("127.0.0.1", addr).await);
    }
    for s in &mut silent {
        let took = closed_within(s, Duration::from_secs(8)).await;
        assert!(took.is_some(), "a silent connection stayed open for 8 s");
    }

    // A keep-alive connection that goes quiet after one request is closed.
    let mut s = connect_from("127.0.0.1", addr).await;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.expect("read");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "health: {}",
        String::from_utf8_lossy(&buf[..n])
    );
    let took = closed_within(&mut s, Duration::from_secs(8)).await;
    assert!(took.is_some(), "an idle keep-alive connection stayed open");

    // One IP holds at most 8: the 9th is closed at once, while another
    // loopback address is still served.
    let before = counter(
        &metrics(&env).await,
        "ironseal_connections_refused_total{reason=\"per_ip\"}",
    );
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect_from("127.0.0.3", addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ninth = connect_from("127.0.0.3", addr).await;
    let took = closed_within(&mut ninth, Duration::from_secs(1)).await;
    assert!(took.is_some(), "the 9th connection of one IP was kept");
    let mut other = connect_from("127.0.0.2", addr).await;
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    other.read_to_end(&mut answer).await.expect("read");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "another IP was not served: {}",
        String::from_utf8_lossy(&answer)
    );
    let m = metrics(&env).await;
    assert!(
        counter(&m, "ironseal_connections_refused_total{reason=\"per_ip\"}") > before,
        "refusal not counted"
    );
    assert!(
        counter(&m, "ironseal_connections_closed_idle_total") >= 5,
        "idle closes not counted: {m}"
    );
    drop(held);
}
