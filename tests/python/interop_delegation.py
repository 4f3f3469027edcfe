"""python-tuf's answers to delegation questions, for tufa's to match.

Usage: interop_delegation.py REQUEST.json RESPONSE.json

REQUEST:
- "fnmatch": {"names": [...], "patterns": [...]}: every name against every
  pattern with `fnmatch.fnmatchcase`; answer: one string per pattern, "1" or
  "0" per name (compact: the table is large).
- "pairs": [[name, pattern], ...]: `fnmatchcase` per pair; answer: bools.
- "delegated": [{"paths" | "path_hash_prefixes": [...], "targets": [...]}]:
  `DelegatedRole.is_delegated_path` per target; answer: lists of bools.
- "succinct": [{"bit_length", "name_prefix", "paths", "names", "all_roles"}]:
  `SuccinctRoles.get_role_for_target` per path, `is_delegated_role` per name,
  and `get_roles()` when all_roles is true.
"""

from __future__ import annotations

import fnmatch
import json
import sys

from tuf.api.metadata import DelegatedRole, SuccinctRoles


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    names = request["fnmatch"]["names"]
    response = {
        "fnmatch": [
            "".join("1" if fnmatch.fnmatchcase(n, p) else "0" for n in names)
            for p in request["fnmatch"]["patterns"]
        ],
        "pairs": [fnmatch.fnmatchcase(n, p) for n, p in request["pairs"]],
        "delegated": [],
        "succinct": [],
    }
    for case in request["delegated"]:
        role = DelegatedRole(
            "role",
            [],
            1,
            False,
            paths=case.get("paths"),
            path_hash_prefixes=case.get("path_hash_prefixes"),
        )
        response["delegated"].append([role.is_delegated_path(t) for t in case["targets"]])
    for case in request["succinct"]:
        bins = SuccinctRoles([], 1, case["bit_length"], case["name_prefix"])
        response["succinct"].append(
            {
                "roles_for_paths": [bins.get_role_for_target(p) for p in case["paths"]],
                "is_delegated_role": [bins.is_delegated_role(n) for n in case["names"]],
                "all_roles": list(bins.get_roles()) if case["all_roles"] else None,
            }
        )
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(response, f, ensure_ascii=True)


if __name__ == "__main__":
    main()
