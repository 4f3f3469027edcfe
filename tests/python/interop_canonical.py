"""Canonical JSON by securesystemslib, for tufa's encoder to match.

Usage: interop_canonical.py IN.jsonl OUT.txt

IN holds one JSON document per line. For each, OUT gets one line: the hex of
`encode_canonical(json.loads(line))` as UTF-8, or `error: <exception type>`
when securesystemslib refuses the document (floats). Hex, so that control
characters and line separators in the output cannot be confused with lines.
"""

from __future__ import annotations

import json
import sys

from securesystemslib.formats import encode_canonical


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        # Split on b"\n" only: U+2028 and friends are not line breaks here.
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for line in lines:
        doc = json.loads(line.decode("utf-8"))
        try:
            out.append(encode_canonical(doc).encode("utf-8").hex())
        except Exception as e:  # noqa: BLE001 - report any refusal by type
            out.append(f"error: {type(e).__name__}")
    with open(sys.argv[2], "w", encoding="ascii") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
