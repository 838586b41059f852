#!/usr/bin/env bash
# Set-up plus the main job, on a fresh Debian 12 machine that has only Swift (README command 1).
#
#   bash scripts/run-default.sh [extra dp-train train options, e.g. --epochs 3]
#
# scripts/setup.sh installs what is missing (Open MPI, OpenBLAS, Python's packages), fetches
# all-MiniLM-L6-v2 and the VADER movie-review sentences (10,605 rows rated -4..4 by people) into
# artifacts/, and builds dp-train. The job then fine-tunes MiniLM to predict the rating, on two
# MPI ranks, with the recipe's defaults (global batch 16, lr 2e-5, 10% warmup, AdamW with bias
# correction, weight decay 0.01, clipping at 1.0, dropout 0.1) on a fixed 90/10 split, printing
# validation RMSE and Pearson (and MAE, Spearman) at each evaluation, 3 times per epoch.
# Checkpoints, metrics.jsonl and split.json go to artifacts/runs/vader-minilm/.
#
# The PyTorch/transformers baseline on the same split and recipe:
#   python3 scripts/reference_train.py --model artifacts/models/all-MiniLM-L6-v2 \
#       --data artifacts/data/vader-movies.tsv --split artifacts/runs/vader-minilm/split.json \
#       --text-column text --label-column sentiment --epochs 2 --eval-every 199 --threads 2
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# dp-train itself needs no Python package; torch and the rest are for the tests and baselines.
bash scripts/setup.sh --no-python-packages   # ends with swift build -c release

mpirun=(mpirun -np 2 --bind-to none)
# Containers and CI often run as root, which Open MPI refuses unless told.
[ "$(id -u)" -ne 0 ] || mpirun+=(--allow-run-as-root)
cmd=("${mpirun[@]}" .build/release/dp-train train
     --model artifacts/models/all-MiniLM-L6-v2
     --train artifacts/data/vader-movies.tsv --text-column text --label-column sentiment
     --validation-fraction 0.1 --epochs 2 --eval-every 199 --save-every 199 --keep 1
     --output artifacts/runs/vader-minilm "$@")
printf '[run-default] %s\n' "${cmd[*]}"
exec "${cmd[@]}"
