//! Differential test of tufa's canonical JSON encoder against
//! `securesystemslib.formats.encode_canonical`, which defines the bytes TUF
//! signatures cover in practice. Property-generated documents aim at what
//! encoders get wrong: escaping, control characters, Unicode outside the
//! BMP, key order (code point, not UTF-16), integer extremes, empty containers.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::Path;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};
use tufa_metadata::Error;
use tufa_metadata::canonical::to_canonical_bytes;
use tufa_tests::run_python;

/// Fixed, so that a failure reproduces; change it to explore other documents.
const SEED: [u8; 32] = *b"tufa canonical json differential";

/// Generated documents; a few hundred cover the generator's corners and
/// keep the test fast.
const CASES: usize = 400;

/// Characters that encoders mishandle, weighted over arbitrary ones.
fn arb_char() -> impl Strategy<Value = char> {
    let special = prop::sample::select(vec![
        '\0',
        '\u{1}',
        '\u{8}',
        '\t',
        '\n',
        '\u{b}',
        '\u{c}',
        '\r',
        '\u{1f}',
        ' ',
        '"',
        '\\',
        '/',
        '\u{7f}',
        '\u{80}',
        '\u{e9}',
        '\u{301}',
        '\u{2028}',
        '\u{2029}',
        '\u{d7ff}',
        '\u{e000}',
        '\u{fb01}',
        '\u{feff}',
        '\u{ff61}',
        '\u{fffd}',
        '\u{ffff}',
        '\u{10000}',
        '\u{1d11e}',
        '\u{1f600}',
        '\u{10ffff}',
        'a',
        'B',
        '0',
    ]);
    prop_oneof![3 => special, 1 => any::<char>()]
}

fn arb_string() -> impl Strategy<Value = String> {
    prop::collection::vec(arb_char(), 0..8).prop_map(|chars| chars.into_iter().collect())
}

fn arb_integer() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|u| json!(u)),
        prop::sample::select(vec![
            json!(i64::MIN),
            json!(i64::MAX),
            json!(i64::MAX as u64 + 1),
            json!(u64::MAX),
            json!(0),
            json!(-1),
        ]),
    ]
}

fn arb_document() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_integer(),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Documents written by hand for the cases that matter most.
fn fixed_documents() -> Vec<Value> {
    vec![
        json!({}),
        json!([]),
        json!(""),
        json!({"": [], "a": {}, "A": [[]]}),
        // Code point order: U+E000 < U+FF61 < U+FFFF < U+10000 < U+1F600;
        // UTF-16 order puts the last two before U+E000.
        json!({"\u{1f600}": 1, "\u{10000}": 2, "\u{ffff}": 3, "\u{ff61}": 4, "\u{e000}": 5, "z": 6}),
        json!({"\u{0}": "\u{0}", "\u{1f}": "\u{7f}", "\"": "\\", "\\\"": "\"\\"}),
        json!(["e\u{301}", "\u{e9}", "\u{fb01}", "fi"]),
        json!([i64::MIN, i64::MAX, u64::MAX, 0, -1]),
        json!({"signed": {"targets": {"a/\u{1d11e}\n\"\\": {"length": u64::MAX}}}}),
    ]
}

/// Runs securesystemslib over `lines` (JSON text, one document each) in one
/// process and returns its answer per line.
fn securesystemslib(dir: &Path, lines: &[String]) -> Vec<String> {
    let input = dir.join("docs.jsonl");
    let output = dir.join("canonical.txt");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&input, text).expect("write docs");
    run_python(
        "interop_canonical.py",
        &[input.as_os_str(), output.as_os_str()],
    );
    let answer = std::fs::read_to_string(&output).expect("read answer");
    let answers: Vec<String> = answer.lines().map(str::to_string).collect();
    assert_eq!(answers.len(), lines.len(), "one answer per document");
    answers
}

/// tufa's answer in the same form as the Python script's.
fn tufa(line: &str) -> String {
    let value: Value = serde_json::from_str(line).expect("parse");
    match to_canonical_bytes(&value) {
        Ok(bytes) => hex::encode(bytes),
        Err(Error::NonCanonicalNumber(_)) => "error: FormatError".to_string(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn canonical_json_is_byte_identical_to_securesystemslib() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &SEED),
    );
    let strategy = arb_document();
    let mut docs = fixed_documents();
    for _ in 0..CASES {
        docs.push(strategy.new_tree(&mut runner).expect("generate").current());
    }
    // serde_json escapes control characters, so every document is one line
    // of JSON that Python reads back to the same value.
    let mut lines: Vec<String> = docs
        .iter()
        .map(|d| serde_json::to_string(d).expect("serialise"))
        .collect();
    // Floats: canonical JSON has none; both must refuse them.
    let floats = [
        "1.5",
        "-0.0",
        "1e3",
        "1E-7",
        "[0.0]",
        "{\"a\":{\"b\":[1,2.5]}}",
    ];
    lines.extend(floats.iter().map(|s| s.to_string()));

    let python = securesystemslib(tmp.path(), &lines);
    let mut mismatches = Vec::new();
    for (line, py) in lines.iter().zip(&python) {
        let ours = tufa(line);
        if &ours != py {
            mismatches.push(format!("document {line}\n  tufa:   {ours}\n  python: {py}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} documents differ:\n{}",
        mismatches.len(),
        lines.len(),
        mismatches.join("\n")
    );
    for f in floats {
        assert_eq!(tufa(f), "error: FormatError", "{f}");
    }
    // The generator reached the corners this test is about.
    let all = lines.join("");
    for needle in [
        "\\u0000",
        "\\\"",
        "\\\\",
        "\u{1f600}",
        "\u{10ffff}",
        "18446744073709551615",
        "-9223372036854775808",
        "[]",
        "{}",
    ] {
        assert!(all.contains(needle), "no document contains {needle:?}");
    }
}

/// Numbers that Python reads as integers but serde_json only as floats:
/// `-0` and integers beyond 64 bits. tufa refuses such documents rather than
/// sign or verify different bytes; python-tuf never writes them.
#[test]
fn integers_beyond_serde_json_fail_closed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lines: Vec<String> = [
        "-0",
        "[18446744073709551616]",
        "{\"a\":-9223372036854775809}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let python = securesystemslib(tmp.path(), &lines);
    assert_eq!(python[0], hex::encode("0"));
    assert_eq!(python[1], hex::encode("[18446744073709551616]"));
    for line in &lines {
        assert_eq!(tufa(line), "error: FormatError", "{line}");
    }
}
