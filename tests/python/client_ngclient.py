"""Run python-tuf's ngclient against a repository, as the reference for
tufa's updater: refresh, then look up and download each target in order.

Prints a JSON object on stdout: for each target path, the role-independent
result ("ok", "missing" or the error class name).

Usage: client_ngclient.py METADATA_URL TARGETS_URL METADATA_DIR TARGET_DIR ROOT PATH...
"""

import json
import shutil
import sys
from pathlib import Path

from tuf.ngclient import Updater


def main():
    metadata_url, targets_url, metadata_dir, target_dir, root = sys.argv[1:6]
    paths = sys.argv[6:]
    Path(metadata_dir).mkdir(parents=True, exist_ok=True)
    Path(target_dir).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root, Path(metadata_dir) / "root.json")
    updater = Updater(
        metadata_dir,
        metadata_url,
        target_dir,
        targets_url,
        bootstrap=Path(root).read_bytes(),
    )
    updater.refresh()
    results = {}
    for path in paths:
        try:
            info = updater.get_targetinfo(path)
            if info is None:
                results[path] = "missing"
                continue
            updater.download_target(info)
            results[path] = "ok"
        except Exception as e:  # noqa: BLE001 - reported, not handled
            results[path] = type(e).__name__
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
