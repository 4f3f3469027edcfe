#!/usr/bin/env bash
# Benchmarks tufa-metadata beside the python-tuf baseline, in one run.
#
#   bash bench/run-metadata.sh [RESULTS_DIR]
#
# Order: python-tuf (sign_verify.py), tufa (cargo bench -p tufa-metadata
# --bench metadata), python-tuf again, so that drift in machine load shows up
# as a spread between the two python runs. Everything lands in RESULTS_DIR
# (default target/bench-results/metadata-<UTC time>):
#   machine.txt                 CPU, cores, load, versions, git revision
#   py-1.json, py-2.json        sign_verify.py result lines (+ .log: its stderr)
#   rust.log                    criterion's output; criterion/ its raw data
#   rust.json                   medians of every criterion benchmark, one JSON line
#   python-table.md             make_table.py over the python runs
#   summary.md                  tufa vs python-tuf medians and ratios
#
# Environment:
#   PYTHON            interpreter with tuf and securesystemslib (default: the
#                     checkout's .venv, else /tmp/pytuf-bench, created if missing)
#   SHARED_BENCH      the python baseline scripts (default: ../shared/bench
#                     beside the checkout)
#   PYTUF_ARGS        sign_verify.py arguments (default: --min-time 0.5 --repeats 3)
#   TUFA_BENCH_CLOCK  wall: criterion measures wall time instead of CPU time
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SHARED_BENCH:-$repo/../shared/bench}
out=${1:-$repo/target/bench-results/metadata-$(date -u +%Y%m%dT%H%M%SZ)}
read -r -a pytuf_args <<<"${PYTUF_ARGS:---min-time 0.5 --repeats 3}"

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
[ -f "$shared/sign_verify.py" ] || { echo "error: no $shared/sign_verify.py" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$repo"

say "building the benchmark (not timed)"
cargo bench -p tufa-metadata --bench metadata --no-run 2>"$out/build.log" ||
    { cat "$out/build.log" >&2; exit 1; }

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "cores: $(nproc)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates/tufa-metadata 2>/dev/null || echo ' (tufa-metadata modified)')"
    echo "rustc: $(rustc --version)"
    echo "python: $("$py" -c 'import sys, tuf, securesystemslib, cryptography; print(sys.version.split()[0], "tuf", tuf.__version__, "securesystemslib", securesystemslib.__version__, "cryptography", cryptography.__version__)')"
    echo "clock: tufa ${TUFA_BENCH_CLOCK:-cpu} time, python-tuf process_time"
    echo "sign_verify.py args: ${pytuf_args[*]}"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

python_run() {
    say "python-tuf run $1: sign_verify.py ${pytuf_args[*]}"
    "$py" "$shared/sign_verify.py" "${pytuf_args[@]}" >"$out/py-$1.json" 2>"$out/py-$1.log"
    echo "load after python run $1: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
}

python_run 1
say "tufa: cargo bench -p tufa-metadata --bench metadata"
CRITERION_HOME="$out/criterion" cargo bench -p tufa-metadata --bench metadata -- --noplot \
    >"$out/rust.log" 2>&1 || { tail -40 "$out/rust.log" >&2; exit 1; }
echo "load after tufa run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
python_run 2

"$py" "$shared/make_table.py" "$out" >"$out/python-table.md"

# Collect criterion's medians and set them beside the python-tuf figures.
"$py" - "$out" <<'EOF'
import glob, json, os, statistics, sys

out = sys.argv[1]
rust = {}
for path in glob.glob(os.path.join(out, "criterion", "**", "new", "benchmark.json"), recursive=True):
    with open(path) as f:
        bench = json.load(f)
    with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
        est = json.load(f)
    median_ns = est["median"]["point_estimate"]
    r = {
        "median_ns": round(median_ns, 1),
        "median_ci_ns": [round(est["median"]["confidence_interval"][k], 1)
                         for k in ("lower_bound", "upper_bound")],
        "per_s": round(1e9 / median_ns, 1),
    }
    tp = bench.get("throughput") or {}
    if "Bytes" in tp:
        r["bytes"] = tp["Bytes"]
        r["MB_per_s"] = round(tp["Bytes"] * 1e3 / median_ns, 1)  # 10^6 bytes/s
    rust[bench["full_id"]] = r
clock = "wall" if os.environ.get("TUFA_BENCH_CLOCK") == "wall" else "process_cpu"
with open(os.path.join(out, "rust.json"), "w") as f:
    f.write(json.dumps({"bench": "tufa_metadata", "clock": clock, "results": rust},
                       sort_keys=True) + "\n")

runs = []
for n in (1, 2):
    with open(os.path.join(out, f"py-{n}.json")) as f:
        runs.append(json.loads(f.read().strip().splitlines()[-1]))

def py(doc, field):
    return [r[doc][field] if doc else r[field] for r in runs]

rows = [
    # (what, tufa benchmark, tufa field, python doc, python field, unit)
    ("canonical JSON, 6-target bin (1.2 KB)", "canonical/pytuf_bin6/signed_bytes", "MB_per_s", "bin_6_targets", "canonical_MB_per_s", "MB/s"),
    ("canonical JSON, 390-target bin (76 KB)", "canonical/pytuf_bin390/signed_bytes", "MB_per_s", "bin_390_targets", "canonical_MB_per_s", "MB/s"),
    ("canonical JSON, 16384-bin snapshot (523 KB)", "canonical/snapshot16384/signed_bytes", "MB_per_s", "snapshot_16384_bins", "canonical_MB_per_s", "MB/s"),
    ("ed25519 sign (canonicalise + sign), 6-target bin", "sign/pytuf_bin6/ed25519", "per_s", "bin_6_targets", "sign_per_s", "/s"),
    ("ed25519 sign (canonicalise + sign), 390-target bin", "sign/pytuf_bin390/ed25519", "per_s", "bin_390_targets", "sign_per_s", "/s"),
    ("ed25519 sign (canonicalise + sign), 16384-bin snapshot", "sign/snapshot16384/ed25519", "per_s", "snapshot_16384_bins", "sign_per_s", "/s"),
    ("raw ed25519 sign, 390-target bin payload", "sign/pytuf_bin390/ed25519/raw", "per_s", "bin_390_targets", "ed25519_raw_sign_per_s", "/s"),
    ("verify_delegate (payload given), 6-target bin", "verify/pytuf_bin6/ed25519/delegate", "per_s", "bin_6_targets", "verify_per_s", "/s"),
    ("verify_delegate (payload given), 390-target bin", "verify/pytuf_bin390/ed25519/delegate", "per_s", "bin_390_targets", "verify_per_s", "/s"),
    ("verify_delegate (payload given), 16384-bin snapshot", "verify/snapshot16384/ed25519/delegate", "per_s", "snapshot_16384_bins", "verify_per_s", "/s"),
    ("verify incl. canonicalisation, 390-target bin", "verify/pytuf_bin390/ed25519/delegate_canon", "per_s", "bin_390_targets", "verify_canon_per_s", "/s"),
    ("raw ed25519 verify, 390-target bin payload", "verify/pytuf_bin390/ed25519/raw", "per_s", "bin_390_targets", "ed25519_raw_verify_per_s", "/s"),
    ("parse file bytes (tufa also canonicalises), 390-target bin", "verify/pytuf_bin390/parse", "per_s", "bin_390_targets", "from_bytes_per_s", "/s"),
    ("blake2b-256, in memory", "hash/blake2b-256", "MB_per_s", None, "blake2b_256_mem_MB_per_s", "MB/s"),
    ("sha256, in memory", "hash/sha256", "MB_per_s", None, "sha256_mem_MB_per_s", "MB/s"),
]

def fmt(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"

lines = [
    "| work | unit | tufa (median) | python-tuf run 1 / run 2 | tufa / python-tuf |",
    "|---|---|---:|---:|---:|",
]
for what, rid, rfield, doc, pfield, unit in rows:
    if rid not in rust:
        continue
    t = rust[rid][rfield]
    p = py(doc, pfield)
    lines.append(f"| {what} | {unit} | {fmt(t)} | {fmt(p[0])} / {fmt(p[1])} "
                 f"| {t / statistics.median(p):.1f}x |")

lines += ["", "| tufa only | median | rate |", "|---|---:|---:|"]
for rid in sorted(rust):
    r = rust[rid]
    rate = f"{fmt(r['MB_per_s'])} MB/s" if "MB_per_s" in r else f"{fmt(r['per_s'])}/s"
    lines.append(f"| {rid} | {r['median_ns'] / 1e3:,.1f} µs | {rate} |")
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
cat "$out/machine.txt" >&2
say "results in $out"
