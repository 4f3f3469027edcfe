//! The attacks TUF defends against (PEP 458's appendix, the specification's
//! section 1.5.2), each against its own repository served over HTTP on
//! 127.0.0.1, with the attacker playing the server: the updater must refuse
//! with the error that names the attack, and keep what it trusted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tufa_client::updater::{Error, HttpConfig, Updater};
use tufa_metadata::{MetaFile, PrivateKey, Signer, UtcTime};
use tufa_tests::repo_builder::{
    Fault, Repo, TestServer, init_metadata_dir, test_http_config, trusted_versions, updater,
    updater_with,
};

struct Setup {
    _tmp: tempfile::TempDir,
    server: TestServer,
    repo: Repo,
    meta: PathBuf,
    targets: PathBuf,
}

impl Setup {
    fn new(repo: Repo) -> Setup {
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

    fn client(&self) -> Updater {
        updater(&self.server, &self.meta, &self.targets)
    }

    /// A client that has refreshed once against the current repository.
    fn refreshed(&self) -> Updater {
        let mut u = self.client();
        u.refresh().expect("first refresh");
        u
    }

    /// Re-serves the repository after a change.
    fn republish(&self) {
        self.repo.serve(&self.server);
    }

    fn versions(&self) -> std::collections::BTreeMap<String, u64> {
        trusted_versions(&self.meta)
    }
}

fn with_target(consistent: bool) -> Repo {
    let mut repo = Repo::new(consistent);
    repo.add_target("targets", "pkg/file.tar.gz", &[7u8; 3000]);
    repo.publish();
    repo
}

// ---- arbitrary software ----

#[test]
fn arbitrary_target_bytes_are_rejected_and_never_stored() {
    let s = Setup::new(with_target(true));
    let mut u = s.client();
    let info = u.require_targetinfo("pkg/file.tar.gz").expect("found");
    // Same length, other bytes.
    let mut evil = vec![7u8; 3000];
    evil[1234] = 8;
    s.server.put(&s.repo.target_path("pkg/file.tar.gz"), evil);
    match u.download_target(&info, None, None) {
        Err(Error::LengthOrHash { source, .. }) => assert!(
            matches!(*source, tufa_metadata::Error::HashMismatch { .. }),
            "{source}"
        ),
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    // Nothing was written: no target, no temporary file left behind.
    let left: Vec<_> = std::fs::read_dir(&s.targets)
        .map(|d| d.map(|e| e.expect("entry").file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn metadata_signed_by_the_wrong_key_is_rejected() {
    let mut repo = with_target(true);
    // An attacker without the targets key signs targets with its own.
    repo.signers.insert("targets".into(), vec![new_key()]);
    repo.add_target("targets", "pkg/evil.whl", b"evil");
    repo.publish();
    let s = Setup::new(repo);
    match s.client().refresh() {
        Err(Error::Signatures { role, by, .. }) => {
            assert_eq!(role, "targets");
            assert_eq!(by, "root version 1");
        }
        other => panic!("expected a signature failure, got {other:?}"),
    }
}

// ---- rollback ----

#[test]
fn rollback_to_an_older_timestamp_is_rejected() {
    let mut repo = with_target(true);
    let old_timestamp = repo.signed_bytes("timestamp", repo.timestamp.version);
    repo.add_target("targets", "new.txt", b"new");
    repo.publish();
    let s = Setup::new(repo);
    s.refreshed();
    s.server.put("metadata/timestamp.json", old_timestamp);
    match s.client().refresh() {
        Err(Error::Rollback {
            role,
            trusted,
            found,
        }) => {
            assert_eq!((role.as_str(), trusted, found), ("timestamp", 3, 2));
        }
        other => panic!("expected a timestamp rollback, got {other:?}"),
    }
    assert_eq!(s.versions()["timestamp.json"], 3, "the trusted one stays");
}

#[test]
fn rollback_of_the_snapshot_version_in_a_new_timestamp_is_rejected() {
    let mut s = Setup::new(with_target(true));
    s.refreshed();
    // A new timestamp (signed with the real key) naming an older snapshot.
    let older = s.repo.snapshot.version - 1;
    s.repo
        .timestamp
        .meta
        .insert("snapshot.json".into(), MetaFile::new(older));
    s.repo.publish_timestamp(true);
    s.republish();
    match s.client().refresh() {
        Err(Error::Rollback {
            role,
            trusted,
            found,
        }) => {
            assert_eq!((role.as_str(), trusted, found), ("snapshot", 2, 1));
        }
        other => panic!("expected a snapshot rollback, got {other:?}"),
    }
}

#[test]
fn snapshot_that_lowers_or_drops_a_role_is_rejected() {
    let mut repo = Repo::new(true);
    repo.delegate("targets", "team", Some(vec!["*".into()]), None, false);
    repo.add_target("team", "t", b"t");
    repo.publish();
    repo.add_target("team", "t", b"t2");
    repo.publish();
    let mut s = Setup::new(repo);
    s.refreshed();

    // Lower: snapshot lists team version 1 where the trusted one lists 2.
    s.repo
        .snapshot
        .meta
        .insert("team.json".into(), MetaFile::new(1));
    s.repo.publish_snapshot(true);
    s.republish();
    match s.client().refresh() {
        Err(Error::Rollback {
            role,
            trusted,
            found,
        }) => {
            assert_eq!((role.as_str(), trusted, found), ("team", 2, 1));
        }
        other => panic!("expected a rollback of team, got {other:?}"),
    }

    // Drop: snapshot no longer lists team at all.
    s.repo.snapshot.meta.remove("team.json");
    s.repo.publish_snapshot(true);
    s.republish();
    match s.client().refresh() {
        Err(Error::RoleRemoved { role, .. }) => assert_eq!(role, "team"),
        other => panic!("expected RoleRemoved, got {other:?}"),
    }
}

#[test]
fn older_targets_or_bin_behind_a_newer_snapshot_is_rejected() {
    let mut repo = Repo::new(true);
    let succinct = repo.succinct("targets", 4, "bins");
    let path = "pkg/a.whl";
    let bin = succinct.role_for_target(path);
    repo.add_target(&bin, path, b"a1");
    repo.publish();
    repo.add_target(&bin, path, b"a2");
    repo.add_target("targets", "top.txt", b"top");
    repo.publish();
    let s = Setup::new(repo);
    let (tv, bv) = (
        s.repo.targets["targets"].version,
        s.repo.targets[&bin].version,
    );

    // The attacker serves the previous targets under the name snapshot lists.
    s.server.put(
        &s.repo.metadata_path("targets", tv),
        s.repo.signed_bytes("targets", tv - 1),
    );
    match s.client().refresh() {
        Err(Error::VersionMismatch {
            role,
            expected,
            found,
        }) => {
            assert_eq!((role.as_str(), expected, found), ("targets", tv, tv - 1));
        }
        other => panic!("expected a targets version mismatch, got {other:?}"),
    }
    s.republish();

    // And the previous bin (mix-and-match: a signed bin of another snapshot).
    s.server.put(
        &s.repo.metadata_path(&bin, bv),
        s.repo.signed_bytes(&bin, bv - 1),
    );
    match s.client().get_targetinfo(path) {
        Err(Error::VersionMismatch {
            role,
            expected,
            found,
        }) => {
            assert_eq!((role, expected, found), (bin.clone(), bv, bv - 1));
        }
        other => panic!("expected a bin version mismatch, got {other:?}"),
    }
}

#[test]
fn mix_and_match_bin_newer_than_snapshot_lists_is_rejected() {
    let mut repo = Repo::new(true);
    let succinct = repo.succinct("targets", 2, "bins");
    let path = "pkg/b.whl";
    let bin = succinct.role_for_target(path);
    repo.add_target(&bin, path, b"b1");
    repo.publish();
    let listed = repo.targets[&bin].version;
    // A newer bin is signed but not yet published in a snapshot.
    repo.add_target(&bin, path, b"b2-evil-or-early");
    let t = repo.targets.get_mut(&bin).expect("bin");
    t.version += 1;
    let early = {
        let mut md = tufa_metadata::Metadata::new(t.clone());
        md.sign(repo.signers[&bin][0].as_ref()).expect("sign");
        md.to_bytes().expect("bytes")
    };
    let s = Setup::new(repo);
    s.server.put(&s.repo.metadata_path(&bin, listed), early);
    match s.client().get_targetinfo(path) {
        Err(Error::VersionMismatch {
            role,
            expected,
            found,
        }) => {
            assert_eq!((role, expected, found), (bin, listed, listed + 1));
        }
        other => panic!("expected a version mismatch, got {other:?}"),
    }
}

#[test]
fn hashes_timestamp_lists_are_checked_before_anything_else() {
    let mut repo = Repo::new(true);
    repo.meta_hashes = true;
    repo.add_target("targets", "x", b"x");
    repo.publish();
    let s = Setup::new(repo);
    let snap = s.repo.metadata_path("snapshot", s.repo.snapshot.version);
    let real = s.server.get(&snap).expect("snapshot served");
    // Same length, not even JSON: refused for its hash, never parsed.
    s.server.put(&snap, vec![b'!'; real.len()]);
    match s.client().refresh() {
        Err(Error::LengthOrHash { what, source }) => {
            assert_eq!(what, "snapshot");
            assert!(matches!(*source, tufa_metadata::Error::HashMismatch { .. }));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    // Targets too, against snapshot's hashes.
    s.republish();
    let tpath = s
        .repo
        .metadata_path("targets", s.repo.targets["targets"].version);
    let mut bytes = s.server.get(&tpath).expect("targets served");
    bytes.push(b' ');
    s.server.put(&tpath, bytes);
    match s.client().refresh() {
        Err(Error::LengthExceeded { .. }) => {}
        other => panic!("expected the listed length to bound targets, got {other:?}"),
    }
}

// ---- freeze ----

#[test]
fn expired_timestamp_served_again_is_a_freeze() {
    let mut repo = with_target(true);
    repo.expires = UtcTime::now().plus_seconds(3600);
    repo.publish_timestamp(true);
    let s = Setup::new(repo);
    s.refreshed();
    // Two hours later the server still hands out the same timestamp.
    let later = UtcTime::now().plus_seconds(7200);
    let mut u = updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
        c.reference_time = Some(later);
    });
    match u.refresh() {
        Err(Error::Expired {
            role,
            reference_time,
            ..
        }) => {
            assert_eq!(role, "timestamp");
            assert_eq!(reference_time, later);
        }
        other => panic!("expected an expired timestamp, got {other:?}"),
    }
}

#[test]
fn expired_snapshot_and_root_are_freezes() {
    // Snapshot expires in an hour, the rest in 30 days.
    let mut repo = with_target(true);
    let keep = repo.expires;
    repo.expires = UtcTime::now().plus_seconds(3600);
    repo.publish_snapshot(true);
    repo.expires = keep;
    repo.publish_timestamp(true);
    let s = Setup::new(repo);
    let later = UtcTime::now().plus_seconds(7200);
    let mut u = updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
        c.reference_time = Some(later);
    });
    assert!(
        matches!(u.refresh(), Err(Error::Expired { ref role, .. }) if role == "snapshot"),
        "snapshot"
    );

    // A root that has expired (and no newer root) stops everything.
    let far = UtcTime::now().plus_seconds(60 * 86_400);
    let mut u = updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
        c.reference_time = Some(far);
    });
    assert!(
        matches!(u.refresh(), Err(Error::Expired { ref role, .. }) if role == "root"),
        "root"
    );
}

#[test]
fn expired_targets_and_delegated_roles_are_freezes() {
    let mut repo = Repo::new(true);
    let succinct = repo.succinct("targets", 1, "bins");
    let bin = succinct.role_for_target("p");
    repo.add_target(&bin, "p", b"p");
    repo.publish();
    // The bin expires in an hour, everything else in 30 days.
    let keep = repo.expires;
    repo.expires = UtcTime::now().plus_seconds(3600);
    repo.touch(&bin);
    repo.publish();
    repo.expires = keep;
    repo.publish_snapshot(true);
    let s = Setup::new(repo);
    let later = UtcTime::now().plus_seconds(7200);
    let client = || {
        updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
            c.reference_time = Some(later);
        })
    };
    match client().get_targetinfo("p") {
        Err(Error::Expired { role, .. }) => assert_eq!(role, bin),
        other => panic!("expected the bin to be expired, got {other:?}"),
    }
    assert!(client().get_targetinfo("p").is_err(), "nothing cached");

    // Top-level targets expiring.
    let mut repo = with_target(true);
    let keep = repo.expires;
    repo.expires = UtcTime::now().plus_seconds(3600);
    repo.touch("targets");
    repo.publish();
    repo.expires = keep;
    repo.publish_snapshot(true);
    let s = Setup::new(repo);
    let mut u = updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
        c.reference_time = Some(later);
    });
    assert!(
        matches!(u.refresh(), Err(Error::Expired { ref role, .. }) if role == "targets"),
        "targets"
    );
}

