"""Build a python-tuf repository for tufa's updater interop tests.

Writes, under OUT, a consistent-snapshot repository made by python-tuf 7
(indented JSON, as python-tuf writes it), with all four key types tufa
supports, and prints a JSON summary on stdout:

  OUT/metadata/  1.root.json, 2.root.json (root rotated from ed25519+p256 to
                 p384+rsa, threshold 2), timestamp.json (p256),
                 N.snapshot.json (rsa), N.targets.json (p384) and delegated
                 roles; snapshot and timestamp list length and hashes
  OUT/targets/   every target under dir/HASH.basename for each of its hashes

Delegations from targets, in order:
  files            paths ["files/*"]                 (ed25519)
  hashed           path_hash_prefixes of hashed/one  (p256)
  unclaimed        paths ["packages/*/*"], terminating (ed25519), which
                   delegates to 16 succinct bins "bins-0".."bins-f" (rsa)

Usage: client_build_repo.py OUT
"""

import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from urllib import parse

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
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


def main():
    out = sys.argv[1]
    meta_dir = os.path.join(out, "metadata")
    target_dir = os.path.join(out, "targets")
    os.makedirs(meta_dir)
    os.makedirs(target_dir)
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)

    ed = CryptoSigner.generate_ed25519()
    p256 = CryptoSigner.generate_ecdsa(scheme="ecdsa-sha2-nistp256")
    p384 = CryptoSigner.generate_ecdsa(scheme="ecdsa-sha2-nistp384")
    rsa = CryptoSigner.generate_rsa(scheme="rsassa-pss-sha256")
    files_key = CryptoSigner.generate_ed25519()
    hashed_key = CryptoSigner.generate_ecdsa(scheme="ecdsa-sha2-nistp256")
    unclaimed_key = CryptoSigner.generate_ed25519()
    bins_key = CryptoSigner.generate_rsa(scheme="rsassa-pss-sha256")

    def write(name, md, signers, version=None):
        md.signatures.clear()
        for s in signers:
            md.sign(s, append=True)
        data = md.to_bytes(JSONSerializer(compact=False))
        quoted = parse.quote(name, "")
        fname = f"{quoted}.json" if version is None else f"{version}.{quoted}.json"
        with open(os.path.join(meta_dir, fname), "wb") as f:
            f.write(data)
        return data

    def meta_of(version, data):
        return MetaFile(
            version=version,
            length=len(data),
            hashes={"sha256": hashlib.sha256(data).hexdigest()},
        )

    contents = {}

    def add_target(role_md, path, data):
        tf = TargetFile.from_data(path, data, HASHES)
        role_md.signed.targets[path] = tf
        contents[path] = data
        dirname, sep, base = path.rpartition("/")
        for h in tf.hashes.values():
            p = os.path.join(target_dir, dirname, f"{h}.{base}")
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)

    # Root v1: ed25519 + p256, threshold 2; v2: p384 + rsa, threshold 2.
    root = Root(expires=expires, consistent_snapshot=True)
    for s in (ed, p256):
        root.add_key(s.public_key, "root")
    root.roles["root"].threshold = 2
    root.add_key(p256.public_key, "timestamp")
    root.add_key(rsa.public_key, "snapshot")
    root.add_key(p384.public_key, "targets")
    root_md = Metadata(root)
    write("root", root_md, [ed, p256], version=1)
    root.version = 2
    for s in (ed, p256):
        root.revoke_key(s.public_key.keyid, "root")
    for s in (p384, rsa):
        root.add_key(s.public_key, "root")
    write("root", root_md, [ed, p256, p384, rsa], version=2)

    # Targets and delegations.
    targets = Metadata(Targets(expires=expires))
    hashed_prefix = hashlib.sha256(b"hashed/one.txt").hexdigest()[:3]
    targets.signed.delegations = Delegations(
        keys={
            k.public_key.keyid: k.public_key for k in (files_key, hashed_key, unclaimed_key)
        },
        roles={
            "files": DelegatedRole(
                "files", [files_key.public_key.keyid], 1, False, paths=["files/*"]
            ),
            "hashed": DelegatedRole(
                "hashed",
                [hashed_key.public_key.keyid],
                1,
                False,
                path_hash_prefixes=[hashed_prefix],
            ),
            "unclaimed": DelegatedRole(
                "unclaimed",
                [unclaimed_key.public_key.keyid],
                1,
                True,
                paths=["packages/*/*"],
            ),
        },
    )
    add_target(targets, "top.txt", b"top-level target\n")

    files = Metadata(Targets(expires=expires))
    add_target(files, "files/readme.md", b"# readme\n")
    hashed = Metadata(Targets(expires=expires))
    add_target(hashed, "hashed/one.txt", b"one\n")
    unclaimed = Metadata(Targets(expires=expires))
    succinct = SuccinctRoles(
        keyids=[bins_key.public_key.keyid], threshold=1, bit_length=4, name_prefix="bins"
    )
    unclaimed.signed.delegations = Delegations(
        keys={bins_key.public_key.keyid: bins_key.public_key},
        roles=None,
        succinct_roles=succinct,
    )
    bins = {name: Metadata(Targets(expires=expires)) for name in succinct.get_roles()}
    packages = [
        "packages/demo/demo-1.0.tar.gz",
        "packages/demo/demo-1.0-py3-none-any.whl",
        "packages/other/other-2.0.tar.gz",
    ]
    for i, path in enumerate(packages):
        add_target(bins[succinct.get_role_for_target(path)], path, f"package {i}\n".encode() * 50)

    snapshot = Metadata(Snapshot(expires=expires))
    roles = {"targets": targets, "files": files, "hashed": hashed, "unclaimed": unclaimed}
    roles.update(bins)
    for name, md in roles.items():
        signer = {
            "targets": p384,
            "files": files_key,
            "hashed": hashed_key,
            "unclaimed": unclaimed_key,
        }.get(name, bins_key)
        data = write(name, md, [signer], version=1)
        snapshot.signed.meta[f"{name}.json"] = meta_of(1, data)
    snap_data = write("snapshot", snapshot, [rsa], version=1)
    timestamp = Metadata(Timestamp(expires=expires))
    timestamp.signed.snapshot_meta = meta_of(1, snap_data)
    write("timestamp", timestamp, [p256])

    roles_of = {"top.txt": "targets", "files/readme.md": "files", "hashed/one.txt": "hashed"}
    for path in packages:
        roles_of[path] = succinct.get_role_for_target(path)
    json.dump(
        {
            "targets": {p: d.hex() for p, d in contents.items()},
            "roles": roles_of,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
