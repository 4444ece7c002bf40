//! `docs/openapi.yaml` describes exactly the routes of [`super::routes::ROUTES`]
//! and both ways to authenticate (API keys, client certificates).
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::collections::BTreeSet;

use serde_json::Value;

use super::routes::ROUTES;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[test]
fn openapi_matches_route_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    // 3.1: the `mutualTLS` security scheme type is new in OpenAPI 3.1.
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "not an OpenAPI 3.1 document"
    );
    let mut documented = BTreeSet::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (p, item) in paths {
        let item = item.as_object().expect("path item");
        for (k, op) in item {
            if METHODS.contains(&k.as_str()) {
                assert!(
                    op["responses"].is_object(),
                    "{k} {p}: no responses documented"
                );
                documented.insert((k.to_ascii_uppercase(), p.clone()));
            }
        }
    }
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    let kind = |t: &str| {
        schemes
            .iter()
            .find(|(_, v)| v["type"] == t)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| panic!("no {t} security scheme"))
    };
    let (bearer, mtls) = (kind("http"), kind("mutualTLS"));
    assert_eq!(schemes[&bearer]["scheme"], "bearer");
    // Either one authenticates: two alternatives, not one requirement.
    let security: Vec<&Value> = doc["security"]
        .as_array()
        .expect("security")
        .iter()
        .collect();
    for name in [&bearer, &mtls] {
        assert!(
            security.iter().any(|req| req
                .as_object()
                .is_some_and(|o| o.len() == 1 && o.contains_key(name))),
            "{name} is not a security alternative of its own: {security:?}"
        );
    }
    // `nullable` is OpenAPI 3.0 only; 3.1 writes `type: [T, "null"]`.
    assert!(
        !text.contains("nullable:"),
        "openapi.yaml uses the 3.0 keyword nullable"
    );
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "openapi.yaml and the route table differ\nnot documented: {missing:?}\nnot routed: {extra:?}"
    );
}
