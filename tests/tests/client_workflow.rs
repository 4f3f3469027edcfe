//! The updater's normal workflow over real HTTP on 127.0.0.1: which requests
//! a fresh and a warm client make, laziness (one bin per lookup), consistent
//! and plain repositories, target URLs, caching, the delegation walk's order
//! and unusual role names.

use std::path::Path;

use tufa_client::updater::Error;
use tufa_tests::repo_builder::{
    Repo, TestServer, init_metadata_dir, test_http_config, trusted_versions, updater, updater_with,
};

struct Setup {
    _tmp: tempfile::TempDir,
    server: TestServer,
    repo: Repo,
    meta: std::path::PathBuf,
    targets: std::path::PathBuf,
}

fn setup(repo: Repo) -> Setup {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start();
    repo.serve(&server);
    let meta = tmp.path().join("metadata");
    let targets = tmp.path().join("targets");
    init_metadata_dir(&meta, &repo.root_bytes(1));
    Setup {
        _tmp: tmp,
        server,
        repo,
        meta,
        targets,
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn fresh_refresh_fetches_top_level_and_warm_refresh_only_timestamp() {
    let mut repo = Repo::new(true);
    repo.add_target("targets", "a.txt", b"hello");
    repo.publish();
    let s = setup(repo);

    let mut u = updater(&s.server, &s.meta, &s.targets);
    u.refresh().expect("refresh");
    assert_eq!(
        s.server.requests(),
        names(&[
            "metadata/2.root.json",
            "metadata/timestamp.json",
            "metadata/2.snapshot.json",
            "metadata/2.targets.json",
        ])
    );
    let files = trusted_versions(&s.meta);
    assert_eq!(files["root.json"], 1);
    assert_eq!(files["timestamp.json"], 2);
    assert_eq!(files["snapshot.json"], 2);
    assert_eq!(files["targets.json"], 2);

    // Warm: the root probe the specification requires (404), then the one
    // download, timestamp.json; snapshot and targets come from the cache.
    s.server.clear_requests();
    let mut warm = updater(&s.server, &s.meta, &s.targets);
    warm.refresh().expect("warm refresh");
    assert_eq!(
        s.server.requests(),
        names(&["metadata/2.root.json", "metadata/timestamp.json"])
    );
    let info = warm
        .get_targetinfo("a.txt")
        .expect("lookup")
        .expect("found");
    assert_eq!(info.role, "targets");
    assert_eq!(
        s.server.requests().len(),
        2,
        "the lookup needed nothing new"
    );

    // A refresh runs once per updater.
    assert!(matches!(warm.refresh(), Err(Error::Config(_))));
}

#[test]
fn lookup_fetches_only_the_bin_it_needs() {
    let mut repo = Repo::new(true);
    let succinct = repo.succinct("targets", 8, "bins");
    let path = "packages/demo/demo-1.0.tar.gz";
    let bin = succinct.role_for_target(path);
    repo.add_target(&bin, path, b"demo 1.0 contents");
    repo.publish();
    let s = setup(repo);

    let mut u = updater(&s.server, &s.meta, &s.targets);
    u.refresh().expect("refresh");
    s.server.clear_requests();
    let info = u.get_targetinfo(path).expect("lookup").expect("found");
    assert_eq!(info.role, bin);
    let bin_version = s.repo.targets[&bin].version;
    assert_eq!(
        s.server.requests(),
        vec![format!("metadata/{bin_version}.{bin}.json")],
        "one bin of 256, nothing else"
    );
    // A path that is in no bin's list: its own bin only, then not found.
    s.server.clear_requests();
    let other = (0..)
        .map(|i| format!("packages/x/x-{i}.whl"))
        .find(|p| succinct.role_for_target(p) != bin)
        .expect("a path in another bin");
    assert!(u.get_targetinfo(&other).expect("lookup").is_none());
    assert_eq!(s.server.requests().len(), 1);

    let file = u.download_target(&info, None, None).expect("download");
    assert_eq!(std::fs::read(&file).expect("read"), b"demo 1.0 contents");
    assert_eq!(
        file,
        s.targets.join("packages%2Fdemo%2Fdemo-1.0.tar.gz"),
        "stored under the percent-encoded target path"
    );
    let files = trusted_versions(&s.meta);
    assert!(files.contains_key(&format!("{bin}.json")));
    assert_eq!(
        files.len(),
        6,
        "root, timestamp, snapshot, targets and the two bins looked up: {files:?}"
    );

    // A new client finds the bin in its cache: no bin request at all.
    s.server.clear_requests();
    let mut warm = updater(&s.server, &s.meta, &s.targets);
    let info2 = warm.get_targetinfo(path).expect("lookup").expect("found");
    assert_eq!(info2, info);
    assert_eq!(
        s.server.requests(),
        names(&["metadata/2.root.json", "metadata/timestamp.json"])
    );
}

#[test]
fn plain_repository_without_consistent_snapshots() {
    let mut repo = Repo::new(false);
    repo.add_target("targets", "dir/file.bin", b"plain bytes");
    repo.publish();
    let s = setup(repo);
    let mut u = updater(&s.server, &s.meta, &s.targets);
    let info = u.require_targetinfo("dir/file.bin").expect("found");
    u.download_target(&info, None, None).expect("download");
    assert_eq!(
        s.server.requests(),
        names(&[
            "metadata/2.root.json",
            "metadata/timestamp.json",
            "metadata/snapshot.json",
            "metadata/targets.json",
            "targets/dir/file.bin",
        ])
    );
}

#[test]
fn target_urls_follow_the_hash_prefix_flag_and_the_given_base() {
    let mut repo = Repo::new(true);
    repo.add_target("targets", "dir/file.bin", b"bytes");
    repo.publish();
    let s = setup(repo);
    let hashed = s.repo.target_path("dir/file.bin");
    assert!(hashed.starts_with("targets/dir/") && hashed.ends_with(".file.bin"));

    // Targets on another host, under their plain names (as Warehouse keeps them).
    let files = TestServer::start();
    files.put("dist/dir/file.bin", b"bytes".to_vec());
    let mut u = updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
        c.prefix_targets_with_hash = false;
        c.target_base_url = None;
    });
    let info = u.require_targetinfo("dir/file.bin").expect("found");
    assert!(matches!(
        u.download_target(&info, None, None),
        Err(Error::Config(_))
    ));
    let out = s.targets.join("elsewhere.bin");
    u.download_target(&info, Some(&out), Some(&files.url("dist")))
        .expect("download from the other base");
    assert_eq!(files.requests(), names(&["dist/dir/file.bin"]));
    assert_eq!(std::fs::read(&out).expect("read"), b"bytes");

    // Default: the hash-prefixed name on the configured base.
    let u2 = updater(&s.server, &s.meta, &s.targets);
    let mut u2 = u2;
    let info = u2.require_targetinfo("dir/file.bin").expect("found");
    s.server.clear_requests();
    u2.download_target(&info, None, None).expect("download");
    assert_eq!(s.server.requests(), vec![hashed]);
}

