//! Checks of API payloads that name the exact field that is wrong, so a bad
//! request is refused whole with a 4xx and nothing is half-applied.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tufa_metadata::{HashAlgorithm, TargetFile};

use crate::error::{Error, Result};

/// The longest target path accepted.
pub const MAX_PATH_LEN: usize = 4096;

/// Checks a target path: relative, `/`-separated, no `.`/`..` or empty
/// segments, no backslash or control characters.
pub fn target_path(field: &str, path: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::invalid(field, format!("{path:?} {reason}")));
    if path.is_empty() {
        return bad("is empty");
    }
    if path.len() > MAX_PATH_LEN {
        return Err(Error::invalid(
            field,
            format!("is longer than {MAX_PATH_LEN} bytes"),
        ));
    }
    if path.starts_with('/') {
        return bad("is absolute");
    }
    if path.contains('\\') {
        return bad("contains a backslash");
    }
    if path.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    for segment in path.split('/') {
        match segment {
            "" => return bad("has an empty segment"),
            "." | ".." => return bad("contains a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}

/// Parses and checks an RSTUF artifact `info` object into a target file.
pub fn artifact_info(field: &str, info: &Value) -> Result<TargetFile> {
    let Value::Object(obj) = info else {
        return Err(Error::invalid(
            field,
            "must be an object with length and hashes",
        ));
    };
    let length = match obj.get("length") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            Error::invalid(
                format!("{field}.length"),
                format!("must be a non-negative integer, got {n}"),
            )
        })?,
        Some(other) => {
            return Err(Error::invalid(
                format!("{field}.length"),
                format!("must be an integer, got {other}"),
            ));
        }
        None => return Err(Error::invalid(format!("{field}.length"), "is required")),
    };
    let hashes = match obj.get("hashes") {
        Some(Value::Object(h)) if !h.is_empty() => h,
        Some(Value::Object(_)) => {
            return Err(Error::invalid(
                format!("{field}.hashes"),
                "must list at least one hash",
            ));
        }
        Some(_) => {
            return Err(Error::invalid(
                format!("{field}.hashes"),
                "must be an object",
            ));
        }
        None => return Err(Error::invalid(format!("{field}.hashes"), "is required")),
    };
    let mut checked = BTreeMap::new();
    for (name, value) in hashes {
        let hfield = format!("{field}.hashes.{name}");
        let algorithm = HashAlgorithm::from_name(name).map_err(|_| {
            Error::invalid(
                &hfield,
                "unsupported hash algorithm (use sha256, sha512 or blake2b-256)",
            )
        })?;
        let Value::String(hex_digest) = value else {
            return Err(Error::invalid(&hfield, "must be a hex string"));
        };
        let want = algorithm.digest_len() * 2;
        if hex_digest.len() != want || !hex_digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                &hfield,
                format!("must be {want} hex digits, got {:?}", truncate(hex_digest)),
            ));
        }
        checked.insert(name.clone(), hex_digest.to_ascii_lowercase());
    }
    let mut unrecognized = Map::new();
    match obj.get("custom") {
        None | Some(Value::Null) => {}
        Some(custom @ Value::Object(_)) => {
            if tufa_metadata::canonical::to_canonical_bytes(custom).is_err() {
                return Err(Error::invalid(
                    format!("{field}.custom"),
                    "must not contain floats",
                ));
            }
            unrecognized.insert("custom".into(), custom.clone());
        }
        Some(_) => {
            return Err(Error::invalid(
                format!("{field}.custom"),
                "must be an object",
            ));
        }
    }
    for key in obj.keys() {
        if !matches!(key.as_str(), "length" | "hashes" | "custom") {
            return Err(Error::invalid(
                format!("{field}.{key}"),
                "is not a known field",
            ));
        }
    }
    Ok(TargetFile {
        length,
        hashes: checked,
        unrecognized,
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The object at `payload[key]`, or a named error.
pub fn object<'a>(payload: &'a Value, field: &str) -> Result<&'a Map<String, Value>> {
    payload
        .as_object()
        .ok_or_else(|| Error::invalid(field, "must be a JSON object"))
}

/// An optional boolean field with a default.
pub fn bool_field(obj: &Map<String, Value>, key: &str, default: bool) -> Result<bool> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Error::invalid(
            key,
            format!("must be true or false, got {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        for ok in ["a", "packages/x/x-1.0.tar.gz", "simple/x/index.html", "é/ü"] {
            target_path("p", ok).unwrap();
        }
        for bad in [
            "", "/abs", "a/../b", "..", "./a", "a\\b", "a//b", "a/", "a\nb",
        ] {
            assert!(target_path("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn info_errors_name_the_field() {
        let err = artifact_info(
            "artifacts[0].info",
            &json!({"length": -1, "hashes": {"sha256": "00"}}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "artifacts[0].info.length: must be a non-negative integer, got -1"
        );
        let err =
            artifact_info("i", &json!({"length": 1, "hashes": {"sha256": "00"}})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("i.hashes.sha256: must be 64 hex digits"),
            "{err}"
        );
        let err = artifact_info("i", &json!({"length": 1, "hashes": {"md5": "00"}})).unwrap_err();
        assert!(
            err.to_string().starts_with("i.hashes.md5: unsupported"),
            "{err}"
        );
        let ok = artifact_info(
            "i",
            &json!({"length": 3, "hashes": {"blake2b-256": "AB".repeat(32)}, "custom": {"k": 1}}),
        )
        .unwrap();
        assert_eq!(ok.hashes["blake2b-256"], "ab".repeat(32));
        assert_eq!(ok.custom(), Some(&json!({"k": 1})));
    }
}
