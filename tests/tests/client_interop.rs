//! tufa's updater against repositories python-tuf built (all four key
//! types, a root rotation, `paths`, `path_hash_prefixes`, succinct bins under
//! a terminating role, snapshot and timestamp with lengths and hashes,
//! indented JSON), and against python-tuf's own ngclient: over the same
//! HTTP server, both must make exactly the same requests in the same order.

use std::path::Path;

use serde_json::Value;
use tufa_tests::repo_builder::{TestServer, init_metadata_dir, trusted_versions, updater};
use tufa_tests::run_python;

struct PyRepo {
    dir: tempfile::TempDir,
    summary: Value,
}

fn python_repo() -> PyRepo {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("repo");
    let output = run_python("client_build_repo.py", &[out.as_os_str()]);
    let summary = serde_json::from_slice(&output.stdout).expect("summary json");
    PyRepo { dir, summary }
}

impl PyRepo {
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("repo/metadata/1.root.json")
    }

    fn serve(&self) -> TestServer {
        let server = TestServer::start();
        server.put_dir("", &self.dir.path().join("repo"));
        server
    }

    fn targets(&self) -> Vec<(String, Vec<u8>)> {
        self.summary["targets"]
            .as_object()
            .expect("targets")
            .iter()
            .map(|(p, hex_data)| {
                let data = hex::decode(hex_data.as_str().expect("hex")).expect("hex");
                (p.clone(), data)
            })
            .collect()
    }
}

const MISSING: [&str; 4] = [
    "packages/demo/not-there.whl",
    "files/not-there",
    "hashed/not-there",
    "nowhere",
];

#[test]
fn tufa_reads_a_python_tuf_repository() {
    let repo = python_repo();
    let server = repo.serve();
    let tmp = tempfile::tempdir().expect("tempdir");
    let meta = tmp.path().join("metadata");
    let tdir = tmp.path().join("targets");
    init_metadata_dir(&meta, &std::fs::read(repo.root()).expect("root"));
    let mut u = updater(&server, &meta, &tdir);
    u.refresh().expect("refresh");
    assert_eq!(u.root().version, 2, "rotated to p384 + rsa");
    for (path, data) in repo.targets() {
        let info = u
            .get_targetinfo(&path)
            .expect("lookup")
            .unwrap_or_else(|| panic!("{path} not found"));
        assert_eq!(
            Some(info.role.as_str()),
            repo.summary["roles"][&path].as_str(),
            "{path}"
        );
        let file = u.download_target(&info, None, None).expect("download");
        assert_eq!(std::fs::read(file).expect("read"), data, "{path}");
    }
    for path in MISSING {
        assert!(u.get_targetinfo(path).expect("lookup").is_none(), "{path}");
    }
    let v = trusted_versions(&meta);
    assert_eq!(v["root.json"], 2);
    for role in [
        "timestamp",
        "snapshot",
        "targets",
        "files",
        "hashed",
        "unclaimed",
    ] {
        assert_eq!(v.get(&format!("{role}.json")), Some(&1), "{role}: {v:?}");
    }
    let bins = v.keys().filter(|k| k.starts_with("bins-")).count();
    // Three packages and one missing package path: at most four of 16 bins.
    assert!(
        (1..=4).contains(&bins),
        "only the bins looked up, not all 16: {v:?}"
    );
}

#[test]
fn tufa_makes_the_same_requests_as_python_tuf_ngclient() {
    let repo = python_repo();
    let server = repo.serve();
    let mut paths: Vec<String> = repo.targets().into_iter().map(|(p, _)| p).collect();
    paths.extend(MISSING.iter().map(|s| s.to_string()));

    // python-tuf first.
    let py = tempfile::tempdir().expect("tempdir");
    let (murl, turl) = (server.url("metadata"), server.url("targets"));
    let mut args: Vec<std::ffi::OsString> = vec![
        murl.into(),
        turl.into(),
        py.path().join("metadata").into(),
        py.path().join("targets").into(),
        repo.root().into(),
    ];
    args.extend(paths.iter().map(Into::into));
    let arg_refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let out = run_python("client_ngclient.py", &arg_refs);
    let python_results: Value = serde_json::from_slice(&out.stdout).expect("results");
    let python_requests = server.requests();
    server.clear_requests();

    // Then tufa, from an equally fresh start.
    let ours = tempfile::tempdir().expect("tempdir");
    let meta = ours.path().join("metadata");
    init_metadata_dir(&meta, &std::fs::read(repo.root()).expect("root"));
    let mut u = updater(&server, &meta, &ours.path().join("targets"));
    u.refresh().expect("refresh");
    let mut our_results = serde_json::Map::new();
    for path in &paths {
        let result = match u.get_targetinfo(path).expect("lookup") {
            None => "missing",
            Some(info) => {
                u.download_target(&info, None, None).expect("download");
                "ok"
            }
        };
        our_results.insert(path.clone(), result.into());
    }
    assert_eq!(Value::Object(our_results), python_results);
    assert_eq!(
        server.requests(),
        python_requests,
        "tufa and python-tuf asked for different things"
    );
    // Both stored the same target files under the same names.
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&ours.path().join("targets")),
        names(&py.path().join("targets"))
    );
    // And the same trusted metadata files (python-tuf also keeps root_history/).
    let json_names = |d: &Path| {
        names(d)
            .into_iter()
            .filter(|n| n.ends_with(".json"))
            .collect::<Vec<_>>()
    };
    assert_eq!(json_names(&meta), json_names(&py.path().join("metadata")));

    // tufa picks up where python-tuf left off: its metadata and target
    // directories are a warm cache for tufa (root.json there is a symlink
    // into root_history/).
    server.clear_requests();
    let mut warm = updater(
        &server,
        &py.path().join("metadata"),
        &py.path().join("targets"),
    );
    for path in &paths {
        if let Some(info) = warm.get_targetinfo(path).expect("lookup") {
            warm.download_target(&info, None, None).expect("cached");
        }
    }
    assert_eq!(
        server.requests(),
        ["metadata/3.root.json", "metadata/timestamp.json"]
    );
}
