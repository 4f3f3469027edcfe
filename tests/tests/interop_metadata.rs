//! Differential tests of TUF metadata against the real python-tuf and
//! securesystemslib: what python-tuf writes, tufa reads and verifies with the
//! same signed bytes; what tufa writes, python-tuf reads and verifies; and a
//! tampered document is refused by both. Signatures only interoperate if
//! both sides agree on every byte, so these tests compare bytes, not values.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value, json};
use tufa_metadata::canonical::to_canonical_bytes;
use tufa_metadata::metadata::{RoleKeys, Verification};
use tufa_metadata::{
    DelegatedRole, Delegations, Error, HashAlgorithm, Key, MetaFile, Metadata, PrivateKey,
    RawMetadata, Role, Root, Scheme, Signer, Snapshot, SuccinctRoles, TargetFile, Targets,
    Timestamp, UtcTime,
};
use tufa_tests::run_python;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()))
}

fn parse_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

/// Lets python-tuf generate a repository (see `interop_write.py`) into `dir`.
fn python_repository(dir: &Path) -> Value {
    run_python("interop_write.py", &[dir.as_os_str()]);
    parse_json(&read(&dir.join("manifest.json")))
}

/// Runs `interop_verify.py` on a request and returns its response.
fn python_verify(dir: &Path, request: &Value) -> Value {
    let req = dir.join("verify-request.json");
    let resp = dir.join("verify-response.json");
    write(&req, &serde_json::to_vec(request).expect("request"));
    run_python("interop_verify.py", &[req.as_os_str(), resp.as_os_str()]);
    parse_json(&read(&resp))
}

/// A `metadata` entry for `interop_verify.py`.
fn python_case(id: &str, file: &Path, role: &str, delegator_file: &Path) -> Value {
    json!({
        "id": id,
        "file": file,
        "role": role,
        "delegator_file": delegator_file,
    })
}

/// What tufa made of one document: refused on reading, refused on
/// verification, or verified with these keyids.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    ParseError(String),
    Unsigned(String),
    Verified(BTreeSet<String>),
}

/// Reads `bytes` as role `role` and verifies it against its delegator's
/// metadata (root's own file for root), as a client would.
fn tufa_verify(role: &str, bytes: &[u8], delegator: &str, delegator_bytes: &[u8]) -> Outcome {
    let raw = match RawMetadata::from_slice(role, bytes) {
        Ok(raw) => raw,
        Err(e) => return Outcome::ParseError(e.to_string()),
    };
    let result: Result<Verification, Error> = if delegator == "root" {
        let root = Metadata::<Root>::from_slice(delegator_bytes).expect("root parses");
        root.signed.verify_role(role, &raw)
    } else {
        let parent = Metadata::<Targets>::from_slice(delegator_bytes).expect("delegator parses");
        parent.signed.verify_delegate(delegator, role, &raw)
    };
    match result {
        Ok(v) => Outcome::Verified(v.signed.into_iter().collect()),
        Err(e @ Error::ThresholdNotMet { .. }) => Outcome::Unsigned(e.to_string()),
        Err(e) => panic!("{role}: unexpected verification error {e}"),
    }
}

fn keyid_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("keyid list")
        .iter()
        .map(|k| k.as_str().expect("keyid").to_string())
        .collect()
}

/// Re-serialises a document through the typed API, checks nothing was lost,
/// and returns the bytes tufa would write.
fn typed_round_trip(kind: &str, bytes: &[u8], python_signed_canonical: &[u8]) -> Vec<u8> {
    fn check<T: Role>(bytes: &[u8], want: &[u8]) -> Vec<u8> {
        let md = Metadata::<T>::from_slice(bytes).expect("typed parse");
        let signed = md.signed_bytes().expect("signed bytes");
        assert_eq!(
            String::from_utf8_lossy(&signed),
            String::from_utf8_lossy(want),
            "typed {} signed bytes differ from securesystemslib's",
            T::TYPE
        );
        md.to_bytes().expect("to_bytes")
    }
    match kind {
        "root" => check::<Root>(bytes, python_signed_canonical),
        "targets" => check::<Targets>(bytes, python_signed_canonical),
        "snapshot" => check::<Snapshot>(bytes, python_signed_canonical),
        "timestamp" => check::<Timestamp>(bytes, python_signed_canonical),
        other => panic!("unknown type {other}"),
    }
}

