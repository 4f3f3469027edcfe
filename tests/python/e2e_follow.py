"""One step of a long-lived python-tuf client following `tufa serve`.

Optionally adds COUNT new artifacts (named after STEP) through the API and
waits for them; then refreshes an ngclient Updater whose metadata directory
persists across calls (so it follows root rotations the way a real client
does) and checks that every artifact added so far is found with the right
hashes. Prints the versions the client trusts as JSON.

Usage: e2e_follow.py BASE_URL ROOT_JSON STATE_DIR [--step NAME --count N]
"""

import argparse
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request

from tuf.api.metadata import Metadata
from tuf.ngclient import Updater, UpdaterConfig


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("root")
    p.add_argument("state_dir")
    p.add_argument("--step", default=None)
    p.add_argument("--count", type=int, default=0)
    args = p.parse_args()
    base = args.base.rstrip("/")
    meta_dir = os.path.join(args.state_dir, "metadata")
    os.makedirs(meta_dir, exist_ok=True)
    known_file = os.path.join(args.state_dir, "artifacts.json")
    known = json.load(open(known_file)) if os.path.exists(known_file) else {}

    if args.count:
        arts = []
        for i in range(args.count):
            path = f"packages/{args.step}/{args.step}-{i}.tar.gz"
            data = f"{args.step} {i}".encode()
            arts.append({"path": path, "info": {"length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}})
        status, resp = call("POST", f"{base}/api/v1/artifacts/", {"artifacts": arts})
        assert status == 202, (status, resp)
        tid = resp["data"]["task_id"]
        deadline = time.time() + 120
        while True:
            status, body = call("GET", f"{base}/api/v1/task/?task_id={tid}")
            if body["data"]["state"] == "SUCCESS":
                break
            if time.time() > deadline:
                sys.exit(f"task {tid} not done: {body}")
            time.sleep(0.1)
        for a in arts:
            known[a["path"]] = a["info"]["hashes"]
        json.dump(known, open(known_file, "w"))

    bootstrap = None
    if not os.path.exists(os.path.join(meta_dir, "root.json")):
        bootstrap = open(args.root, "rb").read()
    up = Updater(
        metadata_dir=meta_dir,
        metadata_base_url=f"{base}/metadata/",
        target_base_url=f"{base}/targets/",
        config=UpdaterConfig(prefix_targets_with_hash=False),
        bootstrap=bootstrap,
    )
    up.refresh()
    for path, hashes in known.items():
        found = up.get_targetinfo(path)
        if found is None or found.hashes != hashes:
            sys.exit(f"ngclient cannot find {path} (found {found})")

    def version(role):
        md = Metadata.from_file(os.path.join(meta_dir, f"{role}.json"))
        return md.signed.version, sorted(s for s in md.signatures)

    root_v, _ = version("root")
    ts_v, ts_sigs = version("timestamp")
    print(json.dumps({"root": root_v, "timestamp": ts_v, "timestamp_keyids": ts_sigs, "artifacts": len(known)}))


if __name__ == "__main__":
    main()
