"""Writes private keys of the four TUF key types as Python's cryptography does.

Usage: interop_keys.py OUTDIR PASSWORD

For each type NAME (ed25519, p256, p384, rsa) writes `NAME.pem` (PKCS#8,
unencrypted) and `NAME.enc.pem` (PKCS#8 with `BestAvailableEncryption`, the
way securesystemslib users and RSTUF store keys), and `keys.json`, which maps
NAME to the scheme, securesystemslib's public key dict and its default keyid.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from securesystemslib.signer import SSlibKey


def main() -> None:
    out = Path(sys.argv[1])
    password = sys.argv[2].encode("utf-8")
    out.mkdir(parents=True, exist_ok=True)
    keys = {
        "ed25519": ("ed25519", ed25519.Ed25519PrivateKey.generate()),
        "p256": ("ecdsa-sha2-nistp256", ec.generate_private_key(ec.SECP256R1())),
        "p384": ("ecdsa-sha2-nistp384", ec.generate_private_key(ec.SECP384R1())),
        "rsa": (
            "rsassa-pss-sha256",
            rsa.generate_private_key(public_exponent=65537, key_size=3072),
        ),
    }
    manifest = {}
    for name, (scheme, private) in keys.items():
        for suffix, encryption in (
            ("pem", NoEncryption()),
            ("enc.pem", BestAvailableEncryption(password)),
        ):
            pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
            (out / f"{name}.{suffix}").write_bytes(pem)
        public = SSlibKey.from_crypto(private.public_key(), scheme=scheme)
        manifest[name] = {
            "scheme": scheme,
            "keyid": public.keyid,
            "key": public.to_dict(),
        }
    (out / "keys.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
