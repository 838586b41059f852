#!/usr/bin/env bash
# The CUDA backend without a GPU: the kernels of cuda/kernels/ built for the CPU emulator
# (scripts/build-cuda-emulator.sh), then
#   1. the emulator's self-test (cuda/emulator/selftest.cu): each mistake it claims to catch;
#   2. DPCUDATests (every op, and training steps against the CPU backend: two in fp32, one in tf32
#      and bf16; the golden PyTorch tensors, all-MiniLM-L6-v2's included) in the scheduler's
#      forward and reverse thread order, so a kernel that reads another thread's write without a
#      barrier fails in one of them;
#      then once more with the library under AddressSanitizer, which stops at the first byte a
#      kernel reads or writes outside its allocations (compute-sanitizer's memcheck, on the CPU);
#   3. `dp-train train` on a GPU too small for the model: one line saying what to change, exit 1;
#   4. check_trainer section 1 on `--backend cuda`: 1, 2 and 4 MPI ranks sharing the emulated GPU
#      agree within 1e-5; and check_recipe_vs_pytorch.py on `--backend cuda`: 30 steps against
#      PyTorch.
# It proves the kernels' logic and the Swift side's use of the ABI, not their speed, the GPU's
# memory model or how its tensor cores round (cuda/NOTES.md, Version 4).
#
#   bash scripts/tests/check_cuda_emulator.sh    # after `swift build -c release --build-tests`
#
# scripts/test.sh runs it with Open MPI's run-as-root switches in the environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
log() { printf '[cuda-emulator] %s\n' "$*"; }

# DPCUDATests against the library $1 ($2 says how, for the log), with the name=value words after
# them in the environment.
cuda_tests() {
    local library=$1 what=$2 out rc=0
    shift 2
    out=$(mktemp)
    env DPTRAIN_CUDA_LIBRARY="$library" "$@" swift test -c release --skip-build --filter DPCUDATests > "$out" 2>&1 || rc=$?
    # A library that fails to load turns every CUDA test into a skip, which XCTest counts as a pass.
    if [ "$rc" -ne 0 ] || grep -qE "skipped|skipping|ERROR: AddressSanitizer" "$out"; then
        grep -E -A12 "error:|skipped|skipping|ERROR: AddressSanitizer|Executed" "$out" | head -n 40
        log "DPCUDATests $what: exit $rc"
        rm -f "$out"
        return 1
    fi
    log "DPCUDATests $what: $(grep -E "Executed [0-9]+ tests" "$out" | tail -n 1 | sed 's/^[[:space:]]*//')"
    log "worst fp32 $(bash scripts/tests/worst_parity.sh "$out" fp32 1)"
    rm -f "$out"
}

# The real-model golden test runs on CUDA too; scripts/test.sh has generated its tensors already.
if [ -z "${DPTRAIN_MINILM_GOLDEN:-}" ]; then
    DPTRAIN_MINILM_GOLDEN="$PWD/artifacts/golden/minilm"
    [ -f "$DPTRAIN_MINILM_GOLDEN/golden.safetensors" ] || python3 scripts/golden.py --case minilm \
        --model-dir artifacts/models/all-MiniLM-L6-v2 --out "$DPTRAIN_MINILM_GOLDEN"
    export DPTRAIN_MINILM_GOLDEN
fi

bash scripts/build-cuda-emulator.sh
artifacts/cuda-emulator/selftest
library="$PWD/artifacts/cuda-emulator/libdpcuda.so"
cuda_tests "$library" "in forward order" DPCUDA_EMULATOR_ORDER=forward
cuda_tests "$library" "in reverse order" DPCUDA_EMULATOR_ORDER=reverse

bash scripts/build-cuda-emulator.sh --sanitize
cuda_tests "$PWD/artifacts/cuda-emulator-asan/libdpcuda.so" "under AddressSanitizer" \
    LD_PRELOAD="$(g++ -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0

export DPTRAIN_CUDA_LIBRARY="$library"

# Out of GPU memory (a 100 MB GPU: MiniLM's parameters alone take 91 MB) is one line that says
# what to change, and exit status 1, not a crash.
run=$(mktemp -d)
err=$(DPCUDA_EMULATOR_MEMORY=100000000 .build/release/dp-train train --ranks 1 --backend cuda \
    --model artifacts/models/all-MiniLM-L6-v2 --train artifacts/data/vader-movies.tsv --label-column sentiment \
    --max-steps 1 --output "$run/out" 2>&1 >/dev/null) && rc=0 || rc=$?
rm -rf "$run"
if [ "$rc" -ne 1 ] || [ "$(printf '%s\n' "$err" | grep -c .)" -ne 1 ] ||
    ! printf '%s\n' "$err" | grep -q "is out of memory in .*--micro-batch-size"; then
    log "out of GPU memory: expected exit 1 and one line naming the way out; got exit $rc: $err"
    exit 1
fi
log "out of GPU memory: $err"
python3 scripts/tests/check_trainer.py --bin .build/release/dp-train --data artifacts/data/vader-movies.tsv \
    --backend cuda --sections 1,11
python3 scripts/tests/check_recipe_vs_pytorch.py --bin .build/release/dp-train --backend cuda \
    --data artifacts/data/vader-movies.tsv --tokenizer-from artifacts/models/all-MiniLM-L6-v2
