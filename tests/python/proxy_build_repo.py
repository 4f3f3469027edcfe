"""Build a tiny Python package index signed with python-tuf, for the tests
of `tufa proxy`, `tufa pip` and `tufa uv`.

Writes, under OUT:

  OUT/metadata/  a consistent-snapshot TUF repository made by python-tuf:
                 1.root.json, timestamp.json, 1.snapshot.json,
                 1.targets.json delegating every target to 4 succinct hash
                 bins (1.bins-0.json .. 1.bins-3.json); each target lists its
                 length, sha256 and blake2b-256
  OUT/index/     simple/tufa-demo/index.html (PEP 503) linking
                 ../../packages/tufa-demo/FILE#sha256=..., and the wheel
                 packages/tufa-demo/tufa_demo-1.0-py3-none-any.whl; each
                 under its plain name and under HASH.NAME for each hash

Signed targets: simple/tufa-demo/index.html and
packages/tufa-demo/tufa_demo-1.0-py3-none-any.whl. The wheel is a minimal
valid pure-Python wheel (module tufa_demo, VERSION = "1.0").

Prints a JSON summary on stdout: {"wheel": NAME, "targets": {path: {"length",
"sha256", "blake2b-256"}}, "files": {target: [served paths]}}.

Usage: proxy_build_repo.py OUT
"""

import base64
import hashlib
import io
import json
import os
import sys
import zipfile
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

HASHES = ["sha256", "blake2b-256"]
PROJECT = "tufa-demo"
MODULE = "tufa_demo"
VERSION = "1.0"


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_wheel():
    """A minimal valid wheel: the module, METADATA, WHEEL and RECORD."""
    dist_info = f"{MODULE}-{VERSION}.dist-info"
    files = [
        (f"{MODULE}/__init__.py", f'VERSION = "{VERSION}"\n'.encode()),
        (
            f"{dist_info}/METADATA",
            f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {VERSION}\n"
            "Summary: tufa proxy test package\n".encode(),
        ),
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: tufa-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n",
        ),
    ]
    record = "".join(f"{name},{record_hash(data)},{len(data)}\n" for name, data in files)
    record += f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return f"{MODULE}-{VERSION}-py3-none-any.whl", buf.getvalue()


def main():
    out = sys.argv[1]
    meta_dir = os.path.join(out, "metadata")
    index_dir = os.path.join(out, "index")
    os.makedirs(meta_dir)
    os.makedirs(index_dir)
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
    root_key = CryptoSigner.generate_ed25519()
    online = CryptoSigner.generate_ed25519()
    bins_key = CryptoSigner.generate_ed25519()

    def write(name, md, signer, version=None):
        md.signatures.clear()
        md.sign(signer)
        data = md.to_bytes(JSONSerializer(compact=False))
        fname = f"{name}.json" if version is None else f"{version}.{name}.json"
        with open(os.path.join(meta_dir, fname), "wb") as f:
            f.write(data)
        return data

    root = Root(expires=expires, consistent_snapshot=True)
    root.add_key(root_key.public_key, "root")
    for role in ("timestamp", "snapshot", "targets"):
        root.add_key(online.public_key, role)
    write("root", Metadata(root), root_key, version=1)

    targets = Metadata(Targets(expires=expires))
    succinct = SuccinctRoles(
        keyids=[bins_key.public_key.keyid], threshold=1, bit_length=2, name_prefix="bins"
    )
    targets.signed.delegations = Delegations(
        keys={bins_key.public_key.keyid: bins_key.public_key},
        roles=None,
        succinct_roles=succinct,
    )
    bins = {name: Metadata(Targets(expires=expires)) for name in succinct.get_roles()}

    summary = {"targets": {}, "files": {}}

    def add_target(path, data):
        tf = TargetFile.from_data(path, data, HASHES)
        bins[succinct.get_role_for_target(path)].signed.targets[path] = tf
        summary["targets"][path] = {"length": tf.length, **tf.hashes}
        dirname, _, base = path.rpartition("/")
        served = [path] + [f"{dirname}/{h}.{base}" for h in tf.hashes.values()]
        summary["files"][path] = served
        for p in served:
            full = os.path.join(index_dir, p)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)

    wheel_name, wheel = make_wheel()
    summary["wheel"] = wheel_name
    add_target(f"packages/{PROJECT}/{wheel_name}", wheel)
    sha = hashlib.sha256(wheel).hexdigest()
    page = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.0">\n'
        f"    <title>Links for {PROJECT}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {PROJECT}</h1>\n"
        f'    <a href="../../packages/{PROJECT}/{wheel_name}#sha256={sha}" '
        f'data-requires-python="&gt;=3.7">{wheel_name}</a><br />\n'
        "  </body>\n</html>\n"
    ).encode()
    add_target(f"simple/{PROJECT}/index.html", page)

    snapshot = Metadata(Snapshot(expires=expires))
    data = write("targets", targets, online, version=1)
    snapshot.signed.meta["targets.json"] = MetaFile(version=1)
    for name, md in bins.items():
        write(name, md, bins_key, version=1)
        snapshot.signed.meta[f"{name}.json"] = MetaFile(version=1)
    del data
    snap = write("snapshot", snapshot, online, version=1)
    timestamp = Metadata(Timestamp(expires=expires))
    timestamp.signed.snapshot_meta = MetaFile(
        version=1, length=len(snap), hashes={"sha256": hashlib.sha256(snap).hexdigest()}
    )
    write("timestamp", timestamp, online)
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    main()
