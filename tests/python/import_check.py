"""Checks for `tufa import` and `tufa gc` tests.

  import_check.py found BASE_URL ROOT_JSON CSV...
      python-tuf's ngclient (fresh, from ROOT_JSON) finds every CSV row's
      path with its length and hash; prints a JSON summary.
  import_check.py count DB
      prints the number of artifacts rows in the tufa SQLite database.
"""

import json
import sqlite3
import sys
import tempfile

from tuf.ngclient import Updater, UpdaterConfig


def rows(csv_path):
    with open(csv_path, encoding="utf-8", newline="") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            path, size, algorithm, digest = line.split(";")
            yield path, int(size), algorithm, digest.lower()


def found(base, root_json, csvs):
    base = base.rstrip("/")
    with open(root_json, "rb") as f:
        root_bytes = f.read()
    up = Updater(
        metadata_dir=tempfile.mkdtemp(),
        bootstrap=root_bytes,
        metadata_base_url=f"{base}/metadata/",
        target_base_url=f"{base}/targets/",
        config=UpdaterConfig(prefix_targets_with_hash=False),
    )
    up.refresh()
    n = 0
    for csv_path in csvs:
        for path, size, algorithm, digest in rows(csv_path):
            info = up.get_targetinfo(path)
            if info is None:
                sys.exit(f"ngclient does not find {path} ({csv_path})")
            if info.length != size or info.hashes.get(algorithm) != digest:
                sys.exit(f"{path}: ngclient has {info.length} {info.hashes}, CSV says {size} {algorithm}:{digest}")
            n += 1
    print(json.dumps({"found": n, "snapshot_version": up._trusted_set.snapshot.version}))


def count(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    print(con.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0])


def main():
    if sys.argv[1] == "found":
        found(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1] == "count":
        count(sys.argv[2])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
