//! `tufa verify` against repositories python-tuf builds: 1024 succinct bins,
//! a root rotation, and one scenario per failure it must name.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tufa_tests::{run_python, tufa_bin};

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    victim_bin: String,
}

/// Builds the python-tuf repositories once for every test in this file.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = run_python(
            "build_repo.py",
            &[
                dir.path().as_os_str(),
                "--bins".as_ref(),
                "1024".as_ref(),
                "--targets".as_ref(),
                "3000".as_ref(),
            ],
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
        let victim_bin = summary["victim_bin"]
            .as_str()
            .expect("victim_bin")
            .to_string();
        Fixture {
            root: dir.path().to_path_buf(),
            _dir: dir,
            victim_bin,
        }
    })
}

fn verify(dir: &Path, extra: &[&str]) -> Output {
    Command::new(tufa_bin())
        .arg("verify")
        .arg(dir)
        .args(extra)
        .output()
        .expect("run tufa")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of the good repository to break.
fn copy_of_good(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dst = tmp.path().join(name);
    std::fs::create_dir(&dst).expect("mkdir");
    for entry in std::fs::read_dir(fixture().root.join("good")).expect("read good") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy");
    }
    (tmp, dst)
}

#[test]
fn good_repository_with_1024_bins_passes() {
    let out = verify(&fixture().root.join("good"), &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Two roots, timestamp, snapshot, targets and every bin: one line each.
    let ok_lines = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(ok_lines, 2 + 3 + 1024, "{stdout}");
    assert!(stdout.contains("ok    root v2:"));
    assert!(stdout.contains("ok    bins-3ff v1:"));
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .contains("verified 1029 roles"),
        "{stdout}"
    );
}

#[test]
fn trusted_root_may_be_given_explicitly() {
    let good = fixture().root.join("good");
    let out = verify(
        &good,
        &["--root", good.join("2.root.json").to_str().unwrap()],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(!text(&out).0.contains("root v1"));
}

fn assert_fails_naming(out: &Output, role: &str, reason: &str) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line:\n{stdout}"));
    assert!(line.starts_with(&format!("FAIL  {role} ")), "{line}");
    assert!(line.contains(reason), "expected {reason:?} in {line}");
    assert!(stderr.contains(role) && stderr.contains(reason), "{stderr}");
    assert!(
        stdout.lines().last().unwrap().starts_with("FAILED: 1 of"),
        "{stdout}"
    );
}

#[test]
fn expired_bin_is_named() {
    let f = fixture();
    assert_fails_naming(
        &verify(&f.root.join("expired-bin"), &[]),
        &f.victim_bin,
        "expired at 2020-01-01T00:00:00Z",
    );
}

#[test]
fn bin_version_differing_from_snapshot_is_named() {
    let f = fixture();
    assert_fails_naming(
        &verify(&f.root.join("bin-version"), &[]),
        &f.victim_bin,
        "version 2 but the referring metadata lists version 1",
    );
}

#[test]
fn root_not_signed_by_old_threshold_is_named() {
    assert_fails_naming(
        &verify(&fixture().root.join("bad-root"), &[]),
        "root",
        "not signed by a threshold of root version 2",
    );
}

#[test]
fn bad_signature_is_named() {
    let f = fixture();
    let (_tmp, dir) = copy_of_good("bad-sig");
    let path = dir.join(format!("1.{}.json", f.victim_bin));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let sig = doc["signatures"][0]["sig"].as_str().unwrap().to_string();
    let flipped = match sig.strip_prefix('0') {
        Some(rest) => format!("1{rest}"),
        None => format!("0{}", &sig[1..]),
    };
    doc["signatures"][0]["sig"] = flipped.into();
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_fails_naming(
        &verify(&dir, &[]),
        &f.victim_bin,
        "0 of 1 required signatures are valid",
    );
}

#[test]
fn tampered_target_in_a_bin_is_named() {
    let f = fixture();
    let (_tmp, dir) = copy_of_good("tampered");
    let path = dir.join(format!("1.{}.json", f.victim_bin));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let targets = doc["signed"]["targets"].as_object_mut().unwrap();
    let first = targets.keys().next().unwrap().clone();
    targets[&first]["length"] = 999_999.into();
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_fails_naming(
        &verify(&dir, &[]),
        &f.victim_bin,
        "required signatures are valid",
    );
}

#[test]
fn hostile_files_fail_cleanly() {
    let f = fixture();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("garbage", b"\x00\xffnot json".to_vec(), "is not valid"),
        (
            "truncated",
            b"{\"signed\": {\"_type\": \"targets\"".to_vec(),
            "is not valid",
        ),
        (
            "wrong-shape",
            br#"{"signed": [], "signatures": []}"#.to_vec(),
            "\"signed\" is not an object",
        ),
        ("huge", vec![b' '; 5_000_001], "longer than 5000000 bytes"),
    ];
    for (name, bytes, reason) in cases {
        let (_tmp, dir) = copy_of_good(name);
        std::fs::write(dir.join(format!("1.{}.json", f.victim_bin)), bytes).unwrap();
        assert_fails_naming(&verify(&dir, &[]), &f.victim_bin, reason);
    }
    // An endless timestamp is cut off at its 16 KiB limit.
    let (_tmp, dir) = copy_of_good("endless-timestamp");
    std::fs::write(dir.join("timestamp.json"), vec![b'{'; 100_000]).unwrap();
    assert_fails_naming(&verify(&dir, &[]), "timestamp", "longer than 16384 bytes");
    // A missing bin is named too.
    let (_tmp, dir) = copy_of_good("missing");
    std::fs::remove_file(dir.join(format!("1.{}.json", f.victim_bin))).unwrap();
    assert_fails_naming(&verify(&dir, &[]), &f.victim_bin, "cannot open");
}

#[test]
fn expiry_is_checked_at_the_given_time() {
    let out = verify(
        &fixture().root.join("good"),
        &["--at", "2099-01-01T00:00:00Z"],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("FAIL  root v2: expired at"), "{stdout}");
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let out = verify(Path::new("/nonexistent/tufa"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("is not a directory"));
    let out = verify(&fixture().root.join("good"), &["--at", "tomorrow"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("--at \"tomorrow\""),
        "{:?}",
        text(&out)
    );
}
