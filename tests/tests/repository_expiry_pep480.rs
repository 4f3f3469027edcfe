//! pep480 freshness: the publisher re-signs the online roles (unclaimed,
//! recently-claimed, bins, snapshot, timestamp) before they expire and never
//! touches the offline targets and claimed, also after a restart.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use tufa_client::audit::{AuditOptions, audit};
use tufa_metadata::{PrivateKey, Scheme, Signer};
use tufa_repository::ceremony::{Ceremony, RootKey};
use tufa_repository::clock::Clock;
use tufa_repository::online_key::write_private_key;
use tufa_repository::{Expiration, Layout, Repository, RepositoryConfig};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_roles_resigned_offline_roles_never() {
    let tmp = tempfile::tempdir().unwrap();
    let online = PrivateKey::generate(Scheme::Ed25519).unwrap();
    write_private_key(
        &tmp.path().join("keys/online.pem"),
        &online.to_pkcs8_pem(None).unwrap(),
    )
    .unwrap();
    let root_key = PrivateKey::generate(Scheme::Ed25519).unwrap();
    let expiration = Expiration {
        targets: 10,
        ..Expiration::default()
    };
    let payload = Ceremony {
        root_keys: vec![RootKey {
            key: root_key.public_key().clone(),
            signer: Some(root_key),
            name: None,
        }],
        root_threshold: 1,
        online_key: online.public_key().clone(),
        expiration,
        bins: 8,
        dev: true,
        layout: Layout::Pep480,
        targets_keys: Vec::new(),
        targets_threshold: None,
        claimed_keys: Vec::new(),
        claimed_threshold: None,
    }
    .run()
    .unwrap()
    .payload;

    let clock = Clock::default();
    let repo =
        Repository::open_with_clock(RepositoryConfig::in_data_dir(tmp.path()), clock.clone())
            .await
            .unwrap();
    repo.bootstrap(&payload).await.unwrap();
    let lock = repo.try_lock_publisher("test").await.unwrap().unwrap();
    let mut publisher = None;
    assert!(
        repo.publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap()
    );
    assert!(
        !repo
            .publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap()
    );
    let metadata = tmp.path().join("metadata");

    // Unclaimed and recently-claimed live as long as targets (10 days here):
    // re-signed within the last hour; targets and claimed are not.
    clock.advance(10 * DAY - HOUR / 2);
    // A restarted publisher (built from the store) must behave the same.
    publisher = None;
    assert!(
        repo.publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap()
    );
    for file in [
        "2.unclaimed.json",
        "2.recently-claimed.json",
        "2.snapshot.json",
    ] {
        assert!(metadata.join(file).exists(), "{file} not written");
    }
    for file in ["2.targets.json", "2.claimed.json"] {
        assert!(
            !metadata.join(file).exists(),
            "{file}: an offline role was re-signed"
        );
    }
    // Re-signed online roles verify; the offline ones still do until they expire.
    let report = audit(&AuditOptions {
        dir: metadata.clone(),
        trusted_root: None,
        at: clock.now(),
    });
    assert!(
        report.is_ok(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    let roles: Vec<&str> = report.roles.iter().map(|r| r.role.as_str()).collect();
    for role in [
        "targets",
        "claimed",
        "recently-claimed",
        "unclaimed",
        "bins-0",
    ] {
        assert!(
            roles.contains(&role),
            "audit did not reach {role}: {roles:?}"
        );
    }
}
