#!/usr/bin/env bash
# Benchmarks tufa's TUF client beside python-tuf's ngclient, in one run, on
# the same 16384-bin repository served the same way.
#
#   bash bench/run-client.sh [RESULTS_DIR]
#
# Not timed: the release build of tufa and of the client_bench example
# (crates/tufa-client/examples/client_bench.rs), and one repository built by
# python-tuf (repo_build.py --targets TARGETS --bins 16384 --batch BATCH).
# Then ROUNDS rounds, each in this order:
#   py-N     client_refresh.py --repeats REPEATS: ngclient, cold refresh +
#            lookup + download of one 100 KB target, then a warm refresh
#            (it serves the repository itself with python -m http.server)
#   tufa-N   client_bench --repeats REPEATS: tufa's updater, the same steps
#            against the same kind of server (python -m http.server)
#   cli-N    the same through the `tufa download` command, REPEATS times a
#            cold run (fresh metadata dir) and a warm one (same dir, the file
#            in place): wall time of the whole process, start-up included
# Both in-process figures leave out process start-up (python-tuf's
# interpreter and imports; tufa's exec). Bytes are HTTP body bytes, requests
# every request (the root N+1 probe's 404 included).
# Results in RESULTS_DIR (default target/bench-results/client-<UTC time>):
# summary.md, one JSON line per measurement, logs, machine.txt.
#
# Environment:
#   PYTHON        interpreter with tuf (default: the checkout's .venv, else
#                 /tmp/pytuf-bench, created if missing)
#   SHARED_BENCH  the python baseline scripts (default: ../shared/bench beside the checkout)
#   BENCH_REPO    a repository repo_build.py already wrote (skips the build)
#   TARGETS (100000), BATCH (1000), ROUNDS (3), REPEATS (5)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SHARED_BENCH:-$repo/../shared/bench}
out=${1:-$repo/target/bench-results/client-$(date -u +%Y%m%dT%H%M%SZ)}
targets=${TARGETS:-100000}
batch=${BATCH:-1000}
rounds=${ROUNDS:-3}
repeats=${REPEATS:-5}

say() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
has_tuf() { [ -x "$1" ] && "$1" -c 'import tuf, securesystemslib, cryptography' 2>/dev/null; }

if [ -n "${PYTHON:-}" ]; then
    py=$PYTHON
elif has_tuf "$repo/.venv/bin/python"; then
    py=$repo/.venv/bin/python
else
    py=/tmp/pytuf-bench/bin/python
    if ! has_tuf "$py"; then
        say "creating /tmp/pytuf-bench (python-tuf baseline, see $shared/README.md)"
        python3 -m venv /tmp/pytuf-bench
        /tmp/pytuf-bench/bin/pip install --quiet tuf 'securesystemslib[crypto]' cryptography
    fi
