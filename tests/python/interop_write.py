"""Writes a signed TUF repository with python-tuf, for tufa to read.

Usage: interop_write.py OUTDIR

The repository uses every key type tufa supports, thresholds above 1, several
signatures per role, the three kinds of delegation (`paths`,
`path_hash_prefixes`, `succinct_roles`), awkward Unicode target paths and
unknown fields at every level. Beside each `{role}.json` it writes:

- `{role}.signed.canonical`: securesystemslib's canonical bytes of `signed`
  (what the signatures are over);
- `{role}.canonical`: securesystemslib's canonical bytes of the whole document;

and `manifest.json`, which says for each file who delegates to it and which
keyids python-tuf counts as validly signed, plus facts about the keys and
bins that the Rust side compares with its own answers.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, PSS
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, Signature, SSlibKey
from securesystemslib.signer._utils import compute_default_keyid
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

EXPIRES = datetime(2038, 1, 19, 3, 14, 7, tzinfo=timezone.utc)

# Unicode that breaks naive encoders: outside the BMP, combining characters
# (NFC and NFD forms of the same text, which must stay distinct), control
# characters, quotes and backslashes, line/paragraph separators, a BOM,
# noncharacters, and U+FF61 vs U+1F600, which sort differently by code point
# than by UTF-16 code unit.
UNICODE_PATHS = {
    "top": [
        "packages/plain/plain-1.0.tar.gz",
        "packages/\u00fcn\u00efc\u00f6d\u00e9/\u00fcn\u00efc\u00f6d\u00e9-1.0.tar.gz",
        "packages/\u00fcn\u00efc\u00f6d\u00e9/u\u0308n\u0131c\u006f\u0308de-1.0.tar.gz",
        "packages/music/\U0001d11e-clef-1.0.whl",
        "packages/sort/\uff61.txt",
        "packages/sort/\U0001f600.txt",
        "packages/ctrl/a\x01b\x1f\x7f\n\t\r.txt",
        'packages/quote/a"b\\c\\\\"d.txt',
        "packages/edge/\u2028\u2029\ufeff\uffff\U0010ffff.txt",
    ],
    "paths-role": [
        "simple/\u00fcn\u00efc\u00f6d\u00e9/index.html",
        "\U0001d11e/\U0001f600",
        "packages/p/p-2.0.tar.gz",
    ],
    "prefix-role": [
        "prefixed/a.txt",
        "prefixed/\U0001f600.txt",
    ],
}
BIN_PATHS = [f"bins/\u00e9{i}/\U0001f600-{i}\"\\.txt" for i in range(12)]

ALGORITHMS = ["sha256", "sha512", "blake2b-256"]


def target(path: str, extra: dict | None = None) -> TargetFile:
    """A target for made-up content, with `custom` and an unknown field."""
    data = ("content of " + path).encode("utf-8")
    tf = TargetFile.from_data(path, data, ALGORITHMS)
    tf.unrecognized_fields = {
        "custom": {
            "\u00fcn\u00ef": "\U0001d11e",
            'quote"back\\slash': "x\x00y",
            "ints": [
                0,
                -1,
                9223372036854775807,
                -9223372036854775808,
                18446744073709551615,
            ],
            "misc": [True, False, None, {}, [], ""],
        },
        "x-tufa-target": path,
    }
    if extra:
        tf.unrecognized_fields.update(extra)
    return tf


def with_keyval_extra(signer: CryptoSigner) -> CryptoSigner:
    """The same key with an extra `keyval` field and an extra key field.

    The extra keyval field is part of securesystemslib's default keyid, so the
    keyid is recomputed: tufa must compute the same one.
    """
    pub = signer.public_key
    keyval = dict(pub.keyval)
    keyval["x-tufa-keyval"] = "\U0001f600"
    keyid = compute_default_keyid(pub.keytype, pub.scheme, keyval)
    key = SSlibKey(
        keyid, pub.keytype, pub.scheme, keyval, {"x-tufa-key": {"n": 1}}
    )
    return CryptoSigner(signer._private_key, key)


def sign_pss_max_salt(md: Metadata, signer: CryptoSigner) -> None:
    """Signs with RSA-PSS and the longest salt: other signers than
    securesystemslib do, and verifiers must accept any salt length."""
    sig = signer._private_key.sign(
        md.signed_bytes,
        PSS(mgf=MGF1(hashes.SHA256()), salt_length=PSS.MAX_LENGTH),
        hashes.SHA256(),
    )
    keyid = signer.public_key.keyid
    md.signatures[keyid] = Signature(keyid, sig.hex())


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)

    ed_a = CryptoSigner.generate_ed25519()
    ed_b = CryptoSigner.generate_ed25519()
    ed_c = with_keyval_extra(CryptoSigner.generate_ed25519())
    p256 = CryptoSigner.generate_ecdsa(scheme="ecdsa-sha2-nistp256")
    p384 = CryptoSigner.generate_ecdsa(scheme="ecdsa-sha2-nistp384")
    rsa = CryptoSigner.generate_rsa(scheme="rsassa-pss-sha256")
    # An unknown field on a key that root lists; it does not change the keyid.
    ed_a.public_key.unrecognized_fields["x-tufa-key-name"] = "r\u00f6\u00f6t \U0001f511"

    # --- root: 4 keys, one of each type, threshold 3, signed by all four.
    root = Root(
        expires=EXPIRES,
        consistent_snapshot=True,
        unrecognized_fields={"x-tufa-signed": {"\uff61": 1, "\U0001f600": 2}},
    )
    for s in (ed_a, p256, p384, rsa):
        root.add_key(s.public_key, "root")
    root.roles["root"].threshold = 3
    root.roles["root"].unrecognized_fields["x-tufa-role"] = ["r"]
    for s in (ed_b, p384, rsa):
        root.add_key(s.public_key, "targets")
    root.roles["targets"].threshold = 2
    for s in (rsa, p256):
        root.add_key(s.public_key, "snapshot")
    root.roles["snapshot"].threshold = 2
    for s in (ed_b, p384):
        root.add_key(s.public_key, "timestamp")
    root.roles["timestamp"].threshold = 2

    # --- targets: delegates by `paths` and by `path_hash_prefixes`.
    targets = Targets(
        expires=EXPIRES,
        targets={p: target(p) for p in UNICODE_PATHS["top"]},
        unrecognized_fields={"x-tufa-signed": "targets \u2603"},
    )
    targets.delegations = Delegations(
        keys={s.public_key.keyid: s.public_key for s in (ed_c, p256, rsa)},
        roles={
            "paths-role": DelegatedRole(
                "paths-role",
                [ed_c.public_key.keyid, p256.public_key.keyid],
                2,
                False,
                paths=[
                    "simple/\u00fcn\u00ef*/*",
                    "\U0001d11e/?",
                    "packages/[!q]/*.tar.gz",
                ],
                unrecognized_fields={"x-tufa-delegated-role": True},
            ),
            "prefix-role": DelegatedRole(
                "prefix-role",
                [rsa.public_key.keyid, p256.public_key.keyid, ed_c.public_key.keyid],
                2,
                True,
                path_hash_prefixes=[
                    hashlib.sha256(p.encode()).hexdigest()[:3]
                    for p in UNICODE_PATHS["prefix-role"]
                ],
                unrecognized_fields={"x-tufa-delegated-role": None},
            ),
        },
        unrecognized_fields={"x-tufa-delegations": {"a": [1, 2]}},
    )

    # --- paths-role: has targets and delegates to succinct bins.
    paths_role = Targets(
        expires=EXPIRES,
        targets={p: target(p) for p in UNICODE_PATHS["paths-role"]},
    )
    succinct = SuccinctRoles(
        [p384.public_key.keyid, ed_c.public_key.keyid],
        2,
        2,
        "bin",
        unrecognized_fields={"x-tufa-succinct": "\U0001f600"},
    )
    paths_role.delegations = Delegations(
        keys={s.public_key.keyid: s.public_key for s in (p384, ed_c)},
        succinct_roles=succinct,
    )

    prefix_role = Targets(
        expires=EXPIRES,
        targets={p: target(p) for p in UNICODE_PATHS["prefix-role"]},
    )

    bins: dict[str, Targets] = {
        name: Targets(expires=EXPIRES) for name in succinct.get_roles()
    }
    for p in BIN_PATHS:
        bins[succinct.get_role_for_target(p)].targets[p] = target(p)

    # (role name, signed, delegator name, signers)
    docs: list[tuple[str, object, str, list[CryptoSigner]]] = [
        ("root", root, "root", [ed_a, p256, p384, rsa]),
        # p256 is not a targets key: its signature must be ignored.
        ("targets", targets, "root", [ed_b, p384, p256]),
        ("paths-role", paths_role, "targets", [ed_c, p256]),
        ("prefix-role", prefix_role, "targets", [rsa, p256, ed_c]),
    ]
    for name, signed in bins.items():
        docs.append((name, signed, "paths-role", [p384, ed_c]))

    manifest = {"files": [], "bins": list(succinct.get_roles()), "keyids": []}
    written: dict[str, bytes] = {}

    def write(name: str, md: Metadata, delegator: str, delegator_md: Metadata | None, compact: bool) -> None:
        data = md.to_bytes(JSONSerializer(compact=compact))
        (out / f"{name}.json").write_bytes(data)
        raw = json.loads(data)
        signed_canon = encode_canonical(raw["signed"]).encode("utf-8")
        # python-tuf's own signed bytes, from its typed objects, must agree.
        assert signed_canon == md.signed_bytes, name
        (out / f"{name}.signed.canonical").write_bytes(signed_canon)
        (out / f"{name}.canonical").write_bytes(encode_canonical(raw).encode("utf-8"))
        parent = md if delegator_md is None else delegator_md
        result = parent.signed.get_verification_result(name, md.signed_bytes, md.signatures)
        assert result.verified, name
        manifest["files"].append(
            {
                "role": name,
                "type": md.signed.type,
                "file": f"{name}.json",
                "delegator": delegator,
                "threshold": result.threshold,
                "signed_keyids": sorted(result.signed),
            }
        )
        written[name] = data

    mds: dict[str, Metadata] = {}
    for name, signed, delegator, signers in docs:
        md = Metadata(signed)
        for s in signers:
            md.sign(s, append=True)
        if name == "root":
            md.unrecognized_fields["x-tufa-envelope"] = ["kept", "\U0001f600"]
            sig = md.signatures[ed_a.public_key.keyid]
            sig.unrecognized_fields["x-tufa-sig"] = {"bundle": None}
        mds[name] = md
        write(name, md, delegator, mds.get(delegator) if name != "root" else None, compact=name.startswith("bin-"))

    # snapshot and timestamp last: they describe the files written above.
    snapshot = Snapshot(
        expires=EXPIRES,
        meta={
            f"{name}.json": MetaFile(version=1, unrecognized_fields={"x-tufa-meta": name})
            for name in written
            if name != "root"
        },
    )
    snapshot.meta["targets.json"] = MetaFile.from_data(1, written["targets"], ["sha256", "blake2b-256"])
    md = Metadata(snapshot)
    md.sign(p256, append=True)
    sign_pss_max_salt(md, rsa)
    write("snapshot", md, "root", mds["root"], compact=False)

    timestamp = Timestamp(
        expires=EXPIRES,
        snapshot_meta=MetaFile.from_data(1, (out / "snapshot.json").read_bytes(), ["sha512"]),
    )
    md = Metadata(timestamp)
    md.sign(ed_b, append=True)
    md.sign(p384, append=True)
    write("timestamp", md, "root", mds["root"], compact=True)

    for s in (ed_a, ed_b, ed_c, p256, p384, rsa):
        pub = s.public_key
        manifest["keyids"].append(
            {
                "keyid": pub.keyid,
                "default_keyid": compute_default_keyid(pub.keytype, pub.scheme, pub.keyval),
            }
        )
    # python-tuf's delegation answers for every path, for tufa to match.
    probe = [p for ps in UNICODE_PATHS.values() for p in ps] + BIN_PATHS
    manifest["roles_for_target"] = {
        p: [[name, term] for name, term in targets.delegations.get_roles_for_target(p)]
        for p in probe
    }
    manifest["bins_for_target"] = {p: succinct.get_role_for_target(p) for p in probe}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=True, indent=1))


if __name__ == "__main__":
    main()
