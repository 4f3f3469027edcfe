"""Checks, with python-tuf, securesystemslib and cryptography, what tufa wrote.

Usage: interop_verify.py REQUEST.json RESPONSE.json

REQUEST holds up to three lists; RESPONSE answers each entry by its "id":

- "metadata": {id, file, role, delegator_file}. The file is read with
  `Metadata.from_bytes` and verified with the delegator's `verify_delegate`
  (root verifies itself: delegator_file is then root's own file). Answer:
  {parse: "ok" | error text, verify: "ok" | "unsigned: ..." | "error: ...",
  signed_keyids, signed_bytes_hex, dict_round_trip}.
- "private_keys": {id, pem_file, password | null}. The key is loaded with
  cryptography. Answer: {keyid, key}: securesystemslib's public key dict and
  default keyid for it (scheme given by "scheme").
- "signatures": {id, keyid, key, msg_hex, sig_hex}. Answer: {valid, valid_on_other_msg}.

One process for everything, because starting Python and importing tuf costs
more than all the checks.
"""

from __future__ import annotations

import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Signature, SSlibKey
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata


def describe(e: BaseException) -> str:
    """Exception chain as text, so the caller can tell why parsing failed."""
    parts = []
    while e is not None:
        parts.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    return " <- ".join(parts)


def check_metadata(case: dict) -> dict:
    with open(case["file"], "rb") as f:
        data = f.read()
    try:
        md = Metadata.from_bytes(data)
    except Exception as e:  # noqa: BLE001 - the caller wants every failure
        return {"parse": describe(e), "verify": None}
    with open(case["delegator_file"], "rb") as f:
        delegator = Metadata.from_bytes(f.read())
    answer = {
        "parse": "ok",
        "signed_bytes_hex": md.signed_bytes.hex(),
        # python-tuf keeps everything tufa wrote (unknown fields included).
        "dict_round_trip": md.to_dict() == json.loads(data),
    }
    try:
        delegator.verify_delegate(case["role"], md)
        answer["verify"] = "ok"
    except UnsignedMetadataError as e:
        answer["verify"] = f"unsigned: {e}"
    except Exception as e:  # noqa: BLE001
        answer["verify"] = f"error: {describe(e)}"
    try:
        result = delegator.signed.get_verification_result(
            case["role"], md.signed_bytes, md.signatures
        )
        answer["signed_keyids"] = sorted(result.signed)
    except Exception as e:  # noqa: BLE001
        answer["signed_keyids"] = None
        answer["verify"] = answer["verify"] + f"; result: {describe(e)}"
    return answer


def check_private_key(case: dict) -> dict:
    with open(case["pem_file"], "rb") as f:
        pem = f.read()
    password = case["password"].encode() if case["password"] is not None else None
    try:
        private = load_pem_private_key(pem, password)
    except Exception as e:  # noqa: BLE001
        return {"error": describe(e)}
    key = SSlibKey.from_crypto(private.public_key(), scheme=case["scheme"])
    return {"keyid": key.keyid, "key": key.to_dict()}


def check_signature(case: dict) -> dict:
    key = SSlibKey.from_dict(case["keyid"], dict(case["key"]))
    msg = bytes.fromhex(case["msg_hex"])
    sig = Signature(case["keyid"], case["sig_hex"])

    def valid(data: bytes) -> bool:
        try:
            key.verify_signature(sig, data)
            return True
        except UnverifiedSignatureError:
            return False

    return {"valid": valid(msg), "valid_on_other_msg": valid(msg + b"\x00")}


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        request = json.load(f)
    response = {}
    for section, check in (
        ("metadata", check_metadata),
        ("private_keys", check_private_key),
        ("signatures", check_signature),
    ):
        response[section] = {c["id"]: check(c) for c in request.get(section, [])}
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(response, f, ensure_ascii=True, indent=1)


if __name__ == "__main__":
    main()
