#!/usr/bin/env bash
# Builds libdpcuda.so, the CUDA backend's kernels (cuda/kernels/*.cu) and their cuBLAS calls,
# for sm_80 (A100) and sm_90 (H100, H200), plus sm_90 PTX that newer GPUs compile at load time.
#
#   scripts/build-cuda.sh                      # writes artifacts/cuda/libdpcuda.so
#   scripts/build-cuda.sh path/to/libdpcuda.so
#   scripts/build-cuda.sh --fetch-toolkit      # no CUDA here: fetch PyPI's toolkit first
#   DPTRAIN_CUDA_LIBRARY=artifacts/cuda/libdpcuda.so .build/release/dp-train bench --backend cuda ...
#
# nvcc comes from PATH, from $CUDA_HOME, from /usr/local/cuda, or from the PyPI toolkit in
# artifacts/cuda-toolkit. --fetch-toolkit installs that toolkit when no nvcc is found: one
# `pip install --target` of nvidia-cuda-nvcc, -runtime, -cublas, -cccl and -crt 13.x (about
# 570 MB to download, 1.1 GB unpacked; enough to compile and link, running needs a GPU).
# The Swift package never links this library: CUDABackend opens it at run time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fetch_toolkit=0
output="$root/artifacts/cuda/libdpcuda.so"
for argument in "$@"; do
    case "$argument" in
        --fetch-toolkit) fetch_toolkit=1 ;;
        -*) echo "build-cuda.sh: unknown option $argument" >&2; exit 2 ;;
        *) output="$argument" ;;
    esac
done
pypi_toolkit="$root/artifacts/cuda-toolkit"

find_nvcc() {
    if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return; fi
    for candidate in "${CUDA_HOME:-/nonexistent}/bin/nvcc" /usr/local/cuda/bin/nvcc \
                     "$pypi_toolkit/nvidia/cu13/bin/nvcc"; do
        if [ -x "$candidate" ]; then echo "$candidate"; return; fi
    done
    return 1
}
if ! nvcc="$(find_nvcc)"; then
    if [ "$fetch_toolkit" -eq 0 ]; then
        echo "build-cuda.sh: nvcc not found on PATH, in \$CUDA_HOME, /usr/local/cuda or artifacts/cuda-toolkit;" \
             "--fetch-toolkit installs PyPI's CUDA 13 toolkit there" >&2
        exit 1
    fi
    echo "build-cuda.sh: fetching PyPI's CUDA 13 toolkit into $pypi_toolkit"
    rm -rf "$pypi_toolkit"
    python3 -m pip install --quiet --target "$pypi_toolkit" "nvidia-cuda-nvcc==13.*" "nvidia-cuda-runtime==13.*" \
        "nvidia-cublas==13.*" "nvidia-cuda-cccl==13.*" "nvidia-cuda-crt==13.*"
    nvcc="$(find_nvcc)" || { echo "build-cuda.sh: the PyPI toolkit has no nvcc" >&2; exit 1; }
fi
toolkit="$(cd "$(dirname "$nvcc")/.." && pwd)"
# The toolkit's own libraries: lib64 in a system install, lib in the PyPI layout.
libraries="$toolkit/lib64"
[ -d "$libraries" ] || libraries="$toolkit/lib"

build="$(dirname "$output")/objects"
mkdir -p "$build"
# The PyPI wheels ship only the versioned libcublas.so.13; the linker wants the plain name.
if [ ! -e "$libraries/libcublas.so" ]; then
    ln -sf "$(ls "$libraries"/libcublas.so.* | head -n 1)" "$build/libcublas.so"
fi

flags=(-O3 -std=c++17 -Xcompiler -fPIC,-Wall -I "$root/Sources/CDPCUDA/include"
       -gencode arch=compute_80,code=sm_80
       -gencode arch=compute_90,code=sm_90
       -gencode arch=compute_90,code=compute_90)
objects=()
pids=()
for source in "$root"/cuda/kernels/*.cu; do
    object="$build/$(basename "${source%.cu}").o"
    objects+=("$object")
    "$nvcc" "${flags[@]}" -c "$source" -o "$object" &
    pids+=($!)
    # At most as many compilers as cores: nvcc runs each architecture's backend in turn.
    if [ "${#pids[@]}" -ge "$(nproc)" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
"$nvcc" -shared -o "$output" "${objects[@]}" -L "$build" -L "$libraries" -lcublas \
    -Xlinker -rpath,"$libraries"
echo "built $output with $("$nvcc" --version | tail -n 1)"