#[test]
fn present_target_with_matching_hashes_is_not_fetched_again() {
    let mut repo = Repo::new(true);
    repo.add_target("targets", "t.bin", b"0123456789");
    repo.publish();
    let s = setup(repo);
    let mut u = updater(&s.server, &s.meta, &s.targets);
    let info = u.require_targetinfo("t.bin").expect("found");
    assert!(u.find_cached_target(&info, None).is_none());
    let path = u.download_target(&info, None, None).expect("download");
    assert_eq!(u.find_cached_target(&info, None), Some(path.clone()));
    // Downloading again finds it in place: no request.
    s.server.clear_requests();
    assert_eq!(u.download_target(&info, None, None).expect("again"), path);
    assert!(s.server.requests().is_empty());
    // Same length, other bytes: not a cached copy.
    std::fs::write(&path, b"9876543210").expect("write");
    assert!(u.find_cached_target(&info, None).is_none());
    u.download_target(&info, None, None).expect("replaced");
    assert_eq!(std::fs::read(&path).expect("read"), b"0123456789");
    assert_eq!(s.server.requests().len(), 1);
}

#[test]
fn not_found_target_is_none_or_an_error_naming_it() {
    let s = setup(Repo::new(true));
    let mut u = updater(&s.server, &s.meta, &s.targets);
    assert!(u.get_targetinfo("nope").expect("lookup").is_none());
    match u.require_targetinfo("nope") {
        Err(Error::TargetNotFound { path }) => assert_eq!(path, "nope"),
        other => panic!("expected TargetNotFound, got {other:?}"),
    }
}

