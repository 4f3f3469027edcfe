"""Build python-tuf repositories for `tufa verify` tests.

Writes, under OUT, one consistent-snapshot repository per scenario, all built
by python-tuf 7 with succinct hash bins (TAP 15), and prints a JSON summary:

  good/         root v1 -> v2 rotation (threshold 2), targets -> BINS bins, TARGETS targets
  expired-bin/  good, but one bin re-signed with an `expires` in the past
  bin-version/  good, but one bin's file holds version 2 while snapshot lists 1
  bad-root/     good, plus 3.root.json signed by only one of root v2's two keys

Usage: build_repo.py OUT [--bins 1024] [--targets 3000]
"""

import argparse
import copy
import json
import os
import shutil
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--bins", type=int, default=1024)
    p.add_argument("--targets", type=int, default=3000)
    args = p.parse_args()

    bit_length = args.bins.bit_length() - 1
    assert 2**bit_length == args.bins, "--bins must be a power of two"

    future = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=365)
    past = datetime(2020, 1, 1, tzinfo=timezone.utc)

    root_keys = [CryptoSigner.generate_ed25519() for _ in range(4)]
    online = CryptoSigner.generate_ed25519()

    def sign(md, signers):
        md.signatures.clear()
        for s in signers:
            md.sign(s, append=True)
        return md

    # Root v1: root keys 0 and 1, threshold 2; online key for the rest.
    root = Root(expires=future, consistent_snapshot=True)
    for s in root_keys[:2]:
        root.add_key(s.public_key, "root")
    root.roles["root"].threshold = 2
    for role in ("targets", "snapshot", "timestamp"):
        root.add_key(online.public_key, role)
    root_v1 = sign(Metadata(root), root_keys[:2])

    # Root v2: rotate to keys 2 and 3; signed by the old threshold and the new.
    root2 = copy.deepcopy(root)
    root2.version = 2
    for s in root_keys[:2]:
        root2.revoke_key(s.public_key.keyid, "root")
    for s in root_keys[2:]:
        root2.add_key(s.public_key, "root")
    root_v2 = sign(Metadata(root2), root_keys)

    succinct = SuccinctRoles(
        keyids=[online.public_key.keyid], threshold=1, bit_length=bit_length, name_prefix="bins"
    )
    targets = Targets(expires=future)
    targets.delegations = Delegations(
        keys={online.public_key.keyid: online.public_key}, succinct_roles=succinct
    )

    bins = {name: Targets(expires=future) for name in succinct.get_roles()}
    for i in range(args.targets):
        project = f"project{i % 997}"
        path = f"packages/{project}/{project}-{i}.0-py3-none-any.whl"
        data = f"content of {path}".encode()
        tf = TargetFile.from_data(path, data, ["sha256", "blake2b-256"])
        bins[succinct.get_role_for_target(path)].targets[path] = tf

    snapshot = Snapshot(expires=future)
    snapshot.meta["targets.json"] = MetaFile(version=1)
    for name in bins:
        snapshot.meta[f"{name}.json"] = MetaFile(version=1)
    timestamp = Timestamp(expires=future, snapshot_meta=MetaFile(version=1))

    pretty = JSONSerializer(compact=False)

    def write(dir, name, md):
        md.to_file(os.path.join(dir, name), serializer=pretty)

    good = os.path.join(args.out, "good")
    os.makedirs(good, exist_ok=True)
    write(good, "1.root.json", root_v1)
    write(good, "2.root.json", root_v2)
    write(good, "1.targets.json", sign(Metadata(targets), [online]))
    for name, bin_targets in bins.items():
        write(good, f"1.{name}.json", sign(Metadata(bin_targets), [online]))
    write(good, "1.snapshot.json", sign(Metadata(snapshot), [online]))
    write(good, "timestamp.json", sign(Metadata(timestamp), [online]))

    # A bin that holds targets, to mutate in the failure scenarios.
    victim = next(name for name, t in bins.items() if t.targets)

    def scenario(name):
        d = os.path.join(args.out, name)
        shutil.copytree(good, d)
        return d

    d = scenario("expired-bin")
    expired = copy.deepcopy(bins[victim])
    expired.expires = past
    write(d, f"1.{victim}.json", sign(Metadata(expired), [online]))

    d = scenario("bin-version")
    bumped = copy.deepcopy(bins[victim])
    bumped.version = 2
    write(d, f"1.{victim}.json", sign(Metadata(bumped), [online]))

    d = scenario("bad-root")
    root3 = copy.deepcopy(root2)
    root3.version = 3
    write(d, "3.root.json", sign(Metadata(root3), [root_keys[2]]))

    print(
        json.dumps(
            {
                "victim_bin": victim,
                "victim_targets": len(bins[victim].targets),
                "bins": args.bins,
                "targets": args.targets,
            }
        )
    )


if __name__ == "__main__":
    main()
