#!/usr/bin/env bash
# Set-up plus every test, on a fresh Debian 12 machine that has only Swift (.ci/run runs this).
#
#   bash scripts/test.sh
#
# 1. scripts/setup.sh --no-build: packages, Python, the MiniLM model;
# 2. the MiniLM golden tensors, generated now by PyTorch (scripts/golden.py) into
#    artifacts/golden/minilm; and the tokenizer parity cases (scripts/tokenizer_parity.py: the
#    `tokenizers` library's encodings, for MiniLM's tokenizer and ones it trains) into
#    artifacts/tokenizer-parity, handed to the tests as DPTRAIN_TOKENIZER_PARITY;
# 3. swift test -c release (optimised, so the real-model golden test is quick, and the build is
#    shared with stage 4), with DPTRAIN_MINILM_GOLDEN, DPTRAIN_PYTHON, DPTRAIN_REPO and Open MPI's
#    run-as-root switches in the environment;
# 4. an end-to-end smoke of the CLI: `dp-train bench` for 2 steps on MiniLM, whose JSON line
#    must carry median_step_s, tokens_per_s, flops_per_step and peak_rss_mb;
# 5. bad input through the CLI (a truncated safetensors file, a pickle-only folder, an unknown
#    model_type, a bad option; for `dp-train tokenize` an unknown tokenizer component, invalid
#    UTF-8 and a missing column; for `dp-train train` malformed CSV, a missing column, NaN and
#    unparsable targets, an empty text, an unseen label, a bad option, a missing libdpcuda.so):
#    a non-zero exit and one line naming the file (with line and column) or option;
# 6. the CUDA kernels compile (scripts/build-cuda.sh --fetch-toolkit: PyPI's nvcc where there
#    is no CUDA) and dp-train loads the library; without a GPU, --backend cuda is one clear line;
# 7. the CUDA kernels on the CPU emulator (scripts/tests/check_cuda_emulator.sh): its self-test,
#    DPCUDATests against the CPU backend in both thread orders and under AddressSanitizer, out of
#    GPU memory as one line, and 1, 2 and 4 ranks on --backend cuda agreeing within 1e-5;
# 8. the trainer with real MPI processes (scripts/tests/check_trainer.py): 1, 2 and 4 ranks
#    agree within 1e-5, resume is exact, stop signals checkpoint and exit 75, and 200 steps in
#    bf16 and in tf32 follow fp32's loss curve; the recipe against PyTorch
#    (scripts/tests/check_recipe_vs_pytorch.py): 30 steps of a tiny BERT on the same batches,
#    clipped, with layer-wise rates, pretrained weight decay or Mixout and the warmup schedule,
#    agree in every loss and tensor;
# 9. faults (scripts/tests/check_faults.py): kill -9 of a rank, kill -9 mid-checkpoint, a full
#    disk and a stalled rank each end the job cleanly, and nothing already saved is lost;
# 10. several hosts emulated with network namespaces (scripts/tests/check_multihost.py): mpirun
#    over TCP across them gives the single-host results bit for bit, also under tbf limits;
# 11. a real Slurm (scripts/tests/check_slurm.py): the scripts of cluster/slurm/ submitted as
#    they are, preemption and requeue included; the daemons are stopped afterwards;
# 12. `dp-train embed` against sentence-transformers on 1,000 real sentences (cosine >= 0.9999).
# A failed set-up stops here. Every later stage runs even when one fails, so that one CI run
# shows every failure; the exit status is then that of the first failed stage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '[test] %s\n' "$*"; }

bash scripts/setup.sh --no-build
PATH="$PATH:/opt/swift/usr/bin"  # as in setup.sh

model_dir=artifacts/models/all-MiniLM-L6-v2
golden_dir=artifacts/golden/minilm

parity_dir=artifacts/tokenizer-parity
export DPTRAIN_MINILM_GOLDEN="$PWD/$golden_dir"
export DPTRAIN_TOKENIZER_PARITY="$PWD/$parity_dir"
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