/// (a) Everything python-tuf writes (four key types, thresholds above 1,
/// three kinds of delegation, Unicode paths, unknown fields everywhere) is
/// verified by tufa over exactly securesystemslib's canonical bytes, and
/// survives a typed round trip with every field, still verifiable by python-tuf.
#[test]
fn python_written_metadata_verifies_in_tufa() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let manifest = python_repository(dir);
    let files = manifest["files"].as_array().expect("files");
    assert_eq!(
        files.len(),
        10,
        "root, targets, 2 delegated, 4 bins, snapshot, timestamp"
    );

    let mut rewritten = Vec::new();
    for entry in files {
        let role = entry["role"].as_str().expect("role");
        let kind = entry["type"].as_str().expect("type");
        let delegator = entry["delegator"].as_str().expect("delegator");
        let bytes = read(&dir.join(format!("{role}.json")));
        let signed_canonical = read(&dir.join(format!("{role}.signed.canonical")));
        let whole_canonical = read(&dir.join(format!("{role}.canonical")));
        let delegator_bytes = read(&dir.join(format!("{delegator}.json")));

        // Signed bytes: tufa's canonical form of python-tuf's `signed`.
        let raw = RawMetadata::from_slice(role, &bytes).expect("tufa parses python-tuf output");
        assert_eq!(
            String::from_utf8_lossy(raw.signed_bytes()),
            String::from_utf8_lossy(&signed_canonical),
            "{role}: canonical bytes differ from securesystemslib's"
        );
        // The whole document too (envelope and signature unknown fields).
        assert_eq!(
            to_canonical_bytes(&parse_json(&bytes)).expect("canonical"),
            whole_canonical,
            "{role}: whole-document canonical bytes differ"
        );

        // Verification: the same keys count as python-tuf counts.
        let want = keyid_set(&entry["signed_keyids"]);
        assert!(want.len() as u64 >= entry["threshold"].as_u64().expect("threshold"));
        assert_eq!(
            tufa_verify(role, &bytes, delegator, &delegator_bytes),
            Outcome::Verified(want),
            "{role}"
        );

        // Typed round trip keeps every field, known or not.
        let out = typed_round_trip(kind, &bytes, &signed_canonical);
        assert_eq!(
            parse_json(&out),
            parse_json(&bytes),
            "{role}: typed round trip changed the document"
        );
        let path = dir.join(format!("{role}.tufa.json"));
        write(&path, &out);
        rewritten.push((role.to_string(), path, delegator.to_string()));
    }

    // Every key's keyid is securesystemslib's default keyid, and tufa
    // computes the same one (including a key with an extra `keyval` field).
    let root = Metadata::<Root>::from_slice(&read(&dir.join("root.json"))).expect("root");
    let targets = Metadata::<Targets>::from_slice(&read(&dir.join("targets.json"))).expect("t");
    let paths_role =
        Metadata::<Targets>::from_slice(&read(&dir.join("paths-role.json"))).expect("paths-role");
    let mut tufa_keyids = BTreeMap::new();
    let delegation_keys = [&targets, &paths_role].into_iter().flat_map(|t| {
        t.signed
            .delegations
            .as_ref()
            .expect("delegations")
            .keys
            .iter()
    });
    for (keyid, key) in root.signed.keys.iter().chain(delegation_keys) {
        tufa_keyids.insert(keyid.clone(), key.keyid());
    }
    for k in manifest["keyids"].as_array().expect("keyids") {
        let keyid = k["keyid"].as_str().expect("keyid");
        assert_eq!(
            k["default_keyid"], k["keyid"],
            "python used the default keyid"
        );
        assert_eq!(tufa_keyids.get(keyid).map(String::as_str), Some(keyid));
    }
    assert_eq!(tufa_keyids.len(), 6, "all six keys are listed somewhere");

    // Delegation answers: which roles a path goes to, and which bin.
    let delegations = targets.signed.delegations.as_ref().expect("delegations");
    let succinct = paths_role
        .signed
        .delegations
        .as_ref()
        .and_then(|d| d.succinct_roles.as_ref())
        .expect("succinct");
    for (path, roles) in manifest["roles_for_target"].as_object().expect("roles") {
        // python-tuf lists every match; a lookup stops at the first terminating one.
        let mut want = Vec::new();
        for r in roles.as_array().expect("list") {
            let terminating = r[1].as_bool().expect("bool");
            want.push((r[0].as_str().expect("name").to_string(), terminating));
            if terminating {
                break;
            }
        }
        let got: Vec<(String, bool)> = delegations
            .roles_for_target(path)
            .into_iter()
            .map(|c| (c.name, c.terminating))
            .collect();
        assert_eq!(got, want, "roles for {path:?}");
        assert_eq!(
            succinct.role_for_target(path),
            manifest["bins_for_target"][path].as_str().expect("bin"),
            "bin for {path:?}"
        );
    }
    let bins: Vec<String> = succinct.role_names().collect();
    assert_eq!(json!(bins), manifest["bins"]);

    // python-tuf verifies the documents tufa re-serialised.
    let request = json!({"metadata": rewritten.iter().map(|(role, path, delegator)| {
        python_case(role, path, role, &dir.join(format!("{delegator}.tufa.json")))
    }).collect::<Vec<_>>()});
    let response = python_verify(dir, &request);
    for (role, _, _) in &rewritten {
        let r = &response["metadata"][role];
        assert_eq!(r["parse"], "ok", "{role}: {r}");
        assert_eq!(r["verify"], "ok", "{role}: {r}");
        assert_eq!(r["dict_round_trip"], true, "{role}");
    }
}

