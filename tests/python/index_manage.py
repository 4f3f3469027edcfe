"""Yanking (PEP 592), un-yanking and deleting on the bundled index, and its
PEP 658 / 714 core metadata, against a running `tufa serve --dev`.

Usage: index_manage.py BASE_URL ROOT_JSON TOKEN WORKDIR TUFA_BIN DATA_DIR PHASE
PHASE: manage (tufa index yank|unyank|delete) | metadata (PEP 658 / 714)

After each change (made with `tufa index ... --wait`, which returns once the
change is published) the script checks, with no polling: the pages served,
that python-tuf's ngclient sees exactly those bytes as signed targets and no
longer finds deleted files, what real pip picks, and that `tufa verify` is
clean. Exits non-zero with the reason on any failure; prints a JSON summary.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import zipfile

import requests

from index_e2e import (
    FIXED,
    JSON_V1,
    PIP_ACCEPT,
    dist_name,
    fail,
    get,
    make_sdist,
    make_wheel,
    normalize,
    post_upload,
    twine,
    updater,
)

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir", "--no-input"]


class Ctx:
    def __init__(self, base, root, token, workdir, tufa, data_dir):
        self.base, self.root, self.token, self.workdir = base, root, token, workdir
        self.tufa, self.data_dir = tufa, data_dir
        self.steps = 0

    def tufa_index(self, *args, expect_ok=True):
        out = subprocess.run([self.tufa, "index", *args, "--data-dir", self.data_dir, "--wait", "60"],
                             capture_output=True, text=True, timeout=90)
        if expect_ok and out.returncode != 0:
            fail(f"tufa index {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
        if not expect_ok and out.returncode == 0:
            fail(f"tufa index {' '.join(args)} succeeded but should not have:\n{out.stderr}")
        return out.stderr

    def verify(self, when):
        out = subprocess.run([self.tufa, "verify", os.path.join(self.data_dir, "metadata")],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            bad = "\n".join(l for l in out.stdout.splitlines() if not l.startswith("ok "))
            fail(f"tufa verify after {when}:\n{bad}\n{out.stderr}")

    def ngclient(self):
        self.steps += 1
        return updater(self.base, self.root, self.workdir, f"manage-{self.steps}")

    def pip(self, *args):
        return subprocess.run([*PIP, *args, "--index-url", f"{self.base}/simple/"], capture_output=True,
                              text=True, timeout=180)

    def pip_download(self, spec, *extra):
        dest = os.path.join(self.workdir, f"dl-{time.monotonic_ns()}")
        out = self.pip("download", "--no-deps", "-d", dest, *extra, spec)
        got = sorted(os.listdir(dest)) if os.path.isdir(dest) else []
        return out, got


def pages(ctx, project):
    html = get(f"{ctx.base}/simple/{project}/")
    js = get(f"{ctx.base}/simple/{project}/", PIP_ACCEPT)
    return html, js


def check_signed_pages(ctx, project):
    """Both pages as served are exactly the signed targets; returns them."""
    html, js = pages(ctx, project)
    if html.status_code != 200 or js.status_code != 200:
        fail(f"/simple/{project}/ answered {html.status_code} / {js.status_code}")
    up = ctx.ngclient()
    for path, body in ((f"simple/{project}/index.html", html.content), (f"simple/{project}/index.json", js.content)):
        info = up.get_targetinfo(path)
        if info is None:
            fail(f"{path} is not a signed target")
        try:
            info.verify_length_and_hashes(body)
        except Exception as e:  # noqa: BLE001
            fail(f"{path}: the page served is not the one signed: {e}")
    return html.text, js.json(), up


def anchor(html, filename):
    for m in re.finditer(r"<a [^>]*>([^<]*)</a>", html):
        if m.group(1) == filename:
            return m.group(0)
    return None


def json_file(page, filename):
    for f in page["files"]:
        if f["filename"] == filename:
            return f
    return None


def http_headers(ctx, project, path):
    """Files are never gzipped (Content-Length and a strong ETag, the sha256);
    gzipped pages drop Content-Length and carry a weak ETag; both answer
    If-None-Match with 304."""
    fn = os.path.basename(path)
    raw = requests.get(f"{ctx.base}/packages/{project}/{fn}", headers={"Accept-Encoding": "gzip"}, stream=True,
                       timeout=30)
    body = raw.raw.read()
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if "content-encoding" in raw.headers or int(raw.headers.get("content-length", -1)) != len(body) \
            or body != open(path, "rb").read() or raw.headers.get("etag") != f'"{sha}"':
        fail(f"a file asked for with gzip: {raw.headers}")
    r = requests.get(f"{ctx.base}/packages/{project}/{fn}", headers={"If-None-Match": f'"{sha}"'}, timeout=30)
    if r.status_code != 304:
        fail(f"a file's ETag does not give 304: {r.status_code}")
    r = requests.get(f"{ctx.base}/simple/{project}/", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30)
    zipped = r.raw.read()
    if r.headers.get("content-encoding") != "gzip" or "content-length" in r.headers \
            or "accept-encoding" not in r.headers.get("vary", "").lower():
        fail(f"a gzipped page: {r.headers}")
    etag = r.headers.get("etag", "")
    if not etag.startswith('W/"'):
        fail(f"a page that may be gzipped has a strong ETag: {etag}")
    if not zipped.startswith(b"\x1f\x8b"):
        fail("the gzipped page is not gzip")
    for tag in (etag, etag[2:]):
        r = requests.get(f"{ctx.base}/simple/{project}/", headers={"If-None-Match": tag}, timeout=30)
        if r.status_code != 304:
            fail(f"If-None-Match {tag} on a page: {r.status_code}")


def manage(ctx):
    dist = os.path.join(ctx.workdir, "dist")
    os.makedirs(dist, exist_ok=True)
    name = "Yank.Me"
    project = normalize(name)
    w10 = make_wheel(dist, name, "1.0")
    s10 = make_sdist(dist, name, "1.0")
    w11 = make_wheel(dist, name, "1.1")
    twine(ctx.base, ctx.token, [w10, s10, w11])
    fw10, fs10, fw11 = (os.path.basename(p) for p in (w10, s10, w11))
    html0, json0, _ = check_signed_pages(ctx, project)
    raw0 = tuple(r.content for r in pages(ctx, project))
    ctx.verify("the uploads")
    http_headers(ctx, project, w10)
    out, got = ctx.pip_download(name)
    if got != [fw11]:
        fail(f"before any yank pip downloaded {got}, wanted {fw11}:\n{out.stdout}{out.stderr}")

    # Yank 1.1 with a reason: listed as yanked, pip skips it unless pinned.
    msg = ctx.tufa_index("yank", name, fw11, "--reason", "broken <build> & \"more\"")
    if "published" not in msg:
        fail(f"tufa index yank --wait did not say it was published: {msg}")
    html, page, up = check_signed_pages(ctx, project)
    a = anchor(html, fw11)
    if a is None or 'data-yanked="broken &lt;build&gt; &amp; &quot;more&quot;"' not in a:
        fail(f"the yanked file's link lacks data-yanked with the escaped reason: {a}\n{html}")
    for other in (fw10, fs10):
        if "data-yanked" in (anchor(html, other) or "data-yanked"):
            fail(f"{other} is marked yanked too:\n{html}")
    if json_file(page, fw11)["yanked"] != 'broken <build> & "more"':
        fail(f"JSON yanked is not the reason: {json_file(page, fw11)}")
    if json_file(page, fw10)["yanked"] is not False or json_file(page, fs10)["yanked"] is not False:
        fail(f"JSON marks other files yanked: {page}")
    if page["versions"] != ["1.0", "1.1"]:
        fail(f"a yanked version must stay in versions: {page['versions']}")
    # The yanked file itself is still served and signed.
    data = requests.get(f"{ctx.base}/packages/{project}/{fw11}", timeout=30).content
    up.get_targetinfo(f"packages/{project}/{fw11}").verify_length_and_hashes(data)
    ctx.verify("yank")
    out, got = ctx.pip_download(name)
    if got != [fw10]:
        fail(f"pip downloaded {got} with 1.1 yanked, wanted {fw10}:\n{out.stdout}{out.stderr}")
    out, got = ctx.pip_download(f"{name}==1.1")
    if got != [fw11]:
        fail(f"pip did not download the pinned yanked 1.1: {got}\n{out.stdout}{out.stderr}")
    if "yanked" not in (out.stdout + out.stderr):
        fail(f"pip did not warn that 1.1 is yanked:\n{out.stdout}{out.stderr}")

    # Yank the sdist with no reason: data-yanked="" and "yanked": true.
    ctx.tufa_index("yank", name, fs10)
    html, page, _ = check_signed_pages(ctx, project)
    if 'data-yanked=""' not in (anchor(html, fs10) or ""):
        fail(f"a yank without reason is not data-yanked=\"\": {anchor(html, fs10)}")
    if json_file(page, fs10)["yanked"] is not True:
        fail(f"a yank without reason is not \"yanked\": true: {json_file(page, fs10)}")
    ctx.verify("second yank")

    # Un-yank both: exactly the pages (bytes) of before.
    ctx.tufa_index("unyank", name, fw11)
    ctx.tufa_index("unyank", name.upper(), fs10)
    html, page, _ = check_signed_pages(ctx, project)
    if tuple(r.content for r in pages(ctx, project)) != raw0:
        fail(f"after un-yanking the pages differ from before the yanks:\n{html}\n{html0}")
    ctx.verify("unyank")
    out, got = ctx.pip_download(name)
    if got != [fw11]:
        fail(f"after un-yank pip downloaded {got}, wanted {fw11}:\n{out.stdout}{out.stderr}")

    # Delete one file: gone from the pages, the target and /packages/.
    hashed = hashlib.sha256(open(w11, "rb").read()).hexdigest()
    ctx.tufa_index("delete", name, fw11)
    html, page, up = check_signed_pages(ctx, project)
    if anchor(html, fw11) is not None or json_file(page, fw11) is not None:
        fail(f"the deleted file is still listed:\n{html}\n{page}")
    if sorted(f["filename"] for f in page["files"]) != sorted([fw10, fs10]) or page["versions"] != ["1.0"]:
        fail(f"after deleting {fw11} the page lists {page}")
    if up.get_targetinfo(f"packages/{project}/{fw11}") is not None:
        fail(f"the deleted file is still a signed target")
    for url in (f"/packages/{project}/{fw11}", f"/packages/{project}/{hashed}.{fw11}"):
        r = requests.get(ctx.base + url, timeout=30)
        if r.status_code != 404:
            fail(f"{url} answered {r.status_code} after delete")
    for f in (w10, s10):
        data = requests.get(f"{ctx.base}/packages/{project}/{os.path.basename(f)}", timeout=30).content
        up.get_targetinfo(f"packages/{project}/{os.path.basename(f)}").verify_length_and_hashes(data)
    ctx.verify("deleting a file")
    out, got = ctx.pip_download(f"{name}==1.1")
    if out.returncode == 0 or got:
        fail(f"pip still found the deleted 1.1: {got}\n{out.stdout}")
    out, got = ctx.pip_download(name)
    if got != [fw10]:
        fail(f"after deleting 1.1 pip downloaded {got}, wanted {fw10}:\n{out.stdout}{out.stderr}")
    r = post_upload(ctx.base, ctx.token, w11, name, "1.1")
    if r.status_code != 400 or "File already exists" not in r.reason:
        fail(f"re-uploading a deleted filename: {r.status_code} {r.reason}")

    # Refusals of the CLI name what was wrong and change nothing.
    before = tuple(r.content for r in pages(ctx, project))
    err = ctx.tufa_index("yank", name, fw11, expect_ok=False)
    if "no file" not in err:
        fail(f"yanking a deleted file: {err}")
    err = ctx.tufa_index("delete", "no-such-project", expect_ok=False)
    if "no project" not in err:
        fail(f"deleting an unknown project: {err}")
    if tuple(r.content for r in pages(ctx, project)) != before:
        fail("a refused tufa index command changed the pages")

    # Delete the whole project: no pages, no targets, not in /simple/.
    ctx.tufa_index("delete", name)
    html, js = pages(ctx, project)
    if html.status_code != 404 or js.status_code != 404:
        fail(f"the deleted project's pages answer {html.status_code} / {js.status_code}")
    if {"name": project} in get(f"{ctx.base}/simple/", JSON_V1).json()["projects"]:
        fail("the deleted project is still in /simple/")
    up = ctx.ngclient()
    for path in [f"simple/{project}/index.html", f"simple/{project}/index.json",
                 *(f"packages/{project}/{f}" for f in (fw10, fs10, fw11))]:
        if up.get_targetinfo(path) is not None:
            fail(f"{path} is still a signed target after deleting the project")
    for f in (fw10, fs10):
        if requests.get(f"{ctx.base}/packages/{project}/{f}", timeout=30).status_code != 404:
            fail(f"{f} is still served after deleting the project")
    ctx.verify("deleting the project")
    out, got = ctx.pip_download(name)
    if out.returncode == 0 or got:
        fail(f"pip still finds the deleted project: {got}\n{out.stdout}")
    return {"project": project, "steps": ctx.steps}


def main():
    base, root, token, workdir, tufa, data_dir, phase = sys.argv[1:8]
    ctx = Ctx(base.rstrip("/"), root, token, workdir, tufa, data_dir)
    started = time.time()
    result = {"manage": manage, "metadata": core_metadata}[phase](ctx)
    result["seconds"] = round(time.time() - started, 2)
    print(json.dumps(result))


def wheel_member(path, member):
    with zipfile.ZipFile(path) as z:
        return z.read(member)


def core_metadata(ctx):
    dist = os.path.join(ctx.workdir, "dist-meta")
    os.makedirs(dist, exist_ok=True)
    name = "Meta.Pkg"
    project = normalize(name)
    w10 = make_wheel(dist, name, "1.0", ">=3.8")
    w20 = make_wheel(dist, name, "2.0")
    s10 = make_sdist(dist, name, "1.0")
    twine(ctx.base, ctx.token, [w10, w20, s10])
    meta = {p: wheel_member(p, f"{dist_name(name)}-{v}.dist-info/METADATA") for p, v in ((w10, "1.0"), (w20, "2.0"))}
    html, page, up = check_signed_pages(ctx, project)
    for path, body in meta.items():
        fn = os.path.basename(path)
        sha = hashlib.sha256(body).hexdigest()
        a = anchor(html, fn) or ""
        if f'data-dist-info-metadata="sha256={sha}"' not in a or f'data-core-metadata="sha256={sha}"' not in a:
            fail(f"{fn}'s link lacks the PEP 658 / 714 attributes with sha256 {sha}: {a}")
        entry = json_file(page, fn)
        if entry.get("core-metadata") != {"sha256": sha} or entry.get("dist-info-metadata") != {"sha256": sha}:
            fail(f"{fn}'s JSON entry lacks core-metadata / dist-info-metadata {sha}: {entry}")
        # Served, and exactly the signed target packages/{project}/{filename}.metadata.
        r = requests.get(f"{ctx.base}/packages/{project}/{fn}.metadata", timeout=30)
        if r.status_code != 200 or r.content != body:
            fail(f"/packages/{project}/{fn}.metadata: {r.status_code} {r.content[:200]!r}")
        info = up.get_targetinfo(f"packages/{project}/{fn}.metadata")
        if info is None:
            fail(f"packages/{project}/{fn}.metadata is not a signed target")
        info.verify_length_and_hashes(r.content)
        if info.length != len(body) or set(info.hashes) != {"sha256", "blake2b-256"} \
                or info.hashes["blake2b-256"] != hashlib.blake2b(body, digest_size=32).hexdigest():
            fail(f"the .metadata target info: {info.length} {info.hashes}")
        got = up.download_target(info, os.path.join(ctx.workdir, f"{fn}.metadata"))
        if open(got, "rb").read() != body:
            fail("ngclient downloaded other .metadata bytes")
        # Also by its consistent-snapshot name ({hash}.{name}), uncompressed.
        for h in (sha, info.hashes["blake2b-256"]):
            r = requests.get(f"{ctx.base}/packages/{project}/{h}.{fn}.metadata", timeout=30,
                             headers={"Accept-Encoding": "gzip"})
            if r.status_code != 200 or r.content != body or "content-encoding" in r.headers \
                    or int(r.headers.get("content-length", -1)) != len(body):
                fail(f"{h}.{fn}.metadata: {r.status_code} {r.headers}")
    sdist_entry = json_file(page, os.path.basename(s10))
    if "core-metadata" in sdist_entry or "data-core-metadata" in (anchor(html, os.path.basename(s10)) or ""):
        fail(f"the sdist offers core metadata: {sdist_entry}")
    if requests.get(f"{ctx.base}/packages/{project}/{os.path.basename(s10)}.metadata", timeout=30).status_code != 404:
        fail("an sdist's .metadata is served")

    # Real pip resolves from the .metadata (pip 23.2 still downloads the
    # chosen wheel after resolving, even in a dry run).
    out = ctx.pip("install", "--dry-run", "--no-deps", "--ignore-installed", "--report", "-", f"{name}==1.0")
    text = out.stdout + out.stderr
    fn10 = os.path.basename(w10)
    if out.returncode != 0 or f"packages/{project}/{fn10}.metadata" not in text:
        fail(f"pip did not obtain the metadata from {fn10}.metadata:\n{text}")
    out = ctx.pip("install", "--no-deps", "--target", os.path.join(ctx.workdir, "meta-target"), name)
    text = out.stdout + out.stderr
    if out.returncode != 0 or f"{os.path.basename(w20)}.metadata" not in text:
        fail(f"pip install did not use the .metadata of 2.0:\n{text}")

    # Through tufa pip: the proxy verifies the .metadata target too.
    cache = os.path.join(ctx.workdir, "proxy-cache")
    out = subprocess.run(
        [ctx.tufa, "pip", "--index-url", f"{ctx.base}/simple/", "--metadata-url", f"{ctx.base}/metadata/",
         "--root", ctx.root, "--cache-dir", cache, "--python", sys.executable,
         "install", "--dry-run", "--no-deps", "--ignore-installed", "--no-cache-dir", f"{name}==1.0"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    text = out.stdout + out.stderr
    if out.returncode != 0 or f"{fn10}.metadata" not in text:
        fail(f"tufa pip did not use {fn10}.metadata:\n{text}")
    sha10 = hashlib.sha256(meta[w10]).hexdigest()
    cached = os.listdir(os.path.join(cache, "sha256"))
    if sha10 not in cached:
        fail(f"the proxy did not verify and cache the .metadata ({sha10}): {cached}")
    print("tufa pip:", [l for l in text.splitlines() if ".metadata" in l], file=sys.stderr)

    # A wheel without a METADATA of its name: accepted, no core metadata offered.
    bare = os.path.join(dist, "bare_pkg-1.0-py3-none-any.whl")
    with zipfile.ZipFile(bare, "w") as z:
        z.writestr(zipfile.ZipInfo("bare_pkg/__init__.py", FIXED), b"")
        z.writestr(zipfile.ZipInfo("other-1.0.dist-info/METADATA", FIXED), b"Name: other\n")
    r = post_upload(ctx.base, ctx.token, bare, "bare-pkg", "1.0")
    if r.status_code != 200:
        fail(f"a wheel without its METADATA: {r.status_code} {r.reason}")
    entry = json_file(get(f"{ctx.base}/simple/bare-pkg/", JSON_V1).json(), os.path.basename(bare))
    if "core-metadata" in entry:
        fail(f"core metadata offered for a wheel without its METADATA: {entry}")

    # Not a zip archive: a clear 400, nothing changed.
    bad = os.path.join(dist, "broken_pkg-1.0-py3-none-any.whl")
    with open(bad, "wb") as f:
        f.write(b"PK\x03\x04 this is not really a zip archive")
    r = post_upload(ctx.base, ctx.token, bad, "broken-pkg", "1.0")
    if r.status_code != 400 or "Invalid wheel" not in r.reason or "zip" not in r.reason:
        fail(f"a broken wheel: {r.status_code} {r.reason!r}")
    if get(f"{ctx.base}/simple/broken-pkg/").status_code != 404:
        fail("the broken wheel created a project")
    ctx.verify("the uploads with core metadata")

    # Deleting a wheel removes its .metadata target too.
    ctx.tufa_index("delete", name, fn10)
    html, page, up = check_signed_pages(ctx, project)
    if up.get_targetinfo(f"packages/{project}/{fn10}.metadata") is not None:
        fail("the deleted wheel's .metadata is still a signed target")
    if requests.get(f"{ctx.base}/packages/{project}/{fn10}.metadata", timeout=30).status_code != 404:
        fail("the deleted wheel's .metadata is still served")
    fn20 = os.path.basename(w20)
    if up.get_targetinfo(f"packages/{project}/{fn20}.metadata") is None:
        fail("deleting 1.0 removed 2.0's .metadata")
    ctx.verify("deleting a wheel with core metadata")
    ctx.tufa_index("delete", name)
    up = ctx.ngclient()
    if up.get_targetinfo(f"packages/{project}/{fn20}.metadata") is not None:
        fail("deleting the project left 2.0's .metadata signed")
    ctx.verify("deleting the project with core metadata")
    return {"project": project, "steps": ctx.steps}


if __name__ == "__main__":
    main()
