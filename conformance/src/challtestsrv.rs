//! `pebble-challtestsrv` as the fake DNS server (dns-01 TXT records and A
//! records for every name, pointing at 127.0.0.1). Its HTTP/TLS challenge
//! responders are disabled: the ACME clients answer those themselves.

use crate::{client, net, proc};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub struct ChallTestSrv {
    pub dns_port: u16,
    pub mgmt_port: u16,
    guard: proc::Guard,
}

impl ChallTestSrv {
    pub fn start(workdir: &Path) -> Result<ChallTestSrv, String> {
        let bin =
            std::env::var("IRONSEAL_CHALLTESTSRV").unwrap_or_else(|_| "pebble-challtestsrv".into());
        let dns_port = net::free_tcp_udp_port();
        let mgmt_port = net::free_tcp_port();
        let mut cmd = Command::new(bin);
        // pebble-challtestsrv 2.4 has no -doh flag (later versions do).
        cmd.arg("-dns01")
            .arg(format!("127.0.0.1:{dns_port}"))
            .arg("-management")
            .arg(format!("127.0.0.1:{mgmt_port}"))
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]);
        let mut guard = proc::Guard::spawn(
            "pebble-challtestsrv",
            cmd,
            &workdir.join("challtestsrv.log"),
        )?;
        let url = format!("http://127.0.0.1:{mgmt_port}");
        // Ready when the management API answers (any status) and DNS is bound.
        let ready = proc::wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
            if guard.exited().is_some() {
                return Some(false);
            }
            client::post_json(
                &format!("{url}/clear-txt"),
                None,
                r#"{"host":"_ready.test."}"#,
            )
            .ok()
            .map(|_| true)
        });
        match ready {
            Some(true) => Ok(ChallTestSrv {
                dns_port,
                mgmt_port,
                guard,
            }),
            _ => Err(format!(
                "pebble-challtestsrv did not come up:\n{}",
                guard.log_tail(4000)
            )),
        }
    }

    /// Management API base URL, passed to the hook scripts as IRONSEAL_CHALLTESTSRV_URL.
    pub fn mgmt_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.mgmt_port)
    }

    pub fn dns_addr(&self) -> String {
        format!("127.0.0.1:{}", self.dns_port)
    }

    fn post(&self, path: &str, body: serde_json::Value) -> Result<(), String> {
        let r = client::post_json(
            &format!("{}{path}", self.mgmt_url()),
            None,
            &body.to_string(),
        )?;
        if r.status == 200 {
            Ok(())
        } else {
            Err(format!("challtestsrv {path}: {}", r.describe()))
        }
    }

    pub fn set_txt(&self, host: &str, value: &str) -> Result<(), String> {
        self.post(
            "/set-txt",
            serde_json::json!({"host": host, "value": value}),
        )
    }

    pub fn clear_txt(&self, host: &str) -> Result<(), String> {
        self.post("/clear-txt", serde_json::json!({"host": host}))
    }

    /// Points `host` (FQDN with trailing dot) at the given IPv4 addresses.
    pub fn add_a(&self, host: &str, addrs: &[&str]) -> Result<(), String> {
        self.post(
            "/add-a",
            serde_json::json!({"host": host, "addresses": addrs}),
        )
    }

    /// Sets the CAA RRset of `host` (FQDN with trailing dot): (tag, value)
    /// pairs, flags 0.
    pub fn add_caa(&self, host: &str, records: &[(&str, &str)]) -> Result<(), String> {
        let policies: Vec<serde_json::Value> = records
            .iter()
            .map(|(tag, value)| serde_json::json!({"tag": tag, "value": value}))
            .collect();
        self.post(
            "/add-caa",
            serde_json::json!({"host": host, "policies": policies}),
        )
    }

    /// Removes the CAA RRset of `host`.
    pub fn clear_caa(&self, host: &str) -> Result<(), String> {
        self.post("/clear-caa", serde_json::json!({"host": host}))
    }

    /// Makes every query for `host` answer SERVFAIL.
    pub fn set_servfail(&self, host: &str) -> Result<(), String> {
        self.post("/set-servfail", serde_json::json!({"host": host}))
    }

    pub fn log_tail(&self, max: usize) -> String {
        self.guard.log_tail(max)
    }
}