/// targets -> A (a/*, not terminating) -> A1 (a/*)
///         -> B (a/*, terminating)
///         -> C (a/*)
///         -> H (path_hash_prefixes of one path)
fn walk_repo() -> Repo {
    let mut repo = Repo::new(true);
    let a = Some(vec!["a/*".to_string()]);
    repo.delegate("targets", "A", a.clone(), None, false);
    repo.delegate("A", "A1", a.clone(), None, false);
    repo.delegate("targets", "B", a.clone(), None, true);
    repo.delegate("targets", "C", a, None, false);
    let hashed = "h/file";
    let digest = hex::encode(tufa_metadata::HashAlgorithm::Sha256.digest(hashed.as_bytes()));
    repo.delegate(
        "targets",
        "H",
        None,
        Some(vec![digest[..4].to_string()]),
        false,
    );
    repo.add_target("A1", "a/in-a1", b"a1");
    repo.add_target("A", "a/both", b"from A");
    repo.add_target("B", "a/both", b"from B");
    repo.add_target("B", "a/in-b", b"b");
    repo.add_target("C", "a/in-c", b"c");
    repo.add_target("H", hashed, b"h");
    repo.publish();
    repo
}

fn walked(s: &Setup, path: &str) -> (Option<String>, Vec<String>) {
    let meta = s
        .meta
        .parent()
        .expect("parent")
        .join(format!("m-{}", path.replace('/', "_")));
    init_metadata_dir(&meta, &s.repo.root_bytes(1));
    let mut u = updater(&s.server, &meta, &s.targets);
    u.refresh().expect("refresh");
    s.server.clear_requests();
    let found = u.get_targetinfo(path).expect("lookup").map(|i| i.role);
    let roles = s
        .server
        .requests()
        .iter()
        .map(|r| {
            let file = r.trim_start_matches("metadata/");
            let (_, rest) = file.split_once('.').expect("versioned");
            rest.trim_end_matches(".json").to_string()
        })
        .collect();
    (found, roles)
}

#[test]
fn delegation_walk_is_preorder_and_stops_at_terminating_roles() {
    let s = setup(walk_repo());
    // Pre-order: A's subtree before B.
    assert_eq!(
        walked(&s, "a/in-a1"),
        (Some("A1".into()), names(&["A", "A1"]))
    );
    // The first role in order wins.
    assert_eq!(walked(&s, "a/both"), (Some("A".into()), names(&["A"])));
    assert_eq!(
        walked(&s, "a/in-b"),
        (Some("B".into()), names(&["A", "A1", "B"]))
    );
    // B is terminating: C, though it lists the path, is never asked.
    assert_eq!(walked(&s, "a/in-c"), (None, names(&["A", "A1", "B"])));
    // path_hash_prefixes: only H is trusted for h/file.
    assert_eq!(walked(&s, "h/file"), (Some("H".into()), names(&["H"])));
    // A path no role is trusted for: no delegated role is fetched.
    assert_eq!(walked(&s, "zzz"), (None, vec![]));
}