// ---- endless data ----

#[test]
fn target_longer_than_signed_is_cut_off() {
    let s = Setup::new(with_target(true));
    let mut u = s.client();
    let info = u.require_targetinfo("pkg/file.tar.gz").expect("found");
    let path = s.repo.target_path("pkg/file.tar.gz");
    let mut longer = vec![7u8; 3000];
    longer.extend_from_slice(b"and then some");
    s.server.set_fault(&path, Fault::Body(longer));
    match u.download_target(&info, None, None) {
        Err(Error::LengthExceeded { url, limit }) => {
            assert_eq!(limit, 3000);
            assert!(url.ends_with(".file.tar.gz"), "{url}");
        }
        other => panic!("expected LengthExceeded, got {other:?}"),
    }
    // An endless stream with no Content-Length is cut off the same way.
    s.server.set_fault(&path, Fault::Endless);
    assert!(matches!(
        u.download_target(&info, None, None),
        Err(Error::LengthExceeded { limit: 3000, .. })
    ));
}

#[test]
fn metadata_past_its_limit_is_cut_off() {
    let s = Setup::new(with_target(true));
    s.server
        .set_fault("metadata/timestamp.json", Fault::Endless);
    match s.client().refresh() {
        Err(Error::LengthExceeded { limit, .. }) => assert_eq!(limit, 16_384),
        other => panic!("expected LengthExceeded, got {other:?}"),
    }
    s.server.clear_faults();
    s.server.set_fault("metadata/2.root.json", Fault::Endless);
    assert!(matches!(
        s.client().refresh(),
        Err(Error::LengthExceeded { limit: 512_000, .. })
    ));
    s.server.clear_faults();
    // Configured limits apply too.
    let mut u = updater_with(&s.server, &s.meta, &s.targets, test_http_config(), |c| {
        c.snapshot_max_length = 10;
    });
    assert!(matches!(
        u.refresh(),
        Err(Error::LengthExceeded { limit: 10, .. })
    ));
}