fi
has_tuf "$py" || { echo "error: $py cannot import tuf/securesystemslib" >&2; exit 1; }
[ -f "$shared/client_refresh.py" ] || { echo "error: no $shared/client_refresh.py" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tufa-bench-client.XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
cd "$repo"

say "building tufa and client_bench (release, not timed)"
cargo build --release -p tufa-cli -p tufa-client --bin tufa --example client_bench 2>"$out/build.log" ||
    { tail -30 "$out/build.log" >&2; exit 1; }
bin_dir=${CARGO_TARGET_DIR:-$repo/target}/release
tufa=$bin_dir/tufa
client_bench=$bin_dir/examples/client_bench

if [ -n "${BENCH_REPO:-}" ]; then
    pyrepo=$(cd "$BENCH_REPO" && pwd)
    say "using the repository in $pyrepo"
else
    pyrepo=$work/repo
    say "python-tuf builds the repository: repo_build.py --targets $targets --bins 16384 --batch $batch (not timed)"
    "$py" "$shared/repo_build.py" --targets "$targets" --bins 16384 --batch "$batch" --out "$pyrepo" \
        >"$out/repo_build.json" 2>"$out/repo_build.log"
fi
[ -f "$pyrepo/manifest.json" ] || { echo "error: $pyrepo/manifest.json missing" >&2; exit 1; }
# The target client_refresh.py picks by default: the first materialized .tar.gz.
target=$("$py" -c '
import json, sys
m = json.load(open(sys.argv[1]))["materialized"]
print(next((x["path"] for x in m if x["path"].endswith(".tar.gz")), m[0]["path"]))' "$pyrepo/manifest.json")
root=$pyrepo/metadata/1.root.json

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "cores: $(nproc)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' (crates modified)')"
    echo "rustc: $(rustc --version)"
    echo "python: $("$py" -c 'import sys, tuf, urllib3; print(sys.version.split()[0], "tuf", tuf.__version__, "urllib3", urllib3.__version__)')"
    echo "repository: $pyrepo, $(ls "$pyrepo"/metadata/*.snapshot.json | wc -l) snapshot versions, newest $(ls -S "$pyrepo"/metadata/*.snapshot.json | head -1 | xargs stat -c %s) bytes"
    echo "target: $target"
    echo "rounds: $rounds, repeats per round: $repeats"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

# The server tufa is measured against: the one client_refresh.py starts for
# ngclient (python -m http.server, HTTP/1.0, one connection per request).
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
(cd "$pyrepo" && exec "$py" -m http.server "$port" --bind 127.0.0.1 >"$work/http.log" 2>&1) &
server_pid=$!
i=0
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
    [ $i -lt 200 ] || { echo "error: http.server did not start" >&2; exit 1; }
done
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY

cli_runs() { # ROUND
    "$py" - "$tufa" "$base" "$root" "$target" "$repeats" "$work/cli" <<'EOF' >"$out/cli-$1.json"
import json, os, shutil, statistics, subprocess, sys, time
tufa, base, root, target, repeats, work = sys.argv[1:]
def run(meta, tdir):
    cmd = [tufa, "download", "--metadata-url", f"{base}/metadata/", "--root", root,
           "--metadata-dir", meta, "--target-base-url", f"{base}/targets/", "--target-dir", tdir, target]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    t1 = time.perf_counter()
    if p.returncode != 0:
        sys.exit(f"tufa download failed: {p.stderr}")
    return t1 - t0
cold, warm = [], []
for _ in range(int(repeats)):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    meta, tdir = os.path.join(work, "metadata"), os.path.join(work, "targets")
    cold.append(run(meta, tdir))
    warm.append(run(meta, tdir))
shutil.rmtree(work, ignore_errors=True)
print(json.dumps({"bench": "tufa_download_cli", "median_cold_s": round(statistics.median(cold), 4),
                  "median_warm_s": round(statistics.median(warm), 4), "cold_s": cold, "warm_s": warm}))
EOF
}

for n in $(seq "$rounds"); do
    say "round $n/$rounds: python-tuf ngclient (client_refresh.py --repeats $repeats)"
    "$py" "$shared/client_refresh.py" --repo "$pyrepo" --target "$target" --repeats "$repeats" \
        --server-log "$work/py-http-$n.log" >"$out/py-$n.json" 2>"$out/py-$n.log"
    say "round $n/$rounds: tufa updater (client_bench --repeats $repeats)"
    "$client_bench" --metadata-url "$base/metadata/" --target-base-url "$base/targets/" \
        --root "$root" --target "$target" --repeats "$repeats" >"$out/tufa-$n.json" 2>"$out/tufa-$n.log"
    say "round $n/$rounds: tufa download (process wall time)"
    cli_runs "$n"
    echo "load after round $n: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
done

# ---- summary ------------------------------------------------------------------
"$py" - "$out" "$rounds" <<'EOF'
import json, os, statistics, sys

out, rounds = sys.argv[1], int(sys.argv[2])
def load(name):
    with open(os.path.join(out, name)) as f:
        return json.loads(f.read().strip().splitlines()[-1])
py = [load(f"py-{n}.json") for n in range(1, rounds + 1)]
tu = [load(f"tufa-{n}.json") for n in range(1, rounds + 1)]
cli = [load(f"cli-{n}.json") for n in range(1, rounds + 1)]
med = statistics.median
def ms(x):
    return f"{x * 1000:,.1f}"

rows = [
    ("cold: refresh + lookup + download, total (ms)", "median_total_s"),
    ("  init (trusted root loaded)", "median_init_s"),
    ("  refresh (root N+1, timestamp, snapshot, targets)", "median_refresh_s"),
    ("  lookup (one bin)", "median_lookup_s"),
    ("  download (100 KB target)", "median_download_s"),
    ("warm: refresh + lookup + cached target found (ms)", "median_warm_total_s"),
]
lines = ["| work | tufa (median of rounds) | tufa per round | python-tuf (median of rounds) | python-tuf per round | python-tuf time / tufa time |",
         "|---|---:|---:|---:|---:|---:|"]
for what, key in rows:
    t = [r[key] for r in tu]
    p = [r[key] for r in py]
    lines.append(f"| {what} | {ms(med(t))} | {', '.join(ms(x) for x in t)} | {ms(med(p))} | "
                 f"{', '.join(ms(x) for x in p)} | {med(p) / med(t):.1f}x |")
c = [r["median_cold_s"] for r in cli]
w = [r["median_warm_s"] for r in cli]
lines.append(f"| `tufa download` process, cold (ms) | {ms(med(c))} | {', '.join(ms(x) for x in c)} | "
             f"| | {med([r['median_total_s'] for r in py]) / med(c):.1f}x (against ngclient in-process) |")
lines.append(f"| `tufa download` process, warm (ms) | {ms(med(w))} | {', '.join(ms(x) for x in w)} | "
             f"| | {med([r['median_warm_total_s'] for r in py]) / med(w):.1f}x (against ngclient in-process) |")
lines += ["", "| traffic | tufa | python-tuf |", "|---|---:|---:|"]
for what, key in [("cold: bytes fetched", "median_bytes"), ("  of which metadata", "median_metadata_bytes"),
                  ("  of which the target", "median_target_bytes"), ("cold: requests", "median_requests"),
                  ("warm: bytes fetched", "median_warm_bytes"), ("warm: requests", "median_warm_requests")]:
    lines.append(f"| {what} | {med([r[key] for r in tu]):,.0f} | {med([r[key] for r in py]):,.0f} |")
def reqs(log):
    return ", ".join(f"{u.split('/', 3)[-1]} {s} {b:,} B" for u, b, s in log)
lines += ["", f"tufa cold requests: {reqs(tu[0]['request_log'])}",
          "", f"python-tuf cold requests: {reqs(py[0]['request_log'])}",
          "", f"tufa warm requests: {reqs(tu[0]['warm_request_log'])}",
          "", f"python-tuf warm requests: {reqs(py[0]['warm_request_log'])}"]
text = "\n".join(lines) + "\n"
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(text)
print(text)
EOF
cat "$out/machine.txt" >&2
say "results in $out"
