"""Upload a small wheel to `tufa serve --dev` with twine, for the test of
`tufa proxy` in front of the bundled index (tests/tests/proxy_serve.rs).

Usage: proxy_serve_upload.py BASE_URL TOKEN WORKDIR

Makes tufa_demo-1.0-py3-none-any.whl (module tufa_demo, VERSION = '1.0'),
uploads it with `twine upload`, waits until the index serves the project
page (it serves only what the published metadata signs), and prints
{"filename", "sha256", "length"} as JSON. Exits non-zero with the reason on
any failure.
"""

import hashlib
import json
import os
import sys
import time
import urllib.request

from index_e2e import fail, make_wheel, twine


def main():
    base, token, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    wheel = make_wheel(work, "tufa-demo", "1.0")
    twine(base, token, [wheel])
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/simple/tufa-demo/", timeout=10) as r:
                if r.status == 200 and os.path.basename(wheel) in r.read().decode():
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            fail("the uploaded wheel was not served within 60 s")
        time.sleep(0.1)
    with open(wheel, "rb") as f:
        data = f.read()
    print(json.dumps({
        "filename": os.path.basename(wheel),
        "sha256": hashlib.sha256(data).hexdigest(),
        "length": len(data),
    }))


if __name__ == "__main__":
    main()
