#!/usr/bin/env bash
# A fingerprint of what training computes: three steps of all-MiniLM-L6-v2 on 48 VADER sentences
# in fp32, tf32 and bf16, on the CPU backend and, where a library is given, on --backend cuda,
# each line the sha256 of the saved weights and the three step losses. A change that only moves
# work around (fusing passes, rounding an operand somewhere else) must leave it the same, bit for
# bit: record it before and after, and diff.
#
#   bash scripts/tests/training_fingerprint.sh .build/release/dp-train artifacts/cuda-emulator/libdpcuda.so > after.txt
#
# For a change of the CUDA ABI, give each build its own library (the old one built from its own
# checkout). Needs `scripts/setup.sh --no-build` (the model and the data); about 2 minutes on 2
# cores with the emulator.
set -euo pipefail
bin="$(realpath "${1:?usage: training_fingerprint.sh DP_TRAIN [LIBDPCUDA]}")"
library="${2:+$(realpath "$2")}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
head -n 49 "$root/artifacts/data/vader-movies.tsv" > "$work/data.tsv"
backends=(cpu)
[ -n "$library" ] && backends+=(cuda)
for backend in "${backends[@]}"; do
    for precision in fp32 tf32 bf16; do
        run="$work/$backend-$precision"
        DPTRAIN_CUDA_LIBRARY="$library" "$bin" train --model "$root/artifacts/models/all-MiniLM-L6-v2" \
            --train "$work/data.tsv" --text-column text --label-column sentiment --max-length 24 --max-steps 3 \
            --log-every 1 --output "$run" --backend "$backend" --precision "$precision" --ranks 1 --threads 2 \
            > "$run.log" 2>&1 || { echo "$backend $precision: exit $?"; tail -n 5 "$run.log"; exit 1; }
        weights="$(find "$run" -name model.safetensors | sort | tail -n 1)"
        losses="$(grep -o '"loss":[^,]*' "$run/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')"
        echo "$backend $precision $(sha256sum "$weights" | cut -c1-16) $losses"
    done
done
