//! OLPC canonical JSON, byte-exact with `securesystemslib.formats.encode_canonical`.
//!
//! Signatures in TUF are made over these bytes, so any difference from
//! securesystemslib (Unicode normalisation, escaping, key order) breaks interop.
//! Rules: no whitespace; object keys sorted by code point (UTF-8 byte order);
//! strings escape only `\` and `"`, every other character is written raw;
//! integers only; floats are rejected.

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;

/// Encodes a JSON value in canonical form.
///
/// Fails with [`Error::NonCanonicalNumber`] on a float, the only JSON value
/// canonical JSON cannot represent.
pub fn to_canonical_bytes(value: &Value) -> Result<Vec<u8>, Error> {
    to_canonical_bytes_sized(value, 256)
}

/// As [`to_canonical_bytes`], with room for `size_hint` bytes from the
/// start (the size of the file the value was read from, say), so a large
/// document is not copied again each time the buffer grows.
pub fn to_canonical_bytes_sized(value: &Value, size_hint: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(size_hint);
    write_value(value, &mut out)?;
    Ok(out)
}

/// Encodes a JSON value as canonical JSON that JSON parsers accept, for
/// writing metadata files.
///
/// As [`to_canonical_bytes`], except that control characters (U+0000 to
/// U+001F) in strings are escaped the way serde_json and Python's `json`
/// escape them (`\n`, `\u001f`). Canonical JSON writes them raw, and strict
/// parsers (serde_json, Python's `json`, hence python-tuf) refuse raw control
/// characters, so a file written in the signing form would be unreadable.
/// Without control characters the two encodings are identical.
pub fn to_json_bytes(value: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(256);
    write_value_with(value, &mut out, true)?;
    Ok(out)
}

/// Serialises any serde value and encodes it in canonical form.
pub fn to_canonical_bytes_of<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let value = serde_json::to_value(value).map_err(|e| Error::Serialize(e.to_string()))?;
    to_canonical_bytes(&value)
}

/// Appends the canonical encoding of `value` to `out`.
pub fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    write_value_with(value, out, false)
}

/// `escape_controls`: escape control characters, see [`to_json_bytes`].
fn write_value_with(value: &Value, out: &mut Vec<u8>, escape_controls: bool) -> Result<(), Error> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_u64(u, out);
            } else if let Some(i) = n.as_i64() {
                // Negative: as_u64 took every non-negative integer.
                out.push(b'-');
                write_u64(i.unsigned_abs(), out);
            } else {
                return Err(Error::NonCanonicalNumber(n.to_string()));
            }
        }
        Value::String(s) => write_string(s, out, escape_controls),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value_with(item, out, escape_controls)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's default Map is a BTreeMap<String, _>: iteration is
            // already in byte order, which for UTF-8 is code point order. The
            // debug assertion guards against someone enabling `preserve_order`.
            let mut previous: Option<&str> = None;
            for (i, (key, item)) in map.iter().enumerate() {
                debug_assert!(previous.is_none_or(|p| p < key.as_str()));
                previous = Some(key);
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out, escape_controls);
                out.push(b':');
                write_value_with(item, out, escape_controls)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Decimal digits of `u`, without allocating (snapshots hold thousands).
fn write_u64(mut u: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends the canonical encoding of the string `s` to `out`.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    write_string(s, out, false);
}

/// Turns canonical bytes into the file form [`to_json_bytes`] writes:
/// canonical JSON has no whitespace, so a byte below 0x20 can only be a raw
/// control character inside a string, and escaping each such byte in place
/// is exactly what [`to_json_bytes`] does to strings. Borrowed when there is
/// nothing to escape, which is nearly always.
pub fn escape_control_characters(canonical: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !canonical.iter().any(|&b| b < 0x20) {
        return std::borrow::Cow::Borrowed(canonical);
    }
    let mut out = Vec::with_capacity(canonical.len() + 16);
    let mut start = 0;
    for (i, &b) in canonical.iter().enumerate() {
        if b < 0x20 {
            out.extend_from_slice(&canonical[start..i]);
            write_control_escape(b, &mut out);
            start = i + 1;
        }
    }
    out.extend_from_slice(&canonical[start..]);
    std::borrow::Cow::Owned(out)
}

