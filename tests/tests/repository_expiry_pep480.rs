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

/// A pep480 repository in `dir` (online key in `dir/keys`), targets expiring after `targets_days`.
async fn pep480_repository(dir: &std::path::Path, targets_days: u32) -> (Repository, Clock) {
    let tmp = dir;
    let online = PrivateKey::generate(Scheme::Ed25519).unwrap();
    write_private_key(
        &tmp.join("keys/online.pem"),
        &online.to_pkcs8_pem(None).unwrap(),
    )
    .unwrap();
    let root_key = PrivateKey::generate(Scheme::Ed25519).unwrap();
    let expiration = Expiration {
        targets: targets_days,
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
    let repo = Repository::open_with_clock(RepositoryConfig::in_data_dir(tmp), clock.clone())
        .await
        .unwrap();
    repo.bootstrap(&payload).await.unwrap();
    (repo, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_roles_resigned_offline_roles_never() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, clock) = pep480_repository(tmp.path(), 10).await;
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

/// Project metadata accepted, then its delegation removed before the
/// publisher ran: the metadata is not published and its task fails, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_for_a_removed_delegation_fails_its_task() {
    use tufa_repository::delegations::DelegationAction;
    use tufa_repository::task::TaskState;
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _clock) = pep480_repository(tmp.path(), 365).await;
    let lock = repo.try_lock_publisher("test").await.unwrap().unwrap();
    let mut publisher = None;
    assert!(
        repo.publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap()
    );

    let dev = PrivateKey::generate(Scheme::Ed25519).unwrap();
    let keyid = dev.keyid().to_string();
    let add = serde_json::json!({"delegations": {
        "keys": {&keyid: dev.public_key()},
        "roles": [{"name": "project-foo", "keyids": [&keyid], "threshold": 1}]}});
    repo.delegations(DelegationAction::Add, &add)
        .await
        .unwrap()
        .unwrap();
    assert!(
        repo.publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap()
    );

    let mut targets =
        tufa_metadata::Targets::new(tufa_metadata::UtcTime::now().plus_seconds(86_400));
    targets.targets.insert(
        "packages/foo/foo-1.0.tar.gz".into(),
        tufa_metadata::TargetFile::from_bytes(b"foo", &[tufa_metadata::HashAlgorithm::Sha256]),
    );
    let mut md = tufa_metadata::Metadata::new(targets);
    md.sign(&dev as &dyn Signer).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&md.to_bytes().unwrap()).unwrap();
    let upload = repo
        .upload_project_metadata(&serde_json::json!({"metadata": {"project-foo": doc}}))
        .await
        .unwrap();
    let remove = serde_json::json!({"delegations": {"roles": [{"name": "project-foo"}]}});
    let removed = repo
        .delegations(DelegationAction::Delete, &remove)
        .await
        .unwrap()
        .unwrap();
    assert!(
        repo.publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap()
    );

    let task = repo.task(&upload).await.unwrap().unwrap();
    assert_eq!(task.state, TaskState::Failure, "{task:?}");
    assert!(task.error.unwrap_or_default().contains("removed"));
    let task = repo.task(&removed).await.unwrap().unwrap();
    assert_eq!(task.state, TaskState::Success, "{task:?}");
    assert!(!tmp.path().join("metadata/1.project-foo.json").exists());
}
