//! `tufa import` and `tufa gc` end to end: the real binary on a `--dev`
//! repository, with `tufa serve` running and stopped; python-tuf's ngclient
//! and `tufa verify` check the result.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tufa_tests::server::Server;
use tufa_tests::{run_python, tufa_bin, verify_clean};

fn tufa(args: &[&str]) -> Output {
    Command::new(tufa_bin())
        .args(args)
        .env("TUFA_LOG", "warn")
        .output()
        .expect("run tufa")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `count` rows from `first` on; sha256 rows end in CRLF.
fn write_csv(path: &Path, first: usize, count: usize, sha256: bool) -> PathBuf {
    let mut text = String::new();
    for i in first..first + count {
        let project = format!("project{}", i % 97);
        let kind = if sha256 { "sha256" } else { "blake2b-256" };
        let digest = format!("{:064x}", i * 7919 + 1);
        let end = if sha256 { "\r\n" } else { "\n" };
        text.push_str(&format!(
            "packages/{project}/{project}-{i}.0.tar.gz;{};{kind};{digest}{end}",
            1000 + i
        ));
    }
    fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn import(data: &Path, csvs: &[&Path]) -> Output {
    let mut args = vec!["import", "--data-dir", data.to_str().unwrap()];
    for c in csvs {
        args.extend(["--csv", c.to_str().unwrap()]);
    }
    tufa(&args)
}

fn ngclient_finds(server: &Server, csvs: &[&Path]) -> String {
    let root = server.metadata_dir().join("1.root.json");
    let mut args = vec!["found".as_ref(), server.base_url.as_ref(), root.as_os_str()];
    args.extend(csvs.iter().map(|c| c.as_os_str()));
    let out = run_python("import_check.py", &args);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A few thousand rows imported while `tufa serve` runs (its publisher
/// publishes) and while it is stopped (the import publishes itself); then
/// the same rows again, which changes nothing. ngclient finds them all.
#[test]
fn import_with_server_running_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = write_csv(&dir.path().join("a.csv"), 0, 2000, false);
    let b = write_csv(&dir.path().join("b.csv"), 2000, 1000, true);
    let mut server = Server::start(&data, &["--dev", "--dev-bins", "256"]);

    let out = ok(import(&data, &[&a]), "import with the server running");
    assert!(
        out.contains("2000 artifacts (2000 new or changed, 0 duplicate rows skipped)"),
        "{out}"
    );
    assert!(out.contains("published (task "), "{out}");
    server.kill();

    // Server stopped: b is new, a is already there (and lists nothing new).
    let out = ok(import(&data, &[&b, &a]), "import with the server stopped");
    assert!(
        out.contains("3000 artifacts (1000 new or changed, 0 duplicate rows skipped)"),
        "{out}"
    );
    assert!(out.contains("publication: snapshot version"), "{out}");
    let out = ok(import(&data, &[&a, &b]), "import again");
    assert!(out.contains("nothing new to publish"), "{out}");
    verify_clean(&data.join("metadata"));

    let server = Server::start(&data, &[]);
    let found = ngclient_finds(&server, &[&a, &b]);
    assert!(found.contains("\"found\": 3000"), "{found}");
}

/// A bad row refuses the whole import, naming file and line; nothing is
/// recorded or published.
#[test]
fn bad_rows_are_refused_and_nothing_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &["--dev", "--dev-bins", "16"]);
    server.kill();
    let timestamp = fs::read(data.join("metadata/timestamp.json")).unwrap();
    let good = write_csv(&dir.path().join("good.csv"), 0, 50, false);
    let good_text = fs::read_to_string(&good).unwrap();
    let lines: Vec<&str> = good_text.lines().collect();
    let digest = "ab".repeat(32);
    let cases = [
        (
            "a/../b;1;sha256;{d}",
            ":7: path \"a/../b\" contains a '.' or '..' segment",
        ),
        (
            "a/b;-1;sha256;{d}",
            ":7: size must be a non-negative integer",
        ),
        ("a/b;1;md5;{d}", ":7: unknown hash type \"md5\""),
        ("a/b;1;sha512;{d}", ":7: sha512 hash must be 128 hex digits"),
        ("a/b;1;sha256", ":7: expected 4 fields"),
    ];
    for (i, (bad, want)) in cases.iter().enumerate() {
        let mut text: Vec<String> = lines[..6].iter().map(|s| s.to_string()).collect();
        text.push(bad.replace("{d}", &digest));
        text.extend(lines[6..].iter().map(|s| s.to_string()));
        let path = dir.path().join(format!("bad{i}.csv"));
        fs::write(&path, text.join("\n")).unwrap();
        let out = import(&data, &[&good, &path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {stderr}");
        let want = format!("{}{want}", path.display());
        assert!(stderr.contains(&want), "{bad}: want {want:?} in\n{stderr}");
        assert!(stderr.contains("nothing was imported"), "{stderr}");
    }
    // The same path twice with different hashes names both lines.
    let dup = dir.path().join("dup.csv");
    let changed = lines[2].replace(";blake2b-256;", ";sha256;");
    fs::write(&dup, format!("{}\n{changed}\n", lines[..5].join("\n"))).unwrap();
    let out = import(&data, &[&dup]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:6: ", dup.display()))
            && stderr.contains(&format!("is also {}:3 with different", dup.display())),
        "{stderr}"
    );

    let count = run_python(
        "import_check.py",
        &["count".as_ref(), data.join("tufa.db").as_os_str()],
    );
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "0");
    assert_eq!(
        fs::read(data.join("metadata/timestamp.json")).unwrap(),
        timestamp
    );
    verify_clean(&data.join("metadata"));
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The files the live timestamp reaches: timestamp, its snapshot, every role
/// version the snapshot lists.
fn reachable(metadata: &Path) -> BTreeSet<String> {
    let ts = json(&metadata.join("timestamp.json"));
    let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snapshot = json(&metadata.join(format!("{sv}.snapshot.json")));
    let mut out = BTreeSet::from(["timestamp.json".to_string(), format!("{sv}.snapshot.json")]);
    for (file, meta) in snapshot["signed"]["meta"].as_object().unwrap() {
        let role = file.strip_suffix(".json").unwrap();
        out.insert(format!("{}.{role}.json", meta["version"].as_u64().unwrap()));
    }
    out
}

fn files(metadata: &Path) -> BTreeSet<String> {
    fs::read_dir(metadata)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// After several publications, gc keeps everything within the grace period,
/// `--dry-run` deletes nothing, and once the files are old gc deletes
/// exactly the versions the live timestamp cannot reach, never a root; the
/// repository still verifies and ngclient still refreshes.
#[test]
fn gc_deletes_only_unreachable_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let metadata = data.join("metadata");
    let server = Server::start(&data, &["--dev", "--dev-bins", "16"]);
    let mut csvs = Vec::new();
    for n in 0..4 {
        let csv = write_csv(&dir.path().join(format!("{n}.csv")), n * 40, 40, n % 2 == 1);
        ok(import(&data, &[&csv]), "import");
        csvs.push(csv);
    }
    let before = files(&metadata);
    let live = reachable(&metadata);
    let unreachable: BTreeSet<String> = before
        .iter()
        .filter(|f| !live.contains(*f) && !f.ends_with(".root.json"))
        .cloned()
        .collect();
    assert!(unreachable.len() >= 40, "{unreachable:?}");
    let data_arg = data.to_str().unwrap();

    let out = ok(tufa(&["gc", "--data-dir", data_arg]), "gc");
    assert!(out.contains("nothing to delete"), "{out}");
    let out = ok(
        tufa(&["gc", "--data-dir", data_arg, "--dry-run", "--grace", "0"]),
        "gc --dry-run",
    );
    assert!(
        out.contains(&format!(
            "dry run: would delete {} files",
            unreachable.len()
        )),
        "{out}"
    );
    for f in &unreachable {
        assert!(out.contains(&format!("would delete {f} (")), "{f}: {out}");
    }
    assert_eq!(files(&metadata), before);

    // Age every file by two days: now past the default grace of one day.
    let old = SystemTime::now() - Duration::from_secs(2 * 86_400);
    for f in &before {
        fs::File::options()
            .append(true)
            .open(metadata.join(f))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let out = ok(
        tufa(&[
            "gc",
            "--data-dir",
            data_arg,
            "--batch",
            "7",
            "--pause-ms",
            "1",
        ]),
        "gc",
    );
    assert!(
        out.contains(&format!("deleted {} files", unreachable.len())),
        "{out}"
    );
    let after = files(&metadata);
    let want: BTreeSet<String> = before.difference(&unreachable).cloned().collect();
    assert_eq!(after, want);
    assert!(after.contains("1.root.json"));
    verify_clean(&metadata);
    let found = ngclient_finds(
        &server,
        &csvs.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    );
    assert!(found.contains("\"found\": 160"), "{found}");
    let out = ok(
        tufa(&["gc", "--data-dir", data_arg, "--grace", "0"]),
        "gc again",
    );
    assert!(out.contains("nothing to delete"), "{out}");
}
