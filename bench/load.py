"""Load driver for tufa serve's RSTUF API (standard library only)."""
import argparse, hashlib, json, statistics, sys, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        return resp.status, json.loads(resp.read())

def target(seed, i):
    """A PyPI-shaped target, as repo_build.py makes them."""
    project = f"project{i // 5:07d}"
    kind = i % 5
    digest = hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=32).hexdigest()
    r = int(digest[:8], 16)
    length = 500 + r % 20_000 if kind == 0 else 5_000 + r % 30_000_000
    if kind == 0:
        path = f"simple/{project}/index.html"
    else:
        path = f"{digest[:2]}/{digest[2:4]}/{digest[4:]}/{project}-1.0.{kind}.tar.gz"
    return path, length, digest

def artifacts(seed, start, count):
    out = []
    for i in range(start, start + count):
        path, length, digest = target(seed, i)
        out.append({"path": path, "info": {"length": length, "hashes": {"blake2b-256": digest}}})
    return out

def pending(base):
    _, body = call("GET", f"{base}/api/v1/tasks?state=PENDING&limit=10000")
    return {t["task_id"] for t in body["data"]["tasks"]}

def post(base, arts):
    status, body = call("POST", f"{base}/api/v1/artifacts/", {"artifacts": arts})
    assert status == 202, (status, body)
    return body["data"]["task_id"]

def check_success(base, ids):
    _, body = call("GET", f"{base}/api/v1/tasks?limit=10000")
    states = {t["task_id"]: t["state"] for t in body["data"]["tasks"]}
    bad = {i: states.get(i) for i in ids if states.get(i) != "SUCCESS"}
    if bad:
        sys.exit(f"tasks not SUCCESS: {list(bad.items())[:5]}")

def bulk(a):
    batches = [artifacts(a.seed, k * a.batch, a.batch) for k in range(a.count // a.batch)]
    t0 = time.perf_counter()
    bases = [a.base] + a.extra_base
    with ThreadPoolExecutor(a.concurrency) as pool:
        ids = list(pool.map(lambda kb: post(bases[kb[0] % len(bases)], kb[1]), enumerate(batches)))
    accepted = time.perf_counter() - t0
    mine = set(ids)
    while mine & pending(a.base):
        time.sleep(0.05)
    published = time.perf_counter() - t0
    check_success(a.base, ids)
    print(json.dumps({"bench": "api_bulk", "artifacts": a.count, "requests": len(ids), "batch": a.batch,
                      "concurrency": a.concurrency, "accepted_s": round(accepted, 3),
                      "published_s": round(published, 3), "artifacts_per_s": round(a.count / published, 1)}))

def sustained(a):
    per_s = a.rate // a.per_request
    n = per_s * a.seconds
    batches = [artifacts(a.seed, k * a.per_request, a.per_request) for k in range(n)]
    accepted = {}  # task id -> accept time
    published = {}
    lock = threading.Lock()
    done = threading.Event()
    def poller():
        while not done.is_set() or len(published) < len(accepted):
            t_req = time.perf_counter()
            p = pending(a.base)
            t_resp = time.perf_counter()
            with lock:
                for tid, t_acc in accepted.items():
                    if tid not in published and t_acc < t_req and tid not in p:
                        published[tid] = t_resp
            time.sleep(0.05)
    th = threading.Thread(target=poller, daemon=True)
    th.start()
    t0 = time.perf_counter()
    def send(k):
        delay = t0 + k / per_s - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        tid = post(a.base, batches[k])
        with lock:
            accepted[tid] = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, range(n)))
    sent_s = time.perf_counter() - t0
    done.set()
    th.join(timeout=120)
    check_success(a.base, list(accepted))
    lat = sorted((published[t] - accepted[t]) * 1000 for t in accepted)
    q = statistics.quantiles(lat, n=100, method="inclusive")
    print(json.dumps({"bench": "api_sustained", "target_artifacts_per_s": a.rate, "per_request": a.per_request,
                      "requests": n, "send_s": round(sent_s, 2),
                      "achieved_artifacts_per_s": round(n * a.per_request / sent_s, 1),
                      "latency_ms": {"p50": round(q[49], 1), "p90": round(q[89], 1), "p99": round(q[98], 1),
                                     "max": round(lat[-1], 1), "min": round(lat[0], 1)},
                      "poll_interval_ms": 50}))

def wait_bootstrap(a):
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            _, body = call("GET", f"{a.base}/api/v1/bootstrap/")
            if body["data"]["bootstrap"] is True:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("bootstrap did not finish")

def csv(a):
    with open(a.file, "w") as f:
        for i in range(a.count):
            path, length, digest = target(a.seed, i)
            f.write(f"{path};{length};blake2b-256;{digest}\n")

p = argparse.ArgumentParser()
sub = p.add_subparsers(dest="cmd", required=True)
b = sub.add_parser("bulk"); b.add_argument("base"); b.add_argument("--count", type=int, default=100000)
b.add_argument("--batch", type=int, default=1000); b.add_argument("--concurrency", type=int, default=4)
b.add_argument("--seed", default="bulk")
b.add_argument("--extra-base", action="append", default=[], help="more API processes to spread POSTs over")
s = sub.add_parser("sustained"); s.add_argument("base"); s.add_argument("--rate", type=int, default=1000)
s.add_argument("--per-request", type=int, default=100); s.add_argument("--seconds", type=int, default=30)
s.add_argument("--seed", default="sustained")
w = sub.add_parser("wait-bootstrap"); w.add_argument("base")
c = sub.add_parser("csv"); c.add_argument("file"); c.add_argument("--count", type=int, default=1000000)
c.add_argument("--seed", default="import")
a = p.parse_args()
{"bulk": bulk, "sustained": sustained, "wait-bootstrap": wait_bootstrap, "csv": csv}[a.cmd](a)
