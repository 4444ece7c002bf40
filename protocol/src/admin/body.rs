//! JSON request bodies.

use serde::de::DeserializeOwned;

use super::RequestError;

/// Parses a JSON body (RFC 8259), rejecting unknown fields (via the type's
/// `deny_unknown_fields`); an empty or all-whitespace body reads as `{}`.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, RequestError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| RequestError::bad_request(format!("request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(deny_unknown_fields)]
    struct Empty {
        #[serde(default)]
        a: Option<u8>,
    }

    #[test]
    fn empty_bodies_read_as_an_empty_object() {
        assert_eq!(parse_body::<Empty>(b"").unwrap().a, None);
        assert_eq!(parse_body::<Empty>(b" \n").unwrap().a, None);
        assert_eq!(parse_body::<Empty>(br#"{"a":1}"#).unwrap().a, Some(1));
        let e = parse_body::<Empty>(br#"{"b":1}"#).unwrap_err();
        assert_eq!(e.code, "bad_request");
        assert!(e.message.starts_with("request body: unknown field"), "{e}");
    }
}