generate_tokenizer_parity() {
    rm -rf "$parity_dir"
    python3 scripts/tokenizer_parity.py --out "$parity_dir" --model-dir "$model_dir"
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

# The CUDA kernels compile for sm_80 and sm_90 (with PyPI's nvcc where the machine has no CUDA),
# and dp-train opens the result: the ABI version and every symbol of the table check out. On a
# machine without a GPU, `--backend cuda` must then stop with one line naming the missing GPU;
# with one, the bench step must run.
check_cuda_build() {
    local library=artifacts/cuda/libdpcuda.so err rc=0
    bash scripts/build-cuda.sh --fetch-toolkit "$library" || return 1
    err=$(DPTRAIN_CUDA_LIBRARY="$PWD/$library" .build/release/dp-train bench --backend cuda --precision bf16 \
        --model "$model_dir" --batch-size 2 --seq-len 16 --steps 1 2>&1 >/dev/null) || rc=$?
    if [ "$rc" -eq 0 ]; then
        log "cuda: a GPU is here and the bf16 bench step ran"
    elif [ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ] && [[ "$err" == "Error: --backend cuda: no usable GPU"* ]]; then
        log "cuda: the library loads; no GPU here: $err"
    else
        log "cuda: expected one 'no usable GPU' line or a run, got exit $rc: $err"
        return 1
    fi
}

# Bad input through the real CLI: each case must exit non-zero with one line on stderr that
# names the file (and the tensor or key where there is one), and never crash.
bad_input() {
    local work bin=.build/release/dp-train status=0
    work=$(mktemp -d)
    mkdir -p "$work/truncated" "$work/pickle" "$work/unknown-type"
    cp "$model_dir/config.json" "$work/truncated/"
    head -c 100000 "$model_dir/model.safetensors" > "$work/truncated/model.safetensors"
    cp "$model_dir/config.json" "$work/pickle/"
    printf 'not really a pickle' > "$work/pickle/pytorch_model.bin"
    python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["model_type"]="gpt2"; json.dump(c, open(sys.argv[2], "w"))' \
        "$model_dir/config.json" "$work/unknown-type/config.json"
    cp "$model_dir/model.safetensors" "$work/unknown-type/"
    check_bad() {
        local name=$1 expect=$2 err rc=0
        shift 2
        err=$("$@" 2>&1 >/dev/null) || rc=$?
        if [ "$rc" -eq 0 ] || [ "$rc" -gt 128 ]; then
            log "bad input $name: exit status $rc, expected a clean failure"; status=1; return
        fi
        # A bad option may add ArgumentParser's usage lines after the message.
        local lines=1
        case "$name" in "bad option"*) lines=3 ;; esac
        if [ "$(printf '%s\n' "$err" | grep -c .)" -ne "$lines" ] \
            || ! printf '%s\n' "$err" | head -n 1 | grep -q -- "$expect"; then
            log "bad input $name: expected $lines line(s), the first mentioning '$expect'; got: $err"
            status=1; return
        fi
        log "bad input $name: $(printf '%s\n' "$err" | head -n 1)"
    }
    check_bad "truncated safetensors" "$work/truncated/model.safetensors" "$bin" inspect --model "$work/truncated"
    check_bad "pytorch_model.bin only" "refuses to unpickle" "$bin" inspect --model "$work/pickle"
    check_bad "unknown model_type" "gpt2" "$bin" inspect --model "$work/unknown-type"
    check_bad "bad option" "--seq-len" "$bin" bench --model bert-base --seq-len 0
    printf '{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Foo"}]}}' \
        > "$work/tokenizer.json"
    printf 'fine\nnot \xff utf-8\n' > "$work/latin1.txt"
    printf 'sentence\tlabel\nhello\t1\n' > "$work/table.tsv"
    check_bad "unknown tokenizer component" 'pre_tokenizer.pretokenizers\[1\]: unknown type "Foo"' \
        "$bin" tokenize --tokenizer "$work/tokenizer.json" --input "$work/table.tsv"
    check_bad "invalid UTF-8 input" "latin1.txt:2" "$bin" tokenize --tokenizer "$model_dir" --input "$work/latin1.txt"
    check_bad "missing text column" "'text'.*'sentence', 'label'" \
        "$bin" tokenize --tokenizer "$model_dir" --input "$work/table.tsv"
    check_bad "--backend cuda without the library" "libdpcuda.so not found; build it with scripts/build-cuda.sh" \
        env DPTRAIN_CUDA_LIBRARY="$work/none/libdpcuda.so" "$bin" train --backend cuda --model "$model_dir" \
        --train "$work/table.tsv" --text-column sentence --max-steps 1
    # Training data: each fault names the file, the line and the column before any training.
    train_bad() { "$bin" train --ranks 1 --model "$model_dir" --output "$work/run" "$@"; }
    printf 'text,label\n"fine",1\n"unterminated,2\n' > "$work/quote.csv"
    printf 'text\tscore\nfine\t1\nalso fine\tnan\n' > "$work/nan.tsv"
    printf 'text\tscore\nfine\t1\nalso fine\tlots\n' > "$work/word.tsv"
    printf 'text\tlabel\nfine\tpos\n \tneg\n' > "$work/empty.tsv"
    printf 'text\tlabel\nfine\tpos\nbad\tneg\n' > "$work/labels.tsv"
    printf 'text\tlabel\nso so\tmeh\n' > "$work/unseen.tsv"
    check_bad "train: malformed CSV" "quote.csv:3" train_bad --train "$work/quote.csv"
    check_bad "train: missing label column" "no column 'label'; the columns are 'text', 'score'" \
        train_bad --train "$work/nan.tsv"
    check_bad "train: NaN target" "nan.tsv:3: column 'score'" train_bad --train "$work/nan.tsv" --label-column score
    check_bad "train: label not a number" "word.tsv:3: column 'score': 'lots' is not a number" \
        train_bad --train "$work/word.tsv" --label-column score --task regression
    check_bad "train: empty text" "empty.tsv:3: column 'text': empty text" train_bad --train "$work/empty.tsv"
    check_bad "train: unseen validation label" "unseen.tsv:2: column 'label': label 'meh' never occurs" \
        train_bad --train "$work/labels.tsv" --validation "$work/unseen.tsv"
    check_bad "bad option: --batch-size 0" "--batch-size" train_bad --train "$work/labels.tsv" --batch-size 0
    check_bad "train: --reinit-layers past the top" "--reinit-layers 7 does not fit .*config.json (bert, 6 layers)" \
        train_bad --train "$work/labels.tsv" --reinit-layers 7
    check_bad "train: --layer-lr-decay on ALBERT" "albert-classification/config.json (albert, .*share one set of weights" \
        "$bin" train --model Tests/DPModelsTests/Golden/albert-classification --train "$work/labels.tsv" --layer-lr-decay 0.9
    check_bad "train: --mixout on ALBERT" "--mixout 0.1 does not fit .*albert-classification/config.json (albert" \
        "$bin" train --model Tests/DPModelsTests/Golden/albert-classification --train "$work/labels.tsv" --mixout 0.1
    check_bad "train: unknown --metric-for-best" "--metric-for-best acuracy: classification evaluation has no such metric" \
        train_bad --train "$work/labels.tsv" --validation "$work/labels.tsv" --metric-for-best acuracy
    mkdir -p "$work/unknown-head"
    python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["dp_train_pooling"]="max"; json.dump(c, open(sys.argv[2], "w"))' \
        "$model_dir/config.json" "$work/unknown-head/config.json"
    cp "$model_dir/model.safetensors" "$work/unknown-head/"
    check_bad "unknown dp_train_pooling" "unknown-head/config.json.*dp_train_pooling" \
        "$bin" inspect --model "$work/unknown-head"
    check_bad "train: --pooled-layers without weighted_layers" "--pooled-layers 2 does not fit .*the head is pooler" \
        train_bad --train "$work/labels.tsv" --pooled-layers 2
    rm -rf "$work"
    return "$status"
}