const EXPIRES: &str = "2038-01-19T03:14:07Z";

fn expires() -> UtcTime {
    UtcTime::parse(EXPIRES).expect("date")
}

/// One key of each type tufa signs with.
fn tufa_keys() -> Vec<PrivateKey> {
    [
        Scheme::Ed25519,
        Scheme::EcdsaP256,
        Scheme::EcdsaP384,
        Scheme::RsaPss(HashAlgorithm::Sha256),
    ]
    .into_iter()
    .map(|s| PrivateKey::generate(s).expect("generate"))
    .collect()
}

fn unknown(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else {
        panic!("not an object")
    };
    map
}

/// Target paths as awkward as python-tuf's test repository's.
const TUFA_PATHS: [&str; 8] = [
    "packages/plain/plain-1.0.tar.gz",
    "packages/\u{fc}n\u{ef}c\u{f6}d\u{e9}/\u{fc}n\u{ef}-1.0.tar.gz",
    "packages/\u{fc}n\u{ef}c\u{f6}d\u{e9}/u\u{308}n\u{ef}-1.0.tar.gz",
    "packages/music/\u{1d11e}-1.0.whl",
    "packages/sort/\u{ff61}\u{1f600}.txt",
    "packages/ctrl/a\u{1}b\u{1f}\u{7f}\n.txt",
    "packages/quote/a\"b\\c.txt",
    "packages/edge/\u{2028}\u{feff}\u{ffff}\u{10ffff}.txt",
];

fn target_file(path: &str) -> TargetFile {
    let mut file = TargetFile::from_bytes(
        format!("content of {path}").as_bytes(),
        &[HashAlgorithm::Blake2b256, HashAlgorithm::Sha256],
    );
    file.unrecognized = unknown(json!({
        "custom": {"\u{fc}": "\u{1d11e}", "q\"b\\": "x\u{0}y", "n": [i64::MIN, u64::MAX]},
        "x-tufa": path,
    }));
    file
}

/// Signs `signed` with every key and writes it as `{name}.json`.
fn sign_write<T: Role>(dir: &Path, name: &str, signed: T, keys: &[PrivateKey]) -> Vec<u8> {
    let mut md = Metadata::new(signed);
    for key in keys {
        md.sign(key).expect("sign");
    }
    let bytes = md.to_bytes().expect("to_bytes");
    write(&dir.join(format!("{name}.json")), &bytes);
    bytes
}

