"""PEP 480 end to end against a pep480 `tufa serve`: a developer's own key
signs their project, and the index cannot override it.

- an ed25519 developer key made with securesystemslib; `project-foo` added
  with the real API (`POST /api/v1/delegations`, RSTUF's payload);
- project metadata built and signed by python-tuf listing
  `packages/foo/foo-1.0.tar.gz`, uploaded (`POST /api/v1/delegations/metadata`);
- ngclient finds it with the developer's length and hashes; a path of the
  same project only in the bins (added via /artifacts) is NOT found
  (project-foo is terminating); another project's file in the bins is;
- refused with a 4xx naming the field: a bad role name, wrong paths, an
  upload signed by a wrong key, a path outside packages/foo/, an old version;
- developer key rotation (PUT) then v2 signed by the new key is found;
- the delegation deleted: the bins' file of foo is found again.

Usage: pep480_project.py BASE_URL ROOT_JSON
"""

import datetime
import hashlib
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, TargetFile, Targets
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


def accepted(base, method, path, body):
    status, resp = call(method, f"{base}{path}", body)
    assert status == 202, (path, status, resp)
    return wait_task(base, resp["data"]["task_id"])


def refused(base, path, body, field):
    status, resp = call("POST", f"{base}{path}", body)
    assert 400 <= status < 500, (path, status, resp)
    assert field in json.dumps(resp), (field, resp)


def info(data):
    return {
        "length": len(data),
        "hashes": {
            "blake2b-256": hashlib.blake2b(data, digest_size=32).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    }


def delegation(signer, name="project-foo", **extra):
    key = signer.public_key
    role = {"name": name, "keyids": [key.keyid], "threshold": 1}
    role.update(extra)
    return {"delegations": {"keys": {key.keyid: key.to_dict()}, "roles": [role]}}


def project_metadata(signer, version, files):
    expires = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=30)
    targets = {path: TargetFile.from_data(path, data, ["sha256", "blake2b-256"]) for path, data in files.items()}
    md = Metadata(Targets(version=version, expires=expires, targets=targets))
    md.sign(signer)
    return md.to_dict()


def lookup(base, root_json, path):
    with open(root_json, "rb") as f:
        root_bytes = f.read()
    up = Updater(
        metadata_dir=tempfile.mkdtemp(),
        bootstrap=root_bytes,
        metadata_base_url=f"{base}/metadata/",
        target_base_url=f"{base}/targets/",
        config=UpdaterConfig(prefix_targets_with_hash=False),
    )
    up.refresh()
    return up.get_targetinfo(path)


def main():
    base, root = sys.argv[1].rstrip("/"), sys.argv[2]
    dev = CryptoSigner.generate_ed25519()
    wrong = CryptoSigner.generate_ed25519()

    refused(base, "/api/v1/delegations", delegation(dev, name="project-Foo"), "delegations.roles[0].name")
    refused(base, "/api/v1/delegations", delegation(dev, paths=["packages/*/*"]), "delegations.roles[0].paths")
    refused(base, "/api/v1/delegations", delegation(dev, terminating=False), "delegations.roles[0].terminating")
    bad_keyid = delegation(dev)
    key = bad_keyid["delegations"]["keys"].pop(dev.public_key.keyid)
    bad_keyid["delegations"]["keys"]["00" * 32] = key
    refused(base, "/api/v1/delegations", bad_keyid, "delegations.keys.")

    result = accepted(base, "POST", "/api/v1/delegations", delegation(dev))
    assert result["details"]["delegated_roles"] == ["project-foo"], result
    again = accepted(base, "POST", "/api/v1/delegations", delegation(dev))
    assert again["details"]["failed_roles"] == ["project-foo"], again

    sdist = b"foo 1.0 sdist, signed by its developer"
    v1 = project_metadata(dev, 1, {"packages/foo/foo-1.0.tar.gz": sdist})
    accepted(base, "POST", "/api/v1/delegations/metadata", {"metadata": {"project-foo": v1}})

    # The index adds a file of foo to the bins, and one of another project.
    evil = b"not from foo's developer"
    other = b"bar 1.0"
    accepted(base, "POST", "/api/v1/artifacts", {"artifacts": [
        {"path": "packages/foo/foo-6.6.6.tar.gz", "info": info(evil)},
        {"path": "packages/foo/foo-1.0.tar.gz", "info": info(evil)},
        {"path": "packages/bar/bar-1.0.tar.gz", "info": info(other)},
    ]})

    found = lookup(base, root, "packages/foo/foo-1.0.tar.gz")
    assert found is not None, "ngclient does not find foo-1.0"
    assert found.length == len(sdist), found
    assert found.hashes == info(sdist)["hashes"], found.hashes
    assert lookup(base, root, "packages/foo/foo-6.6.6.tar.gz") is None, "a bins file of foo was trusted"
    assert lookup(base, root, "packages/bar/bar-1.0.tar.gz") is not None, "bar (unclaimed) not found"

    path = "/api/v1/delegations/metadata"
    refused(base, path, {"metadata": {"project-foo": project_metadata(wrong, 2, {"packages/foo/foo-2.0.tar.gz": b"x"})}},
            "metadata.project-foo.signatures")
    refused(base, path, {"metadata": {"project-foo": project_metadata(dev, 2, {"packages/bar/bar-9.tar.gz": b"x"})}},
            "metadata.project-foo.signed.targets")
    refused(base, path, {"metadata": {"project-foo": project_metadata(dev, 1, {"packages/foo/foo-1.1.tar.gz": b"x"})}},
            "metadata.project-foo.signed.version")
    refused(base, path, {"metadata": {"project-nobody": v1}}, "metadata.project-nobody")

    # Developer key rotation: the new key's metadata is published with it.
    new = CryptoSigner.generate_ed25519()
    result = accepted(base, "PUT", "/api/v1/delegations", delegation(new))
    assert result["details"]["delegated_roles"] == ["project-foo"], result
    # Until then clients still see v1 under the old key.
    assert lookup(base, root, "packages/foo/foo-1.0.tar.gz").length == len(sdist)
    refused(base, path, {"metadata": {"project-foo": project_metadata(dev, 2, {"packages/foo/foo-2.0.tar.gz": b"x"})}},
            "metadata.project-foo.signatures")
    sdist2 = b"foo 2.0 sdist, new key"
    v2 = project_metadata(new, 2, {"packages/foo/foo-1.0.tar.gz": sdist, "packages/foo/foo-2.0.tar.gz": sdist2})
    accepted(base, "POST", path, {"metadata": {"project-foo": v2}})
    found = lookup(base, root, "packages/foo/foo-2.0.tar.gz")
    assert found is not None and found.hashes == info(sdist2)["hashes"], found
    assert lookup(base, root, "packages/foo/foo-6.6.6.tar.gz") is None

    # Removed: the project falls back to the bins.
    result = accepted(base, "POST", "/api/v1/delegations/delete", {"delegations": {"roles": [{"name": "project-foo"}]}})
    assert result["details"]["delegated_roles"] == ["project-foo"], result
    found = lookup(base, root, "packages/foo/foo-6.6.6.tar.gz")
    assert found is not None and found.length == len(evil), found

    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main()