fn write_control_escape(b: u8, out: &mut Vec<u8>) {
    match b {
        0x08 => out.extend_from_slice(b"\\b"),
        b'\t' => out.extend_from_slice(b"\\t"),
        b'\n' => out.extend_from_slice(b"\\n"),
        0x0c => out.extend_from_slice(b"\\f"),
        b'\r' => out.extend_from_slice(b"\\r"),
        _ => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
    }
}

fn write_string(s: &str, out: &mut Vec<u8>, escape_controls: bool) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' || b == b'\\' {
            out.extend_from_slice(&bytes[start..i]);
            out.push(b'\\');
            out.push(b);
            start = i + 1;
        } else if escape_controls && b < 0x20 {
            out.extend_from_slice(&bytes[start..i]);
            write_control_escape(b, out);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn enc(v: Value) -> String {
        String::from_utf8(to_canonical_bytes(&v).unwrap()).unwrap()
    }

    #[test]
    fn examples_from_securesystemslib_docstring() {
        assert_eq!(enc(json!("")), r#""""#);
        assert_eq!(enc(json!([1, 2, 3])), "[1,2,3]");
        assert_eq!(enc(json!([])), "[]");
        assert_eq!(enc(json!({"A": [99]})), r#"{"A":[99]}"#);
        assert_eq!(enc(json!({"x": 3, "y": 2})), r#"{"x":3,"y":2}"#);
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        assert_eq!(enc(json!("a\"b\\c\n\u{1}é𝄞")), "\"a\\\"b\\\\c\n\u{1}é𝄞\"");
    }

    #[test]
    fn json_bytes_escape_control_characters_so_parsers_accept_them() {
        let v = json!({"k\u{1}": ["a\u{0}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f}\"\\é𝄞", 1]});
        let bytes = to_json_bytes(&v).unwrap();
        // The escapes serde_json and Python's json.dumps write.
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "{\"k\\u0001\":[\"a\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f\u{7f}\\\"\\\\é𝄞\",1]}"
        );
        assert_eq!(bytes, serde_json::to_vec(&v).unwrap());
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, v);
        // Without control characters it is the canonical form.
        let plain = json!({"b": "\"\\é", "a": [1, -2]});
        assert_eq!(
            to_json_bytes(&plain).unwrap(),
            to_canonical_bytes(&plain).unwrap()
        );
        assert!(to_json_bytes(&json!([0.5])).is_err());
    }

    #[test]
    fn sorts_keys_by_code_point_not_utf16() {
        // U+FF61 sorts before U+1F600 by code point, after it in UTF-16.
        let v = json!({"\u{1F600}": 1, "\u{FF61}": 2, "a": 3, "B": 4});
        assert_eq!(enc(v), "{\"B\":4,\"a\":3,\"\u{FF61}\":2,\"\u{1F600}\":1}");
    }

    #[test]
    fn rejects_floats() {
        assert!(matches!(
            to_canonical_bytes(&json!({"a": 1.5})),
            Err(Error::NonCanonicalNumber(_))
        ));
    }

    #[test]
    fn integer_extremes() {
        assert_eq!(
            enc(json!([i64::MIN, u64::MAX, 0, -1])),
            format!("[{},{},0,-1]", i64::MIN, u64::MAX)
        );
    }

    /// Strings without control characters: canonical JSON writes those raw,
    /// which a strict JSON parser (serde_json, Python's `json`) then refuses.
    fn arb_json() -> impl Strategy<Value = Value> {
        let text = "[^\\x00-\\x1f]{0,12}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(text, inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Canonical output is valid JSON that parses back to the same value.
        #[test]
        fn round_trips(v in arb_json()) {
            let bytes = to_canonical_bytes(&v).unwrap();
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(back, v);
        }

        /// Encoding is a fixed point: canonical bytes re-encode to themselves.
        #[test]
        fn idempotent(v in arb_json()) {
            let once = to_canonical_bytes(&v).unwrap();
            let parsed: Value = serde_json::from_slice(&once).unwrap();
            prop_assert_eq!(to_canonical_bytes(&parsed).unwrap(), once);
        }
    }
}
