#!/usr/bin/env bash
# Set-up plus every test, on a fresh Debian 12 machine that has only Swift (.ci/run runs this).
#
#   bash scripts/test.sh
#
# 1. scripts/setup.sh --no-build: packages, Python, the MiniLM model;
# 2. the MiniLM golden tensors, generated now by PyTorch (scripts/golden.py) into
#    artifacts/golden/minilm;
# 3. swift test -c release (optimised, so the real-model golden test is quick, and the build is
#    shared with stage 4), with DPTRAIN_MINILM_GOLDEN, DPTRAIN_PYTHON, DPTRAIN_REPO and Open MPI's
#    run-as-root switches in the environment;
# 4. an end-to-end smoke of the CLI: `dp-train bench` for 2 steps on MiniLM, whose JSON line
#    must carry median_step_s, tokens_per_s, flops_per_step and peak_rss_mb.
# A failed set-up stops here. Stages 2-4 all run even when one fails, so that one CI run shows
# every failure; the exit status is then that of the first failed stage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '[test] %s\n' "$*"; }

bash scripts/setup.sh --no-build
PATH="$PATH:/opt/swift/usr/bin"  # as in setup.sh

model_dir=artifacts/models/all-MiniLM-L6-v2
golden_dir=artifacts/golden/minilm

export DPTRAIN_MINILM_GOLDEN="$PWD/$golden_dir"
DPTRAIN_PYTHON=$(command -v python3)
export DPTRAIN_PYTHON
export DPTRAIN_REPO="$PWD"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Tests start more ranks than this 2-core machine has cores; the same as mpirun --oversubscribe.
export OMPI_MCA_rmaps_base_oversubscribe=1

generate_golden() {
    rm -rf "$golden_dir"  # never test against tensors left over from an older run
    python3 scripts/golden.py --case minilm --model-dir "$model_dir" --out "$golden_dir"
}

smoke_bench() {
    local out rc=0
    out=$(swift run -c release dp-train bench --model "$model_dir" \
        --batch-size 4 --seq-len 32 --steps 2 --threads 1) || rc=$?
    printf '%s\n' "$out"
    [ "$rc" -eq 0 ] || { log "dp-train bench exited with status $rc"; return "$rc"; }
    printf '%s\n' "$out" | python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.lstrip().startswith("{")]
if not lines:
    sys.exit("smoke: dp-train bench printed no JSON line")
result = json.loads(lines[-1])
keys = ("median_step_s", "tokens_per_s", "flops_per_step", "peak_rss_mb")
missing = [k for k in keys if k not in result]
if missing:
    sys.exit(f"smoke: the JSON line lacks {missing}: {lines[-1]}")
bad = [k for k in keys if isinstance(result[k], bool)
       or not isinstance(result[k], (int, float)) or not result[k] > 0]
if bad:
    sys.exit(f"smoke: {bad} are not positive numbers: {lines[-1]}")
print("smoke: dp-train bench JSON ok")
'
}

failures=()
first_rc=0
stage() {
    local name=$1 rc=0
    shift
    log "== $name"
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        log "ok: $name"
    else
        log "FAILED (exit $rc): $name"
        failures+=("$name (exit $rc)")
        [ "$first_rc" -ne 0 ] || first_rc=$rc
    fi
}

stage "golden tensors (scripts/golden.py --case minilm)" generate_golden
stage "swift test -c release" swift test -c release
stage "smoke: dp-train bench" smoke_bench

if [ "${#failures[@]}" -ne 0 ]; then
    log "failed stages:"
    printf '[test]   %s\n' "${failures[@]}"
    exit "$first_rc"
fi
log "all stages passed"