/// (b) Metadata tufa creates and signs, with one key of each type for every
/// role and thresholds above 1, is read by python-tuf with every field and
/// the same signed bytes, and every key type's signature verifies there.
#[test]
fn tufa_written_metadata_verifies_in_python() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let keys = tufa_keys();
    let keyids: BTreeSet<String> = keys.iter().map(|k| k.keyid().to_string()).collect();
    let all_keyids: Vec<String> = keys.iter().map(|k| k.keyid().to_string()).collect();
    let public = |i: usize| {
        let mut key = keys[i].public_key().clone();
        key.unrecognized = unknown(json!({"x-tufa-key-name": format!("k\u{f6}y {i}")}));
        key
    };

    let mut root = Root::new(expires());
    root.unrecognized = unknown(json!({"x-tufa-signed": {"\u{ff61}": 1, "\u{1f600}": 2}}));
    for role in ["root", "targets", "snapshot", "timestamp"] {
        for i in 0..keys.len() {
            root.add_key(role, public(i)).expect("add key");
        }
    }
    for (role, threshold) in [
        ("root", 3),
        ("targets", 2),
        ("snapshot", 2),
        ("timestamp", 4),
    ] {
        let entry: &mut RoleKeys = root.roles.get_mut(role).expect("role");
        entry.threshold = threshold;
        entry.unrecognized = unknown(json!({"x-tufa-role": role}));
    }

    let delegation_keys: BTreeMap<String, Key> = (0..keys.len())
        .map(|i| (keys[i].keyid().to_string(), public(i)))
        .collect();
    let mut targets = Targets::new(expires());
    targets.unrecognized = unknown(json!({"x-tufa-signed": "targets \u{2603}"}));
    for path in &TUFA_PATHS[..4] {
        targets.targets.insert(path.to_string(), target_file(path));
    }
    let prefix_paths = ["prefixed/\u{1f600}.txt", "prefixed/a\"\\.txt"];
    targets.delegations = Some(Delegations {
        keys: delegation_keys.clone(),
        roles: Some(vec![
            DelegatedRole {
                name: "paths-role".into(),
                keyids: all_keyids.clone(),
                threshold: 2,
                terminating: false,
                paths: Some(vec!["packages/*/*".into(), "\u{1d11e}/[!a]?".into()]),
                path_hash_prefixes: None,
                unrecognized: unknown(json!({"x-tufa-delegated-role": true})),
            },
            DelegatedRole {
                name: "prefix-role".into(),
                keyids: all_keyids.clone(),
                threshold: 3,
                terminating: true,
                paths: None,
                path_hash_prefixes: Some(
                    prefix_paths
                        .iter()
                        .map(|p| {
                            hex::encode(HashAlgorithm::Sha256.digest(p.as_bytes()))[..2].into()
                        })
                        .collect(),
                ),
                unrecognized: Map::new(),
            },
        ]),
        succinct_roles: None,
        unrecognized: unknown(json!({"x-tufa-delegations": [1, 2]})),
    });

    let mut paths_role = Targets::new(expires());
    for path in &TUFA_PATHS[4..] {
        paths_role
            .targets
            .insert(path.to_string(), target_file(path));
    }
    let succinct = SuccinctRoles {
        keyids: all_keyids.clone(),
        threshold: 2,
        bit_length: 3,
        name_prefix: "bins".into(),
        unrecognized: unknown(json!({"x-tufa-succinct": "\u{1f600}"})),
    };
    let mut bins: BTreeMap<String, Targets> = succinct
        .role_names()
        .map(|n| (n, Targets::new(expires())))
        .collect();
    for i in 0..16 {
        let path = format!("bins/\u{e9}{i}/\u{1f600}\"\\{i}.txt");
        let bin = bins.get_mut(&succinct.role_for_target(&path)).expect("bin");
        bin.targets.insert(path.clone(), target_file(&path));
    }
    paths_role.delegations = Some(Delegations {
        keys: delegation_keys,
        roles: None,
        succinct_roles: Some(succinct),
        unrecognized: Map::new(),
    });
    let mut prefix_role = Targets::new(expires());
    for path in prefix_paths {
        prefix_role
            .targets
            .insert(path.to_string(), target_file(path));
    }

    let mut cases = vec![("root", "root")];
    sign_write(dir, "root", root, &keys);
    let targets_bytes = sign_write(dir, "targets", targets, &keys);
    cases.push(("targets", "root"));
    sign_write(dir, "paths-role", paths_role, &keys);
    cases.push(("paths-role", "targets"));
    sign_write(dir, "prefix-role", prefix_role, &keys);
    cases.push(("prefix-role", "targets"));
    let bin_names: Vec<String> = bins.keys().cloned().collect();
    for (name, bin) in bins {
        sign_write(dir, &name, bin, &keys);
    }
    for name in &bin_names {
        cases.push((name.as_str(), "paths-role"));
    }
    let mut snapshot = Snapshot::new(expires());
    for (role, _) in &cases[1..] {
        let mut meta = MetaFile::new(1);
        meta.unrecognized = unknown(json!({"x-tufa-meta": role}));
        snapshot.meta.insert(format!("{role}.json"), meta);
    }
    let targets_meta = snapshot.meta.get_mut("targets.json").expect("targets meta");
    targets_meta.length = Some(targets_bytes.len() as u64);
    targets_meta.hashes = Some(
        [HashAlgorithm::Sha256, HashAlgorithm::Blake2b256]
            .iter()
            .map(|a| (a.name().to_string(), hex::encode(a.digest(&targets_bytes))))
            .collect(),
    );
    let snapshot_bytes = sign_write(dir, "snapshot", snapshot, &keys);
    cases.push(("snapshot", "root"));
    let mut snapshot_meta = MetaFile::new(1);
    snapshot_meta.length = Some(snapshot_bytes.len() as u64);
    snapshot_meta.hashes = Some(BTreeMap::from([(
        "sha512".to_string(),
        hex::encode(HashAlgorithm::Sha512.digest(&snapshot_bytes)),
    )]));
    sign_write(
        dir,
        "timestamp",
        Timestamp::new(expires(), snapshot_meta),
        &keys,
    );
    cases.push(("timestamp", "root"));

    let request = json!({"metadata": cases.iter().map(|(role, delegator)| {
        python_case(role, &dir.join(format!("{role}.json")), role, &dir.join(format!("{delegator}.json")))
    }).collect::<Vec<_>>()});
    let response = python_verify(dir, &request);
    for (role, delegator) in &cases {
        let r = &response["metadata"][role];
        assert_eq!(r["parse"], "ok", "{role}: {r}");
        assert_eq!(r["verify"], "ok", "{role}: {r}");
        // Every key type's signature counts in python-tuf.
        assert_eq!(keyid_set(&r["signed_keyids"]), keyids, "{role}");
        assert_eq!(
            r["dict_round_trip"], true,
            "{role}: python-tuf dropped or changed a field"
        );
        let bytes = read(&dir.join(format!("{role}.json")));
        let raw = RawMetadata::from_slice(role, &bytes).expect("tufa reads its own file");
        assert_eq!(
            r["signed_bytes_hex"].as_str().expect("hex"),
            hex::encode(raw.signed_bytes()),
            "{role}: python-tuf's signed bytes differ from tufa's"
        );
        let delegator_bytes = read(&dir.join(format!("{delegator}.json")));
        assert_eq!(
            tufa_verify(role, &bytes, delegator, &delegator_bytes),
            Outcome::Verified(keyids.clone())
        );
    }
}

