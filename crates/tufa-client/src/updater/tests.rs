//! Unit tests of the pieces that need no server: the rate guard, target
//! URLs, key-rotation detection and the trusted set's ordering rules. The
//! workflow against real HTTP servers is tested in `tests/tests/client_*.rs`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tufa_metadata::key::Scheme;
use tufa_metadata::{Metadata, PrivateKey, Signer, TargetFile, UtcTime};

use super::fetch::RateGuard;
use super::trusted::{TimestampUpdate, TrustedSet, role_keys_changed};
use super::*;

fn key() -> PrivateKey {
    PrivateKey::generate(Scheme::Ed25519).unwrap()
}

const NOW: i64 = 1_800_000_000;

fn root_with(keys: &[&PrivateKey; 4], version: u64) -> Root {
    let mut root = Root::new(UtcTime::from_unix(NOW + 86_400));
    root.version = version;
    for (role, k) in ["root", "timestamp", "snapshot", "targets"]
        .iter()
        .zip(keys)
    {
        root.add_key(role, k.public_key().clone()).unwrap();
    }
    root
}

fn signed<T: tufa_metadata::Role>(signed: T, by: &[&PrivateKey]) -> Vec<u8> {
    let mut md = Metadata::new(signed);
    for k in by {
        md.sign(*k).unwrap();
    }
    md.to_bytes().unwrap()
}

#[test]
fn rate_guard_fails_a_slow_window_only() {
    let config = HttpConfig {
        min_bytes_per_second: 1000,
        rate_window: Duration::from_millis(50),
        ..HttpConfig::default()
    };
    let mut fast = RateGuard::new(&config);
    assert!(fast.record(10_000));
    std::thread::sleep(Duration::from_millis(60));
    assert!(fast.record(10_000), "10 kB in 60 ms is fast enough");
    let mut slow = RateGuard::new(&config);
    std::thread::sleep(Duration::from_millis(60));
    assert!(!slow.record(1), "1 byte in 60 ms is too slow");
}

#[test]
fn key_rotation_is_detected_per_role_regardless_of_order() {
    let (r, t, s, g) = (key(), key(), key(), key());
    let old = root_with(&[&r, &t, &s, &g], 1);
    let mut reordered = old.clone();
    reordered
        .roles
        .get_mut("root")
        .unwrap()
        .keyids
        .push("extra".into());
    assert!(!role_keys_changed(&old, &reordered, "timestamp"));
    assert!(role_keys_changed(&old, &reordered, "root"));
    let mut rotated = old.clone();
    rotated
        .add_key("timestamp", key().public_key().clone())
        .unwrap();
    assert!(role_keys_changed(&old, &rotated, "timestamp"));
    assert!(!role_keys_changed(&old, &rotated, "snapshot"));
    let mut threshold = old.clone();
    threshold.roles.get_mut("snapshot").unwrap().threshold = 2;
    assert!(role_keys_changed(&old, &threshold, "snapshot"));
}

#[test]
fn trusted_set_refuses_unsigned_roots_and_enforces_order() {
    let (r, t, s, g) = (key(), key(), key(), key());
    let root = root_with(&[&r, &t, &s, &g], 1);
    let now = UtcTime::from_unix(NOW);
    // Not signed by its own root key.
    let bad = signed(root.clone(), &[&t]);
    assert!(matches!(
        TrustedSet::new(&bad, now),
        Err(Error::Signatures { .. })
    ));
    let mut set = TrustedSet::new(&signed(root.clone(), &[&r]), now).unwrap();
    // Version 3 after 1: not N+1.
    let v3 = signed(root_with(&[&r, &t, &s, &g], 3), &[&r]);
    assert!(matches!(
        set.update_root(&v3),
        Err(Error::VersionMismatch {
            expected: 2,
            found: 3,
            ..
        })
    ));
    // Timestamp with an equal version keeps the trusted one.
    let ts = Timestamp::new(
        UtcTime::from_unix(NOW + 3600),
        tufa_metadata::MetaFile::new(1),
    );
    let ts_bytes = signed(ts.clone(), &[&t]);
    assert_eq!(
        set.update_timestamp(&ts_bytes).unwrap(),
        TimestampUpdate::Updated
    );
    assert_eq!(
        set.update_timestamp(&ts_bytes).unwrap(),
        TimestampUpdate::Unchanged
    );
    // Root cannot change once timestamp is trusted.
    let v2 = signed(root_with(&[&r, &t, &s, &g], 2), &[&r]);
    assert!(matches!(set.update_root(&v2), Err(Error::Config(_))));
    // Snapshot signed by the timestamp key: not the snapshot key.
    let snap = Snapshot::new(UtcTime::from_unix(NOW + 3600));
    assert!(matches!(
        set.update_snapshot(&signed(snap.clone(), &[&t]), false),
        Err(Error::Signatures { .. })
    ));
    set.update_snapshot(&signed(snap, &[&s]), false).unwrap();
    // targets is not listed in this snapshot.
    let targets = Targets::new(UtcTime::from_unix(NOW + 3600));
    assert!(matches!(
        set.update_delegated_targets(&signed(targets, &[&g]), "targets", "root"),
        Err(Error::NotInSnapshot { .. })
    ));
}

#[test]
fn target_urls_prefix_the_basename_and_escape_the_path() {
    let (r, t, s, g) = (key(), key(), key(), key());
    let root = signed(root_with(&[&r, &t, &s, &g], 1), &[&r]);
    let dir = tempfile::tempdir().unwrap();
    #[derive(Debug)]
    struct NoNetwork;
    impl Fetcher for NoNetwork {
        fn fetch(&self, url: &str, _: u64, _: &mut dyn Write) -> Result<u64, Error> {
            Err(Error::Network {
                url: url.into(),
                reason: "no network in unit tests".into(),
            })
        }
    }
    let mut config = UpdaterConfig::new(dir.path(), "http://h/metadata");
    config.target_base_url = Some("http://h/targets".into());
    let mut updater =
        Updater::with_trusted_root(config.clone(), Box::new(NoNetwork), &root).unwrap();
    let file = TargetFile::from_bytes(b"x", &[HashAlgorithm::Sha256, HashAlgorithm::Blake2b256]);
    let blake = file.hashes["blake2b-256"].clone();
    let info = TargetInfo {
        path: "packages/a b/x?y#z.whl".into(),
        file,
        role: "targets".into(),
    };
    assert_eq!(
        updater.target_url(&info, None).unwrap(),
        format!("http://h/targets/packages/a%20b/{blake}.x%3Fy%23z.whl")
    );
    updater.config.prefix_targets_with_hash = false;
    assert_eq!(
        updater.target_url(&info, Some("http://other/")).unwrap(),
        "http://other/packages/a%20b/x%3Fy%23z.whl"
    );
    // The anchor was persisted as history; no network was used.
    assert!(dir.path().join("root_history/1.root.json").exists());
    assert!(matches!(updater.refresh(), Err(Error::Network { .. })));
}
