#!/usr/bin/env bash
# Benchmarks the tufa repository service beside the python-tuf baseline, in one run.
#
#   bash bench/run-repository.sh [RESULTS_DIR]
#
# Release build (not timed), then, in this order:
#   py-1       python-tuf: repo_build.py --targets 100000 --bins 16384 --batch 1000
#   bootstrap  tufa serve --dev --dev-bins 16384: start to timestamp.json present (RUNS times)
#   api        100,000 artifacts in 100 POSTs of 1,000 (CONCURRENCY at a time) into
#              16384 bins: first POST to every task SUCCESS (RUNS times, each on a
#              fresh bootstrapped repository)
#   import     tufa import of 1,000,000 CSV rows into a fresh 16384-bin repository,
#              with the server stopped (so the import publishes): wall time, peak RSS
#              (IMPORT_RUNS times)
#   sustained  1,000 artifacts/s through the API for SUSTAIN_SECONDS (10 POSTs/s of
#              100): latency from accepted (202) to task SUCCESS, p50/p99
#   py-2       python-tuf again (machine drift shows as a gap between py-1 and py-2)
# About 6 to 8 minutes on a 2-core machine. Results in RESULTS_DIR (default
# target/bench-results/repository-<UTC time>): summary.md, one JSON file per
# measurement, logs, machine.txt.
#
# Environment:
#   PYTHON        interpreter with tuf (default: the checkout's .venv, else
#                 /tmp/pytuf-bench, created if missing)
#   SHARED_BENCH  the python baseline scripts (default: ../shared/bench beside the checkout)
#   RUNS (3), IMPORT_RUNS (2), CONCURRENCY (4), SUSTAIN_SECONDS (30), SKIP_PYTUF (unset)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SHARED_BENCH:-$repo/../shared/bench}
out=${1:-$repo/target/bench-results/repository-$(date -u +%Y%m%dT%H%M%SZ)}
runs=${RUNS:-3}
import_runs=${IMPORT_RUNS:-2}
concurrency=${CONCURRENCY:-4}
sustain=${SUSTAIN_SECONDS:-30}

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
[ -f "$shared/repo_build.py" ] || { echo "error: no $shared/repo_build.py" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tufa-bench-repo.XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
# Nothing is deleted before the end: on ext4, deleting tens of thousands of
# files makes creating new ones up to 10 times slower for minutes (the inode
# allocator skips recently deleted inodes), which would slow whichever run
# came after a deletion. Every run gets its own directory instead.
cd "$repo"

say "building tufa (release, not timed)"
cargo build --release -p tufa-cli 2>"$out/build.log" || { tail -30 "$out/build.log" >&2; exit 1; }
tufa=$repo/target/release/tufa
[ -n "${CARGO_TARGET_DIR:-}" ] && tufa=$CARGO_TARGET_DIR/release/tufa

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "cores: $(nproc)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' (crates modified)')"
    echo "rustc: $(rustc --version)"
    echo "python: $("$py" -c 'import sys, tuf; print(sys.version.split()[0], "tuf", tuf.__version__)')"
    echo "filesystem of the work dir: $(df -T "$work" | awk 'NR==2 {print $2}')"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

# ---- the load driver ---------------------------------------------------------
cp "$repo/bench/load.py" "$work/load.py"

port=$((20000 + RANDOM % 20000))
base=http://127.0.0.1:$port

start_server() { # DATA_DIR LOG [ARGS...]
    local data=$1 log=$2
    shift 2
    "$tufa" serve --data-dir "$data" --listen "127.0.0.1:$port" "$@" >"$log" 2>&1 &
    server_pid=$!
    local i=0
    until grep -q "listening on" "$log"; do
        sleep 0.05
        i=$((i + 1))
        [ $i -lt 1200 ] || { cat "$log" >&2; exit 1; }
    done
}
stop_server() {
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

python_run() {
    if [ -n "${SKIP_PYTUF:-}" ]; then return; fi
    say "python-tuf run $1: repo_build.py --targets 100000 --bins 16384 --batch 1000"
    "$py" "$shared/repo_build.py" --targets 100000 --bins 16384 --batch 1000 --out "$work/pytuf-$1" \
        >"$out/py-$1.json" 2>"$out/py-$1.log"
    echo "load after python run $1: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
}

python_run 1

# (a) bootstrap, keeping each bootstrapped repository for (b) and a copy for (c).
for n in $(seq "$runs"); do
    data=$work/boot-$n
    t0=$(date +%s.%N)
    "$tufa" serve --dev --dev-bins 16384 --data-dir "$data" --listen "127.0.0.1:$port" >"$out/bootstrap-$n.log" 2>&1 &
    server_pid=$!
    until [ -f "$data/metadata/timestamp.json" ]; do sleep 0.02; done
    t1=$(date +%s.%N)
    "$py" "$work/load.py" wait-bootstrap "$base"
    stop_server
    echo "{\"bench\": \"bootstrap\", \"bins\": 16384, \"seconds\": $(echo "$t1 - $t0" | bc -l | sed 's/^\./0./')}" >"$out/bootstrap-$n.json"
    say "bootstrap $n: $(cat "$out/bootstrap-$n.json")"
done
cp -a "$work/boot-1" "$work/pristine"

# (b) 100,000 artifacts through the API.
for n in $(seq "$runs"); do
    # The bootstraps' 50,000 files are still being written back: not this run's work.
    sync
    start_server "$work/boot-$n" "$out/api-$n.log"
    "$py" "$work/load.py" bulk "$base" --count 100000 --batch 1000 --concurrency "$concurrency" >"$out/api-$n.json"
    stop_server
    say "api $n: $(cat "$out/api-$n.json")"
done

# (c) tufa import of 1,000,000 rows, the server stopped.
say "writing 1,000,000 CSV rows (not timed)"
"$py" "$work/load.py" csv "$work/import.csv" --count 1000000
for n in $(seq "$import_runs"); do
    cp -a "$work/pristine" "$work/import-data-$n"
    sync
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -v "$tufa" import --data-dir "$work/import-data-$n" --csv "$work/import.csv" \
            >"$out/import-$n.log" 2>"$out/import-$n.time"
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$out/import-$n.time" |
            awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
        rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/import-$n.time")
    else
        t0=$(date +%s.%N)
        "$tufa" import --data-dir "$work/import-data-$n" --csv "$work/import.csv" >"$out/import-$n.log" 2>"$out/import-$n.time" &
        pid=$!
        rss_kb=0
        while kill -0 "$pid" 2>/dev/null; do
            hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
            [ "${hwm:-0}" -gt "$rss_kb" ] && rss_kb=$hwm
            sleep 0.2
        done
        wait "$pid"
        wall=$(echo "$(date +%s.%N) - $t0" | bc -l)
    fi
    commit_s=$(sed -n 's/.*committed in \([0-9.]*\) s.*/\1/p' "$out/import-$n.log")
    publish_s=$(sed -n 's/.*published (task [0-9a-f]*) in \([0-9.]*\) s.*/\1/p' "$out/import-$n.log")
    echo "{\"bench\": \"import\", \"rows\": 1000000, \"bins\": 16384, \"wall_s\": $wall, \"commit_s\": ${commit_s:-null}, \"publish_s\": ${publish_s:-null}, \"peak_rss_bytes\": $((rss_kb * 1024))}" >"$out/import-$n.json"
    say "import $n: $(cat "$out/import-$n.json")"
done

# (d) sustained load.
start_server "$work/pristine" "$out/sustained.log"
"$py" "$work/load.py" sustained "$base" --rate 1000 --per-request 100 --seconds "$sustain" >"$out/sustained.json"
stop_server
say "sustained: $(cat "$out/sustained.json")"
echo "load after tufa runs: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

python_run 2

# ---- summary ------------------------------------------------------------------
"$py" - "$out" <<'EOF'
import glob, json, os, statistics, sys

out = sys.argv[1]
def load(pattern):
    rows = []
    for path in sorted(glob.glob(os.path.join(out, pattern))):
        with open(path) as f:
            text = f.read().strip()
        if text:
            rows.append(json.loads(text.splitlines()[-1]))
    return rows

med = statistics.median
boot = [r["seconds"] for r in load("bootstrap-*.json")]
api = [r["artifacts_per_s"] for r in load("api-*.json")]
imp = load("import-*.json")
sus = load("sustained.json")
py = load("py-*.json")
lines = ["| work | tufa (median) | runs | python-tuf | tufa speed / python-tuf speed |", "|---|---:|---|---:|---:|"]
def fmt(x, d=1):
    return f"{x:,.{d}f}"
py_boot = [r["bootstrap_s"] for r in py]
py_rate = [r["targets_per_s"] for r in py]
if boot:
    ratio = f"{med(py_boot) / med(boot):.1f}x" if py else ""
    lines.append(f"| bootstrap of 16384 bins (s) | {fmt(med(boot), 2)} | {', '.join(fmt(b, 2) for b in boot)} | "
                 f"{' / '.join(fmt(b, 2) for b in py_boot)} | {ratio} |")
if api:
    ratio = f"{med(api) / med(py_rate):.1f}x" if py else ""
    lines.append(f"| 100,000 artifacts in batches of 1,000, 16384 bins (artifacts/s) | {fmt(med(api), 0)} | "
                 f"{', '.join(fmt(a, 0) for a in api)} | {' / '.join(fmt(p, 0) for p in py_rate)} | {ratio} |")
if imp:
    walls = [r["wall_s"] for r in imp]
    rss = [r["peak_rss_bytes"] / 2**20 for r in imp]
    lines.append(f"| tufa import, 1,000,000 rows, one publication (s) | {fmt(med(walls))} | "
                 f"{', '.join(fmt(w) for w in walls)} (commit {', '.join(str(r['commit_s']) for r in imp)}; "
                 f"publish {', '.join(str(r['publish_s']) for r in imp)}) | | |")
    lines.append(f"| tufa import peak RSS (MiB) | {fmt(med(rss), 0)} | {', '.join(fmt(r, 0) for r in rss)} | | |")
if sus:
    s = sus[0]
    l = s["latency_ms"]
    lines.append(f"| sustained {s['target_artifacts_per_s']} artifacts/s ({s['achieved_artifacts_per_s']} achieved) "
                 f"for {s['send_s']} s: accepted to published (ms) | p50 {l['p50']}, p99 {l['p99']} | "
                 f"p90 {l['p90']}, max {l['max']} | | |")
if py:
    lines += ["", "python-tuf runs (repo_build.py --targets 100000 --bins 16384 --batch 1000): " +
              "; ".join(f"{r['targets_per_s']:,.0f} targets/s, bootstrap {r['bootstrap_s']} s, "
                        f"peak RSS {r['peak_rss_bytes'] / 2**20:,.0f} MiB" for r in py)]
text = "\n".join(lines) + "\n"
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(text)
print(text)
EOF
cat "$out/machine.txt" >&2
say "results in $out"