/// One tampered document: which file it replaces and how it was changed.
struct Tamper {
    id: &'static str,
    role: &'static str,
    delegator: &'static str,
    /// Whether both must refuse it (`false`: a control case both accept).
    reject: bool,
    change: Box<dyn Fn(&mut Value)>,
}

fn tamper(
    id: &'static str,
    role: &'static str,
    delegator: &'static str,
    change: impl Fn(&mut Value) + 'static,
) -> Tamper {
    Tamper {
        id,
        role,
        delegator,
        reject: true,
        change: Box::new(change),
    }
}

/// The first target path in `doc` that contains `needle`.
fn target_with(doc: &Value, needle: &str) -> String {
    doc["signed"]["targets"]
        .as_object()
        .expect("targets")
        .keys()
        .find(|k| k.contains(needle))
        .unwrap_or_else(|| panic!("no target path with {needle:?}"))
        .clone()
}

fn rename_target(doc: &mut Value, from: &str, to: &str) {
    let targets = doc["signed"]["targets"].as_object_mut().expect("targets");
    let file = targets.remove(from).expect("target");
    targets.insert(to.to_string(), file);
}

fn signatures(doc: &mut Value) -> &mut Vec<Value> {
    doc["signatures"].as_array_mut().expect("signatures")
}

/// (c) Any change to signed bytes, too few signatures, and a keyid listed
/// twice in `signatures` are refused by tufa and by python-tuf alike; the
/// control cases (an unsigned envelope field, dropping a surplus signature)
/// are accepted by both.
#[test]
fn tampering_is_rejected_by_both() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let manifest = python_repository(dir);
    let roles: BTreeMap<String, Value> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| (f["role"].as_str().expect("role").to_string(), f.clone()))
        .collect();

    let cases = vec![
        tamper("target-length", "targets", "root", |d| {
            let path = target_with(d, "\u{1d11e}");
            let length = &mut d["signed"]["targets"][&path]["length"];
            *length = json!(length.as_u64().expect("length") + 1);
        }),
        tamper("version", "targets", "root", |d| {
            d["signed"]["version"] = json!(2)
        }),
        tamper("unicode-path-char", "targets", "root", |d| {
            let path = target_with(d, "\u{1d11e}");
            rename_target(d, &path, &path.replace('\u{1d11e}', "\u{1d11f}"));
        }),
        tamper("path-nfc-to-nfd", "targets", "root", |d| {
            // Unicode normalisation would hide this change: tufa must not normalise.
            let path = target_with(d, "\u{e9}-1.0");
            rename_target(d, &path, &path.replace('\u{e9}', "e\u{301}"));
        }),
        tamper("path-control-char", "targets", "root", |d| {
            let path = target_with(d, "\u{1f}");
            rename_target(d, &path, &path.replace('\u{1f}', "\u{1e}"));
        }),
        tamper("path-backslash", "targets", "root", |d| {
            let path = target_with(d, "\\");
            rename_target(d, &path, &path.replacen('\\', "/", 1));
        }),
        tamper("target-custom", "targets", "root", |d| {
            let path = target_with(d, "plain");
            d["signed"]["targets"][&path]["custom"]["ints"][4] = json!(u64::MAX - 1);
        }),
        tamper("drop-unknown-signed-field", "targets", "root", |d| {
            d["signed"]
                .as_object_mut()
                .expect("signed")
                .remove("x-tufa-signed");
        }),
        tamper("delegated-role-unknown-field", "targets", "root", |d| {
            d["signed"]["delegations"]["roles"][0]["x-tufa-delegated-role"] = json!(false);
        }),
        tamper("delegation-key-unknown-field", "targets", "root", |d| {
            let keys = d["signed"]["delegations"]["keys"]
                .as_object_mut()
                .expect("keys");
            let key = keys.values_mut().next().expect("a key");
            key["x-tufa-added"] = json!(1);
        }),
        tamper("root-threshold", "root", "root", |d| {
            d["signed"]["roles"]["targets"]["threshold"] = json!(1);
        }),
        tamper("root-key-name", "root", "root", |d| {
            for key in d["signed"]["keys"]
                .as_object_mut()
                .expect("keys")
                .values_mut()
            {
                if key.get("x-tufa-key-name").is_some() {
                    key["x-tufa-key-name"] = json!("r\u{f6}\u{f6}t \u{1f512}");
                }
            }
        }),
        tamper("snapshot-meta-version", "snapshot", "root", |d| {
            d["signed"]["meta"]["targets.json"]["version"] = json!(2);
        }),
        tamper("timestamp-expires", "timestamp", "root", |d| {
            d["signed"]["expires"] = json!("2038-01-19T03:14:08Z");
        }),
        tamper("succinct-bit-length", "paths-role", "targets", |d| {
            d["signed"]["delegations"]["succinct_roles"]["bit_length"] = json!(3);
        }),
        tamper("bin-target-hash", "bin-0", "paths-role", |d| {
            d["signed"]["targets"] = json!({"evil": {"length": 1, "hashes": {"sha256": "00"}}});
        }),
        tamper("prefix-role-added-target", "prefix-role", "targets", |d| {
            d["signed"]["targets"]["prefixed/extra"] =
                json!({"length": 0, "hashes": {"sha256": "e3b0"}});
        }),
        // Signatures: below threshold, or the same keyid twice.
        tamper("drop-below-threshold", "root", "root", |d| {
            signatures(d).truncate(2)
        }),
        tamper("drop-below-threshold", "targets", "root", |d| {
            // Two valid of threshold 2, plus one unauthorised: keep one valid.
            let keep = d["signatures"][0].clone();
            let unauthorised = d["signatures"][2].clone();
            *signatures(d) = vec![keep, unauthorised];
        }),
        tamper("corrupt-signature", "snapshot", "root", |d| {
            let sig = d["signatures"][1]["sig"].as_str().expect("sig").to_string();
            let flipped = if sig.ends_with('0') { "1" } else { "0" };
            d["signatures"][1]["sig"] = json!(format!("{}{flipped}", &sig[..sig.len() - 1]));
        }),
        tamper("signature-under-other-keyid", "timestamp", "root", |d| {
            let first = d["signatures"][0]["sig"].clone();
            d["signatures"][1]["sig"] = first;
        }),
        tamper("duplicate-keyid", "targets", "root", |d| {
            let copy = d["signatures"][0].clone();
            signatures(d).push(copy);
        }),
        tamper("duplicate-keyid-other-sig", "root", "root", |d| {
            let mut copy = d["signatures"][0].clone();
            copy["sig"] = d["signatures"][1]["sig"].clone();
            signatures(d).push(copy);
        }),
        tamper("duplicate-keyid-below", "timestamp", "root", |d| {
            let copy = d["signatures"][0].clone();
            *signatures(d) = vec![copy.clone(), copy];
        }),
        // Controls, accepted by both: the envelope is not signed, and a
        // surplus signature is not needed.
        Tamper {
            reject: false,
            ..tamper("control-envelope-field", "root", "root", |d| {
                d["x-tufa-envelope"] = json!("changed");
            })
        },
        Tamper {
            reject: false,
            ..tamper("control-drop-surplus", "root", "root", |d| {
                signatures(d).truncate(3)
            })
        },
    ];

    let mut request = Vec::new();
    let mut tufa_results = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        let id = format!("{i}-{}-{}", case.role, case.id);
        let original = read(&dir.join(format!("{}.json", case.role)));
        let mut doc = parse_json(&original);
        (case.change)(&mut doc);
        let changed = serde_json::to_vec_pretty(&doc).expect("serialise");
        assert_ne!(
            parse_json(&changed),
            parse_json(&original),
            "{id} changed nothing"
        );
        let path = dir.join(format!("tampered-{i}.json"));
        write(&path, &changed);
        // The delegator is always the untouched original.
        let delegator_path = dir.join(format!("{}.json", case.delegator));
        request.push(python_case(&id, &path, case.role, &delegator_path));
        let outcome = tufa_verify(case.role, &changed, case.delegator, &read(&delegator_path));
        tufa_results.insert(id, outcome);
        assert!(roles.contains_key(case.role));
    }
    let response = python_verify(dir, &json!({ "metadata": request }));

    for (i, case) in cases.iter().enumerate() {
        let id = format!("{i}-{}-{}", case.role, case.id);
        let py = &response["metadata"][&id];
        let tufa = &tufa_results[&id];
        let duplicate = case.id.starts_with("duplicate-keyid");
        match (case.reject, duplicate) {
            (false, _) => {
                assert_eq!(py["verify"], "ok", "{id}: python-tuf {py}");
                assert!(matches!(tufa, Outcome::Verified(_)), "{id}: tufa {tufa:?}");
            }
            (true, true) => {
                let parse = py["parse"].as_str().expect("parse");
                assert!(
                    parse.contains("Multiple signatures found for keyid"),
                    "{id}: python-tuf {parse}"
                );
                assert!(
                    matches!(tufa, Outcome::ParseError(e) if e.contains("more than once")),
                    "{id}: tufa {tufa:?}"
                );
            }
            (true, false) => {
                assert_eq!(py["parse"], "ok", "{id}: python-tuf {py}");
                let verify = py["verify"].as_str().expect("verify");
                assert!(verify.starts_with("unsigned:"), "{id}: python-tuf {verify}");
                assert!(matches!(tufa, Outcome::Unsigned(_)), "{id}: tufa {tufa:?}");
            }
        }
    }
}