#[test]
fn delegation_walk_visits_at_most_max_delegations_roles() {
    let mut repo = Repo::new(true);
    for i in 0..4 {
        repo.delegate(
            "targets",
            &format!("r{i}"),
            Some(vec!["*".into()]),
            None,
            false,
        );
    }
    repo.add_target("r3", "deep", b"x");
    repo.publish();
    let s = setup(repo);
    let mut u = updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
        c.max_delegations = 3;
    });
    assert!(u.get_targetinfo("deep").expect("lookup").is_none());
    let mut u = updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
        c.max_delegations = 4;
    });
    assert_eq!(
        u.get_targetinfo("deep").expect("lookup").map(|i| i.role),
        Some("r3".into())
    );
}

#[test]
fn unusual_role_names_are_stored_and_fetched_encoded() {
    let mut repo = Repo::new(true);
    let odd = ["?", "#", "/x", "../x"];
    for name in odd {
        repo.delegate("targets", name, Some(vec!["*".into()]), None, false);
    }
    repo.add_target("../x", "found", b"in ../x");
    repo.publish();
    let s = setup(repo);
    let mut u = updater(&s.server, &s.meta, &s.targets);
    u.refresh().expect("refresh");
    s.server.clear_requests();
    let info = u.require_targetinfo("found").expect("found");
    assert_eq!(info.role, "../x");
    assert_eq!(
        s.server.requests(),
        names(&[
            "metadata/1.%3F.json",
            "metadata/1.%23.json",
            "metadata/1.%2Fx.json",
            "metadata/1...%2Fx.json",
        ])
    );
    let files = trusted_versions(&s.meta);
    for f in ["%3F.json", "%23.json", "%2Fx.json", "..%2Fx.json"] {
        assert_eq!(files.get(f), Some(&1), "{f} persisted: {files:?}");
    }
    // Nothing escaped the metadata directory.
    let parent: Vec<String> = std::fs::read_dir(s.meta.parent().expect("parent"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!parent.iter().any(|n| n.contains("x.json")), "{parent:?}");
    assert!(!Path::new("/x.json").exists());

    // A warm client trusts them from the cache.
    s.server.clear_requests();
    let mut warm = updater(&s.server, &s.meta, &s.targets);
    assert_eq!(
        warm.require_targetinfo("found").expect("found").role,
        "../x"
    );
    assert_eq!(
        s.server.requests(),
        names(&["metadata/2.root.json", "metadata/timestamp.json"])
    );
}

#[test]
fn root_chain_is_followed_and_persisted() {
    let mut repo = Repo::new(true);
    for _ in 0..3 {
        let old = repo.rotate_top_level("root");
        let new = repo.signers["root"].clone();
        let by: Vec<&tufa_metadata::PrivateKey> =
            old.iter().chain(new.iter()).map(|k| k.as_ref()).collect();
        repo.publish_root_signed_by(&by);
    }
    let s = setup(repo);
    let mut u = updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
        c.max_root_rotations = 2;
    });
    u.refresh().expect("refresh");
    assert_eq!(u.root().version, 3, "stopped after two rotations");
    let mut u = updater(&s.server, &s.meta, &s.targets);
    u.refresh().expect("refresh");
    assert_eq!(u.root().version, 4);
    assert_eq!(trusted_versions(&s.meta)["root.json"], 4);
    for v in 2..=4 {
        assert!(s.meta.join(format!("root_history/{v}.root.json")).exists());
    }
}

/// The `Fetcher` seam: a wrapper that counts and injects faults, around the
/// real HTTP fetcher.
#[derive(Debug)]
struct Flaky {
    inner: tufa_client::updater::HttpFetcher,
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    fail_targets: bool,
}

