//! Freshness: the publisher re-signs every role before it expires, all bins
//! included, as one publication, driven by a clock the test moves forward.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use tufa_client::audit::{AuditOptions, audit};
use tufa_repository::clock::Clock;
use tufa_repository::{Repository, RepositoryConfig, dev};

const BINS: u32 = 64;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_resigned_before_they_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let repo =
        Repository::open_with_clock(RepositoryConfig::in_data_dir(tmp.path()), clock.clone())
            .await
            .unwrap();
    let payload = dev::dev_bootstrap_payload(&tmp.path().join("keys"), BINS).unwrap();
    repo.bootstrap(&payload).await.unwrap();
    let lock = repo.try_lock_publisher("test").await.unwrap().unwrap();
    let mut publisher = None;
    assert!(
        repo.publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap(),
        "bootstrap publishes"
    );
    assert!(
        !repo
            .publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap(),
        "nothing is due right after bootstrap"
    );
    let metadata = tmp.path().join("metadata");
    let audit_at = |at| {
        audit(&AuditOptions {
            dir: metadata.clone(),
            trusted_root: None,
            at,
        })
    };
    let bootstrapped = clock.now();

    // Timestamp and snapshot live one day: re-signed within the last hour,
    // with no bin touched.
    clock.advance(DAY - HOUR / 2);
    assert!(
        repo.publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap()
    );
    let (last, _) = repo.publisher_status().await;
    let last = last.unwrap();
    assert_eq!(last.bins_signed, 0, "{last:?}");
    assert_eq!(last.snapshot_version, 2);
    assert!(
        !repo
            .publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap(),
        "nothing more is due"
    );

    // Bins live seven days: all of them re-signed in one publication
    // shortly before then (timestamp and snapshot again too).
    clock.advance(6 * DAY);
    assert!(
        repo.publisher_step(&mut publisher, lock.epoch)
            .await
            .unwrap()
    );
    let (last, _) = repo.publisher_status().await;
    let last = last.unwrap();
    assert_eq!(last.bins_signed, BINS as usize, "{last:?}");

    // Past the first bins' expiry everything still verifies, because it was
    // re-signed; the bootstrap-time metadata would not have.
    let report = audit_at(bootstrapped.plus_seconds(7 * DAY + HOUR));
    assert!(
        report.is_ok(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    let failures = audit_at(clock.now().plus_seconds(400 * DAY));
    assert!(
        !failures.is_ok(),
        "audit must fail once everything has expired"
    );
}
