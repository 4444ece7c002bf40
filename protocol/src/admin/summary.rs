//! The audit-log summary of an admin request.

use serde_json::Value;

/// A short, secret-free summary of a request for the audit log: the query
/// string and the JSON body with long arrays shortened, at most 300 chars.
/// Members named like a secret (`privateKeyPem`, ...) and strings holding
/// a PEM private key are replaced by `<redacted>`: even the first 80
/// characters of a PKCS#8 EC key carry part of the private scalar.
pub fn summarize(query: Option<&str>, body: &[u8]) -> String {
    fn secret_name(name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        n.contains("private") || n.contains("secret") || n.contains("password")
    }
    fn shorten(v: &Value) -> Value {
        match v {
            Value::String(s) if s.contains("PRIVATE KEY") => Value::String("<redacted>".into()),
            Value::Array(a) if a.len() > 3 => {
                let mut out: Vec<Value> = a.iter().take(3).map(shorten).collect();
                out.push(Value::String(format!("... {} items in all", a.len())));
                Value::Array(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(shorten).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = if secret_name(k) {
                            Value::String("<redacted>".into())
                        } else {
                            shorten(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::String(s) if s.chars().count() > 80 => {
                Value::String(format!("{}...", s.chars().take(80).collect::<String>()))
            }
            other => other.clone(),
        }
    }
    let mut parts = Vec::new();
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        parts.push(format!("query={}", q.chars().take(120).collect::<String>()));
    }
    if !body.is_empty() {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => parts.push(format!("body={}", shorten(&v))),
            Err(_) => parts.push(format!("body=<{} bytes, not JSON>", body.len())),
        }
    }
    let s = parts.join(" ");
    if s.chars().count() > 300 {
        format!("{}...", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn summaries_never_carry_private_keys() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETSECRETSECRET\n-----END PRIVATE KEY-----\n";
        let body = serde_json::json!({
            "name": "Imported",
            "certificatePem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "privateKeyPem": key,
            "nested": [{"anything": key}],
            "clientSecret": "hunter2",
        })
        .to_string();
        let s = summarize(None, body.as_bytes());
        assert!(
            !s.contains("SECRET") && !s.contains("hunter2") && !s.contains("BG0w"),
            "{s}"
        );
        assert!(
            s.contains("privateKeyPem") && s.contains("<redacted>"),
            "{s}"
        );
        assert!(
            s.contains("Imported") && s.contains("BEGIN CERTIFICATE"),
            "{s}"
        );
    }

    #[test]
    fn summaries_are_short() {
        let body = serde_json::json!({ "serials": vec!["ab"; 50], "x": "y".repeat(500) });
        let s = summarize(Some(&"q".repeat(500)), body.to_string().as_bytes());
        assert!(s.chars().count() <= 303, "{s}");
        assert_eq!(summarize(None, b"not json"), "body=<8 bytes, not JSON>");
    }
}
