//! Reading JSON documents into [`serde_json::Value`] faster than
//! `serde_json::from_slice::<Value>` does, with the same result.
//!
//! serde_json builds each object by inserting its members one by one into a
//! `BTreeMap`: every insert searches the tree, comparing keys. A 16384-bin
//! snapshot has an object of 16384 members, so those comparisons were the
//! largest single cost of a client refresh. Here each object's members are
//! collected first and the map is built in one go (`BTreeMap::from_iter`
//! sorts, which costs one pass for members already in order, as canonical
//! JSON has them, and then builds the tree without searching).
//!
//! The result is the `Value` serde_json would give for the same bytes,
//! duplicate keys included (the last one wins), numbers included (integers
//! as `i64`/`u64`, the rest as `f64`): a test compares the two on generated
//! documents.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON document (trailing whitespace only).
pub fn value_from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = ValueSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Deserializes a [`Value`] the way serde_json does, objects built in bulk.
#[derive(Debug, Clone, Copy)]
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members: Vec<(String, Value)> =
            Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValueSeed)?;
            members.push((key, value));
        }
        // A stable sort keeps duplicates in document order, and building
        // the map keeps the last of them, as inserting one by one does.
        Ok(Value::Object(
            members.into_iter().collect::<Map<String, Value>>(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn same(text: &str) {
        let ours = value_from_slice(text.as_bytes());
        let theirs = serde_json::from_str::<Value>(text);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{text}: ours {a:?}, serde_json {b:?}"),
        }
    }

    #[test]
    fn as_serde_json_reads_them() {
        for text in [
            "null",
            "true",
            " [1, -2, 3.5, 1e400, 18446744073709551615, -9223372036854775808] ",
            r#"{"b": 1, "a": {"y": [], "x": {}}, "c": "\u00e9\"\\"}"#,
            r#"{"a": 1, "a": 2, "b": 0, "a": 3}"#,
            r#"{"k": 1} x"#,
            r#"{"k": 1,}"#,
            r#"{"k" 1}"#,
            "[1, 2",
            "\"\\ud800\"",
            "",
            "01",
        ] {
            same(text);
        }
        assert_eq!(
            value_from_slice(br#"{"a": 1, "a": 2}"#).unwrap(),
            serde_json::json!({"a": 2})
        );
        // serde_json's nesting limit applies as well.
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(value_from_slice(deep.as_bytes()).is_err());
        assert!(serde_json::from_str::<Value>(&deep).is_err());
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Small alphabets, so keys repeat (duplicates) and sort both ways.
        let key = prop_oneof![Just("a"), Just("b"), Just("bin-0001"), Just("é"), Just("A")];
        let ws = prop_oneof![Just(""), Just(" "), Just("\n")];
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("false".to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<u64>().prop_map(|u| u.to_string()),
            (-1e6f64..1e6).prop_map(|f| format!("{f:e}")),
            "[a-z\\\\\"]{0,4}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..6), ws.clone())
                    .prop_map(|(v, w)| format!("[{w}{}]", v.join(","))),
                (
                    prop::collection::vec((key.clone(), inner), 0..6),
                    ws.clone()
                )
                    .prop_map(|(m, w)| {
                        let members: Vec<String> = m
                            .into_iter()
                            .map(|(k, v)| format!("{w}\"{k}\"{w}:{v}"))
                            .collect();
                        format!("{{{}}}", members.join(","))
                    }),
            ]
        })
    }

    proptest! {
        #[test]
        fn same_value_as_serde_json(text in arb_text()) {
            let ours = value_from_slice(text.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(ours, theirs);
        }
    }
}
