"""Check a pep480 `tufa serve` with python-tuf's ngclient.

Adds artifacts through the RSTUF API (project files `packages/{p}/{f}` and
index pages `simple/{p}/index.html`), waits for every task, then has
ngclient refresh from BASE/metadata/ and find each one with the right length
and hashes. The walk must go targets -> claimed -> recently-claimed ->
unclaimed -> the bin SuccinctRoles names: every one of those roles must have
been loaded (ngclient persists each role it trusted in its metadata
directory). Prints a JSON summary; exits non-zero with the reason otherwise.

Usage: pep480_client.py BASE_URL ROOT_JSON [--projects 20]
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from tuf.api.metadata import SuccinctRoles
from tuf.ngclient import Updater, UpdaterConfig


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_task(base, tid, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, body = call("GET", f"{base}/api/v1/task/?task_id={tid}")
        assert status == 200, (status, body)
        state = body["data"]["state"]
        if state == "SUCCESS":
            assert body["data"]["result"]["status"] is True, body
            return body["data"]["result"]
        if state not in ("PENDING", "STARTED", "RUNNING"):
            sys.exit(f"task {tid} ended {state}: {body}")
        time.sleep(0.1)
    sys.exit(f"task {tid} not done after {timeout}s")


def info(data):
    return {
        "length": len(data),
        "hashes": {
            "blake2b-256": hashlib.blake2b(data, digest_size=32).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    }


def updater(base, root_json):
    meta_dir = tempfile.mkdtemp()
    with open(root_json, "rb") as f:
        root_bytes = f.read()
    up = Updater(
        metadata_dir=meta_dir,
        bootstrap=root_bytes,
        metadata_base_url=f"{base}/metadata/",
        target_base_url=f"{base}/targets/",
        config=UpdaterConfig(prefix_targets_with_hash=False),
    )
    up.refresh()
    return up, meta_dir


def loaded_roles(meta_dir):
    return {urllib.parse.unquote(f[: -len(".json")]) for f in os.listdir(meta_dir) if f.endswith(".json")}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("root")
    p.add_argument("--projects", type=int, default=20)
    args = p.parse_args()
    base = args.base.rstrip("/")

    status, config = call("GET", f"{base}/api/v1/config/")
    assert status == 200, config
    assert config["data"]["layout"] == "pep480", config
    bins = config["data"]["number_of_delegated_bins"]
    succinct = SuccinctRoles([], 1, bins.bit_length() - 1, "bins")

    artifacts = {}
    for i in range(args.projects):
        project = f"proj-{i}"
        for path, data in [
            (f"packages/{project}/{project}-1.0.tar.gz", f"sdist {i}".encode()),
            (f"simple/{project}/index.html", f"<html>{project}</html>".encode()),
        ]:
            artifacts[path] = info(data)
    body = {"artifacts": [{"path": path, "info": i} for path, i in artifacts.items()]}
    status, resp = call("POST", f"{base}/api/v1/artifacts/", body)
    assert status == 202, (status, resp)
    result = wait_task(base, resp["data"]["task_id"])
    want_roles = sorted({succinct.get_role_for_target(path) for path in artifacts})
    assert sorted(result["details"]["artifact_roles"]) == want_roles, result

    # One fresh client per kind of path, so the roles each walk loaded are its own.
    walks = {}
    for kind, pick in [("packages", "packages/proj-0/"), ("simple", "simple/proj-0/")]:
        up, meta_dir = updater(base, args.root)
        path = next(path for path in artifacts if path.startswith(pick))
        found = up.get_targetinfo(path)
        assert found is not None, f"ngclient does not find {path}"
        walks[kind] = sorted(loaded_roles(meta_dir))
        need = {"root", "timestamp", "snapshot", "targets", "claimed", "recently-claimed", "unclaimed",
                succinct.get_role_for_target(path)}
        if kind == "simple":
            # claimed and recently-claimed are trusted for packages/*/* only.
            need -= {"claimed", "recently-claimed"}
            assert "claimed" not in walks[kind] and "recently-claimed" not in walks[kind], walks[kind]
        assert need <= set(walks[kind]), (kind, sorted(need - set(walks[kind])))

    up, _ = updater(base, args.root)
    for path, want in artifacts.items():
        found = up.get_targetinfo(path)
        assert found is not None, f"ngclient does not find {path}"
        assert found.length == want["length"], (path, found.length)
        assert found.hashes == want["hashes"], (path, found.hashes)

    # A path nobody added is not found (the walk ends in its bin).
    assert up.get_targetinfo("packages/proj-0/nothing-9.9.tar.gz") is None

    print(json.dumps({"found": len(artifacts), "walks": walks}))


if __name__ == "__main__":
    main()
