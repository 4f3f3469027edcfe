"""The bundled index end to end: twine uploads to `tufa serve --dev`, pip
downloads and installs from it, and python-tuf's ngclient checks that every
page and file pip fetched is exactly a signed target.

Usage: index_e2e.py BASE_URL ROOT_JSON TOKEN WORKDIR PHASE
PHASE: basic (twine, pip, refusals) | concurrent (50 uploads at once)
Exits non-zero with the reason on any failure; prints a JSON summary.
"""

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import requests
from tuf.ngclient import Updater, UpdaterConfig

JSON_V1 = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = f"{JSON_V1}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
FIXED = (2020, 1, 1, 0, 0, 0)


def fail(msg):
    sys.exit(f"FAIL: {msg}")


def dist_name(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def metadata(name, version, requires_python):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", "Summary: a tufa test package"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    return ("\n".join(lines) + "\n").encode()


def make_wheel(outdir, name, version, requires_python=None, padding=0):
    dist = dist_name(name)
    mod = dist
    files = {
        f"{mod}/__init__.py": f"VERSION = {version!r}\nPAD = {'x' * padding!r}\n".encode(),
        f"{dist}-{version}.dist-info/METADATA": metadata(name, version, requires_python),
        f"{dist}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tufa-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}-{version}.dist-info/RECORD,,")
    files[f"{dist}-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(outdir, f"{dist}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, data in files.items():
            z.writestr(zipfile.ZipInfo(p, FIXED), data)
    return path


def make_sdist(outdir, name, version, requires_python=None):
    dist = dist_name(name)
    path = os.path.join(outdir, f"{dist}-{version}.tar.gz")
    with tarfile.open(path, "w:gz") as t:
        for p, data in {
            f"{dist}-{version}/PKG-INFO": metadata(name, version, requires_python),
            f"{dist}-{version}/{dist}/__init__.py": f"VERSION = {version!r}\n".encode(),
        }.items():
            info = tarfile.TarInfo(p)
            info.size = len(data)
            info.mtime = 1577836800
            t.addfile(info, io.BytesIO(data))
    return path


def twine(base, token, files, expect_ok=True):
    out = subprocess.run(
        [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", f"{base}/legacy/", "-u", "__token__", "-p", token, *files],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TWINE_NON_INTERACTIVE": "1", "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"},
    )
    text = out.stdout + out.stderr
    if expect_ok and out.returncode != 0:
        fail(f"twine upload {files} failed:\n{text}")
    if not expect_ok and out.returncode == 0:
        fail(f"twine upload {files} succeeded but should not have:\n{text}")
    return text


def post_upload(base, token, path, name, version, *, fields=None, user="__token__"):
    """An upload as twine sends it, with fields to override."""
    data = open(path, "rb").read()
    form = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if path.endswith(".whl") else "sdist",
        "pyversion": "py3" if path.endswith(".whl") else "source",
        "metadata_version": "2.1",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "md5_digest": hashlib.md5(data).hexdigest(),
    }
    form.update(fields or {})
    form = {k: v for k, v in form.items() if v is not None}
    auth = None if token is None else (user, token)
    return requests.post(
        f"{base}/legacy/", data=form, files={"content": (os.path.basename(path), data, "application/octet-stream")},
        auth=auth, timeout=120,
    )


def updater(base, root, workdir, tag):
    meta = os.path.join(workdir, f"tuf-{tag}")
    os.makedirs(meta, exist_ok=True)
    up = Updater(
        metadata_dir=meta,
        bootstrap=open(root, "rb").read(),
        metadata_base_url=f"{base}/metadata/",
        target_base_url=f"{base}/",
        target_dir=os.path.join(workdir, f"targets-{tag}"),
        config=UpdaterConfig(prefix_targets_with_hash=False),
    )
    os.makedirs(os.path.join(workdir, f"targets-{tag}"), exist_ok=True)
    up.refresh()
    return up


def signed(up, path, data):
    info = up.get_targetinfo(path)
    if info is None:
        fail(f"{path} is not a signed target")
    try:
        info.verify_length_and_hashes(data)
    except Exception as e:  # noqa: BLE001
        fail(f"{path}: served bytes are not the signed ones: {e}")
    return info


def get(url, accept=None):
    r = requests.get(url, headers={"Accept": accept} if accept else {}, timeout=60)
    return r


def page_files(base, project):
    r = get(f"{base}/simple/{project}/", JSON_V1)
    if r.status_code != 200:
        fail(f"/simple/{project}/ answered {r.status_code}")
    return sorted(f["filename"] for f in r.json()["files"])


def snapshot_version(base):
    return requests.get(f"{base}/metadata/timestamp.json", timeout=30).json()["signed"]["meta"]["snapshot.json"]["version"]


def basic(base, root, token, workdir):
    dist = os.path.join(workdir, "dist")
    os.makedirs(dist, exist_ok=True)
    name = "Tufa.Demo_Pkg"
    project = normalize(name)
    wheel = make_wheel(dist, name, "1.0", ">=3.8")
    sdist = make_sdist(dist, name, "1.0", ">=3.8")
    future = make_wheel(dist, name, "2.0", ">=4")
    out = twine(base, token, [wheel, sdist, future])
    if "signed and published" not in out and "Uploaded" not in out:
        print(out)

    # Pages: HTML by default, JSON by negotiation, redirect to the normalised name.
    r = get(f"{base}/simple/{project}/")
    if r.status_code != 200 or not r.headers["content-type"].startswith("text/html"):
        fail(f"HTML page: {r.status_code} {r.headers}")
    html = r.text
    for f in (wheel, sdist, future):
        fn = os.path.basename(f)
        sha = hashlib.sha256(open(f, "rb").read()).hexdigest()
        if f'packages/{project}/{fn}#sha256={sha}"' not in html:
            fail(f"HTML page lacks {fn} with its sha256:\n{html}")
    if 'data-requires-python="&gt;=4"' not in html:
        fail(f"HTML page lacks the escaped data-requires-python:\n{html}")
    r = get(f"{base}/simple/{project}/", PIP_ACCEPT)
    if r.headers["content-type"] != JSON_V1:
        fail(f"pip's Accept got {r.headers['content-type']}")
    page = r.json()
    if page["meta"]["api-version"] != "1.1" or page["name"] != project or page["versions"] != ["1.0", "2.0"]:
        fail(f"JSON page: {page}")
    for f in page["files"]:
        if not {"size", "upload-time", "hashes", "requires-python", "yanked"} <= f.keys():
            fail(f"JSON file entry lacks PEP 691/700 keys: {f}")
    for accept, want in [
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        (f"{JSON_V1};q=0.5, text/html", "text/html; charset=utf-8"),
    ]:
        got = get(f"{base}/simple/{project}/", accept).headers["content-type"]
        if got != want:
            fail(f"Accept {accept!r} got {got}")
    fmt = requests.get(f"{base}/simple/{project}/", params={"format": JSON_V1}, timeout=30)
    if fmt.headers["content-type"] != JSON_V1:
        fail("?format= is not honoured")
    if get(f"{base}/simple/{project}/", "application/json").status_code != 406:
        fail("an unacceptable Accept is not 406")
    r = requests.get(f"{base}/simple/{name}/", allow_redirects=False, timeout=30)
    if r.status_code != 301 or r.headers["location"] != f"/simple/{project}/":
        fail(f"no redirect to the normalised name: {r.status_code} {r.headers}")
    r = get(f"{base}/simple/", JSON_V1)
    if {"name": project} not in r.json()["projects"]:
        fail(f"/simple/ lacks {project}: {r.text}")

    # pip download and install, through the index alone.
    dl = os.path.join(workdir, "pip-download")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir"]
    out = subprocess.run([*pip, "download", "--no-deps", "--index-url", f"{base}/simple/", "-d", dl, name],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        fail(f"pip download failed:\n{out.stdout}{out.stderr}")
    got = os.listdir(dl)
    if got != [os.path.basename(wheel)]:
        fail(f"pip download fetched {got}, wanted the 1.0 wheel (2.0 requires Python >= 4)")
    target = os.path.join(workdir, "pip-target")
    out = subprocess.run([*pip, "install", "--no-deps", "--index-url", f"{base}/simple/", "--target", target,
                          f"{name}==1.0"], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        fail(f"pip install failed:\n{out.stdout}{out.stderr}")
    if not os.path.exists(os.path.join(target, dist_name(name), "__init__.py")):
        fail(f"pip install did not install the module: {os.listdir(target)}")

    # Everything pip fetched is a signed target, byte for byte.
    up = updater(base, root, workdir, "basic")
    signed(up, f"simple/{project}/index.json", get(f"{base}/simple/{project}/", PIP_ACCEPT).content)
    signed(up, f"simple/{project}/index.html", get(f"{base}/simple/{project}/").content)
    for f in (wheel, sdist, future):
        fn = os.path.basename(f)
        r = requests.get(f"{base}/packages/{project}/{fn}", headers={"Accept-Encoding": "identity"}, timeout=30)
        if r.status_code != 200 or r.content != open(f, "rb").read():
            fail(f"/packages/{project}/{fn}: {r.status_code}")
        if int(r.headers["content-length"]) != len(r.content) or not r.headers.get("etag"):
            fail(f"/packages/{project}/{fn} lacks Content-Length or ETag: {r.headers}")
        signed(up, f"packages/{project}/{fn}", r.content)
    signed(up, f"packages/{project}/{os.path.basename(wheel)}", open(os.path.join(dl, got[0]), "rb").read())
    # ngclient's own download, by consistent-snapshot name ({hash}.{filename}).
    hashed = Updater(
        metadata_dir=os.path.join(workdir, "tuf-basic"),
        bootstrap=open(root, "rb").read(),
        metadata_base_url=f"{base}/metadata/",
        target_base_url=f"{base}/",
        target_dir=os.path.join(workdir, "targets-basic"),
    )
    hashed.refresh()
    for path in (f"packages/{project}/{os.path.basename(wheel)}", f"simple/{project}/index.html",
                 f"simple/{project}/index.json"):
        hashed.download_target(hashed.get_targetinfo(path),
                               os.path.join(workdir, "targets-basic", path.replace("/", "_")))

    # Refusals: each a 4xx with a reason, leaving pages and metadata unchanged.
    before = (snapshot_version(base), page_files(base, project))
    other = make_wheel(dist, name, "3.0")
    big = make_wheel(os.path.join(workdir), "big-one", "1.0", padding=300_000)
    cases = [
        ("wrong sha256", post_upload(base, token, other, name, "3.0", fields={"sha256_digest": "0" * 64}), 400,
         "digest"),
        ("wrong blake2", post_upload(base, token, other, name, "3.0", fields={"blake2_256_digest": "1" * 64}), 400,
         "digest"),
        ("wrong md5", post_upload(base, token, other, name, "3.0", fields={"md5_digest": "2" * 32}), 400, "digest"),
        ("version mismatch", post_upload(base, token, other, name, "3.1"), 400, "Version in filename"),
        ("other project", post_upload(base, token, other, "something-else", "3.0"), 400, "Start filename"),
        ("bad extension", post_upload(base, token, write(workdir, "tufa_demo_pkg-3.0.exe"), name, "3.0"), 400,
         "extension"),
        ("duplicate", post_upload(base, token, wheel, name, "1.0"), 400, "File already exists"),
        ("no token", post_upload(base, None, other, name, "3.0"), 401, "Authentication required"),
        ("wrong token", post_upload(base, "tufa-" + "0" * 64, other, name, "3.0"), 403, "Invalid or non-existent"),
        ("wrong user", post_upload(base, token, other, name, "3.0", user="alice"), 403, "__token__"),
        ("oversize", post_upload(base, token, big, "big-one", "1.0"), 413, "File too large"),
        ("bad action", post_upload(base, token, other, name, "3.0", fields={":action": "remove_pkg"}), 400,
         "Unsupported"),
    ]
    for label, r, status, reason in cases:
        if r.status_code != status or reason not in r.reason:
            fail(f"{label}: got {r.status_code} {r.reason!r}, wanted {status} with {reason!r}")
    # What twine shows for a refusal: the reason.
    out = twine(base, token, [wheel], expect_ok=False)
    if "File already exists" not in out:
        fail(f"twine does not show why:\n{out}")
    out = twine(base, "tufa-" + "0" * 64, [other], expect_ok=False)
    if "Invalid or non-existent authentication" not in out:
        fail(f"twine does not show why:\n{out}")
    time.sleep(1.5)
    after = (snapshot_version(base), page_files(base, project))
    if before != after:
        fail(f"refused uploads changed the index or metadata: {before} -> {after}")
    if get(f"{base}/simple/big-one/").status_code != 404:
        fail("the oversize upload created a project")

    # Ownership: another user may not upload to the project.
    other_token = os.environ.get("TUFA_OTHER_TOKEN")
    if other_token:
        r = post_upload(base, other_token, other, name, "3.0")
        if r.status_code != 403 or "isn't allowed" not in r.reason:
            fail(f"another user's upload: {r.status_code} {r.reason}")
    return {"project": project, "files": page_files(base, project)}


def write(workdir, name):
    path = os.path.join(workdir, name)
    with open(path, "wb") as f:
        f.write(b"not a distribution")
    return path


def concurrent(base, root, token, workdir):
    dist = os.path.join(workdir, "dist-many")
    os.makedirs(dist, exist_ok=True)
    jobs = []
    for i in range(25):
        jobs.append(("busy-project", f"1.{i}", make_wheel(dist, "busy-project", f"1.{i}")))
    for i in range(25):
        jobs.append((f"solo-{i}", "0.1", make_sdist(dist, f"solo-{i}", "0.1")))
    started = time.time()

    def go(job):
        name, version, path = job
        r = post_upload(base, token, path, name, version)
        if r.status_code != 200:
            fail(f"concurrent upload {path}: {r.status_code} {r.reason}")
        return r

    with ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(go, jobs))
    elapsed = time.time() - started
    want = {}
    for name, _, path in jobs:
        want.setdefault(normalize(name), []).append(os.path.basename(path))
    up = updater(base, root, workdir, "concurrent")
    for project, files in want.items():
        if page_files(base, project) != sorted(files):
            fail(f"{project} lists {page_files(base, project)}, wanted {sorted(files)}")
        signed(up, f"simple/{project}/index.json", get(f"{base}/simple/{project}/", JSON_V1).content)
        signed(up, f"simple/{project}/index.html", get(f"{base}/simple/{project}/").content)
        for fn in files:
            data = requests.get(f"{base}/packages/{project}/{fn}", timeout=30).content
            signed(up, f"packages/{project}/{fn}", data)
    return {"uploads": len(jobs), "uploads_s": round(elapsed, 2), "projects": len(want)}


def main():
    base, root, token, workdir, phase = sys.argv[1:6]
    base = base.rstrip("/")
    started = time.time()
    result = basic(base, root, token, workdir) if phase == "basic" else concurrent(base, root, token, workdir)
    result["seconds"] = round(time.time() - started, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
