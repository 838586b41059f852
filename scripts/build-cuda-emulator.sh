#!/usr/bin/env bash
# Builds libdpcuda.so from the CUDA kernels (cuda/kernels/*.cu) for the CPU, against the runtime
# and cuBLAS of cuda/emulator/: the same ABI and the same kernel code, run by a block scheduler
# that executes every GPU thread as a fiber and checks barriers, launch limits and device
# pointers. It proves the kernels' logic (indexing, reductions, barriers, the ABI) without a GPU,
# not their speed or anything about the hardware's memory model.
#
#   scripts/build-cuda-emulator.sh                  # writes artifacts/cuda-emulator/libdpcuda.so
#   scripts/build-cuda-emulator.sh path/to/libdpcuda.so
#   DPTRAIN_CUDA_LIBRARY=artifacts/cuda-emulator/libdpcuda.so swift test -c release --filter DPCUDATests
#
# Beside the library it builds `selftest` (cuda/emulator/selftest.cu), the emulator's own test;
# scripts/tests/check_cuda_emulator.sh runs both.
#
# Needs only g++ and OpenBLAS (scripts/setup.sh installs both).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
output="${1:-$root/artifacts/cuda-emulator/libdpcuda.so}"
build="$(dirname "$output")/sources"
selftest="$(dirname "$output")/selftest"
rm -rf "$build" "$output" "$selftest"  # a failed build leaves nothing older behind to be tested
mkdir -p "$build"
# g++ has no launch syntax: kernel<<<grid, block>>>(arguments) becomes
# dpcemu_launch(kernel, grid, block, arguments). A launch this does not rewrite fails to compile.
for source in "$root"/cuda/kernels/* "$root"/cuda/emulator/selftest.cu; do
    sed -E 's/([A-Za-z_][A-Za-z0-9_]*(<[A-Za-z0-9_]*>)?)<<<(.*)>>>\(/dpcemu_launch(\1, \3, /' "$source" \
        > "$build/$(basename "$source")"
done
flags=(-O2 -std=c++20 -fPIC -Wall -Wno-sign-compare -Werror -I "$root/cuda/emulator/include" -I "$root/Sources/CDPCUDA/include"
       $(pkg-config --cflags openblas))
objects=()
pids=()
for source in "$build"/*.cu "$root"/cuda/emulator/*.cpp; do
    [ "$(basename "$source")" = selftest.cu ] && continue
    object="$build/$(basename "${source%.*}").o"
    objects+=("$object")
    g++ "${flags[@]}" -x c++ -c "$source" -o "$object" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$(nproc)" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
g++ -shared -o "$output" "${objects[@]}" $(pkg-config --libs openblas)
g++ "${flags[@]}" -x c++ "$build/selftest.cu" -x none "$build/runtime.o" "$build/cublas.o" -o "$selftest" \
    $(pkg-config --libs openblas)
echo "built $output: the CUDA kernels on the CPU emulator, and its self-test"
