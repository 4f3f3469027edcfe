"""Crash test helper for `tufa serve`.

submit BASE OUT --count N --requests R: posts N artifacts in R concurrent
  requests and records, in OUT, every artifact whose request was accepted
  (HTTP 202) with its task id. Connection errors (the server being killed)
  are expected: those requests were not accepted.
pending DB: how many accepted changes were not yet published (after a kill).
check BASE ROOT IN: waits until every recorded task succeeded, then has
  python-tuf's ngclient find every accepted artifact with its hashes.
"""

import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from tuf.ngclient import Updater, UpdaterConfig


def call(method, url, body=None, timeout=120):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def submit(base, out, count, requests):
    per = count // requests
    def post(r):
        arts = []
        for i in range(r * per, (r + 1) * per):
            data = f"crash {i}".encode()
            arts.append({"path": f"packages/crash{i % 503}/crash-{i}.tar.gz",
                         "info": {"length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}})
        try:
            status, resp = call("POST", f"{base}/api/v1/artifacts/", {"artifacts": arts})
        except (OSError, urllib.error.URLError):
            return None
        if status != 202:
            return None
        return {"task_id": resp["data"]["task_id"], "artifacts": arts}
    with ThreadPoolExecutor(max_workers=requests) as pool:
        accepted = [a for a in pool.map(post, range(requests)) if a]
    json.dump(accepted, open(out, "w"))
    print(json.dumps({"accepted_requests": len(accepted)}))


def check(base, root, path):
    accepted = json.load(open(path))
    deadline = time.time() + 300
    for entry in accepted:
        while True:
            status, body = call("GET", f"{base}/api/v1/task/?task_id={entry['task_id']}")
            assert status == 200, f"accepted task {entry['task_id']} is unknown after restart: {status} {body}"
            if body["data"]["state"] == "SUCCESS":
                break
            if time.time() > deadline:
                sys.exit(f"task {entry['task_id']} not done: {body}")
            time.sleep(0.2)
    import tempfile
    up = Updater(metadata_dir=tempfile.mkdtemp(), metadata_base_url=f"{base}/metadata/",
                 target_base_url=f"{base}/targets/", config=UpdaterConfig(prefix_targets_with_hash=False),
                 bootstrap=open(root, "rb").read())
    up.refresh()
    n = 0
    for entry in accepted:
        for a in entry["artifacts"]:
            found = up.get_targetinfo(a["path"])
            if found is None or found.hashes != a["info"]["hashes"]:
                sys.exit(f"accepted artifact {a['path']} is not published")
            n += 1
    print(json.dumps({"verified": n}))


def pending(db):
    import sqlite3
    con = sqlite3.connect(db)
    n = con.execute("SELECT COUNT(*) FROM artifacts WHERE change_seq > published_seq").fetchone()[0]
    print(json.dumps({"pending_at_kill": n}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "pending":
        pending(sys.argv[2])
        sys.exit(0)
    if mode == "submit":
        args = sys.argv[2:]
        submit(args[0], args[1], int(args[args.index("--count") + 1]), int(args[args.index("--requests") + 1]))
    else:
        check(*sys.argv[2:5])