impl tufa_client::updater::Fetcher for Flaky {
    fn fetch(
        &self,
        url: &str,
        max_length: u64,
        sink: &mut dyn std::io::Write,
    ) -> Result<u64, Error> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(url.to_string());
        if self.fail_targets && url.contains("/targets/") {
            return Err(Error::Network {
                url: url.to_string(),
                reason: "connection reset (injected)".into(),
            });
        }
        self.inner.fetch(url, max_length, sink)
    }
}

#[test]
fn a_custom_fetcher_sees_every_request_and_its_errors_propagate() {
    let mut repo = Repo::new(false);
    repo.add_target("targets", "f", b"f");
    repo.publish();
    let s = setup(repo);
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut config = tufa_client::updater::UpdaterConfig::new(&s.meta, s.server.url("metadata"));
    config.target_dir = Some(s.targets.clone());
    config.target_base_url = Some(s.server.url("targets"));
    let fetcher = Flaky {
        inner: tufa_client::updater::HttpFetcher::new(test_http_config()).expect("client"),
        calls: calls.clone(),
        fail_targets: true,
    };
    let mut u = tufa_client::updater::Updater::new(config, Box::new(fetcher)).expect("updater");
    let info = u.require_targetinfo("f").expect("found");
    let err = u.download_target(&info, None, None).expect_err("injected");
    assert!(matches!(err, Error::Network { .. }), "{err}");
    let seen = calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(
        seen.iter()
            .map(|u| u.rsplit('/').next().unwrap_or_default())
            .collect::<Vec<_>>(),
        [
            "2.root.json",
            "timestamp.json",
            "snapshot.json",
            "targets.json",
            "f"
        ]
    );
    assert_eq!(
        s.server.requests().len(),
        4,
        "the target never reached the server"
    );
}

#[test]
fn a_cached_role_is_verified_again_for_another_delegator() {
    // "shared" is delegated by A (with the key that signs it) and by B
    // (with a key that never signed it).
    let mut repo = Repo::new(true);
    repo.delegate("targets", "A", Some(vec!["a/*".into()]), None, false);
    repo.delegate("targets", "B", Some(vec!["b/*".into()]), None, false);
    repo.delegate("A", "shared", Some(vec!["*/*".into()]), None, false);
    repo.add_target("shared", "a/x", b"a");
    repo.add_target("shared", "b/x", b"b");
    let stranger =
        tufa_metadata::PrivateKey::generate(tufa_metadata::key::Scheme::Ed25519).expect("key");
    let mut role = repo.targets["A"]
        .delegations
        .as_ref()
        .and_then(|d| d.roles.as_ref())
        .and_then(|r| r.iter().find(|r| r.name == "shared"))
        .expect("A delegates to shared")
        .clone();
    let stranger_id = tufa_metadata::Signer::keyid(&stranger).to_string();
    role.keyids = vec![stranger_id.clone()];
    let b = repo.targets.get_mut("B").expect("B");
    b.delegations = Some(tufa_metadata::Delegations {
        keys: std::collections::BTreeMap::from([(
            stranger_id,
            tufa_metadata::Signer::public_key(&stranger).clone(),
        )]),
        roles: Some(vec![role]),
        succinct_roles: None,
        unrecognized: Default::default(),
    });
    repo.touch("B");
    repo.publish();
    let s = setup(repo);

    let mut u = updater(&s.server, &s.meta, &s.targets);
    assert_eq!(
        u.require_targetinfo("a/x").expect("through A").role,
        "shared"
    );
    match u.get_targetinfo("b/x") {
        Err(Error::Signatures { role, by, .. }) => {
            assert_eq!((role.as_str(), by.as_str()), ("shared", "B"));
        }
        other => panic!("expected shared to fail B's keys, got {other:?}"),
    }
    // The same from the cache, in a new updater.
    let mut warm = updater(&s.server, &s.meta, &s.targets);
    assert!(matches!(
        warm.get_targetinfo("b/x"),
        Err(Error::Signatures { .. })
    ));
}
