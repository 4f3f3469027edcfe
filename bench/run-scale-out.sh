#!/usr/bin/env bash
# Throughput of the scaled-out deployment on PostgreSQL with 1, 2 and 4 workers.
#
#   bash bench/run-scale-out.sh [RESULTS_DIR]
#
# Release build (not timed); one PostgreSQL server (initdb into a temporary
# directory, 127.0.0.1 only, durable commits as in production); then for each
# worker count W in WORKERS (default "1 2 4"), RUNS times (default 3), on a
# fresh database and data directory:
#   W x `tufa worker`, 2 x `tufa serve --no-publisher` (one bootstraps with
#   --dev --dev-bins BINS), then COUNT artifacts (default 100,000) in POSTs of
#   1,000, CONCURRENCY (default 4) at a time, spread over both API processes:
#   time from the first POST to every task SUCCESS.
# Results in RESULTS_DIR (default target/bench-results/scale-out-<UTC time>):
# one JSON file per run, logs, summary.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/target/bench-results/scale-out-$(date -u +%Y%m%dT%H%M%SZ)}
runs=${RUNS:-3}
workers_list=${WORKERS:-"1 2 4"}
count=${COUNT:-100000}
bins=${BINS:-16384}
concurrency=${CONCURRENCY:-4}
py=${PYTHON:-python3}

say() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

pgbin=
for d in $(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)") /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then pgbin=$d; break; fi
done
[ -n "$pgbin" ] || { echo "error: no PostgreSQL server binaries (install Debian's postgresql)" >&2; exit 1; }
psql=$(command -v psql || echo "$pgbin/psql")
[ -x "$psql" ] || psql=$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | tail -1)

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tufa-bench-scale.XXXXXX")
pids=()
pg_pid=
run_as=()
if [ "$(id -u)" = 0 ]; then run_as=(runuser -u postgres --); chown postgres: "$work"; fi
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$pg_pid" ]; then
        kill -INT "$(head -1 "$work/pg/postmaster.pid" 2>/dev/null || echo "$pg_pid")" 2>/dev/null || true
        wait "$pg_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

say "building tufa (release)"
(cd "$repo" && cargo build --release --locked -p tufa-cli >/dev/null 2>&1)
tufa=$repo/target/release/tufa

pg_port=$((20000 + RANDOM % 20000))
"${run_as[@]}" "$pgbin/initdb" -D "$work/pg" -U tufa -A trust -E UTF8 >/dev/null
"${run_as[@]}" "$pgbin/postgres" -D "$work/pg" -p "$pg_port" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$work" -c max_connections=300 >"$out/postgres.log" 2>&1 &
pg_pid=$!
url=postgres://tufa@127.0.0.1:$pg_port
for _ in $(seq 100); do "$psql" -h 127.0.0.1 -p "$pg_port" -U tufa -d postgres -qc 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "postgres: $("$pgbin/postgres" --version)"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

api_base=
start_api() { # N ARGS...   (sets api_base; not in a subshell, so its pid is kept)
    local n=$1 port=$((20000 + RANDOM % 20000))
    shift
    "$tufa" serve --listen "127.0.0.1:$port" "$@" >"$out/api-$n.log" 2>&1 &
    pids+=($!)
    until grep -qs "listening on" "$out/api-$n.log"; do sleep 0.05; done
    api_base=http://127.0.0.1:$port
}

for w in $workers_list; do
    for r in $(seq "$runs"); do
        db=tufa_w${w}_r${r}
        "$psql" -h 127.0.0.1 -p "$pg_port" -U tufa -d postgres -qc "CREATE DATABASE $db" >/dev/null
        data=$work/data-$w-$r
        mkdir -p "$data"
        pids=()
        for i in $(seq "$w"); do
            "$tufa" worker --data-dir "$data" --database-url "$url/$db" >"$out/worker-$w-$r-$i.log" 2>&1 &
            pids+=($!)
        done
        start_api "$w-$r-1" --data-dir "$data" --database-url "$url/$db" --no-publisher --dev --dev-bins "$bins"
        base1=$api_base
        "$py" "$repo/bench/load.py" wait-bootstrap "$base1"
        start_api "$w-$r-2" --data-dir "$data" --database-url "$url/$db" --no-publisher
        base2=$api_base
        "$py" "$repo/bench/load.py" bulk "$base1" --extra-base "$base2" --count "$count" --batch 1000 \
            --concurrency "$concurrency" --seed "w$w-r$r" >"$out/workers-$w-$r.json"
        say "workers=$w run $r: $(cat "$out/workers-$w-$r.json")"
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
        pids=()
        rm -rf "$data"
    done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

"$py" - "$out" "$workers_list" <<'EOF'
import glob, json, os, statistics, sys
out, workers = sys.argv[1], sys.argv[2].split()
lines = ["| workers | runs | artifacts | median published s | median artifacts/s |", "|---|---|---|---|---|"]
for w in workers:
    rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, f"workers-{w}-*.json")))]
    if not rows:
        continue
    lines.append(f"| {w} | {len(rows)} | {rows[0]['artifacts']} | {statistics.median(r['published_s'] for r in rows):.1f} "
                 f"| {statistics.median(r['artifacts_per_s'] for r in rows):,.0f} |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(text)
print(text)
EOF
