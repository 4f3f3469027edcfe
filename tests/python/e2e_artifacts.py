"""Drive `tufa serve` through its RSTUF API and check the result with python-tuf.

Adds COUNT artifacts in REQUESTS concurrent requests, waits for every task,
then has python-tuf's ngclient find every artifact with the right length and
hashes in the bin SuccinctRoles names; removes REMOVE of them and checks
ngclient no longer finds them. Exits non-zero with the reason on any failure,
and prints a JSON summary.

Usage: e2e_artifacts.py BASE_URL ROOT_JSON [--count 10000] [--requests 100] [--remove 1000]
                        [--extra-base URL ...]

With --extra-base, requests are spread round-robin over BASE_URL and every
extra API process (the scaled-out deployment).
"""

import argparse
import hashlib
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

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


def wait_tasks(base, task_ids, timeout=300):
    deadline = time.time() + timeout
    pending = set(task_ids)
    results = {}
    while pending:
        if time.time() > deadline:
            sys.exit(f"tasks not done after {timeout}s: {sorted(pending)[:5]}")
        for tid in list(pending):
            status, body = call("GET", f"{base}/api/v1/task/?task_id={tid}")
            assert status == 200, (status, body)
            state = body["data"]["state"]
            if state == "SUCCESS":
                assert body["data"]["result"]["status"] is True, body
                results[tid] = body["data"]["result"]
                pending.discard(tid)
            elif state not in ("PENDING", "STARTED", "RUNNING"):
                sys.exit(f"task {tid} ended {state}: {body}")
        time.sleep(0.2)
    return results


def artifact(i):
    project = f"project{i % 1009}"
    path = f"packages/{project}/{project}-{i}.0-py3-none-any.whl"
    data = f"wheel {i}".encode()
    return path, {
        "length": len(data),
        "hashes": {
            "blake2b-256": hashlib.blake2b(data, digest_size=32).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    }


METADATA_URL = None


def updater(base, root_json, workdir):
    meta_dir = tempfile.mkdtemp(dir=workdir)
    with open(root_json, "rb") as f:
        root_bytes = f.read()
    up = Updater(
        metadata_dir=meta_dir,
        bootstrap=root_bytes,
        metadata_base_url=METADATA_URL or f"{base}/metadata/",
        target_base_url=f"{base}/targets/",
        config=UpdaterConfig(prefix_targets_with_hash=False),
    )
    up.refresh()
    return up


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("root")
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--remove", type=int, default=1000)
    p.add_argument("--extra-base", action="append", default=[])
    p.add_argument("--metadata-url", help="where ngclient reads metadata (default BASE/metadata/)")
    args = p.parse_args()
    global METADATA_URL
    METADATA_URL = args.metadata_url
    base = args.base.rstrip("/")
    bases = [base] + [b.rstrip("/") for b in args.extra_base]
    workdir = tempfile.mkdtemp()
    started = time.time()

    status, config = call("GET", f"{base}/api/v1/config/")
    assert status == 200, config
    bins = config["data"]["number_of_delegated_bins"]
    succinct = SuccinctRoles([], 1, bins.bit_length() - 1, "bins")

    artifacts = [artifact(i) for i in range(args.count)]
    per = (args.count + args.requests - 1) // args.requests
    chunks = [artifacts[i : i + per] for i in range(0, args.count, per)]

    def post(numbered):
        n, chunk = numbered
        body = {"artifacts": [{"path": p, "info": info} for p, info in chunk]}
        status, resp = call("POST", f"{bases[n % len(bases)]}/api/v1/artifacts/", body)
        assert status == 202, (status, resp)
        assert resp["message"] == "New Artifact(s) successfully submitted.", resp
        assert resp["data"]["artifacts"] == [p for p, _ in chunk], resp
        return resp["data"]["task_id"], chunk

    with ThreadPoolExecutor(max_workers=args.requests) as pool:
        submitted = list(pool.map(post, enumerate(chunks)))
    accepted_s = time.time() - started
    results = wait_tasks(base, [t for t, _ in submitted])
    published_s = time.time() - started

    # Each task names exactly the bins python-tuf assigns its paths to.
    for tid, chunk in submitted:
        details = results[tid]["details"]
        assert details["added_artifacts"] == [p for p, _ in chunk]
        want = sorted({succinct.get_role_for_target(p) for p, _ in chunk})
        assert sorted(details["artifact_roles"]) == want, (details["artifact_roles"][:3], want[:3])

    up = updater(base, args.root, workdir)
    for path, info in artifacts:
        found = up.get_targetinfo(path)
        if found is None:
            sys.exit(f"ngclient does not find {path}")
        if found.length != info["length"] or found.hashes != info["hashes"]:
            sys.exit(f"{path}: ngclient has {found.length} {found.hashes}, sent {info}")
    found_s = time.time() - started

    # Remove some; a repeat of the same removal reports them as not found.
    removed = [p for p, _ in artifacts[: args.remove]]
    ids = []
    for i in range(0, len(removed), 100):
        status, resp = call("POST", f"{base}/api/v1/artifacts/delete", {"artifacts": removed[i : i + 100]})
        assert status == 202, (status, resp)
        assert resp["message"] == "Remove Artifact(s) successfully submitted.", resp
        ids.append(resp["data"]["task_id"])
    for tid, result in wait_tasks(base, ids).items():
        assert result["details"]["not_found_artifacts"] == [], result
    status, resp = call("POST", f"{base}/api/v1/artifacts/delete", {"artifacts": removed[:3] + ["never/added"]})
    assert status == 202, resp
    again = wait_tasks(base, [resp["data"]["task_id"]])[resp["data"]["task_id"]]
    assert again["details"]["deleted_artifacts"] == [], again
    assert again["details"]["not_found_artifacts"] == removed[:3] + ["never/added"], again

    up = updater(base, args.root, workdir)
    for path in removed:
        if up.get_targetinfo(path) is not None:
            sys.exit(f"ngclient still finds removed {path}")
    for path, info in artifacts[args.remove : args.remove + 1000]:
        found = up.get_targetinfo(path)
        if found is None or found.hashes != info["hashes"]:
            sys.exit(f"ngclient lost {path} after removals")

    print(
        json.dumps(
            {
                "artifacts": args.count,
                "requests": len(chunks),
                "bins": bins,
                "accepted_s": round(accepted_s, 2),
                "published_s": round(published_s, 2),
                "verified_s": round(found_s, 2),
                "removed": len(removed),
            }
        )
    )


if __name__ == "__main__":
    main()
