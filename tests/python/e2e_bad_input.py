"""Send bad requests to `tufa serve` and check each is refused with a 4xx JSON
error that names what was wrong, and that nothing was applied.

Usage: e2e_bad_input.py BASE_URL
"""

import json
import sys
import urllib.error
import urllib.request

GOOD_HASH = "ab" * 32


def call(method, url, data=None):
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    base = sys.argv[1].rstrip("/")
    _, before = call("GET", f"{base}/api/v1/tasks?limit=10000")
    ts_before = call("GET", f"{base}/metadata/timestamp.json")[1]

    def artifacts(path="packages/a/a-1.tar.gz", length=1, hashes=None, **extra):
        info = {"length": length, "hashes": hashes or {"sha256": GOOD_HASH}, **extra}
        return json.dumps({"artifacts": [{"path": path, "info": info}]}).encode()

    cases = [
        ("malformed JSON", "POST", "/api/v1/artifacts/", b'{"artifacts": [', 400, "body is not valid JSON"),
        ("not an object", "POST", "/api/v1/artifacts/", b"[1, 2]", 422, "body: must be a JSON object"),
        ("no artifacts", "POST", "/api/v1/artifacts/", b"{}", 422, "artifacts: is required"),
        ("empty artifacts", "POST", "/api/v1/artifacts/", b'{"artifacts": []}', 422, "artifacts: must not be empty"),
        ("absolute path", "POST", "/api/v1/artifacts/", artifacts(path="/etc/passwd"), 422, "artifacts[0].path"),
        ("dot-dot path", "POST", "/api/v1/artifacts/", artifacts(path="a/../b"), 422, "'..' segment"),
        ("backslash path", "POST", "/api/v1/artifacts/", artifacts(path="a\\b"), 422, "backslash"),
        ("negative size", "POST", "/api/v1/artifacts/", artifacts(length=-5), 422, "artifacts[0].info.length"),
        ("float size", "POST", "/api/v1/artifacts/", artifacts(length=1.5), 422, "artifacts[0].info.length"),
        ("short hash", "POST", "/api/v1/artifacts/", artifacts(hashes={"sha256": "abc"}), 422, "artifacts[0].info.hashes.sha256: must be 64 hex digits"),
        ("unknown hash", "POST", "/api/v1/artifacts/", artifacts(hashes={"md5": "ab" * 16}), 422, "artifacts[0].info.hashes.md5"),
        ("unknown field", "POST", "/api/v1/artifacts/", artifacts(colour="red"), 422, "artifacts[0].info.colour"),
        ("bad flag", "POST", "/api/v1/artifacts/", json.dumps({"artifacts": [], "publish_artifacts": "yes"}).encode(), 422, "publish_artifacts"),
        ("delete non-string", "POST", "/api/v1/artifacts/delete", b'{"artifacts": [1]}', 422, "artifacts[0]: must be a string"),
        ("delete bad path", "POST", "/api/v1/artifacts/delete", b'{"artifacts": ["../x"]}', 422, "artifacts[0]"),
        ("second bootstrap", "POST", "/api/v1/bootstrap/", json.dumps({"settings": {}, "metadata": {}}).encode(), 409, "System already has a Metadata"),
        ("task without id", "GET", "/api/v1/task/", None, 422, "task_id"),
        ("unknown task", "GET", "/api/v1/task/?task_id=nope", None, 404, "no task with id"),
        ("metadata traversal", "GET", "/metadata/..%2Ftufa.db", None, 404, "no metadata file"),
        ("config unknown role", "PUT", "/api/v1/config/", b'{"settings": {"expiration": {"nope": 3}}}', 422, "settings.expiration.nope"),
        ("config zero days", "PUT", "/api/v1/config/", b'{"settings": {"expiration": {"bins": 0}}}', 422, "settings.expiration.bins"),
        ("custom delegations", "POST", "/api/v1/delegations/", b'{"delegations": {}}', 422, "custom delegations are not supported"),
        ("root update, no root", "POST", "/api/v1/metadata/", b'{"metadata": {}}', 422, "metadata.root: is required"),
        ("root update, garbage", "POST", "/api/v1/metadata/", b'{"metadata": {"root": {"signed": 1}}}', 422, "metadata.root"),
        ("sign, nothing pending", "POST", "/api/v1/metadata/sign", b'{"role": "root", "signature": {"keyid": "00", "sig": "00"}}', 422, "no root is waiting for signatures"),
        ("resign unknown role", "POST", "/api/v1/metadata/online", b'{"roles": ["root"]}', 422, "not an online role"),
    ]
    # One good artifact and one bad in the same request: all refused.
    mixed = json.dumps({"artifacts": [
        {"path": "packages/ok/ok-1.tar.gz", "info": {"length": 1, "hashes": {"sha256": GOOD_HASH}}},
        {"path": "packages/bad/bad-1.tar.gz", "info": {"length": 1, "hashes": {"sha256": "zz"}}},
    ]}).encode()
    cases.append(("half bad", "POST", "/api/v1/artifacts/", mixed, 422, "artifacts[1].info.hashes.sha256"))

    failures = []
    for name, method, path, body, want_status, want_text in cases:
        status, raw = call(method, base + path, body)
        try:
            parsed = json.loads(raw)
        except ValueError:
            failures.append(f"{name}: body is not JSON: {raw[:200]!r}")
            continue
        text = json.dumps(parsed)
        if status != want_status or want_text not in text:
            failures.append(f"{name}: got {status} {text[:300]}, want {want_status} containing {want_text!r}")
    _, after = call("GET", f"{base}/api/v1/tasks?limit=10000")
    if json.loads(after) != json.loads(before):
        failures.append("a refused request created a task")
    if call("GET", f"{base}/metadata/timestamp.json")[1] != ts_before:
        failures.append("a refused request changed the published metadata")
    # A good settings change is accepted (after the unchanged-state checks).
    status, raw = call("PUT", f"{base}/api/v1/config/", b'{"settings": {"expiration": {"bins": 30}}}')
    if status != 202:
        failures.append(f"good config change: {status} {raw[:200]!r}")
    status, raw = call("GET", f"{base}/api/v1/config/")
    if json.loads(raw)["data"].get("bins_expiration") != 30:
        failures.append(f"config change not visible: {raw[:300]!r}")
    if failures:
        sys.exit("\n".join(failures))
    print(json.dumps({"cases": len(cases)}))


if __name__ == "__main__":
    main()