# Real MPI processes: rank-count invariance (1, 2, 4 ranks), exact resume, stop signals,
# non-finite steps, evaluate and predict (scripts/tests/check_trainer.py).
check_trainer() {
    python3 scripts/tests/check_trainer.py --bin .build/release/dp-train --data artifacts/data/vader-movies.tsv
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
stage "tokenizer parity cases (scripts/tokenizer_parity.py)" generate_tokenizer_parity
stage "swift test -c release" swift test -c release
stage "smoke: dp-train bench" smoke_bench
stage "bad input: clear one-line errors" bad_input
stage "cuda: the kernels compile and the library loads" check_cuda_build
stage "cuda: the kernels on the CPU emulator" bash scripts/tests/check_cuda_emulator.sh
stage "trainer: rank-count invariance, resume, signals" check_trainer
stage "recipe: 30 steps against PyTorch" python3 scripts/tests/check_recipe_vs_pytorch.py \
    --bin .build/release/dp-train --data artifacts/data/vader-movies.tsv --tokenizer-from "$model_dir"
stage "faults: killed, stalled, full disk" python3 scripts/tests/check_faults.py --bin .build/release/dp-train \
    --data artifacts/data/vader-movies.tsv
stage "multi-host: network namespaces" python3 scripts/tests/check_multihost.py --bin .build/release/dp-train \
    --data artifacts/data/vader-movies.tsv
stage "slurm: cluster/slurm/ on a real Slurm" python3 scripts/tests/check_slurm.py --bin .build/release/dp-train \
    --data artifacts/data/vader-movies.tsv
stage "embed: sentence-transformers parity" python3 scripts/tests/check_embed.py --bin .build/release/dp-train \
    --model "$model_dir" --data artifacts/data/vader-movies.tsv

if [ "${#failures[@]}" -ne 0 ]; then
    log "failed stages:"
    printf '[test]   %s\n' "${failures[@]}"
    exit "$first_rc"
fi
log "all stages passed"
