//! `tufa serve` killed with SIGKILL in the middle of large publications:
//! the published metadata verifies at every moment, and after a restart
//! every accepted artifact is published.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::Duration;

use tufa_tests::server::Server;
use tufa_tests::{run_python, verify_clean};

#[test]
fn sigkill_during_publication_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start(&data, &["--dev", "--dev-bins", "16384"]);
    let root = server.metadata_dir().join("1.root.json");
    // Kill while requests are being accepted, then twice while the
    // accepted batch is being signed and written.
    for (round, while_accepting, delay_ms) in [(0, true, 700u64), (1, false, 40), (2, false, 400)] {
        let accepted = tmp.path().join(format!("accepted-{round}.json"));
        let submitter = std::thread::spawn({
            let base = server.base_url.clone();
            let accepted = accepted.clone();
            move || {
                run_python(
                    "e2e_crash.py",
                    &[
                        "submit".as_ref(),
                        base.as_ref(),
                        accepted.as_os_str(),
                        "--count".as_ref(),
                        "4800".as_ref(),
                        "--requests".as_ref(),
                        "16".as_ref(),
                    ],
                )
            }
        });
        let out = if while_accepting {
            std::thread::sleep(Duration::from_millis(delay_ms));
            server.kill();
            submitter.join().unwrap()
        } else {
            let out = submitter.join().unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            server.kill();
            out
        };
        eprintln!(
            "round {round}: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
        let pending = run_python(
            "e2e_crash.py",
            &["pending".as_ref(), data.join("tufa.db").as_os_str()],
        );
        eprintln!(
            "round {round}: {}",
            String::from_utf8_lossy(&pending.stdout).trim()
        );
        // Whatever instant the kill hit, what is published verifies.
        verify_clean(&server.metadata_dir());
        server = Server::start(&data, &[]);
        let out = run_python(
            "e2e_crash.py",
            &[
                "check".as_ref(),
                server.base_url.as_ref(),
                root.as_os_str(),
                accepted.as_os_str(),
            ],
        );
        eprintln!(
            "round {round}: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    server.kill();
    verify_clean(&server.metadata_dir());
}