// ---- slow retrieval ----

fn impatient() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_millis(700),
        min_bytes_per_second: 2000,
        rate_window: Duration::from_millis(300),
        ..HttpConfig::default()
    }
}

#[test]
fn trickled_target_fails_the_minimum_rate() {
    let s = Setup::new(with_target(true));
    let mut u = updater_with(&s.server, &s.meta, &s.targets, impatient(), |_| {});
    let info = u.require_targetinfo("pkg/file.tar.gz").expect("found");
    // 10 bytes every 50 ms: about 200 B/s, each read well inside the timeout.
    s.server.set_fault(
        &s.repo.target_path("pkg/file.tar.gz"),
        Fault::Trickle {
            chunk: 10,
            every: Duration::from_millis(50),
        },
    );
    let start = Instant::now();
    let result = u.download_target(&info, None, None);
    assert!(
        matches!(result, Err(Error::SlowRetrieval { .. })),
        "{result:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn stalled_metadata_fails_the_read_timeout() {
    let s = Setup::new(with_target(true));
    s.server.set_fault(
        "metadata/timestamp.json",
        Fault::Stall(Duration::from_secs(3)),
    );
    let mut u = updater_with(&s.server, &s.meta, &s.targets, impatient(), |_| {});
    let start = Instant::now();
    let result = u.refresh();
    assert!(
        matches!(result, Err(Error::SlowRetrieval { ref url }) if url.ends_with("timestamp.json")),
        "{result:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

// ---- root chain and key compromise ----

fn refs(keys: &[Arc<PrivateKey>]) -> Vec<&PrivateKey> {
    keys.iter().map(|k| k.as_ref()).collect()
}

fn new_key() -> Arc<PrivateKey> {
    Arc::new(PrivateKey::generate(tufa_metadata::key::Scheme::Ed25519).expect("key"))
}

#[test]
fn root_rotation_missing_the_old_threshold_is_rejected() {
    // Root v2 moves to a new key and is signed by that key alone.
    let mut repo = with_target(true);
    repo.rotate_top_level("root");
    let new = repo.signers["root"].clone();
    repo.publish_root_signed_by(&refs(&new));
    let s = Setup::new(repo);
    match s.client().refresh() {
        Err(Error::Signatures { role, by, .. }) => {
            assert_eq!(role, "root");
            assert_eq!(by, "root version 1");
        }
        other => panic!("expected the old threshold to be missing, got {other:?}"),
    }
    assert_eq!(s.versions()["root.json"], 1);
}

#[test]
fn root_rotation_missing_the_new_threshold_is_rejected() {
    // Root v2 moves to two new keys with threshold 2, but only one of them
    // signs (with the old key): v2's own threshold is missing.
    let mut repo = with_target(true);
    let old = repo.rotate_top_level("root");
    let second = new_key();
    repo.root
        .add_key("root", second.public_key().clone())
        .expect("add");
    repo.root.roles.get_mut("root").expect("root").threshold = 2;
    let first = repo.signers["root"].clone();
    let mut by = refs(&old);
    by.extend(refs(&first));
    repo.publish_root_signed_by(&by);
    // With both new keys, v3 would be fine; v2 already fails.
    let s = Setup::new(repo);
    match s.client().refresh() {
        Err(Error::Signatures { role, by, .. }) => {
            assert_eq!(role, "root");
            assert_eq!(by, "root version 2");
        }
        other => panic!("expected the new threshold to be missing, got {other:?}"),
    }
    assert_eq!(s.versions()["root.json"], 1);
    assert!(!s.meta.join("timestamp.json").exists(), "nothing past root");
}

#[test]
fn root_rotation_with_both_thresholds_succeeds() {
    let mut repo = with_target(true);
    let old = repo.rotate_top_level("root");
    let second = new_key();
    repo.root
        .add_key("root", second.public_key().clone())
        .expect("add");
    repo.root.roles.get_mut("root").expect("root").threshold = 2;
    repo.signers.get_mut("root").expect("root").push(second);
    let new = repo.signers["root"].clone();
    let mut by = refs(&old);
    by.extend(refs(&new));
    repo.publish_root_signed_by(&by);
    // v3 signed by v2's two keys only.
    repo.publish_root();
    let s = Setup::new(repo);
    let mut u = s.client();
    u.refresh().expect("refresh");
    assert_eq!(u.root().version, 3);
    assert_eq!(u.root().roles["root"].threshold, 2);
}

#[test]
fn root_version_must_be_exactly_n_plus_one() {
    let mut repo = with_target(true);
    repo.publish_root();
    repo.publish_root();
    let s = Setup::new(repo);
    // 2.root.json holds version 3.
    s.server.put("metadata/2.root.json", s.repo.root_bytes(3));
    match s.client().refresh() {
        Err(Error::VersionMismatch {
            role,
            expected,
            found,
        }) => {
            assert_eq!((role.as_str(), expected, found), ("root", 2, 3));
        }
        other => panic!("expected a root version mismatch, got {other:?}"),
    }
    // And a server error other than 403/404 fails the update.
    s.republish();
    s.server
        .set_fault("metadata/2.root.json", Fault::Status(500));
    assert!(matches!(
        s.client().refresh(),
        Err(Error::Http { status: 500, .. })
    ));
    s.server
        .set_fault("metadata/2.root.json", Fault::Status(403));
    // 403 ends the chain like 404: version 1 stays.
    let mut u = s.client();
    u.refresh().expect("refresh");
    assert_eq!(u.root().version, 1);
}

#[test]
fn compromised_online_key_is_answered_by_a_root_rotation() {
    let mut s = Setup::new(with_target(true));
    s.refreshed();

    // The attacker holds the timestamp and snapshot keys and fast-forwards:
    // snapshot 100, timestamp 100, validly signed with the trusted keys.
    let honest = (s.repo.timestamp.clone(), s.repo.snapshot.clone());
    s.repo.snapshot.version = 99;
    s.repo.timestamp.version = 99;
    s.repo.publish_snapshot(true);
    s.republish();
    s.client()
        .refresh()
        .expect("the client cannot tell: the keys are trusted");
    assert_eq!(s.versions()["timestamp.json"], 100);
    assert_eq!(s.versions()["snapshot.json"], 100);
    let attacker_timestamp = s.repo.signed_bytes("timestamp", 100);

    // The repository recovers: root v2 rotates both online keys and honest
    // versions (lower than the attacker's) are published with the new keys.
    s.repo.rotate_top_level("timestamp");
    s.repo.rotate_top_level("snapshot");
    s.repo.publish_root();
    s.repo.timestamp = honest.0;
    s.repo.snapshot = honest.1;
    s.repo.publish_snapshot(true);
    s.republish();
    let mut u = s.client();
    u.refresh().expect("recovered");
    assert_eq!(u.root().version, 2);
    let v = s.versions();
    assert_eq!(v["timestamp.json"], s.repo.timestamp.version);
    assert!(v["timestamp.json"] < 100, "the fast-forward was forgotten");
    assert_eq!(v["snapshot.json"], s.repo.snapshot.version);
    assert!(
        u.get_targetinfo("pkg/file.tar.gz")
            .expect("lookup")
            .is_some()
    );

    // Metadata signed with the old key is now refused.
    s.server.put("metadata/timestamp.json", attacker_timestamp);
    match s.client().refresh() {
        Err(Error::Signatures { role, by, .. }) => {
            assert_eq!(role, "timestamp");
            assert_eq!(by, "root version 2");
        }
        other => panic!("expected the old key to be refused, got {other:?}"),
    }
}

#[test]
fn cached_timestamp_and_snapshot_are_deleted_when_their_keys_rotate() {
    let mut s = Setup::new(with_target(true));
    s.refreshed();
    s.repo.rotate_top_level("snapshot");
    s.repo.publish_root();
    s.republish();
    // Root v2 is reachable, but the served snapshot is still signed by the
    // old key: the refresh fails after the root step...
    let result = s.client().refresh();
    assert!(
        matches!(result, Err(Error::Signatures { ref role, .. }) if role == "snapshot"),
        "{result:?}"
    );
    // ...having deleted the cached copies (5.3.11) and kept the new root.
    let v = s.versions();
    assert_eq!(v["root.json"], 2);
    assert!(!s.meta.join("snapshot.json").exists(), "{v:?}");
    assert_eq!(
        v.get("timestamp.json"),
        Some(&s.repo.timestamp.version),
        "timestamp downloaded again"
    );
}
