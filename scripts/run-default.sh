#!/usr/bin/env bash
# Set-up plus the main job on the default model, on a fresh Debian 12 machine that has only Swift.
#
#   bash scripts/run-default.sh [extra dp-train bench options]
#
# The main job is, for now, one benchmark of the full training step (forward, loss, backward,
# clipping, AdamW) on all-MiniLM-L6-v2 at global batch 16 and sequence length 128; it prints one
# JSON line with median_step_s, tokens_per_s, flops_per_step and peak_rss_mb. When the trainer
# lands, the main job becomes `dp-train train`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh   # ends with swift build -c release

cmd=(.build/release/dp-train bench --model artifacts/models/all-MiniLM-L6-v2
     --batch-size 16 --seq-len 128 --steps 5 "$@")
printf '[run-default] %s\n' "${cmd[*]}"
exec "${cmd[@]}"
