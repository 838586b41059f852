#!/usr/bin/env bash
# The CUDA backend without a GPU: the kernels of cuda/kernels/ built for the CPU emulator
# (scripts/build-cuda-emulator.sh), then
#   1. the emulator's self-test (cuda/emulator/selftest.cu): each mistake it claims to catch;
#   2. DPCUDATests (every op and two training steps against the CPU backend in fp32, tf32 and
#      bf16, and the golden PyTorch tensors) in the scheduler's forward and reverse thread order,
#      so a kernel that reads another thread's write without a barrier fails in one of them;
#   3. check_trainer section 1 on `--backend cuda`: 1, 2 and 4 MPI ranks sharing the emulated GPU
#      agree within 1e-5.
# It proves the kernels' logic and the Swift side's use of the ABI, not their speed, the GPU's
# memory model or how its tensor cores round (cuda/NOTES.md, Version 4).
#
#   bash scripts/tests/check_cuda_emulator.sh    # after `swift build -c release --build-tests`
#
# scripts/test.sh runs it with Open MPI's run-as-root switches in the environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
log() { printf '[cuda-emulator] %s\n' "$*"; }

bash scripts/build-cuda-emulator.sh
artifacts/cuda-emulator/selftest
export DPTRAIN_CUDA_LIBRARY="$PWD/artifacts/cuda-emulator/libdpcuda.so"

for order in forward reverse; do
    out=$(mktemp)
    rc=0
    DPCUDA_EMULATOR_ORDER=$order swift test -c release --skip-build --filter DPCUDATests > "$out" 2>&1 || rc=$?
    # A library that fails to load turns every CUDA test into a skip, which XCTest counts as a pass.
    if [ "$rc" -ne 0 ] || grep -qE "skipped|skipping" "$out"; then
        grep -E "error:|skipped|Executed" "$out" | head -n 20
        log "DPCUDATests in $order order: exit $rc"
        rm -f "$out"
        exit 1
    fi
    worst=$(grep -E "^parity .*normalised error" "$out" | grep -vE "^parity (tf32|bf16) " |
        awk '{ for (i = 1; i < NF; i++) if ($i == "error") print $(i + 1) }' | sort -g | tail -n 1)
    log "DPCUDATests in $order order: $(grep -E "Executed [0-9]+ tests" "$out" | tail -n 1 | sed 's/^[[:space:]]*//'); worst fp32 normalised error $worst (slices included)"
    rm -f "$out"
done

python3 scripts/tests/check_trainer.py --bin .build/release/dp-train --data artifacts/data/vader-movies.tsv \
    --backend cuda --sections 1
